// The mapping cache (BackEnd/MappingCache.swift) under LD_PRELOAD: freed
// large blocks come back for the next request that fits, calloc still reads
// zero from a reused dirty mapping, and malloc_trim unmaps what is cached.
// (Freeing a cached block again is IntegrationAPISemanticsTests'
// testSecondFreeOfALargeBlockKeptMappedAborts.)
import XCTest

final class MappingCachePreloadTests: XCTestCase {
    func testFreedLargeBlocksAreReusedAndTrimmed() throws {
        let program = try Preload.cProgram("large_cache")
        let (result, statsDir) = try Preload.runPreloaded([program], timeout: 120)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        XCTAssertTrue(result.stdout.contains("ok"), result.summary)
        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertGreaterThan(Preload.number(stats, "large_cache_hits") ?? 0, 300,
                             "400 blocks of 4 repeating sizes: most should reuse a mapping: \(stats)")
        XCTAssertEqual(Preload.number(stats, "large_cache_bytes"), 0, "malloc_trim(0) unmaps the cache: \(stats)")
    }

    func testCacheOffMapsEveryBlock() throws {
        let program = try Preload.cProgram("large_cache")
        let (result, statsDir) = try Preload.runPreloaded([program], environment: ["SWIFTMALLOC_LARGE_CACHE_BYTES": "0"],
                                                          timeout: 120)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertEqual(Preload.number(stats, "large_cache_hits"), 0, "\(stats)")
    }
}
