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

    /// A run that did not end in time: it is killed and the test FAILS (a hang is a defect,
    /// never a reason to skip: issue 16's FIFOs hung programs before main()).
    struct Hung: Error, CustomStringConvertible { let description: String }

    /// Runs `args` and captures everything it prints. Both pipes are read while it runs (a chatty
    /// child cannot block on a full pipe, and a child stuck before printing anything, in open()
    /// on a FIFO say, does not keep this from seeing the deadline), and after `timeout` seconds
    /// the child is killed and `Hung` thrown.
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
        let ended = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in ended.signal() }
        try p.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let outBox = Box(), errBox = Box()
        let group = DispatchGroup()
        for (pipe, box) in [(out, outBox), (err, errBox)] {
            group.enter()
            DispatchQueue.global().async {
                box.data = pipe.fileHandleForReading.readDataToEndOfFile()
                group.leave()
            }
        }
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let deadline = DispatchTime.now() + timeout
        if ended.wait(timeout: deadline) == .timedOut {
            kill(p.processIdentifier, SIGKILL)
            ended.wait()
            _ = group.wait(timeout: .now() + 5)
            throw Hung(description: "hung (killed after \(timeout) s): \(args.joined(separator: " "))\n"
                       + String(decoding: errBox.data, as: UTF8.self))
        }
        // Something it started may still hold the pipes: that is a hang too.
        guard group.wait(timeout: deadline) == .success else {
            throw Hung(description: "its output was still open \(timeout) s after it started (a child left "
                       + "running?): \(args.joined(separator: " "))")
        }
        return Result(stdout: String(decoding: outBox.data, as: UTF8.self),
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

// ---- nodes that are not regular files, for the hostile-environment tests (issue 16) ----------

/// What is at `path` itself (lstat): type and permission bits, inode and device number.
struct Node: Equatable {
    var mode: UInt32, ino: UInt64, rdev: UInt64, uid: UInt32
    init?(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        mode = UInt32(st.st_mode); ino = UInt64(st.st_ino); rdev = UInt64(st.st_rdev); uid = UInt32(st.st_uid)
    }
    var type: UInt32 { mode & UInt32(S_IFMT) }
    var permissions: UInt32 { mode & 0o7777 }
}

/// A character device node (as /dev/null is 1,3 and /dev/full 1,7), made where a test wants it.
func makeCharDevice(_ path: String, major: UInt32, minor: UInt32) throws {
    let dev = dev_t(major) << 8 | dev_t(minor) // glibc's encoding for numbers below 256
    guard Glibc.mknod(path, S_IFCHR | 0o666, dev) == 0 else {
        throw XCTSkip("mknod needs root: \(String(cString: strerror(errno)))")
    }
}

func makeFifo(_ path: String) {
    XCTAssertEqual(Glibc.mkfifo(path, 0o666), 0, "mkfifo \(path): \(String(cString: strerror(errno)))")
}

/// A Unix socket bound at `path`. sun_path holds the path and its terminating 0 (108 bytes): a
/// longer path (a deep TMPDIR) fails the test with a message instead of overrunning the buffer.
func makeSocket(_ path: String) {
    var addr = sockaddr_un()
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
        return XCTFail("socket path \(path) is \(bytes.count) bytes; a Unix socket's path must be shorter than "
                       + "\(MemoryLayout.size(ofValue: addr.sun_path)) (use a shorter TMPDIR)")
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    XCTAssertEqual(rc, 0, "bind \(path): \(String(cString: strerror(errno)))")
    close(fd)
}
