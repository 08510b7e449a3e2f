// Resolving a profile's frames to functions, source lines and loops, from the module files on disk
// (checked against the recorded build-ids). Done once, after the program ran.
import CSymbolize
import Profiler

#if canImport(Glibc)
import Glibc
#endif

final class Symbolizer {
    private var modules: [String: OpaquePointer?] = [:]
    private var loopCache: [String: [LoopRange]] = [:]
    /// One line per module that could not be used (missing, or another build).
    private(set) var problems: [String] = []

    deinit {
        for case let m? in modules.values { pbs_close(m) }
    }

    private func module(_ m: ProfileModule) -> OpaquePointer? {
        let key = m.path + "\u{0}" + m.buildID
        if let cached = modules[key] { return cached }
        var handle: OpaquePointer? = nil
        if m.path.hasPrefix("/") {
            var err = [CChar](repeating: 0, count: 512)
            handle = pbs_open(m.path, m.buildID, &err, err.count)
            if handle == nil { problems.append(String(cString: err)) }
        }
        modules[key] = handle
        return handle
    }

    private func line(_ handle: OpaquePointer, _ address: UInt64) -> (String, Int)? {
        var file = [CChar](repeating: 0, count: 1024)
        var line: Int32 = 0
        guard pbs_line(handle, address, &file, file.count, &line) == 0 else { return nil }
        return (String(cString: file), Int(line))
    }

    /// Symbols for every frame of every stack and every site of `process`.
    func symbols(for process: ProcessProfile) -> SymbolTable {
        var frames = Set<Frame>()
        for s in process.stacks { frames.formUnion(s.frames) }
        for s in process.sites { frames.insert(Frame(module: s.module, offset: s.offset)) }
        var table: SymbolTable = [:]
        for frame in frames where frame.module >= 0 && frame.module < process.modules.count && frame.offset > 0 {
            let m = process.modules[frame.module]
            guard let handle = module(m) else { continue }
            var sym = pbs_symbol()
            // A return address follows its call instruction: look up the byte before it.
            guard pbs_lookup(handle, frame.offset - 1, &sym) == 0 else { continue }
            let name = withUnsafeBytes(of: sym.function) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            let file = withUnsafeBytes(of: sym.file) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            let loopKey = "\(m.path)\u{0}\(m.buildID)\u{0}\(sym.start)"
            let loops: [LoopRange]
            if let cached = loopCache[loopKey] {
                loops = cached
            } else {
                var ranges = [(UInt64, UInt64)](repeating: (0, 0), count: 4096)
                let n = ranges.withUnsafeMutableBytes {
                    pbs_loops(handle, sym.start, sym.size, $0.baseAddress!.assumingMemoryBound(to: (UInt64, UInt64).self), 4096)
                }
                loops = (0..<max(0, min(Int(n), 4096))).map { i in
                    let (head, end) = ranges[i]
                    // The loop's line is the backward jump's (for a `for` loop, its header line: the
                    // compiler attributes the condition or increment to it); the head's instruction is
                    // often hoisted code from before the loop.
                    let loc = line(handle, end - 1) ?? line(handle, head)
                    return LoopRange(head: head, end: end, file: loc?.0, line: loc?.1)
                }
                loopCache[loopKey] = loops
            }
            table[frame] = FrameSymbol(function: name, functionStart: sym.start,
                                       functionSize: sym.start <= frame.offset - 1 && frame.offset - 1 < sym.start &+ sym.size ? sym.size : 0,
                                       file: file.isEmpty ? nil : file, line: file.isEmpty ? nil : Int(sym.line),
                                       loops: loops)
        }
        return table
    }

    func symbols(for profile: Profile) -> [SymbolTable] {
        profile.processes.map { symbols(for: $0) }
    }
}
