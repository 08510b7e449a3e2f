/// The executor plan: which call sites of a program accelerate mode routes. Pure, so it is tested
/// without preloading anything; libprivbox_core.so hands it to the C preload.
///
/// A site is a return address recorded by the profiler (module + offset) with the syscall it made.
/// The plan holds the sites of the profile's hot loops (`loops`, written by `privbox profile`
/// after symbolizing) recorded for this executable and build. A profile without loops (written by
/// the preload alone, never symbolized) gives instead every site that is hot on its own: at least
/// `LoopAnalysis.hotMinimumCalls` calls and `LoopAnalysis.hotShare` of its process's calls. Which
/// sites then get an executor is the preload's choice (by syscall and by what the machine supports).
///
/// A site of a profile symbolized by `privbox profile` also carries the bounds and name of the
/// function holding it, so that accelerate mode can build an instrumented copy of that function
/// (Sources/Preload/rewriter/); an inline `syscall` instruction can be served only that way.
public struct PlanSite: Hashable {
    public var modulePath: String
    public var buildID: String
    public var offset: UInt64
    public var syscallNumber: Int
    public var inline: Bool
    public var functionStart: UInt64
    /// 0: the function's bounds are unknown, and no copy is made.
    public var functionSize: UInt64
    public var function: String

    public init(modulePath: String, buildID: String, offset: UInt64, syscallNumber: Int,
                inline: Bool = false, functionStart: UInt64 = 0, functionSize: UInt64 = 0,
                function: String = "") {
        self.modulePath = modulePath
        self.buildID = buildID
        self.offset = offset
        self.syscallNumber = syscallNumber
        self.inline = inline
        self.functionStart = functionStart
        self.functionSize = functionSize
        self.function = function
    }
}

public enum ExecutorPlan {
    public static func sites(_ profile: Profile, exe: String, buildID: String) -> [PlanSite] {
        weightedSites(profile, exe: exe, buildID: buildID).map(\.site)
    }

    /// The sites, each with the calls one profiled process made from it: the preload copies a
    /// site's function only where these calls repay the copy's start-up cost. The loop analysis
    /// splits a site's calls among the loops its stacks lead to, so a process's calls from a site
    /// are the sum over its loops; over processes, the most. A site the profile gives a count for
    /// weighs at least 1 (a share can round to 0); 0 means the profile does not say.
    public static func weightedSites(_ profile: Profile, exe: String, buildID: String)
        -> [(site: PlanSite, calls: UInt64)] {
        let mine = profile.processes.filter { $0.exe == exe && $0.exeBuildID == buildID }
        let pids = Set(mine.map(\.pid))
        var out: [(site: PlanSite, calls: UInt64)] = []
        var index: [PlanSite: Int] = [:]
        var perProcess: [PlanSite: [Int: UInt64]] = [:]
        func add(_ s: PlanSite, _ calls: UInt64?, pid: Int) {
            if index[s] == nil {
                index[s] = out.count
                out.append((s, 0))
            }
            if let calls { perProcess[s, default: [:]][pid, default: 0].addSaturated(calls) }
        }
        func weighed() -> [(site: PlanSite, calls: UInt64)] {
            out.map { entry in
                guard let byPid = perProcess[entry.site] else { return entry }
                return (entry.site, max(byPid.values.max() ?? 0, 1))
            }
        }

        if let loops = profile.loops {
            for loop in loops {
                guard case let .integer(pid)? = loop["pid"], pids.contains(Int(pid)),
                      case let .array(sites)? = loop["sites"] else { continue }
                let loopModule = loop["module"].flatMap(string) ?? ""
                let loopBuildID = loop["build_id"].flatMap(string) ?? ""
                for site in sites {
                    guard case let .integer(offset)? = site["offset"], offset >= 0,
                          let name = site["syscall"].flatMap(string),
                          let number = x86_64SyscallNames.firstIndex(of: name), !name.isEmpty else { continue }
                    let module = site["module"].flatMap(string) ?? loopModule
                    let id = site["module"] == nil ? loopBuildID : (site["build_id"].flatMap(string) ?? "")
                    guard !module.isEmpty else { continue }
                    let isInline: Bool
                    if case .bool(true)? = site["inline"] { isInline = true } else { isInline = false }
                    var start: UInt64 = 0, size: UInt64 = 0
                    if case let .integer(s)? = site["function_offset"], case let .integer(n)? = site["function_size"],
                       s >= 0, n > 0, UInt64(s) < UInt64(offset), UInt64(offset) <= UInt64(s) + UInt64(n) {
                        start = UInt64(s)
                        size = UInt64(n)
                    }
                    // A syscall instruction no wrapper returns to is served only from a copy, whose
                    // function the preload bounds by its unwind entry when no symbol gave bounds.
                    var calls: UInt64?
                    if case let .integer(n)? = site["calls"], n >= 0 { calls = UInt64(n) }
                    add(PlanSite(modulePath: module, buildID: id, offset: UInt64(offset), syscallNumber: number,
                                 inline: isInline, functionStart: start, functionSize: size,
                                 function: site["function"].flatMap(string) ?? ""), calls, pid: Int(pid))
                }
            }
            return weighed()
        }
        for process in mine {
            let total = process.totalCalls
            var calls: [PlanSite: UInt64] = [:]
            var order: [PlanSite] = []
            for site in process.sites where process.modules.indices.contains(site.module) && !site.inline {
                let m = process.modules[site.module]
                let key = PlanSite(modulePath: m.path, buildID: m.buildID, offset: site.offset,
                                   syscallNumber: site.number)
                if calls[key] == nil { order.append(key) }
                calls[key, default: 0].addSaturated(site.calls)
            }
            for key in order {
                let n = calls[key] ?? 0
                if n >= LoopAnalysis.hotMinimumCalls && Double(n) >= LoopAnalysis.hotShare * Double(total) {
                    add(key, n, pid: process.pid)
                }
            }
        }
        return weighed()
    }

    private static func string(_ json: JSON) -> String? {
        if case let .string(s) = json { return s }
        return nil
    }
}
