// Unit tests of the per-thread / shared object cache (FrontEnds/ObjectCache.swift)
// on a cache of the test's own, in front of a middle and page heap of its
// own (PrivateHeap).
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitObjectCacheTests: XCTestCase {
    private let heap = PrivateHeap()
    private var lists: UnsafeMutablePointer<CacheList>!

    override func setUp() {
        super.setUp()
        let count = heap.table.count
        lists = UnsafeMutablePointer<CacheList>.allocate(capacity: count)
        lists.initialize(repeating: CacheList(), count: count)
    }

    override func tearDown() {
        lists.deallocate()
        super.tearDown()
    }

    private func makeCache(budget: Int) -> ObjectCache {
        ObjectCache(lists: lists, classCount: heap.table.count, budget: budget,
                    sizes: heap.table.sizes)
    }

    /// The cache's books: each list's length matches its chain, and cachedBytes is their sum.
    private func checkBooks(_ cache: ObjectCache, file: StaticString = #filePath, line: UInt = #line) {
        let table = heap.table
        var bytes = 0
        for c in 1..<table.count {
            var n: UInt32 = 0
            var cursor = cache.lists[c].head
            while let o = cursor, n <= cache.lists[c].length {
                XCTAssertEqual(Int(heap.pageMap.sizeClass(ofPage: Page.number(of: UInt(bitPattern: o)))), c,
                               "class \(c): foreign object in the list", file: file, line: line)
                n += 1
                cursor = o.nextFree
            }
            XCTAssertEqual(n, cache.lists[c].length, "class \(c): length", file: file, line: line)
            bytes += Int(n) * table.size(of: c)
        }
        XCTAssertEqual(cache.cachedBytes, bytes, "cachedBytes", file: file, line: line)
    }

    private func allocate(_ cache: inout ObjectCache, _ c: Int) -> ObjectPointer? {
        if let o = cache.pop(c) { return o }
        return cache.refill(c, from: heap.middle).object
    }

    private func free(_ cache: inout ObjectCache, _ o: ObjectPointer, _ c: Int) {
        if !cache.push(o, c) { _ = cache.overflow(c, to: heap.middle) }
    }

    func testRefillGrowsTheListSlowlyThenByBatches() throws {
        let table = heap.table
        let c = table.sizeClass(for: 64)
        let batch = UInt32(table.batch[c])
        let spansBefore = heap.middle.central[c].state.spanCount
        var cache = makeCache(budget: 4 << 20)
        XCTAssertNil(cache.pop(c))
        var taken: [ObjectPointer] = []
        var previousMax = cache.lists[c].maxLength
        XCTAssertEqual(previousMax, 1)
        // Empty the list each time so that every allocation after the list runs dry is a refill.
        for _ in 0..<(Int(batch) + 4) {
            while let o = cache.pop(c) { taken.append(o) }
            let o = try XCTUnwrap(cache.refill(c, from: heap.middle).object)
            taken.append(o)
            let maxLength = cache.lists[c].maxLength
            if previousMax < batch {
                XCTAssertEqual(maxLength, previousMax + 1, "grows by one up to a batch")
            } else {
                XCTAssertEqual(maxLength, min(previousMax + batch, ObjectCache.maxListLength), "then by a batch")
            }
            XCTAssertLessThanOrEqual(cache.lists[c].length, maxLength)
            previousMax = maxLength
            checkBooks(cache)
        }
        XCTAssertEqual(Set(taken.map { UInt(bitPattern: $0) }).count, taken.count, "no object handed out twice")
        for o in taken { free(&cache, o, c) }
        checkBooks(cache)
        XCTAssertLessThanOrEqual(cache.lists[c].length, cache.lists[c].maxLength, "overflow keeps the list within its bound")
        _ = cache.flushAll(to: heap.middle)
        checkBooks(cache)
        XCTAssertEqual(cache.cachedBytes, 0)
        heap.middle.drainTransferCaches()
        XCTAssertEqual(heap.middle.central[c].state.spanCount, spansBefore, "every object went home")
    }

    func testBudgetIsEnforcedAcrossClasses() throws {
        let table = heap.table
        let spansBefore = (0..<table.count).map { heap.middle.central[$0].state.spanCount }
        let budget = 64 << 10
        var cache = makeCache(budget: budget)
        var live: [(ObjectPointer, Int)] = []
        let classes = [16, 48, 256, 1024, 4096, 16384].map { table.sizeClass(for: $0) }
        // Allocate a lot, free it all: the cache must stay within its budget after every free.
        for round in 0..<3 {
            for _ in 0..<40 {
                for c in classes {
                    live.append((try XCTUnwrap(allocate(&cache, c)), c))
                }
            }
            for (o, c) in live.reversed() {
                free(&cache, o, c)
                XCTAssertLessThanOrEqual(cache.cachedBytes, budget, "round \(round): over budget after a free")
            }
            live.removeAll()
            checkBooks(cache)
        }
        _ = cache.flushAll(to: heap.middle)
        XCTAssertEqual(cache.cachedBytes, 0)
        heap.middle.drainTransferCaches()
        for c in classes { XCTAssertEqual(heap.middle.central[c].state.spanCount, spansBefore[c], "class \(c): objects lost") }
    }

    func testScavengeGivesBackHalfOfEachList() throws {
        let table = heap.table
        let c = table.sizeClass(for: 128)
        var cache = makeCache(budget: 4 << 20)
        // Build a list of 20 objects.
        var objects: [ObjectPointer] = []
        for _ in 0..<20 { objects.append(try XCTUnwrap(allocate(&cache, c))) }
        cache.lists[c].maxLength = 100
        for o in objects { XCTAssertTrue(cache.push(o, c)) }
        let length = cache.lists[c].length
        XCTAssertGreaterThanOrEqual(length, 20)
        _ = cache.scavenge(to: heap.middle)
        XCTAssertEqual(cache.lists[c].length, length - max(1, length / 2))
        XCTAssertEqual(cache.lists[c].maxLength, 50, "the list's room is halved too")
        checkBooks(cache)
        _ = cache.flushAll(to: heap.middle)
        checkBooks(cache)
        heap.middle.drainTransferCaches()
    }

    /// A list whose class served no allocation since the previous look goes
    /// back whole, and its room with it (its objects reach the central
    /// list through the transfer caches, and its spans empty); a class that
    /// allocated in between keeps its list, and so does one whose count was
    /// voided (an overflow, ThreadCacheFrontEnd).
    func testIdleListsGoBackWhole() throws {
        let table = heap.table
        let idle = table.sizeClass(for: 256)
        let busy = table.sizeClass(for: 512)
        let overflowed = table.sizeClass(for: 1024)
        var cache = makeCache(budget: 4 << 20)
        let counts = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * SizeClassTable.maxClasses)
        counts.initialize(repeating: 0, count: 2 * SizeClassTable.maxClasses)
        let before = UnsafeMutablePointer<UInt64>.allocate(capacity: SizeClassTable.maxClasses)
        before.initialize(repeating: 0, count: SizeClassTable.maxClasses)
        defer { counts.deallocate(); before.deallocate() }
        let allocations = ClassCounts(base: counts)
        for c in [idle, busy, overflowed] {
            cache.lists[c].maxLength = 100
            var objects: [ObjectPointer] = []
            for _ in 0..<30 {
                objects.append(try XCTUnwrap(allocate(&cache, c)))
                allocations.countAllocation(c)
            }
            for o in objects { XCTAssertTrue(cache.push(o, c)) }
        }
        XCTAssertGreaterThan(heap.middle.central[idle].state.spanCount, 0)
        // The first look only records the counts: every class allocated.
        XCTAssertEqual(cache.returnIdleLists(allocations: allocations, allocationsBefore: before, to: heap.middle), 0)
        XCTAssertEqual(before[idle], 30)
        allocations.countAllocation(busy)
        before[overflowed] = .max
        let idleLength = cache.lists[idle].length
        let busyLength = cache.lists[busy].length
        let overflowedLength = cache.lists[overflowed].length
        XCTAssertGreaterThanOrEqual(idleLength, 30)
        XCTAssertEqual(cache.returnIdleLists(allocations: allocations, allocationsBefore: before, to: heap.middle), idleLength)
        XCTAssertNil(cache.lists[idle].head)
        XCTAssertEqual(cache.lists[idle].length, 0)
        XCTAssertEqual(cache.lists[idle].maxLength, 1, "an idle class earns its room again")
        XCTAssertEqual(cache.lists[busy].length, busyLength)
        XCTAssertEqual(cache.lists[overflowed].length, overflowedLength)
        XCTAssertEqual(before[overflowed], 30, "the voided count is taken again")
        checkBooks(cache)
        heap.middle.drainTransferCaches()
        XCTAssertEqual(heap.middle.central[idle].state.spanCount, 0, "every object home: the spans went back")
        _ = cache.flushAll(to: heap.middle)
        heap.middle.drainTransferCaches()
    }
}
