// The preload's modes and its handling of bad input, on real programs.
import Foundation
import Profiler
import XCTest

final class ModeTests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    func testModeOffIsSilentAndIdentical() throws {
        let s = try Scratch()
        let native = try Runner.run(["/usr/bin/python3", "-c", "print(1)"], mode: .native, scratch: s)
        let off = try Runner.run(["/usr/bin/python3", "-c", "print(1)"], mode: .off, scratch: s)
        XCTAssertEqual(native, Result(stdout: "1\n", stderr: "", status: 0, signalled: false))
        XCTAssertEqual(off, native)
        // Unset PRIVBOX_MODE is off too.
        var env = Runner.cleanEnvironment
        env["LD_PRELOAD"] = Paths.preload
        XCTAssertEqual(try Runner.run(["/usr/bin/python3", "-c", "print(1)"], environment: env), native)
        XCTAssertEqual(files(in: s, matching: ".json"), [], "mode off must write nothing")
    }

    /// Every kind of bad configuration: exactly one `privbox:` line, then a native run with the
    /// program's own output and exit status.
    func testBadConfigurationGivesOneLineAndRunsNatively() throws {
        let s = try Scratch()
        let script = "import sys; print(1); sys.exit(3)"
        let cases: [[String: String]] = [
            ["PRIVBOX_MODE": "bogus"],
            ["PRIVBOX_MODE": "profile", "PRIVBOX_LOG": "loud"],
            ["PRIVBOX_MODE": "profile", "PRIVBOX_INHERIT": "yes"],
            ["PRIVBOX_MODE": "profile", "PRIVBOX_MDOE": "profile"],
            ["PRIVBOX_MODE": "profile", "PRIVBOX_PROFILE": String(repeating: "x", count: 5000)],
            ["PRIVBOX_MODE": "PROFILE\u{1b}[31m"],
        ]
        for extra in cases {
            var env = Runner.cleanEnvironment
            env["LD_PRELOAD"] = Paths.preload
            env["PRIVBOX_PROFILE"] = s.path("bad.%p.json")
            for (k, v) in extra { env[k] = v }
            let r = try Runner.run(["/usr/bin/python3", "-c", script], environment: env)
            XCTAssertEqual(r.stdout, "1\n", "\(extra)")
            XCTAssertEqual(r.status, 3, "\(extra)")
            XCTAssertEqual(r.stderrLines.count, 1, "\(extra): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("privbox: "), "\(extra): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("running natively"), "\(extra): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("\u{1b}"), "control characters must not reach the terminal")
        }
        XCTAssertEqual(files(in: s, matching: ".json"), [], "a rejected configuration must not profile")
    }

    /// A bad setting in a process tree is reported once, by the first process: the tree runs
    /// natively, so its children do not load privbox again.
    func testBadInputInAProcessTreeGivesExactlyOneLine() throws {
        let tree = "bash -c true; /usr/bin/python3 -c 'import subprocess; subprocess.run([\"/bin/true\"])'; echo done"
        for extra in [["PRIVBOX_MODE": "bogus"],
                      ["PRIVBOX_MODE": "accelerate", "PRIVBOX_PROFILE": "/nonexistent/profile.json"]] {
            var env = Runner.cleanEnvironment
            env["LD_PRELOAD"] = Paths.preload
            for (k, v) in extra { env[k] = v }
            let r = try Runner.run(["/bin/bash", "-c", tree], environment: env)
            XCTAssertEqual(r.stdout, "done\n", "\(extra)")
            XCTAssertEqual(r.stderrLines.count, 1, "\(extra): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("privbox: "), r.stderr)
        }
    }

    /// LD_PRELOAD=./libprivbox.so (relative) still reaches children that run elsewhere.
    func testRelativePreloadPathFollowsChildrenIntoOtherDirectories() throws {
        let s = try Scratch()
        var env = Runner.cleanEnvironment
        env["LD_PRELOAD"] = "./libprivbox.so"
        env["PRIVBOX_MODE"] = "profile"
        env["PRIVBOX_PROFILE"] = s.path("%p.json")
        let r = try Runner.run(["/bin/sh", "-c", "cd / && /usr/bin/python3 -c 'import os; print(os.getppid() > 0)'"],
                               environment: env, cwd: Paths.bin.path)
        XCTAssertEqual(r.stdout, "True\n")
        XCTAssertEqual(r.stderr, "", "no loader error in the child")
        let profiles = try files(in: s, matching: ".json").map { try ProfileIO.read(path: $0) }
        XCTAssertTrue(profiles.flatMap(\.processes).contains { $0.exe.contains("python3") }, "the child was profiled")
        env["PRIVBOX_MODE"] = "off"
        XCTAssertEqual(try Runner.run(["/bin/sh", "-c", "cd / && /bin/echo hi"], environment: env, cwd: Paths.bin.path),
                       Result(stdout: "hi\n", stderr: "", status: 0, signalled: false))
    }

    /// Every wrapper returns the same value and errno as libc, in every mode.
    func testWrappersReturnAndErrnoMatchNativeInEveryMode() throws {
        let program = try Programs.path("wrappers")
        let s = try Scratch()
        let native = try Runner.run([program], mode: .native, scratch: s)
        XCTAssertEqual(native.status, 0, native.stderr)
        XCTAssertGreaterThan(native.stdout.split(separator: "\n").count, 150)
        let profile = try validProfile(for: program, scratch: s)
        for mode in [Mode.off, .profile, .accelerate, .auto] {
            let r = try Runner.run([program], mode: mode, scratch: s, profile: mode == .accelerate ? profile : nil)
            XCTAssertEqual(r.stdout, native.stdout, "mode \(mode)")
            XCTAssertEqual(r.status, native.status, "mode \(mode)")
            XCTAssertEqual(r.stderr, "", "mode \(mode)")
        }
    }

    /// The syscall each wrapper is recorded under is one the kernel really saw (strace).
    func testRecordedSyscallNamesAreWhatStraceSees() throws {
        guard let strace = which("strace") else { throw XCTSkip("strace is not installed") }
        let program = try Programs.path("wrappers")
        let s = try Scratch()
        let log = s.path("strace.log")
        let r = try Runner.run([strace, "-f", "-qq", "-o", log, program], mode: .profile, scratch: s)
        XCTAssertEqual(r.status, 0, r.stderr)
        let traced = try String(contentsOfFile: log, encoding: .utf8)
        var seen = Set<String>()
        for line in traced.split(separator: "\n") {
            // "PID  name(args) = result"; strace pads the pid, so split on any run of spaces.
            let fields = line.split(separator: " ", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 2, let paren = fields[1].firstIndex(of: "(") else { continue }
            seen.insert(String(fields[1][..<paren]))
        }
        let profiles = try files(in: s, matching: ".json").map { try ProfileIO.read(path: $0) }
        // syscall(1000) is an unassigned number strace prints in hex: it cannot appear in strace's
        // log by name.
        let tracees = profiles.flatMap(\.processes).filter { !$0.exe.hasSuffix("/strace") } // strace is preloaded too
        XCTAssertGreaterThanOrEqual(tracees.count, 2, "the program and the rm it runs through system()")
        let recorded = Set(tracees.flatMap(\.sites).map(\.syscall))
            .filter { !$0.hasPrefix("syscall_") }
        XCTAssertGreaterThan(recorded.count, 60)
        XCTAssertEqual(recorded.subtracting(seen), [], "recorded under a syscall strace never saw")
    }

    /// Threads, fork, vfork+exec, posix_spawn, signals inside wrappers, close_range/closefrom and
    /// dup2 over stdio give the same transcript in every mode.
    func testProgramLifecycleMatchesNativeInEveryMode() throws {
        let program = try Programs.path("lifecycle")
        let s = try Scratch()
        for scenario in [["threads"], ["fork"], ["vfork-exec"], ["signals"], ["fds", s.url.path], ["fdnums"], ["exit", "42"]] {
            let native = try Runner.run([program] + scenario, mode: .native, scratch: s)
            XCTAssertEqual(native.stderr, "", "\(scenario)")
            for mode in [Mode.off, .profile, .auto] {
                let r = try Runner.run([program] + scenario, mode: mode, scratch: s)
                XCTAssertEqual(r, native, "\(scenario) in mode \(mode)")
            }
        }
    }

    /// PRIVBOX_INHERIT=0: the process itself is profiled, the programs it starts are not.
    func testInheritZeroStopsAtTheFirstProcess() throws {
        let s = try Scratch()
        let script = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import os; print(os.environ.get(\"LD_PRELOAD\", \"none\"))'])"
        let r = try Runner.run(["/usr/bin/python3", "-c", script], mode: .profile, scratch: s,
                               extra: ["PRIVBOX_INHERIT": "0"])
        XCTAssertEqual(r.stdout, "none\n")
        XCTAssertEqual(files(in: s, matching: ".json").count, 1)
        let inherited = try Runner.run(["/usr/bin/python3", "-c", script], mode: .profile, scratch: s)
        XCTAssertTrue(inherited.stdout.hasSuffix("libprivbox.so\n"), inherited.stdout)
        XCTAssertEqual(files(in: s, matching: ".json").count, 3, "both processes of the second run write one")
    }

    /// A setuid program: the loader drops the preload (secure execution); nothing breaks and
    /// privbox says nothing.
    func testSetuidProgramRunsUnaffected() throws {
        guard getuid() == 0, let setpriv = which("setpriv") else { throw XCTSkip("needs root and setpriv") }
        let s = try Scratch()
        let source = s.path("whoami.c")
        try "#include <stdio.h>\n#include <unistd.h>\nint main(void){printf(\"uid=%d euid=%d\\n\",(int)getuid(),(int)geteuid());return 4;}\n"
            .write(toFile: source, atomically: true, encoding: .utf8)
        let binary = s.path("whoami")
        XCTAssertEqual(try Runner.run(["cc", "-o", binary, source], environment: Runner.cleanEnvironment).status, 0)
        chmod(s.url.path, 0o755)
        chmod(binary, 0o4755)
        let cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", binary]
        let native = try Runner.run(cmd, mode: .native, scratch: s)
        XCTAssertEqual(native.stdout, "uid=65534 euid=0\n")
        for mode in [Mode.off, .profile] {
            let r = try Runner.run(cmd, mode: mode, scratch: s, profile: "/tmp/privbox-setuid-%p.json")
            XCTAssertEqual(r.stdout, native.stdout, "\(mode)")
            XCTAssertEqual(r.status, 4)
            XCTAssertFalse(r.stderr.contains("privbox"), r.stderr)
        }
    }

    /// Builds a valid profile of `program` (profile mode, then merged) and returns its path.
    func validProfile(for program: String, scratch s: Scratch) throws -> String {
        let out = s.path("valid-profile.json")
        let r = try Runner.run([Paths.cli, "profile", "-o", out, "--", program], environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }
}
