/// The executor plan: which call sites of a program accelerate mode routes. Pure, so it is tested
/// without preloading anything; libprivbox_core.so hands it to the C preload.
///
/// A site is a return address recorded by the profiler (module + offset) with the syscall it made.
/// The plan holds the sites of the profile's hot loops (`loops`, written by `privbox profile`
/// after symbolizing) recorded for this executable and build. A profile without loops (written by
/// the preload alone, never symbolized) gives instead every site that is hot on its own: at least
/// `LoopAnalysis.hotMinimumCalls` calls and `LoopAnalysis.hotShare` of its process's calls. Which
/// sites then get an executor is the preload's choice (by syscall and by what the machine supports).
public struct PlanSite: Hashable {
    public var modulePath: String
    public var buildID: String
    public var offset: UInt64
    public var syscallNumber: Int

    public init(modulePath: String, buildID: String, offset: UInt64, syscallNumber: Int) {
        self.modulePath = modulePath
        self.buildID = buildID
        self.offset = offset
        self.syscallNumber = syscallNumber
    }
}

public enum ExecutorPlan {
    public static func sites(_ profile: Profile, exe: String, buildID: String) -> [PlanSite] {
        let mine = profile.processes.filter { $0.exe == exe && $0.exeBuildID == buildID }
        let pids = Set(mine.map(\.pid))
        var out: [PlanSite] = []
        var seen = Set<PlanSite>()
        func add(_ s: PlanSite) { if seen.insert(s).inserted { out.append(s) } }

        if let loops = profile.loops {
            for loop in loops {
                guard case let .integer(pid)? = loop["pid"], pids.contains(Int(pid)),
                      case let .array(sites)? = loop["sites"] else { continue }
                let loopModule = loop["module"].flatMap(string) ?? ""
                let loopBuildID = loop["build_id"].flatMap(string) ?? ""
                for site in sites {
                    // A syscall instruction (inline discovery) is not a wrapper's call site: no
                    // route can serve it.
                    if case .bool(true)? = site["inline"] { continue }
                    guard case let .integer(offset)? = site["offset"], offset >= 0,
                          let name = site["syscall"].flatMap(string),
                          let number = x86_64SyscallNames.firstIndex(of: name), !name.isEmpty else { continue }
                    let module = site["module"].flatMap(string) ?? loopModule
                    let id = site["module"] == nil ? loopBuildID : (site["build_id"].flatMap(string) ?? "")
                    guard !module.isEmpty else { continue }
                    add(PlanSite(modulePath: module, buildID: id, offset: UInt64(offset), syscallNumber: number))
                }
            }
            return out
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
                calls[key, default: 0] &+= site.calls
            }
            for key in order {
                let n = calls[key] ?? 0
                if n >= LoopAnalysis.hotMinimumCalls && Double(n) >= LoopAnalysis.hotShare * Double(total) {
                    add(key)
                }
            }
        }
        return out
    }

    private static func string(_ json: JSON) -> String? {
        if case let .string(s) = json { return s }
        return nil
    }
}
