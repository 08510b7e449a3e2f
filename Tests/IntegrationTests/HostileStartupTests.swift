// Issue 16, the preload's start-up in hostile environments: closed standard descriptors, a tiny
// stack, relative profile paths in process trees that change directory, bad profiles reported once
// per tree, and the unknown-variable hint. Each test was seen to fail before its fix.
import Foundation
import Profiler
import XCTest

final class HostileStartupTests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    /// Every variable the preload reads (Sources/CShim/config.c), as the README lists them.
    static let knownVariables = ["PRIVBOX_MODE", "PRIVBOX_PROFILE", "PRIVBOX_LOG", "PRIVBOX_INHERIT",
                                 "PRIVBOX_INLINE", "PRIVBOX_COPY", "PRIVBOX_GATE"]

    /// The preload with exactly these settings (each test sets PRIVBOX_MODE itself).
    private func preloaded(_ settings: [String: String]) -> [String: String] {
        Runner.environment(.off, extra: settings)
    }

    /// A program started with fd 2 closed opens a data file, which gets fd 2. privbox's exit line
    /// ("cannot write profile ...") must not land in that file: privbox logs to fd 2 only if fd 2
    /// was open when the process started.
    func testLogIsDroppedWhenStderrWasClosedAtStart() throws {
        let s = try Scratch()
        let data = s.path("data.txt")
        let script = "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600); "
            + "os.write(fd, b'data\\n'); print(fd)"
        for level in ["warn", "debug"] {
            try? FileManager.default.removeItem(atPath: data)
            let env = preloaded(["PRIVBOX_MODE": "profile", "PRIVBOX_LOG": level,
                                 "PRIVBOX_PROFILE": "/nonexistent/dir/%p.json"])
            let r = try Runner.run(["/bin/sh", "-c", "exec 2>&-; exec /usr/bin/python3 -c \"$0\" \"$1\"", script, data],
                                   environment: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(r.stdout, "2\n", "the data file must be the program's fd 2 for the test to mean anything")
            XCTAssertEqual(try String(contentsOfFile: data, encoding: .utf8), "data\n",
                           "privbox wrote into the program's data file (PRIVBOX_LOG=\(level))")
        }
        // With fd 2 open, the same failure is reported there, once.
        let env = preloaded(["PRIVBOX_MODE": "profile", "PRIVBOX_PROFILE": "/nonexistent/dir/%p.json"])
        let r = try Runner.run(["/usr/bin/python3", "-c", script, data], environment: env)
        XCTAssertEqual(r.stdout, "3\n")
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("privbox: ") && r.stderr.contains("/nonexistent/dir/"), r.stderr)
    }

    /// `ulimit -s 32`: the preload must run in every mode where the program runs natively (no
    /// function of it may need more than a few KB of stack).
    func testSmallStackLimitRunsInEveryMode() throws {
        let program = try Programs.path("loop")
        let s = try Scratch()
        let profile = s.path("loop.json")
        let recorded = try Runner.run([Paths.cli, "profile", "--inline", "-o", profile, "--", program, "30000"],
                                      environment: Runner.cleanEnvironment)
        XCTAssertEqual(recorded.status, 0, recorded.stderr)
        let small = "ulimit -s 32 && exec \"$@\""
        let native = try Runner.run(["/bin/bash", "-c", small, "bash", program, "30000"],
                                    environment: Runner.cleanEnvironment)
        XCTAssertEqual(native.status, 0, "the program itself must run with a 32 KB stack: \(native.stderr)")
        let cache = s.path("cache")
        let cases: [(String, [String: String])] = [
            ("off", ["PRIVBOX_MODE": "off"]),
            ("profile", ["PRIVBOX_MODE": "profile", "PRIVBOX_PROFILE": s.path("small.%p.json")]),
            ("profile-inline", ["PRIVBOX_MODE": "profile", "PRIVBOX_INLINE": "1",
                                "PRIVBOX_PROFILE": s.path("small-inline.%p.json")]),
            // The first accelerated run computes and caches the plan, the second reads it.
            ("accelerate", ["PRIVBOX_MODE": "accelerate", "PRIVBOX_PROFILE": profile, "PRIVBOX_COPY": "always"]),
            ("accelerate-cached", ["PRIVBOX_MODE": "accelerate", "PRIVBOX_PROFILE": profile, "PRIVBOX_COPY": "always"]),
            ("auto", ["PRIVBOX_MODE": "auto"]),
        ]
        for (name, settings) in cases {
            var env = preloaded(settings)
            env["XDG_CACHE_HOME"] = cache
            let r = try Runner.run(["/bin/bash", "-c", small, "bash", program, "30000"], environment: env)
            XCTAssertFalse(r.signalled, "\(name): killed by signal \(r.status)")
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            XCTAssertEqual(r.stdout, native.stdout, name)
            XCTAssertEqual(r.stderr, "", name)
        }
        XCTAssertFalse(files(in: s, matching: ".json").filter { $0.contains("small.") }.isEmpty,
                       "profile mode wrote its profile under the small stack")
    }

    /// A relative PRIVBOX_PROFILE is made absolute by the first process, so a child that runs in
    /// another directory (a `make -C`, a shim that cds) uses the same file.
    func testRelativeProfilePathFollowsChildrenIntoOtherDirectories() throws {
        let program = try Programs.path("loop")
        let s = try Scratch()
        // A working directory with a '%' in its name: in profile mode the path is a pattern.
        let dir = s.path("run%p dir")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let recorded = try Runner.run([Paths.cli, "profile", "-o", dir + "/privbox-profile.json", "--", program, "3000"],
                                      environment: Runner.cleanEnvironment)
        XCTAssertEqual(recorded.status, 0, recorded.stderr)
        let inOtherDir = "cd / && exec \"$@\""
        // bash defines its own setenv/getenv, which do nothing before its main(): privbox edits the
        // environment itself. (An unset PRIVBOX_PROFILE is added to environ, which bash, reading
        // main()'s envp, does not see: only dash is tried without it.)
        for (shell, settings) in [("/bin/sh", ["PRIVBOX_PROFILE": "privbox-profile.json"]),
                                  ("/bin/bash", ["PRIVBOX_PROFILE": "privbox-profile.json"]),
                                  ("/bin/sh", [:])] {
            var all = settings
            all["PRIVBOX_MODE"] = "accelerate"
            all["PRIVBOX_LOG"] = "info"
            let r = try Runner.run([shell, "-c", inOtherDir, "sh", program, "3000"],
                                   environment: preloaded(all), cwd: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertFalse(r.stderr.contains("cannot open profile"), "\(shell) \(settings): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("hot-loop sites routed"),
                          "the child read the profile (\(shell) \(settings)): \(r.stderr)")
        }
        // A relative LD_PRELOAD through bash, whose setenv privbox must not rely on.
        var relative = Runner.cleanEnvironment
        relative["LD_PRELOAD"] = "./libprivbox.so"
        relative["PRIVBOX_MODE"] = "off"
        XCTAssertEqual(try Runner.run(["/bin/bash", "-c", "cd / && /bin/echo hi"], environment: relative, cwd: Paths.bin.path),
                       Result(stdout: "hi\n", stderr: "", status: 0, signalled: false))
        // Profile mode: every process of the tree writes into the first one's directory.
        let r = try Runner.run(["/bin/sh", "-c", inOtherDir, "sh", program, "300"],
                               environment: preloaded(["PRIVBOX_MODE": "profile", "PRIVBOX_PROFILE": "tree.%p.json"]),
                               cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        let written = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("tree.") }
        XCTAssertEqual(written.count, 1, "\(written)")
        let processes = try written.flatMap { try ProfileIO.read(path: dir + "/" + $0).processes }
        XCTAssertTrue(processes.contains { $0.exe == program }, "the child's profile is in the first process's directory")
    }

    /// The hint for an unknown PRIVBOX_* variable names every variable privbox reads, and a
    /// tree sent native by bad input loses every PRIVBOX_* variable, not only some.
    func testUnknownVariableHintAndNativeTreeCoverEveryVariable() throws {
        let r = try Runner.run(["/bin/true"], environment: preloaded(["PRIVBOX_MODE": "profile", "PRIVBOX_MDOE": "x"]))
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        for name in Self.knownVariables {
            XCTAssertTrue(r.stderr.contains(name), "the hint leaves out \(name): \(r.stderr)")
        }
        var settings: [String: String] = ["PRIVBOX_MODE": "bogus"]
        for name in Self.knownVariables where name != "PRIVBOX_MODE" { settings[name] = "" }
        settings["PRIVBOX_COPY"] = "0"
        settings["PRIVBOX_GATE"] = "off"
        settings["PRIVBOX_INLINE"] = "0"
        let tree = try Runner.run(["/bin/bash", "-c", "env | grep ^PRIVBOX_ | sort; echo end"],
                                  environment: preloaded(settings))
        XCTAssertEqual(tree.stdout, "end\n", "the native tree still carries privbox's variables")
        XCTAssertEqual(tree.stderrLines.count, 1, tree.stderr)
    }
    /// A profile that cannot be used is reported once per process tree, by its first process,
    /// even when the profile does not mention that process's program (a shim script that execs
    /// the real one): the whole file is validated, once per version of it.
    func testBadProfileIsReportedByTheFirstProcessWhateverItIs() throws {
        let s = try Scratch()
        let shim = s.path("shim")
        try "#!/bin/bash\nexec /usr/bin/python3 \"$@\"\n".write(toFile: shim, atomically: true, encoding: .utf8)
        chmod(shim, 0o755)
        // Whole-looking JSON of the right schema that mentions no program, but is not a profile.
        let bad = s.path("bad.json")
        try "{\"schema\": \"privbox-profile/1\", \"processes\": \"x\"}\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let script = "import subprocess; subprocess.run(['/bin/true']); "
            + "print('core' if 'libprivbox_core' in open('/proc/self/maps').read() else 'no core')"
        let cache = s.path("cache")
        let tree = "import subprocess; subprocess.run(['/bin/true']); print(1)"
        for command in [[shim, "-c", tree], ["/usr/bin/python3", "-c", tree]] {
            let env = preloaded(["PRIVBOX_MODE": "accelerate", "PRIVBOX_PROFILE": bad, "XDG_CACHE_HOME": cache])
            for round in 0..<2 {
                let r = try Runner.run(command, environment: env)
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertEqual(r.stdout, "1\n")
                XCTAssertEqual(r.stderrLines.count, 1, "\(command[0]) round \(round): \(r.stderr)")
                XCTAssertTrue(r.stderr.hasPrefix("privbox: profile \(bad) is not usable") && r.stderr.contains("running natively"),
                              "\(command[0]) round \(round): \(r.stderr)")
            }
        }
        // A valid profile of another program: silent, and validated only once (the second run of
        // python3 loads no Swift core).
        let other = s.path("other.json")
        let recorded = try Runner.run([Paths.cli, "profile", "-o", other, "--", try Programs.path("loop"), "300"],
                                      environment: Runner.cleanEnvironment)
        XCTAssertEqual(recorded.status, 0, recorded.stderr)
        let env = preloaded(["PRIVBOX_MODE": "accelerate", "PRIVBOX_PROFILE": other, "XDG_CACHE_HOME": cache])
        let first = try Runner.run(["/usr/bin/python3", "-c", "print(1)"], environment: env)
        XCTAssertEqual(first, Result(stdout: "1\n", stderr: "", status: 0, signalled: false))
        let second = try Runner.run(["/usr/bin/python3", "-c", script], environment: env)
        XCTAssertEqual(second, Result(stdout: "no core\n", stderr: "", status: 0, signalled: false),
                       "a profile validated before is not validated again")
    }

    /// A broken installation (libprivbox_core.so missing) is reported once per tree, not by every
    /// process that had the profile validated or planned.
    func testBrokenInstallationIsReportedOncePerTree() throws {
        let s = try Scratch()
        let lib = s.path("lib")
        try FileManager.default.createDirectory(atPath: lib, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Paths.preload, toPath: lib + "/libprivbox.so")
        let profile = s.path("p.json")
        let recorded = try Runner.run([Paths.cli, "profile", "-o", profile, "--", try Programs.path("loop"), "300"],
                                      environment: Runner.cleanEnvironment)
        XCTAssertEqual(recorded.status, 0, recorded.stderr)
        var env = preloaded(["PRIVBOX_MODE": "accelerate", "PRIVBOX_PROFILE": profile, "XDG_CACHE_HOME": s.path("cache")])
        env["LD_PRELOAD"] = lib + "/libprivbox.so"
        let r = try Runner.run(["/bin/bash", "-c", "/bin/true; /usr/bin/python3 -c 'print(1)'; /bin/echo done"], environment: env)
        XCTAssertEqual(r.stdout, "1\ndone\n")
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("libprivbox_core.so"), r.stderr)
    }
}
