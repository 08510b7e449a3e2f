// Folded stacks (the format flamegraph.pl, inferno and speedscope read: one line per stack, frames
// root-first separated by ';', then a space and a count) and an SVG flame graph of them.
//
// The counts are the periodic stack samples (at most one per thread per millisecond of wrapped
// calls), so widths are proportional to how often the program was inside a wrapped call there.
// Processes without periodic samples contribute their first-call stacks, once each.

public enum FlameGraph {
    public static func folded(_ profile: Profile, symbols: [SymbolTable]) -> [(stack: String, count: UInt64)] {
        var totals: [String: UInt64] = [:]
        for (i, process) in profile.processes.enumerated() {
            let table = i < symbols.count ? symbols[i] : [:]
            let sampled = process.stacks.filter(\.sampled)
            let stacks = sampled.isEmpty ? process.stacks : sampled
            // The syscall each call site issues (the busiest, if one site issues several).
            var leaf: [Frame: (String, UInt64)] = [:]
            for s in process.sites {
                let f = Frame(module: s.module, offset: s.offset)
                if (leaf[f]?.1 ?? 0) <= s.calls { leaf[f] = (s.syscall, s.calls) }
            }
            // The executable's and the syscalls' names come from the file too: a ';' or a newline
            // in them would add frames or lines to the folded format.
            let root = clean("\(process.exe.split(separator: "/").last.map(String.init) ?? process.exe) (\(process.pid))")
            for stack in stacks {
                var names = [root]
                if stack.truncated { names.append("[truncated]") }
                for frame in stack.frames.reversed() {
                    names.append(clean(table[frame]?.function ?? process.siteName(module: frame.module, offset: frame.offset)))
                }
                names.append(clean("[\(leaf[stack.frames[0]]?.0 ?? "syscall")]"))
                totals[names.joined(separator: ";"), default: 0].addSaturated(stack.count)
            }
        }
        return totals.map { ($0.key, $0.value) }.sorted { $0.stack < $1.stack }
    }

    /// Frame names may not contain the separators of the folded format.
    static func clean(_ name: String) -> String {
        let cleaned = String(name.map { $0 == ";" || $0 == "\n" ? "_" : $0 })
        return cleaned.isEmpty ? "_" : cleaned
    }

    public static func foldedText(_ lines: [(stack: String, count: UInt64)]) -> String {
        lines.map { "\($0.stack) \($0.count)\n" }.joined()
    }

    final class Node {
        var name: String
        var count: UInt64 = 0
        var children: [String: Node] = [:]
        init(_ name: String) { self.name = name }
    }

    public static func svg(_ lines: [(stack: String, count: UInt64)], title: String) -> String {
        let root = Node("all")
        for (stack, count) in lines {
            root.count.addSaturated(count)
            var node = root
            for name in stack.split(separator: ";").map(String.init) {
                let child = node.children[name] ?? Node(name)
                node.children[name] = child
                child.count.addSaturated(count)
                node = child
            }
        }
        func depth(_ n: Node) -> Int { 1 + (n.children.values.map(depth).max() ?? 0) }
        let levels = depth(root)
        let width = 1200.0, rowHeight = 17.0, top = 36.0
        let height = top + Double(levels) * rowHeight + 10
        var out = """
        <?xml version="1.0" standalone="no"?>
        <svg version="1.1" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" xmlns="http://www.w3.org/2000/svg">
        <style>text { font-family: monospace; font-size: 11px; fill: #000; } rect:hover { stroke: #000; }</style>
        <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="#f8f8f8"/>
        <text x="10" y="20" style="font-size: 15px">\(escape(title))</text>

        """
        let scale = root.count == 0 ? 0 : (width - 20) / Double(root.count)
        func draw(_ n: Node, x: Double, level: Int) {
            let w = Double(n.count) * scale
            guard w >= 0.3 else { return }
            let y = height - 10 - Double(level + 1) * rowHeight
            let (r, g, b) = color(n.name)
            let share = root.count == 0 ? 0 : Double(n.count) * 100 / Double(root.count)
            out += "<g><title>\(escape(n.name)) (\(n.count) samples, \(String((share * 100).rounded() / 100))%)</title>"
            out += "<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(w))\" height=\"\(fmt(rowHeight - 1))\" fill=\"rgb(\(r),\(g),\(b))\" rx=\"2\"/>"
            let fits = Int(w / 7)
            if fits >= 3 {
                let label = n.name.count <= fits ? n.name : String(n.name.prefix(fits - 2)) + ".."
                out += "<text x=\"\(fmt(x + 3))\" y=\"\(fmt(y + 12))\">\(escape(label))</text>"
            }
            out += "</g>\n"
            var cx = x
            for child in n.children.values.sorted(by: { $0.name < $1.name }) {
                draw(child, x: cx, level: level + 1)
                cx += Double(child.count) * scale
            }
        }
        draw(root, x: 10, level: 0)
        out += "</svg>\n"
        return out
    }

    static func fmt(_ v: Double) -> String { String((v * 10).rounded() / 10) }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A warm colour from the name (stable across runs), blue-ish for the [syscall] leaves.
    static func color(_ name: String) -> (Int, Int, Int) {
        var h: UInt32 = 2166136261
        for b in name.utf8 { h = (h ^ UInt32(b)) &* 16777619 }
        if name.hasPrefix("[") { return (110 + Int(h % 40), 160 + Int(h % 50), 230) }
        return (205 + Int(h % 50), 80 + Int((h >> 8) % 130), 40 + Int((h >> 16) % 40))
    }
}
