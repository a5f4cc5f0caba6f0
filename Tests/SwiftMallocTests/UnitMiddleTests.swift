// Unit tests of the middle (Middle/Middle.swift, CentralFreeList.swift,
// TransferCache.swift): batches out of and back into the central lists and
// transfer caches of a middle of the test's own, over a page heap of its
// own (PrivateHeap), and a central list over a stub back end (StubSpans).
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitMiddleTests: XCTestCase {
    private let heap = PrivateHeap()

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
        let size = UInt(h.table.size(of: c))
        var seen = Set<UInt>()
        for object in objects {
            let address = UInt(bitPattern: object)
            XCTAssertTrue(seen.insert(address).inserted, "object \(address) handed out twice", file: file, line: line)
            let page = Page.number(of: address)
            XCTAssertEqual(Int(h.pageMap.sizeClass(ofPage: page)), c, "page map class", file: file, line: line)
            guard let span = h.pageMap.span(ofPage: page) else {
                XCTFail("object \(address) has no span", file: file, line: line)
                continue
            }
            XCTAssertEqual(span.state, .small, file: file, line: line)
            XCTAssertEqual(Int(span.sizeClass), c, file: file, line: line)
            XCTAssertTrue(span.contains(page: page), file: file, line: line)
            let offset = address - span.startAddress
            XCTAssertEqual(offset % size, 0, "object \(address) not at a multiple of \(size) from its span", file: file, line: line)
            XCTAssertLessThanOrEqual(offset + size, span.byteCount, "object runs past its span", file: file, line: line)
        }
        // Objects do not overlap (distinct starts at multiples of the size within spans imply it; check directly).
        let sorted = objects.map { UInt(bitPattern: $0) }.sorted()
        for i in sorted.indices.dropFirst() {
            XCTAssertGreaterThanOrEqual(sorted[i] - sorted[i - 1], size, "objects overlap", file: file, line: line)
        }
    }

    private func liveObjects(_ spans: [SpanRef]) -> [UInt32] {
        spans.map { $0.liveObjects }
    }

    private func runBatchCycle(size: Int) throws {
        let h = heap
        let c = h.table.sizeClass(for: size)
        let batch = UInt32(h.table.batch[c])
        let transfer = h.middle.transfer + c
        let central = h.middle.central + c
        XCTAssertEqual(transfer.pointee.state.used, 0, "class \(c): transfer cache empty after the drain")
        let spansBefore = central.pointee.state.spanCount
        let usedBefore = transfer.pointee.state.used

        // Two batches out.
        let (head1, n1) = h.middle.fetch(c, count: batch)
        XCTAssertEqual(n1, batch, "class \(c): a full batch")
        let first = objects(of: head1, count: n1)
        let (head2, n2) = h.middle.fetch(c, count: batch)
        XCTAssertEqual(n2, batch)
        let second = objects(of: head2, count: n2)
        checkObjects(first + second, sizeClass: c)
        if spansBefore == 0 { XCTAssertGreaterThan(central.pointee.state.spanCount, 0, "class \(c): new spans were carved") }
        // The objects are writable memory of the class size.
        for object in first + second {
            object.initializeMemory(as: UInt8.self, repeating: 0xAB, count: h.table.size(of: c))
        }

        // A full batch is parked in the transfer cache; the central list does not see it.
        let spansOfFirst = first.map { h.pageMap.span(ofPage: Page.number(of: UInt(bitPattern: $0)))! }
        let liveBefore = liveObjects(spansOfFirst)
        h.middle.release(c, chain: chain(first)!, count: batch)
        XCTAssertEqual(transfer.pointee.state.used, usedBefore + 1, "class \(c): a full batch goes to the transfer cache")
        XCTAssertEqual(liveObjects(spansOfFirst), liveBefore, "class \(c): the central list saw a parked batch")

        // A partial batch (and a single object) go to the central list.
        let spansOfSecond = second.map { h.pageMap.span(ofPage: Page.number(of: UInt(bitPattern: $0)))! }
        var expectedLive: [SpanRef: UInt32] = [:]
        for span in spansOfSecond { expectedLive[span] = span.liveObjects }
        for span in spansOfSecond { expectedLive[span]! -= 1 }
        let partial = Array(second.dropLast())
        h.middle.release(c, chain: chain(partial)!, count: UInt32(partial.count))
        XCTAssertEqual(transfer.pointee.state.used, usedBefore + 1, "class \(c): a partial batch does not go to the transfer cache")
        h.middle.release(c, chain: chain([second.last!])!, count: 1)
        XCTAssertEqual(transfer.pointee.state.used, usedBefore + 1)
        for (span, live) in expectedLive {
            // Objects of the second batch are back in their spans (or the span, all home, went to the page heap).
            if live == 0 {
                XCTAssertNotEqual(span.state, .small, "class \(c): a span with every object home stays with the central list")
            } else {
                XCTAssertEqual(span.state, .small)
                XCTAssertEqual(span.liveObjects, live, "class \(c): central list took the partial batch back")
                XCTAssertTrue(span.inPartialList, "class \(c): span with free objects is in the partial list")
            }
        }

        // Fetch again: a full batch comes back from the transfer cache (the same chain).
        let (head3, n3) = h.middle.fetch(c, count: batch)
        XCTAssertEqual(n3, batch)
        XCTAssertEqual(transfer.pointee.state.used, usedBefore, "class \(c): the parked batch was taken")
        let third = objects(of: head3, count: n3)
        XCTAssertEqual(Set(third.map { UInt(bitPattern: $0) }), Set(first.map { UInt(bitPattern: $0) }),
                       "class \(c): the parked batch comes back whole")
        checkObjects(third, sizeClass: c)
        h.middle.release(c, chain: chain(third)!, count: batch)
        XCTAssertEqual(transfer.pointee.state.used, usedBefore + 1)

        // Everything home: the transfer cache drains into the central list and its spans go back.
        h.middle.drainTransferCaches()
        XCTAssertEqual(transfer.pointee.state.used, 0)
        XCTAssertEqual(central.pointee.state.spanCount, spansBefore, "class \(c): spans went back to the page heap")
        for span in Set(spansOfFirst + spansOfSecond) where span.state == .small {
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
        let c = h.table.sizeClass(for: 208)
        let batch = UInt32(h.table.batch[c])
        let spansBefore = h.middle.central[c].state.spanCount
        // Park one batch, then ask for fewer: the transfer cache is not touched.
        let (full, n) = h.middle.fetch(c, count: batch)
        XCTAssertEqual(n, batch)
        h.middle.release(c, chain: full!, count: n)
        let used = h.middle.transfer[c].state.used
        XCTAssertEqual(used, 1)
        let (few, m) = h.middle.fetch(c, count: 3)
        XCTAssertEqual(m, 3)
        XCTAssertEqual(h.middle.transfer[c].state.used, used, "a partial fetch leaves the transfer cache alone")
        checkObjects(objects(of: few, count: m), sizeClass: c)
        h.middle.release(c, chain: few!, count: m)
        h.middle.drainTransferCaches()
        XCTAssertEqual(h.middle.central[c].state.spanCount, spansBefore)
    }

    func testManyBatchesSpanMultipleSpans() {
        // More objects than one span holds: several spans, all distinct objects, all returned.
        let h = heap
        let c = h.table.sizeClass(for: 2048)
        let batch = UInt32(h.table.batch[c])
        let perSpan = h.table.spanGranules(of: c) * Page.size / h.table.size(of: c)
        let spansBefore = h.middle.central[c].state.spanCount
        var all: [ObjectPointer] = []
        var chains: [(ObjectPointer, UInt32)] = []
        while all.count < 3 * perSpan + 1 {
            let (head, n) = h.middle.fetch(c, count: batch)
            XCTAssertEqual(n, batch)
            guard let head else { break }
            chains.append((head, n))
            all += objects(of: head, count: n)
        }
        checkObjects(all, sizeClass: c)
        XCTAssertGreaterThanOrEqual(Int(h.middle.central[c].state.spanCount - spansBefore), 4)
        for (head, n) in chains { h.middle.release(c, chain: head, count: n) }
        XCTAssertLessThanOrEqual(h.middle.transfer[c].state.used, h.middle.transfer[c].state.capacity)
        h.middle.drainTransferCaches()
        XCTAssertEqual(h.middle.transfer[c].state.used, 0)
        XCTAssertEqual(h.middle.central[c].state.spanCount, spansBefore)
    }

    /// A central list over a back end that is not the page heap: it asks for
    /// spans only when it has no free object, all that a batch needs in one
    /// call; gives spans back exactly when all their objects are home, all
    /// that a batch empties in one call; and stops handing out objects when
    /// the back end has no more memory.
    func testCentralListOverAStubBackEnd() {
        let table = heap.table
        let c = table.sizeClass(for: 512)
        let size = table.size(of: c)
        let perSpan = table.spanGranules(of: c) * Page.size / size
        let stub = StubSpans(pages: 4 * table.spanGranules(of: c))
        // Shared structures are used through their address (Guarded).
        let central = UnsafeMutablePointer<Guarded<CentralFreeList>>.allocate(capacity: 1)
        central.initialize(to: Guarded(CentralFreeList(sizeClass: c, table: table)))
        defer { central.deallocate() }

        let (first, n) = central.removeRange(UInt32(perSpan - 1), from: stub)
        XCTAssertEqual(Int(n), perSpan - 1)
        XCTAssertEqual(stub.allocateCalls, [1], "one span carved")
        let (second, m) = central.removeRange(2, from: stub)
        XCTAssertEqual(m, 2)
        XCTAssertEqual(stub.allocateCalls, [1, 1], "the first span ran out: a second one")
        let (third, k) = central.removeRange(UInt32(2 * perSpan), from: stub)
        XCTAssertEqual(Int(k), 2 * perSpan)
        XCTAssertEqual(stub.allocateCalls, [1, 1, 2], "the two spans the rest needs, in one call")
        let (fourth, l) = central.removeRange(UInt32(perSpan), from: stub)
        XCTAssertEqual(Int(l), perSpan - 1, "the stub has no fifth span: what is left, and no more")
        XCTAssertEqual(stub.allocateCalls, [1, 1, 2, 0])
        let all = objects(of: first, count: n) + objects(of: second, count: m) + objects(of: third, count: k)
            + objects(of: fourth, count: l)
        XCTAssertEqual(Set(all.map { UInt(bitPattern: $0) }).count, 4 * perSpan, "every object once")
        XCTAssertEqual(central.pointee.state.spanCount, 4)

        // Home again: the spans go back once their last object is in, all
        // that one batch empties in one call.
        central.insertRange(chain(Array(all.prefix(perSpan - 1)))!, to: stub)
        XCTAssertEqual(stub.freeCalls, [], "the first span still has an object out")
        central.insertRange(chain(Array(all.dropFirst(perSpan - 1)))!, to: stub)
        XCTAssertEqual(stub.freeCalls, [4], "the four spans back in one call")
        XCTAssertEqual(Set(stub.freed), Set(stub.allocated), "every span back, once")
        XCTAssertEqual(stub.freed.count, 4)
        XCTAssertEqual(central.pointee.state.spanCount, 0)
    }
}
