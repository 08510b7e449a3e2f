// Issue 16, defects 8-10: signals sent to `privbox profile` itself, profiles with extreme counts,
// and the exit status of a command that cannot be started. Each test drives the release binaries
// the way a user or a service manager would, and checks what the command saw and how privbox ended.
import Foundation
import Profiler
import XCTest

/// `privbox` started with Foundation's Process so that the test has its pid (Runner.run waits),
/// with the command's stdout read line by line: each step waits for the line that proves it
/// happened, never for a length of time. The deadline only bounds a failure (a lost signal).
final class Spawned {
    let process = Process()
    private let out = Pipe(), err = Pipe()
    private var buffer: [UInt8] = []
    private var eof = false
    /// Processes to kill if the test fails half-way (the command, once it said its pid).
    var strays: [pid_t] = []
    static let deadline: TimeInterval = 60

    init(_ args: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: args[0])
        process.arguments = Array(args.dropFirst())
        process.environment = environment
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }

    /// The next line of the command's stdout, nil at end of file or after the deadline.
    func line() -> String? {
        let fd = out.fileHandleForReading.fileDescriptor
        let end = Date().addingTimeInterval(Self.deadline)
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let text = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return text
            }
            if eof { return nil }
            let left = end.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 1) * 1000))
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { eof = true } else { buffer += chunk[0..<n] }
        }
    }

    /// Waits for privbox to exit (bounded): (status or signal, signalled), nil if it did not.
    func waitForExit() -> (status: Int32, signalled: Bool)? {
        let end = Date().addingTimeInterval(Self.deadline)
        while process.isRunning && Date() < end { usleep(10_000) }
        if process.isRunning { return nil }
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }

    /// The rest of the command's stdout and privbox's stderr; only once privbox has exited.
    func rest() -> (lines: [String], stderr: [String]) {
        var lines: [String] = []
        while let l = line() { lines.append(l) }
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (lines, e.split(separator: "\n").map(String.init))
    }

    func cleanup() {
        for p in strays { kill(p, SIGKILL) }
        if process.isRunning { kill(pid, SIGKILL) }
    }
}

final class HostileProcessTests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    /// A private TMPDIR for privbox, so the test sees whether its temporary directory is left.
    private func environment(_ scratch: Scratch) throws -> [String: String] {
        let tmp = scratch.path("tmp")
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        var env = Runner.cleanEnvironment
        env["TMPDIR"] = tmp
        return env
    }

    private func leftovers(_ scratch: Scratch) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: scratch.path("tmp"))) ?? ["(no tmp)"]
    }

    private func readyPid(_ run: Spawned) throws -> pid_t {
        let ready = try XCTUnwrap(run.line(), "the command never said it was ready")
        let pid = try XCTUnwrap(pid_t(ready.dropFirst("ready ".count)), "unexpected line \(ready)")
        run.strays.append(pid)
        return pid
    }

    // MARK: - Defect 8: signals sent to privbox itself

    /// Every signal a test sends to privbox's pid (not the command's) reaches the command exactly
    /// once; a signal the command sends to privbox does not come back to it; privbox exits after
    /// the command, the way it did, with the profile merged and no temporary directory left.
    func testSignalsSentToPrivboxReachTheCommandOnceEach() throws {
        let s = try Scratch()
        let prog = try Programs.path("hostile_signals")
        let output = s.path("p.json")
        let run = try Spawned([Paths.cli, "profile", "-o", output, "--", prog, "echo"], environment: try environment(s))
        defer { run.cleanup() }
        let command = try readyPid(run)
        let signals: [(Int32, String)] = [(SIGUSR1, "USR1"), (SIGUSR2, "USR2"), (SIGALRM, "ALRM"), (SIGINT, "INT"),
                                          (SIGHUP, "HUP"), (SIGWINCH, "WINCH"), (SIGCONT, "CONT")]
        for (sig, name) in signals {
            guard run.process.isRunning else {
                return XCTFail("privbox ended (status \(run.process.terminationStatus), reason "
                               + "\(run.process.terminationReason.rawValue)) before kill -\(name); the command is still running")
            }
            XCTAssertEqual(kill(run.pid, sig), 0)
            let got = run.line()
            guard got == "got \(name)" else {
                return XCTFail("after kill -\(name) to privbox, the command printed \(got ?? "nothing")")
            }
        }
        let ended = try XCTUnwrap(run.waitForExit(), "privbox did not exit after its command")
        let rest = run.rest()
        XCTAssertEqual(rest.lines, [], "the command got a signal twice")
        XCTAssertFalse(ended.signalled)
        XCTAssertEqual(ended.status, 0)
        XCTAssertEqual(rest.stderr.count, 1, "\(rest.stderr)")
        XCTAssertTrue(rest.stderr.first?.hasPrefix("privbox: profile of 1 process") ?? false, "\(rest.stderr)")
        let profile = try ProfileIO.read(path: output)
        XCTAssertEqual(profile.processes.map(\.pid), [Int(command)])
        XCTAssertGreaterThan(profile.processes.first?.totalCalls ?? 0, 0)
        XCTAssertEqual(leftovers(s), [])
    }

    /// SIGINT sent to privbox reaches a command that handles it and then dies of it: privbox
    /// dies of SIGINT too (so a shell waiting for it stops as it would for the command).
    func testCommandDyingOfAForwardedSigintMakesPrivboxDieOfIt() throws {
        let s = try Scratch()
        let prog = try Programs.path("hostile_signals")
        let output = s.path("p.json")
        let run = try Spawned([Paths.cli, "profile", "-o", output, "--", prog, "reraise"], environment: try environment(s))
        defer { run.cleanup() }
        _ = try readyPid(run)
        XCTAssertEqual(kill(run.pid, SIGINT), 0)
        let got = run.line()
        guard got == "got INT" else { return XCTFail("after kill -INT to privbox, the command printed \(got ?? "nothing")") }
        let ended = try XCTUnwrap(run.waitForExit(), "privbox did not exit after its command")
        XCTAssertTrue(ended.signalled, "privbox exited with \(ended.status)")
        XCTAssertEqual(ended.status, SIGINT)
        XCTAssertEqual(try ProfileIO.read(path: output).processes.count, 0)
        XCTAssertEqual(leftovers(s), [])
    }

    /// SIGINT sent to privbox while the command leaves it at its default action: the command
    /// dies, privbox merges what exists (the profile of the command's child, which exited
    /// normally) and dies of SIGINT.
    func testSigintToPrivboxWithTheCommandAtDefaultsMergesWhatExists() throws {
        let s = try Scratch()
        let prog = try Programs.path("hostile_signals")
        let output = s.path("p.json")
        let run = try Spawned([Paths.cli, "profile", "-o", output, "--", prog, "default"], environment: try environment(s))
        defer { run.cleanup() }
        let announced = try XCTUnwrap(run.line(), "the command did not say its child's pid")
        let child = try XCTUnwrap(Int(announced.dropFirst("child ".count)), "unexpected line \(announced)")
        _ = try readyPid(run)
        XCTAssertEqual(kill(run.pid, SIGINT), 0)
        guard let ended = run.waitForExit() else {
            return XCTFail("privbox did not exit within \(Spawned.deadline) s of kill -INT (the command kept running)")
        }
        XCTAssertTrue(ended.signalled, "privbox exited with \(ended.status)")
        XCTAssertEqual(ended.status, SIGINT)
        XCTAssertEqual(try ProfileIO.read(path: output).processes.map(\.pid), [child])
        XCTAssertEqual(leftovers(s), [])
    }

    /// What privbox was started with reaches the command as exec would pass it: a signal privbox
    /// inherited as ignored (nohup, a shell's background job) stays ignored, the blocked mask is
    /// the same, and privbox's own handlers are not inherited. An ignored SIGCHLD (which makes the
    /// kernel discard a child's exit status) does not keep privbox from passing the status on.
    func testCommandStartsWithTheDispositionsAndMaskPrivboxWasGiven() throws {
        let s = try Scratch()
        let prog = try Programs.path("hostile_signals")
        let setup = "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
            + "signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
            + "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2]); os.execv(sys.argv[1], sys.argv[1:])"
        let r = try Runner.run(["python3", "-c", setup, Paths.cli, "profile", "-o", s.path("p.json"), "--", prog, "dispositions"],
                               environment: try environment(s))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.split(separator: "\n").map(String.init), [
            "HUP ignored unblocked", "INT default unblocked", "QUIT default unblocked", "TERM default unblocked",
            "USR1 default unblocked", "USR2 default blocked",
        ])
    }

    // MARK: - Defect 9: arithmetic on counts

    /// Sets every field named in `values`, wherever it is (sites, stacks, loops, processes).
    private func setting(_ json: JSON, _ values: [String: Int64]) -> JSON {
        switch json {
        case let .object(pairs):
            return .object(pairs.map { key, value in
                if let v = values[key], case .integer = value { return (key, .integer(v)) }
                return (key, setting(value, values))
            })
        case let .array(items): return .array(items.map { setting($0, values) })
        default: return json
        }
    }

    /// `privbox report` (text, folded stacks, SVG) and `privbox run` on a real profile whose counts
    /// were set to extreme values: every run ends with a status, never by a signal; the report
    /// exits 0, or 1 with one line that names what it refused; the command under `run` exits 0.
    func testReportAndRunNeverTrapOnExtremeCounts() throws {
        let s = try Scratch()
        let prog = try Programs.path("hostile_signals")
        let base = s.path("base.json")
        let made = try Runner.run([Paths.cli, "profile", "-o", base, "--", prog, "busy"], environment: Runner.cleanEnvironment)
        XCTAssertEqual(made.status, 0, made.stderr)
        let json = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: base))))
        let max = Int64.max
        let counts = ["calls", "checked", "errors", "timed", "kernel_ns", "user_ns", "count", "wall_ns", "dropped", "stacks_dropped"]
        let variants: [(String, [String: Int64])] = [
            ("all-max", Dictionary(uniqueKeysWithValues: counts.map { ($0, max) })),
            ("errors-over-checked", ["calls": max, "checked": 1, "errors": 2]),
            ("unchecked-errors", ["checked": 0, "errors": max, "timed": 0, "kernel_ns": max, "user_ns": 0, "wall_ns": 1]),
            ("zero-stack-counts", ["count": 0]),
            ("huge-threads", ["thread": 1_000_000, "threads": 1_000_000, "calls": max, "wall_ns": 1,
                              "kernel_ns": max, "user_ns": max]),
            ("all-zero", Dictionary(uniqueKeysWithValues: counts.map { ($0, 0) })),
        ]
        var files: [(String, String)] = []
        for (name, values) in variants {
            let path = s.path("\(name).json")
            try JSONWriter.write(setting(json, values)).write(toFile: path, atomically: true, encoding: .utf8)
            files.append((name, path))
        }
        // Beyond what a profile's integers hold (UInt64.max): refused with one line.
        let text = JSONWriter.write(json)
        let over = s.path("uint64-max.json")
        try text.replacingOccurrences(of: #""calls": [0-9]+"#, with: "\"calls\": 18446744073709551615", options: .regularExpression)
            .write(toFile: over, atomically: true, encoding: .utf8)
        files.append(("uint64-max", over))

        for (name, path) in files {
            for args in [["report", "--entry-ns", "50", path], ["report", "--folded", path],
                         ["report", "--entry-ns", "50", "--svg", s.path("\(name).svg"), path]] {
                let r = try Runner.run([Paths.cli] + args, environment: Runner.cleanEnvironment)
                XCTAssertFalse(r.signalled, "\(name): privbox \(args.joined(separator: " ")) died of signal \(r.status): \(r.stderr)")
                if r.status == 1 {
                    XCTAssertEqual(r.stderrLines.count, 1, "\(name): \(r.stderr)")
                    XCTAssertTrue(r.stderr.hasPrefix("privbox: "), "\(name): \(r.stderr)")
                } else {
                    XCTAssertEqual(r.status, 0, "\(name): \(args.joined(separator: " ")): \(r.stderr)")
                }
            }
            XCTAssertEqual(name == "uint64-max", (try? ProfileIO.read(path: path)) == nil, name)
            let r = try Runner.run([Paths.cli, "run", "-p", path, "--", prog, "busy"], environment: Runner.cleanEnvironment)
            XCTAssertFalse(r.signalled, "\(name): the command under privbox run died of signal \(r.status): \(r.stderr)")
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
        }
    }

    // MARK: - Defect 10: exit status of a command that cannot be started

    /// Both commands exit as bash does for a command it cannot start (127: not found; 126: found
    /// but not executable, a directory, no x permission), with one `privbox:` line, and
    /// `profile` writes no profile.
    func testCommandsThatCannotStartExitAsShellsDo() throws {
        let s = try Scratch()
        let noExec = s.path("no-x")
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: noExec)
        XCTAssertEqual(chmod(noExec, 0o644), 0)
        let dir = s.path("a-directory")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let profile = s.path("valid.json")
        try #"{"schema": "privbox-profile/1", "tool": "test", "processes": []}"#
            .write(toFile: profile, atomically: true, encoding: .utf8)
        let cases: [(String, Int32)] = [
            ("/nonexistent", 127), ("/etc/passwd", 126), (dir, 126), (noExec, 126), ("privbox-no-such-command-16", 127),
        ]
        for (command, expected) in cases {
            let shell = try Runner.run(["/bin/bash", "-c", "\"$0\"", command], environment: Runner.cleanEnvironment)
            XCTAssertEqual(shell.status, expected, "bash on \(command)")
            for sub in [["profile", "-o", s.path("out.json")], ["run", "-p", profile]] {
                let r = try Runner.run([Paths.cli] + sub + ["--", command], environment: Runner.cleanEnvironment)
                let what = "privbox \(sub[0]) -- \(command)"
                XCTAssertFalse(r.signalled, what)
                XCTAssertEqual(r.status, expected, "\(what): \(r.stderr)")
                XCTAssertEqual(r.stderrLines.count, 1, "\(what): \(r.stderr)")
                XCTAssertTrue(r.stderr.hasPrefix("privbox: cannot run \(command): "), "\(what): \(r.stderr)")
                XCTAssertFalse(FileManager.default.fileExists(atPath: s.path("out.json")), "\(what) wrote a profile")
            }
        }
    }

    /// An executable text file without a `#!` line is run by /bin/sh, by bash and by execvp (so by
    /// `privbox run`), by path and found on PATH; `privbox profile` runs it the same way.
    func testScriptWithoutInterpreterLineRunsAsShellsRunIt() throws {
        let s = try Scratch()
        let script = s.path("no-interpreter-line")
        try "echo from sh \"$@\"; exit 5\n".write(toFile: script, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(script, 0o755), 0)
        var env = Runner.cleanEnvironment
        env["PATH"] = s.url.path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        for command in [script, "no-interpreter-line"] {
            let shell = try Runner.run(["/bin/bash", "-c", "\"$0\" \"$@\"", command, "a b"], environment: env)
            XCTAssertEqual(shell.status, 5, "bash on \(command)")
            XCTAssertEqual(shell.stdout, "from sh a b\n")
            for sub in [["profile", "-o", s.path("out.json")], ["run", "-p", s.path("out.json")]] {
                let r = try Runner.run([Paths.cli] + sub + ["--", command, "a b"], environment: env)
                XCTAssertEqual(r.status, 5, "privbox \(sub[0]) -- \(command): \(r.stderr)")
                XCTAssertEqual(r.stdout, "from sh a b\n", "privbox \(sub[0]) -- \(command)")
            }
        }
    }
}
