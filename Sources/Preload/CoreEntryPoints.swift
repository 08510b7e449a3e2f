// The Swift half of the preload (libprivbox_core.so). libprivbox.so dlopen()s it only when a mode
// needs it — to write the profile at exit, or to check a profile before accelerating — and calls
// these C entry points. Nothing here runs on a syscall path or in a signal handler.
import CShim
import Profiler

#if canImport(Glibc)
import Glibc
#endif

/// Converts the C snapshot of the per-thread site tables into a profile and writes it atomically.
@_cdecl("privbox_core_write_profile")
public func privboxCoreWriteProfile(_ snapshot: UnsafePointer<pb_snapshot>?,
                                    _ err: UnsafeMutablePointer<CChar>?, _ errlen: Int) -> Int32 {
    guard let s = snapshot?.pointee, s.abi == PB_SNAPSHOT_ABI else {
        report("profile snapshot has an unknown layout (mismatched libprivbox.so and libprivbox_core.so)", err, errlen)
        return -1
    }
    let process = processProfile(from: s)
    let path = String(cString: s.profile_path)
    do {
        try ProfileIO.write(Profile(processes: [process]), to: path)
        return 0
    } catch {
        report("\(error)", err, errlen)
        return -1
    }
}

/// Checks that the profile at `path` is readable, valid and recorded for this build of `exe`.
@_cdecl("privbox_core_check_profile")
public func privboxCoreCheckProfile(_ path: UnsafePointer<CChar>?, _ exe: UnsafePointer<CChar>?,
                                    _ buildID: UnsafePointer<UInt8>?, _ buildIDLen: Int,
                                    _ err: UnsafeMutablePointer<CChar>?, _ errlen: Int) -> Int32 {
    guard let path, let exe else { return -1 }
    let pathString = String(cString: path)
    let exeString = String(cString: exe)
    let id = buildID.map { hex(UnsafeBufferPointer(start: $0, count: buildIDLen)) } ?? ""
    do {
        let profile = try ProfileIO.read(path: pathString)
        switch ProfileMatch.check(profile, exe: exeString, buildID: id) {
        case .matches: return 1
        case .nothingForProgram: return 0
        case let .otherBuild(recorded):
            report("profile \(pathString) was recorded for another build of \(exeString) "
                   + "(build-id \(recorded.isEmpty ? "none" : recorded), running \(id.isEmpty ? "none" : id))",
                   err, errlen)
            return -1
        }
    } catch {
        report("\(error)", err, errlen)
        return -1
    }
}

func processProfile(from s: pb_snapshot) -> ProcessProfile {
    let modules = (0..<s.module_count).map { i -> ProfileModule in
        let m = s.modules[i]
        let id = withUnsafeBytes(of: m.build_id) { raw in
            hex(UnsafeBufferPointer(start: raw.bindMemory(to: UInt8.self).baseAddress, count: Int(m.build_id_len)))
        }
        return ProfileModule(path: String(cString: m.path), buildID: id)
    }
    let elapsedNs = s.end_ns > s.start_ns ? s.end_ns - s.start_ns : 0
    let elapsedCycles = s.end_cycles > s.start_cycles ? s.end_cycles - s.start_cycles : 0
    // TSC ticks per nanosecond over the profiled interval; the TSC is invariant on every CPU the
    // kernel marks constant_tsc/nonstop_tsc, which `privbox doctor` reports.
    let cyclesPerNs = elapsedNs > 0 && elapsedCycles > 0 ? Double(elapsedCycles) / Double(elapsedNs) : 1
    func ns(_ cycles: UInt64) -> UInt64 { UInt64((Double(cycles) / cyclesPerNs).rounded()) }
    let sites = (0..<s.site_count).map { i -> ProfileSite in
        let r = s.sites[i]
        let nr = Int(r.syscall_nr)
        let name = nr < x86_64SyscallNames.count && !x86_64SyscallNames[nr].isEmpty
            ? x86_64SyscallNames[nr] : "syscall_\(nr)"
        return ProfileSite(module: Int(r.module), offset: r.module >= 0 ? r.offset : r.address,
                           syscall: name, number: nr, thread: Int(r.thread), calls: r.calls,
                           errors: r.errors, kernelNs: ns(r.kernel_cycles), userNs: ns(r.user_cycles))
    }
    return ProcessProfile(pid: Int(s.pid), ppid: Int(s.ppid), exe: String(cString: s.exe),
                          wallNs: elapsedNs, threads: Int(s.threads), dropped: s.dropped,
                          modules: modules, sites: sites)
}

func hex(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

private func report(_ message: String, _ err: UnsafeMutablePointer<CChar>?, _ errlen: Int) {
    guard let err, errlen > 0 else { return }
    let bytes = Array(message.utf8.prefix(errlen - 1))
    for (i, b) in bytes.enumerated() { err[i] = CChar(bitPattern: b) }
    err[bytes.count] = 0
}
