// CachePathTests: where privbox's cache lives has one owner (pb_cache_path, Sources/CShim/cache_path.c),
// used by the preload and by `privbox doctor --calibrate` alike. Before, the CLI had its own rule
// and fell back to /tmp/.cache/privbox when HOME was not absolute, where the preload (which gives
// up then) never looked: doctor wrote a calibration no run would read, in a directory any user of
// the machine could have made first.
import Foundation
import XCTest

final class CachePathTests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    /// Every path under `root` with its inode and modification time: what a write there changes.
    func tree(_ root: String) -> [String: String] {
        var out: [String: String] = [:]
        func note(_ path: String) {
            var st = stat()
            guard lstat(path, &st) == 0 else { return }
            out[path] = "\(st.st_ino) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        }
        note(root)
        for leaf in (try? FileManager.default.subpathsOfDirectory(atPath: root)) ?? [] {
            note(root + "/" + leaf)
        }
        return out
    }

    func testWithoutAnAbsoluteCacheDirectoryDoctorCachesNothingAndSaysWhy() throws {
        let s = try Scratch()
        var env = Runner.cleanEnvironment
        env["HOME"] = "relative/home"
        env.removeValue(forKey: "XDG_CACHE_HOME")
        let before = tree("/tmp/.cache")
        let r = try Runner.run([Paths.cli, "doctor", "--calibrate"], environment: env, cwd: s.path("."), timeout: 60)
        XCTAssertEqual(tree("/tmp/.cache"), before, "doctor --calibrate wrote under /tmp/.cache:\n\(r.stdout)\(r.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.path("relative")),
                       "doctor --calibrate wrote under the relative HOME")
        XCTAssertNotEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("executor        served ns"), "the table is still printed:\n\(r.stdout)")
        XCTAssertFalse(r.stdout.contains("cached in"), r.stdout)
        XCTAssertEqual(r.stderrLines, ["privbox: the calibration cannot be cached: neither XDG_CACHE_HOME nor HOME is an absolute path"],
                       r.stderr)
    }

    func testTheCalibrationDoctorWritesIsTheOneThePreloadReads() throws {
        let s = try Scratch()
        let file = s.path("cache/privbox/calibration")
        var env = Runner.cleanEnvironment
        env["XDG_CACHE_HOME"] = s.path("cache")
        let doctor = try Runner.run([Paths.cli, "doctor", "--calibrate"], environment: env, timeout: 60)
        XCTAssertEqual(doctor.status, 0, doctor.stderr)
        XCTAssertTrue(doctor.stdout.contains("cached in \(file)\n"), doctor.stdout)
        // Auto mode reads the calibration in the constructor (routes.c), and says so at debug level.
        let run = try Runner.run(["/bin/true"], environment: Runner.environment(.auto, extra: [
            "XDG_CACHE_HOME": s.path("cache"), "PRIVBOX_LOG": "debug",
        ]), timeout: 20)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("privbox: calibration read from \(file)\n"), run.stderr)
    }
}
