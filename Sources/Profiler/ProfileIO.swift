#if canImport(Glibc)
import Glibc
#endif

/// Profiles larger than this are refused before parsing: a real profile is a few hundred bytes per
/// call site, and a hostile file must not make the preload allocate without bound.
public let maxProfileBytes = 64 << 20

public enum ProfileIO {
    /// Reads and validates the profile at `path` (any regular file: `privbox report` only reads
    /// it). Errors are one sentence naming the file.
    public static func read(path: String) throws -> Profile {
        try read(path: path, trusted: false)
    }

    /// Reads and validates a profile that will steer acceleration (`privbox run -p`): besides being
    /// a regular file, it must belong to this user (or root) and be writable by nobody else, since
    /// whoever can write it decides which system calls are served without the kernel.
    public static func readTrusted(path: String) throws -> Profile {
        try read(path: path, trusted: true)
    }

    static func read(path: String, trusted: Bool) throws -> Profile {
        let bytes = try readFile(path: path, limit: maxProfileBytes, trusted: trusted)
        guard !bytes.isEmpty else { throw ProfileError("profile \(path) is empty") }
        let json: JSON
        do {
            json = try JSONParser.parse(bytes)
        } catch let e as JSONError {
            throw ProfileError("profile \(path) is corrupt or truncated (\(e))")
        }
        do {
            return try Profile(json: json)
        } catch let e as ProfileError {
            throw ProfileError("profile \(path) is not usable: \(e)")
        }
    }

    /// The bytes of the regular file at `path` (`what` names it in errors: "profile", "file").
    /// Nothing but a regular file is opened for reading: a FIFO would block the open (and then the
    /// read) forever, and opening a device can act on it (a tape rewinds, a modem hangs up). The
    /// type is checked with stat() before the open, and again with fstat() on what was opened,
    /// which is opened O_NONBLOCK so that a FIFO swapped in between cannot block either. /proc and
    /// /sys files are regular files of size 0: they are read to EOF all the same.
    public static func readFile(path: String, limit: Int, what: String = "profile", trusted: Bool = false) throws -> [UInt8] {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ProfileError("cannot open \(what) \(path): \(errnoText())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ProfileError("\(what) \(path) is a \(fileKind(st.st_mode)), not a regular file")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw ProfileError("cannot open \(what) \(path): \(errnoText())") }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { throw ProfileError("cannot stat \(what) \(path): \(errnoText())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ProfileError("\(what) \(path) is a \(fileKind(st.st_mode)), not a regular file")
        }
        if trusted {
            guard st.st_uid == geteuid() || st.st_uid == 0 else {
                throw ProfileError("\(what) \(path) is owned by uid \(st.st_uid); not trusted")
            }
            guard st.st_mode & (S_IWGRP | S_IWOTH) == 0 else {
                throw ProfileError("\(what) \(path) is writable by group or others (mode \(octalMode(st.st_mode))); not trusted")
            }
        }
        // O_NONBLOCK has no effect on a regular file; cleared all the same so that the reads below
        // are plain blocking reads whatever the file system.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        guard st.st_size <= limit else {
            throw ProfileError("\(what) \(path) is larger than \(limit >> 20) MiB; refusing to read it")
        }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ProfileError("cannot read \(what) \(path): \(errnoText())")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit {
                throw ProfileError("\(what) \(path) is larger than \(limit >> 20) MiB; refusing to read it")
            }
        }
        return out
    }

    /// Writes `profile` to `path` with `writeAtomically`.
    public static func write(_ profile: Profile, to path: String) throws {
        try writeAtomically(Array(JSONWriter.write(profile.toJSON()).utf8), to: path, what: "profile")
    }

    /// Writes `bytes` to `path` atomically, replacing only a missing path or a regular file: a new
    /// file is created next to it with O_EXCL and O_NOFOLLOW, given mode 0600, filled, flushed and
    /// renamed over `path`. Anything else at `path` is refused and left as it is, because rename()
    /// would replace it: a device node (as root, `-o /dev/null` would turn the machine's /dev/null
    /// into a private file), a FIFO or socket another program listens on, a directory, or a
    /// symbolic link (replacing it would silently cut whatever the user pointed it at; following
    /// it would write where the link's owner chose). `what` names the file in errors ("profile",
    /// "SVG", "calibration"), so that the user knows which of the outputs failed.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, what: String = "profile") throws {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !base.isEmpty else { throw ProfileError("cannot write \(what) \(path): not a file name") }
        try requireReplaceable(path, what: what)
        var fd: Int32 = -1
        var tmp = ""
        for attempt in 0..<100 {
            tmp = "\(dir.isEmpty ? "" : dir + "/").\(base).\(getpid()).\(attempt).tmp"
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw ProfileError("cannot write \(what) \(path): \(errnoText())") }
        var ok = fchmod(fd, 0o600) == 0
        var reason = ok ? "" : errnoText()
        if ok, let why = writeAll(fd, bytes) { ok = false; reason = why }
        if ok && fsync(fd) != 0 { ok = false; reason = errnoText() }
        close(fd)
        do {
            guard ok else { throw ProfileError("cannot write \(what) \(path): \(reason)") }
            // Checked again just before the rename: what is at `path` may have changed while the
            // bytes were written (the window left is the rename itself).
            try requireReplaceable(path, what: what)
            guard rename(tmp, path) == 0 else { throw ProfileError("cannot write \(what) \(path): \(errnoText())") }
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// Writes `bytes` to `path` like `writeAtomically`, except that a path that is (following
    /// symbolic links) a character device or a FIFO is written into instead: that is what a user
    /// means by `--svg /dev/stdout` or `--svg /dev/null`, and it never replaces the node. It is
    /// opened without O_CREAT or O_TRUNC, and O_NONBLOCK so that a FIFO with no reader fails at
    /// once (ENXIO) instead of blocking; O_NONBLOCK is then cleared for the writes. O_NOCTTY: a
    /// terminal named here must not become privbox's controlling terminal.
    public static func writeOrStream(_ bytes: [UInt8], to path: String, what: String) throws {
        var st = stat()
        guard stat(path, &st) == 0, isStreamable(st.st_mode) else {
            return try writeAtomically(bytes, to: path, what: what)
        }
        let fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            let why = errno == ENXIO && (st.st_mode & S_IFMT) == S_IFIFO ? "it is a FIFO that nobody reads" : errnoText()
            throw ProfileError("cannot write \(what) \(path): \(why)")
        }
        defer { close(fd) }
        // What was opened may not be what stat() saw: require a device or FIFO again.
        guard fstat(fd, &st) == 0, isStreamable(st.st_mode) else {
            throw ProfileError("cannot write \(what) \(path): it changed while being opened")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        if let why = writeAll(fd, bytes) { throw ProfileError("cannot write \(what) \(path): \(why)") }
    }

    static func isStreamable(_ mode: mode_t) -> Bool {
        (mode & S_IFMT) == S_IFCHR || (mode & S_IFMT) == S_IFIFO
    }

    /// Throws unless `path` is missing or (not following a symbolic link) a regular file.
    static func requireReplaceable(_ path: String, what: String) throws {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return }
            throw ProfileError("cannot write \(what) \(path): \(errnoText())")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ProfileError("cannot write \(what) \(path): it is a \(fileKind(st.st_mode)); "
                               + "only a missing path or a regular file is replaced")
        }
    }

    /// Writes all of `bytes` to `fd`; the error text if a write fails, nil when all were written.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> String? {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN {
                // A descriptor left non-blocking by whoever shares it: wait until it takes more.
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, -1)
                continue
            }
            if n < 0 { return errnoText() }
            if n == 0 { return "nothing was written" }
            offset += n
        }
        return nil
    }
}

/// What a file of mode `mode` is, in words, for messages that say what is at a path (the words of
/// the preload's pb_file_kind, less the article; this module is pure Swift, fuzzed on its own, so it
/// cannot call that C function).
public func fileKind(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFREG: return "regular file"
    case S_IFDIR: return "directory"
    case S_IFCHR: return "character device"
    case S_IFBLK: return "block device"
    case S_IFIFO: return "FIFO"
    case S_IFSOCK: return "socket"
    case S_IFLNK: return "symbolic link"
    default: return "special file"
    }
}

/// "0666", "01777": the permission bits as chmod takes them.
func octalMode(_ mode: mode_t) -> String {
    let digits = String(mode & 0o7777, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

func errnoText() -> String {
    String(cString: strerror(errno))
}
