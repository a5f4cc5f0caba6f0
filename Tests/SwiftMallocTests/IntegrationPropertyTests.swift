// The property test of the C API (Tests/CPrograms/api_property.c) under
// LD_PRELOAD: random sequences of malloc, calloc, realloc, the memalign
// family and free on 4 threads, with cross-thread hand-offs, checked step by
// step against a shadow model (content, alignment, usable size, no overlap).
// Run under each front end SWIFTMALLOC_FRONTEND can name, with two seeds,
// and once more with the transfer caches in 2 shards
// (SWIFTMALLOC_TRANSFER_SHARDS=2: on a 2-CPU machine each CPU has its own,
// and hand-offs cross shards).
// A failure prints the seed; `api_property 4 N SEED` under the same front
// end repeats the run.
import Foundation
import XCTest

final class IntegrationPropertyTests: XCTestCase {
    private static let threads = 4
    private static let operationsPerThread = 50_000

    /// The address-space limit (RLIMIT_AS) under which the library cannot
    /// reserve its flat class map (32 GiB) and free classifies every small
    /// object through the page map's tree; everything else fits easily.
    private static let limitWithoutFlatClassMap = 8 << 30

    /// `addressSpaceLimit`: run the program under `prlimit --as` with it.
    /// `transferShards`: SWIFTMALLOC_TRANSFER_SHARDS, checked in the stats file; nil: the default.
    private func runProperty(frontend: String, seed: UInt64, addressSpaceLimit: Int? = nil, transferShards: Int? = nil,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let program = try Preload.cProgram("api_property", file: file, line: line)
        let arguments = [program, "\(Self.threads)", "\(Self.operationsPerThread)", "\(seed)"]
        let command = addressSpaceLimit.map { ["prlimit", "--as=\($0)", "--"] + arguments } ?? arguments
        var environment = ["SWIFTMALLOC_FRONTEND": frontend]
        if let transferShards { environment["SWIFTMALLOC_TRANSFER_SHARDS"] = "\(transferShards)" }
        let (result, statsDir) = try Preload.runPreloaded(
            command, environment: environment, timeout: 120, file: file, line: line)
        let reported = lines(of: result.stdout, startingWith: "frontend: ").first
            .map { String($0.dropFirst("frontend: ".count)) }
        if let reported, reported != frontend {
            // The library fell back (documented: one stderr line, then the default).
            throw XCTSkip("front end \(frontend) is not available here; the library used \(reported)")
        }
        XCTAssertFalse(result.timedOut, result.summary, file: file, line: line)
        XCTAssertNil(result.signal, "api_property (seed \(seed)) crashed:\n\(result.summary)", file: file, line: line)
        XCTAssertEqual(result.exitStatus, 0, "seed \(seed):\n\(result.summary)", file: file, line: line)
        let failLines = lines(of: result.stdout, startingWith: "FAIL")
        XCTAssertTrue(failLines.isEmpty, "seed \(seed):\n" + failLines.prefix(30).joined(separator: "\n"),
                      file: file, line: line)

        guard let checksLine = lines(of: result.stdout, startingWith: "checks: ").last,
              let opsLine = lines(of: result.stdout, startingWith: "ops: ").last,
              let usageLine = lines(of: result.stdout, startingWith: "in_use_before: ").last else {
            XCTFail("api_property printed no summary (was the library preloaded?):\n\(result.summary)",
                    file: file, line: line)
            return
        }
        XCTAssertEqual(field("failures", in: checksLine), 0, checksLine, file: file, line: line)
        // About six checks per operation; far fewer means the checks did not run.
        let operations = UInt64(Self.threads * Self.operationsPerThread)
        XCTAssertGreaterThanOrEqual(field("checks", in: checksLine) ?? 0, 3 * operations, checksLine,
                                    file: file, line: line)
        XCTAssertEqual(field("ops", in: opsLine), operations, opsLine, file: file, line: line)
        XCTAssertGreaterThan(field("handoffs", in: opsLine) ?? 0, operations / 50,
                             "too few blocks went from one thread to another: \(opsLine)", file: file, line: line)
        XCTAssertEqual(field("in_use_before", in: usageLine), field("in_use_after", in: usageLine),
                       "in_use_bytes differs after every block was freed: \(usageLine)", file: file, line: line)
        XCTAssertEqual(field("allocations", in: usageLine), field("frees", in: usageLine),
                       "allocation and free counts differ over the run: \(usageLine)", file: file, line: line)

        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertEqual(stats["frontend"] as? String, frontend, "\(stats)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(Preload.number(stats, "allocations") ?? 0, operations / 2, "\(stats)",
                                    file: file, line: line)
        XCTAssertGreaterThan(Preload.number(stats, "large_allocations") ?? 0, 0, "\(stats)", file: file, line: line)
        XCTAssertEqual(Preload.number(stats, "class_map_pages"), addressSpaceLimit == nil ? 1 << 35 : 0,
                       "the flat class map is there exactly when the address space allows it", file: file, line: line)
        if let transferShards {
            XCTAssertEqual(Preload.number(stats, "transfer_shards"), UInt64(transferShards), "\(stats)", file: file, line: line)
            XCTAssertGreaterThan(Preload.number(stats, "lock_acquisitions_transfer") ?? 0, 0,
                                 "batches went through the transfer caches: \(stats)", file: file, line: line)
        }
    }

    private func runSeeds(_ frontend: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for seed: UInt64 in [1, 20_240_613] {
            try runProperty(frontend: frontend, seed: seed, file: file, line: line)
        }
    }

    func testPropertyPerCPUFrontEnd() throws { try runSeeds("percpu") }
    func testPropertyThreadFrontEnd() throws { try runSeeds("thread") }
    func testPropertyArenasFrontEnd() throws { try runSeeds("arenas") }
    func testPropertyGlobalFrontEnd() throws { try runSeeds("global") }

    /// Without the flat class map every small free takes the exact lookup:
    /// the same checks hold under every front end.
    func testPropertyWithoutTheFlatClassMap() throws {
        // percpu last: where rseq is missing it skips the rest.
        for frontend in ["thread", "arenas", "global", "percpu"] {
            try runProperty(frontend: frontend, seed: 7, addressSpaceLimit: Self.limitWithoutFlatClassMap)
        }
    }

    func testPropertyWithTwoTransferShards() throws {
        // percpu last: where rseq is missing it skips the rest.
        for frontend in ["thread", "arenas", "global", "percpu"] {
            try runProperty(frontend: frontend, seed: 7, transferShards: 2)
        }
    }
}
