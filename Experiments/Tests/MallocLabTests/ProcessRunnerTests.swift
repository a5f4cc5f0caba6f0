// ProcessRunner (over swift-subprocess): exit status, death by a signal,
// the time limit, captured output and the environment a child gets.
import Foundation
import XCTest
@testable import MallocLabCore

final class ProcessRunnerTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = try Fixtures.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    func sh(_ script: String, timeout: Double = 30, environment: [String: String] = ProcessRunner.cleanEnvironment()) throws -> ProcessOutcome {
        try ProcessRunner.run(executable: "/bin/sh", arguments: ["-c", script], environment: environment,
                              scratch: scratch, timeout: timeout)
    }

    func testExitStatusAndBothStreamsAreCaptured() throws {
        let o = try sh("echo to-stdout; echo to-stderr >&2; exit 3")
        XCTAssertEqual(o.exitStatus, 3)
        XCTAssertNil(o.signal)
        XCTAssertFalse(o.timedOut)
        XCTAssertFalse(o.succeeded)
        XCTAssertEqual(o.stdout, "to-stdout\n")
        XCTAssertEqual(o.stderr, "to-stderr\n")
        let ok = try sh("printf 'a\\nb'")
        XCTAssertTrue(ok.succeeded)
        XCTAssertEqual(ok.stdout, "a\nb")
    }

    func testOutputLargerThanAPipeBufferIsKeptWhole() throws {
        // 1 MiB: more than a pipe holds, so the child would block on a pipe nobody reads.
        let o = try sh("head -c 1048576 /dev/zero | tr '\\0' x")
        XCTAssertTrue(o.succeeded)
        XCTAssertEqual(o.stdout.utf8.count, 1 << 20)
    }

    func testDeathBySignalIsReportedAsTheSignal() throws {
        let o = try sh("echo before; kill -SEGV $$")
        XCTAssertEqual(o.signal, SIGSEGV)
        XCTAssertNil(o.exitStatus)
        XCTAssertFalse(o.timedOut)
        XCTAssertEqual(o.stdout, "before\n")
        XCTAssertEqual(ProcessRunner.signalName(o.signal!), "SIGSEGV")
    }

    func testTimeLimitStopsTheChildAndKeepsWhatItPrinted() throws {
        let o = try sh("echo started; echo on-stderr >&2; exec sleep 30", timeout: 0.5)
        XCTAssertTrue(o.timedOut)
        XCTAssertFalse(o.succeeded)
        XCTAssertNil(o.exitStatus)
        XCTAssertLessThan(o.seconds, 10)
        XCTAssertGreaterThanOrEqual(o.seconds, 0.5)
        XCTAssertEqual(o.stdout, "started\n")
        XCTAssertEqual(o.stderr, "on-stderr\n")
    }

    func testAChildIgnoringTermIsKilled() throws {
        // TERM first, then KILL two seconds later.
        let o = try sh("trap '' TERM; echo waiting; while :; do sleep 1; done", timeout: 0.5)
        XCTAssertTrue(o.timedOut)
        XCTAssertLessThan(o.seconds, 10)
        if let s = o.signal { XCTAssertEqual(s, SIGKILL) }
        XCTAssertEqual(o.stdout, "waiting\n")
    }

    func testTheChildGetsExactlyTheEnvironmentGiven() throws {
        let o = try ProcessRunner.run(executable: "/usr/bin/env", arguments: [], environment: ["ONLY_THIS": "1 2"],
                                      scratch: scratch, timeout: 10)
        XCTAssertEqual(o.stdout, "ONLY_THIS=1 2\n")
    }

    func testAMissingExecutableThrowsAClearError() {
        XCTAssertThrowsError(try ProcessRunner.run(executable: "/nonexistent/program", arguments: [], environment: [:],
                                                   scratch: scratch, timeout: 10)) { error in
            XCTAssertTrue("\(error)".contains("cannot start /nonexistent/program"), "\(error)")
        }
    }

    func testAVisibleRunReturnsTheStatusOrTheSignal() throws {
        let marker = scratch.appendingPathComponent("ran").path
        XCTAssertEqual(try ProcessRunner.runVisible(executable: "/bin/sh", arguments: ["-c", "touch \"$MARK\"; exit 4"],
                                                    environment: ["MARK": marker]), 4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: marker))
        XCTAssertEqual(try ProcessRunner.runVisible(executable: "/bin/sh", arguments: ["-c", "kill -KILL $$"],
                                                    environment: [:]), 128 + SIGKILL)
    }

    func testNoOutputFilesAreLeftBehind() throws {
        _ = try sh("echo x")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])
    }
}
