// The command line in hostile environments (issue 16): what `privbox` refuses to write over, the
// files it refuses to read or trust, its own stderr when the caller closed it, relative paths in
// process trees, and the small contract points of `report` and `doctor --json`.
import Foundation
import Profiler
import XCTest

final class HostileCLITests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    // Every run below goes through Runner.run with a 60 s deadline: a hang is what some of these
    // tests look for, and it fails the test.

    /// A good profile of `loop N`, written by `privbox profile`.
    func goodProfile(_ s: Scratch, calls: Int = 100) throws -> (profile: String, program: String) {
        let program = try Programs.path("loop")
        let out = s.path("good.json")
        let r = try Runner.run([Paths.cli, "profile", "-o", out, "--", program, String(calls)],
                               environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        return (out, program)
    }

    /// Paths that are not regular files, each with the words the refusal must name it by. The
    /// character device needs mknod (root): without it the list has none, and `noDevice` is the
    /// skip to throw once the other kinds have been checked.
    func hostileTargets(_ s: Scratch, victim: String) throws
        -> (targets: [(path: String, kind: String)], noDevice: XCTSkip?) {
        makeFifo(s.path("fifo"))
        try FileManager.default.createDirectory(atPath: s.path("dir"), withIntermediateDirectories: false)
        makeSocket(s.path("sock"))
        try FileManager.default.createSymbolicLink(atPath: s.path("link"), withDestinationPath: victim)
        var targets = [(s.path("fifo"), "FIFO"), (s.path("dir"), "directory"),
                       (s.path("sock"), "socket"), (s.path("link"), "symbolic link")]
        let (dev, noDevice) = optionalCharDevice(s.path("mynull"), major: 1, minor: 3)
        if let dev { targets.insert((dev, "character device"), at: 0) }
        return (targets, noDevice)
    }

    /// `makeCharDevice`, for a test that has other cases to run without it: the path, or the skip.
    func optionalCharDevice(_ path: String, major: UInt32, minor: UInt32) -> (String?, XCTSkip?) {
        do {
            try makeCharDevice(path, major: major, minor: minor)
            return (path, nil)
        } catch let skip as XCTSkip {
            return (nil, skip)
        } catch {
            XCTFail("\(error)")
            return (nil, nil)
        }
    }

    // MARK: defect 1: output writers replace only a missing path or a regular file

    func testProfileOutputRefusesAnythingButARegularFile() throws {
        let program = try Programs.path("loop")
        let s = try Scratch()
        let victim = s.path("victim.txt")
        try "keep me".write(toFile: victim, atomically: true, encoding: .utf8)
        let (targets, noDevice) = try hostileTargets(s, victim: victim)
        for (path, kind) in targets {
            let before = Node(path)
            let r = try Runner.run([Paths.cli, "profile", "-o", path, "--", program, "10"],
                                   environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertTrue(r.stdout.hasPrefix("done 10 "), "\(kind): the command ran: \(r.stdout)")
            XCTAssertEqual(r.status, 1, "\(kind): a failed write must not look like success: \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, "\(kind): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("privbox: ") && r.stderr.contains(kind), "\(kind): \(r.stderr)")
            XCTAssertEqual(Node(path), before, "\(kind): what is at \(path) changed")
        }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep me")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: s.path("link")), victim)
        // The command's own failure is what privbox exits with, even when the write fails too.
        let failed = try Runner.run([Paths.cli, "profile", "-o", s.path("fifo"), "--", "sh", "-c", "exit 3"],
                                    environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(failed.status, 3, failed.stderr)
        XCTAssertEqual(failed.stderrLines.count, 1, failed.stderr)
        // Nothing was left behind next to the refused paths (no temporary file).
        let left = try FileManager.default.contentsOfDirectory(atPath: s.url.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(left, [], "temporary files left behind")
        if let noDevice { throw noDevice }
    }

    func testSVGStreamsIntoDevicesAndFifosAndReplacesOnlyRegularFiles() throws {
        let s = try Scratch()
        let (profile, _) = try goodProfile(s, calls: 300)
        let victim = s.path("victim.txt")
        try "keep me".write(toFile: victim, atomically: true, encoding: .utf8)
        let report = [Paths.cli, "report", "--entry-ns", "100", profile, "--svg"]

        // Refused: a directory, a socket, a symbolic link to a regular file; a FIFO nobody reads.
        let (targets, noDevice) = try hostileTargets(s, victim: victim)
        for (path, kind) in targets where kind != "character device" {
            let before = Node(path)
            let r = try Runner.run(report + [path], environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(r.status, 1, "\(kind): \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, "\(kind): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("privbox: cannot write SVG \(path)"), "\(kind): \(r.stderr)")
            XCTAssertEqual(Node(path), before, "\(kind): what is at \(path) changed")
        }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep me")

        // --svg naming our own stdout (a pipe, through a symbolic link as /dev/stdout is) streams
        // into it; the link stays.
        let stdoutLink = s.path("stdout")
        try FileManager.default.createSymbolicLink(atPath: stdoutLink, withDestinationPath: "/proc/self/fd/1")
        let toStdout = try Runner.run(report + [stdoutLink], environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(toStdout.status, 0, toStdout.stderr)
        XCTAssertTrue(toStdout.stdout.contains("<svg"), toStdout.stdout)
        XCTAssertTrue(toStdout.stdout.contains("privbox report: "), toStdout.stdout)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: stdoutLink), "/proc/self/fd/1")

        // A missing path or a regular file is (re)written, private.
        for path in [s.path("new.svg"), victim] {
            let r = try Runner.run(report + [path], environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("<?xml"), path)
            XCTAssertEqual(Node(path)?.permissions, 0o600)
        }
        let missingDir = try Runner.run(report + ["/nonexistent/x.svg"],
                                        environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(missingDir.status, 1)
        XCTAssertEqual(missingDir.stderrLines, ["privbox: cannot write SVG /nonexistent/x.svg: No such file or directory"])

        // The rest needs character devices (mknod: root).
        if let noDevice { throw noDevice }
        // A character device is written into, never replaced: a null device swallows it...
        let null = s.path("mynull")
        let nullNode = Node(null)
        let toNull = try Runner.run(report + [null], environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(toNull.status, 0, toNull.stderr)
        XCTAssertEqual(toNull.stderr, "")
        XCTAssertEqual(Node(null), nullNode)
        // ...a full one fails the command with one line saying what could not be written.
        let full = s.path("myfull")
        try makeCharDevice(full, major: 1, minor: 7)
        let fullNode = Node(full)
        let toFull = try Runner.run(report + [full], environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(toFull.status, 1, toFull.stderr)
        XCTAssertEqual(toFull.stderrLines, ["privbox: cannot write SVG \(full): No space left on device"])
        XCTAssertEqual(Node(full), fullNode)
    }

    // MARK: defect 2: files privbox reads never block it, and profiles to accelerate must be trusted

    func testFifosAndDevicesAreRefusedWithoutBlocking() throws {
        let s = try Scratch()
        let (_, program) = try goodProfile(s)
        let fifo = s.path("fifo.json")
        makeFifo(fifo)
        let (dev, noDevice) = optionalCharDevice(s.path("mynull"), major: 1, minor: 3)
        let native = try Runner.run([program, "100"], environment: Runner.cleanEnvironment, timeout: 60)
        for path in [fifo] + (dev.map { [$0] } ?? []) {
            let run = try Runner.run([Paths.cli, "run", "-p", path, "--", program, "100"],
                                     environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(run.stdout, native.stdout, path)
            XCTAssertEqual(run.status, native.status, path)
            XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("privbox: profile \(path) is a ") && run.stderr.contains("running natively"),
                          run.stderr)
            let report = try Runner.run([Paths.cli, "report", path], environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(report.status, 1, path)
            XCTAssertEqual(report.stderrLines.count, 1, report.stderr)
            XCTAssertTrue(report.stderr.contains("not a regular file"), report.stderr)
        }
        if let noDevice { throw noDevice }
    }

    func testRunTrustsOnlyProfilesOfTheUserThatNobodyElseCanWrite() throws {
        let s = try Scratch()
        let (good, program) = try goodProfile(s)
        let native = try Runner.run([program, "100"], environment: Runner.cleanEnvironment, timeout: 60)
        /// `run -p path` runs natively after exactly one line giving `why`; `report` only reads, so
        /// any regular file will do for it.
        func refused(_ path: String, _ why: String) throws {
            let r = try Runner.run([Paths.cli, "run", "-p", path, "--", program, "100"],
                                   environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(r.stdout, native.stdout)
            XCTAssertEqual(r.status, native.status)
            XCTAssertEqual(r.stderrLines, ["privbox: profile \(path) \(why); running natively"])
            let report = try Runner.run([Paths.cli, "report", "--entry-ns", "100", path],
                                        environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(report.status, 0, report.stderr)
        }
        for mode: mode_t in [0o666, 0o664] {
            let shared = s.path("shared-\(String(mode, radix: 8)).json")
            try FileManager.default.copyItem(atPath: good, toPath: shared)
            XCTAssertEqual(chmod(shared, mode), 0)
            try refused(shared, "is writable by group or others (mode 0\(String(mode, radix: 8))); not trusted")
        }
        // The user's own 0600 profile is used silently.
        let ok = try Runner.run([Paths.cli, "run", "-p", good, "--", program, "100"],
                                environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(ok, native)

        // Another user's file: only root can give one away.
        guard geteuid() == 0 else { throw XCTSkip("chown to another user needs root") }
        let foreign = s.path("foreign.json")
        try FileManager.default.copyItem(atPath: good, toPath: foreign)
        XCTAssertEqual(chmod(foreign, 0o644), 0)
        XCTAssertEqual(chown(foreign, 65534, 65534), 0)
        try refused(foreign, "is owned by uid 65534; not trusted")
    }

    func testCalibrationIsPrivateAndNeverReplacesALink() throws {
        let s = try Scratch()
        var env = Runner.cleanEnvironment
        env["XDG_CACHE_HOME"] = s.path("cache")
        // umask 0 shows any mode left to the umask.
        let r = try Runner.run(["sh", "-c", "umask 0; exec \"$0\" doctor --calibrate", Paths.cli],
                               environment: env, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = s.path("cache/privbox/calibration")
        XCTAssertEqual(Node(file)?.type, UInt32(S_IFREG))
        XCTAssertEqual(Node(file)?.permissions, 0o600)
        XCTAssertEqual(Node(s.path("cache"))?.permissions, 0o700)
        XCTAssertEqual(Node(s.path("cache/privbox"))?.permissions, 0o700)

        let victim = s.path("victim.txt")
        try "keep me".write(toFile: victim, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.createSymbolicLink(atPath: file, withDestinationPath: victim)
        let linked = try Runner.run([Paths.cli, "doctor", "--calibrate"], environment: env, timeout: 60)
        XCTAssertEqual(linked.status, 1, linked.stderr)
        XCTAssertEqual(linked.stderrLines.count, 1, linked.stderr)
        XCTAssertTrue(linked.stderr.contains("cannot write calibration \(file)") && linked.stderr.contains("symbolic link"),
                      linked.stderr)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: file), victim)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep me")
    }

    // MARK: defect 4: privbox writes to fd 2 only if it was given one

    func testNoWriteToStderrThatWasClosedAtStart() throws {
        guard let strace = which("strace") else { throw XCTSkip("strace is not installed") }
        let s = try Scratch()
        let data = s.path("data.txt"), log = s.path("strace.log")
        // The command opens a data file (it gets fd 2, the lowest free one) and writes to it;
        // privbox warns that /unwritable/x.json cannot be written.
        let command = "exec 2>&-; exec \"$0\" -qq -o \"$1\" -e trace=write,writev \"$2\" profile -o /unwritable/x.json "
            + "-- /usr/bin/python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600); "
            + "os.write(fd, b\"data\\n\")' \"$3\""
        let r = try Runner.run(["sh", "-c", command, strace, log, Paths.cli, data],
                               environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(try String(contentsOfFile: data, encoding: .utf8), "data\n")
        // strace without -f follows privbox itself, not the command.
        let writes = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            .filter { $0.hasPrefix("write(2,") || $0.hasPrefix("writev(2,") }
        XCTAssertEqual(writes, [], "privbox wrote to a descriptor 2 it was not given")
    }

    // MARK: defect 6: the CLI passes absolute paths to the process tree

    func testRelativeProfilePathsWorkInProcessesThatChangeDirectory() throws {
        let s = try Scratch()
        let (_, program) = try goodProfile(s)
        try FileManager.default.createDirectory(atPath: s.path("sub"), withIntermediateDirectories: false)
        let native = try Runner.run([program, "100"], environment: Runner.cleanEnvironment, timeout: 60)
        let cdAndRun = ["sh", "-c", "cd sub && exec \"$0\" 100", program]
        let run = try Runner.run([Paths.cli, "run", "-p", "good.json", "--"] + cdAndRun,
                                 environment: Runner.cleanEnvironment, cwd: s.url.path, timeout: 60)
        XCTAssertEqual(run.stderr, "")
        XCTAssertEqual(run.stdout, native.stdout)

        // `privbox profile` with a relative TMPDIR: the process that changed directory is still
        // recorded.
        try FileManager.default.createDirectory(atPath: s.path("tmp"), withIntermediateDirectories: false)
        var env = Runner.cleanEnvironment
        env["TMPDIR"] = "tmp"
        let profiled = try Runner.run([Paths.cli, "profile", "-o", "tree.json", "--"] + cdAndRun,
                                      environment: env, cwd: s.url.path, timeout: 60)
        XCTAssertEqual(profiled.status, 0, profiled.stderr)
        XCTAssertEqual(profiled.stderrLines.count, 1, profiled.stderr)
        let exes = try ProfileIO.read(path: s.path("tree.json")).processes.map(\.exe)
        XCTAssertTrue(exes.contains(program), "\(exes)")
    }

    // MARK: defect 11: report --top, failed report writes, doctor --json

    func testReportTopZeroListsOnlyTheTotalsAndANegativeTopIsAUsageError() throws {
        let s = try Scratch()
        let (profile, _) = try goodProfile(s, calls: 3000)
        let ten = try Runner.run([Paths.cli, "report", "--entry-ns", "100", profile],
                                 environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertTrue(ten.stdout.contains("loop+0x") && ten.stdout.contains("#1 "), ten.stdout)
        let zero = try Runner.run([Paths.cli, "report", "--entry-ns", "100", "--top", "0", profile],
                                  environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(zero.status, 0, zero.stderr)
        XCTAssertTrue(zero.stdout.contains(" wrapped calls") && zero.stdout.contains("syscall mix: write"), zero.stdout)
        XCTAssertTrue(zero.stdout.contains("1 hot loop "), zero.stdout)
        XCTAssertFalse(zero.stdout.contains("+0x"), "a call site is listed:\n\(zero.stdout)")
        XCTAssertFalse(zero.stdout.contains("#1"), "a loop is listed:\n\(zero.stdout)")
        let negative = try Runner.run([Paths.cli, "report", "--top", "-1", profile],
                                      environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(negative.status, 64, negative.stderr)
        XCTAssertTrue(negative.stderr.contains("--top"), negative.stderr)
        XCTAssertEqual(negative.stdout, "")
    }

    func testAReportThatCannotBeWrittenFailsTheCommand() throws {
        let s = try Scratch()
        let (profile, _) = try goodProfile(s)
        let full = s.path("myfull")
        try makeCharDevice(full, major: 1, minor: 7)
        for extra in [[], ["--folded"]] {
            let r = try Runner.run(["sh", "-c", "exec \"$0\" \"$@\" > '\(full)'", Paths.cli, "report", "--entry-ns", "100", profile] + extra,
                                   environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(r.status, 1, "\(extra): \(r.stderr)")
            XCTAssertEqual(r.stderrLines, ["privbox: cannot write the report: No space left on device"], "\(extra)")
        }
    }

    func testDoctorJSONGivesNumbersWithUnits() throws {
        let r = try Runner.run([Paths.cli, "doctor", "--json"], environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONParser.parse(r.stdout)
        for key in ["raw syscall", "function call", "kernel entry"] {
            let m = try XCTUnwrap(json[key], key)
            switch m["ns"] {
            case .double?, .integer?: break
            default: return XCTFail("\(key): no number of ns: \(m)")
            }
            guard case let .string(method)? = m["method"], !method.isEmpty else { return XCTFail("\(key): no method: \(m)") }
        }
        guard case .string? = json["kernel"] else { return XCTFail("kernel is not a string") }
        // The text output keeps its sentences.
        let text = try Runner.run([Paths.cli, "doctor"], environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertTrue(text.stdout.contains("ns (getppid via the syscall instruction, median of 64 batches)"), text.stdout)
    }

    // MARK: review of issue 16: the symbolizer and the profile directory

    /// The module files a profile names are opened by `report` (and by `profile`'s merge) to
    /// symbolize: a FIFO there must not block it, a device must not be opened at all.
    func testReportNeverOpensAModuleThatIsNotARegularFile() throws {
        let s = try Scratch()
        let (good, _) = try goodProfile(s, calls: 300)
        let fifo = s.path("module.fifo")
        makeFifo(fifo)
        let (dev, noDevice) = optionalCharDevice(s.path("module.dev"), major: 1, minor: 3)
        for (path, kind) in [(fifo, "FIFO")] + (dev.map { [($0, "character device")] } ?? []) {
            // Every module of the profile is renamed to the FIFO (or device), so that whichever
            // one a frame names is looked up there.
            var profile = try ProfileIO.read(path: good)
            for p in profile.processes.indices {
                for m in profile.processes[p].modules.indices { profile.processes[p].modules[m].path = path }
            }
            let hostile = s.path("hostile.json")
            try ProfileIO.write(profile, to: hostile)
            let before = Node(path)
            let report = try Runner.run([Paths.cli, "report", "--entry-ns", "100", hostile],
                                        environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(report.status, 0, "\(kind): \(report.stderr)")
            XCTAssertEqual(report.stderr, "", kind)
            XCTAssertTrue(report.stdout.contains("note: no symbols: \(path) is a \(kind), not a regular file"),
                          "\(kind): \(report.stdout)")
            let folded = try Runner.run([Paths.cli, "report", "--folded", hostile],
                                        environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(folded.status, 0, "\(kind): \(folded.stderr)")
            XCTAssertEqual(folded.stderr, "", kind)
            XCTAssertFalse(folded.stdout.isEmpty, kind)
            XCTAssertEqual(Node(path), before, "\(kind): what is at \(path) changed")
        }
        if let noDevice { throw noDevice }
    }

    /// `privbox profile` names the per-process files with a PRIVBOX_PROFILE pattern in a directory
    /// under TMPDIR: a '%' in TMPDIR is part of a name, not of the pattern.
    func testProfileMergesWhenTMPDIRHasAPercentInItsName() throws {
        let s = try Scratch()
        let program = try Programs.path("loop")
        let tmp = s.path("a%pb%%c")
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false)
        var env = Runner.cleanEnvironment
        env["TMPDIR"] = tmp
        let out = s.path("merged.json")
        let r = try Runner.run([Paths.cli, "profile", "-o", out, "--", program, "100"], environment: env, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("privbox: profile of 1 process ("), r.stderr)
        XCTAssertEqual(try ProfileIO.read(path: out).processes.map(\.exe), [program])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp), [], "left in TMPDIR")
    }

    /// `report --top 0` sums the hot loops' calls: a profile's counts can be anything up to
    /// Int64.max, and the total saturates instead of wrapping to a small, wrong number.
    func testReportTopZeroTotalSaturates() throws {
        let s = try Scratch()
        let (good, _) = try goodProfile(s, calls: 3000)
        var profile = try ProfileIO.read(path: good)
        XCTAssertEqual(profile.processes.count, 1)
        var process = profile.processes[0]
        for i in process.sites.indices { process.sites[i].calls = UInt64(Int64.max) }
        // Three processes with hot loops of Int64.max calls each: their sum does not fit in 64 bits.
        profile.processes = (0..<3).map { i in
            var p = process
            p.pid = process.pid + i
            return p
        }
        let huge = s.path("huge.json")
        try ProfileIO.write(profile, to: huge)
        let r = try Runner.run([Paths.cli, "report", "--entry-ns", "100", "--top", "0", huge],
                               environment: Runner.cleanEnvironment, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains(" hot loops (18446744073709551615 calls); --top 0 lists none"), r.stdout)
    }

    /// The Swift core re-reads the profile by path after the preload checked it and closed it (what
    /// is there may have changed, or appeared, since): it applies the same trust rule itself.
    /// Called directly here (programs/core_check.c), without the preload's check in front of it.
    func testTheCoreTrustsOnlyProfilesOfTheUserThatNobodyElseCanWrite() throws {
        let s = try Scratch()
        let (good, program) = try goodProfile(s)
        let checker = try Programs.path("core_check", flags: ["-ldl"])
        let core = Paths.bin.appendingPathComponent("libprivbox_core.so").path
        func check(_ path: String) throws -> String {
            let r = try Runner.run([checker, core, path, program], environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(r.status, 0, r.stderr)
            return r.stdout
        }
        for mode: mode_t in [0o666, 0o664] {
            let shared = s.path("shared-\(String(mode, radix: 8)).json")
            try FileManager.default.copyItem(atPath: good, toPath: shared)
            XCTAssertEqual(chmod(shared, mode), 0)
            XCTAssertEqual(try check(shared),
                           "-1 profile \(shared) is writable by group or others (mode 0\(String(mode, radix: 8))); not trusted\n")
        }
        // The user's own profile is read (no build-id is given here: "another build").
        let own = try check(good)
        XCTAssertTrue(own.hasPrefix("-2 profile \(good) was recorded for another build"), own)

        guard geteuid() == 0 else { throw XCTSkip("chown to another user needs root") }
        let foreign = s.path("foreign.json")
        try FileManager.default.copyItem(atPath: good, toPath: foreign)
        XCTAssertEqual(chmod(foreign, 0o644), 0)
        XCTAssertEqual(chown(foreign, 65534, 65534), 0)
        XCTAssertEqual(try check(foreign), "-1 profile \(foreign) is owned by uid 65534; not trusted\n")
    }

    /// A module without its own debug information names a separate debug file in its
    /// .gnu_debuglink, looked for next to it: the symbolizer must not block on a FIFO there
    /// (libdwfl's standard lookup open()ed it plainly), and still uses a regular one.
    func testADebugLinkToAFifoDoesNotBlockSymbolizing() throws {
        guard let objcopy = which("objcopy"), let strip = which("strip") else { throw XCTSkip("needs binutils") }
        let s = try Scratch()
        let program = s.path("stripped"), debug = s.path("stripped.debug")
        try FileManager.default.copyItem(atPath: try Programs.path("loop"), toPath: program)
        for step in [[objcopy, "--only-keep-debug", program, debug], [strip, "--strip-debug", program],
                     [objcopy, "--add-gnu-debuglink=\(debug)", program]] {
            let r = try Runner.run(step, environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(r.status, 0, "\(step): \(r.stderr)")
        }
        // `profile -o` merges and symbolizes; `report` symbolizes again.
        func profileAndReport(_ name: String) throws -> String {
            let out = s.path(name)
            let profiled = try Runner.run([Paths.cli, "profile", "-o", out, "--", program, "300"],
                                          environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(profiled.status, 0, profiled.stderr)
            XCTAssertEqual(profiled.stderrLines.count, 1, profiled.stderr)
            let report = try Runner.run([Paths.cli, "report", "--entry-ns", "100", out],
                                        environment: Runner.cleanEnvironment, timeout: 60)
            XCTAssertEqual(report.status, 0, report.stderr)
            XCTAssertTrue(report.stdout.contains("write_loop"), report.stdout)
            return report.stdout
        }
        // The regular debug file gives the source lines...
        XCTAssertTrue(try profileAndReport("with-debug.json").contains("loop.c:"))
        // ...a FIFO in its place is not opened: symbols only (the symbol table stays in the module).
        XCTAssertEqual(unlink(debug), 0)
        makeFifo(debug)
        let before = Node(debug)
        XCTAssertFalse(try profileAndReport("with-fifo.json").contains("loop.c:"))
        XCTAssertEqual(Node(debug), before)
    }
}
