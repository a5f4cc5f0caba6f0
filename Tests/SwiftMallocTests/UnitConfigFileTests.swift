// Unit tests of the configuration file parser (API/ConfigFile.swift), the
// class list's validation (Middle/SizeClasses.swift) and the order in which
// the file and the environment apply (API/Configuration.swift).
import Foundation
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitConfigFileTests: XCTestCase {
    /// What parsing a file's text gave.
    struct Parsed {
        var result: ConfigFileResult
        var config: Configuration
        var classes: [ClassSpec]
        var message: String
    }

    private func parse(_ text: String, onto start: Configuration = Configuration()) -> Parsed {
        let bytes = Array(text.utf8)
        let classes = UnsafeMutablePointer<ClassSpec>.allocate(capacity: ConfigFileParser.classCapacity)
        classes.initialize(repeating: ClassSpec(), count: ConfigFileParser.classCapacity)
        let messageBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        defer {
            classes.deallocate()
            messageBytes.deallocate()
        }
        var config = start
        var message = TextBuffer(base: messageBytes, capacity: 256)
        let result = bytes.withUnsafeBufferPointer { buffer in
            ConfigFileParser.parse(buffer.baseAddress ?? UnsafePointer(messageBytes), count: buffer.count,
                                   into: &config, classes: classes, message: &message)
        }
        var specs: [ClassSpec] = []
        if case .parsed(let count?) = result { specs = Array(UnsafeBufferPointer(start: classes, count: count)) }
        let text = String(decoding: UnsafeBufferPointer(start: messageBytes, count: message.count), as: UTF8.self)
        return Parsed(result: result, config: config, classes: specs, message: text)
    }

    /// A size-class table built in a private metadata arena.
    private func table(_ classes: [ClassSpec]?, spanPageSize: Int = Page.defaultSpanPageSize) -> SizeClassTable {
        let metadata = UnsafeMutablePointer<Guarded<MetadataArena>>.allocate(capacity: 1)
        metadata.initialize(to: Guarded(MetadataArena()))
        guard let classes else { return SizeClassTable(metadata: &metadata.state.pointee, spanPageSize: spanPageSize) }
        return classes.withUnsafeBufferPointer {
            SizeClassTable(metadata: &metadata.state.pointee, spanPageSize: spanPageSize, classes: $0.baseAddress,
                           classCount: $0.count)
        }
    }

    /// (size, pages, batch) of classes 1 ..< count, and the whole index.
    private func contents(_ t: SizeClassTable) -> (classes: [[Int]], index: [UInt8]) {
        let classes = (1..<t.count).map { [t.size(of: $0), Int(t.pages[$0]), Int(t.batch[$0])] }
        return (classes, Array(UnsafeBufferPointer(start: t.classIndex, count: SizeClassTable.indexEntries)))
    }

    // MARK: good files

    func testGoodFileSetsKnobsAndClasses() {
        let parsed = parse("""
            # A configuration.

            [config]
            page_size = 8192
            thread_cache_size = 1_048_576   # 1 MiB
            percpu_cache_size = 131072
            max_transfer_slots = 16
            large_cache_size = 0
            scavenge_interval = 4_096
            idle_release_ms = 250
            frontend = "arenas"

            [[class]]
            size = 8
            [[class]]
            size = 64
            pages = 2
            batch_size = 100
            [[class]]
            size = 4096
            batch_size = 4
            """)
        XCTAssertEqual(parsed.result, .parsed(classCount: 3), parsed.message)
        XCTAssertEqual(parsed.config.threadCacheBytes, 1 << 20)
        XCTAssertEqual(parsed.config.perCPUCacheBytes, 131072)
        XCTAssertEqual(parsed.config.maxTransferSlots, 16)
        XCTAssertEqual(parsed.config.largeCacheBytes, 0)
        XCTAssertEqual(parsed.config.scavengeInterval, 4096)
        XCTAssertEqual(parsed.config.idleReleaseMilliseconds, 250)
        XCTAssertEqual(parsed.config.requestedFrontEnd, .arenas)
        XCTAssertEqual(parsed.classes.map(\.size), [8, 64, 4096])
        XCTAssertEqual(parsed.classes.map(\.pages), [nil, 2, nil])
        XCTAssertEqual(parsed.classes.map(\.batchSize), [nil, 100, 4])
        XCTAssertEqual(parsed.classes.map(\.line), [14, 16, 20], "each class remembers the line of its size")
        XCTAssertEqual(parsed.classes[1].pagesLine, 17)
        XCTAssertEqual(parsed.classes[1].batchSizeLine, 18)

        let t = table(parsed.classes)
        XCTAssertEqual(contents(t).classes, [
            [8, SizeClassTable.spanPages(forSize: 8, spanPageSize: 8192), SizeClassTable.batchSize(forSize: 8)],
            [64, 2, 100],
            [4096, SizeClassTable.spanPages(forSize: 4096, spanPageSize: 8192), 4],
        ])
    }

    func testEmptyFileAndCommentsChangeNothing() {
        for text in ["", "\n\n", "# only a comment", "  # indented comment\n\n[config]\n# nothing set\n", "[config]\r\n"] {
            let parsed = parse(text)
            XCTAssertEqual(parsed.result, .parsed(classCount: nil), "\(text.debugDescription): \(parsed.message)")
            let defaults = Configuration()
            XCTAssertEqual(parsed.config.threadCacheBytes, defaults.threadCacheBytes)
            XCTAssertEqual(parsed.config.maxTransferSlots, defaults.maxTransferSlots)
            XCTAssertNil(parsed.config.requestedFrontEnd)
        }
    }

    func testShorthandAndFullFormGiveTheSameTable() {
        let sizes = [8, 16, 32, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
        let shorthand = parse("""
            classes = [8, 16, 32,   # small
                       48, 64, 96, 128,

              256, 512, 1024, 2048, 4096, 8192, 16384,   # trailing comma
            ]
            """)
        let full = parse(sizes.map { "[[class]]\nsize = \($0)\n" }.joined(separator: "\n"))
        let inConfig = parse("[config]\nclasses = [\(sizes.map(String.init).joined(separator: ", "))]\n")
        for parsed in [shorthand, full, inConfig] {
            XCTAssertEqual(parsed.result, .parsed(classCount: sizes.count), parsed.message)
            XCTAssertEqual(parsed.classes.map(\.size), sizes)
        }
        XCTAssertEqual(shorthand.classes.map(\.line), [1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 4],
                       "each element remembers its line")
        let a = contents(table(shorthand.classes)), b = contents(table(full.classes))
        XCTAssertEqual(a.classes, b.classes)
        XCTAssertEqual(a.index, b.index)
    }

    /// The repository's defaults.toml is the built-in configuration: the
    /// table it gives is the compiled-in table, and its knobs are the
    /// defaults of Configuration.
    func testDefaultsFileEqualsBuiltInConfiguration() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/SwiftMallocCore/defaults.toml")
        let text = try String(contentsOf: url, encoding: .utf8)
        let parsed = parse(text)
        guard case .parsed(let count?) = parsed.result else {
            return XCTFail("defaults.toml: \(parsed.result) \(parsed.message)")
        }
        XCTAssertEqual(count, table(nil).count - 1)
        XCTAssertTrue(parsed.classes.allSatisfy { $0.pages != nil && $0.batchSize != nil },
                      "defaults.toml gives every class's pages and batch_size")
        let fromFile = contents(table(parsed.classes)), builtIn = contents(table(nil))
        XCTAssertEqual(fromFile.classes, builtIn.classes)
        XCTAssertEqual(fromFile.index, builtIn.index)
        // And the process's own table (the heap of this test process) is that one too.
        XCTAssertEqual(contents(Heap.ensureInitialized().pointee.sizeClasses).classes, builtIn.classes)

        let defaults = Configuration()
        XCTAssertEqual(parsed.config.threadCacheBytes, defaults.threadCacheBytes)
        XCTAssertEqual(parsed.config.perCPUCacheBytes, defaults.perCPUCacheBytes)
        XCTAssertEqual(parsed.config.maxTransferSlots, defaults.maxTransferSlots)
        XCTAssertEqual(parsed.config.transferShards, defaults.transferShards)
        XCTAssertEqual(parsed.config.largeCacheBytes, defaults.largeCacheBytes)
        XCTAssertEqual(parsed.config.scavengeInterval, defaults.scavengeInterval)
        XCTAssertEqual(parsed.config.idleReleaseMilliseconds, defaults.idleReleaseMilliseconds)
        XCTAssertEqual(parsed.config.requestedFrontEnd, defaults.frontEnd)
        XCTAssertEqual(parsed.config.spanPageSize, defaults.spanPageSize)
        XCTAssertTrue(text.contains("page_size = \(defaults.spanPageSize)"), "page_size is written")
    }

    // MARK: bad files

    func testEachProblemIsReportedWithItsLine() {
        let cases: [(text: String, line: Int, message: String)] = [
            ("[config]\nthread_cache_size = 12\n", 2, "thread_cache_size must be within 65536...1073741824"),
            ("[config]\npercpu_cache_size = 1_000_000_000\n", 2, "percpu_cache_size must be within 65536...67108864"),
            ("[config]\nmax_transfer_slots = 1\n", 2, "max_transfer_slots must be within 2...1024"),
            ("[config]\nlarge_cache_size = 2_000_000_000_000\n", 2, "large_cache_size must be within 0...1099511627776"),
            ("[config]\n\nscavenge_interval = 2_000_000_000_000_000\n", 3,
             "scavenge_interval must be within 0...1125899906842624"),
            ("[config]\nidle_release_ms = 100_000_000\n", 2, "idle_release_ms must be within 0...86400000"),
            ("[config]\ntransfer_shards = 65\n", 2, "transfer_shards must be within 0...64"),
            ("[config]\npage_size = 1000\n", 2, "page_size must be within 4096...1048576"),
            ("[config]\npage_size = 12288\n", 2, "page_size must be a power of two"),
            ("[config]\npage_size = 2097152\n", 2, "page_size must be within 4096...1048576"),
            ("[config]\npage_size = 4096\n[[class]]\nsize = 8192\npages = 1\n", 5,
             "a span of that many pages cannot hold one object of the class"),
            ("[config]\nfrontend = \"fast\"\n", 2, "frontend must be one of \"percpu\", \"thread\", \"arenas\", \"global\""),
            ("[config]\nfrontend = 'thread'\n", 2, "only basic strings (\"...\") are supported"),
            ("[config]\nfrontend = \"thr\\tead\"\n", 2, "unsupported escape in a string (only \\\" and \\\\)"),
            ("[config]\nfrontend = \"thread\n", 2, "unterminated string"),
            ("[config]\nfrontend = thread\n", 2, "expected a string (\"...\")"),
            ("[config]\nthread_cache_size = \"1M\"\n", 2, "expected an integer, not a string"),
            ("[config]\nthread_cache_size = -1\n", 2, "negative values are not allowed"),
            ("[config]\nthread_cache_size = 0x100000\n", 2, "only plain decimal integers are supported (no leading zeros, prefixes, fractions, exponents or suffixes)"),
            ("[config]\nthread_cache_size = 01048576\n", 2, "only plain decimal integers are supported (no leading zeros, prefixes, fractions, exponents or suffixes)"),
            ("[config]\nthread_cache_size = 1M\n", 2, "only plain decimal integers are supported (no leading zeros, prefixes, fractions, exponents or suffixes)"),
            ("[config]\nthread_cache_size = 1e6\n", 2, "only plain decimal integers are supported (no leading zeros, prefixes, fractions, exponents or suffixes)"),
            ("[config]\nthread_cache_size = 1__000_000\n", 2, "`_` in an integer must stand between digits"),
            ("[config]\nthread_cache_size = 1_000_000_\n", 2, "`_` in an integer must stand between digits"),
            ("[config]\nthread_cache_size = 99999999999999999999\n", 2, "integer too large"),
            ("[config]\nthread_cache_size = 1.5\n", 2, "only plain decimal integers are supported (no leading zeros, prefixes, fractions, exponents or suffixes)"),
            ("[config]\nthread_cache_size = 1048576 1\n", 2, "unexpected text at the end of the line"),
            ("[config]\nthread_cache_size\n", 2, "expected `=` after the key"),
            ("[config]\nthread_cache_size =\n", 2, "expected an integer"),
            ("[config]\nthread_cache_size = 1048576\nthread_cache_size = 1048576\n", 3, "key `thread_cache_size` set twice"),
            ("[config]\ncache = 1\n", 2, "unknown key `cache` in [config]"),
            ("thread_cache_size = 1048576\n", 1, "key `thread_cache_size` outside a table (the settings go under [config])"),
            ("[config]\n[config]\n", 2, "table [config] defined twice"),
            ("# x\n[settings]\n", 2, "unknown table [settings] (known: [config], [[class]])"),
            ("[[classes]]\n", 1, "unknown array of tables [[classes]] (known: [[class]])"),
            ("[config\n", 1, "malformed table header"),
            ("[[class]\nsize = 8\n", 1, "malformed table header"),
            ("[config] x\n", 1, "unexpected text at the end of the line"),
            ("= 3\n", 1, "expected a key, a [table] header or a comment"),
            ("[[class]]\nsize = 8\n[[class]]\npages = 1\n", 3, "[[class]] without a size"),
            ("[[class]]\nsize = 8\ncolor = 1\n", 3, "unknown key `color` in [[class]] (known: size, pages, batch_size)"),
            ("[[class]]\nsize = 8\nsize = 16\n", 3, "key `size` set twice"),
            ("classes = [8, 16]\n[[class]]\nsize = 32\n", 2,
             "size classes given twice: `classes = [...]` and [[class]] tables"),
            ("[[class]]\nsize = 32\n[config]\nclasses = [8, 16]\n", 4,
             "size classes given twice: `classes = [...]` and [[class]] tables"),
            ("classes = [8, 16\n", 1, "unterminated array (no `]`)"),
            ("classes = [8 16]\n", 1, "expected `,` or `]` in the array"),
            ("classes = 8\n", 1, "`classes` must be an array of integers: [8, 16, ...]"),
            ("classes = [8,\n \"16\"]\n", 2, "expected an integer, not a string"),
            // Validation of the class list, at the offending class's line.
            ("classes = []\n", 1, "no size classes (at least one is needed)"),
            ("classes = [8,\n 16,\n 24]\n", 3, "class sizes from 16 up must be multiples of 16 (malloc's alignment)"),
            ("classes = [8, 12]\n", 1, "class size must be a multiple of 8"),
            ("classes = [0]\n", 1, "class size must be within 8...32768"),
            ("classes = [8, 32784]\n", 1, "class size must be within 8...32768"),
            ("classes = [8, 32,\n16]\n", 2, "class sizes must be strictly ascending"),
            ("classes = [8, 8]\n", 1, "class sizes must be strictly ascending"),
            ("[[class]]\nsize = 8\n\n[[class]]\nsize = 16384\npages = 1\n", 6,
             "a span of that many pages cannot hold one object of the class"),
            ("[[class]]\nsize = 8\npages = 0\n", 3, "pages must be within 1...255"),
            ("[[class]]\nsize = 8\npages = 256\n", 3, "pages must be within 1...255"),
            ("[[class]]\nsize = 8\nbatch_size = 0\n", 3, "batch_size must be within 1...128"),
            ("[[class]]\nsize = 8\nbatch_size = 129\n", 3, "batch_size must be within 1...128"),
            ("[[class]]\nsize = 8\n[[class]]\n# the size\nsize = 24\n", 5,
             "class sizes from 16 up must be multiples of 16 (malloc's alignment)"),
            ("classes = [" + (1...128).map { String($0 * 16) }.joined(separator: ",") + "]\n", 1,
             "too many size classes (at most 127)"),
        ]
        for c in cases {
            let parsed = parse(c.text)
            XCTAssertEqual(parsed.result, .problem(line: c.line), "\(c.text.debugDescription): \(parsed.message)")
            XCTAssertEqual(parsed.message, c.message, c.text.debugDescription)
        }
    }

    func testUpToTheLimitOfClassesIsAccepted() {
        let sizes = (1...127).map { $0 * 16 }
        let parsed = parse("classes = [" + sizes.map(String.init).joined(separator: ",") + "]")
        XCTAssertEqual(parsed.result, .parsed(classCount: 127), parsed.message)
        XCTAssertEqual(table(parsed.classes).count, SizeClassTable.maxClasses)
    }

    /// `pages` counts span pages of page_size bytes: the rules give the same
    /// span bytes where they can, and a class's pages follow page_size.
    func testClassPagesCountSpanPages() {
        let parsed = parse("""
            [config]
            page_size = 4096
            [[class]]
            size = 64
            pages = 3
            [[class]]
            size = 16384
            """)
        XCTAssertEqual(parsed.result, .parsed(classCount: 2), parsed.message)
        XCTAssertEqual(parsed.config.spanPageSize, 4096)
        let t = table(parsed.classes, spanPageSize: parsed.config.spanPageSize)
        XCTAssertEqual(t.spanGranules(of: 1) << Page.shift, 3 * 4096)
        XCTAssertEqual(Int(t.pages[2]), SizeClassTable.spanPages(forSize: 16384, spanPageSize: 4096))
        XCTAssertEqual(t.spanGranules(of: 2) << Page.shift, Int(t.pages[2]) * 4096)
        let large = table([ClassSpec(size: 16384)], spanPageSize: 1 << 20)
        XCTAssertEqual(Int(large.pages[1]), 1, "one 1 MiB span page holds 64 objects of 16 KiB")
        XCTAssertEqual(large.spanGranules(of: 1) << Page.shift, 1 << 20)
    }

    // MARK: tables stopping below maxSize

    func testSizesAboveTheLargestClassMapToClassZero() {
        let t = table([ClassSpec(size: 8), ClassSpec(size: 16), ClassSpec(size: 1024)])
        XCTAssertEqual(t.count, 4)
        XCTAssertEqual(t.sizeClass(for: 0), 1)
        XCTAssertEqual(t.sizeClass(for: 8), 1)
        XCTAssertEqual(t.sizeClass(for: 9), 2)
        XCTAssertEqual(t.sizeClass(for: 17), 3)
        XCTAssertEqual(t.sizeClass(for: 1024), 3)
        for size in [1025, 1032, 4096, SizeClassTable.maxSize] {
            XCTAssertEqual(t.sizeClass(for: size), 0, "\(size) is above the largest class")
        }
    }

    // MARK: file, then environment

    func testEnvironmentOverridesTheFile() {
        let parsed = parse("""
            [config]
            thread_cache_size = 1_048_576
            max_transfer_slots = 16
            frontend = "arenas"
            scavenge_interval = 100
            idle_release_ms = 300
            transfer_shards = 3
            """)
        XCTAssertEqual(parsed.result, .parsed(classCount: nil), parsed.message)
        XCTAssertEqual(parsed.config.transferShards, 3)
        let variables = ["SWIFTMALLOC_THREAD_CACHE_BYTES": "128K", "SWIFTMALLOC_MAX_TRANSFER_SLOTS": "100000",
                         "SWIFTMALLOC_FRONTEND": "global", "SWIFTMALLOC_IDLE_RELEASE_MS": "0",
                         "SWIFTMALLOC_TRANSFER_SHARDS": "2"]
        for (name, value) in variables { setenv(name, value, 1) }
        defer { for name in variables.keys { unsetenv(name) } }
        var config = parsed.config
        config.applyEnvironment()
        XCTAssertEqual(config.threadCacheBytes, 128 << 10, "the variable wins")
        XCTAssertEqual(config.maxTransferSlots, Knob.maxTransferSlots.range.upperBound,
                       "a variable's value is brought within the range")
        XCTAssertEqual(config.requestedFrontEnd, .global)
        XCTAssertEqual(config.idleReleaseMilliseconds, 0, "a variable can turn the thread off")
        XCTAssertEqual(config.transferShards, 2)
        XCTAssertEqual(config.scavengeInterval, 100, "what no variable sets stays as the file says")
    }

    func testUnreadableFileKeepsTheBuiltInConfiguration() throws {
        var metadata = MetadataArena()
        var config = Configuration()
        config.readFile("/nonexistent/swiftmalloc.toml", metadata: &metadata)
        XCTAssertNil(config.filePath)
        XCTAssertNil(config.classes)
        let line = String(decoding: UnsafeBufferPointer(start: config.fileProblem, count: config.fileProblemLength),
                          as: UTF8.self)
        XCTAssertEqual(line, "swiftmalloc: config /nonexistent/swiftmalloc.toml:0: cannot read (No such file or directory)\n")
    }

    func testBadFileKeepsTheBuiltInConfiguration() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftmalloc-config-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.toml").path
        try "[config]\nthread_cache_size = 1_048_576\nclasses = [8, 24]\n".write(toFile: path, atomically: true, encoding: .utf8)
        var metadata = MetadataArena()
        var config = Configuration()
        config.readFile(path, metadata: &metadata)
        XCTAssertNil(config.filePath)
        XCTAssertNil(config.classes)
        XCTAssertEqual(config.threadCacheBytes, Configuration().threadCacheBytes, "nothing of a bad file applies")
        let line = String(decoding: UnsafeBufferPointer(start: config.fileProblem, count: config.fileProblemLength),
                          as: UTF8.self)
        XCTAssertEqual(line, "swiftmalloc: config \(path):3: class sizes from 16 up must be multiples of 16 (malloc's alignment)\n")

        let good = dir.appendingPathComponent("good.toml").path
        try "[config]\nthread_cache_size = 1_048_576\nclasses = [8, 32]\n".write(toFile: good, atomically: true, encoding: .utf8)
        config = Configuration()
        config.readFile(good, metadata: &metadata)
        XCTAssertNil(config.fileProblem)
        XCTAssertEqual(config.filePath.map { String(cString: $0) }, good)
        XCTAssertEqual(config.threadCacheBytes, 1 << 20)
        XCTAssertEqual(config.classCount, 2)
    }
}
