// Profiles of real programs: what a user would run privbox on first.
import Foundation
import Profiler
import XCTest

final class RealProgramProfileTests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    func loops(_ path: String) throws -> [JSON] { try ProfileIO.read(path: path).loops ?? [] }

    func string(_ j: JSON, _ key: String) -> String? { if case let .string(s)? = j[key] { return s }; return nil }

    func syscalls(_ j: JSON) -> [String: Int64] {
        guard case let .object(pairs)? = j["syscalls"] else { return [:] }
        var out: [String: Int64] = [:]
        for (k, v) in pairs { if case let .integer(n) = v { out[k] = n } }
        return out
    }

    /// redis-server from Debian under redis-benchmark: the profile names its event-loop functions
    /// and the read/write/epoll_wait mix.
    func testRedisEventLoop() throws {
        guard let server = which("redis-server"), let bench = which("redis-benchmark"), let cli = which("redis-cli") else {
            throw XCTSkip("redis-server, redis-benchmark and redis-cli are needed (scripts/setup installs them)")
        }
        let s = try Scratch()
        let out = s.path("redis.json")
        let port = String(30000 + Int(getpid()) % 20000)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.cli)
        p.arguments = ["profile", "-o", out, "--", server, "--port", port, "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", s.url.path, "--logfile", ""]
        p.environment = Runner.cleanEnvironment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        var up = false
        for _ in 0..<100 where !up {
            up = (try? Runner.run([cli, "-p", port, "ping"], environment: Runner.cleanEnvironment))?.stdout == "PONG\n"
            if !up { usleep(50_000) }
        }
        XCTAssertTrue(up, "redis-server did not start under privbox profile")
        let load = try Runner.run([bench, "-p", port, "-t", "ping,get,set", "-n", "20000", "-c", "20", "-q"],
                                  environment: Runner.cleanEnvironment)
        XCTAssertEqual(load.status, 0, load.stderr)
        _ = try Runner.run([cli, "-p", port, "shutdown", "nosave"], environment: Runner.cleanEnvironment)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)

        let found = try loops(out)
        let functions = Set(found.compactMap { string($0, "function") })
        XCTAssertTrue(functions.contains("aeMain") || functions.contains("aeProcessEvents"), "\(functions)")
        var mix: [String: Int64] = [:]
        for l in found { for (k, v) in syscalls(l) { mix[k, default: 0] += v } }
        for call in ["read", "write", "epoll_wait"] {
            XCTAssertGreaterThan(mix[call] ?? 0, 1000, "\(call) in \(mix)")
        }
        let report = try Runner.run([Paths.cli, "report", "--entry-ns", "150", out], environment: Runner.cleanEnvironment)
        XCTAssertTrue(report.stdout.contains("epoll_wait"), report.stdout)
    }

    /// python3 running a logging-heavy script: the loop that writes the records is found (it is
    /// the interpreter's evaluation loop: privbox sees machine code, not Python source).
    func testPythonLoggingLoop() throws {
        let s = try Scratch()
        let script = s.path("log.py")
        try """
        import logging, sys
        logging.basicConfig(stream=sys.stderr, format="%(process)d %(levelname)s %(message)s", level=logging.INFO)
        log = logging.getLogger("bench")
        for i in range(5000):
            log.info("request %d handled", i)
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let out = s.path("py.json")
        let r = try Runner.run([Paths.cli, "profile", "-o", out, "--", "/usr/bin/python3", script],
                               environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { !$0.hasPrefix("privbox:") }.count, 5000)
        let found = try loops(out)
        // A site's calls are split between loops in proportion to its sampled stacks (about one
        // per millisecond, ~25 in this run), so one sample in another stack moves ~4 %.
        let writes = found.filter { (syscalls($0)["write"] ?? 0) >= 4750 }
        XCTAssertEqual(writes.count, 1, "\(found)")
        XCTAssertEqual(writes.first.flatMap { string($0, "function") }, "_PyEval_EvalFrameDefault")
    }
}
