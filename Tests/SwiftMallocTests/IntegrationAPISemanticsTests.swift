// The C semantics of the malloc family, checked by a C program run under
// LD_PRELOAD=libSwiftMalloc.so (Tests/CPrograms/api_semantics.c), and the
// process-stopping checks on invalid frees (Tests/CPrograms/invalid_free.c).
import Foundation
import XCTest

final class IntegrationAPISemanticsTests: XCTestCase {
    /// Runs api_semantics under the library (with SWIFTMALLOC_FRONTEND set
    /// when `frontend` is given) and asserts that every check passed.
    /// Returns the front end the program reports.
    @discardableResult
    private func assertAPISemantics(frontend: String?, file: StaticString = #filePath, line: UInt = #line) throws
        -> String?
    {
        let program = try Preload.cProgram("api_semantics", file: file, line: line)
        let env = frontend.map { ["SWIFTMALLOC_FRONTEND": $0] } ?? [:]
        let (result, statsDir) = try Preload.runPreloaded([program], environment: env, timeout: 180,
                                                          file: file, line: line)
        XCTAssertFalse(result.timedOut, result.summary, file: file, line: line)
        XCTAssertNil(result.signal, "api_semantics crashed:\n\(result.summary)", file: file, line: line)
        let failures = lines(of: result.stdout, startingWith: "FAIL")
        XCTAssertEqual(failures, [], "semantic checks failed under the library (front end \(frontend ?? "default")):\n"
                       + failures.joined(separator: "\n"), file: file, line: line)
        XCTAssertEqual(result.exitStatus, 0, result.summary, file: file, line: line)

        // The summary line proves the program ran to the end, under the library.
        guard let summary = lines(of: result.stdout, startingWith: "checks:").last else {
            XCTFail("no summary line:\n\(result.summary)", file: file, line: line)
            return nil
        }
        XCTAssertEqual(field("failures", in: summary), 0, summary, file: file, line: line)
        XCTAssertGreaterThan(field("checks", in: summary) ?? 0, 20_000, "too few checks ran: \(summary)",
                             file: file, line: line)
        XCTAssertTrue(summary.contains("preloaded: yes"), "the library was not preloaded: \(summary)",
                      file: file, line: line)

        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertGreaterThan(Preload.number(stats, "allocations") ?? 0, 10_000, "\(stats)", file: file, line: line)
        XCTAssertGreaterThan(Preload.number(stats, "large_allocations") ?? 0, 0, "\(stats)", file: file, line: line)
        let reported = summary.components(separatedBy: "frontend: ").last
        XCTAssertEqual(stats["frontend"] as? String, reported, summary, file: file, line: line)
        return reported
    }

    func testCAPISemanticsUnderPreload() throws {
        try assertAPISemantics(frontend: nil)
    }

    /// The same semantics whichever front end serves the small sizes.
    func testCAPISemanticsUnderEveryFrontEnd() throws {
        for frontend in ["percpu", "thread", "arenas", "global"] {
            let used = try assertAPISemantics(frontend: frontend)
            if used != frontend {
                print("note: front end \(frontend) not available here; the library used \(used ?? "?")")
            }
        }
    }

    // MARK: invalid frees stop the process

    /// Runs invalid_free in `mode`, passing its pointer to `call` (free,
    /// realloc or usable: malloc_usable_size), and checks it died of SIGABRT
    /// with the library's message naming exactly the address it printed, as
    /// the only thing on stderr (no crash report after it).
    private func assertInvalidFreeAborts(_ mode: String, call: String = "free", frontEnd: String? = nil,
                                         message: String = "invalid pointer",
                                         file: StaticString = #filePath, line: UInt = #line) throws {
        let program = try Preload.cProgram("invalid_free", file: file, line: line)
        let lib = try Preload.library(file: file, line: line)
        let environment = frontEnd.map { ["SWIFTMALLOC_FRONTEND": $0] } ?? [:]
        let result = try Preload.run([program, mode, call], preload: lib, environment: environment, timeout: 60)
        let what = "\(mode), \(call)\(frontEnd.map { ", " + $0 } ?? "")"
        XCTAssertFalse(result.timedOut, result.summary, file: file, line: line)
        XCTAssertFalse(result.stdout.contains("free returned"),
                       "\(call) of an invalid pointer (\(what)) returned:\n\(result.summary)", file: file, line: line)
        XCTAssertEqual(result.signal, SIGABRT, "expected death by SIGABRT (\(what)):\n\(result.summary)",
                       file: file, line: line)
        XCTAssertNil(result.exitStatus, result.summary, file: file, line: line)

        guard let addressLine = lines(of: result.stdout, startingWith: "address 0x").first else {
            return XCTFail("program printed no address:\n\(result.summary)", file: file, line: line)
        }
        let address = String(addressLine.dropFirst("address ".count))
        guard let printed = UInt(address.dropFirst(2), radix: 16) else {
            return XCTFail("bad address line \(addressLine)", file: file, line: line)
        }
        let function = ["free": "free()", "realloc": "realloc()", "usable": "malloc_usable_size()"][call] ?? call
        let prefix = "swiftmalloc: \(function): \(message) 0x"
        guard let range = result.stderr.range(of: prefix) else {
            return XCTFail("stderr lacks \"\(prefix)\" (\(what)):\n\(result.summary)", file: file, line: line)
        }
        let hex = result.stderr[range.upperBound...].prefix { $0.isHexDigit }
        XCTAssertEqual(UInt(hex, radix: 16), printed,
                       "message names 0x\(hex), the freed pointer was \(address) (\(what))", file: file, line: line)
        // Exactly the address, in lowercase hex without padding, then end of
        // line; and that line is the whole of stderr.
        XCTAssertEqual(result.stderr, prefix + address.dropFirst(2) + "\n",
                       "stderr is not just the line \"\(prefix)\(address.dropFirst(2))\" (\(what))", file: file, line: line)
    }

    /// free(p); free(p): the second free finds p on top of the list it goes
    /// to (the thread's or CPU's cache, an arena's, or the span's free list
    /// for the global front end) and stops the process instead of caching
    /// p twice, which would hand it out to two callers.
    func testImmediateDoubleFreeAbortsUnderEveryFrontEnd() throws {
        for frontEnd in ["percpu", "thread", "arenas", "global"] {
            try assertInvalidFreeAborts("double", frontEnd: frontEnd, message: "double free")
        }
    }

    func testSecondFreeOfALargeBlockKeptMappedAborts() throws {
        try assertInvalidFreeAborts("freed-large")
    }

    func testFreeOfStackAddressAborts() throws {
        try assertInvalidFreeAborts("stack")
    }

    func testFreeOfPointerIntoMiddleOfLargeBlockAborts() throws {
        try assertInvalidFreeAborts("large-interior")
    }

    func testFreeOfSeparateMmapAborts() throws {
        try assertInvalidFreeAborts("mmap")
        try assertInvalidFreeAborts("mmap-interior")
    }

    /// A pointer into a small block (16 bytes in, or 1 byte in) is no block
    /// the allocator returned: free, realloc and malloc_usable_size stop the
    /// process instead of letting the cache hand it out again overlapping
    /// the live block, whichever front end serves the thread.
    func testPointersInsideSmallBlocksAbort() throws {
        for frontEnd in ["percpu", "thread", "arenas", "global"] {
            try assertInvalidFreeAborts("small-interior", frontEnd: frontEnd)
            try assertInvalidFreeAborts("small-misaligned", frontEnd: frontEnd)
        }
        // Where an object would start, but past the span's last one.
        try assertInvalidFreeAborts("small-slack")
        for call in ["realloc", "usable"] {
            try assertInvalidFreeAborts("small-interior", call: call)
            try assertInvalidFreeAborts("small-misaligned", call: call)
            try assertInvalidFreeAborts("stack", call: call)
        }
    }
}

/// A process ends when its last thread ends, with or without the library:
/// nothing the library starts (a helper thread, for instance) may keep it
/// alive. Tests/CPrograms/pthread_exit_main.c.
final class IntegrationProcessExitTests: XCTestCase {
    private func assertExits(_ mode: String, expecting lastLines: [String],
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let program = try Preload.cProgram("pthread_exit_main", file: file, line: line)
        // Without the library first: the program itself is right.
        let baseline = try Preload.run([program, mode], timeout: 20)
        XCTAssertEqual(baseline.exitStatus, 0, "without the library:\n\(baseline.summary)", file: file, line: line)
        let (result, _) = try Preload.runPreloaded([program, mode], timeout: 20, file: file, line: line)
        guard !result.timedOut else {
            return XCTFail("the process did not exit after its last thread called pthread_exit (\(mode)):\n"
                           + result.summary, file: file, line: line)
        }
        XCTAssertEqual(result.exitStatus, 0, result.summary, file: file, line: line)
        XCTAssertEqual(result.stdout, baseline.stdout, file: file, line: line)
        for expected in lastLines {
            XCTAssertTrue(result.stdout.contains(expected + "\n"), "missing \"\(expected)\":\n\(result.summary)",
                          file: file, line: line)
        }
    }

    func testProcessExitsWhenMainThreadCallsPthreadExit() throws {
        try assertExits("main", expecting: ["main ends with pthread_exit", "done"])
    }

    /// CPython's test_threading ThreadJoinOnShutdown.test_3_join_in_forked_from_thread does this.
    func testForkedChildExitsWhenItsOnlyThreadCallsPthreadExit() throws {
        try assertExits("fork-from-thread", expecting: ["child exit status 0", "done"])
    }
}
