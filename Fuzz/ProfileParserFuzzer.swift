// libFuzzer target for the profile parser (JSONParser + Profile decoding) and for everything that
// reads a decoded profile. Built and run by scripts/fuzz. The properties: any input either decodes
// or throws ProfileError/JSONError, never crashes, never traps on an overflow; whatever decodes
// re-encodes to a profile that decodes to the same value; and for whatever decodes, the report
// text, the loop analysis and its text, the folded stacks, the SVG and the executor plan are all
// built without a trap (a profile's counts are unchecked input: see Sources/Profiler/Saturating.swift).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProfileParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let json = try? JSONParser.parse(bytes) else { return 0 }
    guard let profile = try? Profile(json: json) else { return 0 }
    let text = JSONWriter.write(profile.toJSON())
    guard let again = try? Profile(json: JSONParser.parse(text)), again == profile else {
        fatalError("profile did not survive a write/read round trip")
    }
    analyzeEverything(profile)
    return 0
}

/// What `privbox report` and `privbox profile` compute from a profile, and what accelerate mode's
/// core computes (the plan), each with no symbols (as for stripped or missing modules) and with
/// symbols made up from the input (a loop around every frame), so that the loop paths run too.
func analyzeEverything(_ profile: Profile) {
    var sink = 0
    sink &+= ReportFormatter.text(profile, source: "fuzz", top: 10).utf8.count
    for symbols in [[], madeUpSymbols(profile)] {
        let loops = LoopAnalysis.analyze(profile, symbols: symbols)
        for entry in [50.0, 0, -1, .nan, .infinity] {
            sink &+= ReportFormatter.loops(loops, profile: profile, projection: Projection(kernelEntryNs: entry), top: 10).utf8.count
        }
        let folded = FlameGraph.folded(profile, symbols: symbols)
        sink &+= FlameGraph.foldedText(folded).utf8.count
        sink &+= FlameGraph.svg(folded, title: "fuzz").utf8.count
        // As `privbox profile` writes it: the hot loops kept in the file, which the plan reads.
        var written = profile
        written.loops = loops.hot.map { $0.toJSON() }
        for p in profile.processes {
            sink &+= ExecutorPlan.weightedSites(profile, exe: p.exe, buildID: p.exeBuildID).count
            sink &+= ExecutorPlan.weightedSites(written, exe: p.exe, buildID: p.exeBuildID).count
        }
    }
    if sink == -1 { print(sink) } // keeps the work from being optimised away
}

/// Every frame of every stack and site gets a function with one loop around its call, the loops'
/// sizes taken from the frame's own offset so that inputs choose which loop is innermost.
func madeUpSymbols(_ profile: Profile) -> [SymbolTable] {
    profile.processes.map { process in
        var table: SymbolTable = [:]
        var frames = process.stacks.flatMap(\.frames)
        frames += process.sites.map { Frame(module: $0.module, offset: $0.offset) }
        for frame in frames where frame.offset > 0 {
            let call = frame.offset - 1
            let reach = (frame.offset % 64) + 1
            let head = call >= reach ? call - reach : 0
            let end = call < UInt64.max - reach ? call + reach : UInt64.max
            table[frame] = FrameSymbol(function: "f\(frame.offset % 7)", functionStart: head,
                                       functionSize: end - head, file: "fuzz.c", line: Int(frame.offset % 1000),
                                       loops: [LoopRange(head: head, end: end, file: "fuzz.c", line: 1)])
        }
        return table
    }
}
