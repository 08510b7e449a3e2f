// The text report `privbox report` prints: per process, the syscall mix, the share of wall time
// spent inside wrapped calls, and the busiest call sites (merged across threads).

public struct SiteTotal: Equatable {
    public var module: Int
    public var offset: UInt64
    public var syscall: String
    /// A `syscall` instruction found by inline discovery, not a wrapper's call site.
    public var inline: Bool = false
    public var calls: UInt64 = 0
    public var errors: UInt64 = 0
    public var kernelNs: UInt64 = 0
    public var userNs: UInt64 = 0
    public var threads: Set<Int> = []
}

extension ProcessProfile {
    // Sums of counts saturate (Saturating.swift): a profile's counts are unchecked input.
    public var totalCalls: UInt64 { sites.saturatingSum(\.calls) }
    public var totalKernelNs: UInt64 { sites.saturatingSum(\.kernelNs) }

    /// Sites merged across threads, busiest first (ties broken by address for a stable order).
    public func siteTotals() -> [SiteTotal] {
        struct Key: Hashable { let module: Int; let offset: UInt64; let number: Int }
        var totals: [Key: SiteTotal] = [:]
        for s in sites {
            let key = Key(module: s.module, offset: s.offset, number: s.number)
            var t = totals[key] ?? SiteTotal(module: s.module, offset: s.offset, syscall: s.syscall, inline: s.inline)
            t.calls.addSaturated(s.calls)
            t.errors.addSaturated(s.estimatedErrors)
            t.kernelNs.addSaturated(s.kernelNs)
            t.userNs.addSaturated(s.userNs)
            t.threads.insert(s.thread)
            totals[key] = t
        }
        return totals.values.sorted {
            ($0.calls, $1.module, $1.offset, $1.syscall) > ($1.calls, $0.module, $0.offset, $0.syscall)
        }
    }

    /// Calls per syscall name, busiest first.
    public func syscallMix() -> [(name: String, calls: UInt64)] {
        var mix: [String: UInt64] = [:]
        for s in sites { mix[s.syscall, default: 0].addSaturated(s.calls) }
        return mix.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { ($0.key, $0.value) }
    }

    public func siteName(module: Int, offset: UInt64) -> String {
        guard module >= 0, module < modules.count else { return "0x" + String(offset, radix: 16) }
        let path = modules[module].path
        let base = path.split(separator: "/").last.map(String.init) ?? path
        return "\(base)+0x\(String(offset, radix: 16))"
    }
}

public enum ReportFormatter {
    public static func text(_ profile: Profile, source: String, top: Int = 10) -> String {
        var out = "privbox report: \(source) (\(profileSchema), written by \(profile.tool))\n"
        if profile.processes.isEmpty {
            out += "no process recorded\n"
        }
        for p in profile.processes {
            out += "\n"
            out += "process \(p.pid) \(p.exe) (parent \(p.ppid)): \(formatSeconds(p.wallNs)) wall, "
            out += "\(p.threads) thread\(p.threads == 1 ? "" : "s"), \(p.totalCalls) wrapped calls"
            if p.dropped > 0 { out += ", \(p.dropped) not attributed (site table full)" }
            out += "\n"
            if let traps = p.inlineTraps {
                out += "  inline discovery: \(traps) system call\(traps == 1 ? "" : "s") made outside libc's "
                out += "wrappers trapped and counted"
                if let spent = p.inlineThreadsSpent, spent > 0 {
                    out += "; \(spent) thread\(spent == 1 ? "" : "s") reached the trap budget (later inline calls not counted)"
                }
                out += "\n"
            }
            let total = p.totalCalls
            if total == 0 {
                out += "  no wrapped system call was made\n"
                continue
            }
            let mix = p.syscallMix().prefix(8).map { "\($0.name) \(percent($0.calls, of: total))" }
            out += "  syscall mix: " + mix.joined(separator: ", ") + "\n"
            let kernel = p.totalKernelNs
            out += "  time inside wrapped calls: \(formatSeconds(kernel))"
            if p.wallNs > 0 { out += " (\(percent(kernel, of: p.wallNs)) of wall time, summed over threads)" }
            out += "; \(formatRate(total, ns: p.wallNs)) calls/s\n"
            guard top > 0 else { continue } // --top 0: the totals only
            let rows = p.siteTotals().prefix(top).map { t -> [String] in
                [String(t.calls), String(t.errors), formatMillis(t.kernelNs), formatMillis(t.userNs),
                 String(t.threads.count), t.syscall,
                 (t.inline ? "syscall instruction before " : "") + p.siteName(module: t.module, offset: t.offset)]
            }
            out += table(header: ["calls", "errors", "in-call ms", "between ms", "threads", "syscall", "call site"],
                         rows: rows, rightAligned: 5, indent: "  ")
        }
        return out
    }

    static func table(header: [String], rows: [[String]], rightAligned: Int, indent: String) -> String {
        let all = [header] + rows
        let widths = (0..<header.count).map { c in all.map { $0[c].count }.max() ?? 0 }
        var out = ""
        for row in all {
            var line = indent
            for (c, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                line += c < rightAligned ? pad + cell : cell + (c == row.count - 1 ? "" : pad)
                if c < row.count - 1 { line += "  " }
            }
            out += line + "\n"
        }
        return out
    }

    public static func percent(_ part: UInt64, of whole: UInt64) -> String {
        guard whole > 0 else { return "0%" }
        let tenths = (Double(part) / Double(whole) * 1000).rounded() / 10
        return "\(tenths)%"
    }

    public static func formatSeconds(_ ns: UInt64) -> String {
        let s = Double(ns) / 1e9
        return s >= 10 ? "\((s * 10).rounded() / 10) s" : "\((s * 1000).rounded() / 1000) s"
    }

    static func formatMillis(_ ns: UInt64) -> String {
        let ms = Double(ns) / 1e6
        return String((ms * 100).rounded() / 100)
    }

    static func formatRate(_ calls: UInt64, ns: UInt64) -> String {
        guard ns > 0 else { return "-" }
        // Int64.max calls in 1 ns would be 9.2e27 calls/s, more than UInt64 holds.
        return String(UInt64(saturating: (Double(calls) / (Double(ns) / 1e9)).rounded()))
    }
}
