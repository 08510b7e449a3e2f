// Accelerate and auto modes: each executor serves its hot sites and stays exact across the events
// that could make its records stale (programs/exactness.c compares every answer with a raw
// syscall the preload never sees).
import Foundation
import XCTest

final class ExecutorTests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    /// Runs one case natively, under profile, accelerate (with that profile) and auto; every check
    /// passes natively and the output is the same in every mode. Under accelerate, the executors
    /// really served the sites (the exit report lists them on, with served samples).
    func exactness(_ name: String, executor: String) throws {
        let program = try Programs.path("exactness")
        let s = try Scratch()
        let native = try Runner.run([program, name], mode: .native, scratch: s)
        XCTAssertEqual(native.status, 0, native.stderr)
        XCTAssertFalse(native.stdout.contains("FAIL"), native.stdout)
        XCTAssertGreaterThanOrEqual(native.stdout.split(separator: "\n").count, 2)
        let profile = s.path("\(name).json")
        let profiled = try Runner.run([Paths.cli, "profile", "-o", profile, "--", program, name],
                                      environment: Runner.cleanEnvironment)
        XCTAssertEqual(profiled.stdout, native.stdout, "profile")
        // With copies made wherever one can serve (these loops are too short for the default
        // threshold): the identity calls then go through the copies' inlined loads.
        let copied = try Runner.run([program, name], mode: .accelerate, scratch: s, profile: profile,
                                    extra: ["PRIVBOX_LOG": "info", "PRIVBOX_COPY": "always"])
        XCTAssertEqual(copied.stdout, native.stdout, "accelerate with copies:\n\(copied.stderr)")
        XCTAssertEqual(copied.status, 0)
        if executor == "identity" {
            XCTAssertTrue(copied.stderr.contains("privbox: copied "), "no copy was made:\n\(copied.stderr)")
        }
        let accel = try Runner.run([program, name], mode: .accelerate, scratch: s, profile: profile,
                                   extra: ["PRIVBOX_LOG": "info"])
        XCTAssertEqual(accel.stdout, native.stdout, "accelerate:\n\(accel.stderr)")
        XCTAssertEqual(accel.status, 0)
        let on = accel.stderrLines.filter { $0.contains(": \(executor) on;") }
        XCTAssertFalse(on.isEmpty, "no site was served by \(executor):\n\(accel.stderr)")
        // A sampled call was answered by the executor; or the site is an identity call's fast
        // entry, whose cached answers are not sampled (see interpose_routed.c).
        let served = on.compactMap { line -> Int? in
            guard let r = line.range(of: "sampled ") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }.reduce(0, +)
        let fast = on.contains { $0.contains("fast entry") }
        XCTAssertTrue(served > 0 || fast, "the executor never answered a sampled call:\n\(accel.stderr)")
        let auto = try Runner.run([program, name], mode: .auto, scratch: s)
        XCTAssertEqual(auto.stdout, native.stdout, "auto:\n\(auto.stderr)")
        XCTAssertEqual(auto.stderr, "")
    }

    func testIdentityAfterFork() throws { try exactness("identity-fork", executor: "identity") }
    func testIdentityAfterVfork() throws { try exactness("identity-vfork", executor: "identity") }
    func testIdentityAfterClone3AndCloneVM() throws { try exactness("identity-clone", executor: "identity") }
    func testIdentityAfterSetid() throws { try exactness("setid", executor: "identity") }
    func testGetrandomDiffersAfterFork() throws {
        guard FileManager.default.fileExists(atPath: "/proc/self") else { throw XCTSkip("no /proc") }
        let program = try Programs.path("exactness")
        let probe = try Runner.run([program, "random-fork"], mode: .auto, scratch: try Scratch(),
                                   extra: ["PRIVBOX_LOG": "info"])
        if probe.stderr.contains("vDSO has no getrandom") { throw XCTSkip("kernel without vDSO getrandom") }
        try exactness("random-fork", executor: "vdso-getrandom")
    }
    func testClockCallsThroughSyscall() throws { try exactness("clock", executor: "vdso-clock") }
    func testMaskAroundHandlers() throws { try exactness("mask-handler", executor: "sigmask") }
    func testMaskAfterLongjmpOutOfHandlers() throws { try exactness("mask-longjmp", executor: "sigmask") }
    func testMaskWithConcurrentThreads() throws { try exactness("mask-threads", executor: "sigmask") }
    func testMaskAcrossSwapcontext() throws { try exactness("swapcontext", executor: "sigmask") }

    /// Fusion (executors/fusion.c): hot lseek(SEEK_SET)+read loops, then every way programs/fusion.c
    /// knows to look at the file offset. The output is the same natively, under profile,
    /// accelerate and auto, and under accelerate the pairs really were fused (or, for `short`,
    /// fusion turned itself off).
    func fusion(_ name: String, declined: String? = nil) throws {
        let program = try Programs.path("fusion")
        let s = try Scratch()
        let data = s.path("data")
        let native = try Runner.run([program, data, name], mode: .native, scratch: s)
        XCTAssertEqual(native.status, 0, native.stderr)
        XCTAssertFalse(native.stdout.contains("FAIL"), native.stdout)
        XCTAssertGreaterThanOrEqual(native.stdout.split(separator: "\n").count, 1)
        let profile = s.path("\(name).json")
        let profiled = try Runner.run([Paths.cli, "profile", "-o", profile, "--", program, data, name],
                                      environment: Runner.cleanEnvironment)
        XCTAssertEqual(profiled.stdout, native.stdout, "profile")
        let accel = try Runner.run([program, data, name], mode: .accelerate, scratch: s, profile: profile,
                                   extra: ["PRIVBOX_LOG": "info"])
        XCTAssertEqual(accel.stdout, native.stdout, "accelerate:\n\(accel.stderr)")
        XCTAssertEqual(accel.status, 0, accel.stderr)
        let report = accel.stderrLines.first { $0.hasPrefix("privbox: fusion: ") } ?? ""
        let deferred = Int(report.components(separatedBy: " lseek").first?.split(separator: " ").last ?? "")
        XCTAssertNotNil(deferred, "no fusion report:\n\(accel.stderr)")
        if name == "short" {
            XCTAssertTrue(accel.stderr.contains("fusion turned off: its windows were too short"), accel.stderr)
        } else if let declined = declined {
            XCTAssertEqual(deferred, 0, accel.stderr)
            XCTAssertTrue(accel.stderr.contains("fusion turned off: \(declined)"), accel.stderr)
        } else {
            XCTAssertGreaterThan(deferred ?? 0, 20_000, "the pairs were not fused:\n\(accel.stderr)")
        }
        let auto = try Runner.run([program, data, name], mode: .auto, scratch: s)
        XCTAssertEqual(auto.stdout, native.stdout, "auto:\n\(auto.stderr)")
        XCTAssertEqual(auto.stderr, "")
    }

    func testFusedPairsReadTheFilesBytesAndLeaveTheOffset() throws { try fusion("loop") }
    func testFusionWithDupdFds() throws { try fusion("dup") }
    func testFusionWithOAppendWrites() throws { try fusion("append") }
    func testFusionUnderStdioAndProcFdinfo() throws { try fusion("stdio") }
    func testFusionAcrossFork() throws { try fusion("fork") }
    func testFusionAtTheEdges() throws { try fusion("edges") }
    func testFusionWhenAThreadAppears() throws { try fusion("thread") }
    func testFusionWhenAHandlerIsInstalled() throws { try fusion("handler") }
    func testFusionTurnsItselfOffWhereWindowsAreShort() throws { try fusion("short") }
    func testNoFusionWhileAHandlerCanRun() throws {
        try fusion("async-handler", declined: "the program has signal handlers")
    }
    func testNoFusionWhileAnotherThreadCanLook() throws {
        try fusion("concurrent-thread", declined: "the process has threads")
    }
    func testFusionAroundVfork() throws { try fusion("vfork") }
    func testFusionAroundAMaskThatBlocksSIGSYS() throws { try fusion("mask") }

    /// A site where the executor would lose is turned off by sampling; here every executor wins,
    /// so the exit report must say "on" for every routed site and never "turned off".
    func testSamplingKeepsWinningExecutorsOn() throws {
        let program = try Programs.path("exactness")
        let s = try Scratch()
        let profile = s.path("p.json")
        _ = try Runner.run([Paths.cli, "profile", "-o", profile, "--", program, "identity-fork"],
                           environment: Runner.cleanEnvironment)
        let r = try Runner.run([program, "identity-fork"], mode: .accelerate, scratch: s, profile: profile,
                               extra: ["PRIVBOX_LOG": "info"])
        XCTAssertFalse(r.stderr.contains("turned off"), r.stderr)
        XCTAssertTrue(r.stderr.contains("routed to an executor"), r.stderr)
    }

    /// In off mode the executor wrappers are jumps to libc: nothing is served, nothing printed.
    func testOffModeServesNothing() throws {
        let program = try Programs.path("exactness")
        let s = try Scratch()
        let native = try Runner.run([program, "all"], mode: .native, scratch: s)
        let off = try Runner.run([program, "all"], mode: .off, scratch: s, extra: ["PRIVBOX_LOG": "debug"])
        XCTAssertEqual(off.stdout, native.stdout)
        XCTAssertEqual(off.stderr, "")
    }
}
