// The shipped library is Embedded Swift: it needs the C library and liburcu
// and nothing of the Swift toolchain, and exports the C interface alone.
import Foundation
import XCTest

/// The dynamic section of an ELF file, read with readelf (binutils).
enum ELFDynamic {
    static func entries(of path: String, tag: String) throws -> [String] {
        let result = try Preload.run(["readelf", "-d", path], timeout: 30)
        guard result.exitStatus == 0 else { throw HarnessError(description: "readelf -d \(path): \(result.summary)") }
        // "0x...01 (NEEDED)   Shared library: [libc.so.6]"
        return result.stdout.split(separator: "\n").filter { $0.contains("(\(tag))") }.compactMap { line in
            guard let open = line.lastIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
    }

    static func needed(of path: String) throws -> [String] { try entries(of: path, tag: "NEEDED") }
}

final class IntegrationRuntimeFreeTests: XCTestCase {
    /// The release library and the debug one (when built) name only libc,
    /// the dynamic loader and liburcu, and no path into the toolchain.
    func testLibraryNeedsOnlyLibcAndLiburcu() throws {
        let release = try Preload.library()
        var libraries = [release]
        let debug = Preload.packageRoot.appendingPathComponent(".build/debug/libSwiftMalloc.so").path
        if FileManager.default.fileExists(atPath: debug) { libraries.append(debug) }
        for library in libraries {
            let needed = try ELFDynamic.needed(of: library)
            XCTAssertTrue(needed.contains("libc.so.6"), "\(library): \(needed)")
            let foreign = needed.filter { !($0.hasPrefix("libc.so") || $0.hasPrefix("ld-linux") || $0.hasPrefix("liburcu")) }
            XCTAssertEqual(foreign, [], "\(library) needs more than libc and liburcu")
            let paths = try ELFDynamic.entries(of: library, tag: "RUNPATH") + ELFDynamic.entries(of: library, tag: "RPATH")
            XCTAssertFalse(paths.contains { $0.contains("swift") }, "\(library) searches the toolchain: \(paths)")
        }
    }

    /// Only the C interface is exported: none of the small runtime Embedded
    /// Swift compiles in (swift_retain and the like), which would replace
    /// the real runtime's in a Swift program the library is preloaded into.
    func testLibraryExportsOnlyTheCInterface() throws {
        let library = try Preload.library()
        let result = try Preload.run(["nm", "-D", "--defined-only", library], timeout: 30)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        let exported = result.stdout.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[1] == "T" || fields[1] == "W" || fields[1] == "D" else { return nil }
            return String(fields[2])
        }
        let standard: Set = ["malloc", "free", "cfree", "calloc", "realloc", "reallocarray", "posix_memalign",
                             "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size", "malloc_trim",
                             "malloc_stats", "malloc_info", "mallinfo2", "mallinfo"]
        XCTAssertTrue(standard.isSubset(of: Set(exported)), "missing: \(standard.subtracting(exported))")
        let other = exported.filter { !standard.contains($0) && !$0.hasPrefix("swiftmalloc_") }
        XCTAssertEqual(other, [], "exported beyond the C interface")
    }

    /// A debug (unoptimised) build preloads into a real program: Embedded
    /// Swift instantiates no metadata at run time, so nothing allocates from
    /// inside the allocator's initialisation.
    func testDebugBuildPreloadsIntoPython() throws {
        let debug = Preload.packageRoot.appendingPathComponent(".build/debug/libSwiftMalloc.so").path
        guard FileManager.default.fileExists(atPath: debug) else {
            return XCTFail("\(debug) not found: run `swift build --product SwiftMalloc` first")
        }
        let statsDir = try Preload.makeTemporaryDirectory("debug-build")
        let statsPath = statsDir.appendingPathComponent("stats-%p.json").path
        let script = "import json, collections; d = {str(i): [i] * 3 for i in range(20000)}; print(len(json.dumps(d)))"
        // PYTHONMALLOC=malloc: every object from malloc, not from Python's own pools.
        let result = try Preload.run(["python3", "-c", script],
                                     environment: ["LD_PRELOAD": debug, "SWIFTMALLOC_STATS_FILE": statsPath,
                                                   "PYTHONMALLOC": "malloc"], timeout: 120)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        let expected = try Preload.run(["python3", "-c", script], timeout: 120)
        XCTAssertEqual(result.stdout, expected.stdout)
        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertGreaterThanOrEqual(Preload.number(stats, "allocations") ?? 0, 20_000, "\(stats)")
    }

    /// The core and the shims compile and link for aarch64 Linux
    /// (scripts/cross-compile-aarch64.sh; nothing runs there): the x86-64
    /// code is fenced, and the library exports the same names there.
    func testCompilesForAArch64() throws {
        let script = Preload.packageRoot.appendingPathComponent("scripts/cross-compile-aarch64.sh").path
        let out = try Preload.makeTemporaryDirectory("aarch64")
        let result = try Preload.run(["bash", script, out.path], timeout: 600)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        for object in ["SwiftMallocCore.o", "platform.o", "rseq.o", "rcu.o", "exports.o", "libSwiftMalloc.so"] {
            XCTAssertTrue(result.stdout.contains("\(object): ELF 64-bit LSB"), "\(object) missing: \(result.summary)")
        }
        XCTAssertFalse(result.stdout.contains("x86-64"), result.summary)
        let exported = try XCTUnwrap(result.stdout.split(separator: "\n").first { $0.hasPrefix("exported: ") })
        for name in ["malloc", "free", "calloc", "realloc", "posix_memalign", "swiftmalloc_get_stats_sized"] {
            XCTAssertTrue(exported.split(separator: " ").contains(Substring(name)), "\(name) not exported for aarch64")
        }
    }
}
