// Threads that come and go, and fork, under every front end.
import Foundation
import XCTest

final class LifecyclePreloadTests: XCTestCase {
    static let frontEnds = ["percpu", "thread", "arenas", "global"]

    /// fork 1,000 times while two threads allocate: every child allocates,
    /// starts a thread that allocates, and exits 0.
    func testForkFromAllocatingThreadsUnderEveryFrontEnd() throws {
        let binary = try Preload.cProgram("fork_storm")
        for frontEnd in Self.frontEnds {
            let (result, _) = try Preload.runPreloaded([binary, "1000", "2"], environment: ["SWIFTMALLOC_FRONTEND": frontEnd],
                                                       timeout: 300)
            XCTAssertEqual(result.exitStatus, 0, "\(frontEnd): \(result.summary)")
            XCTAssertTrue(result.stdout.contains("forks 1000 failures 0"), "\(frontEnd): \(result.summary)")
        }
    }

    /// Short-lived threads allocate, free each other's objects and exit. The
    /// memory mapped must not grow with the number of threads: running 20,000
    /// of them maps at most two page-heap regions (16 MiB) more than running
    /// 2,000 — under 1 KiB per extra thread, far less than any thread's cache.
    func testShortLivedThreadsLoseNothingUnderEveryFrontEnd() throws {
        let binary = try Preload.cProgram("thread_churn")
        for frontEnd in Self.frontEnds {
            func mappedAfter(_ threads: Int) throws -> UInt64 {
                let (result, statsDir) = try Preload.runPreloaded([binary, String(threads), "50"],
                                                                  environment: ["SWIFTMALLOC_FRONTEND": frontEnd], timeout: 300)
                XCTAssertEqual(result.exitStatus, 0, "\(frontEnd): \(result.summary)")
                let stats = try Preload.stats(in: statsDir, pid: result.pid)
                XCTAssertEqual(stats["frontend"] as? String, frontEnd)
                XCTAssertEqual(Preload.number(stats, "threads_live"), 1, "every worker's record was retired")
                XCTAssertGreaterThanOrEqual(Preload.number(stats, "threads_seen") ?? 0, UInt64(threads))
                let line = try XCTUnwrap(lines(of: result.stdout, startingWith: "threads ").first, result.summary)
                let words = line.split(separator: " ")
                let index = try XCTUnwrap(words.firstIndex(of: "mapped_last"), line)
                return try XCTUnwrap(UInt64(words[index + 1]), line)
            }
            let few = try mappedAfter(2_000)
            let many = try mappedAfter(20_000)
            print("\(frontEnd): mapped after 2,000 threads \(few >> 10) KiB, after 20,000 \(many >> 10) KiB")
            XCTAssertLessThanOrEqual(Int64(many) - Int64(few), 16 << 20,
                                     "\(frontEnd): mapped memory grows with threads (\(few) -> \(many))")
        }
    }
}

/// Lock-free readers of span records and of the thread registry, raced
/// against retirement (coalescing, release to the OS, threads exiting), with
/// retired metadata poisoned after its grace period.
final class ReclamationPreloadTests: XCTestCase {
    func testReadersNeverSeeRetiredMetadataUnderEveryFrontEnd() throws {
        let binary = try Preload.cProgram("rcu_race")
        for frontEnd in LifecyclePreloadTests.frontEnds {
            let (result, statsDir) = try Preload.runPreloaded([binary, "2"],
                                                              environment: ["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_DEBUG": "1"],
                                                              timeout: 120)
            XCTAssertEqual(result.exitStatus, 0, "\(frontEnd): \(result.summary)")
            XCTAssertFalse(result.stderr.contains("grace period"), "\(frontEnd): \(result.stderr)")
            let stats = try Preload.stats(in: statsDir, pid: result.pid)
            let retired = Preload.number(stats, "rcu_retired_spans") ?? 0
            let reclaimed = Preload.number(stats, "rcu_reclaimed_spans") ?? 0
            XCTAssertGreaterThan(retired, 1000, "\(frontEnd): the race must retire span records: \(stats)")
            XCTAssertGreaterThan(reclaimed, 0, "\(frontEnd): grace periods must end: \(stats)")
            XCTAssertLessThanOrEqual(reclaimed, retired)
            XCTAssertGreaterThan(Preload.number(stats, "threads_seen") ?? 0, 100, "\(frontEnd): threads came and went")
        }
    }
}
