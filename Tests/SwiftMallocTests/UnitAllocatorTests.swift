// Unit tests of the malloc-family logic (API/Allocator.swift) on the heap of
// this test process (SwiftMalloc is not the process allocator here: these
// calls go straight to its internals).
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitAllocatorTests: XCTestCase {
    private var heap: UnsafeMutablePointer<Heap> { Heap.ensureInitialized() }

    private func pattern(_ i: Int, _ seed: UInt8) -> UInt8 { UInt8(truncatingIfNeeded: i &* 31) &+ seed }

    private func fill(_ p: UnsafeMutableRawPointer, _ count: Int, seed: UInt8) {
        let bytes = p.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count { bytes[i] = pattern(i, seed) }
    }

    /// The index of the first byte that differs from the pattern, or nil.
    private func firstMismatch(_ p: UnsafeMutableRawPointer, _ count: Int, seed: UInt8) -> Int? {
        let bytes = p.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count where bytes[i] != pattern(i, seed) { return i }
        return nil
    }

    private func spanState(_ p: UnsafeMutableRawPointer) -> SpanState? {
        let page = Page.number(of: UInt(bitPattern: p))
        return heap.pointee.pageMap.span(ofPage: page)?.state
    }

    func testSmallRoundTrips() throws {
        let table = heap.pointee.sizeClasses
        for size in [0, 1, 7, 8, 9, 16, 17, 24, 100, 128, 129, 1000, 1024, 1025, 4000, 8192, 20000, 32767, 32768] {
            let p = try XCTUnwrap(Allocator.allocate(UInt(size)), "size \(size)")
            let classSize = table.size(of: table.sizeClass(for: size))
            XCTAssertEqual(Int(Allocator.usableSize(p)), classSize, "size \(size)")
            XCTAssertGreaterThanOrEqual(Int(Allocator.usableSize(p)), max(size, 1))
            XCTAssertEqual(UInt(bitPattern: p) % UInt(classSize >= 16 ? 16 : 8), 0, "size \(size): alignment")
            XCTAssertEqual(spanState(p), .small)
            XCTAssertEqual(Int(heap.pointee.pageMap.sizeClass(ofPage: Page.number(of: UInt(bitPattern: p)))), table.sizeClass(for: size))
            fill(p, classSize, seed: UInt8(truncatingIfNeeded: size))
            XCTAssertNil(firstMismatch(p, classSize, seed: UInt8(truncatingIfNeeded: size)))
            Allocator.deallocate(p)
        }
        Allocator.deallocate(nil)
        XCTAssertEqual(Allocator.usableSize(nil), 0)
    }

    func testManySmallObjectsAreDistinct() throws {
        var pointers: [UnsafeMutableRawPointer] = []
        for i in 0..<3000 {
            let p = try XCTUnwrap(Allocator.allocate(48))
            p.storeBytes(of: UInt64(i), as: UInt64.self)
            p.storeBytes(of: UInt64(i) ^ 0xFFFF, toByteOffset: 40, as: UInt64.self)
            pointers.append(p)
        }
        let sorted = pointers.map { UInt(bitPattern: $0) }.sorted()
        for i in sorted.indices.dropFirst() {
            XCTAssertGreaterThanOrEqual(sorted[i] - sorted[i - 1], 48, "objects overlap")
        }
        for (i, p) in pointers.enumerated() {
            XCTAssertEqual(p.load(as: UInt64.self), UInt64(i))
            XCTAssertEqual(p.load(fromByteOffset: 40, as: UInt64.self), UInt64(i) ^ 0xFFFF)
        }
        // Free in a scrambled order.
        for i in stride(from: 0, to: pointers.count, by: 2) { Allocator.deallocate(pointers[i]) }
        for i in stride(from: 1, to: pointers.count, by: 2).reversed() { Allocator.deallocate(pointers[i]) }
    }

    func testLargeRoundTrips() throws {
        for size in [32769, 40000, 65536, 100_000, 500_000, 1 << 20, (3 << 20) + 5, (4 << 20) - 1] {
            let p = try XCTUnwrap(Allocator.allocate(UInt(size)), "size \(size)")
            let spanPage = heap.pointee.sizeClasses.spanPageSize
            let pages = (size + spanPage - 1) / spanPage
            XCTAssertEqual(Int(Allocator.usableSize(p)), pages * spanPage, "size \(size): whole span pages")
            XCTAssertEqual(UInt(bitPattern: p) % UInt(spanPage), 0, "size \(size): span page aligned")
            XCTAssertEqual(spanState(p), .large, "size \(size)")
            XCTAssertEqual(heap.pointee.pageMap.sizeClass(ofPage: Page.number(of: UInt(bitPattern: p))), 0)
            fill(p, size, seed: 3)
            XCTAssertNil(firstMismatch(p, size, seed: 3))
            let page = Page.number(of: UInt(bitPattern: p))
            Allocator.deallocate(p)
            // The pages are free in the page heap now, and kept resident
            // for the next request (the dirty limit is 32 MiB at least).
            let span = heap.pointee.pageMap.span(ofPage: page)
            XCTAssertEqual(span?.state, .free, "size \(size): pages back in the page heap")
            XCTAssertEqual(span?.contains(page: page), true)
            XCTAssertGreaterThanOrEqual(span?.dirtyPages ?? 0, UInt(pages * spanPage / Page.size), "size \(size): kept resident")
        }
    }

    func testMappedRoundTrips() throws {
        // A mapping cached by an earlier test may be reused (a little larger).
        _ = Allocator.releaseFreeMemory()
        for size in [4 << 20, (4 << 20) + 1, 9 << 20 + 5, 16 << 20] {
            let p = try XCTUnwrap(Allocator.allocate(UInt(size)), "size \(size)")
            let usable = Int(Allocator.usableSize(p))
            XCTAssertGreaterThanOrEqual(usable, size)
            XCTAssertLessThan(usable - size, 4096, "size \(size): rounded to the system page")
            XCTAssertEqual(usable % 4096, 0)
            XCTAssertEqual(UInt(bitPattern: p) % UInt(Page.size), 0)
            XCTAssertEqual(spanState(p), .mapped, "size \(size)")
            fill(p, size, seed: 9)
            XCTAssertNil(firstMismatch(p, size, seed: 9))
            let page = Page.number(of: UInt(bitPattern: p))
            Allocator.deallocate(p)
            XCTAssertNil(heap.pointee.pageMap.span(ofPage: page), "size \(size): the mapping is forgotten")
        }
    }

    /// From 1 MiB, a block that must read as zero (calloc) or that realloc
    /// grows gets a mapping of its own; malloc's blocks get one from 4 MiB.
    func testMappingsForZeroedAndGrowingBlocks() throws {
        let mib = 1 << 20
        let plain = try XCTUnwrap(Allocator.allocate(UInt(2 * mib)))
        XCTAssertEqual(spanState(plain), .large, "malloc(2 MiB): the page heap")
        let zeroed = try XCTUnwrap(Allocator.allocateZeroed(UInt(mib), 2))
        XCTAssertEqual(spanState(zeroed), .mapped, "calloc(2 MiB): a mapping")
        XCTAssertNil((0..<(2 * mib)).first { zeroed.load(fromByteOffset: $0, as: UInt8.self) != 0 })
        let small = try XCTUnwrap(Allocator.allocate(500_000))
        fill(small, 500_000, seed: 4)
        let grown = try XCTUnwrap(Allocator.reallocate(small, UInt(2 * mib)))
        XCTAssertEqual(spanState(grown), .mapped, "grown to 2 MiB by realloc: a mapping")
        XCTAssertNil(firstMismatch(grown, 500_000, seed: 4))
        let shrunk = try XCTUnwrap(Allocator.reallocate(plain, UInt(mib / 2)))
        XCTAssertEqual(spanState(shrunk), .large, "shrunk by realloc: no mapping")
        let big = try XCTUnwrap(Allocator.allocate(UInt(4 * mib)))
        XCTAssertEqual(spanState(big), .mapped, "malloc(4 MiB): a mapping")
        for p in [zeroed, grown, shrunk, big] { Allocator.deallocate(p) }
    }

    func testReallocateKeepsContents() throws {
        var p = try XCTUnwrap(Allocator.allocate(20))
        fill(p, 20, seed: 1)
        var size = 20
        // Grow through every kind: small, bigger small, large, mapped, bigger mapped (mremap).
        for newSize in [100, 3000, 50_000, 2 << 20, 5 << 20] {
            let q = try XCTUnwrap(Allocator.reallocate(p, UInt(newSize)), "to \(newSize)")
            XCTAssertGreaterThanOrEqual(Int(Allocator.usableSize(q)), newSize)
            XCTAssertNil(firstMismatch(q, size, seed: 1), "\(size) -> \(newSize): contents lost")
            fill(q, newSize, seed: 1)
            p = q
            size = newSize
        }
        XCTAssertEqual(spanState(p), .mapped)
        // Shrinking by less than half keeps the block.
        let kept = try XCTUnwrap(Allocator.reallocate(p, UInt(3 << 20)))
        XCTAssertEqual(kept, p, "mapped shrink by less than half stays in place")
        XCTAssertNil(firstMismatch(kept, 3 << 20, seed: 1))
        // Shrink through every kind again.
        size = 3 << 20
        p = kept
        for newSize in [200_000, 40_000, 5000, 100, 10] {
            let q = try XCTUnwrap(Allocator.reallocate(p, UInt(newSize)), "to \(newSize)")
            XCTAssertGreaterThanOrEqual(Int(Allocator.usableSize(q)), newSize)
            XCTAssertNil(firstMismatch(q, newSize, seed: 1), "\(size) -> \(newSize): contents lost")
            p = q
            size = newSize
        }
        // Same class: same block.
        let same = try XCTUnwrap(Allocator.reallocate(p, 12))
        XCTAssertEqual(same, p)
        Allocator.deallocate(same)

        // realloc(NULL, n) allocates; realloc(p, 0) frees and returns NULL.
        let fresh = try XCTUnwrap(Allocator.reallocate(nil, 40))
        XCTAssertEqual(Allocator.usableSize(fresh), 48)
        XCTAssertNil(Allocator.reallocate(fresh, 0))
    }

    func testReallocateLargeInPlaceAndAcrossKinds() throws {
        // Large (page heap) shrink by less than half: same block.
        let p = try XCTUnwrap(Allocator.allocate(400_000))
        fill(p, 400_000, seed: 5)
        let q = try XCTUnwrap(Allocator.reallocate(p, 300_000))
        XCTAssertEqual(q, p)
        // Mapped shrink below the map threshold: moves to the page heap, keeps contents.
        let m = try XCTUnwrap(Allocator.allocate(4 << 20))
        fill(m, 4 << 20, seed: 6)
        let n = try XCTUnwrap(Allocator.reallocate(m, 600_000))
        XCTAssertEqual(spanState(n), .large)
        XCTAssertNil(firstMismatch(n, 600_000, seed: 6))
        XCTAssertNil(firstMismatch(q, 300_000, seed: 5))
        Allocator.deallocate(q)
        Allocator.deallocate(n)
    }

    func testAllocateAlignedForManyAlignments() throws {
        let sizes = [0, 1, 24, 100, 3000, 8192, 20000, 32768, 40000, 300_000, (1 << 20) + 1]
        for shift in 0...21 {
            let alignment = UInt(1) << UInt(shift)
            for size in sizes {
                let p = try XCTUnwrap(Allocator.allocateAligned(alignment, UInt(size)), "alignment \(alignment) size \(size)")
                XCTAssertEqual(UInt(bitPattern: p) % max(alignment, 8), 0, "alignment \(alignment) size \(size): \(p)")
                XCTAssertGreaterThanOrEqual(Int(Allocator.usableSize(p)), size, "alignment \(alignment) size \(size)")
                if size > 0 {
                    p.storeBytes(of: 0x11, as: UInt8.self)
                    p.storeBytes(of: 0x22, toByteOffset: size - 1, as: UInt8.self)
                }
                Allocator.deallocate(p)
            }
        }
    }

    func testPosixMemalignAndFriends() throws {
        var out: UnsafeMutableRawPointer? = nil
        XCTAssertEqual(Allocator.posixMemalign(&out, 3, 10), EINVAL)
        XCTAssertEqual(Allocator.posixMemalign(&out, 4, 10), EINVAL, "alignment below sizeof(void *)")
        XCTAssertEqual(Allocator.posixMemalign(&out, 64, 100), 0)
        let p = try XCTUnwrap(out)
        XCTAssertEqual(UInt(bitPattern: p) % 64, 0)
        Allocator.deallocate(p)
        XCTAssertNil(Allocator.alignedAlloc(48, 10))
        let q = try XCTUnwrap(Allocator.memalign(48, 10))   // rounded up to 64
        XCTAssertEqual(UInt(bitPattern: q) % 64, 0)
        Allocator.deallocate(q)
        let v = try XCTUnwrap(Allocator.valloc(1))
        XCTAssertEqual(UInt(bitPattern: v) % 4096, 0)
        Allocator.deallocate(v)
        let pv = try XCTUnwrap(Allocator.pvalloc(5000))
        XCTAssertEqual(UInt(bitPattern: pv) % 4096, 0)
        XCTAssertGreaterThanOrEqual(Allocator.usableSize(pv), 8192)
        Allocator.deallocate(pv)
    }

    func testAllocateZeroed() throws {
        // Dirty some blocks first so that reuse would show.
        for size in [64, 5000, 70_000] {
            let d = try XCTUnwrap(Allocator.allocate(UInt(size)))
            d.initializeMemory(as: UInt8.self, repeating: 0xEE, count: size)
            Allocator.deallocate(d)
            let z = try XCTUnwrap(Allocator.allocateZeroed(UInt(size) / 4, 4))
            let bytes = z.assumingMemoryBound(to: UInt8.self)
            XCTAssertNil((0..<size).first { bytes[$0] != 0 }, "calloc(\(size)) not zeroed")
            Allocator.deallocate(z)
        }
        XCTAssertNil(Allocator.allocateZeroed(UInt.max / 2, 3), "overflow")
    }

    func testHugeRequestsFail() {
        XCTAssertNil(Allocator.allocate(UInt.max))
        XCTAssertNil(Allocator.allocate(Allocator.maxRequest + 1))
        XCTAssertNil(Allocator.allocateAligned(4096, UInt.max - 100))
        XCTAssertNil(Allocator.reallocateArray(nil, UInt.max / 2, 4))
    }

    func testStatsInUseFollowsUsableSize() throws {
        _ = Allocator.releaseFreeMemory()
        for size in [40, 1000, 32768, 100_000, 2 << 20] {
            let before = StatsSnapshot.take().counters
            let p = try XCTUnwrap(Allocator.allocate(UInt(size)))
            let usable = Allocator.usableSize(p)
            let during = StatsSnapshot.take().counters
            XCTAssertEqual(during.in_use_bytes &- before.in_use_bytes, UInt64(usable), "size \(size)")
            XCTAssertEqual(during.allocations &- before.allocations, 1, "size \(size): one allocation counted")
            Allocator.deallocate(p)
            let after = StatsSnapshot.take().counters
            XCTAssertEqual(after.in_use_bytes, before.in_use_bytes, "size \(size): back down after free")
            XCTAssertEqual(after.frees &- before.frees, 1, "size \(size): one free counted")
        }
        let s = StatsSnapshot.take().counters
        XCTAssertGreaterThanOrEqual(s.mapped_bytes, s.metadata_bytes)
        XCTAssertGreaterThanOrEqual(s.threads_seen, 1)
    }

    func testReleaseFreeMemoryKeepsLiveBlocks() throws {
        let p = try XCTUnwrap(Allocator.allocate(64))
        let l = try XCTUnwrap(Allocator.allocate(200_000))
        fill(p, 64, seed: 2)
        fill(l, 200_000, seed: 4)
        _ = Allocator.releaseFreeMemory()
        XCTAssertNil(firstMismatch(p, 64, seed: 2))
        XCTAssertNil(firstMismatch(l, 200_000, seed: 4))
        let pageHeap = heap.pointee.pageHeap
        pageHeap.lock()
        XCTAssertEqual(pageHeap.pointee.state.releasedBytes, pageHeap.pointee.state.freeBytes, "every free page released")
        pageHeap.unlock()
        Allocator.deallocate(p)
        Allocator.deallocate(l)
    }
}
