// The scavenger (Scavenger.swift) under LD_PRELOAD: memory a program
// freed in one phase goes back to the OS while it keeps allocating other
// things, with no malloc_trim, under every front end, once it has been free
// for decay_ms (SWIFTMALLOC_DECAY_MS; short here); and
// SWIFTMALLOC_SCAVENGE_INTERVAL=0 turns it off (the memory stays). In a
// multi-threaded program the passes are the idle-release thread's, one per
// idle_release_ms in which the allocator was used, and the slow paths run
// none. Passes also come while the heap grows, and what the per-CPU slabs
// or a thread's cache hold of a class the program stopped allocating goes
// back to the central lists.
import XCTest

final class ScavengerPreloadTests: XCTestCase {
    private func run(_ environment: [String: String], arguments: [String] = []) throws
        -> (afterFree: Int, afterChurn: Int, stats: [String: Any]) {
        let program = try Preload.cProgram("scavenge")
        let (result, statsDir) = try Preload.runPreloaded([program] + arguments, environment: environment, timeout: 120)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        let words = result.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard words.count >= 4, let afterFree = Int(words[1]), let afterChurn = Int(words[3]) else {
            throw XCTSkip("unexpected output: \(result.summary)")
        }
        return (afterFree, afterChurn, try Preload.stats(in: statsDir, pid: result.pid))
    }

    func testFreedPhaseGoesBackToTheOSUnderEveryFrontEnd() throws {
        for frontEnd in ["percpu", "thread", "arenas", "global"] {
            // The churn takes 50-100 ms.
            let on = try run(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_DECAY_MS": "10"])
            let off = try run(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_SCAVENGE_INTERVAL": "0"])
            // Passes keep coming, but the pages have not been free for decay_ms.
            let young = try run(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_DECAY_MS": "60000"])
            XCTAssertGreaterThan(Preload.number(on.stats, "scavenger_passes") ?? 0, 0, "\(frontEnd): \(on.stats)")
            XCTAssertGreaterThan(Preload.number(on.stats, "scavenged_bytes") ?? 0, 16 << 20, "\(frontEnd): \(on.stats)")
            XCTAssertEqual(Preload.number(off.stats, "scavenger_passes"), 0, "\(frontEnd): \(off.stats)")
            XCTAssertGreaterThan(Preload.number(young.stats, "scavenger_passes") ?? 0, 0, "\(frontEnd): \(young.stats)")
            XCTAssertEqual(Preload.number(young.stats, "scavenged_bytes"), 0, "\(frontEnd): \(young.stats)")
            // 48 MiB were freed in phase 1: without the scavenger most of it
            // stays resident (the page heap keeps up to 32 MiB of free pages at first).
            XCTAssertLessThan(on.afterChurn, off.afterChurn - (16 << 20),
                              "\(frontEnd): resident \(on.afterChurn >> 20) MiB with the scavenger, \(off.afterChurn >> 20) MiB without")
        }
    }

    func testMultiThreadedProgramsGetTheirPassesFromTheIdleReleaseThread() throws {
        let churn = ["threaded", "800"]
        for frontEnd in ["percpu", "thread"] {
            let threaded = try run(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_DECAY_MS": "200"], arguments: churn)
            let off = try run(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_SCAVENGE_INTERVAL": "0"], arguments: churn)
            // No idle-release thread: the slow paths run the passes.
            let inline = try run(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_IDLE_RELEASE_MS": "0",
                                  "SWIFTMALLOC_DECAY_MS": "200"], arguments: churn)
            let passes = Preload.number(threaded.stats, "scavenger_passes") ?? 0
            XCTAssertGreaterThan(passes, 10, "\(frontEnd): \(threaded.stats)")
            XCTAssertEqual(Preload.number(threaded.stats, "scavenger_thread_passes"), passes,
                           "\(frontEnd): every pass on the thread: \(threaded.stats)")
            XCTAssertGreaterThan(Preload.number(threaded.stats, "scavenged_bytes") ?? 0, 16 << 20, "\(frontEnd): \(threaded.stats)")
            XCTAssertEqual(Preload.number(threaded.stats, "idle_release_passes"), 0, "never idle: \(threaded.stats)")
            XCTAssertEqual(Preload.number(off.stats, "scavenger_passes"), 0, "\(frontEnd): \(off.stats)")
            XCTAssertGreaterThan(Preload.number(inline.stats, "scavenger_passes") ?? 0, 10, "\(frontEnd): \(inline.stats)")
            XCTAssertEqual(Preload.number(inline.stats, "scavenger_thread_passes"), 0, "\(frontEnd): \(inline.stats)")
            XCTAssertLessThan(threaded.afterChurn, off.afterChurn - (16 << 20),
                              "\(frontEnd): resident \(threaded.afterChurn >> 20) MiB with the thread's passes, \(off.afterChurn >> 20) MiB without")
        }
    }

    /// past_limit.c: a multi-threaded program frees three times the dirty
    /// limit. Its runs stay resident (allocated again at once, they fault
    /// nothing in), and while it keeps calling the allocator lightly, never
    /// idle, the idle-release thread gives them back once they have stayed
    /// free for decay_ms (200 ms here).
    func testRunsPastTheDirtyLimitWaitForTheDecayInAMultiThreadedProgram() throws {
        let program = try Preload.cProgram("past_limit")
        func numbers(_ arguments: [String]) throws -> [Int] {
            let (result, _) = try Preload.runPreloaded([program] + arguments, environment: ["SWIFTMALLOC_DECAY_MS": "200"],
                                                       timeout: 120)
            XCTAssertEqual(result.exitStatus, 0, result.summary)
            return result.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        }
        let again = try numbers(["again"])
        XCTAssertEqual(again.count, 2)
        XCTAssertGreaterThan(again.first ?? 0, 80 << 20, "freed runs past the limit were given back at once: \(again)")
        // Given back at once past the limit, the 64 MiB over it would fault
        // back in: over 16,000 faults of 4 KiB pages.
        XCTAssertLessThan(again.last ?? .max, 4096, "allocated again at once, the 96 MiB faulted back in: \(again)")
        let decayed = try numbers([])
        XCTAssertEqual(decayed.count, 2)
        XCTAssertGreaterThan(decayed.first ?? 0, 80 << 20, "\(decayed)")
        XCTAssertLessThan(decayed.last ?? .max, 48 << 20, "what is past the limit stayed after decay_ms: \(decayed)")
    }

    /// idle_classes.c: 16 MiB of 2048-byte objects freed, then 32 MiB of
    /// 3072-byte objects held; the stats at exit.
    private func runIdleClasses(_ environment: [String: String], threaded: Bool) throws -> [String: Any] {
        let program = try Preload.cProgram("idle_classes")
        let (result, statsDir) = try Preload.runPreloaded([program] + (threaded ? ["threaded"] : []),
                                                          environment: environment, timeout: 120)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        XCTAssertTrue(result.stdout.hasPrefix("rss_after_phase1 "), result.summary)
        return try Preload.stats(in: statsDir, pid: result.pid)
    }

    /// Phase 2 moves few objects through the middle (it only allocates, a
    /// batch per refill) but grows the heap by 32 MiB: with the object
    /// interval out of reach, the passes come from the growth alone, one per
    /// 256 KiB of fresh pages when the slow paths run them. The idle-release
    /// thread, woken by a ring, runs one pass however many MiB went by
    /// before it got a CPU.
    func testAGrowingHeapGetsPassesFromItsGrowth() throws {
        let farInterval = "1125899906842624"
        for frontEnd in ["percpu", "thread", "arenas", "global"] {
            for threaded in [false, true] {
                let grown = try runIdleClasses(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_SCAVENGE_INTERVAL": farInterval],
                                               threaded: threaded)
                let off = try runIdleClasses(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_SCAVENGE_INTERVAL": "0"],
                                             threaded: threaded)
                let what = "\(frontEnd)\(threaded ? ", threaded" : "")"
                XCTAssertGreaterThanOrEqual(Preload.number(grown, "scavenger_passes") ?? 0, threaded ? 1 : 16, "\(what): \(grown)")
                XCTAssertEqual(Preload.number(off, "scavenger_passes"), 0, "\(what): \(off)")
            }
        }
    }

    /// After phase 1 nothing allocates 2048 bytes: the per-CPU lists of that
    /// class are idle, and a pass hands them to the central lists; under
    /// thread the thread's cache hands its list back at a refill after a
    /// pass. With the scavenger off they stay. The shared-cache
    /// front ends keep theirs.
    func testAClassNoLongerAllocatedLeavesTheCaches() throws {
        for threaded in [false, true] {
            let on = try runIdleClasses(["SWIFTMALLOC_FRONTEND": "percpu"], threaded: threaded)
            guard on["frontend"] as? String == "percpu" else { throw XCTSkip("no rseq here: \(on)") }
            let off = try runIdleClasses(["SWIFTMALLOC_FRONTEND": "percpu", "SWIFTMALLOC_SCAVENGE_INTERVAL": "0"],
                                         threaded: threaded)
            XCTAssertGreaterThanOrEqual(Preload.number(on, "percpu_idle_drains") ?? 0, 1, "threaded \(threaded): \(on)")
            XCTAssertEqual(Preload.number(on, "thread_idle_returns"), 0, "threaded \(threaded): \(on)")
            XCTAssertEqual(Preload.number(off, "percpu_idle_drains"), 0, "threaded \(threaded): \(off)")

            let thread = try runIdleClasses(["SWIFTMALLOC_FRONTEND": "thread"], threaded: threaded)
            let threadOff = try runIdleClasses(["SWIFTMALLOC_FRONTEND": "thread", "SWIFTMALLOC_SCAVENGE_INTERVAL": "0"],
                                               threaded: threaded)
            XCTAssertEqual(Preload.number(thread, "percpu_idle_drains"), 0, "threaded \(threaded): \(thread)")
            // The list of 2048-byte objects the cache kept: at least a batch.
            XCTAssertGreaterThanOrEqual(Preload.number(thread, "thread_idle_returns") ?? 0, 8, "threaded \(threaded): \(thread)")
            XCTAssertEqual(Preload.number(threadOff, "thread_idle_returns"), 0, "threaded \(threaded): \(threadOff)")
        }
    }

    /// cycle_pages.c cycles 64 MiB of 8 KiB blocks through the heap, twice
    /// the 32 MiB of free pages the page heap keeps at first. Giving the
    /// excess back on every round would fault it in again on the next (at
    /// least 8,192 faults of 4 KiB pages a round); the limit grows instead,
    /// and the last rounds fault almost nothing.
    func testAProgramThatCyclesMoreThanTheDirtyLimitKeepsItsPages() throws {
        let program = try Preload.cProgram("cycle_pages")
        for frontEnd in ["percpu", "thread"] {
            let (result, statsDir) = try Preload.runPreloaded([program], environment: ["SWIFTMALLOC_FRONTEND": frontEnd], timeout: 120)
            XCTAssertEqual(result.exitStatus, 0, result.summary)
            let faults = result.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).dropFirst().compactMap { Int($0) }
            XCTAssertEqual(faults.count, 8, result.summary)
            for (round, count) in faults.enumerated().dropFirst(5) {
                XCTAssertLessThan(count, 1024, "\(frontEnd): round \(round + 1) faulted its pages in again: \(faults)")
            }
            let stats = try Preload.stats(in: statsDir, pid: result.pid)
            XCTAssertGreaterThanOrEqual(Preload.number(stats, "page_heap_dirty_limit") ?? 0, 64 << 20, "\(frontEnd): \(stats)")
        }
    }
}
