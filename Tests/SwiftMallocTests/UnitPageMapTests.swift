// Unit tests of the page map (BackEnd/PageMap.swift) on a standalone map with
// fake span records: nothing here touches the allocator's own heap.
import SwiftMallocShims
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitPageMapTests: XCTestCase {
    private var fakeSpans: [SpanRef] = []

    private func fakeSpan(first: UInt, count: UInt) -> SpanRef {
        let record = UnsafeMutablePointer<Span>.allocate(capacity: 1)
        record.initialize(to: Span(firstPage: first, pageCount: count))
        let span = SpanRef(record)
        fakeSpans.append(span)
        return span
    }

    override func tearDown() {
        for span in fakeSpans { span.record.deinitialize(count: 1); span.record.deallocate() }
        fakeSpans = []
        super.tearDown()
    }

    private let lastPage = (UInt(1) << UInt(PageMap.pageBits)) - 1

    func testGeometry() {
        XCTAssertEqual(PageMap.pageBits, 48 - Page.shift)
        XCTAssertEqual(PageMap.rootBits + PageMap.leafBits, PageMap.pageBits)
        XCTAssertEqual(PageMap.leafBytes % 4096, 0, "leaves are mapped whole")
    }

    func testSetAndLookupInFarApartLeaves() throws {
        var map = try XCTUnwrap(PageMap())
        let mappedAtStart = map.mappedBytes
        let low: UInt = 0x1234                                  // leaf 0
        let middle: UInt = (UInt(1) << 34) + 7                  // a leaf in the middle
        let high = lastPage - 3                                 // the last leaf (top of 47/48-bit space)
        let a = fakeSpan(first: low, count: 1)
        let b = fakeSpan(first: middle, count: 1)
        let c = fakeSpan(first: high, count: 1)

        // Nothing known yet, anywhere.
        for page in [low, middle, high] {
            XCTAssertNil(map.span(ofPage: page))
            XCTAssertEqual(map.sizeClass(ofPage: page), 0)
        }

        map.set(page: low, span: a, sizeClass: 7)
        XCTAssertEqual(map.mappedBytes, mappedAtStart + UInt(PageMap.leafBytes), "one leaf mapped")
        map.set(page: middle, span: b, sizeClass: 200)
        map.set(page: high, span: c)
        XCTAssertEqual(map.mappedBytes, mappedAtStart + 3 * UInt(PageMap.leafBytes), "three leaves mapped")
        // A second page in an existing leaf maps nothing new.
        map.set(page: low + 1, span: a, sizeClass: 7)
        XCTAssertEqual(map.mappedBytes, mappedAtStart + 3 * UInt(PageMap.leafBytes))

        XCTAssertEqual(map.span(ofPage: low), a)
        XCTAssertEqual(map.sizeClass(ofPage: low), 7)
        XCTAssertEqual(map.span(ofPage: middle), b)
        XCTAssertEqual(map.sizeClass(ofPage: middle), 200)
        XCTAssertEqual(map.span(ofPage: high), c)
        XCTAssertEqual(map.sizeClass(ofPage: high), 0)

        // Same slot in other leaves is independent (no aliasing between leaves).
        let lowSlotInHighLeaf = (high & ~UInt(PageMap.leafEntries - 1)) | (low & UInt(PageMap.leafEntries - 1))
        XCTAssertNil(map.span(ofPage: lowSlotInHighLeaf))
        XCTAssertEqual(map.sizeClass(ofPage: lowSlotInHighLeaf), 0)

        // Unknown pages: neighbours in a mapped leaf, and pages in leaves never mapped.
        for page: UInt in [low - 1, low + 2, middle + 1, middle - 1, high + 1, 1 << 30, 0] {
            XCTAssertNil(map.span(ofPage: page), "page \(page)")
            XCTAssertEqual(map.sizeClass(ofPage: page), 0, "page \(page)")
        }

        // Overwrite with another span and class.
        map.set(page: low, span: b, sizeClass: 3)
        XCTAssertEqual(map.span(ofPage: low), b)
        XCTAssertEqual(map.sizeClass(ofPage: low), 3)

        // The last representable page of the 48-bit space works.
        map.set(page: lastPage, span: c, sizeClass: 9)
        XCTAssertEqual(map.span(ofPage: lastPage), c)
        XCTAssertEqual(map.sizeClass(ofPage: lastPage), 9)

        // Address-based lookups (as free does).
        let address = Page.address(of: middle) + 4000
        XCTAssertEqual(map.span(ofPage: Page.number(of: address)), b)
    }

    func testClear() throws {
        var map = try XCTUnwrap(PageMap())
        let page: UInt = (UInt(1) << 33) + 99
        let s = fakeSpan(first: page, count: 1)
        map.set(page: page, span: s, sizeClass: 12)
        map.set(page: page + 1, span: s, sizeClass: 12)
        map.clear(page: page)
        XCTAssertNil(map.span(ofPage: page))
        XCTAssertEqual(map.sizeClass(ofPage: page), 0)
        XCTAssertEqual(map.span(ofPage: page + 1), s, "clearing one page leaves its neighbour")
        XCTAssertEqual(map.sizeClass(ofPage: page + 1), 12)
        // Clearing a page whose leaf was never mapped, or beyond the map, is harmless.
        let mapped = map.mappedBytes
        map.clear(page: 5)
        map.clear(page: lastPage + 1)
        map.clear(page: UInt.max)
        XCTAssertEqual(map.mappedBytes, mapped, "clear maps nothing")
        XCTAssertNil(map.span(ofPage: 5))
    }

    func testSetRangeAcrossLeafBoundaryAndSetEnds() throws {
        var map = try XCTUnwrap(PageMap())
        let boundary = UInt(PageMap.leafEntries) * 5
        let range = fakeSpan(first: boundary - 2, count: 5)     // two pages in one leaf, three in the next
        map.setRange(range, sizeClass: 42)
        for page in (boundary - 2)..<(boundary + 3) {
            XCTAssertEqual(map.span(ofPage: page), range, "page \(page)")
            XCTAssertEqual(map.sizeClass(ofPage: page), 42, "page \(page)")
        }
        XCTAssertNil(map.span(ofPage: boundary - 3))
        XCTAssertNil(map.span(ofPage: boundary + 3))
        XCTAssertEqual(map.sizeClass(ofPage: boundary + 3), 0)

        // Re-recording with class 0 (what freeSmallSpan does) keeps the span, drops the class.
        map.setRange(range, sizeClass: 0)
        for page in (boundary - 2)..<(boundary + 3) {
            XCTAssertEqual(map.span(ofPage: page), range)
            XCTAssertEqual(map.sizeClass(ofPage: page), 0)
        }

        let free = fakeSpan(first: 1 << 20, count: 10)
        map.setEnds(free)
        XCTAssertEqual(map.span(ofPage: free.firstPage), free)
        XCTAssertEqual(map.span(ofPage: free.lastPage), free)
        XCTAssertEqual(free.lastPage, (1 << 20) + 9)
        XCTAssertNil(map.span(ofPage: free.firstPage + 1), "setEnds records only the ends")
        XCTAssertEqual(map.sizeClass(ofPage: free.firstPage), 0)
    }

    func testAddressesBeyond48BitsAreUnknown() throws {
        var map = try XCTUnwrap(PageMap())
        // Fill the last leaf so that an out-of-range index could not hit an unmapped (nil) root entry by luck.
        let s = fakeSpan(first: lastPage, count: 1)
        map.set(page: lastPage, span: s, sizeClass: 5)
        map.set(page: 0, span: s, sizeClass: 5)
        for page: UInt in [lastPage + 1, UInt(1) << 36, Page.number(of: UInt(1) << 48), Page.number(of: UInt(1) << 63),
                           Page.number(of: UInt.max), UInt.max] {
            XCTAssertNil(map.span(ofPage: page), "page \(page)")
            XCTAssertEqual(map.sizeClass(ofPage: page), 0, "page \(page)")
        }
        // A high address whose page number wraps onto page 0's leaf index must still be unknown.
        let wrapped = (UInt(1) << UInt(PageMap.pageBits)) | 0   // leaf index == rootEntries
        XCTAssertNil(map.span(ofPage: wrapped))
    }

    /// The flat class map holds the tree's class for every page below 2^47
    /// through set, setRange, setEnds and clear, and nothing above.
    func testFlatClassMapFollowsTheTree() throws {
        var map = try XCTUnwrap(PageMap())
        XCTAssertNotNil(map.classMap, "the 32 GiB reserve (MAP_NORESERVE) is refused here")
        XCTAssertEqual(map.classMapCoverage, UInt(1) << 35)
        let topCovered = UInt(PageMap.classMapPages) - 1
        let boundary = UInt(PageMap.leafEntries) * 3
        let small = fakeSpan(first: boundary - 1, count: 3)
        let top = fakeSpan(first: topCovered, count: 1)
        let above = fakeSpan(first: topCovered + 1, count: 1)
        func expectAgreement(_ pages: [UInt], line: UInt = #line) {
            for page in pages {
                XCTAssertEqual(map.flatClass(ofPage: page), map.sizeClass(ofPage: page), "page \(page)", line: line)
            }
        }
        let watched = [boundary - 2, boundary - 1, boundary, boundary + 1, boundary + 2, topCovered, 0]

        map.setRange(small, sizeClass: 17)
        map.set(page: topCovered, span: top, sizeClass: 4)
        expectAgreement(watched)
        XCTAssertEqual(map.flatClass(ofPage: boundary + 1), 17)
        XCTAssertEqual(map.flatClass(ofPage: topCovered), 4)

        // Pages above 2^47 live in the tree only; the flat map has no byte for them.
        map.set(page: topCovered + 1, span: above, sizeClass: 9)
        XCTAssertEqual(map.sizeClass(ofPage: topCovered + 1), 9)
        XCTAssertNil(map.flatClass(ofPage: topCovered + 1))
        XCTAssertNil(map.flatClass(ofPage: UInt.max))

        // Given back to the page heap (class 0, span kept), then forgotten.
        map.setRange(small, sizeClass: 0)
        expectAgreement(watched)
        XCTAssertEqual(map.flatClass(ofPage: boundary), 0)
        map.setRange(small, sizeClass: 23)
        map.clear(page: boundary)
        expectAgreement(watched)
        XCTAssertEqual(map.flatClass(ofPage: boundary), 0)
        XCTAssertEqual(map.flatClass(ofPage: boundary + 1), 23)
        map.setEnds(small)
        expectAgreement(watched)
        XCTAssertEqual(map.flatClass(ofPage: boundary - 1), 0, "a free span's ends have no class")

        // free's own reading of a classified page: the span from the tree.
        XCTAssertEqual(PageMap.span(root: map.root, ofClassifiedPage: boundary + 1), small)
    }

    /// Without the flat class map (the OS refused the reserve) the tree
    /// works alone and free's fast lookup covers no page.
    func testMapWithoutFlatClassMap() throws {
        var map = try XCTUnwrap(PageMap(flatClassMap: false))
        XCTAssertNil(map.classMap)
        XCTAssertEqual(map.classMapCoverage, 0)
        let page: UInt = 0x4321
        let s = fakeSpan(first: page, count: 1)
        map.set(page: page, span: s, sizeClass: 11)
        XCTAssertEqual(map.sizeClass(ofPage: page), 11)
        XCTAssertEqual(map.span(ofPage: page), s)
        XCTAssertNil(map.flatClass(ofPage: page))
        map.clear(page: page)
        XCTAssertEqual(map.sizeClass(ofPage: page), 0)
    }

    func testRealHeapPageMapSharesTheTreeWithThePageHeap() {
        let heap = Heap.ensureInitialized()
        XCTAssertEqual(heap.pointee.pageMap.root, heap.pointee.pageHeap.pointee.state.pageMap.root,
                       "Heap.pageMap must be a copy of the page heap's map (same tree)")
        let fast = sm_fast_get().unsafelyUnwrapped.pointee
        XCTAssertEqual(fast.class_map_pages, heap.pointee.pageMap.classMapCoverage, "free reads the map the heap writes")
        XCTAssertEqual(UnsafeRawPointer(fast.class_map), UnsafeRawPointer(heap.pointee.pageMap.classMap))
    }
}
