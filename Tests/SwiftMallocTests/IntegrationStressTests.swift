// Multi-threaded stress under LD_PRELOAD (Tests/CPrograms/stress.c): 8
// threads, over 10 million mixed operations, cross-thread frees, content
// checks, and in_use_bytes back to its starting value at the end. Run with
// the default front end and with each one SWIFTMALLOC_FRONTEND can name.
import Foundation
import XCTest

final class IntegrationStressTests: XCTestCase {
    struct StressOutcome {
        var result: ProcessResult
        var frontend: String?
        var stats: [String: Any] = [:]
    }

    /// Runs the stress program and asserts everything it reports.
    @discardableResult
    private func runStress(
        frontend: String?, threads: Int = 8, operationsPerThread: Int = 1_300_000, profile: String = "small",
        environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line
    ) throws -> StressOutcome {
        let program = try Preload.cProgram("stress", file: file, line: line)
        var env = environment
        if let frontend { env["SWIFTMALLOC_FRONTEND"] = frontend }
        let (result, statsDir) = try Preload.runPreloaded(
            [program, "\(threads)", "\(operationsPerThread)", "1", profile], environment: env, timeout: 300,
            file: file, line: line)
        let reported = lines(of: result.stdout, startingWith: "frontend: ").first
            .map { String($0.dropFirst("frontend: ".count)) }
        if let frontend, let reported, reported != frontend {
            // The library fell back (documented: one stderr line, then the default).
            return StressOutcome(result: result, frontend: reported)
        }
        XCTAssertFalse(result.timedOut, result.summary, file: file, line: line)
        XCTAssertNil(result.signal, "stress crashed:\n\(result.summary)", file: file, line: line)
        let problems = result.stdout.split(separator: "\n").filter {
            $0.hasPrefix("CORRUPT") || $0.hasPrefix("MISALIGNED") || $0.hasPrefix("NULL") || $0.hasPrefix("USABLE")
                || $0.hasPrefix("LEAK")
        }
        XCTAssertEqual(problems.count, 0, "stress found problems:\n" + problems.prefix(30).joined(separator: "\n"),
                       file: file, line: line)
        XCTAssertEqual(result.exitStatus, 0, result.summary, file: file, line: line)

        guard let opsLine = lines(of: result.stdout, startingWith: "ops:").last,
              let usageLine = lines(of: result.stdout, startingWith: "in_use_before:").last else {
            XCTFail("stress printed no summary (was the library preloaded?):\n\(result.summary)",
                    file: file, line: line)
            return StressOutcome(result: result, frontend: reported)
        }
        let ops = field("ops", in: opsLine) ?? 0
        XCTAssertGreaterThanOrEqual(ops, UInt64(threads * operationsPerThread), opsLine, file: file, line: line)
        XCTAssertGreaterThan(field("cross_thread_frees", in: opsLine) ?? 0, UInt64(threads * operationsPerThread / 100),
                             "too few objects were freed by another thread: \(opsLine)", file: file, line: line)
        XCTAssertEqual(field("errors", in: opsLine), 0, opsLine, file: file, line: line)
        let before = field("in_use_before", in: usageLine)
        let after = field("in_use_after", in: usageLine)
        XCTAssertNotNil(before, usageLine, file: file, line: line)
        XCTAssertEqual(before, after, "in_use_bytes differs after every object was freed: \(usageLine)",
                       file: file, line: line)
        XCTAssertEqual(field("allocations", in: usageLine), field("frees", in: usageLine),
                       "allocation and free counts differ over the run: \(usageLine)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(field("threads_seen", in: usageLine) ?? 0, UInt64(threads + 1), usageLine,
                                    file: file, line: line)

        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertGreaterThan(Preload.number(stats, "allocations") ?? 0, UInt64(threads * operationsPerThread) / 4,
                             "\(stats)", file: file, line: line)
        XCTAssertEqual(stats["frontend"] as? String, reported, "\(stats)", file: file, line: line)
        return StressOutcome(result: result, frontend: reported, stats: stats)
    }

    func testStressDefaultFrontEnd() throws {
        try runStress(frontend: nil)
    }

    /// Per-CPU capacity moving all the time (a rebalance every 64 misses:
    /// stop, fence, drain, relayout, fence, re-open under 8 threads that
    /// keep allocating and freeing): nothing lost, nothing handed out twice.
    func testStressPerCPUWhileCapacityMoves() throws {
        let outcome = try runStress(frontend: "percpu", operationsPerThread: 400_000,
                                    environment: ["SWIFTMALLOC_PERCPU_REBALANCE": "64"])
        guard outcome.frontend == "percpu" else { throw XCTSkip("percpu is not available here") }
        XCTAssertGreaterThan(Preload.number(outcome.stats, "percpu_rebalances") ?? 0, 10,
                             "capacity never moved: \(outcome.stats)")
    }

    private func runStressRequiring(_ frontend: String) throws {
        let outcome = try runStress(frontend: frontend)
        if let used = outcome.frontend, used != frontend {
            throw XCTSkip("front end \(frontend) is not available here; the library used \(used). stderr: "
                          + outcome.result.stderr.prefix(300))
        }
    }

    func testStressPerCPUFrontEnd() throws { try runStressRequiring("percpu") }

    /// percpu with glibc's rseq registration off: the shim registers (and
    /// unregisters) an area of its own for every thread.
    func testStressPerCPUWithOwnRseqRegistration() throws {
        let outcome = try runStress(frontend: "percpu", environment: ["GLIBC_TUNABLES": "glibc.pthread.rseq=0"])
        XCTAssertEqual(outcome.frontend, "percpu", "percpu must stay in use with the shim's own registration")
        XCTAssertEqual(outcome.stats["rseq_available"] as? Bool, true, "\(outcome.stats)")
    }
    func testStressThreadFrontEnd() throws { try runStressRequiring("thread") }
    func testStressArenasFrontEnd() throws { try runStressRequiring("arenas") }
    func testStressGlobalFrontEnd() throws { try runStressRequiring("global") }

    /// One allocation in five above 64 KiB: the page heap and large blocks
    /// under contention, with cross-thread frees.
    func testStressLargeSizes() throws {
        try runStress(frontend: nil, threads: 8, operationsPerThread: 20_000, profile: "large")
    }

    /// Many more threads than CPUs, fewer operations each.
    func testStressSixtyFourThreads() throws {
        try runStress(frontend: nil, threads: 64, operationsPerThread: 100_000)
    }
}

/// The statistics file, as the header and the design brief document it.
/// (The front-end variable itself is covered by FrontEndPreloadTests.)
final class IntegrationStatsFileTests: XCTestCase {
    static let requiredFields = [
        "frontend", "rseq_available", "allocations", "frees", "fast_path_hits", "fast_path_misses",
        "rseq_aborts", "mapped_bytes", "released_bytes", "in_use_bytes", "threads_seen", "threads_live",
        "large_allocations", "page_heap_free_bytes", "metadata_bytes", "pid",
    ]

    func testStatsFileIsWrittenPerProcessWithEveryField() throws {
        let (result, statsDir) = try Preload.runPreloaded(["ls", "-la", "/"])
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        let all = try Preload.allStats(in: statsDir)
        let stats = try XCTUnwrap(all[result.pid], "no stats-\(result.pid).json; files: \(all.keys.sorted())")
        for key in Self.requiredFields {
            XCTAssertNotNil(stats[key], "statistics lack \"\(key)\": \(stats)")
        }
        XCTAssertEqual(Preload.number(stats, "pid"), UInt64(result.pid), "pid field")
        XCTAssertNotNil(stats["rseq_available"] as? Bool, "rseq_available is not a boolean: \(stats)")
        let frontend = try XCTUnwrap(stats["frontend"] as? String)
        XCTAssertTrue(["percpu", "thread", "arenas", "global"].contains(frontend), frontend)
        let allocations = Preload.number(stats, "allocations") ?? 0
        XCTAssertGreaterThan(allocations, 0, "\(stats)")
        XCTAssertGreaterThanOrEqual(Preload.number(stats, "threads_seen") ?? 0, 1, "\(stats)")
        XCTAssertGreaterThan(Preload.number(stats, "mapped_bytes") ?? 0, 0, "\(stats)")
        XCTAssertLessThanOrEqual(Preload.number(stats, "frees") ?? .max, allocations, "\(stats)")
        XCTAssertLessThanOrEqual(Preload.number(stats, "in_use_bytes") ?? .max,
                                 Preload.number(stats, "mapped_bytes") ?? 0, "\(stats)")
        XCTAssertEqual((Preload.number(stats, "fast_path_hits") ?? 0) + (Preload.number(stats, "fast_path_misses") ?? 0)
                       <= allocations, true, "fast path counts exceed allocations: \(stats)")
    }
}
