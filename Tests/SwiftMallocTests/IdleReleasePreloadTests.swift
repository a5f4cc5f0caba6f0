// The idle-release thread (Scavenger.swift) under LD_PRELOAD: a
// multi-threaded program that frees what it allocated and then idles gets
// its memory back without another call into the allocator, under every
// front end; SWIFTMALLOC_IDLE_RELEASE_MS=0 means no thread and no release;
// a single-threaded program never gets the thread; a fork child gets its
// own; a program whose main thread ends with pthread_exit still ends
// promptly, with status 0. Tests/CPrograms/idle_release.c and
// pthread_exit_main.c.
import XCTest

final class IdleReleasePreloadTests: XCTestCase {
    /// The idle time the tests ask for (the program idles three times this).
    private let idleMilliseconds = 200
    /// What may stay resident once the idle pass has run: the program, the
    /// library and its metadata. Each run allocates about 200 MB, of which
    /// 50 to 60 MB are resident once it is all freed.
    private let idleBound: UInt64 = 30 << 20

    private struct Report {
        var afterFree: UInt64
        var afterIdle: UInt64
        var tasks: UInt64
        /// Each thread's name and blocked signals (a bit per signal, signal
        /// 1 in bit 0).
        var signalMasks: [(name: String, blocked: UInt64)]
        var stats: [Int32: [String: Any]]
        var summary: String
    }

    private func run(_ mode: String, frontEnd: String = "percpu", idleMilliseconds: Int,
                     file: StaticString = #filePath, line: UInt = #line) throws -> Report {
        let program = try Preload.cProgram("idle_release", file: file, line: line)
        let (result, statsDir) = try Preload.runPreloaded(
            [program, mode, String(self.idleMilliseconds)],
            // The slow-path scavenger off: what goes back is the thread's doing.
            environment: ["SWIFTMALLOC_FRONTEND": frontEnd, "SWIFTMALLOC_IDLE_RELEASE_MS": String(idleMilliseconds),
                          "SWIFTMALLOC_SCAVENGE_INTERVAL": "0"],
            timeout: 60, file: file, line: line)
        XCTAssertEqual(result.exitStatus, 0, result.summary, file: file, line: line)
        func value(_ key: String) throws -> UInt64 {
            guard let line = lines(of: result.stdout, startingWith: key + " ").last,
                  let number = UInt64(line.dropFirst(key.count + 1)) else {
                throw HarnessError(description: "no \(key) in the output:\n\(result.summary)")
            }
            return number
        }
        let masks = lines(of: result.stdout, startingWith: "sigblk ").compactMap { line -> (String, UInt64)? in
            let words = line.split(separator: " ")
            guard words.count == 3, let mask = UInt64(words[2], radix: 16) else { return nil }
            return (String(words[1]), mask)
        }
        return Report(afterFree: try value("rss_after_free"), afterIdle: try value("rss_after_idle"),
                      tasks: try value("tasks"), signalMasks: masks, stats: try Preload.allStats(in: statsDir),
                      summary: "\(mode) under \(frontEnd), idle_release_ms \(idleMilliseconds):\n\(result.summary)")
    }

    func testIdleProcessGivesItsMemoryBackUnderEveryFrontEnd() throws {
        for frontEnd in ["percpu", "thread", "arenas", "global"] {
            let on = try run("threads", frontEnd: frontEnd, idleMilliseconds: idleMilliseconds)
            XCTAssertGreaterThan(on.afterFree, idleBound, "the program frees too little to tell: \(on.summary)")
            XCTAssertLessThan(on.afterIdle, idleBound, on.summary)
            XCTAssertEqual(on.tasks, 2, "main and the idle-release thread: \(on.summary)")
            XCTAssertEqual(on.signalMasks.map(\.name).sorted(), ["idle_release", "swiftmalloc"], on.summary)
            let stats = try XCTUnwrap(on.stats.values.first, on.summary)
            XCTAssertGreaterThanOrEqual(Preload.number(stats, "idle_release_passes") ?? 0, 1, on.summary)
            XCTAssertGreaterThan(Preload.number(stats, "idle_released_bytes") ?? 0, 16 << 20, on.summary)

            let off = try run("threads", frontEnd: frontEnd, idleMilliseconds: 0)
            XCTAssertGreaterThan(off.afterIdle, idleBound, "nothing gives the memory back: \(off.summary)")
            XCTAssertEqual(off.tasks, 1, "no idle-release thread: \(off.summary)")
            let offStats = try XCTUnwrap(off.stats.values.first, off.summary)
            XCTAssertEqual(Preload.number(offStats, "idle_release_passes"), 0, off.summary)
        }
    }

    /// Signals meant for the program never land on the thread: it blocks
    /// every one that can be blocked (not SIGKILL and SIGSTOP, nor the two
    /// real-time signals glibc keeps for itself, 32 and 33).
    func testTheThreadIsNamedAndBlocksEverySignal() throws {
        let report = try run("threads", idleMilliseconds: idleMilliseconds)
        let thread = try XCTUnwrap(report.signalMasks.first { $0.name == "swiftmalloc" }, report.summary)
        let unblockable = [SIGKILL, SIGSTOP, 32, 33].reduce(UInt64(0)) { $0 | 1 << UInt64($1 - 1) }
        XCTAssertEqual(thread.blocked | unblockable, .max, String(thread.blocked, radix: 16) + "\n" + report.summary)
        let main = try XCTUnwrap(report.signalMasks.first { $0.name == "idle_release" }, report.summary)
        XCTAssertEqual(main.blocked, 0, "the program's own mask is untouched: \(report.summary)")
    }

    func testSingleThreadedProcessNeverGetsTheThread() throws {
        let report = try run("single", idleMilliseconds: idleMilliseconds)
        XCTAssertEqual(report.tasks, 1, report.summary)
        XCTAssertGreaterThan(report.afterIdle, idleBound, "no thread, so the memory stays: \(report.summary)")
        let stats = try XCTUnwrap(report.stats.values.first, report.summary)
        XCTAssertEqual(Preload.number(stats, "idle_release_passes"), 0, report.summary)
    }

    func testForkChildOfMultiThreadedParentGetsItsOwnIdleRelease() throws {
        let report = try run("fork", idleMilliseconds: idleMilliseconds)
        XCTAssertEqual(report.stats.count, 2, "parent and child write stats: \(report.summary)")
        XCTAssertGreaterThan(report.afterFree, idleBound, report.summary)
        XCTAssertLessThan(report.afterIdle, idleBound, "the child's memory: \(report.summary)")
        XCTAssertEqual(report.tasks, 2, "the child's main and its own idle-release thread: \(report.summary)")
    }

    /// The idle-release thread keeps glibc from ending the process when the
    /// program's last thread exits; the thread ends it instead, within its
    /// poll period (50 ms), not its release period, which is set long here.
    func testPthreadExitFromMainEndsPromptlyWithTheThreadRunning() throws {
        let program = try Preload.cProgram("pthread_exit_main")
        let period = 5_000
        let (result, _) = try Preload.runPreloaded([program, "main"],
                                                   environment: ["SWIFTMALLOC_IDLE_RELEASE_MS": String(period)],
                                                   timeout: 20)
        XCTAssertFalse(result.timedOut, result.summary)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        XCTAssertTrue(result.stdout.hasSuffix("main ends with pthread_exit\ndone\n"), result.summary)
        XCTAssertTrue(result.stderr.contains("threads 2\n"), "main and the idle-release thread: \(result.summary)")
        XCTAssertLessThan(result.duration, Double(period) / 2000, "it waited for a release period: \(result.summary)")
    }
}
