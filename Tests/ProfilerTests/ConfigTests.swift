import CShim
import Profiler
import XCTest

/// The C configuration parser the preload runs before main(), driven through its header.
final class ConfigTests: XCTestCase {
    func parse(_ env: [String]) -> (ok: Bool, config: pb_config) {
        var cfg = pb_config()
        let pointers = env.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        let rc = pointers.withUnsafeBufferPointer { pb_config_parse(&cfg, $0.baseAddress) }
        return (rc == 0, cfg)
    }

    func error(_ cfg: pb_config) -> String {
        withUnsafeBytes(of: cfg.error) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }

    func path(_ cfg: pb_config) -> String {
        withUnsafeBytes(of: cfg.profile_path) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }

    func testDefaults() {
        let (ok, cfg) = parse(["HOME=/root", "PATH=/bin"])
        XCTAssertTrue(ok)
        XCTAssertEqual(cfg.mode, Int32(PB_MODE_OFF.rawValue))
        XCTAssertEqual(cfg.log_level, Int32(PB_LOG_WARN.rawValue))
        XCTAssertEqual(cfg.inherit, 1)
        XCTAssertEqual(path(cfg), "privbox-profile.json")
        XCTAssertEqual(path(parse(["PRIVBOX_MODE=profile"]).config), "privbox-profile.%p.json")
    }

    func testEveryValidSetting() {
        let (ok, cfg) = parse(["PRIVBOX_MODE=accelerate", "PRIVBOX_LOG=debug", "PRIVBOX_INHERIT=0",
                               "PRIVBOX_PROFILE=/tmp/p.json", "PRIVBOX_INLINE=1", "PRIVBOX_COPY=0"])
        XCTAssertTrue(ok, error(cfg))
        XCTAssertEqual(cfg.inline_discovery, 1)
        XCTAssertEqual(parse(["PRIVBOX_MODE=profile"]).config.inline_discovery, 0)
        XCTAssertEqual(cfg.copies, 0)
        XCTAssertEqual(parse(["PRIVBOX_MODE=accelerate"]).config.copies, 1)
        XCTAssertEqual(parse(["PRIVBOX_MODE=accelerate", "PRIVBOX_COPY=always"]).config.copies, 2)
        XCTAssertFalse(parse(["PRIVBOX_MODE=accelerate", "PRIVBOX_COPY=yes"]).ok)
        XCTAssertEqual(parse(["PRIVBOX_MODE=accelerate"]).config.gate, 0)
        XCTAssertEqual(parse(["PRIVBOX_MODE=accelerate", "PRIVBOX_GATE=on"]).config.gate, 1)
        XCTAssertEqual(parse(["PRIVBOX_MODE=accelerate", "PRIVBOX_GATE=off"]).config.gate, 0)
        XCTAssertEqual(cfg.mode, Int32(PB_MODE_ACCELERATE.rawValue))
        XCTAssertEqual(cfg.log_level, Int32(PB_LOG_DEBUG.rawValue))
        XCTAssertEqual(cfg.inherit, 0)
        XCTAssertEqual(path(cfg), "/tmp/p.json")
        for (value, mode) in [("off", PB_MODE_OFF), ("profile", PB_MODE_PROFILE), ("auto", PB_MODE_AUTO), ("", PB_MODE_OFF)] {
            XCTAssertEqual(parse(["PRIVBOX_MODE=\(value)"]).config.mode, Int32(mode.rawValue), value)
        }
    }

    func testBadValuesForceModeOffWithOneSentence() {
        let cases: [([String], String)] = [
            (["PRIVBOX_MODE=bogus"], "PRIVBOX_MODE=bogus is not valid (expected off, profile, accelerate or auto); running natively"),
            (["PRIVBOX_MODE=profile", "PRIVBOX_LOG=verbose"], "PRIVBOX_LOG=verbose is not valid"),
            (["PRIVBOX_MODE=profile", "PRIVBOX_INHERIT=no"], "PRIVBOX_INHERIT=no is not valid (expected 0 or 1)"),
            (["PRIVBOX_MODE=profile", "PRIVBOX_INLINE=yes"], "PRIVBOX_INLINE=yes is not valid (expected 0 or 1)"),
            (["PRIVBOX_MODE=accelerate", "PRIVBOX_GATE=auto"], "PRIVBOX_GATE=auto is not valid (expected on or off)"),
            (["PRIVBOX_MODE=profile", "PRIVBOX_MDOE=x"], "unknown variable PRIVBOX_MDOE"),
            (["PRIVBOX_MODE=\u{1b}]0;x\u{7}"], "PRIVBOX_MODE=?]0;x? is not valid"),
            (["PRIVBOX_MODE=" + String(repeating: "a", count: 100)], "aaa... is not valid"),
        ]
        for (env, expected) in cases {
            let (ok, cfg) = parse(env)
            XCTAssertFalse(ok, "\(env)")
            XCTAssertEqual(cfg.mode, Int32(PB_MODE_OFF.rawValue))
            XCTAssertTrue(error(cfg).contains(expected), "\(error(cfg)) should contain \(expected)")
            XCTAssertFalse(error(cfg).contains("\n"))
        }
        // The first problem is the one reported.
        XCTAssertTrue(error(parse(["PRIVBOX_MODE=x", "PRIVBOX_LOG=y"]).config).hasPrefix("PRIVBOX_MODE=x"))
    }

    func testExpandPath() {
        var out = [CChar](repeating: 0, count: 64)
        XCTAssertEqual(pb_expand_path("/tmp/p.%p.json", 4242, &out, out.count), 0)
        XCTAssertEqual(String(cString: out), "/tmp/p.4242.json")
        XCTAssertEqual(pb_expand_path("100%%-%x-%p", 7, &out, out.count), 0)
        XCTAssertEqual(String(cString: out), "100%-%x-7")
        var small = [CChar](repeating: 0, count: 8)
        XCTAssertEqual(pb_expand_path("/tmp/%p.json", 123456, &small, small.count), -1)
    }

    func testCAndSwiftAgreeOnTheVersion() {
        XCTAssertEqual(PB_VERSION, privboxVersion)
    }

    func testMeasurementsAreSane() {
        let perNs = pb_measure_cycles_per_ns(20)
        XCTAssertGreaterThan(perNs, 0.1)
        XCTAssertLessThan(perNs, 10)
        XCTAssertGreaterThan(pb_measure_raw_syscall_cycles(8, 200), pb_measure_function_call_cycles(8, 200))
        var names = [CChar](repeating: 0, count: 4096)
        XCTAssertEqual(pb_vdso_symbols(&names, names.count), 0)
        XCTAssertTrue(String(cString: names).contains("clock_gettime"))
    }
}
