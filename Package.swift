// swift-tools-version:6.0
import PackageDescription

// Two shared objects are preloaded, on purpose:
//  - libprivbox.so (Sources/Preload with parts of Sources/CShim, plain C) is what LD_PRELOAD names. It is built by `scripts/build`
//    with the system C compiler because SwiftPM links every product it builds against the Swift
//    runtime, and a preload that pulls libstdc++ and the Swift runtime into every process costs
//    ~2 ms at start-up (measured: /bin/true goes from 0.8 ms to 2.8 ms).
//  - libprivbox_core.so (Sources/PreloadCore + Sources/Profiler, Swift with the runtime linked
//    statically) is dlopen()ed by libprivbox.so only when a mode needs it (the profile check in
//    accelerate mode). It never runs on a syscall path or in a signal handler.
let package = Package(
    name: "privbox",
    products: [
        .library(name: "privbox_core", type: .dynamic, targets: ["PreloadCore"]),
        .executable(name: "privbox", targets: ["privbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The parts of the C core that Swift also uses: configuration parsing, the snapshot ABI
        // shared with the preload, measurement helpers for `privbox doctor`, the raw system call,
        // hex encoding and the cache directory's one rule (cache_path.c). The interposers
        // themselves are compiled only into libprivbox.so (see scripts/build).
        .target(
            name: "CShim",
            sources: ["config.c", "measure.c", "probe.c", "launch.c", "files.c", "raw_syscall.c", "hex.c", "cache_path.c"],
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(name: "Profiler"),
        // Symbols, source lines (elfutils) and loop ranges (capstone) for the CLI's reports.
        .target(
            name: "CSymbolize",
            dependencies: ["CShim"], // pb_open_regular (files.c): the preload's rule for reading files
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("dw"), .linkedLibrary("elf"), .linkedLibrary("capstone"), .linkedLibrary("z")]
        ),
        .target(
            name: "PreloadCore",
            dependencies: ["CShim", "Profiler"],
            linkerSettings: [.unsafeFlags(["-static-stdlib"])]
        ),
        .executableTarget(
            name: "privbox",
            dependencies: [
                "CShim", "CSymbolize", "Profiler",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ProfilerTests", dependencies: ["Profiler", "CShim", "CSymbolize"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Profiler"],
            exclude: ["programs", "golden"]
        ),
    ],
    swiftLanguageModes: [.v5]
)
