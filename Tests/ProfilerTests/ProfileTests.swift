import Profiler
import XCTest

final class ProfileTests: XCTestCase {
    static func sample() -> Profile {
        Profile(processes: [
            ProcessProfile(pid: 20, ppid: 1, exe: "/usr/bin/app", wallNs: 2_000_000_000, threads: 2, dropped: 0,
                           modules: [ProfileModule(path: "/usr/bin/app", buildID: "ab12"),
                                     ProfileModule(path: "/lib/libc.so.6", buildID: "")],
                           sites: [
                            ProfileSite(module: 0, offset: 0x1234, syscall: "write", number: 1, thread: 0,
                                        calls: 600, checked: 150, errors: 1, timed: 75, kernelNs: 300_000_000, userNs: 50_000_000),
                            ProfileSite(module: 0, offset: 0x1234, syscall: "write", number: 1, thread: 1,
                                        calls: 400, checked: 100, errors: 0, timed: 50, kernelNs: 200_000_000, userNs: 40_000_000),
                            ProfileSite(module: 1, offset: 0x99, syscall: "read", number: 0, thread: 0,
                                        calls: 10, checked: 2, errors: 0, timed: 1, kernelNs: 1_000, userNs: 0),
                           ],
                           stacks: [ProfileStack(thread: 0, count: 3, sampled: true, truncated: false,
                                                 frames: [Frame(module: 0, offset: 0x1234), Frame(module: -1, offset: 0x7fff0000)])]),
            ProcessProfile(pid: 10, ppid: 1, exe: "/bin/sh", wallNs: 0, threads: 0, dropped: 0, modules: [], sites: []),
        ])
    }

    func testRoundTripsThroughJSON() throws {
        let p = Self.sample()
        let text = JSONWriter.write(p.toJSON())
        XCTAssertEqual(try Profile(json: JSONParser.parse(text)), p)
    }

    func testValidationNamesTheOffendingField() throws {
        var json = Self.sample().toJSON()
        func mutate(_ edit: (inout [(String, JSON)]) -> Void) -> JSON {
            guard case var .object(pairs) = json else { return json }
            edit(&pairs)
            return .object(pairs)
        }
        let cases: [(JSON, String)] = [
            (.array([]), "not a privbox profile"),
            (mutate { $0[0].1 = .string("privbox-profile/2") }, "unsupported schema"),
            (mutate { $0.remove(at: 2) }, "processes: missing"),
            (mutate { $0[2].1 = .string("x") }, "processes: expected an array"),
        ]
        for (bad, expected) in cases {
            XCTAssertThrowsError(try Profile(json: bad)) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(e) should mention \(expected)")
            }
        }
        // A site pointing at a module that does not exist.
        let text = JSONWriter.write(json).replacingOccurrences(of: "\"module\": 1,", with: "\"module\": 7,")
        XCTAssertThrowsError(try Profile(json: JSONParser.parse(text))) { e in
            XCTAssertTrue("\(e)".contains("processes[0].sites[2].module"), "\(e)")
        }
        let negative = JSONWriter.write(json).replacingOccurrences(of: "\"calls\": 10,", with: "\"calls\": -10,")
        XCTAssertThrowsError(try Profile(json: JSONParser.parse(negative))) { e in
            XCTAssertTrue("\(e)".contains("sites[2].calls: expected a non-negative integer"), "\(e)")
        }
        json = .null
    }

    func testMergeOrdersProcessesByPid() {
        let merged = Profile.merged([Self.sample(), Profile(processes: [])])
        XCTAssertEqual(merged.processes.map(\.pid), [10, 20])
    }

    func testSiteTotalsMergeThreadsAndRankByCalls() {
        let p = Self.sample().processes[0]
        let totals = p.siteTotals()
        XCTAssertEqual(totals.count, 2)
        XCTAssertEqual(totals[0].calls, 1000)
        XCTAssertEqual(totals[0].errors, 4, "1 failure in 150 checked calls of 600")
        XCTAssertEqual(totals[0].threads, [0, 1])
        XCTAssertEqual(p.siteName(module: 0, offset: 0x1234), "app+0x1234")
        XCTAssertEqual(p.siteName(module: -1, offset: 0x55), "0x55")
        XCTAssertEqual(p.syscallMix().map(\.name), ["write", "read"])
    }

    func testReportText() {
        let text = ReportFormatter.text(Self.sample(), source: "x.json")
        XCTAssertTrue(text.contains("process 20 /usr/bin/app (parent 1): 2.0 s wall, 2 threads, 1010 wrapped calls"), text)
        XCTAssertTrue(text.contains("syscall mix: write 99.0%, read 1.0%"), text)
        XCTAssertTrue(text.contains("time inside wrapped calls: 0.5 s (25.0% of wall time"), text)
        XCTAssertTrue(text.contains("no wrapped system call was made"), text)
        let row = text.split(separator: "\n").first { $0.contains("app+0x1234") }
        XCTAssertNotNil(row)
        XCTAssertTrue(row!.contains("1000") && row!.contains("500.0") && row!.contains("write"), String(row!))
    }

    func testProfileMatchUsesPathAndBuildID() {
        let p = Self.sample()
        XCTAssertEqual(ProfileMatch.check(p, exe: "/usr/bin/app", buildID: "ab12"), .matches)
        XCTAssertEqual(ProfileMatch.check(p, exe: "/usr/bin/app", buildID: "ffff"), .otherBuild(recorded: "ab12"))
        XCTAssertEqual(ProfileMatch.check(p, exe: "/usr/bin/other", buildID: "ab12"), .nothingForProgram)
    }
}
