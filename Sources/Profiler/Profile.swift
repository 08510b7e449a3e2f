// The profile file, schema "privbox-profile/1" (documented in README.md, section "Profile file").
//
// A profile holds one entry per profiled process. Each process lists the modules (executable and
// shared objects, with their GNU build-ids) and the call sites of wrapped libc functions, as
// (module, offset) pairs so that a profile survives address-space randomisation and can be refused
// for a different build of the same program.

public let profileSchema = "privbox-profile/1"

public struct ProfileModule: Equatable {
    public var path: String
    /// Lower-case hex GNU build-id, "" when the object has none.
    public var buildID: String

    public init(path: String, buildID: String) {
        self.path = path
        self.buildID = buildID
    }
}

/// One call site: the return address into the code that called a wrapped libc function, and the
/// system call that function issues, as counted on one thread.
public struct ProfileSite: Equatable {
    /// Index into the process's modules, or -1 when no loaded object mapped the address.
    public var module: Int
    /// Offset from the module's load address (the absolute address when module is -1).
    public var offset: UInt64
    public var syscall: String
    public var number: Int
    /// Per-process thread index (order of first wrapped call).
    public var thread: Int
    public var calls: UInt64
    public var errors: UInt64
    /// Time inside the wrapped call (kernel entry, work, exit).
    public var kernelNs: UInt64
    /// Time the thread spent outside wrapped calls between its previous wrapped call and this one.
    public var userNs: UInt64

    public init(module: Int, offset: UInt64, syscall: String, number: Int, thread: Int,
                calls: UInt64, errors: UInt64, kernelNs: UInt64, userNs: UInt64) {
        self.module = module
        self.offset = offset
        self.syscall = syscall
        self.number = number
        self.thread = thread
        self.calls = calls
        self.errors = errors
        self.kernelNs = kernelNs
        self.userNs = userNs
    }
}

public struct ProcessProfile: Equatable {
    public var pid: Int
    public var ppid: Int
    public var exe: String
    /// Wall time profiled, from process start (or fork) to exit.
    public var wallNs: UInt64
    public var threads: Int
    /// Calls not attributed to a site because a thread's site table was full.
    public var dropped: UInt64
    public var modules: [ProfileModule]
    public var sites: [ProfileSite]

    public init(pid: Int, ppid: Int, exe: String, wallNs: UInt64, threads: Int, dropped: UInt64,
                modules: [ProfileModule], sites: [ProfileSite]) {
        self.pid = pid
        self.ppid = ppid
        self.exe = exe
        self.wallNs = wallNs
        self.threads = threads
        self.dropped = dropped
        self.modules = modules
        self.sites = sites
    }

    /// The build-id of the process's executable, "" if unknown.
    public var exeBuildID: String {
        modules.first(where: { $0.path == exe })?.buildID ?? ""
    }
}

public struct Profile: Equatable {
    public var tool: String
    public var processes: [ProcessProfile]

    public init(tool: String = "privbox \(privboxVersion)", processes: [ProcessProfile]) {
        self.tool = tool
        self.processes = processes
    }

    /// Concatenates the processes of several profiles (e.g. one file per process of a tree).
    public static func merged(_ profiles: [Profile]) -> Profile {
        Profile(processes: profiles.flatMap(\.processes).sorted { $0.pid < $1.pid })
    }
}

public let privboxVersion = "0.1.0"

public struct ProfileError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

// MARK: - JSON mapping

extension Profile {
    public func toJSON() -> JSON {
        .object([
            ("schema", .string(profileSchema)),
            ("tool", .string(tool)),
            ("processes", .array(processes.map { $0.toJSON() })),
        ])
    }

    /// Decodes and validates a profile. Every problem is reported with the path of the offending
    /// field, e.g. `processes[0].sites[3].calls: expected a non-negative integer`.
    public init(json: JSON) throws {
        let d = Decoder(path: "")
        guard case .object = json else { throw ProfileError("not a privbox profile (expected a JSON object)") }
        let schema = try d.string(json, "schema")
        guard schema == profileSchema else {
            throw ProfileError("unsupported schema \"\(schema.prefix(64))\" (this privbox reads \(profileSchema))")
        }
        tool = try d.string(json, "tool")
        processes = try d.array(json, "processes").enumerated().map { i, p in
            try ProcessProfile(json: p, path: "processes[\(i)]")
        }
    }
}

extension ProcessProfile {
    func toJSON() -> JSON {
        .object([
            ("pid", .integer(Int64(pid))),
            ("ppid", .integer(Int64(ppid))),
            ("exe", .string(exe)),
            ("wall_ns", .integer(Int64(clamping: wallNs))),
            ("threads", .integer(Int64(threads))),
            ("dropped", .integer(Int64(clamping: dropped))),
            ("modules", .array(modules.map {
                .object([("path", .string($0.path)), ("build_id", .string($0.buildID))])
            })),
            ("sites", .array(sites.map { s in
                .object([
                    ("module", .integer(Int64(s.module))),
                    ("offset", .integer(Int64(clamping: s.offset))),
                    ("syscall", .string(s.syscall)),
                    ("nr", .integer(Int64(s.number))),
                    ("thread", .integer(Int64(s.thread))),
                    ("calls", .integer(Int64(clamping: s.calls))),
                    ("errors", .integer(Int64(clamping: s.errors))),
                    ("kernel_ns", .integer(Int64(clamping: s.kernelNs))),
                    ("user_ns", .integer(Int64(clamping: s.userNs))),
                ])
            })),
        ])
    }

    init(json: JSON, path: String) throws {
        let d = Decoder(path: path)
        pid = try d.int(json, "pid", 0...Int(Int32.max))
        ppid = try d.int(json, "ppid", 0...Int(Int32.max))
        exe = try d.string(json, "exe")
        wallNs = try d.uint(json, "wall_ns")
        threads = try d.int(json, "threads", 0...1_000_000)
        dropped = try d.uint(json, "dropped")
        let modulesJSON = try d.array(json, "modules")
        modules = try modulesJSON.enumerated().map { i, m in
            let md = Decoder(path: "\(path).modules[\(i)]")
            let buildID = try md.string(m, "build_id")
            guard buildID.count <= 128, buildID.utf8.allSatisfy({ isHexDigit($0) }) else {
                throw ProfileError("\(md.path).build_id: expected a hexadecimal build-id")
            }
            return ProfileModule(path: try md.string(m, "path"), buildID: buildID)
        }
        let moduleCount = modules.count
        sites = try d.array(json, "sites").enumerated().map { i, s in
            let sd = Decoder(path: "\(path).sites[\(i)]")
            let number = try sd.int(s, "nr", 0...1023)
            return ProfileSite(
                module: try sd.int(s, "module", -1...(moduleCount - 1)),
                offset: try sd.uint(s, "offset"),
                syscall: try sd.string(s, "syscall"),
                number: number,
                thread: try sd.int(s, "thread", 0...1_000_000),
                calls: try sd.uint(s, "calls"),
                errors: try sd.uint(s, "errors"),
                kernelNs: try sd.uint(s, "kernel_ns"),
                userNs: try sd.uint(s, "user_ns"))
        }
    }
}

private func isHexDigit(_ c: UInt8) -> Bool {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c)
}

/// Typed field access with precise error messages.
private struct Decoder {
    let path: String

    private func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func value(_ json: JSON, _ key: String) throws -> JSON {
        guard case .object = json else { throw ProfileError("\(path.isEmpty ? "profile" : path): expected an object") }
        guard let v = json[key] else { throw ProfileError("\(field(key)): missing") }
        return v
    }

    func string(_ json: JSON, _ key: String) throws -> String {
        guard case let .string(s) = try value(json, key) else {
            throw ProfileError("\(field(key)): expected a string")
        }
        guard s.utf8.count <= 65536 else { throw ProfileError("\(field(key)): string too long") }
        return s
    }

    func array(_ json: JSON, _ key: String) throws -> [JSON] {
        guard case let .array(a) = try value(json, key) else {
            throw ProfileError("\(field(key)): expected an array")
        }
        return a
    }

    func uint(_ json: JSON, _ key: String) throws -> UInt64 {
        guard case let .integer(i) = try value(json, key), i >= 0 else {
            throw ProfileError("\(field(key)): expected a non-negative integer")
        }
        return UInt64(i)
    }

    func int(_ json: JSON, _ key: String, _ range: ClosedRange<Int>) throws -> Int {
        guard case let .integer(i) = try value(json, key), range.contains(Int(i)) else {
            throw ProfileError("\(field(key)): expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(i)
    }
}
