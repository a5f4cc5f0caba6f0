// swift-tools-version:6.2
//
// SwiftMalloc: a memory allocator for Linux written in Swift.
//
// Targets, bottom to top:
//   SwiftMallocShims   (CShims/Shims)   C: TLS, locks, atomics, syscalls, rseq, liburcu glue.
//   SwiftMallocCore    (Sources/SwiftMallocCore) Embedded Swift: the allocator
//                      (platform, data structures, back end, middle, front
//                      ends, API). Embedded: no Swift runtime, no metadata
//                      instantiated at run time, nothing but libc below it.
//   SwiftMallocExports (CShims/Exports) C: the standard malloc names and the
//                      documented public header <swiftmalloc.h>.
//   SwiftMallocCoreTestable (Tests/SwiftMallocCoreTestable, a link to the
//                      core's folder) the same sources as ordinary Swift, for
//                      the unit tests: an ordinary module cannot import an
//                      Embedded one.
//   SwiftMallocAPI     (Sources/SwiftMalloc) ordinary Swift: the `Malloc` API
//                      over <swiftmalloc.h>, for Swift programs.
// The library product `SwiftMalloc` is built as libSwiftMalloc.so, which needs
// only libc and liburcu: preload it, or depend on it from a Swift executable
// to make it the process allocator (Examples/AdoptDemo).
import PackageDescription

/// The folder of this manifest: the linker's version script is named by an
/// absolute path, since SwiftPM does not say where the linker runs.
let packageRoot: String = {
    let file = #filePath
    return String(file[..<file.lastIndex(of: "/")!])
}()

/// On x86-64, malloc, free and cfree are the Swift entry points themselves
/// (Sources/SwiftMallocCore/API/Exports.swift, by mangled name; the link
/// fails if a signature changes): no jump between the program's call and the
/// fast path (a jump cost a cycle per call). That relies on the Swift calling
/// convention matching C's for these signatures, checked on x86-64 only;
/// elsewhere CShims/Exports/exports.c defines the three as C functions. The
/// manifest is compiled for the host, so this follows the host's architecture.
#if arch(x86_64)
let standardNameAliases = [
    "-Xlinker", "--defsym=malloc=\"$e15SwiftMallocCore18swiftmalloc_mallocySvSgSuF\"",
    "-Xlinker", "--defsym=free=\"$e15SwiftMallocCore16swiftmalloc_freeyySvSgF\"",
    "-Xlinker", "--defsym=cfree=\"$e15SwiftMallocCore16swiftmalloc_freeyySvSgF\"",
]
#else
let standardNameAliases: [String] = []
#endif

let package = Package(
    name: "SwiftMalloc",
    products: [
        .library(name: "SwiftMalloc", type: .dynamic, targets: ["SwiftMallocExports"]),
        // The `Malloc` Swift API; link it with the product above.
        .library(name: "SwiftMallocAPI", targets: ["SwiftMallocAPI"]),
        // The experiments lab (Experiments/, docs/experiments.md).
        .executable(name: "malloc-lab", targets: ["MallocLab"]),
        .executable(name: "malloc-lab-workload", targets: ["MallocLabWorkload"]),
        .executable(name: "malloc-lab-micro", targets: ["MallocLabMicro"]),
    ],
    dependencies: [
        // Used by the experiments lab only; the allocator depends on nothing.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // FileDescriptor and FilePath, the types Subprocess takes.
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        // The tests read results.csv back with an independent reader.
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
        // Size-class configuration files (malloc-lab profile) and their tests.
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        .target(
            name: "SwiftMallocShims",
            path: "CShims/Shims",
            cSettings: [.define("_GNU_SOURCE")],
            // liburcu (Debian liburcu-dev): the memb flavour. liburcu-memb.so
            // carries the futex fallback its inline read side calls too, so
            // liburcu-common is not needed: one library fewer to look up and
            // map at every start of a preloaded process.
            linkerSettings: [.linkedLibrary("urcu-memb")]
        ),
        .target(
            name: "SwiftMallocCore",
            dependencies: ["SwiftMallocShims"],
            path: "Sources/SwiftMallocCore",
            // The built-in configuration, as a file (docs/tuning.md); the
            // unit tests read it through the testable target's link.
            exclude: ["defaults.toml"],
            swiftSettings: [.enableExperimentalFeature("Embedded"), .unsafeFlags(["-wmo"])]
        ),
        .target(
            name: "SwiftMallocCoreTestable",
            dependencies: ["SwiftMallocShims"],
            path: "Tests/SwiftMallocCoreTestable",
            exclude: ["defaults.toml"]
        ),
        .target(
            name: "SwiftMallocExports",
            dependencies: ["SwiftMallocCore"],
            path: "CShims/Exports",
            exclude: ["exports.map"],
            cSettings: [.define("_GNU_SOURCE")],
            // The version script exports the C interface alone (exports.map).
            // Linked as Embedded Swift: no Swift start-up object, runtime
            // library or path to the toolchain. It takes `unsafeFlags`, which
            // SwiftPM accepts in a dependency from tools version 6.2 on (hence
            // the 6.2 at the top of this file).
            linkerSettings: [.unsafeFlags(
                ["-enable-experimental-feature", "Embedded"]
                + standardNameAliases
                + ["-Xlinker", "--version-script=\(packageRoot)/CShims/Exports/exports.map"]
            )]
        ),
        .systemLibrary(name: "CSwiftMalloc", path: "CShims/Header"),
        .target(
            name: "SwiftMallocAPI",
            dependencies: ["CSwiftMalloc"],
            path: "Sources/SwiftMalloc"
        ),
        .testTarget(
            name: "SwiftMallocTests",
            dependencies: ["SwiftMallocCoreTestable", "SwiftMallocShims"],
            path: "Tests/SwiftMallocTests"
        ),

        // The experiments lab: `malloc-lab` runs workloads (each in its own
        // `malloc-lab-workload` process, the allocator preloaded) and reports.
        //   MallocLabCSupport  C: TSC timer, atomics, /proc readers without malloc.
        //   MallocLabShared    the workload catalog (no Foundation).
        //   MallocLabWorkload  the workload process (malloc-lab-workload).
        //   MallocLabMicro     C: the single-threaded malloc/free microbenchmark
        //                      process (malloc-lab-micro), run by `malloc-lab micro`.
        //   MallocLabCore      statistics, results, CSV/JSON, report, SVG charts, runner,
        //                      size-class profiles and their optimiser.
        //   MallocLabCLI       the ArgumentParser commands; MallocLab is its main.
        .target(
            name: "MallocLabCSupport",
            path: "Experiments/MallocLabCSupport",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(
            name: "MallocLabShared",
            path: "Experiments/MallocLabShared"
        ),
        .executableTarget(
            name: "MallocLabWorkload",
            dependencies: [
                "MallocLabCSupport", "MallocLabShared",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Experiments/MallocLabWorkload"
        ),
        // Always -O2 and -fno-builtin, in debug builds too: the loop it times
        // must be the same code whichever configuration built it, and the
        // compiler must not treat malloc/free as builtins it may elide.
        .executableTarget(
            name: "MallocLabMicro",
            path: "Experiments/MallocLabMicro",
            cSettings: [.unsafeFlags(["-O2", "-fno-builtin"])]
        ),
        .target(
            name: "MallocLabCore",
            dependencies: [
                "MallocLabShared",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            path: "Experiments/MallocLabCore"
        ),
        .target(
            name: "MallocLabCLI",
            dependencies: ["MallocLabCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Experiments/MallocLabCLI"
        ),
        .executableTarget(
            name: "MallocLab",
            dependencies: ["MallocLabCLI"],
            path: "Experiments/MallocLab"
        ),
        .testTarget(
            name: "MallocLabTests",
            dependencies: [
                "MallocLabCore", "MallocLabCLI",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "SwiftCSV", package: "SwiftCSV"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Experiments/Tests/MallocLabTests"
        ),
    ]
)
