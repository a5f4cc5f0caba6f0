// Unit tests of the size-class table (Middle/SizeClasses.swift), on the table
// the heap builds at start-up in this test process.
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitSizeClassTests: XCTestCase {
    private var table: SizeClassTable { Heap.ensureInitialized().pointee.sizeClasses }

    /// Class sizes 1 ..< count (class 0 is "not small").
    private func classSizes() -> [Int] {
        let t = table
        return (1..<t.count).map { t.size(of: $0) }
    }

    func testClassSizesAreOrderedAndAligned() {
        let t = table
        let sizes = classSizes()
        XCTAssertGreaterThan(t.count, 2)
        XCTAssertLessThanOrEqual(t.count, SizeClassTable.maxClasses)
        XCTAssertEqual(sizes.first, 8, "the first class is 8 bytes")
        XCTAssertEqual(sizes.last, SizeClassTable.maxSize, "the last class is maxSize")
        for i in 1..<sizes.count {
            XCTAssertGreaterThan(sizes[i], sizes[i - 1], "class sizes must strictly increase (class \(i + 1))")
        }
        for (i, size) in sizes.enumerated() where size >= 16 {
            XCTAssertEqual(size % 16, 0, "class \(i + 1) (\(size) bytes) is not a multiple of 16")
        }
        // The class list matches the rules it is built from.
        var generated: [Int] = []
        SizeClassTable.forEachClassSize { generated.append($0) }
        XCTAssertEqual(generated, sizes)
    }

    /// free's object-start test (a multiply and a compare) agrees with `%`
    /// for every offset inside a span of every class, and for offsets past
    /// it up to 2^32 sampled.
    func testObjectStartTestAgreesWithRemainder() {
        let t = table
        var wrong: [String] = []
        for c in 1..<t.count {
            let size = t.size(of: c)
            let divisibility = SizeClassTable.divisibilityConstant(forSize: size)
            let spanBytes = Int(t.pages[c]) * Page.size
            var offsets = Array(0..<spanBytes)
            var x: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(c)
            for _ in 0..<4096 {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                offsets.append(Int(x & 0xFFFF_FFFF))
            }
            offsets.append(contentsOf: [0xFFFF_FFFF, 0xFFFF_FFFF - (0xFFFF_FFFF % size)])
            for offset in offsets where SizeClassTable.isMultiple(UInt(offset), divisibility: divisibility) != (offset % size == 0) {
                wrong.append("class \(c) (\(size) B), offset \(offset)")
                if wrong.count > 10 { break }
            }
        }
        XCTAssertEqual(wrong, [], "the multiply-and-compare test disagrees with %")
    }

    func testEverySizeMapsToSmallestFittingClass() {
        let t = table
        let sizes = classSizes()
        var mismatches: [String] = []
        var expected = 0   // index into sizes; sizes are ascending
        for size in 1...SizeClassTable.maxSize {
            while sizes[expected] < size { expected += 1 }
            // Brute force as well (cheap enough, and independent of the ascending order).
            let brute = sizes.enumerated().filter { $0.element >= size }.min { $0.element < $1.element }!.offset
            XCTAssertEqual(brute, expected)
            let got = t.sizeClass(for: size)
            if got != brute + 1 {
                if mismatches.count < 10 {
                    mismatches.append("size \(size): class \(got) (\(got < t.count ? t.size(of: got) : -1) B), expected \(brute + 1) (\(sizes[brute]) B)")
                }
            }
            if mismatches.count >= 10 { break }
        }
        XCTAssertEqual(mismatches, [], "sizeClass(for:) does not pick the smallest fitting class")
    }

    func testSizeZeroMapsToSmallestClass() {
        let t = table
        XCTAssertEqual(t.sizeClass(for: 0), 1)
        XCTAssertEqual(t.size(of: t.sizeClass(for: 0)), 8)
    }

    func testInternalWasteAbove128IsAtMostOneEighth() {
        let sizes = classSizes()
        for i in 1..<sizes.count where sizes[i] > 128 {
            let waste = Double(sizes[i] - (sizes[i - 1] + 1)) / Double(sizes[i])
            XCTAssertLessThanOrEqual(waste, 0.125, "class \(sizes[i]) after \(sizes[i - 1]) wastes \(waste)")
        }
    }

    func testSpanPagesAndBatchSizesAreSane() {
        let heap = Heap.ensureInitialized()
        let t = heap.pointee.sizeClasses
        for c in 1..<t.count {
            let size = t.size(of: c)
            let pages = Int(t.pages[c])
            let bytes = pages * t.spanPageSize
            XCTAssertGreaterThanOrEqual(pages, 1, "class \(c)")
            XCTAssertEqual(pages, SizeClassTable.spanPages(forSize: size, spanPageSize: t.spanPageSize),
                           "class \(c): pages fit in the byte table")
            XCTAssertGreaterThanOrEqual(bytes / size, 1, "class \(c) (\(size) B): a span holds no object")
            XCTAssertLessThanOrEqual((bytes % size) * 8, bytes, "class \(c) (\(size) B): tail waste over 1/8 of \(bytes) B")
            let fewest = size < SizeClassTable.fewObjectsFrom ? min(8 * size, 64 * 1024) : size
            XCTAssertGreaterThanOrEqual(bytes, fewest, "class \(c) (\(size) B): span too small")
            // From 1 KiB up, the fewest pages: one span page less would hold
            // no object, or waste more than 1/8 of itself.
            if size >= SizeClassTable.fewObjectsFrom && bytes > t.spanPageSize {
                let smaller = bytes - t.spanPageSize
                XCTAssertTrue(smaller < size || (smaller % size) * 8 > smaller,
                              "class \(c) (\(size) B): \(smaller) B would do")
            }
            let batch = Int(t.batch[c])
            XCTAssertGreaterThanOrEqual(batch, 2, "class \(c)")
            XCTAssertLessThanOrEqual(batch, 32, "class \(c)")
            XCTAssertEqual(Int(heap.pointee.middle.transfer[c].state.batchSize), batch, "class \(c): transfer cache batch")
            XCTAssertEqual(Int(heap.pointee.middle.central[c].state.objectSize), size, "class \(c): central list object size")
            XCTAssertEqual(Int(heap.pointee.middle.central[c].state.spanPages) << Page.shift, bytes,
                           "class \(c): central list span bytes")
        }
    }
}
