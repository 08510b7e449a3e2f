// Starting the user's command under the preload, and passing its exit status through.
import CShim
import Profiler
import Synchronization

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
    /// A command that could not be started, with the status a shell gives for it: bash exits 127
    /// when execve says the file does not exist (ENOENT: not found, on PATH or at all) and 126 for
    /// every other refusal (not executable, a directory, no x permission even for root, ENOEXEC...).
    struct CannotRun: Error, CustomStringConvertible {
        let status: Int32
        let description: String

        init(_ name: String, errno code: Int32) {
            status = code == ENOENT ? 127 : 126
            var reason = String(cString: strerror(code))
            // execve says EACCES for a directory; bash names it, and so does privbox.
            var st = stat()
            if code == EACCES, name.contains("/"), stat(name, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
                reason = String(cString: strerror(EISDIR))
            }
            description = "cannot run \(name): \(reason)"
        }
    }

    /// Replaces this process with `command` (PATH search as execvp). Returns only on failure, with
    /// one line and the shell's status (CannotRun).
    static func exec(_ command: [String], environment: [String]) -> Never {
        let code: Int32 = withCStrings(command) { argv in
            withCStrings(environment) { envp in
                _ = pb_execvpe(argv[0], argv, envp)
                return errno // before free() in withCStrings could touch it
            }
        }
        let failure = CannotRun(command[0], errno: code)
        warn(failure.description)
        exit(failure.status)
    }

    // MARK: Signals sent to privbox while the command runs
    //
    // `privbox profile` stands between the command and whoever started it, so a signal meant for
    // the command often reaches privbox instead: `kill PID` of the pid a shell or a service
    // manager knows, PostgreSQL's pg_ctl-style SIGINT, a supervisor's SIGHUP, timeout(1)'s
    // SIGTERM. Each one is forwarded to the command, once, and privbox waits until the command has
    // ended; then it merges what was written and exits the way the command did.
    //
    // - Caught: every signal but the synchronous faults (SEGV, BUS, ILL, FPE, TRAP, SYS: privbox's
    //   own bugs, which must kill it), SIGCHLD (privbox's own child), SIGKILL and SIGSTOP (which
    //   cannot be caught) and the job-control stops TSTP, TTIN, TTOU (below). Real-time signals
    //   are caught too (glibc keeps 32 and 33 for itself: sigaction refuses them).
    // - Forwarded: a signal sent by a process (si_code SI_USER, SI_QUEUE with its value, or
    //   SI_TKILL) other than the command and privbox itself. Not forwarded: what the kernel
    //   generated (SI_KERNEL and the positive codes): the terminal's ^C, ^\ and window-size
    //   SIGWINCH go to the whole foreground process group, which the command is in already;
    //   timers, SIGIO, SIGXCPU are privbox's own. A signal the command sends to its parent is for
    //   privbox, not to be sent back; one privbox raises itself is its own (a SIGPIPE or SIGXFSZ
    //   from its own write is SI_USER from its own pid: the write then fails with EPIPE/EFBIG
    //   instead of killing privbox, which could no longer pass the command's status on).
    // - Cannot be told apart: a signal sent to the whole process group (`kill -- -PGID`, bash's
    //   `kill %job`, systemd's control-group kill) reaches the command directly and again through
    //   privbox, since the siginfo of kill(-pgid) and of kill(pid) is the same. Such a command gets
    //   the signal twice (one delivery if the first is still pending): harmless for a default action,
    //   a shutdown or a reload, visible to a handler that counts. Signal privbox's pid (or the
    //   command's) rather than the group to have it once. Nothing is dropped either way.
    // - Job control: TSTP, TTIN and TTOU keep the disposition privbox inherited (by default they
    //   stop privbox). From the terminal (^Z, a background read or write) the kernel sends them to
    //   the whole process group, so the command stops too; `fg` continues both. Sent to privbox's
    //   pid alone they stop privbox and not the command (as SIGSTOP, which nothing can forward,
    //   does): a handler could not reproduce the kernel's stop rules (an orphaned process group is
    //   not stopped; a stopped wrapper whose CONT never comes would hang). SIGCONT is forwarded.
    // - The command starts with what privbox was given, as exec would pass it: the signal mask
    //   privbox inherited (POSIX_SPAWN_SETSIGMASK) and every caught signal at its default action
    //   (POSIX_SPAWN_SETSIGDEF); a signal privbox inherited as ignored (nohup, a background job of a
    //   shell without job control) is neither caught nor reset, so it stays ignored in the command
    //   and `kill -HUP` to a nohup'ed privbox does nothing, as it would to the command. The one
    //   exception is SIGCHLD: privbox sets it to its default while it waits, since an ignored
    //   SIGCHLD makes the kernel discard the command's exit status; the command starts with it at
    //   its default too.
    // - After the command has ended (with `forwardUntilExit`), signals are still caught and, with
    //   no command to forward them to, dropped: the merge is bounded, and ending in the middle of
    //   it would lose the profile and leave the temporary directory behind. SIGKILL still works.

    /// The command's pid while it runs, 0 before and after: read by the signal handler.
    static let child = Atomic<pid_t>(0)

    /// Signals that are never caught (see above).
    static let uncaught: Set<Int32> = [SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS,
                                       SIGCHLD, SIGTSTP, SIGTTIN, SIGTTOU]

    /// What `catchSignals` changed, to undo it.
    struct CaughtSignals {
        var set = sigset_t()
        var previous: [(Int32, sigaction)] = []
        var previousChild = sigaction()
        /// The mask privbox was started with (the command's).
        var inheritedMask = sigset_t()
    }

    /// Installs the forwarding handler for every signal that is caught and not inherited as
    /// ignored, with those signals blocked (the caller unblocks them once the child's pid is
    /// stored, so that none is lost or sent to pid 0), and sets SIGCHLD to its default.
    static func catchSignals() -> CaughtSignals {
        var caught = CaughtSignals()
        sigemptyset(&caught.set)
        var everything = sigset_t()
        sigfillset(&everything)
        for sig in 1..<Int32(NSIG) where !uncaught.contains(sig) { sigaddset(&caught.set, sig) }
        // Blocked first: a signal arriving while the handlers go in waits for the child's pid.
        sigprocmask(SIG_BLOCK, &caught.set, &caught.inheritedMask)
        var forwarder = sigaction()
        forwarder.__sigaction_handler.sa_sigaction = forwardSignal
        forwarder.sa_flags = SA_SIGINFO | SA_RESTART
        forwarder.sa_mask = everything
        for sig in 1..<Int32(NSIG) where sigismember(&caught.set, sig) == 1 {
            var old = sigaction()
            if sigaction(sig, nil, &old) != 0 || isIgnored(old) || sigaction(sig, &forwarder, nil) != 0 {
                sigdelset(&caught.set, sig) // ignored stays ignored; 32 and 33 are glibc's
                continue
            }
            caught.previous.append((sig, old))
        }
        var childDefault = sigaction()
        childDefault.__sigaction_handler.sa_handler = SIG_DFL
        sigaction(SIGCHLD, &childDefault, &caught.previousChild)
        return caught
    }

    static func restoreSignals(_ caught: CaughtSignals) {
        var blocked = caught.set
        sigprocmask(SIG_BLOCK, &blocked, nil)
        for (sig, old) in caught.previous {
            var action = old
            sigaction(sig, &action, nil)
        }
        var child = caught.previousChild
        sigaction(SIGCHLD, &child, nil)
        var mask = caught.inheritedMask
        sigprocmask(SIG_SETMASK, &mask, nil)
    }

    private static func isIgnored(_ action: sigaction) -> Bool {
        action.sa_flags & SA_SIGINFO == 0
            && unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    }

    /// Runs `command` as a child and waits for it, forwarding the signals sent to privbox (see
    /// above). Returns the raw wait status; throws CannotRun if it could not be started. With
    /// `forwardUntilExit`, the handlers stay installed after the command ended, until privbox
    /// exits (exitLike); otherwise every disposition and the mask are restored.
    static func spawnAndWait(_ command: [String], environment: [String], forwardUntilExit: Bool = false) throws -> Int32 {
        child.store(0, ordering: .sequentiallyConsistent)
        let caught = catchSignals()
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var defaults = caught.set
        var mask = caught.inheritedMask
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setsigmask(&attr, &mask)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var pid: pid_t = 0
        func spawn(_ argv: [String]) -> Int32 {
            withCStrings(argv) { argv in
                withCStrings(environment) { envp in
                    posix_spawnp(&pid, argv[0]!, nil, &attr, argv, envp)
                }
            }
        }
        var rc = spawn(command)
        // An executable without a #! line is a shell script to bash and to execvp (so to
        // `privbox run`), which run it with /bin/sh; posix_spawnp does not (glibc 2.26+).
        if rc == ENOEXEC, let path = executablePath(command[0]) {
            rc = spawn(["/bin/sh", path] + command.dropFirst())
            if rc != 0 { rc = ENOEXEC } // the error is the script's, not the shell's
        }
        if rc == 0 { child.store(pid, ordering: .sequentiallyConsistent) }
        // While waiting, every caught signal is delivered here, even one privbox inherited
        // blocked: that mask is the command's. Those that came in meanwhile are forwarded now.
        var waiting = caught.inheritedMask
        for (sig, _) in caught.previous { sigdelset(&waiting, sig) }
        sigprocmask(SIG_SETMASK, &waiting, nil)
        guard rc == 0 else {
            restoreSignals(caught)
            throw CannotRun(command[0], errno: rc)
        }
        // Wait without reaping first: until the pid is cleared, the handler may signal it, and a
        // reaped pid could already belong to another process.
        var info = siginfo_t()
        var waited: Int32 = 0
        repeat { waited = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) } while waited < 0 && errno == EINTR
        let waitError = errno
        var blocked = caught.set
        sigprocmask(SIG_BLOCK, &blocked, nil)
        child.store(0, ordering: .sequentiallyConsistent)
        sigprocmask(SIG_SETMASK, &waiting, nil)
        guard waited == 0 else {
            restoreSignals(caught)
            throw CLIError("waitid failed: \(String(cString: strerror(waitError)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { throw CLIError("waitpid failed: \(String(cString: strerror(errno)))") }
        }
        if !forwardUntilExit { restoreSignals(caught) }
        return status
    }

    /// The file execvp runs for `name`: `name` itself if it has a slash, otherwise the first
    /// executable regular file of that name in $PATH (glibc's default when unset).
    static func executablePath(_ name: String) -> String? {
        if name.contains("/") { return name }
        guard !name.isEmpty else { return nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/bin:/usr/bin"
        for dir in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = dir.isEmpty ? name : "\(dir)/\(name)" // an empty entry is the current directory
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
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

/// The handler of every caught signal: forwards it to the command if a process other than the
/// command and privbox sent it (see Launcher). Async-signal-safe: an atomic load, getpid, kill or
/// sigqueue, and errno kept.
private let forwardSignal: @convention(c) (Int32, UnsafeMutablePointer<siginfo_t>?, UnsafeMutableRawPointer?) -> Void = { sig, info, _ in
    guard let info else { return }
    let code = info.pointee.si_code
    guard code == SI_USER || code == SI_QUEUE || code == SI_TKILL else { return }
    let sender = info.pointee._sifields._kill.si_pid
    let child = Launcher.child.load(ordering: .sequentiallyConsistent)
    guard child > 0, sender != child, sender != getpid() else { return }
    let saved = errno
    if code == SI_QUEUE {
        _ = sigqueue(child, sig, info.pointee._sifields._rt.si_sigval)
    } else {
        _ = kill(child, sig)
    }
    errno = saved
}
