import Profiler
import XCTest

final class JSONTests: XCTestCase {
    func testParsesEveryKindOfValue() throws {
        let v = try JSONParser.parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"} "#)
        XCTAssertEqual(v["a"], .array([.integer(1), .integer(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null]))
        XCTAssertEqual(v["s"], .string("x\"\\/\u{8}\u{c}\n\r\té😀"))
        XCTAssertNil(v["missing"])
    }

    func testRoundTripsThroughTheWriter() throws {
        let value = JSON.object([
            ("k", .string("quote \" backslash \\ control \u{1} newline \n")),
            ("n", .array([.integer(Int64.max), .integer(Int64.min), .double(0.25), .double(2), .double(1e300), .double(-0.5)])),
            ("nested", .object([("empty", .array([])), ("obj", .object([]))])),
        ])
        for indent in [0, 2] {
            XCTAssertEqual(try JSONParser.parse(JSONWriter.write(value, indent: indent)), value)
        }
    }

    func testRejectsMalformedInputWithAnOffset() {
        let bad: [String] = ["", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "01", "1.", "-", "tru", "\"abc",
                             "\"\\x\"", "\"\u{1}\"", "\"\\ud800\"", "\"\\udc00x\"", "[1] 2", "{1: 2}", "nul"]
        for text in bad {
            XCTAssertThrowsError(try JSONParser.parse(text), text) { error in
                XCTAssertTrue(error is JSONError, text)
            }
        }
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xff, 0x22])) // invalid UTF-8 in a string
    }

    func testBoundsNestingAndNumbers() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertThrowsError(try JSONParser.parse(deep)) { e in
            XCTAssertTrue("\(e)".contains("nesting deeper than 64"), "\(e)")
        }
        XCTAssertNoThrow(try JSONParser.parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)))
        XCTAssertThrowsError(try JSONParser.parse("99999999999999999999")) { e in
            XCTAssertTrue("\(e)".contains("out of range"), "\(e)")
        }
        XCTAssertThrowsError(try JSONParser.parse("1e999"))
        XCTAssertEqual(try JSONParser.parse("9223372036854775807"), .integer(Int64.max))
    }
}
