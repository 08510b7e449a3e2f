import ArgumentParser
import CShim
import Profiler

#if canImport(Glibc)
import Glibc
#endif

@main
struct Privbox: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privbox",
        abstract: "Profile the syscall-dense loops of an unmodified program, and run it accelerated.",
        discussion: """
        privbox preloads libprivbox.so into the command (LD_PRELOAD). The same modes are available
        without this tool: LD_PRELOAD=/path/libprivbox.so PRIVBOX_MODE=profile ./app
        """,
        version: privboxVersion,
        subcommands: [ProfileCommand.self, RunCommand.self, ReportCommand.self, DoctorCommand.self]
    )

    /// ArgumentParser's main, after noting which standard descriptors we were given: that must
    /// come before anything opens a file (see StandardStreams).
    static func main() {
        StandardStreams.check()
        main(nil)
    }
}

/// `path` made absolute against the current directory: paths handed to the command's processes
/// (PRIVBOX_PROFILE, the temporary directory) must not depend on where each of them runs, as a
/// process that changes directory (make -C, a script that cds) would resolve a relative one
/// elsewhere.
func absolutePath(_ path: String) throws -> String {
    guard !path.hasPrefix("/") else { return path }
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buf, buf.count) != nil else {
        throw CLIError("cannot make \(path) absolute: \(String(cString: strerror(errno)))")
    }
    let cwd = String(cString: buf)
    return (cwd == "/" ? "" : cwd) + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
}

/// Writes `text` to standard output, all of it, or throws one sentence saying why not: a report
/// that could not be written (a full disk, a closed pipe) must fail the command, not exit 0. Not
/// written at all if privbox was started without a descriptor 1 (see StandardStreams).
func writeReport(_ text: String) throws {
    guard StandardStreams.stdoutOpen else { throw CLIError("cannot write the report: standard output is closed") }
    if let why = ProfileIO.writeAll(1, Array(text.utf8)) { throw CLIError("cannot write the report: \(why)") }
}

/// Runs `body`, turning any error into one `privbox:` line and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as CLIError {
        warn(e.description)
        throw ExitCode(1)
    } catch let e as ProfileError {
        warn(e.description)
        throw ExitCode(1)
    }
}

struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Run a command with syscall profiling and write its profile.",
        discussion: """
        Every process of the command's tree that exits normally writes its own profile; they are
        merged into one file (one entry per process). The command's exit status is passed through.
        """
    )

    @Option(name: [.short, .customLong("output")], help: "Where to write the merged profile.")
    var output: String = PB_DEFAULT_PROFILE_READ

    @Flag(name: .customLong("inline"), help: """
        Also count the system calls that do not go through libc's wrappers (syscall instructions \
        in the program or a runtime, libc's internal calls), with Syscall User Dispatch \
        (PRIVBOX_INLINE=1): each such call traps, ~2.4 µs here, at most 200,000 per thread.
        """)
    var inline = false

    @Argument(parsing: .postTerminator, help: "The command to run, after --.")
    var command: [String] = []

    func run() throws {
        guard !command.isEmpty else { throw ValidationError("missing command: privbox profile -- CMD [ARGS...]") }
        var status: Int32 = 0
        var cannotRun: Launcher.CannotRun? = nil
        try reportingErrors {
            let lib = try Installation.requirePreload()
            let dir = try TemporaryDirectory(prefix: "privbox-profile")
            defer { dir.remove() }
            var settings = [
                "PRIVBOX_MODE": "profile",
                "PRIVBOX_PROFILE": dir.patternPrefix + "/%p.json",
            ]
            if inline { settings["PRIVBOX_INLINE"] = "1" }
            let env = Environment.withPreload(lib, settings: settings)
            do {
                // Signals sent to privbox go to the command while it runs; after it ended they
                // are dropped, so that the merge completes (Launcher, "Signals sent to privbox").
                status = try Launcher.spawnAndWait(command, environment: env, forwardUntilExit: true)
            } catch let failure as Launcher.CannotRun {
                // Nothing ran, so there is nothing to merge: no profile is written, and privbox
                // exits as a shell would (127 or 126) after one line.
                cannotRun = failure
                return
            }
            var profiles: [Profile] = []
            for file in dir.files() where file.hasSuffix(".json") {
                do {
                    profiles.append(try ProfileIO.read(path: dir.path + "/" + file))
                } catch {
                    warn("skipping a process's profile: \(error)")
                }
            }
            var merged = Profile.merged(profiles)
            let loops = LoopAnalysis.analyze(merged, symbols: Symbolizer().symbols(for: merged))
            merged.loops = loops.hot.map { $0.toJSON() }
            do {
                try ProfileIO.write(merged, to: output)
            } catch {
                // The command has already run: its failure is what the caller must see first;
                // when it succeeded, 1, since a profile that was not written must not look like
                // success.
                dir.remove()
                warn("\(error)")
                Launcher.exitLike(status: status != 0 ? status : 1 << 8)
            }
            let calls = merged.processes.saturatingSum(\.totalCalls)
            warn("profile of \(merged.processes.count) process\(merged.processes.count == 1 ? "" : "es") "
                 + "(\(calls) wrapped calls) written to \(output)")
        }
        if let cannotRun {
            warn(cannotRun.description)
            throw ExitCode(cannotRun.status)
        }
        Launcher.exitLike(status: status)
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command accelerated according to a profile.",
        discussion: """
        The profile is checked first; if it is missing or unusable, one line says why and the
        command runs natively. The command replaces privbox (exec), so its exit status, signals and
        process id are its own.
        """
    )

    @Option(name: [.short, .customLong("profile")], help: "The profile written by `privbox profile`.")
    var profile: String = PB_DEFAULT_PROFILE_READ

    @Argument(parsing: .postTerminator, help: "The command to run, after --.")
    var command: [String] = []

    func run() throws {
        guard !command.isEmpty else { throw ValidationError("missing command: privbox run -- CMD [ARGS...]") }
        var env = Environment.current()
        do {
            let lib = try Installation.requirePreload()
            let path = try absolutePath(profile)
            _ = try ProfileIO.readTrusted(path: path)
            env = Environment.withPreload(lib, settings: [
                "PRIVBOX_MODE": "accelerate",
                "PRIVBOX_PROFILE": path,
            ])
        } catch {
            warn("\(error); running natively")
        }
        Launcher.exec(command, environment: env)
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print a readable report of one or more profiles.",
        discussion: """
        Per process: the syscall mix, the time inside wrapped calls and the busiest call sites.
        Then the hot loops: the innermost loop of the program that repeats each system call, with
        its function and source line (from the module files on disk, which must be the builds
        that were profiled), its density, what privbox's user-space executors could save, and a
        PROJECTION of a privbox kernel: each call's measured kernel-entry cost (see `privbox
        doctor`) replaced by a function call.
        """
    )

    @Option(name: .long, help: "Call sites and loops to list (0: only the totals).")
    var top: Int = 10

    @Flag(name: .long, help: "Print folded stacks (for flamegraph.pl, inferno, speedscope) instead of the report.")
    var folded = false

    @Option(name: .long, help: "Also write an SVG flame graph of the stacks to this file.")
    var svg: String?

    @Option(name: .long, help: "Kernel-entry cost in ns for the projection (default: measured now, as `privbox doctor` does).")
    var entryNs: Double?

    @Argument(help: "Profile files (several are merged).")
    var files: [String]

    func validate() throws {
        guard top >= 0 else { throw ValidationError("--top must be 0 or more (got \(top))") }
    }

    func run() throws {
        try reportingErrors {
            let profiles = try files.map { try ProfileIO.read(path: $0) }
            let profile = Profile.merged(profiles)
            let symbolizer = Symbolizer()
            let symbols = symbolizer.symbols(for: profile)
            let folded = FlameGraph.folded(profile, symbols: symbols)
            if let svg {
                let title = "privbox: system calls by stack (\(files.joined(separator: ", ")))"
                try ProfileIO.writeOrStream(Array(FlameGraph.svg(folded, title: title).utf8), to: svg, what: "SVG")
            }
            if self.folded {
                try writeReport(FlameGraph.foldedText(folded))
                return
            }
            let source = files.joined(separator: ", ")
            var text = ReportFormatter.text(profile, source: source, top: top)
            let loops = LoopAnalysis.analyze(profile, symbols: symbols)
            let entry = entryNs ?? Doctor.kernelEntryNs()
            text += ReportFormatter.loops(loops, profile: profile, projection: Projection(kernelEntryNs: entry), top: top)
            for problem in Set(symbolizer.problems).sorted() {
                text += "  note: no symbols: \(problem)\n"
            }
            try writeReport(text)
        }
    }
}

struct TemporaryDirectory {
    let path: String

    init(prefix: String) throws {
        // Absolute, because the command's processes write into it from wherever they run.
        let tmpdir = getenv("TMPDIR").map { String(cString: $0) } ?? ""
        let base = try absolutePath(tmpdir.isEmpty ? "/tmp" : tmpdir)
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CLIError("cannot create a temporary directory in \(base): \(String(cString: strerror(errno)))")
        }
        path = String(cString: made)
    }

    /// `path` as the directory part of a PRIVBOX_PROFILE pattern, which profile mode expands (%p:
    /// the pid, %%: a '%'): each '%' is doubled so that a TMPDIR such as /tmp/a%pb still names
    /// this directory.
    var patternPrefix: String {
        path.reduce(into: "") { out, c in out += c == "%" ? "%%" : String(c) }
    }

    func files() -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    func remove() {
        for f in files() { unlink(path + "/" + f) }
        rmdir(path)
    }
}
