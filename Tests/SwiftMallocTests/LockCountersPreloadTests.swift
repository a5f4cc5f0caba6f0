// The per-tier lock counters (lock_acquisitions_*, lock_contended_*): real
// counts, checked where they are exact (see Tests/CPrograms/lock_counters.c),
// and present in the stats file.
import Foundation
import XCTest

final class LockCountersPreloadTests: XCTestCase {
    static let tiers = ["transfer", "central", "page_heap", "registry", "arenas", "global", "metadata"]

    private func run(frontEnd: String, pairs: Int, threads: Int) throws -> (ProcessResult, [String: Any]) {
        let binary = try Preload.cProgram("lock_counters")
        let (result, statsDir) = try Preload.runPreloaded([binary, "\(pairs)", "\(threads)"],
                                                          environment: ["SWIFTMALLOC_FRONTEND": frontEnd],
                                                          timeout: 300)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        XCTAssertTrue(result.stdout.contains("lock_counters ok"), result.summary)
        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertEqual(stats["frontend"] as? String, frontEnd)
        return (result, stats)
    }

    /// Every front end: one thread never waits; acquisitions >= contended in
    /// every tier; the stats file carries both counters for every tier.
    func testCountersUnderEveryFrontEnd() throws {
        for frontEnd in ["percpu", "thread", "arenas", "global"] {
            let (result, stats) = try run(frontEnd: frontEnd, pairs: 20000, threads: 3)
            for tier in Self.tiers {
                let acquisitions = Preload.number(stats, "lock_acquisitions_\(tier)")
                let contended = Preload.number(stats, "lock_contended_\(tier)")
                XCTAssertNotNil(acquisitions, "\(frontEnd): lock_acquisitions_\(tier) missing: \(stats)")
                XCTAssertNotNil(contended, "\(frontEnd): lock_contended_\(tier) missing: \(stats)")
                XCTAssertLessThanOrEqual(contended ?? 0, acquisitions ?? 0, "\(frontEnd) \(tier)")
            }
            XCTAssertGreaterThan(Preload.number(stats, "lock_acquisitions_page_heap") ?? 0, 0, result.summary)
        }
    }

    /// Once the process has threads, the global front end takes its cache's
    /// lock for every call: the stats file of 4 threads x 50 000 pairs shows
    /// at least that. (The first phase runs alone, without the lock.)
    func testGlobalLockCountsEveryCall() throws {
        let pairs = 50000, threads = 4
        let (result, stats) = try run(frontEnd: "global", pairs: pairs, threads: threads)
        let acquisitions = Preload.number(stats, "lock_acquisitions_global") ?? 0
        XCTAssertGreaterThanOrEqual(acquisitions, UInt64(2 * pairs * threads), result.summary)
        // Only the global front end has a global lock to take.
        XCTAssertEqual(Preload.number(stats, "lock_acquisitions_arenas"), 0, "no arena caches under global")
        let (_, perThread) = try run(frontEnd: "thread", pairs: 1000, threads: 1)
        XCTAssertEqual(Preload.number(perThread, "lock_acquisitions_global"), 0)
    }
}
