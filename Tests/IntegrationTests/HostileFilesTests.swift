// Hostile files around the preload (issue 16, the preload's side of defects 1-3):
//  - what it writes (the profile in profile mode, its caches) only ever takes the place of a
//    missing path or a regular file: a device, FIFO, socket, directory or symbolic link at the
//    target is refused with one `privbox:` line and stays exactly as it was;
//  - nothing it reads can block (a FIFO where a file is expected is refused, it is never opened
//    for a blocking read);
//  - its caches and the calibration file are used only when they, and every directory from the
//    cache root down to them, belong to the user and nobody else can write them; the profile of
//    accelerate mode only when it is the user's (or root's) and nobody else can write it.
// Whatever is refused, the program's output and exit status are those of a native run.
import Foundation
import XCTest

final class HostileFilesTests: XCTestCase {
    override func setUpWithError() throws {
        try Paths.requireBuilt()
        guard getuid() == 0 else { throw XCTSkip("needs root, to give files to another uid") }
    }

    /// Runner.run with a short deadline: a run stuck in open() on a FIFO is killed and fails.
    func finite(_ args: [String], _ environment: [String: String], timeout: Double = 20) throws -> Result {
        try Runner.run(args, environment: environment, timeout: timeout)
    }

    func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        chmod(path, 0o700) // whatever the umask
    }

    func profile(_ args: [String], _ s: Scratch, inline: Bool = false) throws -> String {
        let out = s.path("profile.json")
        let r = try finite([Paths.cli, "profile"] + (inline ? ["--inline"] : []) + ["-o", out, "--"] + args,
                           Runner.cleanEnvironment, timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    /// privbox's lines on stderr (the runs that count them use the default level, warn).
    func privboxLines(_ r: Result) -> [String] { r.stderrLines.filter { $0.hasPrefix("privbox: ") } }

    // ---- defect 1: the profile writer replaces only a missing path or a regular file ---------------

    func testProfileModeReplacesOnlyAMissingPathOrARegularFile() throws {
        let s = try Scratch()
        let script = ["/usr/bin/python3", "-c", "import sys; print(1); sys.exit(3)"]
        let native = try finite(script, Runner.environment(.native))
        XCTAssertEqual(native.stdout, "1\n")
        XCTAssertEqual(native.status, 3)
        // A regular file at the path is replaced by the profile, silently.
        let regular = s.path("regular.json")
        try "old\n".write(toFile: regular, atomically: false, encoding: .utf8)
        let replaced = try finite(script, Runner.environment(.profile, profile: regular))
        XCTAssertEqual(replaced.stdout, native.stdout)
        XCTAssertEqual(replaced.status, native.status)
        XCTAssertEqual(replaced.stderr, "")
        XCTAssertTrue(try String(contentsOfFile: regular, encoding: .utf8).contains("privbox-profile/1"))

        let device = s.path("mynull")
        try makeCharDevice(device, major: 1, minor: 3)
        let fifo = s.path("fifo.json")
        makeFifo(fifo)
        let dir = s.path("dir.json")
        try makeDirectory(dir)
        let target = s.path("target.txt")
        try "precious\n".write(toFile: target, atomically: false, encoding: .utf8)
        let link = s.path("link.json")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        for (path, kind) in [(device, "a character device"), (fifo, "a FIFO"), (dir, "a directory"),
                             (link, "a symbolic link")] {
            let before = Node(path)
            XCTAssertNotNil(before)
            let r = try finite(script, Runner.environment(.profile, profile: path))
            XCTAssertEqual(r.stdout, native.stdout, kind)
            XCTAssertEqual(r.status, native.status, kind)
            XCTAssertEqual(r.stderrLines, ["privbox: cannot write profile \(path): it is \(kind); not replaced"], kind)
            XCTAssertEqual(Node(path), before, "\(kind) at the profile path was changed")
        }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "precious\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
        XCTAssertEqual(files(in: s, matching: ".tmp"), [], "a temporary file was left behind")
    }

    // ---- defects 2 and 3: the plan cache ------------------------------------------------------------

    /// A fresh cache root under `s` with the plan of `program` cached in it (checked: the second
    /// run reads it). Returns the XDG_CACHE_HOME to use and the plan file.
    func cachedPlan(_ program: [String], profile: String, _ s: Scratch, _ name: String) throws -> (String, String) {
        let xdg = s.path(name)
        try makeDirectory(xdg + "/privbox")
        let env = Runner.environment(.accelerate, profile: profile,
                                     extra: ["XDG_CACHE_HOME": xdg, "PRIVBOX_LOG": "debug"])
        let first = try finite(program, env)
        XCTAssertFalse(first.stderr.contains("plan read from"), first.stderr)
        let plans = try FileManager.default.contentsOfDirectory(atPath: xdg + "/privbox/plans")
        XCTAssertEqual(plans.count, 1, "\(plans)")
        let plan = xdg + "/privbox/plans/" + (plans.first ?? "none")
        let second = try finite(program, env)
        XCTAssertTrue(second.stderr.contains("plan read from \(plan)"), "the plan is not cached:\n\(second.stderr)")
        return (xdg, plan)
    }

    func testThePlanCacheIsUsedOnlyWhenOnlyTheUserCanHaveWrittenIt() throws {
        let program = [try Programs.path("exactness"), "identity-fork"]
        let s = try Scratch()
        let native = try finite(program, Runner.environment(.native))
        XCTAssertEqual(native.status, 0, native.stderr)
        let profile = try self.profile(program, s)
        let cases: [(String, (String, String) throws -> String)] = [
            ("owner", { _, plan in chown(plan, 65534, 65534); return "owned by uid 65534" }),
            ("mode", { _, plan in chmod(plan, 0o666); return "writable by group or others (mode 0666)" }),
            ("group-writable-dir", { xdg, _ in
                chmod(xdg + "/privbox/plans", 0o770)
                return "directory \(xdg)/privbox/plans is writable by group or others (mode 0770)" }),
            ("others-writable-root", { xdg, _ in
                chmod(xdg + "/privbox", 0o707)
                return "directory \(xdg)/privbox is writable by group or others (mode 0707)" }),
            ("dir-owner", { xdg, _ in
                chown(xdg + "/privbox/plans", 65534, 65534)
                return "directory \(xdg)/privbox/plans is owned by uid 65534" }),
            ("symlinked-dir", { xdg, _ in
                try FileManager.default.moveItem(atPath: xdg + "/privbox/plans", toPath: xdg + "/elsewhere")
                try FileManager.default.createSymbolicLink(atPath: xdg + "/privbox/plans", withDestinationPath: xdg + "/elsewhere")
                return "directory \(xdg)/privbox/plans is a symbolic link" }),
            ("fifo", { _, plan in
                unlink(plan)
                makeFifo(plan)
                return "it is a FIFO" }),
        ]
        for (name, spoil) in cases {
            let (xdg, plan) = try cachedPlan(program, profile: profile, s, name)
            let why = try spoil(xdg, plan)
            let before = Node(plan)
            func run(_ log: String) throws -> Result {
                let r = try finite(program, Runner.environment(.accelerate, profile: profile,
                                                               extra: ["XDG_CACHE_HOME": xdg, "PRIVBOX_LOG": log]))
                XCTAssertEqual(r.stdout, native.stdout, name)
                XCTAssertEqual(r.status, native.status, name)
                return r
            }
            let line = "privbox: ignoring cache \(plan): \(why)"
            let refused = try run("debug")
            XCTAssertEqual(refused.stderrLines.filter { $0.contains("ignoring cache") }, [line], name)
            XCTAssertFalse(refused.stderr.contains("plan read from"), "\(name): a refused plan was used\n\(refused.stderr)")
            let next = try run("debug")
            if name == "owner" || name == "mode" {
                // In a directory that is the user's, the refused file was replaced by this run's
                // plan, which is the user's and mode 0600: the next run reads it.
                XCTAssertTrue(next.stderr.contains("plan read from \(plan)"), "\(name):\n\(next.stderr)")
                XCTAssertEqual(Node(plan)?.uid, 0, name)
                XCTAssertEqual((Node(plan)?.mode ?? 0) & 0o7777, 0o600, name)
            } else {
                // Nothing was (or may be) written in its place: refused again, with one line.
                XCTAssertFalse(next.stderr.contains("plan read from"), "\(name): a refused plan was used\n\(next.stderr)")
                XCTAssertEqual(privboxLines(try run("warn")), [line], name)
            }
            if name == "fifo" {
                XCTAssertEqual(Node(plan), before, "the FIFO was replaced")
            }
        }
    }

    // ---- defects 2 and 3: the copies cache ----------------------------------------------------------

    func testTheCopiesCacheIsUsedOnlyWhenOnlyTheUserCanHaveWrittenIt() throws {
        let program = [try Programs.path("copies"), "inline", "300"]
        let s = try Scratch()
        let native = try finite(program, Runner.environment(.native))
        XCTAssertEqual(native.status, 0, native.stderr)
        let profile = try self.profile(program, s, inline: true)
        func env(_ xdg: String, _ log: String) -> [String: String] {
            Runner.environment(.accelerate, profile: profile,
                               extra: ["XDG_CACHE_HOME": xdg, "PRIVBOX_LOG": log, "PRIVBOX_COPY": "always"])
        }
        let cases: [(String, (String, [String]) throws -> (String) -> String)] = [
            ("owner", { _, copies in
                for c in copies { chown(c, 65534, 65534) }
                return { _ in "owned by uid 65534" } }),
            ("mode", { _, copies in
                for c in copies { chmod(c, 0o666) }
                return { _ in "writable by group or others (mode 0666)" } }),
            ("fifo", { _, copies in
                for c in copies { unlink(c); makeFifo(c) }
                return { _ in "it is a FIFO" } }),
            ("group-writable-dir", { xdg, _ in
                chmod(xdg + "/privbox/copies", 0o770)
                return { _ in "directory \(xdg)/privbox/copies is writable by group or others (mode 0770)" } }),
            ("symlinked-dir", { xdg, _ in
                try FileManager.default.moveItem(atPath: xdg + "/privbox/copies", toPath: xdg + "/elsewhere")
                try FileManager.default.createSymbolicLink(atPath: xdg + "/privbox/copies", withDestinationPath: xdg + "/elsewhere")
                return { _ in "directory \(xdg)/privbox/copies is a symbolic link" } }),
        ]
        for (name, spoil) in cases {
            let xdg = s.path(name)
            try makeDirectory(xdg + "/privbox")
            let first = try finite(program, env(xdg, "debug"))
            XCTAssertEqual(first.stdout, native.stdout, name)
            let dir = xdg + "/privbox/copies"
            let copies = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".copy") }
                .sorted().map { dir + "/" + $0 }
            XCTAssertEqual(copies.count, 2, "\(name): \(copies)")
            let cached = try finite(program, env(xdg, "debug"))
            XCTAssertTrue(cached.stderr.contains("decoded before, read from"), "\(name): not cached\n\(cached.stderr)")
            let why = try spoil(xdg, copies)
            let lines = copies.map { "privbox: ignoring cache \($0): \(why($0))" }
            let refused = try finite(program, env(xdg, "debug"))
            XCTAssertEqual(refused.stdout, native.stdout, name)
            XCTAssertEqual(refused.status, native.status, name)
            XCTAssertEqual(refused.stderrLines.filter { $0.contains("ignoring cache") }.sorted(), lines, name)
            XCTAssertFalse(refused.stderr.contains("decoded before, read from"), "\(name): a refused copy was used\n\(refused.stderr)")
            let next = try finite(program, env(xdg, "warn"))
            XCTAssertEqual(next.stdout, native.stdout, name)
            XCTAssertEqual(next.status, native.status, name)
            if name == "owner" || name == "mode" {
                XCTAssertEqual(privboxLines(next), [], "\(name): the refused files were not replaced")
            } else {
                XCTAssertEqual(privboxLines(next).sorted(), lines, name)
            }
        }
    }

    // ---- defects 2 and 3: the calibration file ------------------------------------------------------

    /// The first line of a calibration file for this machine (pb_calibration_machine, routes.c).
    func machineLine() throws -> String {
        let release = try finite(["/usr/bin/uname", "-r"], Runner.cleanEnvironment).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let machine = try finite(["/usr/bin/uname", "-m"], Runner.cleanEnvironment).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var cpu = "unknown CPU"
        if let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            cpu = String(line[line.index(colon, offsetBy: 2)...])
        }
        return "privbox-calibration/1 \(release) \(machine) | \(cpu)"
    }

    func testTheCalibrationIsUsedOnlyWhenOnlyTheUserCanHaveWrittenIt() throws {
        let program = [try Programs.path("exactness"), "identity-fork"]
        let s = try Scratch()
        let native = try finite(program, Runner.environment(.native))
        let profile = try self.profile(program, s)
        let calibration = try machineLine() + "\nidentity 1000.0 1.0\n"
        let off = "identity was not used: the machine's calibration says it is slower than the syscall"
        func setUp(_ name: String) throws -> (String, String) {
            let xdg = s.path(name)
            try makeDirectory(xdg + "/privbox")
            let file = xdg + "/privbox/calibration"
            try calibration.write(toFile: file, atomically: false, encoding: .utf8)
            chmod(file, 0o600)
            return (xdg, file)
        }
        func run(_ xdg: String, _ log: String) throws -> Result {
            try finite(program, Runner.environment(.accelerate, profile: profile,
                                                   extra: ["XDG_CACHE_HOME": xdg, "PRIVBOX_LOG": log]))
        }
        // The control: a calibration that is the user's turns the identity executor off.
        let (trusted, _) = try setUp("trusted")
        let control = try run(trusted, "info")
        XCTAssertEqual(control.stdout, native.stdout)
        XCTAssertTrue(control.stderr.contains(off), "the calibration was not applied:\n\(control.stderr)")

        let cases: [(String, (String, String) throws -> String)] = [
            ("owner", { _, file in chown(file, 65534, 65534); return "owned by uid 65534" }),
            ("mode", { _, file in chmod(file, 0o666); return "writable by group or others (mode 0666)" }),
            ("group-writable-root", { xdg, _ in
                chmod(xdg + "/privbox", 0o770)
                return "directory \(xdg)/privbox is writable by group or others (mode 0770)" }),
            ("symlinked-root", { xdg, _ in
                try FileManager.default.moveItem(atPath: xdg + "/privbox", toPath: xdg + "/elsewhere")
                try FileManager.default.createSymbolicLink(atPath: xdg + "/privbox", withDestinationPath: xdg + "/elsewhere")
                return "directory \(xdg)/privbox is a symbolic link" }),
            ("fifo", { _, file in
                unlink(file)
                makeFifo(file)
                return "it is a FIFO" }),
        ]
        for (name, spoil) in cases {
            let (xdg, file) = try setUp(name)
            let why = try spoil(xdg, file)
            let r = try run(xdg, "warn")
            XCTAssertEqual(r.stdout, native.stdout, name)
            XCTAssertEqual(r.status, native.status, name)
            let line = "privbox: ignoring cache \(file): \(why); nothing but `privbox doctor --calibrate` writes it again"
            XCTAssertEqual(privboxLines(r), [line], name)
            let info = try run(xdg, "info")
            XCTAssertEqual(info.stdout, native.stdout, name)
            XCTAssertFalse(info.stderr.contains(off), "\(name): a refused calibration was applied\n\(info.stderr)")
            XCTAssertTrue(info.stderr.contains(": identity on;"), "\(name): identity was not used\n\(info.stderr)")
            // Auto mode reads the calibration before main(): it must not block there either.
            let auto = try finite(["/bin/echo", "hi"], Runner.environment(.auto, extra: ["XDG_CACHE_HOME": xdg]))
            XCTAssertEqual(auto.stdout, "hi\n", name)
            XCTAssertEqual(auto.status, 0, name)
            XCTAssertEqual(privboxLines(auto), [line], name)
        }
    }

    // ---- defects 2 and 3: the profile of accelerate mode --------------------------------------------

    func testAnAccelerateProfileMustBeARegularFileOnlyItsOwnerCanWrite() throws {
        let program = [try Programs.path("exactness"), "identity-fork"]
        let s = try Scratch()
        let native = try finite(program, Runner.environment(.native))
        XCTAssertEqual(native.status, 0, native.stderr)
        let profile = try self.profile(program, s)
        let good = try finite(program, Runner.environment(.accelerate, profile: profile, extra: ["PRIVBOX_LOG": "info"]))
        XCTAssertTrue(good.stderr.contains("routed to an executor"), good.stderr)

        let content = try Data(contentsOf: URL(fileURLWithPath: profile))
        let others = s.path("others.json")
        try content.write(to: URL(fileURLWithPath: others))
        chown(others, 65534, 65534)
        chmod(others, 0o600)
        let writable = s.path("writable.json")
        try content.write(to: URL(fileURLWithPath: writable))
        chmod(writable, 0o666)
        let fifo = s.path("fifo.json")
        makeFifo(fifo)
        let device = s.path("mynull")
        try makeCharDevice(device, major: 1, minor: 3)
        for (path, line) in [
            (others, "privbox: profile \(others) is owned by uid 65534; not trusted; running natively"),
            (writable, "privbox: profile \(writable) is writable by group or others (mode 0666); not trusted; running natively"),
            (device, "privbox: profile \(device) is a character device, not a regular file; running natively"),
            (fifo, "privbox: profile \(fifo) is a FIFO, not a regular file; running natively"),
        ] {
            let r = try finite(program, Runner.environment(.accelerate, profile: path))
            XCTAssertEqual(r.stdout, native.stdout, path)
            XCTAssertEqual(r.status, native.status, path)
            XCTAssertEqual(r.stderrLines, [line], path)
            let info = try finite(program, Runner.environment(.accelerate, profile: path, extra: ["PRIVBOX_LOG": "info"]))
            XCTAssertEqual(info.stdout, native.stdout, path)
            XCTAssertFalse(info.stderr.contains("routed to an executor"), "\(path) was used:\n\(info.stderr)")
            // A process tree reports it once: the programs it starts run natively too.
            let tree = try finite(["/bin/bash", "-c", "/bin/true; /bin/echo done"],
                                  Runner.environment(.accelerate, profile: path))
            XCTAssertEqual(tree.stdout, "done\n", path)
            XCTAssertEqual(tree.stderrLines, [line], path)
        }
        // Auto mode does not read the profile: a FIFO there changes nothing.
        let auto = try finite(["/bin/echo", "hi"], Runner.environment(.auto, profile: fifo))
        XCTAssertEqual(auto, Result(stdout: "hi\n", stderr: "", status: 0, signalled: false))
        XCTAssertEqual((Node(fifo)?.mode ?? 0) & S_IFMT, S_IFIFO)
    }
}
