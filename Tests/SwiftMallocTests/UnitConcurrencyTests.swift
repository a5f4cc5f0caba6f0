// Unit tests that drive the allocator's internals from several threads at
// once and then check the back end's books: every object home, every span
// back in the page heap, free lists consistent. Also mremap'd blocks.
import Foundation
import XCTest

@testable import SwiftMallocCoreTestable

/// Runs `body(index)` on `count` threads of its own and joins them: when it
/// returns, every thread has exited, its exit handlers (the allocator's
/// pthread key destructor) included.
private final class UnitThreadJob {
    let body: (Int) -> Void
    let index: Int
    init(_ body: @escaping (Int) -> Void, _ index: Int) {
        self.body = body
        self.index = index
    }
}

private func unitRunThreads(_ count: Int, _ body: @escaping (Int) -> Void) {
    var threads: [pthread_t] = []
    for i in 0..<count {
        let job = Unmanaged.passRetained(UnitThreadJob(body, i)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let job = Unmanaged<UnitThreadJob>.fromOpaque(raw!).takeRetainedValue()
            job.body(job.index)
            return nil
        }, job)
        precondition(rc == 0, "pthread_create failed")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// `unitRunThreads` with a failure count per thread: `body(index, failures)`
/// adds to `failures` (its own thread's counter, an address that crosses
/// to the thread as a number); each thread whose count is not 0 fails the
/// test with `what`.
private func unitRunCountingFailures(_ count: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                                     _ body: @escaping (Int, UnsafeMutablePointer<Int>) -> Void) {
    let failures = UnsafeMutablePointer<Int>.allocate(capacity: count)
    failures.initialize(repeating: 0, count: count)
    defer { failures.deallocate() }
    let failuresAddress = UInt(bitPattern: failures)
    unitRunThreads(count) { index in
        body(index, UnsafeMutablePointer<Int>(bitPattern: failuresAddress)! + index)
    }
    for i in 0..<count { XCTAssertEqual(failures[i], 0, "thread \(i): \(what)", file: file, line: line) }
}

/// A small deterministic generator (xorshift), one per thread.
private struct UnitRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

final class UnitConcurrencyTests: XCTestCase {
    private var heap: UnsafeMutablePointer<Heap> { Heap.ensureInitialized() }

    /// Spans held by the central lists, per class.
    private func centralSpans() -> [UInt] {
        let h = heap
        return (0..<h.pointee.sizeClasses.count).map { h.pointee.middle.central[$0].state.spanCount }
    }

    /// Free-list invariants of the page heap (lock held inside).
    private func checkPageHeap(file: StaticString = #filePath, line: UInt = #line) {
        let ph = heap.pointee.pageHeap
        ph.lock()
        defer { ph.unlock() }
        var total: UInt = 0
        var ranges: [(UInt, UInt)] = []
        for i in 0...PageHeap.maxListedPages {
            var cursor = ph.pointee.state.freeLists[i].head
            while let s = cursor {
                XCTAssertEqual(s.state, .free, file: file, line: line)
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: s.firstPage), s, file: file, line: line)
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: s.lastPage), s, file: file, line: line)
                total += s.byteCount
                ranges.append((s.firstPage, s.pageCount))
                cursor = s.next
            }
        }
        XCTAssertEqual(total, ph.pointee.state.freeBytes, "freeBytes", file: file, line: line)
        XCTAssertLessThanOrEqual(ph.pointee.state.releasedBytes, ph.pointee.state.freeBytes, file: file, line: line)
        ranges.sort { $0.0 < $1.0 }
        for i in ranges.indices.dropFirst() {
            XCTAssertLessThan(ranges[i - 1].0 + ranges[i - 1].1, ranges[i].0, "free spans overlap or touch", file: file, line: line)
        }
    }

    func testThreadsAllocateAndFreeThenEverythingComesHome() {
        _ = Allocator.releaseFreeMemory()
        let spansBefore = centralSpans()
        let inUseBefore = StatsSnapshot.take().counters.in_use_bytes
        unitRunCountingFailures(8, "corrupted or failed blocks") { index, failures in
            var random = UnitRandom(state: 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0x1234_5678)
            var live: [(UnsafeMutableRawPointer, Int, UInt8)] = []
            for round in 0..<6000 {
                if live.count < 200 && (live.isEmpty || random.below(3) != 0) {
                    let kind = random.below(100)
                    let size = kind < 90 ? 1 + random.below(1024) : kind < 98 ? 1 + random.below(32768) : 32769 + random.below(300_000)
                    guard let p = Allocator.allocate(UInt(size)) else { failures.pointee += 1; continue }
                    let tag = UInt8(truncatingIfNeeded: round &* 7 &+ index)
                    p.initializeMemory(as: UInt8.self, repeating: tag, count: size)
                    live.append((p, size, tag))
                } else {
                    let i = random.below(live.count)
                    let (p, size, tag) = live[i]
                    live[i] = live[live.count - 1]
                    live.removeLast()
                    let bytes = p.assumingMemoryBound(to: UInt8.self)
                    if bytes[0] != tag || bytes[size - 1] != tag || bytes[size / 2] != tag { failures.pointee += 1 }
                    if Allocator.usableSize(p) < UInt(size) { failures.pointee += 1 }
                    Allocator.deallocate(p)
                }
            }
            for (p, size, tag) in live {
                let bytes = p.assumingMemoryBound(to: UInt8.self)
                if bytes[0] != tag || bytes[size - 1] != tag { failures.pointee += 1 }
                Allocator.deallocate(p)
            }
        }
        XCTAssertEqual(StatsSnapshot.take().counters.in_use_bytes, inUseBefore, "in_use_bytes back after every block is freed")
        _ = Allocator.releaseFreeMemory()
        let spansAfter = centralSpans()
        for c in 1..<spansAfter.count where spansAfter[c] != spansBefore[c] {
            XCTFail("class \(c): \(spansAfter[c]) spans in the central list, \(spansBefore[c]) before (objects lost)")
        }
        checkPageHeap()
    }

    func testThreadsShareTheMiddle() {
        // Threads fetch and release batches of one class directly from a
        // middle of the test's own; the books balance.
        let h = PrivateHeap()
        let middle = h.middle
        let c = h.table.sizeClass(for: 80)
        let batch = UInt32(h.table.batch[c])
        unitRunCountingFailures(4, "short or doubly handed-out batches") { index, bad in
            var random = UnitRandom(state: 77 &+ UInt64(index))
            for _ in 0..<3000 {
                let want = random.below(2) == 0 ? batch : UInt32(1 + random.below(Int(batch)))
                let (head, n) = middle.fetch(c, count: want)
                if n != want { bad.pointee += 1 }
                // Write into every object (a double hand-out would be corrupted by another thread).
                var cursor = head
                var k: UInt32 = 0
                while let o = cursor, k < n {
                    o.storeBytes(of: UInt64(index), toByteOffset: 8, as: UInt64.self)
                    cursor = o.nextFree
                    k += 1
                }
                cursor = head
                while let o = cursor {
                    if o.load(fromByteOffset: 8, as: UInt64.self) != UInt64(index) { bad.pointee += 1 }
                    cursor = o.nextFree
                }
                if let head { middle.release(c, chain: head, count: n) }
            }
        }
        middle.drainTransferCaches()
        XCTAssertEqual(middle.transfer[c].state.used, 0)
        XCTAssertEqual(middle.central[c].state.spanCount, 0, "every span went back")
    }

    func testThreadsHandBatchesAcrossShards() {
        // Each thread fetches on one shard and releases on the other (what a
        // producer's and a consumer's CPU groups do), so batches cross
        // shards and the central list under every shard's lock at once;
        // no object is handed out twice and all of them come home.
        let h = PrivateHeap(shards: 2, cpus: 4)
        let middle = h.middle
        let c = h.table.sizeClass(for: 96)
        let batch = UInt32(h.table.batch[c])
        unitRunCountingFailures(4, "short or doubly handed-out batches") { index, bad in
            let objects = UnsafeMutablePointer<ObjectPointer?>.allocate(capacity: Int(batch))
            defer { objects.deallocate() }
            var random = UnitRandom(state: 91 &+ UInt64(index))
            for _ in 0..<3000 {
                let want = random.below(4) == 0 ? UInt32(1 + random.below(Int(batch))) : batch
                let n = middle.fetch(c, count: want, into: objects, shard: index % 2)
                if n != want { bad.pointee += 1 }
                for k in 0..<Int(n) { objects[k]!.storeBytes(of: UInt64(index), toByteOffset: 8, as: UInt64.self) }
                for k in 0..<Int(n) where objects[k]!.load(fromByteOffset: 8, as: UInt64.self) != UInt64(index) {
                    bad.pointee += 1
                }
                middle.release(c, objects: objects, count: n, shard: (index + 1) % 2)
            }
        }
        middle.drainTransferCaches()
        for s in 0..<2 { XCTAssertEqual(middle.transferCache(c, shard: s).pointee.state.used, 0, "shard \(s)") }
        XCTAssertEqual(middle.central[c].state.spanCount, 0, "every span went back")
    }

    func testRemappedBlocksStayUsable() throws {
        // Grow and shrink mapped blocks by odd numbers of 4 KiB pages, several
        // at once, so that mremap moves them, possibly (with a span page above
        // 4 KiB) to addresses off a span page (mappedStart inside one).
        let count = 6
        var blocks: [(UnsafeMutableRawPointer, Int)] = []
        for i in 0..<count {
            let size = (1 << 20) + (2 * i + 1) * 4096
            // calloc: mapped from 1 MiB (malloc maps from 4 MiB).
            let p = try XCTUnwrap(Allocator.allocateZeroed(1, UInt(size)))
            p.initializeMemory(as: UInt8.self, repeating: UInt8(i + 1), count: size)
            blocks.append((p, size))
        }
        var sawMisaligned = false
        var moves = 0
        for step in 0..<300 {
            let i = step % count
            let (p, size) = blocks[i]
            let newSize = (1 << 20) + (1 + 2 * ((step * 37) % 100)) * 4096 - (step % 3) * 100
            let q = try XCTUnwrap(Allocator.reallocate(p, UInt(newSize)), "step \(step)")
            if UInt(bitPattern: q) % UInt(Heap.ensureInitialized().pointee.sizeClasses.spanPageSize) != 0 { sawMisaligned = true }
            if q != p { moves += 1 }
            XCTAssertEqual(UInt(bitPattern: q) % 16, 0)
            XCTAssertGreaterThanOrEqual(Int(Allocator.usableSize(q)), newSize, "step \(step)")
            let bytes = q.assumingMemoryBound(to: UInt8.self)
            let kept = min(size, newSize)
            XCTAssertEqual(bytes[0], UInt8(i + 1), "step \(step)")
            XCTAssertEqual(bytes[kept - 1], UInt8(i + 1), "step \(step)")
            if newSize > size { (q + size).initializeMemory(as: UInt8.self, repeating: UInt8(i + 1), count: newSize - size) }
            let span = heap.pointee.pageMap.span(ofPage: Page.number(of: UInt(bitPattern: q)))
            XCTAssertEqual(span?.state, .mapped, "step \(step)")
            XCTAssertEqual(span?.mappedStart, UInt(bitPattern: q), "step \(step)")
            blocks[i] = (q, newSize)
        }
        // Small and large allocations meanwhile are unaffected.
        let small = try XCTUnwrap(Allocator.allocate(100))
        let large = try XCTUnwrap(Allocator.allocate(100_000))
        for (p, _) in blocks { Allocator.deallocate(p) }
        XCTAssertEqual(Allocator.usableSize(small), 112)
        XCTAssertEqual(Allocator.usableSize(large), 102_400)
        Allocator.deallocate(small)
        Allocator.deallocate(large)
        // Not an assertion: whether the kernel placed a block off a span page depends on the address space.
        print("UnitConcurrencyTests.testRemappedBlocksStayUsable: \(moves) moves, saw a block off a span page: \(sawMisaligned)")
    }
}
