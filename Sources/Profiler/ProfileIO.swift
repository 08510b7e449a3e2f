#if canImport(Glibc)
import Glibc
#endif

/// Profiles larger than this are refused before parsing: a real profile is a few hundred bytes per
/// call site, and a hostile file must not make the preload allocate without bound.
public let maxProfileBytes = 64 << 20

public enum ProfileIO {
    /// Reads and validates the profile at `path`. Errors are one sentence naming the file.
    public static func read(path: String) throws -> Profile {
        let bytes = try readFile(path: path, limit: maxProfileBytes)
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

    public static func readFile(path: String, limit: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ProfileError("cannot open profile \(path): \(errnoText())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ProfileError("cannot stat profile \(path): \(errnoText())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ProfileError("profile \(path) is not a regular file") }
        guard st.st_size <= limit else {
            throw ProfileError("profile \(path) is larger than \(limit >> 20) MiB; refusing to read it")
        }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ProfileError("cannot read profile \(path): \(errnoText())")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit {
                throw ProfileError("profile \(path) is larger than \(limit >> 20) MiB; refusing to read it")
            }
        }
        return out
    }

    /// Writes `profile` to `path` atomically: a new file is created next to it with O_EXCL and
    /// O_NOFOLLOW, given mode 0600, filled, flushed and renamed over `path`. rename() replaces a
    /// symlink at `path` instead of following it, so the write never lands outside `path`.
    public static func write(_ profile: Profile, to path: String) throws {
        try writeAtomically(Array(JSONWriter.write(profile.toJSON()).utf8), to: path)
    }

    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !base.isEmpty else { throw ProfileError("cannot write profile \(path): not a file name") }
        var fd: Int32 = -1
        var tmp = ""
        for attempt in 0..<100 {
            tmp = "\(dir.isEmpty ? "" : dir + "/").\(base).\(getpid()).\(attempt).tmp"
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw ProfileError("cannot write profile \(path): \(errnoText())") }
        var ok = fchmod(fd, 0o600) == 0
        var offset = 0
        while ok && offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { ok = false; break }
            offset += n
        }
        let reason = errnoText()
        ok = ok && fsync(fd) == 0
        close(fd)
        if !ok || rename(tmp, path) != 0 {
            let why = ok ? errnoText() : reason
            unlink(tmp)
            throw ProfileError("cannot write profile \(path): \(why)")
        }
    }
}

func errnoText() -> String {
    String(cString: strerror(errno))
}
