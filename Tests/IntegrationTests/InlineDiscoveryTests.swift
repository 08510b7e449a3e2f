// Inline discovery (`privbox profile --inline`, Sources/Preload/profile/inline_discovery.c) on
// programs/inline.c: the system calls that do not go through libc's wrappers are counted at their
// `syscall` instruction, named by function and line, and the program's output, exit status,
// signal actions and masks stay what they are natively.
import Foundation
import Profiler
import XCTest

final class InlineDiscoveryTests: XCTestCase {
    override func setUpWithError() throws {
        try Paths.requireBuilt()
        guard FileManager.default.fileExists(atPath: "/proc/self") else { throw XCTSkip("no /proc") }
    }

    /// One profiled run; `scratch` keeps the profile file (`path`) alive as long as the run.
    struct Run { let profile: Profile; let stdout: String; let status: Int32; let path: String; let scratch: Scratch }

    func program() throws -> String { try Programs.path("inline") }

    /// The scenario natively, then under `privbox profile` (with --inline unless told otherwise):
    /// stdout and exit status must be the same.
    func profiled(_ scenario: String, _ n: Int, inline: Bool = true) throws -> Run {
        let prog = try program()
        let native = try Runner.run([prog, scenario, String(n)], environment: Runner.cleanEnvironment)
        let s = try Scratch()
        let out = s.path("\(scenario).json")
        let r = try Runner.run([Paths.cli, "profile"] + (inline ? ["--inline"] : []) + ["-o", out, "--", prog, scenario, String(n)],
                               environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.stdout, native.stdout, "\(scenario): output differs under profile --inline")
        XCTAssertEqual(r.status, native.status, "\(scenario): exit status differs")
        XCTAssertFalse(r.stderr.contains("no inline discovery"), r.stderr)
        return Run(profile: try ProfileIO.read(path: out), stdout: r.stdout, status: r.status, path: out, scratch: s)
    }

    /// Inline calls per (syscall, module file name) over a process's sites.
    func inlineCalls(_ p: ProcessProfile) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for s in p.sites where s.inline {
            let module = p.modules.indices.contains(s.module) ? URL(fileURLWithPath: p.modules[s.module].path).lastPathComponent : "?"
            out["\(s.syscall)@\(module)", default: 0] += s.calls
        }
        return out
    }

    func loopNamed(_ profile: Profile, _ function: String) -> JSON? {
        (profile.loops ?? []).first { if case let .string(f)? = $0["function"] { return f.hasPrefix(function) }; return false }
    }

    func testRawSyscallLoopIsCountedAtItsInstructionsAndNamed() throws {
        let run = try profiled("inline", 3000)
        XCTAssertTrue(run.stdout.hasSuffix("same pid 3000 of 3000\n"), run.stdout.suffix(60).description)
        let p = try XCTUnwrap(run.profile.processes.first)
        let calls = inlineCalls(p)
        XCTAssertEqual(calls["getpid@inline"], 3000, "\(calls)")
        XCTAssertEqual(calls["write@inline"], 3000, "\(calls)")
        XCTAssertGreaterThanOrEqual(p.inlineTraps ?? 0, 6000)
        XCTAssertEqual(p.inlineThreadsSpent, 0)
        // The loop is found by function and by a line inside the marked range.
        let loop = try XCTUnwrap(loopNamed(run.profile, "inline_loop"), "\(run.profile.loops ?? [])")
        guard case let .integer(line)? = loop["line"] else { return XCTFail("no line in \(loop)") }
        let source = try String(contentsOfFile: Paths.programs.appendingPathComponent("inline.c").path, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        let begin = (source.firstIndex { $0.contains("LOOP:inline:begin") } ?? -2) + 1
        let end = (source.firstIndex { $0.contains("LOOP:inline:end") } ?? -2) + 1
        XCTAssertTrue((begin...end).contains(Int(line)), "loop line \(line) outside \(begin)...\(end)")
        guard case let .array(sites)? = loop["sites"] else { return XCTFail("no sites") }
        let inlineSites = sites.filter { if case .bool(true)? = $0["inline"] { return true }; return false }
        XCTAssertEqual(inlineSites.count, 2, "\(sites)")
        // And the report says what they are.
        let report = try Runner.run([Paths.cli, "report", run.path], environment: Runner.cleanEnvironment)
        XCTAssertTrue(report.stdout.contains("syscall instruction before inline+0x"), report.stdout)
        XCTAssertTrue(report.stdout.contains("by a syscall instruction in inline_loop"), report.stdout)
        // An inline site is no wrapper's call site: accelerate mode's plan keeps it, marked, with
        // the bounds of its function, for an instrumented copy (CopyTests).
        let plan = ExecutorPlan.sites(run.profile, exe: p.exe, buildID: p.exeBuildID)
        let planned = plan.filter(\.inline)
        XCTAssertEqual(planned.count, 2, "\(plan)")
        XCTAssertTrue(planned.allSatisfy { $0.function.hasPrefix("inline_loop") && $0.functionSize > 0 &&
                                           $0.functionStart < $0.offset && $0.offset <= $0.functionStart + $0.functionSize }, "\(planned)")
    }

    func testWithoutInlineTheRawCallsAreInvisible() throws {
        let run = try profiled("inline", 500, inline: false)
        let p = try XCTUnwrap(run.profile.processes.first)
        XCTAssertTrue(inlineCalls(p).isEmpty)
        XCTAssertNil(p.inlineTraps)
        XCTAssertNil(loopNamed(run.profile, "inline_loop"))
    }

    func testStdioLoopIsProfiledDownToLibcsInternalWrite() throws {
        let run = try profiled("stdio", 2000)
        let p = try XCTUnwrap(run.profile.processes.first)
        // printf + fflush to a pipe: libc's own write, which no exported wrapper sees.
        XCTAssertEqual(inlineCalls(p)["write@libc.so.6"], 2000, "\(inlineCalls(p))")
        let loops = run.profile.loops ?? []
        let withLibcWrite = loops.contains { loop in
            guard case let .array(sites)? = loop["sites"] else { return false }
            return sites.contains {
                guard case .bool(true)? = $0["inline"], case .string("write")? = $0["syscall"],
                      case let .string(m)? = $0["module"] else { return false }
                return m.hasSuffix("libc.so.6")
            }
        }
        XCTAssertTrue(withLibcWrite, "\(loops)")
    }

    func testBlockedSigsysPausesDiscoveryInsteadOfKillingTheProgram() throws {
        // With every signal blocked, a dispatched call would be killed by the forced SIGSYS: the
        // blocked half runs natively (uncounted), the unblocked half is counted.
        let run = try profiled("masks", 1000)
        XCTAssertTrue(run.stdout.hasSuffix("blocked 1000, unblocked 1000 of 1000\n"), run.stdout.suffix(80).description)
        let calls = inlineCalls(try XCTUnwrap(run.profile.processes.first))
        XCTAssertEqual(calls["getpid@inline"], 1000, "\(calls)")
    }

    func testHandlerWithFullMaskRunsAndReadsItsOwnActionBack() throws {
        let run = try profiled("handler", 300)
        XCTAssertTrue(run.stdout.hasSuffix("handled 300 of 300; SIGSYS in the mask read back: 1; SIGSYS default: 1\n"),
                      run.stdout.suffix(100).description)
        XCTAssertEqual(inlineCalls(try XCTUnwrap(run.profile.processes.first))["kill@inline"], 300)
    }

    func testHandlerWithFullMaskInstalledRawlyIsStripped() throws {
        // Installed through syscall(): its full mask would block SIGSYS while it runs, and its
        // return (a restorer outside privbox) would be dispatched and killed. Output differs
        // natively only in how many "a"s the 20+ alarms wrote, so only the verdict is compared.
        let prog = try program()
        let s = try Scratch()
        let r = try Runner.run([Paths.cli, "profile", "--inline", "-o", s.path("raw.json"), "--", prog, "rawaction"],
                               environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasSuffix("alarms handled: 1\n"), r.stdout.suffix(60).description)
        let p = try XCTUnwrap(try ProfileIO.read(path: s.path("raw.json")).processes.first)
        XCTAssertGreaterThan(inlineCalls(p)["getpid@inline"] ?? 0, 0)
    }

    func testProgramsOwnSigsysHandlerEndsDiscoveryAndGetsItsSignal() throws {
        let run = try profiled("sigsys", 200)
        XCTAssertTrue(run.stdout.contains("own SIGSYS handler, code 0\n"), run.stdout)
        XCTAssertTrue(run.stdout.hasSuffix("after: same pid 200 of 200\n"), run.stdout)
        XCTAssertNil(inlineCalls(try XCTUnwrap(run.profile.processes.first))["getpid@inline"])
    }

    func testForkChildAndThreadsAreCountedToo() throws {
        let fork = try profiled("fork", 400)
        XCTAssertEqual(fork.profile.processes.count, 2)
        for p in fork.profile.processes {
            XCTAssertEqual(inlineCalls(p)["getpid@inline"], 400, "pid \(p.pid): \(inlineCalls(p))")
            XCTAssertEqual(p.inlineTraps.map { $0 >= 800 && $0 < 810 }, true, "\(String(describing: p.inlineTraps))")
        }
        let threads = try profiled("threads", 500)
        let p = try XCTUnwrap(threads.profile.processes.first)
        XCTAssertEqual(inlineCalls(p)["getpid@inline"], 1000, "\(inlineCalls(p))")
        XCTAssertEqual(Set(p.sites.filter { $0.inline && $0.syscall == "getpid" }.map(\.thread)).count, 2)
    }
}
