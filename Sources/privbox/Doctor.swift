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

    func run() throws {
        let findings = Doctor.examine()
        if json {
            print(JSONWriter.write(.object(findings.map { ($0.key, .string($0.value)) })), terminator: "")
        } else {
            let width = findings.map(\.key.count).max() ?? 0
            for f in findings {
                print(f.key + String(repeating: " ", count: width - f.key.count) + "  " + f.value)
            }
        }
    }
}

enum Doctor {
    static func examine() -> [(key: String, value: String)] {
        var out: [(String, String)] = []
        out.append(("privbox", "\(privboxVersion)"))
        out.append(("preload", preloadStatus()))
        var u = utsname()
        uname(&u)
        out.append(("kernel", "\(field(u.sysname)) \(field(u.release)) \(field(u.machine))"))
        let cpuinfo = readText("/proc/cpuinfo") ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmed } ?? "unknown"
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?
            .split(separator: " ").map(String.init) ?? [])
        let tsc = ["constant_tsc", "nonstop_tsc", "tsc_known_freq"].filter { flags.contains($0) }
        out.append(("cpu", "\(model), \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) online, tsc: "
                    + (tsc.isEmpty ? "not invariant (profile times are approximate)" : tsc.joined(separator: " "))))
        out.append(("mitigations", mitigations()))
        var vdso = [CChar](repeating: 0, count: 4096)
        let names = pb_vdso_symbols(&vdso, vdso.count) == 0 ? String(cString: vdso) : "unreadable"
        out.append(("vdso", names.isEmpty ? "none" : names))
        out.append(("vdso getrandom", names.contains("getrandom") ? "yes" : "no (kernel before 6.11)"))
        out.append(("syscall user dispatch", availability(pb_probe_syscall_user_dispatch())))
        out.append(("rseq", availability(pb_probe_rseq())))
        var uring = availability(pb_probe_io_uring())
        if let disabled = readText("/proc/sys/kernel/io_uring_disabled")?.trimmed {
            uring += " (io_uring_disabled=\(disabled))"
        }
        out.append(("io_uring", uring))
        let (syscallNs, callNs) = measureCalls()
        out.append(("raw syscall", "\(fmt(syscallNs)) ns (getppid via the syscall instruction, median of 64 batches)"))
        out.append(("function call", "\(fmt(callNs)) ns"))
        out.append(("kernel entry", "\(fmt(max(0, syscallNs - callNs))) ns per call (raw syscall minus function call)"))
        return out
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

    static func fmt(_ v: Double) -> String { String((v * 10).rounded() / 10) }

    static func field<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }
}

func readText(_ path: String) -> String? {
    // /proc and /sys files are regular files of size 0: readFile reads them to EOF all the same.
    (try? ProfileIO.readFile(path: path, limit: 1 << 20)).map { String(decoding: $0, as: UTF8.self) }
}

extension StringProtocol {
    var trimmed: String {
        String(self.drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" })
            .reversed().drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" }).reversed())
    }
}
