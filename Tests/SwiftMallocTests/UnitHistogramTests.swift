// Unit tests of the allocation histogram's bucket layout
// (FrontEnds/AllocationHistogram.swift).
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitHistogramTests: XCTestCase {
    typealias H = AllocationHistogram

    func testBucketsAreContiguousAndCoverEverySize() {
        XCTAssertEqual(H.bounds(of: 0).min, 0, "the first bucket starts at 0")
        for b in 1..<H.bucketCount {
            XCTAssertEqual(H.bounds(of: b).min, H.bounds(of: b - 1).max + 1, "bucket \(b) does not start where \(b - 1) ends")
            XCTAssertLessThanOrEqual(H.bounds(of: b).min, H.bounds(of: b).max, "bucket \(b) is empty")
        }
        XCTAssertEqual(H.bounds(of: H.bucketCount - 1).max, UInt64.max, "the last bucket ends at the largest size")
    }

    func testBucketWidths() {
        XCTAssertEqual(H.bounds(of: 0).min, 0)
        XCTAssertEqual(H.bounds(of: 0).max, 8)
        // 8-byte steps up to 1 KiB.
        for b in 1..<128 {
            XCTAssertEqual(H.bounds(of: b).max - H.bounds(of: b).min + 1, 8, "bucket \(b)")
        }
        XCTAssertEqual(H.bounds(of: 127).max, 1024)
        // Above, 16 buckets per power of two.
        var power: UInt64 = 1024
        var b = 128
        while b < H.bucketCount {
            XCTAssertEqual(H.bounds(of: b).min, power + 1, "bucket \(b) starts a power of two")
            for j in 0..<16 {
                let bounds = H.bounds(of: b + j)
                // The last one stops at UInt64.max, one short of 2^64.
                let width = b + j == H.bucketCount - 1 ? power / 16 - 1 : power / 16
                XCTAssertEqual(bounds.max - bounds.min + 1, width, "bucket \(b + j)")
            }
            b += 16
            power = power &* 2
        }
    }

    /// Every size lands in the bucket whose bounds hold it: every size up to
    /// 64 KiB, and around every bucket's bounds above.
    func testEverySizeMapsToTheBucketThatHoldsIt() {
        func check(_ size: UInt) {
            let b = H.bucket(for: size)
            XCTAssert(b >= 0 && b < H.bucketCount, "size \(size): bucket \(b) out of range")
            guard b >= 0 && b < H.bucketCount else { return }
            let bounds = H.bounds(of: b)
            XCTAssert(bounds.min <= UInt64(size) && UInt64(size) <= bounds.max,
                      "size \(size) went to bucket \(b) [\(bounds.min), \(bounds.max)]")
        }
        for size in 0...UInt(65536) { check(size) }
        for b in 0..<H.bucketCount {
            let bounds = H.bounds(of: b)
            for size in [bounds.min, bounds.min &+ 1, bounds.max &- 1, bounds.max] where size >= bounds.min && size <= bounds.max {
                check(UInt(size))
                XCTAssertEqual(H.bucket(for: UInt(size)), b, "size \(size)")
            }
        }
        check(UInt.max)
    }

    func testRecordSumsAndCounts() {
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: H.wordCount)
        defer { words.deallocate() }
        let h = H(base: words)
        h.clear()
        h.record(requested: 0, handedOut: 8)
        h.record(requested: 777, handedOut: 896)
        h.record(requested: 780, handedOut: 896)
        XCTAssertEqual(h.requestedBytes, 1557)
        XCTAssertEqual(h.handedOutBytes, 1800)
        XCTAssertEqual(h.count(0), 1)
        XCTAssertEqual(h.count(H.bucket(for: 777)), 2)
        XCTAssertEqual((0..<H.bucketCount).reduce(0) { $0 + h.count($1) }, 3)
    }
}
