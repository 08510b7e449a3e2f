// Issue 16, defect 9: arithmetic on a profile's counts saturates instead of trapping or wrapping
// (Sources/Profiler/Saturating.swift). The counts here are what an edited file may hold.
import Profiler
import XCTest

final class SaturationTests: XCTestCase {
    static let big = UInt64(Int64.max) // the largest count the JSON reader accepts

    static func site(thread: Int = 0, calls: UInt64 = big, checked: UInt64 = 1, errors: UInt64 = 0,
                     kernelNs: UInt64 = big, userNs: UInt64 = big) -> ProfileSite {
        ProfileSite(module: 0, offset: 0x1234, syscall: "write", number: 1, thread: thread, calls: calls,
                    checked: checked, errors: errors, timed: 0, kernelNs: kernelNs, userNs: userNs)
    }

    static func process(_ sites: [ProfileSite], wallNs: UInt64 = 1, stacks: [ProfileStack] = []) -> ProcessProfile {
        ProcessProfile(pid: 7, ppid: 1, exe: "/usr/bin/app", wallNs: wallNs, threads: sites.count, dropped: 0,
                       modules: [ProfileModule(path: "/usr/bin/app", buildID: "ab")], sites: sites, stacks: stacks)
    }

    func testConversionsFromDoubleSaturate() {
        XCTAssertEqual(UInt64(saturating: .nan), 0)
        XCTAssertEqual(UInt64(saturating: -1), 0)
        XCTAssertEqual(UInt64(saturating: -.infinity), 0)
        XCTAssertEqual(UInt64(saturating: 1.9), 1)
        XCTAssertEqual(UInt64(saturating: 0x1p63), UInt64(1) << 63)
        XCTAssertEqual(UInt64(saturating: Double(UInt64.max)), .max) // 2^64 once rounded
        XCTAssertEqual(UInt64(saturating: .infinity), .max)
        XCTAssertEqual(UInt64.max.addingSaturated(1), .max)
        XCTAssertEqual(UInt64(2).addingSaturated(3), 5)
        XCTAssertEqual([Self.big, Self.big, Self.big].saturatingSum { $0 }, .max)
    }

    /// Three threads of one site at Int64.max calls each: 1.5 times what UInt64 holds.
    func testTotalsSaturateInsteadOfWrapping() {
        let p = Self.process([Self.site(thread: 0), Self.site(thread: 1), Self.site(thread: 2)])
        XCTAssertEqual(p.totalCalls, .max)
        XCTAssertEqual(p.totalKernelNs, .max)
        XCTAssertEqual(p.siteTotals().map(\.calls), [.max])
        XCTAssertEqual(p.siteTotals().map(\.userNs), [.max])
        XCTAssertEqual(p.syscallMix().map(\.calls), [.max])
    }

    /// The profile: 2 errors among 1 checked call of Int64.max calls trapped
    /// ("Double value cannot be converted to UInt64").
    func testEstimatedErrorsNeverExceedTheCalls() {
        XCTAssertEqual(Self.site(checked: 1, errors: 2).estimatedErrors, Self.big)
        XCTAssertEqual(Self.site(checked: 0, errors: 5).estimatedErrors, 0)
        XCTAssertEqual(Self.site(calls: 400, checked: 100, errors: 1).estimatedErrors, 4)
    }

    /// Stacks captured 0 times split their site evenly instead of by 0/0 (NaN, which trapped).
    func testLoopAnalysisSurvivesZeroStackCountsAndHugeTimes() {
        let stacks = [ProfileStack(thread: 0, count: 0, sampled: true, truncated: false,
                                   frames: [Frame(module: 0, offset: 0x1234), Frame(module: 0, offset: 0x2000)])]
        let p = Self.process([Self.site(thread: 0), Self.site(thread: 1), Self.site(thread: 2)], stacks: stacks)
        let symbols: SymbolTable = [Frame(module: 0, offset: 0x2000):
            FrameSymbol(function: "main", functionStart: 0x1f00, loops: [LoopRange(head: 0x1f80, end: 0x2010)])]
        let report = LoopAnalysis.analyze(Profile(processes: [p]), symbols: [symbols])
        XCTAssertEqual(report.loops.count, 1)
        XCTAssertEqual(report.loops.first?.calls, .max)
        XCTAssertEqual(report.loops.first?.wallNs, .max)
        let text = ReportFormatter.loops(report, profile: Profile(processes: [p]),
                                         projection: Projection(kernelEntryNs: .nan), top: 5)
        XCTAssertTrue(text.contains("main"), text)
    }

    func testReportOfInt64MaxCallsInOneNanosecond() {
        let text = ReportFormatter.text(Profile(processes: [Self.process([Self.site()])]), source: "x")
        XCTAssertTrue(text.contains("; 18446744073709551615 calls/s"), text)
    }
}
