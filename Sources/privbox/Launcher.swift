// Starting the user's command under the preload, and passing its exit status through.
import CShim
import Profiler

#if canImport(Glibc)
import Glibc
#endif

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Which of descriptors 1 and 2 the caller gave privbox. Checked once, by `Privbox.main` before
/// anything here can open a file: if the caller closed fd 2, the next file privbox opens (a profile,
/// the output's temporary file) would be fd 2, and a message written "to stderr" would land in it.
enum StandardStreams {
    nonisolated(unsafe) private(set) static var stdoutOpen = true
    nonisolated(unsafe) private(set) static var stderrOpen = true

    static func check() {
        stdoutOpen = fcntl(1, F_GETFD) != -1
        stderrOpen = fcntl(2, F_GETFD) != -1
    }
}

/// Prints one `privbox:` line on stderr, if privbox was given a stderr (see StandardStreams);
/// without one the message is dropped: there is nowhere it may go.
func warn(_ message: String) {
    guard StandardStreams.stderrOpen else { return }
    var line = "privbox: " + String(message.map { $0 == "\n" ? " " : $0 }) + "\n"
    line.withUTF8 { buf in _ = Glibc.write(2, buf.baseAddress, buf.count) }
}

enum Installation {
    /// The directory the running `privbox` binary is in: libprivbox.so and libprivbox_core.so are
    /// installed next to it (both `swift build` and `scripts/build` put them there).
    static var binDirectory: String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return "." }
        let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return exe.lastIndex(of: "/").map { String(exe[..<$0]) } ?? "."
    }

    static var preloadLibrary: String { binDirectory + "/libprivbox.so" }
    static var coreLibrary: String { binDirectory + "/libprivbox_core.so" }

    static func requirePreload() throws -> String {
        let lib = preloadLibrary
        guard access(lib, R_OK) == 0 else {
            throw CLIError("cannot find \(lib); build it with scripts/build")
        }
        guard access(coreLibrary, R_OK) == 0 else {
            throw CLIError("cannot find \(coreLibrary); build it with scripts/build")
        }
        return lib
    }
}

enum Environment {
    static func current() -> [String] {
        var out: [String] = []
        var p = environ
        while let entry = p.pointee {
            out.append(String(cString: entry))
            p += 1
        }
        return out
    }

    /// The current environment with the preload prepended to LD_PRELOAD and `settings` replacing
    /// any PRIVBOX_* variable already set (so a stray PRIVBOX_MODE cannot contradict the command).
    static func withPreload(_ library: String, settings: [String: String]) -> [String] {
        var env: [String] = []
        var preload: String? = nil
        for entry in current() {
            if entry.hasPrefix("LD_PRELOAD=") {
                preload = String(entry.dropFirst("LD_PRELOAD=".count))
            } else if entry.hasPrefix("PRIVBOX_") {
                let name = String(entry.prefix(while: { $0 != "=" }))
                if settings[name] == nil { env.append(entry) }
            } else {
                env.append(entry)
            }
        }
        let others = (preload ?? "").split(whereSeparator: { $0 == ":" || $0 == " " })
            .map(String.init).filter { !$0.hasSuffix("/libprivbox.so") && $0 != "libprivbox.so" }
        env.append("LD_PRELOAD=" + ([library] + others).joined(separator: ":"))
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
            env.append("\(name)=\(value)")
        }
        return env
    }
}

func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) throws -> R) rethrows -> R {
    let pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return try body(pointers + [nil])
}

enum Launcher {
    /// Replaces this process with `command` (PATH search as execvp). Returns only on failure.
    static func exec(_ command: [String], environment: [String]) -> Never {
        withCStrings(command) { argv in
            withCStrings(environment) { envp in
                _ = pb_execvpe(argv[0], argv, envp)
            }
        }
        let code: Int32 = errno == ENOENT ? 127 : 126
        warn("cannot run \(command[0]): \(String(cString: strerror(errno)))")
        exit(code)
    }

    nonisolated(unsafe) static var child: pid_t = 0

    /// Runs `command` as a child and waits for it. While waiting, SIGINT and SIGQUIT are ignored
    /// here (the terminal delivers them to the child too, as with system()), and SIGTERM/SIGHUP are
    /// forwarded to the child. Returns the raw wait status.
    static func spawnAndWait(_ command: [String], environment: [String]) throws -> Int32 {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGQUIT, SIGTERM, SIGHUP] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF))

        let oldInt = signal(SIGINT, SIG_IGN)
        let oldQuit = signal(SIGQUIT, SIG_IGN)
        let forward: @convention(c) (Int32) -> Void = { sig in
            if Launcher.child > 0 { kill(Launcher.child, sig) }
        }
        let oldTerm = signal(SIGTERM, forward)
        let oldHup = signal(SIGHUP, forward)
        defer {
            signal(SIGINT, oldInt)
            signal(SIGQUIT, oldQuit)
            signal(SIGTERM, oldTerm)
            signal(SIGHUP, oldHup)
        }

        var pid: pid_t = 0
        let rc = withCStrings(command) { argv in
            withCStrings(environment) { envp in
                posix_spawnp(&pid, argv[0]!, nil, &attr, argv, envp)
            }
        }
        guard rc == 0 else {
            throw CLIError("cannot run \(command[0]): \(String(cString: strerror(rc)))")
        }
        child = pid
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { throw CLIError("waitpid failed: \(String(cString: strerror(errno)))") }
        }
        child = 0
        return status
    }

    /// Exits the way the child did: same exit code, or killed by the same signal.
    static func exitLike(status: Int32) -> Never {
        let signalled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        if !signalled { exit((status >> 8) & 0xff) }
        let sig = status & 0x7f
        signal(sig, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, sig)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        // A core dump of privbox itself would only confuse: report the child's signal without one.
        var limit = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(Int32(RLIMIT_CORE.rawValue), &limit)
        raise(sig)
        exit(128 + sig)
    }
}
