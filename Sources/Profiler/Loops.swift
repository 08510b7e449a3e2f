// Hot-loop detection: which loops of the program issue its system calls.
//
// Definition. A *hot loop* is a loop of the program's machine code — a backward jump inside a
// function, from the jump back to its target (the loop head) — whose activation stays live across
// many consecutive system calls of a thread. For each captured call stack (frames[0] is the
// call site, then each caller's return address), the loop that repeats the system call is the
// innermost frame whose call instruction lies inside a loop of its own function: inner frames
// whose calls are not in a loop are run once per iteration of that loop and return, so their
// activations do not persist; the loop's frame does. Nested loops resolve to the innermost loop
// that contains the call; recursion to the innermost recursive activation that loops.
//
// A site's calls and times are split among the loops its stacks lead to, in proportion to how
// often each stack was captured (the periodic samples when there are any, which are proportional
// to time; the first-call stacks otherwise). A loop's wall time is the time its calls spent
// inside wrapped calls (kernel) plus the time between them (user); its density is its kernel
// share of that wall time and its calls per second. Calls that no loop repeats (straight-line
// code, or no symbol information) are reported as "not in a loop".

/// What the symbolizer knows about one code address.
public struct FrameSymbol: Equatable {
    public var function: String
    /// First address of the function, as a module offset, and its size in bytes (0: unknown).
    public var functionStart: UInt64
    public var functionSize: UInt64 = 0
    /// Source location of the call instruction at this frame (offset - 1), if known.
    public var file: String?
    public var line: Int?
    /// The loops of the function (module offsets), with the source location of each loop head.
    public var loops: [LoopRange]

    public init(function: String, functionStart: UInt64, functionSize: UInt64 = 0, file: String? = nil,
                line: Int? = nil, loops: [LoopRange] = []) {
        self.function = function
        self.functionStart = functionStart
        self.functionSize = functionSize
        self.file = file
        self.line = line
        self.loops = loops
    }
}

public struct LoopRange: Equatable {
    public var head: UInt64
    /// One past the backward jump.
    public var end: UInt64
    public var file: String?
    public var line: Int?

    public init(head: UInt64, end: UInt64, file: String? = nil, line: Int? = nil) {
        self.head = head
        self.end = end
        self.file = file
        self.line = line
    }

    func contains(_ address: UInt64) -> Bool { head <= address && address < end }
}

/// Symbols for the frames of one process, keyed by frame.
public typealias SymbolTable = [Frame: FrameSymbol]

public struct LoopSite: Equatable {
    public var module: Int
    /// The module's path and build-id (a loop's site may be in a library the loop calls).
    public var modulePath: String = ""
    public var buildID: String = ""
    public var offset: UInt64
    public var syscall: String
    public var calls: UInt64
    public var function: String?
    /// The bounds of the function holding the site (module offset and size; size 0: unknown),
    /// which accelerate mode needs to build an instrumented copy of it.
    public var functionStart: UInt64 = 0
    public var functionSize: UInt64 = 0
    public var file: String?
    public var line: Int?
    /// A `syscall` instruction found by inline discovery: no wrapper returns here, so only an
    /// instrumented copy of its function can serve it.
    public var inline: Bool = false
}

public struct HotLoop: Equatable {
    public var pid: Int
    public var function: String
    public var module: Int
    public var modulePath: String
    public var buildID: String
    /// Module offset of the loop head.
    public var head: UInt64
    public var file: String?
    public var line: Int?
    public var sites: [LoopSite]
    public var syscalls: [String: UInt64]
    public var calls: UInt64
    public var kernelNs: UInt64
    public var userNs: UInt64
    public var threads: Set<Int>

    public var wallNs: UInt64 { kernelNs.addingSaturated(userNs) }
    public var kernelShare: Double { wallNs == 0 ? 0 : Double(kernelNs) / Double(wallNs) }
    public var callsPerSecond: Double { wallNs == 0 ? 0 : Double(calls) / (Double(wallNs) / 1e9) }
    public var location: String {
        guard let file else { return "\(modulePath.split(separator: "/").last ?? "")+0x\(String(head, radix: 16))" }
        return "\(file):\(line ?? 0)"
    }
}

public struct LoopReport: Equatable {
    /// Loops ranked by density (kernel share, then calls per second); `hot` marks the loops that
    /// carry at least `LoopAnalysis.hotShare` of their process's calls.
    public var loops: [HotLoop]
    public var hot: [HotLoop]
    /// Calls no loop repeats, per process.
    public var outsideLoops: [Int: UInt64]
}

public enum LoopAnalysis {
    /// A loop is hot when it makes at least this share of its process's wrapped calls, and at
    /// least `hotMinimumCalls` of them.
    public static let hotShare = 0.01
    public static let hotMinimumCalls: UInt64 = 100

    struct Key: Hashable { let module: Int; let head: UInt64 }

    /// The loop that repeats the call at the top of `frames`: see the definition above.
    static func innermostLoop(_ frames: [Frame], symbols: SymbolTable) -> (Key, FrameSymbol, LoopRange)? {
        for frame in frames {
            guard let sym = symbols[frame], frame.offset > 0 else { continue }
            let call = frame.offset - 1 // inside the call instruction that this return address follows
            let enclosing = sym.loops.filter { $0.contains(call) }
            if let inner = enclosing.min(by: { ($0.end - $0.head) < ($1.end - $1.head) }) {
                return (Key(module: frame.module, head: inner.head), sym, inner)
            }
        }
        return nil
    }

    /// `symbols[i]` holds the symbols of `profile.processes[i]`.
    public static func analyze(_ profile: Profile, symbols: [SymbolTable]) -> LoopReport {
        var loops: [HotLoop] = []
        var hot: [HotLoop] = []
        var outside: [Int: UInt64] = [:]
        for (i, process) in profile.processes.enumerated() {
            let table = i < symbols.count ? symbols[i] : [:]
            let found = analyze(process, symbols: table)
            loops += found.loops
            outside[process.pid] = found.outside
            let total = process.totalCalls
            hot += found.loops.filter {
                $0.calls >= hotMinimumCalls && Double($0.calls) >= hotShare * Double(total)
            }
        }
        return LoopReport(loops: ranked(loops), hot: ranked(hot), outsideLoops: outside)
    }

    static func ranked(_ loops: [HotLoop]) -> [HotLoop] {
        loops.sorted {
            ($0.kernelShare, $0.callsPerSecond, $1.pid, $1.head) > ($1.kernelShare, $1.callsPerSecond, $0.pid, $0.head)
        }
    }

    static func analyze(_ process: ProcessProfile, symbols: SymbolTable) -> (loops: [HotLoop], outside: UInt64) {
        // Which loop each distinct stack leads to.
        var byKey: [Key: HotLoop] = [:]
        var outside: UInt64 = 0
        let stacksBySite = Dictionary(grouping: process.stacks, by: { $0.frames[0] })
        for site in process.sites {
            let top = Frame(module: site.module, offset: site.offset)
            let all = stacksBySite[top] ?? []
            var candidates = all.filter { $0.thread == site.thread }
            if candidates.isEmpty { candidates = all }
            if candidates.contains(where: \.sampled) { candidates = candidates.filter(\.sampled) }
            var weighted: [([Frame], Double)] = candidates.map { ($0.frames, Double($0.count)) }
            if weighted.isEmpty { weighted = [([top], 1)] }
            let totalWeight = weighted.reduce(0) { $0 + $1.1 }
            for (frames, weight) in weighted {
                // Stacks captured 0 times (an edited file) split the site evenly rather than by 0/0.
                let share = totalWeight > 0 ? weight / totalWeight : 1 / Double(weighted.count)
                // Double(UInt64.max) rounds up to 2^64: every conversion back saturates.
                let calls = UInt64(saturating: (Double(site.calls) * share).rounded())
                guard let (key, sym, range) = innermostLoop(frames, symbols: symbols) else {
                    outside.addSaturated(calls)
                    continue
                }
                let module = process.modules.indices.contains(key.module) ? process.modules[key.module] : nil
                var loop = byKey[key] ?? HotLoop(
                    pid: process.pid, function: sym.function, module: key.module,
                    modulePath: module?.path ?? "", buildID: module?.buildID ?? "", head: key.head,
                    file: range.file, line: range.line, sites: [], syscalls: [:], calls: 0,
                    kernelNs: 0, userNs: 0, threads: [])
                loop.calls.addSaturated(calls)
                loop.kernelNs.addSaturated(UInt64(saturating: (Double(site.kernelNs) * share).rounded()))
                loop.userNs.addSaturated(UInt64(saturating: (Double(site.userNs) * share).rounded()))
                loop.syscalls[site.syscall, default: 0].addSaturated(calls)
                loop.threads.insert(site.thread)
                let siteSymbol = symbols[top]
                if let i = loop.sites.firstIndex(where: { $0.module == site.module && $0.offset == site.offset && $0.syscall == site.syscall && $0.inline == site.inline }) {
                    loop.sites[i].calls.addSaturated(calls)
                } else {
                    let siteModule = process.modules.indices.contains(site.module) ? process.modules[site.module] : nil
                    loop.sites.append(LoopSite(module: site.module, modulePath: siteModule?.path ?? "",
                                               buildID: siteModule?.buildID ?? "", offset: site.offset,
                                               syscall: site.syscall, calls: calls,
                                               function: siteSymbol?.function,
                                               functionStart: siteSymbol?.functionStart ?? 0,
                                               functionSize: siteSymbol?.functionSize ?? 0,
                                               file: siteSymbol?.file, line: siteSymbol?.line,
                                               inline: site.inline))
                }
                byKey[key] = loop
            }
        }
        var loops = Array(byKey.values)
        for i in loops.indices { loops[i].sites.sort { ($0.calls, $1.offset) > ($1.calls, $0.offset) } }
        return (loops, outside)
    }
}

extension HotLoop {
    public func toJSON() -> JSON {
        .object([
            ("pid", .integer(Int64(pid))),
            ("function", .string(function)),
            ("module", .string(modulePath)),
            ("build_id", .string(buildID)),
            ("file", file.map { .string($0) } ?? .null),
            ("line", line.map { .integer(Int64($0)) } ?? .null),
            ("head_offset", .integer(Int64(clamping: head))),
            ("calls", .integer(Int64(clamping: calls))),
            ("calls_per_sec", .double((callsPerSecond * 10).rounded() / 10)),
            ("kernel_share", .double((kernelShare * 10000).rounded() / 10000)),
            ("kernel_ns", .integer(Int64(clamping: kernelNs))),
            ("wall_ns", .integer(Int64(clamping: wallNs))),
            ("threads", .integer(Int64(threads.count))),
            ("syscalls", .object(syscalls.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
                .map { ($0.key, .integer(Int64(clamping: $0.value))) })),
            ("sites", .array(sites.map { s in
                .object([
                    ("module", .string(s.modulePath)),
                    ("build_id", .string(s.buildID)),
                    ("offset", .integer(Int64(clamping: s.offset))),
                    ("syscall", .string(s.syscall)),
                    ("calls", .integer(Int64(clamping: s.calls))),
                    ("function", s.function.map { .string($0) } ?? .null),
                    ("file", s.file.map { .string($0) } ?? .null),
                    ("line", s.line.map { .integer(Int64($0)) } ?? .null),
                ] + (s.functionSize > 0 ? [("function_offset", JSON.integer(Int64(clamping: s.functionStart))),
                                          ("function_size", JSON.integer(Int64(clamping: s.functionSize)))] : [])
                  + (s.inline ? [("inline", JSON.bool(true))] : []))
            })),
        ])
    }
}
