// The hot-loop detector on programs of known structure (programs/structures.c): the profile
// written by `privbox profile` must name exactly the loops marked LOOP:NAME in the source, by
// function and by a line inside the marked range.
import Foundation
import Profiler
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif

final class LoopDetectionTests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    struct Marked { let file: String; let range: ClosedRange<Int> }

    /// LOOP:NAME:begin / LOOP:NAME:end markers of a source file, by NAME.
    func markers(_ file: String) throws -> [String: Marked] {
        let path = Paths.programs.appendingPathComponent(file).path
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var begins: [String: Int] = [:]
        var out: [String: Marked] = [:]
        for (i, line) in lines.enumerated() {
            guard let r = line.range(of: "LOOP:") else { continue }
            let parts = line[r.upperBound...].split(separator: ":")
            guard parts.count >= 2 else { continue }
            let name = String(parts[0])
            if parts[1].hasPrefix("begin") { begins[name] = i + 1 }
            if parts[1].hasPrefix("end"), let b = begins[name] { out[name] = Marked(file: path, range: b...(i + 1)) }
        }
        return out
    }

    func structuresProgram() throws -> String {
        let lib = Programs.directory.appendingPathComponent("libdense.so").path
        if !FileManager.default.fileExists(atPath: lib) {
            let r = try Runner.run(["cc", "-O1", "-g", "-shared", "-fPIC", "-o", lib,
                                    Paths.programs.appendingPathComponent("libdense.c").path],
                                   environment: Runner.cleanEnvironment)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        return try Programs.path("structures", sharedLibrary: lib)
    }

    struct FoundLoop { let pid: Int; let function: String; let file: String?; let line: Int?; let calls: Int; let threads: Int }

    func profileLoops(_ scenario: String, _ n: Int) throws -> (loops: [FoundLoop], report: String, stdout: String) {
        let program = try structuresProgram()
        let s = try Scratch()
        let out = s.path("\(scenario).json")
        let r = try Runner.run([Paths.cli, "profile", "-o", out, "--", program, scenario, String(n)],
                               environment: Runner.cleanEnvironment)
        XCTAssertEqual(r.status, 0, r.stderr)
        let profile = try ProfileIO.read(path: out)
        let loops = (profile.loops ?? []).map { j -> FoundLoop in
            func int(_ k: String) -> Int { if case let .integer(v)? = j[k] { return Int(v) }; return -1 }
            func str(_ k: String) -> String? { if case let .string(v)? = j[k] { return v }; return nil }
            return FoundLoop(pid: int("pid"), function: str("function") ?? "", file: str("file"),
                             line: j["line"].flatMap { if case let .integer(v) = $0 { return Int(v) }; return nil },
                             calls: int("calls"), threads: int("threads"))
        }
        let report = try Runner.run([Paths.cli, "report", "--entry-ns", "150", out], environment: Runner.cleanEnvironment)
        XCTAssertEqual(report.status, 0, report.stderr)
        return (loops, report.stdout, r.stdout)
    }

    func assertLoop(_ loop: FoundLoop?, function: String, marked: Marked?, calls: Int, file: StaticString = #filePath, line: UInt = #line) {
        guard let loop, let marked else { return XCTFail("no loop \(function)", file: file, line: line) }
        XCTAssertEqual(loop.function, function, file: file, line: line)
        XCTAssertEqual(loop.file, marked.file, file: file, line: line)
        XCTAssertTrue(marked.range.contains(loop.line ?? -1), "line \(loop.line ?? -1) outside \(marked.range)", file: file, line: line)
        XCTAssertEqual(loop.calls, calls, accuracy: max(2, calls / 100), file: file, line: line)
    }

    func testDenseLoopIsFoundAndTheComputeLoopIsNot() throws {
        let m = try markers("structures.c")
        let (loops, report, _) = try profileLoops("dense", 20000)
        XCTAssertEqual(loops.count, 1, "\(loops)")
        assertLoop(loops.first, function: "dense_and_compute", marked: m["dense"], calls: 20000)
        XCTAssertTrue(report.contains("dense_and_compute"), report)
        XCTAssertFalse(report.contains("compute_loop"), "the compute loop makes no system call")
        XCTAssertTrue(report.contains("PROJECTION"), report)
    }

    func testNestedLoopsResolveToTheInnermostLoopOfEachCall() throws {
        let m = try markers("structures.c")
        let (loops, _, _) = try profileLoops("nested", 20000)
        XCTAssertEqual(loops.count, 2, "\(loops)")
        let inner = loops.first { $0.calls > 10000 }
        let outer = loops.first { $0.calls < 10000 }
        assertLoop(inner, function: "nested", marked: m["inner"], calls: 20000)
        assertLoop(outer, function: "nested", marked: m["outer"], calls: 400)
        // The outer loop's line is outside the inner loop.
        XCTAssertFalse(m["inner"]!.range.contains(outer?.line ?? -1))
    }

    func testLoopInASharedLibrary() throws {
        let m = try markers("libdense.c")
        let (loops, _, _) = try profileLoops("library", 20000)
        XCTAssertEqual(loops.count, 1, "\(loops)")
        assertLoop(loops.first, function: "dense_library_loop", marked: m["library"], calls: 20000)
    }

    func testOneLoopRunByFourThreads() throws {
        let m = try markers("structures.c")
        let (loops, _, _) = try profileLoops("threads", 5000)
        XCTAssertEqual(loops.count, 1, "\(loops)")
        assertLoop(loops.first, function: "thread_loop", marked: m["threads"], calls: 20000)
        XCTAssertEqual(loops.first?.threads, 4)
    }

    func testForkedProcessesKeepTheirOwnLoops() throws {
        let m = try markers("structures.c")
        let (loops, _, _) = try profileLoops("fork", 20000)
        XCTAssertEqual(loops.count, 2, "\(loops)")
        let parent = loops.first { $0.function == "parent_loop" }
        let child = loops.first { $0.function == "child_loop" }
        assertLoop(parent, function: "parent_loop", marked: m["parent"], calls: 20000)
        assertLoop(child, function: "child_loop", marked: m["child"], calls: 20000)
        XCTAssertNotEqual(parent?.pid, child?.pid)
    }

    func testRecursionAndStraightLineCodeAreNotLoops() throws {
        let (recursion, report, stdout) = try profileLoops("recursion", 2000)
        XCTAssertEqual(stdout, "2000\n")
        XCTAssertEqual(recursion.count, 0, "\(recursion)")
        XCTAssertTrue(report.contains("not in any loop"), report)
        let (none, noneReport, _) = try profileLoops("none", 0)
        XCTAssertEqual(none.count, 0, "\(none)")
        XCTAssertTrue(noneReport.contains("none: no loop"), noneReport)
    }

    func testFoldedStacksAndFlameGraph() throws {
        let program = try structuresProgram()
        let s = try Scratch()
        let out = s.path("f.json")
        XCTAssertEqual(try Runner.run([Paths.cli, "profile", "-o", out, "--", program, "nested", "200000"],
                                      environment: Runner.cleanEnvironment).status, 0)
        let folded = try Runner.run([Paths.cli, "report", "--folded", "--svg", s.path("f.svg"), out],
                                    environment: Runner.cleanEnvironment)
        XCTAssertEqual(folded.status, 0, folded.stderr)
        let lines = folded.stdout.split(separator: "\n")
        XCTAssertFalse(lines.isEmpty)
        for line in lines {
            // "frame;frame;...;[syscall] COUNT"
            let parts = line.split(separator: " ")
            XCTAssertNotNil(UInt64(parts.last ?? ""), String(line))
            XCTAssertTrue(line.hasPrefix("structures ("), String(line))
        }
        XCTAssertTrue(lines.contains { $0.contains(";main;nested;[getppid] ") }, folded.stdout)
        let svg = try String(contentsOfFile: s.path("f.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<?xml") && svg.contains("<svg") && svg.hasSuffix("</svg>\n"))
        XCTAssertTrue(svg.contains(">nested") || svg.contains("<title>nested "), "the loop's function is drawn")
        XCTAssertNoThrow(try XMLDocument(data: Data(svg.utf8)), "well-formed XML")
    }
}
