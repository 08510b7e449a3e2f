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
    /// Every call, exactly.
    public var calls: UInt64
    /// Calls whose result privbox saw (a random sample, about one in four).
    public var checked: UInt64
    /// Estimated failures among all calls (errors scaled by calls/checked), never more than the
    /// calls: an edited file may claim more errors than checked calls (see Saturating.swift).
    public var estimatedErrors: UInt64 {
        guard checked > 0 else { return 0 }
        return Swift.min(calls, UInt64(saturating: (Double(errors) * Double(calls) / Double(checked)).rounded()))
    }
    /// Failures among the checked calls.
    public var errors: UInt64
    /// Calls whose duration was measured (a random sample, about one in eight).
    public var timed: UInt64
    /// Time inside the wrapped call (kernel entry, work, exit), estimated for all calls from the
    /// timed ones.
    public var kernelNs: UInt64
    /// Time the thread spent outside wrapped calls between its previous wrapped call and this one,
    /// estimated for all calls from the timed ones.
    public var userNs: UInt64
    /// A `syscall` instruction that no libc wrapper made (found by inline discovery,
    /// PRIVBOX_INLINE=1): the address is just after the instruction, not a return address.
    public var inline: Bool

    public init(module: Int, offset: UInt64, syscall: String, number: Int, thread: Int,
                calls: UInt64, checked: UInt64, errors: UInt64, timed: UInt64, kernelNs: UInt64,
                userNs: UInt64, inline: Bool = false) {
        self.inline = inline
        self.module = module
        self.offset = offset
        self.syscall = syscall
        self.number = number
        self.thread = thread
        self.calls = calls
        self.checked = checked
        self.errors = errors
        self.timed = timed
        self.kernelNs = kernelNs
        self.userNs = userNs
    }
}

/// A code address as (module index, offset from the module's load address); module -1 means no
/// loaded object mapped it and offset is the absolute address.
public struct Frame: Hashable {
    public var module: Int
    public var offset: UInt64
    public init(module: Int, offset: UInt64) {
        self.module = module
        self.offset = offset
    }
}

/// A call stack captured at a wrapped call: frames[0] is the call site (the return address into
/// the wrapper's caller), each next frame the return address one level up.
public struct ProfileStack: Equatable {
    public var thread: Int
    /// How many times this exact stack was captured.
    public var count: UInt64
    /// true: taken by the periodic sampler (at most one per thread per millisecond), so counts are
    /// proportional to time; false: taken at a site's first call.
    public var sampled: Bool
    /// The stack was deeper than the 32 frames kept.
    public var truncated: Bool
    public var frames: [Frame]

    public init(thread: Int, count: UInt64, sampled: Bool, truncated: Bool, frames: [Frame]) {
        self.thread = thread
        self.count = count
        self.sampled = sampled
        self.truncated = truncated
        self.frames = frames
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
    /// Stacks not kept because a thread's stack table (256 distinct stacks) was full.
    public var stacksDropped: UInt64
    public var stacks: [ProfileStack]
    /// With inline discovery: the calls that trapped (all threads), and the threads whose trap
    /// budget ran out (their later inline calls were not counted). nil without it.
    public var inlineTraps: UInt64?
    public var inlineThreadsSpent: UInt64?

    public init(pid: Int, ppid: Int, exe: String, wallNs: UInt64, threads: Int, dropped: UInt64,
                modules: [ProfileModule], sites: [ProfileSite], stacksDropped: UInt64 = 0,
                stacks: [ProfileStack] = []) {
        self.pid = pid
        self.ppid = ppid
        self.exe = exe
        self.wallNs = wallNs
        self.threads = threads
        self.dropped = dropped
        self.modules = modules
        self.sites = sites
        self.stacksDropped = stacksDropped
        self.stacks = stacks
    }

    /// The build-id of the process's executable, "" if unknown.
    public var exeBuildID: String {
        modules.first(where: { $0.path == exe })?.buildID ?? ""
    }
}

public struct Profile: Equatable {
    public var tool: String
    public var processes: [ProcessProfile]
    /// The hot loops, as `privbox profile` writes them after symbolizing (absent from the
    /// per-process files the preload writes; `privbox report` computes them from the stacks).
    public var loops: [JSON]?

    public init(tool: String = "privbox \(privboxVersion)", processes: [ProcessProfile], loops: [JSON]? = nil) {
        self.tool = tool
        self.processes = processes
        self.loops = loops
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
        var pairs: [(String, JSON)] = [
            ("schema", .string(profileSchema)),
            ("tool", .string(tool)),
        ]
        if let loops { pairs.append(("loops", .array(loops))) }
        pairs.append(("processes", .array(processes.map { $0.toJSON() })))
        return .object(pairs)
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
        loops = json["loops"] == nil ? nil : try d.array(json, "loops")
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
        ] + (inlineTraps.map { [("inline_traps", JSON.integer(Int64(clamping: $0))),
                                ("inline_threads_spent", JSON.integer(Int64(clamping: inlineThreadsSpent ?? 0)))] } ?? []) + [
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
                    ("checked", .integer(Int64(clamping: s.checked))),
                    ("errors", .integer(Int64(clamping: s.errors))),
                    ("timed", .integer(Int64(clamping: s.timed))),
                    ("kernel_ns", .integer(Int64(clamping: s.kernelNs))),
                    ("user_ns", .integer(Int64(clamping: s.userNs))),
                ] + (s.inline ? [("inline", JSON.bool(true))] : []))
            })),
            ("stacks_dropped", .integer(Int64(clamping: stacksDropped))),
            ("stacks", .array(stacks.map { st in
                .object([
                    ("thread", .integer(Int64(st.thread))),
                    ("count", .integer(Int64(clamping: st.count))),
                    ("sampled", .bool(st.sampled)),
                    ("truncated", .bool(st.truncated)),
                    ("frames", .array(st.frames.map {
                        .array([.integer(Int64($0.module)), .integer(Int64(clamping: $0.offset))])
                    })),
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
        inlineTraps = json["inline_traps"] == nil ? nil : try d.uint(json, "inline_traps")
        inlineThreadsSpent = json["inline_threads_spent"] == nil ? nil : try d.uint(json, "inline_threads_spent")
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
                checked: try sd.uint(s, "checked"),
                errors: try sd.uint(s, "errors"),
                timed: try sd.uint(s, "timed"),
                kernelNs: try sd.uint(s, "kernel_ns"),
                userNs: try sd.uint(s, "user_ns"),
                inline: s["inline"] == nil ? false : try sd.bool(s, "inline"))
        }
        stacksDropped = try d.uint(json, "stacks_dropped")
        stacks = try d.array(json, "stacks").enumerated().map { i, st in
            let sd = Decoder(path: "\(path).stacks[\(i)]")
            let frames = try sd.array(st, "frames")
            guard !frames.isEmpty, frames.count <= 256 else {
                throw ProfileError("\(sd.path).frames: expected 1 to 256 frames")
            }
            return ProfileStack(
                thread: try sd.int(st, "thread", 0...1_000_000),
                count: try sd.uint(st, "count"),
                sampled: try sd.bool(st, "sampled"),
                truncated: try sd.bool(st, "truncated"),
                frames: try frames.enumerated().map { f, frame in
                    guard case let .array(pair) = frame, pair.count == 2,
                          case let .integer(m) = pair[0], m >= -1, m < Int64(moduleCount),
                          case let .integer(o) = pair[1], o >= 0 else {
                        throw ProfileError("\(sd.path).frames[\(f)]: expected [module, offset]")
                    }
                    return Frame(module: Int(m), offset: UInt64(o))
                })
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

    func bool(_ json: JSON, _ key: String) throws -> Bool {
        guard case let .bool(b) = try value(json, key) else {
            throw ProfileError("\(field(key)): expected true or false")
        }
        return b
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
