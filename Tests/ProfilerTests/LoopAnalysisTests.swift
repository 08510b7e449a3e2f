import Profiler
import XCTest

/// The loop detector on recorded shapes of data: sites, stacks and the symbols a symbolizer gives.
final class LoopAnalysisTests: XCTestCase {
    let module = ProfileModule(path: "/usr/bin/app", buildID: "ab")

    func site(_ offset: UInt64, _ syscall: String, calls: UInt64, thread: Int = 0, kernel: UInt64 = 0, user: UInt64 = 0) -> ProfileSite {
        ProfileSite(module: 0, offset: offset, syscall: syscall, number: 0, thread: thread, calls: calls,
                    checked: calls, errors: 0, timed: calls, kernelNs: kernel, userNs: user)
    }

    func stack(_ offsets: [UInt64], count: UInt64 = 1, sampled: Bool = true, thread: Int = 0) -> ProfileStack {
        ProfileStack(thread: thread, count: count, sampled: sampled, truncated: false,
                     frames: offsets.map { Frame(module: 0, offset: $0) })
    }

    // Functions of the recorded program (offsets):
    //   main    0x1000-0x1100, one loop [0x1040, 0x1090) at main.c:20
    //   helper  0x2000-0x2040, no loop
    //   nested  0x3000-0x3200, outer [0x3010, 0x3190) at n.c:5, inner [0x3050, 0x30a0) at n.c:6
    //   rec     0x4000-0x4080, no loop (recursive)
    var symbols: SymbolTable {
        func main(_ off: UInt64) -> (Frame, FrameSymbol) {
            (Frame(module: 0, offset: off), FrameSymbol(function: "main", functionStart: 0x1000, file: "main.c", line: 21,
                                                       loops: [LoopRange(head: 0x1040, end: 0x1090, file: "main.c", line: 20)]))
        }
        var t: SymbolTable = [:]
        for off: UInt64 in [0x1050, 0x10f0] { let (f, s) = main(off); t[f] = s }
        t[Frame(module: 0, offset: 0x2010)] = FrameSymbol(function: "helper", functionStart: 0x2000)
        let nestedLoops = [LoopRange(head: 0x3010, end: 0x3190, file: "n.c", line: 5),
                           LoopRange(head: 0x3050, end: 0x30a0, file: "n.c", line: 6)]
        for off: UInt64 in [0x3060, 0x3120] {
            t[Frame(module: 0, offset: off)] = FrameSymbol(function: "nested", functionStart: 0x3000, loops: nestedLoops)
        }
        for off: UInt64 in [0x4010, 0x4050] {
            t[Frame(module: 0, offset: off)] = FrameSymbol(function: "rec", functionStart: 0x4000)
        }
        return t
    }

    func analyze(_ sites: [ProfileSite], _ stacks: [ProfileStack]) -> LoopReport {
        let p = ProcessProfile(pid: 7, ppid: 1, exe: "/usr/bin/app", wallNs: 1_000_000_000, threads: 1, dropped: 0,
                               modules: [module], sites: sites, stacks: stacks)
        return LoopAnalysis.analyze(Profile(processes: [p]), symbols: [symbols])
    }

    func testACallInAHelperBelongsToTheCallersLoop() {
        let r = analyze([site(0x2010, "write", calls: 1000, kernel: 900, user: 100)],
                        [stack([0x2010, 0x1050]), stack([0x2010, 0x1050], count: 4)])
        XCTAssertEqual(r.hot.count, 1)
        let loop = r.hot[0]
        XCTAssertEqual(loop.function, "main")
        XCTAssertEqual(loop.file, "main.c")
        XCTAssertEqual(loop.line, 20)
        XCTAssertEqual(loop.calls, 1000)
        XCTAssertEqual(loop.syscalls, ["write": 1000])
        XCTAssertEqual(loop.kernelShare, 0.9, accuracy: 1e-9)
        XCTAssertEqual(loop.callsPerSecond, 1000 / 1e-6, accuracy: 1)
        XCTAssertEqual(loop.sites.first?.function, "helper")
    }

    func testNestedLoopsPickTheInnermostLoopContainingTheCall() {
        let r = analyze([site(0x3060, "getppid", calls: 5000), site(0x3120, "write", calls: 500)],
                        [stack([0x3060, 0x10f0]), stack([0x3120, 0x10f0])])
        XCTAssertEqual(Set(r.hot.map(\.line)), [5, 6])
        XCTAssertEqual(r.hot.first { $0.line == 6 }?.calls, 5000)
        XCTAssertEqual(r.hot.first { $0.line == 5 }?.calls, 500)
    }

    func testASiteReachedFromTwoLoopsIsSplitByItsSampledStacks() {
        // helper is called from main's loop (3 samples) and from nested's inner loop (1 sample);
        // the first-call stack is ignored once periodic samples exist.
        let r = analyze([site(0x2010, "read", calls: 4000)],
                        [stack([0x2010, 0x1050], count: 3), stack([0x2010, 0x3060], count: 1),
                         stack([0x2010, 0x3120], count: 50, sampled: false)])
        XCTAssertEqual(r.hot.first { $0.function == "main" }?.calls, 3000)
        XCTAssertEqual(r.hot.first { $0.function == "nested" }?.calls, 1000)
        XCTAssertEqual(r.hot.first { $0.function == "nested" }?.line, 6)
    }

    func testRecursionAndUnknownCodeAreNotLoops() {
        let r = analyze([site(0x4010, "write", calls: 800), site(0x9999, "read", calls: 200)],
                        [stack([0x4010, 0x4050, 0x4050, 0x4050]), stack([0x9999])])
        XCTAssertTrue(r.hot.isEmpty)
        XCTAssertEqual(r.outsideLoops[7], 1000)
    }

    func testSitesWithoutStacksUseTheirOwnFrame() {
        let r = analyze([site(0x1050, "getpid", calls: 300)], [])
        XCTAssertEqual(r.hot.map(\.function), ["main"])
    }

    func testThreadsAreCountedAndSmallLoopsAreNotHot() {
        let r = analyze([site(0x1050, "write", calls: 50000, thread: 0, kernel: 5, user: 5),
                         site(0x1050, "write", calls: 50000, thread: 1, kernel: 5, user: 5),
                         site(0x3060, "getppid", calls: 99, kernel: 99, user: 1)],
                        [stack([0x1050], thread: 0), stack([0x1050], thread: 1), stack([0x3060])])
        XCTAssertEqual(r.hot.count, 1, "99 calls is below the 100-call minimum")
        XCTAssertEqual(r.hot[0].threads, [0, 1])
        XCTAssertEqual(r.loops.count, 2)
        // All loops are ranked by density: the small one is denser.
        XCTAssertEqual(r.loops.map(\.function), ["nested", "main"])
    }

    func testProjectionNeverSavesMoreThanTheKernelTime() {
        var loop = analyze([site(0x1050, "getpid", calls: 1000, kernel: 200_000, user: 800_000)], []).hot[0]
        let p = Projection(kernelEntryNs: 150)
        XCTAssertEqual(p.apply(to: loop).savedNs, 150_000)
        XCTAssertEqual(p.apply(to: loop).speedup, 1_000_000 / 850_000, accuracy: 1e-9)
        loop.kernelNs = 100_000
        XCTAssertEqual(p.apply(to: loop).savedNs, 100_000)
    }

    func testFoldedStacksAreRootFirstWithTheSyscallAsLeaf() {
        let p = ProcessProfile(pid: 7, ppid: 1, exe: "/usr/bin/app", wallNs: 1, threads: 1, dropped: 0, modules: [module],
                               sites: [site(0x2010, "write", calls: 10)],
                               stacks: [stack([0x2010, 0x1050], count: 3), stack([0x2010, 0x1050], count: 9, sampled: false)])
        let folded = FlameGraph.folded(Profile(processes: [p]), symbols: [symbols])
        XCTAssertEqual(folded.map(\.stack), ["app (7);main;helper;[write]"])
        XCTAssertEqual(folded.map(\.count), [3])
        let svg = FlameGraph.svg(folded, title: "t <&>")
        XCTAssertTrue(svg.contains("t &lt;&amp;&gt;"))
        XCTAssertTrue(svg.contains("<title>helper (3 samples, 100.0%)</title>"), svg)
    }
}

final class ExecutorPlanTests: XCTestCase {
    func process(pid: Int, exe: String = "/bin/app", id: String = "aa", sites: [(Int, UInt64, Int, UInt64)]) -> ProcessProfile {
        ProcessProfile(pid: pid, ppid: 1, exe: exe, wallNs: 1_000_000, threads: 1, dropped: 0,
                       modules: [ProfileModule(path: exe, buildID: id), ProfileModule(path: "/lib/libc.so.6", buildID: "cc")],
                       sites: sites.map { ProfileSite(module: $0.0, offset: $0.1, syscall: x86_64SyscallNames[$0.2],
                                                      number: $0.2, thread: 0, calls: $0.3, checked: 0, errors: 0,
                                                      timed: 0, kernelNs: 0, userNs: 0) })
    }

    /// Without loops, a site is planned when it is hot on its own (calls and share of the process).
    func testHotSitesWithoutLoops() {
        let p = process(pid: 10, sites: [(0, 0x100, 39, 5000), (0, 0x200, 39, 99), (1, 0x300, 1, 10)])
        let plan = ExecutorPlan.sites(Profile(processes: [p]), exe: "/bin/app", buildID: "aa")
        XCTAssertEqual(plan, [PlanSite(modulePath: "/bin/app", buildID: "aa", offset: 0x100, syscallNumber: 39)])
        // Another build or another program gets nothing.
        XCTAssertEqual(ExecutorPlan.sites(Profile(processes: [p]), exe: "/bin/app", buildID: "bb"), [])
        XCTAssertEqual(ExecutorPlan.sites(Profile(processes: [p]), exe: "/bin/other", buildID: "aa"), [])
    }

    /// With loops, exactly the loops' sites of this program's processes, each in its own module.
    func testLoopSites() throws {
        let p = process(pid: 10, sites: [(0, 0x100, 39, 5000)])
        let loop: JSON = .object([
            ("pid", .integer(10)), ("module", .string("/bin/app")), ("build_id", .string("aa")),
            ("sites", .array([
                .object([("module", .string("/lib/libc.so.6")), ("build_id", .string("cc")),
                         ("offset", .integer(0x4242)), ("syscall", .string("getrandom"))]),
                .object([("offset", .integer(0x100)), ("syscall", .string("getpid"))]),
                .object([("offset", .integer(0x108)), ("syscall", .string("no-such-call"))]),
            ])),
        ])
        let other: JSON = .object([("pid", .integer(99)), ("module", .string("/bin/app")),
                                   ("sites", .array([.object([("offset", .integer(0x999)), ("syscall", .string("read"))])]))])
        let plan = ExecutorPlan.sites(Profile(processes: [p], loops: [loop, other]), exe: "/bin/app", buildID: "aa")
        XCTAssertEqual(plan, [
            PlanSite(modulePath: "/lib/libc.so.6", buildID: "cc", offset: 0x4242, syscallNumber: 318),
            PlanSite(modulePath: "/bin/app", buildID: "aa", offset: 0x100, syscallNumber: 39),
        ])
    }

    /// A site's weight (what decides whether the preload copies its function) is one process's
    /// calls from it: the loop analysis splits them among the loops, so they are summed over a
    /// process's loops; over processes the most counts. A listed count of 0 weighs 1; no count, 0.
    func testSiteWeightsSumOverAProcesssLoopsAndTakeTheBusiestProcess() throws {
        let a = process(pid: 10, sites: []), b = process(pid: 11, sites: [])
        func site(_ offset: Int64, _ calls: Int64?) -> JSON {
            var pairs: [(String, JSON)] = [("offset", .integer(offset)), ("syscall", .string("getpid"))]
            if let calls { pairs.append(("calls", .integer(calls))) }
            return .object(pairs)
        }
        func loop(_ pid: Int64, _ sites: [JSON]) -> JSON {
            .object([("pid", .integer(pid)), ("module", .string("/bin/app")), ("build_id", .string("aa")),
                     ("sites", .array(sites))])
        }
        let loops = [loop(10, [site(0x100, 30_000), site(0x200, 0)]), loop(10, [site(0x100, 20_000), site(0x300, nil)]),
                     loop(11, [site(0x100, 40_000)])]
        let weights = ExecutorPlan.weightedSites(Profile(processes: [a, b], loops: loops), exe: "/bin/app", buildID: "aa")
        XCTAssertEqual(weights.map(\.site.offset), [0x100, 0x200, 0x300])
        XCTAssertEqual(weights.map(\.calls), [50_000, 1, 0])
    }

    /// A syscall instruction is planned with the bounds of its function (a copy serves it), or
    /// without when the symbols gave none (the preload then asks the unwind tables); bounds that
    /// do not hold the site are not believed.
    func testInlineSitesCarryTheirFunction() throws {
        let p = process(pid: 10, sites: [])
        func site(_ offset: Int64, _ start: Int64?, _ size: Int64?, inline: Bool) -> JSON {
            var pairs: [(String, JSON)] = [("offset", .integer(offset)), ("syscall", .string("getpid")),
                                            ("function", .string("hot loop"))]
            if let start { pairs.append(("function_offset", .integer(start))) }
            if let size { pairs.append(("function_size", .integer(size))) }
            if inline { pairs.append(("inline", .bool(true))) }
            return .object(pairs)
        }
        let loop: JSON = .object([
            ("pid", .integer(10)), ("module", .string("/bin/app")), ("build_id", .string("aa")),
            ("sites", .array([site(0x120, 0x100, 0x40, inline: true), site(0x220, nil, nil, inline: true),
                              site(0x320, 0x400, 0x40, inline: true), site(0x520, 0x500, 0x40, inline: false)])),
        ])
        let plan = ExecutorPlan.sites(Profile(processes: [p], loops: [loop]), exe: "/bin/app", buildID: "aa")
        XCTAssertEqual(plan, [
            PlanSite(modulePath: "/bin/app", buildID: "aa", offset: 0x120, syscallNumber: 39, inline: true,
                     functionStart: 0x100, functionSize: 0x40, function: "hot loop"),
            PlanSite(modulePath: "/bin/app", buildID: "aa", offset: 0x220, syscallNumber: 39, inline: true,
                     function: "hot loop"),
            PlanSite(modulePath: "/bin/app", buildID: "aa", offset: 0x320, syscallNumber: 39, inline: true,
                     function: "hot loop"),
            PlanSite(modulePath: "/bin/app", buildID: "aa", offset: 0x520, syscallNumber: 39, inline: false,
                     functionStart: 0x500, functionSize: 0x40, function: "hot loop"),
        ])
    }
}
