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
    private func checkObjects(_ objects: [ObjectPointer], sizeClass c: Int, heap other: PrivateHeap? = nil,
                              file: StaticString = #filePath, line: UInt = #line) {
        let h = other ?? heap
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

    // MARK: shards

    /// Two shards over 2 CPUs: what each shard parks, for class `c`.
    private func parked(_ h: PrivateHeap, _ c: Int) -> [Int] {
        (0..<h.middle.shardCount).map { h.middle.transferCache(c, shard: $0).pointee.state.used }
    }

    private func addresses(_ objects: [ObjectPointer]) -> Set<UInt> { Set(objects.map { UInt(bitPattern: $0) }) }

    func testShardCountAndCPUGroups() {
        XCTAssertEqual(Middle.shardCount(configured: 0, cpus: 1), 1)
        XCTAssertEqual(Middle.shardCount(configured: 0, cpus: 2), 1, "automatic: one shard per 8 CPUs")
        XCTAssertEqual(Middle.shardCount(configured: 0, cpus: 8), 1)
        XCTAssertEqual(Middle.shardCount(configured: 0, cpus: 16), 2)
        XCTAssertEqual(Middle.shardCount(configured: 0, cpus: 17), 3, "rounded up")
        XCTAssertEqual(Middle.shardCount(configured: 5, cpus: 2), 5, "a configured count is used as it is")

        let h = PrivateHeap(shards: 2, cpus: 16)
        XCTAssertEqual(h.middle.shardCount, 2)
        XCTAssertEqual((0..<16).map { h.middle.shard(ofCPU: $0) }, Array(repeating: 0, count: 8) + Array(repeating: 1, count: 8))
        XCTAssertEqual(h.middle.shard(ofCPU: 40), 1, "an id past the last group goes to the last shard")
        XCTAssertEqual(h.middle.transferCacheCount, 2 * h.table.count)
        XCTAssertEqual(PrivateHeap().middle.currentShard(), 0, "one shard: always shard 0")
        let current = h.middle.currentShard()
        XCTAssertTrue((0..<2).contains(current), "the calling thread's shard, \(current), exists")

        // The class's parking room is shared out among its shards.
        let one = PrivateHeap()
        for size in [16, 256, 4096, 32768] {
            let c = h.table.sizeClass(for: size)
            let whole = one.middle.transferCache(c, shard: 0).pointee.state.capacity
            let shard = h.middle.transferCache(c, shard: 1).pointee.state.capacity
            XCTAssertEqual(shard, max(2, whole / 2), "size \(size)")
            XCTAssertEqual(h.middle.transferCache(c, shard: 0).pointee.state.capacity, shard)
        }
    }

    func testABatchReleasedOnAShardIsFetchedFromThatShard() {
        let h = PrivateHeap(shards: 2, cpus: 2)
        let c = h.table.sizeClass(for: 64)
        let batch = UInt32(h.table.batch[c])
        let (headA, _) = h.middle.fetch(c, count: batch, shard: 0)
        let (headB, _) = h.middle.fetch(c, count: batch, shard: 1)
        let a = objects(of: headA, count: batch), b = objects(of: headB, count: batch)
        checkObjects(a + b, sizeClass: c, heap: h)

        h.middle.release(c, chain: headA!, count: batch, shard: 0)
        XCTAssertEqual(parked(h, c), [1, 0], "a batch freed on shard 0 is parked there")
        h.middle.release(c, chain: headB!, count: batch, shard: 1)
        XCTAssertEqual(parked(h, c), [1, 1])

        // Each shard hands back its own batch, as pointers (the array form) too.
        let scratch = UnsafeMutablePointer<ObjectPointer?>.allocate(capacity: Int(batch))
        defer { scratch.deallocate() }
        XCTAssertEqual(h.middle.fetch(c, count: batch, into: scratch, shard: 1), batch)
        XCTAssertEqual(addresses((0..<Int(batch)).map { scratch[$0]! }), addresses(b), "shard 1's batch")
        XCTAssertEqual(parked(h, c), [1, 0])
        let (again, n) = h.middle.fetch(c, count: batch, shard: 0)
        XCTAssertEqual(n, batch)
        XCTAssertEqual(addresses(objects(of: again, count: n)), addresses(a), "shard 0's batch")
        XCTAssertEqual(parked(h, c), [0, 0])

        h.middle.release(c, objects: scratch, count: batch, shard: 1)
        h.middle.release(c, chain: again!, count: batch, shard: 0)
        h.middle.drainTransferCaches()
        XCTAssertEqual(h.middle.central[c].state.spanCount, 0, "all objects came home")
    }

    func testAFetchThatMissesItsShardTakesAnotherShardsBatchThenTheCentralList() {
        let h = PrivateHeap(shards: 2, cpus: 2)
        let c = h.table.sizeClass(for: 512)
        let batch = UInt32(h.table.batch[c])
        let (head, _) = h.middle.fetch(c, count: batch, shard: 1)
        let parkedObjects = objects(of: head, count: batch)
        let spans = Set(parkedObjects.map { h.pageMap.span(ofPage: Page.number(of: UInt(bitPattern: $0)))! })
        let live = spans.reduce(0) { $0 + $1.liveObjects }
        h.middle.release(c, chain: head!, count: batch, shard: 1)
        XCTAssertEqual(parked(h, c), [0, 1])

        // Shard 0 is empty: shard 1's batch, not new objects from the central list.
        let (stolen, n) = h.middle.fetch(c, count: batch, shard: 0)
        XCTAssertEqual(addresses(objects(of: stolen, count: n)), addresses(parkedObjects))
        XCTAssertEqual(parked(h, c), [0, 0])
        XCTAssertEqual(spans.reduce(0) { $0 + $1.liveObjects }, live, "the central list was not asked")

        // No shard has a batch: the central list hands out other objects.
        let (fresh, m) = h.middle.fetch(c, count: batch, shard: 0)
        XCTAssertEqual(m, batch)
        let freshObjects = objects(of: fresh, count: m)
        XCTAssertTrue(addresses(freshObjects).isDisjoint(with: addresses(parkedObjects)))
        checkObjects(parkedObjects + freshObjects, sizeClass: c, heap: h)

        h.middle.release(c, chain: stolen!, count: n, shard: 0)
        h.middle.release(c, chain: fresh!, count: m, shard: 1)
        h.middle.drainTransferCaches()
        XCTAssertEqual(parked(h, c), [0, 0])
        XCTAssertEqual(h.middle.central[c].state.spanCount, 0, "all objects came home")
    }

    func testAReleaseOnAFullShardGoesToTheCentralList() {
        let h = PrivateHeap(shards: 2, cpus: 2)
        // 48-byte objects: batches do not line up with spans, so the batch
        // kept out below holds the overflowing batch's span.
        let c = h.table.sizeClass(for: 48)
        let batch = UInt32(h.table.batch[c])
        let capacity = h.middle.transferCache(c, shard: 0).pointee.state.capacity
        var chains: [ObjectPointer] = []
        for _ in 0..<(capacity + 2) {
            let (head, n) = h.middle.fetch(c, count: batch, shard: 0)
            XCTAssertEqual(n, batch)
            chains.append(head!)
        }
        let kept = chains.removeLast()
        let overflowing = chains.removeLast()
        for head in chains { h.middle.release(c, chain: head, count: batch, shard: 0) }
        XCTAssertEqual(parked(h, c), [capacity, 0], "shard 0 full, shard 1 untouched")
        let spans = Set(objects(of: overflowing, count: batch).map { h.pageMap.span(ofPage: Page.number(of: UInt(bitPattern: $0)))! })
        let live = spans.reduce(0) { $0 + $1.liveObjects }
        h.middle.release(c, chain: overflowing, count: batch, shard: 0)
        XCTAssertEqual(parked(h, c), [capacity, 0], "the overflow is not parked in the other shard")
        XCTAssertTrue(spans.allSatisfy { $0.state == .small })
        XCTAssertEqual(spans.reduce(0) { $0 + $1.liveObjects }, live - batch, "the central list took the batch back")
        h.middle.release(c, chain: kept, count: batch, shard: 1)
        h.middle.drainTransferCaches()
        XCTAssertEqual(h.middle.central[c].state.spanCount, 0, "all objects came home")
    }

    func testDrainIdleBatchesAndFootprintCoverEveryShard() {
        let h = PrivateHeap(shards: 3, cpus: 3)
        let classes = [h.table.sizeClass(for: 32), h.table.sizeClass(for: 2048)]
        var parkedBytes: UInt64 = 0
        func parkOneBatchPerShard() {
            for c in classes {
                let batch = UInt32(h.table.batch[c])
                // All out first: a fetch on an empty shard would take another shard's batch.
                let chains = (0..<3).map { h.middle.fetch(c, count: batch, shard: $0).head! }
                for (s, head) in chains.enumerated() { h.middle.release(c, chain: head, count: batch, shard: s) }
            }
        }
        parkOneBatchPerShard()
        for c in classes {
            XCTAssertEqual(parked(h, c), [1, 1, 1])
            parkedBytes += 3 * UInt64(h.table.batch[c]) * UInt64(h.table.size(of: c))
        }
        XCTAssertEqual(h.middle.footprint(sizes: h.table.sizes).transferBytes, parkedBytes, "every shard's batches counted")

        // The scavenger: a first pass marks, the second takes what sat untouched since, in every shard.
        h.middle.returnIdleBatches()
        for c in classes { XCTAssertEqual(parked(h, c), [1, 1, 1], "nothing idle yet") }
        h.middle.returnIdleBatches()
        for c in classes {
            XCTAssertEqual(parked(h, c), [0, 0, 0], "idle batches of every shard went to the central list")
            XCTAssertEqual(h.middle.central[c].state.spanCount, 0, "all objects came home")
        }
        XCTAssertEqual(h.middle.footprint(sizes: h.table.sizes).transferBytes, 0)

        parkOneBatchPerShard()
        h.middle.drainTransferCaches()
        for c in classes {
            XCTAssertEqual(parked(h, c), [0, 0, 0], "every shard drained")
            XCTAssertEqual(h.middle.central[c].state.spanCount, 0, "all objects came home")
        }
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

        // One buffer takes every batch; a batch is what removeRange wrote.
        let buffer = UnsafeMutablePointer<ObjectPointer?>.allocate(capacity: 4 * perSpan)
        defer { buffer.deallocate() }
        var all: [ObjectPointer] = []
        func take(_ count: Int) -> Int {
            let n = Int(central.removeRange(UInt32(count), into: buffer, from: stub))
            all += (0..<n).map { buffer[$0]! }
            return n
        }
        XCTAssertEqual(take(perSpan - 1), perSpan - 1)
        XCTAssertEqual(stub.allocateCalls, [1], "one span carved")
        // The first object taken is last in the array (the caches use it
        // from its end): a fresh span's objects, carved in address order,
        // come out in reverse.
        let addresses = all.map { UInt(bitPattern: $0) }
        XCTAssertEqual(addresses, addresses.sorted(by: >), "first taken, last in the array")
        XCTAssertEqual(take(2), 2)
        XCTAssertEqual(stub.allocateCalls, [1, 1], "the first span ran out: a second one")
        XCTAssertEqual(UInt(bitPattern: buffer[1]!), addresses[0] + UInt(size),
                       "the first span's last object, taken first, is last; the new span's in front of it")
        XCTAssertEqual(take(2 * perSpan), 2 * perSpan)
        XCTAssertEqual(stub.allocateCalls, [1, 1, 2], "the two spans the rest needs, in one call")
        XCTAssertEqual(take(perSpan), perSpan - 1, "the stub has no fifth span: what is left, and no more")
        XCTAssertEqual(stub.allocateCalls, [1, 1, 2, 0])
        XCTAssertEqual(Set(all.map { UInt(bitPattern: $0) }).count, 4 * perSpan, "every object once")
        XCTAssertEqual(central.pointee.state.spanCount, 4)

        // Home again: the spans go back once their last object is in, all
        // that one batch empties in one call.
        func give(_ objects: ArraySlice<ObjectPointer>) {
            for (i, o) in objects.enumerated() { buffer[i] = o }
            central.insertRange(buffer, count: objects.count, to: stub)
        }
        give(all.prefix(perSpan - 1))
        XCTAssertEqual(stub.freeCalls, [], "the first span still has an object out")
        give(all.dropFirst(perSpan - 1))
        XCTAssertEqual(stub.freeCalls, [4], "the four spans back in one call")
        XCTAssertEqual(Set(stub.freed), Set(stub.allocated), "every span back, once")
        XCTAssertEqual(stub.freed.count, 4)
        XCTAssertEqual(central.pointee.state.spanCount, 0)
    }
}
