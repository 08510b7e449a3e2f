// Test harness: locating the built products, compiling the C test programs, and running commands
// natively or under the preload while capturing everything they produce.
import Foundation
import XCTest

enum Paths {
    /// The package root, found from this file's location.
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where scripts/build put the products (PRIVBOX_BUILD_DIR overrides, e.g. for a debug build).
    static let bin: URL = {
        if let dir = ProcessInfo.processInfo.environment["PRIVBOX_TEST_BIN"] {
            return URL(fileURLWithPath: dir)
        }
        return root.appendingPathComponent(".build/release")
    }()

    static var preload: String { bin.appendingPathComponent("libprivbox.so").path }
    static var cli: String { bin.appendingPathComponent("privbox").path }
    static var programs: URL { root.appendingPathComponent("Tests/IntegrationTests/programs") }

    static func requireBuilt() throws {
        for p in [preload, cli, bin.appendingPathComponent("libprivbox_core.so").path] {
            guard FileManager.default.fileExists(atPath: p) else {
                throw XCTSkip("\(p) is missing: run scripts/build release first (scripts/test does)")
            }
        }
    }
}

struct Result: Equatable {
    var stdout: String
    var stderr: String
    var status: Int32
    var signalled: Bool

    var stderrLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
}

enum Mode: String, CaseIterable {
    case native, off, profile, accelerate, auto
}

final class Scratch {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("privbox-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ leaf: String) -> String { url.appendingPathComponent(leaf).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

enum Runner {
    /// The environment of the test process without any PRIVBOX_* or LD_PRELOAD variable.
    static var cleanEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PRIVBOX_") && $0.key != "LD_PRELOAD" }
    }

    /// Environment for `mode`: native has no preload; the others preload libprivbox.so.
    static func environment(_ mode: Mode, profile: String? = nil, extra: [String: String] = [:]) -> [String: String] {
        var env = cleanEnvironment
        if mode != .native {
            env["LD_PRELOAD"] = Paths.preload
            env["PRIVBOX_MODE"] = mode.rawValue
            if let profile { env["PRIVBOX_PROFILE"] = profile }
        }
        for (k, v) in extra { env[k] = v }
        return env
    }

    @discardableResult
    static func run(_ args: [String], environment: [String: String], cwd: String? = nil,
                    stdin: String? = nil, timeout: TimeInterval = 120) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0].hasPrefix("/") ? args[0] : "/usr/bin/env")
        p.arguments = args[0].hasPrefix("/") ? Array(args.dropFirst()) : args
        p.environment = environment
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            p.terminate()
            throw XCTSkip("timed out after \(timeout) s: \(args.joined(separator: " "))")
        }
        p.waitUntilExit()
        group.wait()
        return Result(stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self),
                      status: p.terminationStatus,
                      signalled: p.terminationReason == .uncaughtSignal)
    }

    /// Runs `args` in `mode` with a fresh profile path (for profile mode) in `scratch`.
    static func run(_ args: [String], mode: Mode, scratch: Scratch, profile: String? = nil,
                    extra: [String: String] = [:], cwd: String? = nil, stdin: String? = nil) throws -> Result {
        let profilePath = profile ?? scratch.path("\(mode.rawValue).%p.json")
        return try run(args, environment: environment(mode, profile: profilePath, extra: extra),
                       cwd: cwd, stdin: stdin)
    }
}

/// Compiles the C programs under Tests/IntegrationTests/programs once per test process.
enum Programs {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var built: [String: String] = [:]
    private static let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("privbox-programs-\(getpid())")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()

    /// Path of the compiled program `name` (programs/NAME.c), building it with `flags` if needed.
    static func path(_ name: String, flags: [String] = [], sharedLibrary: String? = nil) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let p = built[name] { return p }
        let out = dir.appendingPathComponent(name).path
        var args = ["cc", "-O1", "-g", "-fno-omit-frame-pointer", "-o", out,
                    Paths.programs.appendingPathComponent("\(name).c").path, "-lpthread", "-lm"] + flags
        if let lib = sharedLibrary { args += [lib, "-Wl,-rpath,\(dir.path)"] }
        let r = try Runner.run(args, environment: Runner.cleanEnvironment)
        guard r.status == 0 else {
            throw NSError(domain: "privbox-tests", code: 1,
                          userInfo: [NSLocalizedDescriptionKey: "compiling \(name).c failed:\n\(r.stderr)"])
        }
        built[name] = out
        return out
    }

    static var directory: URL { dir }
}

func files(in scratch: Scratch, matching suffix: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: scratch.url.path)) ?? [])
        .filter { $0.hasSuffix(suffix) }.sorted().map { scratch.path($0) }
}

func which(_ tool: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}
