// Unit tests of the environment parsing (API/Configuration.swift).
import Foundation
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitConfigurationTests: XCTestCase {
    /// Runs `body` on a strdup'd (heap, NUL-terminated) copy of `text`.
    private func withCString<R>(_ text: String, _ body: (UnsafePointer<CChar>) -> R) -> R {
        let copy = strdup(text)!
        defer { free(copy) }
        return body(copy)
    }

    private func size(_ text: String) -> Int? { withCString(text) { Configuration.parseSize($0) } }
    private func frontEnd(_ text: String) -> FrontEndKind? { withCString(text) { Configuration.parseFrontEnd($0) } }

    func testParseSizeAcceptsDecimalAndSuffixes() {
        XCTAssertEqual(size("12"), 12)
        XCTAssertEqual(size("0"), 0)
        XCTAssertEqual(size("007"), 7)
        XCTAssertEqual(size("64K"), 64 << 10)
        XCTAssertEqual(size("64k"), 64 << 10)
        XCTAssertEqual(size("2M"), 2 << 20)
        XCTAssertEqual(size("2m"), 2 << 20)
        XCTAssertEqual(size("1G"), 1 << 30)
        XCTAssertEqual(size("3g"), 3 << 30)
        XCTAssertEqual(size("1536K"), 1536 << 10)
        XCTAssertEqual(size("9223372036854775807"), Int.max)
        XCTAssertEqual(size("8589934591G"), 8_589_934_591 << 30, "largest G value that fits")
        XCTAssertEqual(size("8796093022207M"), 8_796_093_022_207 << 20, "largest M value that fits")
    }

    func testParseSizeRejectsBadInput() {
        for bad in ["", "x", "K", "12Q", "12KB", "12 ", " 12", "-1", "+1", "1.5M", "1e6", "0x10", "12K ", "M12"] {
            XCTAssertNil(size(bad), "\"\(bad)\" should be rejected")
        }
    }

    func testParseSizeRejectsOverflow() {
        XCTAssertNil(size("9223372036854775808"), "Int.max + 1")
        XCTAssertNil(size("99999999999999999999"))
        XCTAssertNil(size("18446744073709551616"))
        XCTAssertNil(size("8589934592G"), "2^33 G = 2^63 overflows")
        XCTAssertNil(size("8796093022208M"), "2^43 M = 2^63 overflows")
        XCTAssertNil(size("9007199254740992K"), "2^53 K = 2^63 overflows")
        XCTAssertNil(size("9223372036854775807K"))
    }

    func testParseFrontEnd() {
        XCTAssertEqual(frontEnd("percpu"), .percpu)
        XCTAssertEqual(frontEnd("thread"), .thread)
        XCTAssertEqual(frontEnd("arenas"), .arenas)
        XCTAssertEqual(frontEnd("global"), .global)
        for bad in ["", "p", "perc", "percpu ", "percpux", "PERCPU", "Thread", "threads", "arena", "glob", "global\u{1}", "none"] {
            XCTAssertNil(frontEnd(bad), "\"\(bad)\" should not be a front end")
        }
    }

    func testFrontEndNames() {
        for kind in [FrontEndKind.percpu, .thread, .arenas, .global] {
            let name = kind.name.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
            XCTAssertEqual(frontEnd(name), kind, "name \(name) parses back")
        }
    }

    func testSettleFrontEnd() {
        var config = Configuration()
        config.settleFrontEnd(rseqAvailable: false)
        XCTAssertEqual(config.frontEnd, .thread, "default without rseq")
        config.settleFrontEnd(rseqAvailable: true)
        XCTAssertEqual(config.frontEnd, .percpu, "default with rseq")
        config.requestedFrontEnd = .percpu
        config.settleFrontEnd(rseqAvailable: false)
        XCTAssertEqual(config.frontEnd, .thread, "percpu falls back without rseq")
        config.requestedFrontEnd = .arenas
        config.settleFrontEnd(rseqAvailable: false)
        XCTAssertEqual(config.frontEnd, .arenas)
        config.requestedFrontEnd = .global
        config.settleFrontEnd(rseqAvailable: true)
        XCTAssertEqual(config.frontEnd, .global)
    }
}
