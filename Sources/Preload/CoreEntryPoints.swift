// The Swift half of the preload (libprivbox_core.so). libprivbox.so dlopen()s it only in
// accelerate mode, before the program's main() runs, to check the profile and compute the executor
// plan (then cached on disk, see Sources/CShim/preload/plan_cache.c), and only when neither the
// cache nor a quick scan of the profile settles it. Nothing here runs on a syscall path or in a
// signal handler. (Profiles are written by C at exit, see Sources/CShim/preload/profile_writer.c
// for why.)
import CShim
import Profiler

#if canImport(Glibc)
import Glibc
#endif

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
            return -2
        }
    } catch {
        report("\(error)", err, errlen)
        return -1
    }
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

/// The executor plan (see `ExecutorPlan`), copied into the preload's arrays. Returns as
/// `privbox_core_check_profile`, 1 meaning the plan was filled (possibly with no site).
@_cdecl("privbox_core_plan")
public func privboxCorePlan(_ path: UnsafePointer<CChar>?, _ exe: UnsafePointer<CChar>?,
                            _ buildID: UnsafePointer<UInt8>?, _ buildIDLen: Int,
                            _ modules: UnsafeMutablePointer<pb_plan_module>?, _ moduleCap: Int,
                            _ moduleCount: UnsafeMutablePointer<Int>?,
                            _ sites: UnsafeMutablePointer<pb_plan_site>?, _ siteCap: Int,
                            _ siteCount: UnsafeMutablePointer<Int>?,
                            _ err: UnsafeMutablePointer<CChar>?, _ errlen: Int) -> Int32 {
    let checked = privboxCoreCheckProfile(path, exe, buildID, buildIDLen, err, errlen)
    guard checked == 1, let path, let exe, let modules, let sites, let moduleCount, let siteCount else {
        return checked
    }
    let id = buildID.map { hex(UnsafeBufferPointer(start: $0, count: buildIDLen)) } ?? ""
    guard let profile = try? ProfileIO.read(path: String(cString: path)) else { return -1 }
    var moduleIndex: [String: Int] = [:]
    var nModules = 0, nSites = 0
    for (site, calls) in ExecutorPlan.weightedSites(profile, exe: String(cString: exe), buildID: id) {
        guard nSites < siteCap else { break }
        let key = site.modulePath + "\u{0}" + site.buildID
        var index = moduleIndex[key]
        if index == nil {
            guard nModules < moduleCap else { continue }
            let pathBytes = Array(site.modulePath.utf8), idBytes = Array(site.buildID.utf8)
            guard pathBytes.count < Int(PB_PATH_MAX), idBytes.count < 81 else { continue }
            withUnsafeMutableBytes(of: &modules[nModules].path) { raw in
                raw.copyBytes(from: pathBytes)
                raw[pathBytes.count] = 0
            }
            withUnsafeMutableBytes(of: &modules[nModules].build_id) { raw in
                raw.copyBytes(from: idBytes)
                raw[idBytes.count] = 0
            }
            index = nModules
            moduleIndex[key] = nModules
            nModules += 1
        }
        var entry = pb_plan_site()
        entry.offset = site.offset
        entry.module = UInt32(index!)
        entry.syscall_nr = UInt32(site.syscallNumber)
        entry.is_inline = site.inline ? 1 : 0
        entry.calls = calls
        if site.functionSize > 0 && site.functionSize <= UInt64(UInt32.max) {
            entry.function_offset = site.functionStart
            entry.function_size = UInt32(site.functionSize)
        }
        // The name goes into a one-word field of the plan cache's text lines.
        let name = Array(site.function.utf8.map { $0 <= 0x20 || $0 == 0x7f ? UInt8(ascii: "_") : $0 }
            .prefix(Int(PB_PLAN_FUNCTION_MAX) - 1))
        withUnsafeMutableBytes(of: &entry.function) { raw in
            raw.copyBytes(from: name)
            raw[name.count] = 0
        }
        sites[nSites] = entry
        nSites += 1
    }
    moduleCount.pointee = nModules
    siteCount.pointee = nSites
    return 1
}
