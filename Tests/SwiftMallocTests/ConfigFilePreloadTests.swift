// The configuration file (SWIFTMALLOC_CONFIG) in a real program: a C program
// (Tests/CPrograms/config_sizes.c) run with the release library preloaded
// reports malloc_usable_size under the classes in use; the statistics file
// says which configuration and classes were used.
import Foundation
import XCTest

final class ConfigFilePreloadTests: XCTestCase {
    private let sizes = [1, 20, 40, 100, 200, 300, 1000, 2000, 4096, 5000, 20000, 32768, 40000]
    private let customClasses = [8, 16, 32, 48, 64, 128, 256, 1024, 4096]

    /// "size N usable U" lines of the program's output, as [N: U].
    private func usableSizes(_ stdout: String) -> [Int: Int] {
        var result: [Int: Int] = [:]
        for line in lines(of: stdout, startingWith: "size ") {
            let words = line.split(separator: " ")
            if words.count == 4, let n = Int(words[1]), let u = Int(words[3]) { result[n] = u }
        }
        return result
    }

    private func writeConfig(_ text: String, name: String) throws -> String {
        let dir = try Preload.makeTemporaryDirectory("config")
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testCustomClassesAreUsedUnderEveryFrontEnd() throws {
        let program = try Preload.cProgram("config_sizes")
        let config = try writeConfig("""
            # Few classes, the largest well below 32 KiB.
            [config]
            thread_cache_size = 1_048_576
            max_transfer_slots = 8
            classes = [\(customClasses.map(String.init).joined(separator: ", ")),]
            """, name: "custom.toml")
        for frontend in ["percpu", "thread", "arenas", "global"] {
            let (result, statsDir) = try Preload.runPreloaded(
                [program] + sizes.map(String.init),
                environment: ["SWIFTMALLOC_CONFIG": config, "SWIFTMALLOC_FRONTEND": frontend])
            XCTAssertEqual(result.exitStatus, 0, "\(frontend): \(result.summary)")
            XCTAssertTrue(result.stdout.hasSuffix("ok\n"), "\(frontend): \(result.summary)")
            XCTAssertEqual(result.stderr, "", "\(frontend): a good file prints nothing")
            let usable = usableSizes(result.stdout)
            for n in sizes {
                guard let u = usable[n] else { XCTFail("\(frontend): no line for \(n)"); continue }
                if let fit = customClasses.first(where: { $0 >= n }) {
                    XCTAssertEqual(u, fit, "\(frontend): malloc(\(n)) gets the custom class")
                } else {
                    // Above the largest class: a large allocation of the
                    // size asked for, in whole span pages (4 KiB), from the
                    // fast paths too.
                    XCTAssertEqual(u, (n + 4095) / 4096 * 4096, "\(frontend): malloc(\(n)) is a large allocation of its size")
                }
            }
            let stats = try Preload.stats(in: statsDir, pid: result.pid)
            XCTAssertEqual(stats["config"] as? String, config)
            XCTAssertEqual(Preload.number(stats, "size_classes"), UInt64(customClasses.count))
            XCTAssertEqual(stats["class_sizes"] as? [Int], customClasses)
        }
    }

    /// The C API property test (IntegrationPropertyTests) under few classes
    /// ending at 3 KiB and the smallest transfer caches: sizes between the
    /// largest class and 32 KiB, aligned requests among them, realloc across
    /// the boundary, all under every front end.
    func testPropertyTestUnderCustomClasses() throws {
        let program = try Preload.cProgram("api_property")
        let config = try writeConfig("""
            [config]
            max_transfer_slots = 2
            classes = [8, 16, 48, 64, 128, 512, 1024, 3072]
            """, name: "property.toml")
        for frontend in ["percpu", "thread", "arenas", "global"] {
            let (result, statsDir) = try Preload.runPreloaded(
                [program, "4", "20000", "7"], environment: ["SWIFTMALLOC_CONFIG": config, "SWIFTMALLOC_FRONTEND": frontend])
            XCTAssertEqual(result.exitStatus, 0, "\(frontend): \(result.summary)")
            XCTAssertEqual(lines(of: result.stdout, startingWith: "FAIL").prefix(10), [], frontend)
            guard let checks = lines(of: result.stdout, startingWith: "checks: ").last,
                  let usage = lines(of: result.stdout, startingWith: "in_use_before: ").last else {
                XCTFail("\(frontend): no summary:\n\(result.summary)")
                continue
            }
            XCTAssertEqual(field("failures", in: checks), 0, checks)
            XCTAssertGreaterThan(field("checks", in: checks) ?? 0, 3 * 4 * 20000, checks)
            XCTAssertEqual(field("in_use_before", in: usage), field("in_use_after", in: usage), usage)
            XCTAssertEqual(field("allocations", in: usage), field("frees", in: usage), usage)
            let stats = try Preload.stats(in: statsDir, pid: result.pid)
            XCTAssertEqual(stats["config"] as? String, config)
            XCTAssertEqual(stats["class_sizes"] as? [Int], [8, 16, 48, 64, 128, 512, 1024, 3072])
        }
    }

    /// page_size sets the unit of large allocations (rounded up to it) and
    /// of the page-level allocator.
    func testPageSizeRoundsLargeAllocations() throws {
        let program = try Preload.cProgram("config_sizes")
        for (pageSize, expected) in [(4096, 36864), (8192, 40960), (65536, 65536)] {
            let config = try writeConfig("[config]\npage_size = \(pageSize)\n", name: "page\(pageSize).toml")
            let (result, _) = try Preload.runPreloaded([program, "33000", "100"], environment: ["SWIFTMALLOC_CONFIG": config])
            XCTAssertEqual(result.exitStatus, 0, result.summary)
            XCTAssertEqual(result.stderr, "")
            XCTAssertEqual(usableSizes(result.stdout), [33000: expected, 100: 112], "page_size \(pageSize)")
        }
    }

    func testFileChoosesTheFrontEnd() throws {
        let program = try Preload.cProgram("config_sizes")
        let config = try writeConfig("[config]\nfrontend = \"arenas\"\n", name: "arenas.toml")
        let (result, statsDir) = try Preload.runPreloaded([program, "100"], environment: ["SWIFTMALLOC_CONFIG": config])
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertEqual(stats["frontend"] as? String, "arenas")
        XCTAssertEqual(stats["config"] as? String, config)
        XCTAssertEqual(Preload.number(stats, "size_classes"), 73, "no classes in the file: the built-in ones")

        let (overridden, overriddenStats) = try Preload.runPreloaded(
            [program, "100"], environment: ["SWIFTMALLOC_CONFIG": config, "SWIFTMALLOC_FRONTEND": "global"])
        XCTAssertEqual(overridden.exitStatus, 0, overridden.summary)
        let stats2 = try Preload.stats(in: overriddenStats, pid: overridden.pid)
        XCTAssertEqual(stats2["frontend"] as? String, "global", "the environment overrides the file")
    }

    func testBadFileIsReportedAndTheBuiltInConfigurationUsed() throws {
        let program = try Preload.cProgram("config_sizes")
        let config = try writeConfig("""
            [config]
            frontend = "thread"
            classes = [8, 16,
                       24, 32]
            """, name: "bad.toml")
        let missing = config + ".missing"
        let expectations = [
            (config, "swiftmalloc: config \(config):4: class sizes from 16 up must be multiples of 16 (malloc's alignment)\n"),
            (missing, "swiftmalloc: config \(missing):0: cannot read (No such file or directory)\n"),
        ]
        for (path, line) in expectations {
            let (result, statsDir) = try Preload.runPreloaded([program, "100", "5000"],
                                                              environment: ["SWIFTMALLOC_CONFIG": path])
            XCTAssertEqual(result.exitStatus, 0, result.summary)
            XCTAssertTrue(result.stdout.hasSuffix("ok\n"), result.summary)
            XCTAssertEqual(result.stderr, line)
            XCTAssertEqual(usableSizes(result.stdout), [100: 112, 5000: 5120], "the built-in classes")
            let stats = try Preload.stats(in: statsDir, pid: result.pid)
            XCTAssertEqual(stats["config"] as? String, "built-in")
            XCTAssertEqual(Preload.number(stats, "size_classes"), 73)
            XCTAssertEqual((stats["class_sizes"] as? [Int])?.last, 32768)
            if stats["rseq_available"] as? Bool == true {
                XCTAssertEqual(stats["frontend"] as? String, "percpu", "nothing of the bad file applies")
            }
        }
    }
}
