// swift-tools-version:6.2
//
// A Swift program that adopts SwiftMalloc as its process allocator by
// depending on the package, as any other package would: the `SwiftMalloc`
// product is libSwiftMalloc.so (no LD_PRELOAD needed), `SwiftMallocAPI` the
// Swift API for memory managed by hand.
import PackageDescription

let package = Package(
    name: "AdoptDemo",
    dependencies: [.package(name: "SwiftMalloc", path: "../..")],
    targets: [
        .executableTarget(
            name: "swiftmalloc-adopt-demo",
            dependencies: [
                .product(name: "SwiftMalloc", package: "SwiftMalloc"),
                .product(name: "SwiftMallocAPI", package: "SwiftMalloc"),
            ],
            path: "Sources/AdoptDemo"
        ),
    ]
)
