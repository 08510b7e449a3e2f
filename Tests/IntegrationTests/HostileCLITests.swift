// The command line in hostile environments (issue 16): what `privbox` refuses to write over, the
// files it refuses to read or trust, its own stderr when the caller closed it, relative paths in
// process trees, and the small contract points of `report` and `doctor --json`.
import Foundation
import Profiler
import XCTest

final class HostileCLITests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }


    /// Runner.run with a deadline: a hang is what some of these tests look for, and it fails.
    func finish(_ args: [String], environment: [String: String] = Runner.cleanEnvironment,
                cwd: String? = nil) throws -> Result {
        try Runner.run(args, environment: environment, cwd: cwd, timeout: 60)
    }


    /// A good profile of `loop N`, written by `privbox profile`.
    func goodProfile(_ s: Scratch, calls: Int = 100) throws -> (profile: String, program: String) {
        let program = try Programs.path("loop")
        let out = s.path("good.json")
        let r = try finish([Paths.cli, "profile", "-o", out, "--", program, String(calls)])
        XCTAssertEqual(r.status, 0, r.stderr)
        return (out, program)
    }

    /// Paths that are not regular files, each with the words the refusal must name it by.
    func hostileTargets(_ s: Scratch, victim: String) throws -> [(path: String, kind: String)] {
        let dev = s.path("mynull")
        try makeCharDevice(dev, major: 1, minor: 3)
        makeFifo(s.path("fifo"))
        try FileManager.default.createDirectory(atPath: s.path("dir"), withIntermediateDirectories: false)
        makeSocket(s.path("sock"))
        try FileManager.default.createSymbolicLink(atPath: s.path("link"), withDestinationPath: victim)
        return [(dev, "character device"), (s.path("fifo"), "FIFO"), (s.path("dir"), "directory"),
                (s.path("sock"), "socket"), (s.path("link"), "symbolic link")]
    }

    // MARK: defect 1: output writers replace only a missing path or a regular file

    func testProfileOutputRefusesAnythingButARegularFile() throws {
        let program = try Programs.path("loop")
        let s = try Scratch()
        let victim = s.path("victim.txt")
        try "keep me".write(toFile: victim, atomically: true, encoding: .utf8)
        for (path, kind) in try hostileTargets(s, victim: victim) {
            let before = Node(path)
            let r = try finish([Paths.cli, "profile", "-o", path, "--", program, "10"])
            XCTAssertTrue(r.stdout.hasPrefix("done 10 "), "\(kind): the command ran: \(r.stdout)")
            XCTAssertEqual(r.status, 1, "\(kind): a failed write must not look like success: \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, "\(kind): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("privbox: ") && r.stderr.contains(kind), "\(kind): \(r.stderr)")
            XCTAssertEqual(Node(path), before, "\(kind): what is at \(path) changed")
        }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep me")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: s.path("link")), victim)
        // The command's own failure is what privbox exits with, even when the write fails too.
        let failed = try finish([Paths.cli, "profile", "-o", s.path("fifo"), "--", "sh", "-c", "exit 3"])
        XCTAssertEqual(failed.status, 3, failed.stderr)
        XCTAssertEqual(failed.stderrLines.count, 1, failed.stderr)
        // Nothing was left behind next to the refused paths (no temporary file).
        let left = try FileManager.default.contentsOfDirectory(atPath: s.url.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(left, [], "temporary files left behind")
    }

    func testSVGStreamsIntoDevicesAndFifosAndReplacesOnlyRegularFiles() throws {
        let s = try Scratch()
        let (profile, _) = try goodProfile(s, calls: 300)
        let victim = s.path("victim.txt")
        try "keep me".write(toFile: victim, atomically: true, encoding: .utf8)
        let report = [Paths.cli, "report", "--entry-ns", "100", profile, "--svg"]

        // Refused: a directory, a socket, a symbolic link to a regular file; a FIFO nobody reads.
        for (path, kind) in try hostileTargets(s, victim: victim) where kind != "character device" {
            let before = Node(path)
            let r = try finish(report + [path])
            XCTAssertEqual(r.status, 1, "\(kind): \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, "\(kind): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("privbox: cannot write SVG \(path)"), "\(kind): \(r.stderr)")
            XCTAssertEqual(Node(path), before, "\(kind): what is at \(path) changed")
        }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep me")

        // A character device is written into, never replaced: a null device swallows it...
        let null = s.path("mynull")
        let nullNode = Node(null)
        let toNull = try finish(report + [null])
        XCTAssertEqual(toNull.status, 0, toNull.stderr)
        XCTAssertEqual(toNull.stderr, "")
        XCTAssertEqual(Node(null), nullNode)
        // ...a full one fails the command with one line saying what could not be written.
        let full = s.path("myfull")
        try makeCharDevice(full, major: 1, minor: 7)
        let fullNode = Node(full)
        let toFull = try finish(report + [full])
        XCTAssertEqual(toFull.status, 1, toFull.stderr)
        XCTAssertEqual(toFull.stderrLines, ["privbox: cannot write SVG \(full): No space left on device"])
        XCTAssertEqual(Node(full), fullNode)

        // --svg naming our own stdout (a pipe, through a symbolic link as /dev/stdout is) streams
        // into it; the link stays.
        let stdoutLink = s.path("stdout")
        try FileManager.default.createSymbolicLink(atPath: stdoutLink, withDestinationPath: "/proc/self/fd/1")
        let toStdout = try finish(report + [stdoutLink])
        XCTAssertEqual(toStdout.status, 0, toStdout.stderr)
        XCTAssertTrue(toStdout.stdout.contains("<svg"), toStdout.stdout)
        XCTAssertTrue(toStdout.stdout.contains("privbox report: "), toStdout.stdout)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: stdoutLink), "/proc/self/fd/1")

        // A missing path or a regular file is (re)written, private.
        for path in [s.path("new.svg"), victim] {
            let r = try finish(report + [path])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("<?xml"), path)
            XCTAssertEqual(Node(path)?.permissions, 0o600)
        }
        let missingDir = try finish(report + ["/nonexistent/x.svg"])
        XCTAssertEqual(missingDir.status, 1)
        XCTAssertEqual(missingDir.stderrLines, ["privbox: cannot write SVG /nonexistent/x.svg: No such file or directory"])
    }

    // MARK: defect 2: files privbox reads never block it, and profiles to accelerate must be trusted

    func testFifosAndDevicesAreRefusedWithoutBlocking() throws {
        let s = try Scratch()
        let (_, program) = try goodProfile(s)
        let fifo = s.path("fifo.json")
        makeFifo(fifo)
        let dev = s.path("mynull")
        try makeCharDevice(dev, major: 1, minor: 3)
        let native = try finish([program, "100"])
        for path in [fifo, dev] {
            let run = try finish([Paths.cli, "run", "-p", path, "--", program, "100"])
            XCTAssertEqual(run.stdout, native.stdout, path)
            XCTAssertEqual(run.status, native.status, path)
            XCTAssertEqual(run.stderrLines.count, 1, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("privbox: profile \(path) is a ") && run.stderr.contains("running natively"),
                          run.stderr)
            let report = try finish([Paths.cli, "report", path])
            XCTAssertEqual(report.status, 1, path)
            XCTAssertEqual(report.stderrLines.count, 1, report.stderr)
            XCTAssertTrue(report.stderr.contains("not a regular file"), report.stderr)
        }
    }

    func testRunTrustsOnlyProfilesOfTheUserThatNobodyElseCanWrite() throws {
        let s = try Scratch()
        let (good, program) = try goodProfile(s)
        let native = try finish([program, "100"])
        let shared = s.path("shared.json"), foreign = s.path("foreign.json")
        try FileManager.default.copyItem(atPath: good, toPath: shared)
        try FileManager.default.copyItem(atPath: good, toPath: foreign)
        XCTAssertEqual(chmod(shared, 0o666), 0)
        XCTAssertEqual(chmod(foreign, 0o644), 0)
        XCTAssertEqual(chown(foreign, 65534, 65534), 0)
        for (path, why) in [(shared, "is writable by others (mode 0666); not trusted"),
                            (foreign, "is owned by uid 65534; not trusted")] {
            let r = try finish([Paths.cli, "run", "-p", path, "--", program, "100"])
            XCTAssertEqual(r.stdout, native.stdout)
            XCTAssertEqual(r.status, native.status)
            XCTAssertEqual(r.stderrLines, ["privbox: profile \(path) \(why); running natively"])
            // `report` only reads: any regular file will do.
            let report = try finish([Paths.cli, "report", "--entry-ns", "100", path])
            XCTAssertEqual(report.status, 0, report.stderr)
        }
        // The user's own 0600 profile is used silently.
        let ok = try finish([Paths.cli, "run", "-p", good, "--", program, "100"])
        XCTAssertEqual(ok, native)
    }

    func testCalibrationIsPrivateAndNeverReplacesALink() throws {
        let s = try Scratch()
        var env = Runner.cleanEnvironment
        env["XDG_CACHE_HOME"] = s.path("cache")
        // umask 0 shows any mode left to the umask.
        let r = try finish(["sh", "-c", "umask 0; exec \"$0\" doctor --calibrate", Paths.cli], environment: env)
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
        let linked = try finish([Paths.cli, "doctor", "--calibrate"], environment: env)
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
        let r = try finish(["sh", "-c", command, strace, log, Paths.cli, data])
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
        let native = try finish([program, "100"])
        let cdAndRun = ["sh", "-c", "cd sub && exec \"$0\" 100", program]
        let run = try finish([Paths.cli, "run", "-p", "good.json", "--"] + cdAndRun, cwd: s.url.path)
        XCTAssertEqual(run.stderr, "")
        XCTAssertEqual(run.stdout, native.stdout)

        // `privbox profile` with a relative TMPDIR: the process that changed directory is still
        // recorded.
        try FileManager.default.createDirectory(atPath: s.path("tmp"), withIntermediateDirectories: false)
        var env = Runner.cleanEnvironment
        env["TMPDIR"] = "tmp"
        let profiled = try finish([Paths.cli, "profile", "-o", "tree.json", "--"] + cdAndRun, environment: env, cwd: s.url.path)
        XCTAssertEqual(profiled.status, 0, profiled.stderr)
        XCTAssertEqual(profiled.stderrLines.count, 1, profiled.stderr)
        let exes = try ProfileIO.read(path: s.path("tree.json")).processes.map(\.exe)
        XCTAssertTrue(exes.contains(program), "\(exes)")
    }

    // MARK: defect 11: report --top, failed report writes, doctor --json

    func testReportTopZeroListsOnlyTheTotalsAndANegativeTopIsAUsageError() throws {
        let s = try Scratch()
        let (profile, _) = try goodProfile(s, calls: 3000)
        let ten = try finish([Paths.cli, "report", "--entry-ns", "100", profile])
        XCTAssertTrue(ten.stdout.contains("loop+0x") && ten.stdout.contains("#1 "), ten.stdout)
        let zero = try finish([Paths.cli, "report", "--entry-ns", "100", "--top", "0", profile])
        XCTAssertEqual(zero.status, 0, zero.stderr)
        XCTAssertTrue(zero.stdout.contains(" wrapped calls") && zero.stdout.contains("syscall mix: write"), zero.stdout)
        XCTAssertTrue(zero.stdout.contains("1 hot loop "), zero.stdout)
        XCTAssertFalse(zero.stdout.contains("+0x"), "a call site is listed:\n\(zero.stdout)")
        XCTAssertFalse(zero.stdout.contains("#1"), "a loop is listed:\n\(zero.stdout)")
        let negative = try finish([Paths.cli, "report", "--top", "-1", profile])
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
            let r = try finish(["sh", "-c", "exec \"$0\" \"$@\" > '\(full)'", Paths.cli, "report", "--entry-ns", "100", profile] + extra)
            XCTAssertEqual(r.status, 1, "\(extra): \(r.stderr)")
            XCTAssertEqual(r.stderrLines, ["privbox: cannot write the report: No space left on device"], "\(extra)")
        }
    }

    func testDoctorJSONGivesNumbersWithUnits() throws {
        let r = try finish([Paths.cli, "doctor", "--json"])
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
        let text = try finish([Paths.cli, "doctor"])
        XCTAssertTrue(text.stdout.contains("ns (getppid via the syscall instruction, median of 64 batches)"), text.stdout)
    }
}
