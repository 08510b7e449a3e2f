import CSymbolize
import XCTest

/// The C symbolizer the CLI uses, on names and on a binary that is certainly present.
final class SymbolizeTests: XCTestCase {
    func demangle(_ name: String) -> String? {
        var out = [CChar](repeating: 0, count: 512)
        return pbs_demangle(name, &out, out.count) == 0 ? String(cString: out) : nil
    }

    func testDemanglesCxxAndSwiftNames() {
        XCTAssertEqual(demangle("_ZN3foo3barEi"), "foo::bar(int)")
        XCTAssertEqual(demangle("$sSi"), "Swift.Int")
        XCTAssertNil(demangle("write_loop"))
    }

    func testOpensAnELFFileAndRefusesAnotherBuild() throws {
        var err = [CChar](repeating: 0, count: 512)
        let bash = "/bin/bash"
        guard let m = pbs_open(bash, "", &err, err.count) else {
            return XCTFail(String(cString: err))
        }
        defer { pbs_close(m) }
        // Debian's bash is stripped but exports its functions dynamically (.dynsym).
        var sym = pbs_symbol()
        XCTAssertEqual(pbs_lookup(m, 0, &sym), -1, "address 0 is in no function")
        XCTAssertNil(pbs_open(bash, "00", &err, err.count))
        XCTAssertTrue(String(cString: err).contains("the profile recorded 00"), String(cString: err))
        XCTAssertNil(pbs_open("/nonexistent", "", &err, err.count))
    }
}
