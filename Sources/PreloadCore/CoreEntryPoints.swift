// The Swift half of the preload (libprivbox_core.so). libprivbox.so dlopen()s it only in
// accelerate mode, before the program's main() runs, for two things: to check the profile and
// compute the executor plan (then cached on disk, see Sources/Preload/accelerate/plan_cache.c) when the
// preload's quick scan finds an entry for the program and the cache has no plan for it; and to
// validate, once per version of the profile, a profile whose quick scan finds no entry for the
// program, so that a corrupt profile is reported even by a process it does not mention
// (pb_check_unmentioned_profile in Sources/Preload/runtime.c). Nothing here runs on a
// syscall path or in a signal handler. (Profiles are written by C at exit, see
// Sources/Preload/profile/writer.c for why.)
//
// The profile is read here by path, after the preload checked it and closed its descriptor, so
// the core checks it again with the same rule (ProfileIO.readTrusted: a regular file of this user
// or root that nobody else can write): what is at the path may have changed since, or been
// created since when the preload found nothing there, and whoever can write the profile decides
// which system calls are served without the kernel. Each entry point reads the file once.
import CShim
import Profiler

#if canImport(Glibc)
import Glibc
#endif

/// Checks that the profile at `path` is trusted, readable, valid and recorded for this build of
/// `exe`: 1 if it is (with the profile read), 0 if it records nothing for `exe`, -2 if it records
/// another build of it, -1 if it cannot be used; `err` says why for negative results.
private func checkedProfile(_ path: String, exe: String, buildID id: String,
                            _ err: UnsafeMutablePointer<CChar>?, _ errlen: Int) -> (Int32, Profile?) {
    do {
        let profile = try ProfileIO.readTrusted(path: path)
        switch ProfileMatch.check(profile, exe: exe, buildID: id) {
        case .matches: return (1, profile)
        case .nothingForProgram: return (0, nil)
        case let .otherBuild(recorded):
            report("profile \(path) was recorded for another build of \(exe) "
                   + "(build-id \(recorded.isEmpty ? "none" : recorded), running \(id.isEmpty ? "none" : id))",
                   err, errlen)
            return (-2, nil)
        }
    } catch {
        report("\(error)", err, errlen)
        return (-1, nil)
    }
}

/// Checks that the profile at `path` is trusted, readable, valid and recorded for this build of
/// `exe` (see `checkedProfile` for the results).
@_cdecl("privbox_core_check_profile")
public func privboxCoreCheckProfile(_ path: UnsafePointer<CChar>?, _ exe: UnsafePointer<CChar>?,
                                    _ buildID: UnsafePointer<UInt8>?, _ buildIDLen: Int,
                                    _ err: UnsafeMutablePointer<CChar>?, _ errlen: Int) -> Int32 {
    guard let path, let exe else { return -1 }
    let id = buildID.map { hex(UnsafeBufferPointer(start: $0, count: buildIDLen)) } ?? ""
    return checkedProfile(String(cString: path), exe: String(cString: exe), buildID: id, err, errlen).0
}

/// Lower-case hex of the bytes: pb_hex_encode (Sources/CShim/hex.c), the encoder the preload
/// writes build-ids with, so that both sides spell them alike.
func hex(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
    var out = [CChar](repeating: 0, count: bytes.count * 2 + 1)
    if let base = bytes.baseAddress { pb_hex_encode(base, bytes.count, &out) }
    return String(cString: out)
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
    guard let path, let exe, let modules, let sites, let moduleCount, let siteCount else { return -1 }
    let id = buildID.map { hex(UnsafeBufferPointer(start: $0, count: buildIDLen)) } ?? ""
    // One read: the plan is computed from the very profile that was checked.
    let (checked, read) = checkedProfile(String(cString: path), exe: String(cString: exe), buildID: id, err, errlen)
    guard checked == 1, let profile = read else { return checked }
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
