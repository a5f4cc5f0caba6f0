// Unit tests of the middle (Middle/Middle.swift, CentralFreeList.swift,
// TransferCache.swift): batches out of and back into the central lists and
// transfer caches of the real heap in this test process.
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitMiddleTests: XCTestCase {
    private var heap: UnsafeMutablePointer<Heap> { Heap.ensureInitialized() }

    /// The objects of a NULL-terminated chain, checking its length.
    private func objects(of chain: ObjectPointer?, count: UInt32, file: StaticString = #filePath, line: UInt = #line) -> [ObjectPointer] {
        var result: [ObjectPointer] = []
        var cursor = chain
        while let object = cursor, result.count <= Int(count) {
            result.append(object)
            cursor = object.nextFree
        }
        XCTAssertEqual(result.count, Int(count), "chain length", file: file, line: line)
        return result
    }

    /// Links `objects` into a NULL-terminated chain.
    private func chain(_ objects: [ObjectPointer]) -> ObjectPointer? {
        var head: ObjectPointer? = nil
        for object in objects.reversed() {
            object.nextFree = head
            head = object
        }
        return head
    }

    /// Checks that every object is a distinct, properly placed object of `sizeClass`.
    private func checkObjects(_ objects: [ObjectPointer], sizeClass c: Int, file: StaticString = #filePath, line: UInt = #line) {
        let h = heap
        let size = UInt(h.pointee.sizeClasses.size(of: c))
        var seen = Set<UInt>()
        for object in objects {
            let address = UInt(bitPattern: object)
            XCTAssertTrue(seen.insert(address).inserted, "object \(address) handed out twice", file: file, line: line)
            let page = Page.number(of: address)
            XCTAssertEqual(Int(h.pointee.pageMap.sizeClass(ofPage: page)), c, "page map class", file: file, line: line)
            guard let span = h.pointee.pageMap.span(ofPage: page) else {
                XCTFail("object \(address) has no span", file: file, line: line)
                continue
            }
            XCTAssertEqual(span.pointee.state, .small, file: file, line: line)
            XCTAssertEqual(Int(span.pointee.sizeClass), c, file: file, line: line)
            XCTAssertTrue(span.pointee.contains(page: page), file: file, line: line)
            let offset = address - span.pointee.startAddress
            XCTAssertEqual(offset % size, 0, "object \(address) not at a multiple of \(size) from its span", file: file, line: line)
            XCTAssertLessThanOrEqual(offset + size, span.pointee.byteCount, "object runs past its span", file: file, line: line)
        }
        // Objects do not overlap (distinct starts at multiples of the size within spans imply it; check directly).
        let sorted = objects.map { UInt(bitPattern: $0) }.sorted()
        for i in sorted.indices.dropFirst() {
            XCTAssertGreaterThanOrEqual(sorted[i] - sorted[i - 1], size, "objects overlap", file: file, line: line)
        }
    }

    /// Empties the front end's caches and the transfer caches so that the
    /// central lists hold only what is really in use.
    private func settle() {
        _ = Allocator.releaseFreeMemory()
    }

    private func liveObjects(_ spans: [UnsafeMutablePointer<Span>]) -> [UInt32] {
        spans.map { $0.pointee.liveObjects }
    }

    private func runBatchCycle(size: Int) throws {
        let h = heap
        let c = h.pointee.sizeClasses.sizeClass(for: size)
        let batch = UInt32(h.pointee.sizeClasses.batch[c])
        let transfer = h.pointee.transfer + c
        let central = h.pointee.central + c
        settle()
        XCTAssertEqual(transfer.pointee.used, 0, "class \(c): transfer cache empty after the drain")
        let spansBefore = central.pointee.spans
        let usedBefore = transfer.pointee.used

        // Two batches out.
        let (head1, n1) = Middle.fetch(c, count: batch)
        XCTAssertEqual(n1, batch, "class \(c): a full batch")
        let first = objects(of: head1, count: n1)
        let (head2, n2) = Middle.fetch(c, count: batch)
        XCTAssertEqual(n2, batch)
        let second = objects(of: head2, count: n2)
        checkObjects(first + second, sizeClass: c)
        if spansBefore == 0 { XCTAssertGreaterThan(central.pointee.spans, 0, "class \(c): new spans were carved") }
        // The objects are writable memory of the class size.
        for object in first + second {
            object.initializeMemory(as: UInt8.self, repeating: 0xAB, count: h.pointee.sizeClasses.size(of: c))
        }

        // A full batch is parked in the transfer cache; the central list does not see it.
        let spansOfFirst = first.map { h.pointee.pageMap.span(ofPage: Page.number(of: UInt(bitPattern: $0)))! }
        let liveBefore = liveObjects(spansOfFirst)
        Middle.release(c, chain: chain(first)!, count: batch)
        XCTAssertEqual(transfer.pointee.used, usedBefore + 1, "class \(c): a full batch goes to the transfer cache")
        XCTAssertEqual(liveObjects(spansOfFirst), liveBefore, "class \(c): the central list saw a parked batch")

        // A partial batch (and a single object) go to the central list.
        let spansOfSecond = second.map { h.pointee.pageMap.span(ofPage: Page.number(of: UInt(bitPattern: $0)))! }
        var expectedLive: [UnsafeMutablePointer<Span>: UInt32] = [:]
        for span in spansOfSecond { expectedLive[span] = span.pointee.liveObjects }
        for span in spansOfSecond { expectedLive[span]! -= 1 }
        let partial = Array(second.dropLast())
        Middle.release(c, chain: chain(partial)!, count: UInt32(partial.count))
        XCTAssertEqual(transfer.pointee.used, usedBefore + 1, "class \(c): a partial batch does not go to the transfer cache")
        Middle.release(c, chain: chain([second.last!])!, count: 1)
        XCTAssertEqual(transfer.pointee.used, usedBefore + 1)
        for (span, live) in expectedLive {
            // Objects of the second batch are back in their spans (or the span, all home, went to the page heap).
            if live == 0 {
                XCTAssertNotEqual(span.pointee.state, .small, "class \(c): a span with every object home stays with the central list")
            } else {
                XCTAssertEqual(span.pointee.state, .small)
                XCTAssertEqual(span.pointee.liveObjects, live, "class \(c): central list took the partial batch back")
                XCTAssertTrue(span.pointee.inPartialList, "class \(c): span with free objects is in the partial list")
            }
        }

        // Fetch again: a full batch comes back from the transfer cache (the same chain).
        let (head3, n3) = Middle.fetch(c, count: batch)
        XCTAssertEqual(n3, batch)
        XCTAssertEqual(transfer.pointee.used, usedBefore, "class \(c): the parked batch was taken")
        let third = objects(of: head3, count: n3)
        XCTAssertEqual(Set(third.map { UInt(bitPattern: $0) }), Set(first.map { UInt(bitPattern: $0) }),
                       "class \(c): the parked batch comes back whole")
        checkObjects(third, sizeClass: c)
        Middle.release(c, chain: chain(third)!, count: batch)
        XCTAssertEqual(transfer.pointee.used, usedBefore + 1)

        // Everything home: the transfer cache drains into the central list and its spans go back.
        Middle.drainTransferCaches()
        XCTAssertEqual(transfer.pointee.used, 0)
        XCTAssertEqual(central.pointee.spans, spansBefore, "class \(c): spans went back to the page heap")
        for span in Set(spansOfFirst + spansOfSecond) where span.pointee.state == .small {
            // Only spans that were there before may remain, and those never hold our objects as live.
            XCTAssertGreaterThan(spansBefore, 0, "class \(c): a span of ours stayed small")
        }
    }

    func testBatchCycleSmallClasses() throws {
        for size in [8, 16, 48, 128, 144] { try runBatchCycle(size: size) }
    }

    func testBatchCycleMediumClasses() throws {
        for size in [1000, 1024, 3000, 4096] { try runBatchCycle(size: size) }
    }

    func testBatchCycleLargeClasses() throws {
        for size in [9000, 20000, 28672, 32768] { try runBatchCycle(size: size) }
    }

    func testFetchLessThanABatchComesFromTheCentralList() {
        let h = heap
        let c = h.pointee.sizeClasses.sizeClass(for: 208)
        let batch = UInt32(h.pointee.sizeClasses.batch[c])
        settle()
        let spansBefore = h.pointee.central[c].spans
        // Park one batch, then ask for fewer: the transfer cache is not touched.
        let (full, n) = Middle.fetch(c, count: batch)
        XCTAssertEqual(n, batch)
        Middle.release(c, chain: full!, count: n)
        let used = h.pointee.transfer[c].used
        XCTAssertEqual(used, 1)
        let (few, m) = Middle.fetch(c, count: 3)
        XCTAssertEqual(m, 3)
        XCTAssertEqual(h.pointee.transfer[c].used, used, "a partial fetch leaves the transfer cache alone")
        checkObjects(objects(of: few, count: m), sizeClass: c)
        Middle.release(c, chain: few!, count: m)
        Middle.drainTransferCaches()
        XCTAssertEqual(h.pointee.central[c].spans, spansBefore)
    }

    func testManyBatchesSpanMultipleSpans() {
        // More objects than one span holds: several spans, all distinct objects, all returned.
        let h = heap
        let c = h.pointee.sizeClasses.sizeClass(for: 2048)
        let batch = UInt32(h.pointee.sizeClasses.batch[c])
        let perSpan = Int(h.pointee.sizeClasses.pages[c]) * Page.size / h.pointee.sizeClasses.size(of: c)
        settle()
        let spansBefore = h.pointee.central[c].spans
        var all: [ObjectPointer] = []
        var chains: [(ObjectPointer, UInt32)] = []
        while all.count < 3 * perSpan + 1 {
            let (head, n) = Middle.fetch(c, count: batch)
            XCTAssertEqual(n, batch)
            guard let head else { break }
            chains.append((head, n))
            all += objects(of: head, count: n)
        }
        checkObjects(all, sizeClass: c)
        XCTAssertGreaterThanOrEqual(Int(h.pointee.central[c].spans - spansBefore), 4)
        for (head, n) in chains { Middle.release(c, chain: head, count: n) }
        XCTAssertLessThanOrEqual(h.pointee.transfer[c].used, h.pointee.transfer[c].capacity)
        Middle.drainTransferCaches()
        XCTAssertEqual(h.pointee.transfer[c].used, 0)
        XCTAssertEqual(h.pointee.central[c].spans, spansBefore)
    }
}
