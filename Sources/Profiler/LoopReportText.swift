// The hot-loop part of `privbox report`: a ranked table, what each kind of acceleration could save
// per loop, and the projection for a privbox (semi-privileged) kernel.

public enum Acceleration {
    /// System calls, as profiles name them, that accelerate mode's executors answer in user space
    /// on a stock kernel, with the executor's name (as `PRIVBOX_LOG=info` prints it; see
    /// Sources/Preload/executors/*.c). Their time inside the call is what the executor could save
    /// at most. getppid is not here: a parent's death changes it without any call of the process.
    /// lseek is fusion's: a SEEK_SET lseek followed by reads of the same fd is deferred (the reads
    /// still enter the kernel, as pread), so only the lseek's time can be saved.
    public static let userSpaceExecutable: [String: String] = [
        "getpid": "identity", "gettid": "identity", "getuid": "identity", "geteuid": "identity",
        "getgid": "identity", "getegid": "identity", "getpgrp": "identity", "getsid": "identity",
        "getrandom": "vdso-getrandom", "clock_gettime": "vdso-clock", "gettimeofday": "vdso-clock",
        "time": "vdso-clock", "getcpu": "vdso-clock", "rt_sigprocmask": "sigmask",
        "lseek": "fusion",
    ]
}

public struct Projection {
    /// Measured cost of entering and leaving the kernel for one call (an empty syscall's round trip
    /// minus a function call), which a semi-privileged privbox kernel would replace by a call.
    public var kernelEntryNs: Double

    public init(kernelEntryNs: Double) { self.kernelEntryNs = kernelEntryNs }

    /// Time a loop would save, and its speed-up, if each of its calls cost a function call instead
    /// of a kernel entry. Never more than the time the loop actually spent inside its calls.
    /// An entry cost that is not a positive finite number (`--entry-ns nan`, `-5`) saves nothing.
    public func apply(to loop: HotLoop) -> (savedNs: UInt64, speedup: Double) {
        let perCall = kernelEntryNs.isFinite && kernelEntryNs > 0 ? kernelEntryNs : 0
        let saved = min(Double(loop.kernelNs), perCall * Double(loop.calls))
        let wall = Double(loop.wallNs)
        guard wall > saved, wall > 0 else { return (UInt64(saturating: saved), 1) }
        return (UInt64(saturating: saved.rounded()), wall / (wall - saved))
    }
}

extension ReportFormatter {
    public static func loops(_ report: LoopReport, profile: Profile, projection: Projection?, top: Int) -> String {
        var out = "\nhot loops (innermost loop that repeats each system call; ranked by kernel share of the loop's time)\n"
        if report.hot.isEmpty {
            out += "  none: no loop makes at least 1% (and 100) of its process's wrapped calls"
            let outside = report.outsideLoops.values.saturatingSum { $0 }
            out += outside > 0 ? " (\(outside) calls are not in any loop)\n" : "\n"
            return out
        }
        guard top > 0 else { // --top 0: the totals only
            let calls = report.hot.saturatingSum(\.calls)
            return out + "  \(report.hot.count) hot loop\(report.hot.count == 1 ? "" : "s") (\(calls) calls); --top 0 lists none\n"
        }
        let rows = report.hot.prefix(top).enumerated().map { i, l -> [String] in
            let mix = l.syscalls.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(3)
                .map { "\($0.key) \(percent($0.value, of: l.calls))" }.joined(separator: ", ")
            return [String(i + 1), String(l.pid), l.function, l.location, String(l.calls),
                    formatRate(l.calls, ns: l.wallNs), percent(l.kernelNs, of: l.wallNs), String(l.threads.count), mix]
        }
        out += table(header: ["#", "pid", "function", "loop at", "calls", "calls/s", "kernel", "threads", "syscall mix"],
                     rows: rows, rightAligned: 2, indent: "  ")
        out += "\n  per loop: time inside calls (kernel) and between them (user), and what acceleration could save\n"
        for (i, l) in report.hot.prefix(top).enumerated() {
            out += "  #\(i + 1) \(l.function) at \(l.location): kernel \(formatSeconds(l.kernelNs)), user \(formatSeconds(l.userNs))\n"
            var executable: UInt64 = 0
            var kinds = Set<String>()
            var inlineServable = 0
            for site in l.sites {
                if site.inline && Acceleration.userSpaceExecutable[site.syscall] != nil {
                    inlineServable += 1 // no wrapper call to route: needs an instrumented copy
                } else if let kind = Acceleration.userSpaceExecutable[site.syscall] {
                    let siteKernel = l.calls == 0 ? 0
                        : UInt64(saturating: Double(l.kernelNs) * Double(site.calls) / Double(l.calls))
                    executable.addSaturated(siteKernel)
                    kinds.insert(kind)
                }
            }
            if executable > 0 {
                out += "     user-space executors (\(kinds.sorted().joined(separator: ", "))): up to \(formatSeconds(executable)) "
                out += "(\(percent(executable, of: l.wallNs)) of the loop), estimate\n"
            } else {
                out += "     user-space executors: nothing to serve (no identity, vDSO, signal-mask or lseek calls)\n"
            }
            if inlineServable > 0 {
                out += "     \(inlineServable) executor-servable site\(inlineServable == 1 ? " is a syscall instruction" : "s are syscall instructions") "
                out += "(not routable through libc's wrappers; not counted above)\n"
            }
            if let projection {
                let (saved, speedup) = projection.apply(to: l)
                out += "     privbox kernel (PROJECTION, \(fmt1(projection.kernelEntryNs)) ns kernel entry per call): "
                out += "saves \(formatSeconds(saved)), \(fmt2(speedup))x faster loop\n"
            }
            for site in l.sites.prefix(4) {
                let at = site.file.map { "\($0):\(site.line ?? 0)" } ?? profile.processes.first { $0.pid == l.pid }
                    .map { $0.siteName(module: site.module, offset: site.offset) } ?? ""
                out += "     \(site.syscall) x\(site.calls) \(site.inline ? "by a syscall instruction in" : "from") "
                    + "\(site.function ?? "?") at \(at)\n"
            }
        }
        return out
    }

    static func fmt1(_ v: Double) -> String { String((v * 10).rounded() / 10) }
    static func fmt2(_ v: Double) -> String { String((v * 100).rounded() / 100) }
}
