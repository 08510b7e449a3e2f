import ArgumentParser
import CShim
import Profiler

#if canImport(Glibc)
import Glibc
#endif

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Report what this machine offers privbox, and measure a raw system call.",
        discussion: """
        Kernel, CPU and mitigations; vDSO functions; Syscall User Dispatch, rseq and io_uring; and
        the measured round trip of an empty system call (getppid through the syscall instruction)
        against a plain function call. Their difference is the kernel-entry cost that a
        semi-privileged privbox kernel would remove from each call.
        """
    )

    @Flag(help: "Print the findings as JSON.")
    var json = false

    @Flag(help: """
        Measure every executor against the system call it replaces on this machine and cache the \
        result (~/.cache/privbox/calibration); accelerate mode leaves off any executor that loses.
        """)
    var calibrate = false

    func run() throws {
        if calibrate {
            try reportingErrors { try Calibration.run() }
            return
        }
        let findings = Doctor.examine()
        if json {
            print(JSONWriter.write(.object(findings.map { ($0.key, $0.json) })), terminator: "")
        } else {
            let width = findings.map(\.key.count).max() ?? 0
            for f in findings {
                print(f.key + String(repeating: " ", count: width - f.key.count) + "  " + f.value)
            }
        }
    }
}

/// One line of `privbox doctor`: the text printed after the key, and the JSON value of `--json`
/// (the same text, except for measurements, which are numbers with their unit and method so that
/// a script need not parse prose).
struct Finding {
    let key: String
    let value: String
    let json: JSON

    init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
        json = .string(value)
    }

    init(_ key: String, ns: Double, method: String, text: String) {
        self.key = key
        value = text
        json = .object([("ns", .double(Doctor.rounded(ns))), ("method", .string(method))])
    }
}

enum Doctor {
    static func examine() -> [Finding] {
        var out: [Finding] = []
        out.append(Finding("privbox", "\(privboxVersion)"))
        out.append(Finding("preload", preloadStatus()))
        var u = utsname()
        uname(&u)
        out.append(Finding("kernel", "\(field(u.sysname)) \(field(u.release)) \(field(u.machine))"))
        let cpuinfo = readText("/proc/cpuinfo") ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmed } ?? "unknown"
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?
            .split(separator: " ").map(String.init) ?? [])
        let tsc = ["constant_tsc", "nonstop_tsc", "tsc_known_freq"].filter { flags.contains($0) }
        out.append(Finding("cpu", "\(model), \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) online, tsc: "
                    + (tsc.isEmpty ? "not invariant (profile times are approximate)" : tsc.joined(separator: " "))))
        out.append(Finding("mitigations", mitigations()))
        var vdso = [CChar](repeating: 0, count: 4096)
        let names = pb_vdso_symbols(&vdso, vdso.count) == 0 ? String(cString: vdso) : "unreadable"
        out.append(Finding("vdso", names.isEmpty ? "none" : names))
        out.append(Finding("vdso getrandom", names.contains("getrandom") ? "yes" : "no (kernel before 6.11)"))
        out.append(Finding("syscall user dispatch", availability(pb_probe_syscall_user_dispatch())
                    + (pb_probe_syscall_user_dispatch() == 0 ? " (used by privbox profile --inline)" : "")))
        out.append(Finding("rseq", availability(pb_probe_rseq())))
        // What accelerate mode's instrumented copies need (Sources/Preload/rewriter/).
        var missing: [String] = []
        for lib in ["libcapstone.so.4", "libgcc_s.so.1"] {
            if let h = dlopen(lib, RTLD_NOW | RTLD_LOCAL) { dlclose(h) } else { missing.append(lib) }
        }
        if !flags.contains("lahf_lm") { missing.append("lahf/sahf in 64-bit mode (cpu flag lahf_lm)") }
        out.append(Finding("instrumented copies", missing.isEmpty ? "yes (capstone, libgcc_s's unwinder, lahf/sahf)"
                    : "no: missing " + missing.joined(separator: ", ")))
        out.append(Finding("privbox kernel gate", gateLine()))
        var uring = availability(pb_probe_io_uring())
        if let disabled = readText("/proc/sys/kernel/io_uring_disabled")?.trimmed {
            uring += " (io_uring_disabled=\(disabled))"
        }
        out.append(Finding("io_uring", uring))
        let (syscallNs, callNs) = measureCalls()
        let syscallMethod = "getppid via the syscall instruction, median of 64 batches"
        out.append(Finding("raw syscall", ns: syscallNs, method: syscallMethod,
                           text: "\(fmt(syscallNs)) ns (\(syscallMethod))"))
        out.append(Finding("function call", ns: callNs, method: "an empty function call, median of 64 batches",
                           text: "\(fmt(callNs)) ns"))
        let entryMethod = "raw syscall minus function call"
        let entry = max(0, syscallNs - callNs)
        out.append(Finding("kernel entry", ns: entry, method: entryMethod, text: "\(fmt(entry)) ns per call (\(entryMethod))"))
        return out
    }

    /// The semi-privileged path (kernel/): whether this kernel has the gate, and whether accelerate
    /// mode can box copies here.
    static func gateLine() -> String {
        var info = pb_privbox_info()
        guard pb_probe_privbox_gate(&info) == 0 else {
            return "no (a stock kernel; kernel/patches adds it)"
        }
        let version = info.version, gate = info.gate
        guard info.flags & PB_PRIVBOX_F_AVAILABLE != 0 else {
            return "present (v\(version)) but off (needs SMEP, and PTI or privbox=noisolation)"
        }
        let isolation = info.flags & PB_PRIVBOX_F_ISOLATED != 0 ? "isolated by page tables" : "NOT isolated (privbox=noisolation)"
        guard gate != 0 else {
            return "v\(version), \(isolation); registering regions needs CAP_SYS_ADMIN, so copies run in user mode here"
        }
        return "v\(version), \(isolation), gate at 0x\(String(gate, radix: 16)); with PRIVBOX_GATE=on "
            + "accelerate mode runs copies with syscall instructions in boxes (off by default: not measured faster)"
    }

    /// ns per raw empty syscall and per function call, measured now (about 60 ms).
    static func measureCalls() -> (syscall: Double, call: Double) {
        let cyclesPerNs = pb_measure_cycles_per_ns(50)
        let syscallNs = pb_measure_raw_syscall_cycles(64, 2000) / cyclesPerNs
        let callNs = pb_measure_function_call_cycles(64, 20000) / cyclesPerNs
        return (syscallNs, callNs)
    }

    /// The kernel-entry cost a privbox kernel would remove from each call.
    static func kernelEntryNs() -> Double {
        let (syscall, call) = measureCalls()
        return max(0, syscall - call)
    }

    static func preloadStatus() -> String {
        let lib = Installation.preloadLibrary
        guard access(lib, R_OK) == 0 else { return "missing: \(lib) (run scripts/build)" }
        guard access(Installation.coreLibrary, R_OK) == 0 else {
            return "missing: \(Installation.coreLibrary) (run scripts/build)"
        }
        // The preload must load into a plain program and stay silent in mode off.
        let env = Environment.withPreload(lib, settings: ["PRIVBOX_MODE": "off"])
        let status = (try? Launcher.spawnAndWait(["/bin/true"], environment: env)) ?? -1
        return status == 0 ? "\(lib) (loads into /bin/true: yes)" : "\(lib) (FAILS to load into /bin/true)"
    }

    static func mitigations() -> String {
        let dir = "/sys/devices/system/cpu/vulnerabilities"
        guard let d = opendir(dir) else { return "unknown" }
        defer { closedir(d) }
        var found: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard !name.hasPrefix("."), let state = readText("\(dir)/\(name)")?.trimmed else { continue }
            if state != "Not affected" { found.append("\(name): \(state)") }
        }
        return found.isEmpty ? "none needed" : found.sorted().joined(separator: "; ")
    }

    static func availability(_ err: Int32) -> String {
        err == 0 ? "available" : "unavailable (\(String(cString: strerror(err))))"
    }

    static func rounded(_ v: Double) -> Double { (v * 10).rounded() / 10 }
    static func fmt(_ v: Double) -> String { String(rounded(v)) }

    static func field<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }
}

func readText(_ path: String) -> String? {
    // /proc and /sys files are regular files of size 0: readFile reads them to EOF all the same,
    // and refuses anything that is not a regular file (nothing here may block on a FIFO).
    (try? ProfileIO.readFile(path: path, limit: 1 << 20, what: "file")).map { String(decoding: $0, as: UTF8.self) }
}

extension StringProtocol {
    var trimmed: String {
        String(self.drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" })
            .reversed().drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" }).reversed())
    }
}

/// `privbox doctor --calibrate`: libprivbox.so measures its executors (privbox_calibrate) in this
/// process; the result is printed and cached where the preload reads it (accelerate/calibration.c), keyed by the
/// kernel and CPU it was measured on.
enum Calibration {
    /// Where the preload reads it: pb_cache_path (Sources/CShim/cache_path.c), the one rule for
    /// both (only an absolute XDG_CACHE_HOME or HOME counts); nil when there is no cache directory.
    static var cachePath: String? {
        var path = [CChar](repeating: 0, count: Int(PB_PATH_MAX))
        guard pb_cache_path("calibration", &path, path.count) == 0 else { return nil }
        return String(cString: path)
    }

    static func run() throws {
        let lib = Installation.preloadLibrary
        guard let handle = dlopen(lib, RTLD_NOW | RTLD_LOCAL) else {
            throw CLIError("cannot load \(lib): \(String(cString: dlerror()))")
        }
        guard let sym = dlsym(handle, "privbox_calibrate") else {
            throw CLIError("\(lib) has no privbox_calibrate: mismatched installation")
        }
        typealias Fn = @convention(c) (UnsafeMutablePointer<CChar>, Int) -> Int32
        let calibrate = unsafeBitCast(sym, to: Fn.self)
        var buffer = [CChar](repeating: 0, count: 8192)
        guard calibrate(&buffer, buffer.count) == 0 else { throw CLIError("calibration output too long") }
        let text = String(cString: buffer)
        let cyclesPerNs = pb_measure_cycles_per_ns(50)
        let lines = text.split(separator: "\n").map(String.init)
        guard !lines.isEmpty else { throw CLIError("calibration produced nothing") }
        print("machine         \(lines[0])")
        print("executor        served ns  native ns  speed-up  verdict")
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        for line in lines.dropFirst() {
            if line.hasPrefix("#") { print(String(line.dropFirst(2))); continue }
            let f = line.split(separator: " ")
            guard f.count == 3, let served = Double(f[1]), let native = Double(f[2]) else { continue }
            let verdict = served < native ? "on where profiled" : "off (slower than the syscall)"
            print(pad(String(f[0]), 16) + pad(Doctor.fmt(served / cyclesPerNs), 11)
                  + pad(Doctor.fmt(native / cyclesPerNs), 11)
                  + pad(Doctor.fmt(native / max(served, 0.01)) + "x", 10) + verdict)
        }
        // Directories that are missing are created 0700 (the preload trusts the calibration only
        // in directories nobody else can write; existing ones are left as they are). The file is
        // written like a profile: a private new file renamed over a missing path or a regular
        // file, and anything else there (a symbolic link above all) refused.
        guard let cachePath else {
            throw CLIError("the calibration cannot be cached: neither XDG_CACHE_HOME nor HOME is an absolute path")
        }
        let dir = String(cachePath.prefix(upTo: cachePath.lastIndex(of: "/")!))
        var prefix = ""
        for part in dir.split(separator: "/") {
            prefix += "/" + part
            mkdir(prefix, 0o700)
        }
        let kept = lines.filter { !$0.hasPrefix("#") }.joined(separator: "\n") + "\n"
        // The table printed above is still in stdout's buffer: flushed now, so that it cannot
        // follow the calibration file into descriptor 1 if the caller closed it.
        fflush(stdout)
        try ProfileIO.writeAtomically(Array(kept.utf8), to: cachePath, what: "calibration")
        print("cached in \(cachePath)")
    }
}
