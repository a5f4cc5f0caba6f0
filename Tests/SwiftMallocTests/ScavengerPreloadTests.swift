// The scavenger (Scavenger.swift) under LD_PRELOAD: memory a program
// freed in one phase goes back to the OS while it keeps allocating other
// things, with no malloc_trim, under every front end; and
// SWIFTMALLOC_SCAVENGE_INTERVAL=0 turns it off (the memory stays). In a
// multi-threaded program the passes are the idle-release thread's, one per
// idle_release_ms in which the allocator was used, and the slow paths run
// none.
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
            let on = try run(["SWIFTMALLOC_FRONTEND": frontEnd])
            let off = try run(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_SCAVENGE_INTERVAL": "0"])
            XCTAssertGreaterThan(Preload.number(on.stats, "scavenger_passes") ?? 0, 0, "\(frontEnd): \(on.stats)")
            XCTAssertGreaterThan(Preload.number(on.stats, "scavenged_bytes") ?? 0, 16 << 20, "\(frontEnd): \(on.stats)")
            XCTAssertEqual(Preload.number(off.stats, "scavenger_passes"), 0, "\(frontEnd): \(off.stats)")
            // 48 MiB were freed in phase 1: without the scavenger most of it
            // stays resident (the page heap keeps up to 32 MiB of free pages).
            XCTAssertLessThan(on.afterChurn, off.afterChurn - (16 << 20),
                              "\(frontEnd): resident \(on.afterChurn >> 20) MiB with the scavenger, \(off.afterChurn >> 20) MiB without")
        }
    }

    func testMultiThreadedProgramsGetTheirPassesFromTheIdleReleaseThread() throws {
        let churn = ["threaded", "800"]
        for frontEnd in ["percpu", "thread"] {
            let threaded = try run(["SWIFTMALLOC_FRONTEND": frontEnd], arguments: churn)
            let off = try run(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_SCAVENGE_INTERVAL": "0"], arguments: churn)
            // No idle-release thread: the slow paths run the passes.
            let inline = try run(["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_IDLE_RELEASE_MS": "0"], arguments: churn)
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
}
