// swift-tools-version:6.0
//
// SwiftMalloc: a memory allocator for Linux written in Swift.
//
// Targets, bottom to top:
//   SwiftMallocShims   (CShims/Shims)   C: TLS, locks, atomics, syscalls; later rseq.
//   SwiftMalloc        (Sources/SwiftMalloc) Swift: the allocator (platform,
//                      data structures, back end, middle, front ends, API).
//   SwiftMallocExports (CShims/Exports) C: the standard malloc names and the
//                      documented public header <swiftmalloc.h>.
// The library product `SwiftMalloc` is built as libSwiftMalloc.so: preload it,
// or depend on it from a Swift executable to make it the process allocator.
import PackageDescription

let package = Package(
    name: "SwiftMalloc",
    products: [
        .library(name: "SwiftMalloc", type: .dynamic, targets: ["SwiftMallocExports"]),
        .executable(name: "swiftmalloc-adopt-demo", targets: ["SwiftMallocAdoptDemo"]),
    ],
    targets: [
        .target(
            name: "SwiftMallocShims",
            path: "CShims/Shims",
            cSettings: [.define("_GNU_SOURCE")],
            // liburcu (Debian liburcu-dev): the memb flavour and call_rcu.
            linkerSettings: [.linkedLibrary("urcu-memb"), .linkedLibrary("urcu-common")]
        ),
        .target(
            name: "SwiftMalloc",
            dependencies: ["SwiftMallocShims"],
            path: "Sources/SwiftMalloc"
        ),
        .target(
            name: "SwiftMallocExports",
            dependencies: ["SwiftMalloc"],
            path: "CShims/Exports",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .executableTarget(
            name: "SwiftMallocAdoptDemo",
            dependencies: ["SwiftMallocExports"],
            path: "Sources/SwiftMallocAdoptDemo"
        ),
        .testTarget(
            name: "SwiftMallocTests",
            dependencies: ["SwiftMalloc", "SwiftMallocShims"],
            path: "Tests/SwiftMallocTests"
        ),
    ]
)
