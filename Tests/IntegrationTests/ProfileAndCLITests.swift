// What profile mode records, and the `privbox` command line.
import Foundation
import Profiler
import XCTest

final class ProfileAndCLITests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    /// Counts are exact, and the call site maps back to the source line of the call.
    func testProfileCountsAreExactAndSitesMapToTheSourceLine() throws {
        let program = try Programs.path("loop")
        let s = try Scratch()
        let out = s.path("loop.json")
        let r = try Runner.run([Paths.cli, "profile", "-o", out, "--", program, "25000"],
                               environment: Runner.cleanEnvironment)
        XCTAssertTrue(r.stdout.hasPrefix("done 25000 "))
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("privbox: profile of 1 process"), r.stderr)

        let profile = try ProfileIO.read(path: out)
        XCTAssertEqual(profile.processes.count, 1)
        let p = profile.processes[0]
        XCTAssertEqual(p.exe, program)
        XCTAssertEqual(p.exeBuildID.count, 40, "GNU build-id of the program")
        let writes = p.sites.filter { $0.syscall == "write" && p.modules[$0.module].path == program }
        XCTAssertEqual(writes.count, 1)
        XCTAssertEqual(writes.first?.calls, 25000)
        XCTAssertEqual(writes.first?.errors, 0)
        XCTAssertGreaterThan(writes.first?.kernelNs ?? 0, 0)

        // The recorded offset is the return address of the call: the byte before it is inside
        // the call instruction on the WRITE_SITE line.
        guard let site = writes.first, let addr2line = which("addr2line") else { return }
        let a2l = try Runner.run([addr2line, "-e", program, "0x" + String(site.offset - 1, radix: 16)],
                                 environment: Runner.cleanEnvironment)
        let source = try String(contentsOfFile: Paths.programs.appendingPathComponent("loop.c").path, encoding: .utf8)
        let line = source.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.contains("WRITE_SITE") }.map { $0 + 1 }
        let location = a2l.stdout.split(separator: " ").first.map(String.init) ?? ""
        XCTAssertEqual(location.trimmingCharacters(in: .whitespacesAndNewlines), "\(Paths.programs.path)/loop.c:\(line ?? -1)")
    }

    /// Paths are bytes: quotes, backslashes, control characters and non-ASCII must survive into a
    /// valid profile.
    func testProfileOfAProgramWithAHostilePath() throws {
        let s = try Scratch()
        let dir = s.path("we\"ird\\ dir\n\u{1}é")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let program = dir + "/loop"
        try FileManager.default.copyItem(atPath: try Programs.path("loop"), toPath: program)
        let r = try Runner.run([program, "7"], mode: .profile, scratch: s, profile: s.path("hostile.json"))
        XCTAssertEqual(r.status, 0, r.stderr)
        let p = try ProfileIO.read(path: s.path("hostile.json")).processes[0]
        XCTAssertEqual(p.exe, program)
        XCTAssertEqual(p.sites.first { $0.syscall == "write" && p.modules[$0.module].path == program }?.calls, 7)
    }

    func testThreadsAreCountedPerThread() throws {
        let program = try Programs.path("lifecycle")
        let s = try Scratch()
        let out = s.path("threads.json")
        let r = try Runner.run([Paths.cli, "profile", "-o", out, "--", program, "threads"], environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.stdout, "threads total=4000\n")
        let p = try ProfileIO.read(path: out).processes[0]
        let getppid = p.sites.filter { $0.syscall == "getppid" }
        XCTAssertEqual(getppid.reduce(0) { $0 + $1.calls }, 4000)
        XCTAssertEqual(Set(getppid.map(\.thread)).count, 4, "one site per thread")
        XCTAssertTrue(getppid.allSatisfy { $0.calls == 1000 })
        let masks = p.sites.filter { $0.syscall == "rt_sigprocmask" && p.modules[$0.module].path == program }
        XCTAssertEqual(masks.reduce(0) { $0 + $1.calls }, 8000)
        XCTAssertGreaterThanOrEqual(p.threads, 4)
    }

    /// A program that forks: one profile per process, merged by `privbox profile`.
    func testForkingProgramGivesOneEntryPerProcess() throws {
        let program = try Programs.path("lifecycle")
        let s = try Scratch()
        let out = s.path("fork.json")
        let r = try Runner.run([Paths.cli, "profile", "-o", out, "--", program, "fork"], environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.status, 0, r.stderr)
        let profile = try ProfileIO.read(path: out)
        XCTAssertEqual(profile.processes.count, 3)
        let pids = Set(profile.processes.map(\.pid))
        let parent = try XCTUnwrap(profile.processes.first { !pids.contains($0.ppid) })
        let children = profile.processes.filter { $0.ppid == parent.pid }
        XCTAssertEqual(children.count, 2)
        for c in children {
            // The child's own 10 + 1 getppid calls (the loop and the printf), none of the parent's.
            XCTAssertEqual(c.sites.filter { $0.syscall == "getppid" }.reduce(0) { $0 + $1.calls }, 11)
        }
        XCTAssertEqual(parent.sites.filter { $0.syscall == "getppid" }.reduce(0) { $0 + $1.calls }, 0)
    }

    func testExitStatusAndSignalsPassThroughTheCLI() throws {
        let s = try Scratch()
        for sub in [["profile", "-o", s.path("p.json")], ["run", "-p", s.path("p.json")]] {
            let exit = try Runner.run([Paths.cli] + sub + ["--", "/bin/sh", "-c", "echo out; exit 7"],
                                      environment: Runner.cleanEnvironment)
            XCTAssertEqual(exit.stdout, "out\n")
            XCTAssertEqual(exit.status, 7, "\(sub)")
            let killed = try Runner.run([Paths.cli] + sub + ["--", "/bin/sh", "-c", "kill -TERM $$"],
                                        environment: Runner.cleanEnvironment)
            XCTAssertTrue(killed.signalled, "\(sub)")
            XCTAssertEqual(killed.status, SIGTERM, "\(sub)")
        }
        let missing = try Runner.run([Paths.cli, "run", "-p", s.path("p.json"), "--", "/nonexistent/cmd"],
                                     environment: Runner.cleanEnvironment)
        XCTAssertEqual(missing.status, 127)
        XCTAssertEqual(missing.stderrLines.count, 1)
    }

    /// `privbox run` with a missing, corrupt, truncated, foreign or hostile profile: one line,
    /// then the program runs natively with its own output and exit status.
    func testRunWithBadProfilesRunsNatively() throws {
        let program = try Programs.path("loop")
        let s = try Scratch()
        let good = s.path("good.json")
        XCTAssertEqual(try Runner.run([Paths.cli, "profile", "-o", good, "--", program, "100"],
                                      environment: Runner.cleanEnvironment).status, 0)
        let text = try String(contentsOfFile: good, encoding: .utf8)
        let foreignProfile = try ProfileIO.read(path: good)
        var foreign = foreignProfile
        for i in foreign.processes[0].modules.indices {
            foreign.processes[0].modules[i].buildID = String(repeating: "ab", count: 20)
        }
        try ProfileIO.write(foreign, to: s.path("foreign.json"))
        try String(text.prefix(text.count / 2)).write(toFile: s.path("truncated.json"), atomically: true, encoding: .utf8)
        try "{\"schema\": \"privbox-profile/1\", \"garbage".write(toFile: s.path("corrupt.json"), atomically: true, encoding: .utf8)
        try "{\"schema\": \"perf-data/9\"}".write(toFile: s.path("other-schema.json"), atomically: true, encoding: .utf8)
        try (String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000))
            .write(toFile: s.path("deep.json"), atomically: true, encoding: .utf8)
        try text.replacingOccurrences(of: "\"calls\": 100", with: "\"calls\": 99999999999999999999999")
            .write(toFile: s.path("huge.json"), atomically: true, encoding: .utf8)
        try Data().write(to: URL(fileURLWithPath: s.path("empty.json")))

        let native = try Runner.run([program, "100"], mode: .native, scratch: s)
        for name in ["missing", "truncated", "corrupt", "other-schema", "deep", "huge", "empty"] {
            let r = try Runner.run([Paths.cli, "run", "-p", s.path("\(name).json"), "--", program, "100"],
                                   environment: Runner.cleanEnvironment)
            XCTAssertEqual(r.stdout, native.stdout, name)
            XCTAssertEqual(r.status, native.status, name)
            XCTAssertEqual(r.stderrLines.count, 1, "\(name): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("privbox: ") && r.stderr.contains("running natively"), "\(name): \(r.stderr)")
            // The same through the environment alone, without the CLI.
            let env = try Runner.run([program, "100"], mode: .accelerate, scratch: s, profile: s.path("\(name).json"))
            XCTAssertEqual(env.stdout, native.stdout, name)
            XCTAssertEqual(env.stderrLines.count, 1, "\(name): \(env.stderr)")
            let report = try Runner.run([Paths.cli, "report", s.path("\(name).json")], environment: Runner.cleanEnvironment)
            XCTAssertEqual(report.status, 1, name)
            XCTAssertEqual(report.stderrLines.count, 1, "\(name): \(report.stderr)")
        }
        // A foreign profile (another build of the program) is valid JSON: `run` hands it to the
        // preload, which refuses it for this build with one line.
        let r = try Runner.run([Paths.cli, "run", "-p", s.path("foreign.json"), "--", program, "100"],
                               environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.stdout, native.stdout)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("another build"), r.stderr)
        // And the good one is accepted silently.
        let ok = try Runner.run([Paths.cli, "run", "-p", good, "--", program, "100"], environment: Runner.cleanEnvironment)
        XCTAssertEqual(ok, native)
    }

    /// The profile is a private file; a symbolic link at the output path is refused (neither
    /// followed nor replaced): the victim and the link stay as they are, and the failed write fails
    /// the command.
    func testProfileFileIsPrivateAndRefusesSymlinksInsteadOfFollowingThem() throws {
        let program = try Programs.path("loop")
        let s = try Scratch()
        let victim = s.path("victim.txt")
        try "keep me".write(toFile: victim, atomically: true, encoding: .utf8)
        let out = s.path("link.json")
        try FileManager.default.createSymbolicLink(atPath: out, withDestinationPath: victim)
        let r = try Runner.run([Paths.cli, "profile", "-o", out, "--", program, "10"], environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("symbolic link"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep me")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: out), victim)
        let file = s.path("private.json")
        let ok = try Runner.run([Paths.cli, "profile", "-o", file, "--", program, "10"], environment: Runner.cleanEnvironment)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let attrs = try FileManager.default.attributesOfItem(atPath: file)
        XCTAssertEqual(attrs[.type] as? FileAttributeType, .typeRegular)
        XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o600)
    }

    func testReportNamesTheBusiestSites() throws {
        let program = try Programs.path("loop")
        let s = try Scratch()
        let out = s.path("r.json")
        _ = try Runner.run([Paths.cli, "profile", "-o", out, "--", program, "3000"], environment: Runner.cleanEnvironment)
        let r = try Runner.run([Paths.cli, "report", out], environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let row = try XCTUnwrap(lines.first { $0.contains(" write ") && $0.contains("+0x") })
        XCTAssertTrue(row.trimmingCharacters(in: .whitespaces).hasPrefix("3000 "), row)
        XCTAssertTrue(row.contains("loop+0x"), row)
        XCTAssertTrue(r.stdout.contains("syscall mix: write"), r.stdout)
    }

    func testDoctorReportsTheMachine() throws {
        let r = try Runner.run([Paths.cli, "doctor"], environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.status, 0, r.stderr)
        for key in ["kernel", "vdso", "syscall user dispatch", "rseq", "io_uring", "mitigations", "raw syscall", "kernel entry",
                    "privbox kernel gate"] {
            XCTAssertTrue(r.stdout.split(separator: "\n").contains { $0.hasPrefix(key) }, "missing \(key):\n\(r.stdout)")
        }
        XCTAssertTrue(r.stdout.contains("loads into /bin/true: yes"), r.stdout)
        let json = try Runner.run([Paths.cli, "doctor", "--json"], environment: Runner.cleanEnvironment)
        let parsed = try JSONParser.parse(json.stdout)
        XCTAssertNotNil(parsed["raw syscall"])
        for sub in ["profile", "run", "report", "doctor"] {
            let help = try Runner.run([Paths.cli, sub, "--help"], environment: Runner.cleanEnvironment)
            XCTAssertEqual(help.status, 0)
            XCTAssertTrue(help.stdout.contains("USAGE: privbox \(sub)"), help.stdout)
        }
    }
}
