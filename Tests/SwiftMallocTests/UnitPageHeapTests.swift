// Unit tests of the page heap (BackEnd/PageHeap.swift) through the real heap
// of this test process: split, coalesce, aligned allocation, accounting.
// Every call into the page heap holds its lock, as Allocator.swift does.
import SwiftMallocShims
import XCTest

@testable import SwiftMallocCoreTestable

final class UnitPageHeapTests: XCTestCase {
    private var heap: UnsafeMutablePointer<Heap> { Heap.ensureInitialized() }
    private var pageHeap: UnsafeMutablePointer<Guarded<PageHeap>> { heap.pointee.pageHeap }
    /// Pages per span page: the page heap hands out and keeps whole span
    /// pages, so the tests count in multiples of it.
    private var u: UInt { pageHeap.pointee.state.spanPageGranules }

    private func locked<R>(_ body: (UnsafeMutablePointer<Guarded<PageHeap>>) throws -> R) rethrows -> R {
        let ph = pageHeap
        ph.lock()
        defer { ph.unlock() }
        return try body(ph)
    }

    /// A page heap of the test's own, over a metadata arena of its own.
    private func privatePageHeap(spanPageSize: Int) throws -> UnsafeMutablePointer<Guarded<PageHeap>> {
        let metadata = UnsafeMutablePointer<Guarded<MetadataArena>>.allocate(capacity: 1)
        metadata.initialize(to: Guarded(MetadataArena()))
        let ph = UnsafeMutablePointer<Guarded<PageHeap>>.allocate(capacity: 1)
        ph.initialize(to: Guarded(try XCTUnwrap(PageHeap(metadata: metadata, spanPageSize: spanPageSize))))
        return ph
    }

    /// Frees `span` with the lock held, as `freeSpan`'s callers do after
    /// letting go of it: a run to give back to the OS is given back (here
    /// at once, under the lock) and returned to the heap, clean.
    private func freeNow(_ ph: UnsafeMutablePointer<Guarded<PageHeap>>, _ span: SpanRef) {
        guard let run = ph.pointee.state.freeSpan(span) else { return }
        XCTAssertEqual(run.state, .releasing)
        OSMemory.release(run.start, Int(run.byteCount))
        ph.pointee.state.returnReleasedLocked(run)
    }

    /// Runs `body` with a dirty limit of zero, so that every dirty run freed
    /// in it is given back to the OS at once; the limit and its growth count
    /// are as they were afterwards.
    private func pastTheDirtyLimit<R>(_ ph: UnsafeMutablePointer<Guarded<PageHeap>>, _ body: () throws -> R) rethrows -> R {
        let (limit, overLimit) = (ph.pointee.state.dirtyLimit, ph.pointee.state.releasedOverLimit)
        ph.pointee.state.dirtyLimit = 0
        defer {
            ph.pointee.state.dirtyLimit = limit
            ph.pointee.state.releasedOverLimit = overLimit
        }
        return try body()
    }

    /// Allocates spans of `sizes` pages that lie next to each other, in order
    /// (lock held). Attempts whose spans are not adjacent (best fit may take
    /// a smaller free span elsewhere first) go to `leftovers`, for the caller
    /// to free.
    private func allocateAdjacent(_ ph: UnsafeMutablePointer<Guarded<PageHeap>>, _ sizes: [UInt],
                                  leftovers: inout [SpanRef]) -> [SpanRef]? {
        for _ in 0..<128 {
            var got: [SpanRef] = []
            for pages in sizes {
                guard let span = ph.pointee.state.allocateLocked(pages: pages) else {
                    leftovers += got
                    return nil
                }
                got.append(span)
            }
            var adjacent = true
            for i in 1..<got.count where got[i - 1].firstPage + got[i - 1].pageCount != got[i].firstPage {
                adjacent = false
            }
            if adjacent { return got }
            leftovers += got
        }
        return nil
    }

    /// Whether a record is out of use: absorbed by coalescing, waiting for
    /// its grace period (retired) or ready for reuse.
    private func isDead(_ span: SpanRef) -> Bool {
        let state = span.state
        return state == .retired || state == .unused || state == .poisoned
    }

    /// Whether `span` is linked in the free list for its length.
    private func isListed(_ ph: UnsafeMutablePointer<Guarded<PageHeap>>, _ span: SpanRef) -> Bool {
        let pages = span.pageCount
        let index = pages <= UInt(PageHeap.maxListedPages) ? Int(pages) : 0
        var cursor = ph.pointee.state.freeLists[index].head
        while let s = cursor {
            if s == span { return true }
            cursor = s.next
        }
        return false
    }

    /// Checks the free-list invariants: listed spans are free, in the right
    /// list, registered at both ends, and no two free spans touch.
    private func checkFreeLists(_ ph: UnsafeMutablePointer<Guarded<PageHeap>>, file: StaticString = #filePath, line: UInt = #line) {
        var total: UInt = 0
        var listed: [(UInt, UInt)] = []
        for i in 0...PageHeap.maxListedPages {
            var cursor = ph.pointee.state.freeLists[i].head
            var n = 0
            while let s = cursor {
                let pages = s.pageCount
                XCTAssertEqual(s.state, .free, "listed span not free", file: file, line: line)
                if i == 0 { XCTAssertGreaterThan(pages, UInt(PageHeap.maxListedPages), file: file, line: line) }
                else { XCTAssertEqual(pages, UInt(i), "span in the wrong list", file: file, line: line) }
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: s.firstPage), s, "free span not at its first page", file: file, line: line)
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: s.lastPage), s, "free span not at its last page", file: file, line: line)
                total += s.byteCount
                listed.append((s.firstPage, pages))
                cursor = s.next
                n += 1
            }
            XCTAssertEqual(n, ph.pointee.state.freeLists[i].count, "list \(i) count", file: file, line: line)
        }
        XCTAssertEqual(total, ph.pointee.state.freeBytes, "freeBytes is the sum of the free spans", file: file, line: line)
        listed.sort { $0.0 < $1.0 }
        for i in listed.indices.dropFirst() {
            let (prevFirst, prevPages) = listed[i - 1]
            // Free neighbours always coalesce: free spans neither overlap nor touch.
            XCTAssertLessThan(prevFirst + prevPages, listed[i].0,
                              "free spans overlap or touch without coalescing at page \(listed[i].0)", file: file, line: line)
        }
    }

    /// SpanRef reaches `bumpNext` at a written-out offset (Embedded Swift
    /// cannot always fold a key path); it must be the field's.
    func testBumpNextOffsetIsTheField() {
        XCTAssertEqual(MemoryLayout<Span>.offset(of: \Span.bumpNext), SpanRef.bumpNextOffset)
        let record = UnsafeMutablePointer<Span>.allocate(capacity: 1)
        defer { record.deallocate() }
        record.initialize(to: Span())
        SpanRef(record).bumpNext = 0x1234_5678
        XCTAssertEqual(record.pointee.bumpNext, 0x1234_5678)
        XCTAssertEqual(record.pointee.bumpEnd, 0)
        XCTAssertEqual(record.pointee.freeObjects, nil)
    }

    /// A run freed past the dirty limit leaves the lists while the
    /// caller gives it back without the lock: nothing allocates it or
    /// coalesces with it meanwhile, and once returned it is free, clean, and
    /// joins what was freed next to it in the meantime.
    func testRunGivenBackOutsideTheLockIsUntouchableUntilReturned() throws {
        var leftovers: [SpanRef] = []
        defer { locked { ph in for span in leftovers { freeNow(ph, span) } } }
        let runPages = 256 * u
        try locked { ph in
            let spans = try XCTUnwrap(allocateAdjacent(ph, [u, runPages, u, u], leftovers: &leftovers),
                                      "no adjacent spans")
            let (left, run, right, guardSpan) = (spans[0], spans[1], spans[2], spans[3])
            leftovers.append(guardSpan)
            run.start.initializeMemory(as: UInt8.self, repeating: 7, count: Int(run.byteCount))
            let freeBefore = ph.pointee.state.freeBytes
            let runFirst = run.firstPage

            let taken = try XCTUnwrap(pastTheDirtyLimit(ph) { ph.pointee.state.freeSpan(run) },
                                      "past the dirty limit, a freed run is given back at once")
            XCTAssertEqual(taken, run)
            XCTAssertEqual(run.state, .releasing)
            XCTAssertFalse(isListed(ph, run))
            XCTAssertEqual(ph.pointee.state.freeBytes, freeBefore, "not free until returned")
            checkFreeLists(ph)

            // Meanwhile: its neighbours are freed (they stay apart from it),
            // and a request of its size is served elsewhere.
            freeNow(ph, left)
            freeNow(ph, right)
            XCTAssertEqual(left.state, .free)
            XCTAssertEqual(left.lastPage + 1, run.firstPage, "the left neighbour did not absorb the run")
            XCTAssertEqual(right.firstPage, run.lastPage + 1, "the right neighbour did not absorb the run")
            let other = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: runPages))
            leftovers.append(other)
            XCTAssertTrue(other.lastPage < run.firstPage || other.firstPage > run.lastPage, "allocated over a run being given back")
            checkFreeLists(ph)

            OSMemory.release(run.start, Int(run.byteCount))
            XCTAssertEqual(run.start.load(as: UInt8.self), 0, "given back: reads as zero")
            ph.pointee.state.returnReleasedLocked(run)
            XCTAssertEqual(run.state, .free)
            XCTAssertTrue(isDead(left) && isDead(right), "returned, it joins both neighbours")
            XCTAssertLessThanOrEqual(run.firstPage, runFirst - u)
            XCTAssertGreaterThanOrEqual(run.lastPage, runFirst + runPages + u - 1)
            XCTAssertLessThanOrEqual(run.dirtyPages, run.pageCount - runPages, "the run's own pages are clean")
            checkFreeLists(ph)
        }
    }

    func testThreeAdjacentSpansCoalesce() throws {
        var leftovers: [SpanRef] = []
        defer { locked { ph in for span in leftovers { freeNow(ph, span) } } }
        let (freeBefore, regionBefore) = locked { ($0.pointee.state.freeBytes, $0.pointee.state.regionBytes) }
        try locked { ph in
            let spans = try XCTUnwrap(allocateAdjacent(ph, [3 * u, 5 * u, 7 * u], leftovers: &leftovers),
                                      "no three adjacent spans")
            let (a, b, c) = (spans[0], spans[1], spans[2])
            let aFirst = a.firstPage, bFirst = b.firstPage, cFirst = c.firstPage
            let cLast = c.lastPage
            XCTAssertEqual(bFirst, aFirst + 3 * u)
            XCTAssertEqual(cFirst, bFirst + 5 * u)
            for (span, pages) in [(a, 3 * u), (b, 5 * u), (c, 7 * u)] {
                XCTAssertEqual(span.state, .large)
                XCTAssertEqual(span.pageCount, pages)
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: span.firstPage), span, "in-use span at its first page")
                XCTAssertEqual(ph.pointee.state.pageMap.sizeClass(ofPage: span.firstPage), 0)
            }
            // The memory is usable.
            a.start.storeBytes(of: 0xA5A5, as: UInt64.self)
            c.start.advanced(by: Int(c.byteCount) - 8).storeBytes(of: 0x5A5A, as: UInt64.self)

            // Free the outer two: each is free, but cannot join the middle one.
            freeNow(ph, a)
            freeNow(ph, c)
            XCTAssertEqual(a.state, .free)
            XCTAssertEqual(a.lastPage, bFirst - 1, "left span ends before the middle one")
            XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: bFirst - 1), a)
            XCTAssertEqual(c.state, .free)
            XCTAssertEqual(c.firstPage, cFirst, "right span starts after the middle one")
            XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: cFirst), c)
            XCTAssertEqual(b.state, .large)
            XCTAssertTrue(isListed(ph, a))
            XCTAssertTrue(isListed(ph, c))

            // Free the middle one: one free span covers all three.
            freeNow(ph, b)
            XCTAssertEqual(b.state, .free)
            XCTAssertLessThanOrEqual(b.firstPage, aFirst)
            XCTAssertGreaterThanOrEqual(b.lastPage, cLast)
            XCTAssertGreaterThanOrEqual(b.pageCount, 15 * u)
            XCTAssertTrue(isDead(a), "left record merged and retired (state \(a.state))")
            XCTAssertTrue(isDead(c), "right record merged and retired (state \(c.state))")
            XCTAssertFalse(isListed(ph, a))
            XCTAssertFalse(isListed(ph, c))
            XCTAssertTrue(isListed(ph, b), "merged span listed under its new length")
            XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: b.firstPage), b)
            XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: b.lastPage), b)
            for page in [aFirst, bFirst, cFirst, cLast] {
                let found = ph.pointee.state.pageMap.span(ofPage: page)
                // Inner entries may be stale, but whatever they name must not be a live span claiming the page.
                if let found, found != b {
                    XCTAssertFalse(!isDead(found) && found.contains(page: page),
                                   "page \(page) still claimed by another span")
                }
                XCTAssertTrue(b.contains(page: page))
            }
            checkFreeLists(ph)

            for span in leftovers { freeNow(ph, span) }
            leftovers = []
            checkFreeLists(ph)
            let grown = ph.pointee.state.regionBytes - regionBefore
            XCTAssertEqual(ph.pointee.state.freeBytes, freeBefore + grown, "freeBytes back to where it was (plus any new region)")
        }
    }

    func testSplitLeavesRegisteredRemainder() throws {
        var leftovers: [SpanRef] = []
        defer { locked { ph in for span in leftovers { freeNow(ph, span) } } }
        let (freeBefore, regionBefore) = locked { ($0.pointee.state.freeBytes, $0.pointee.state.regionBytes) }
        try locked { ph in
            // A free span of exactly `total` pages with in-use neighbours (guards).
            var done = false
            for totalSpanPages in stride(from: UInt(40), through: 120, by: 8) where !done {
                let total = totalSpanPages * u
                let spans = try XCTUnwrap(allocateAdjacent(ph, [u, total, u], leftovers: &leftovers))
                let (left, x, right) = (spans[0], spans[1], spans[2])
                leftovers += [left, right]
                let first = x.firstPage
                freeNow(ph, x)
                XCTAssertEqual(x.state, .free)
                XCTAssertEqual(x.firstPage, first, "guarded span cannot coalesce")
                XCTAssertEqual(x.pageCount, total)
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: first), x)
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: first + total - 1), x)
                // Best fit takes x for `want` pages only if no list between want and total holds a span
                // (free spans are whole span pages: only those lists can).
                var want = total
                while want > u && ph.pointee.state.freeLists[Int(want - u)].head == nil { want -= u }
                if want == total || ph.pointee.state.freeLists[Int(total)].head != x {
                    // Another span would be chosen; keep x in use and try another length.
                    let again = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: total))
                    leftovers.append(again)
                    continue
                }
                want = ((want + total) / 2) & ~(u - 1)   // somewhere in the empty range, remainder >= 1 span page
                if want == total { want -= u }
                let freeMid = ph.pointee.state.freeBytes
                let s = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: want))
                XCTAssertEqual(s, x, "best fit took the guarded span")
                XCTAssertEqual(s.firstPage, first, "the front is allocated")
                XCTAssertEqual(s.pageCount, want)
                XCTAssertEqual(s.state, .large)
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: first), s)
                XCTAssertEqual(ph.pointee.state.freeBytes, freeMid - want * UInt(Page.size))
                let rest = try XCTUnwrap(ph.pointee.state.pageMap.span(ofPage: first + want), "remainder registered at its first page")
                XCTAssertNotEqual(rest, s)
                XCTAssertEqual(rest.state, .free)
                XCTAssertEqual(rest.firstPage, first + want)
                XCTAssertEqual(rest.pageCount, total - want)
                XCTAssertEqual(rest.lastPage, right.firstPage - 1)
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: rest.lastPage), rest, "remainder registered at its last page")
                XCTAssertTrue(isListed(ph, rest))
                checkFreeLists(ph)
                // Free it again: it joins its remainder back to `total` pages.
                freeNow(ph, s)
                XCTAssertEqual(s.state, .free)
                XCTAssertEqual(s.firstPage, first)
                XCTAssertEqual(s.pageCount, total)
                XCTAssertTrue(isDead(rest), "the remainder's record was absorbed")
                done = true
            }
            XCTAssertTrue(done, "could not set up a split through best fit")
            for span in leftovers { freeNow(ph, span) }
            leftovers = []
            checkFreeLists(ph)
            XCTAssertEqual(ph.pointee.state.freeBytes, freeBefore + (ph.pointee.state.regionBytes - regionBefore))
        }
    }

    func testAlignedAllocation() throws {
        let (freeBefore, regionBefore) = locked { ($0.pointee.state.freeBytes, $0.pointee.state.regionBytes) }
        try locked { ph in
            var spans: [SpanRef] = []
            for (spanPages, spanAlign) in [(UInt(1), UInt(2)), (3, 16), (5, 128), (1, 256), (130, 64), (2, 1), (7, 0)] {
                let pages = spanPages * u, align = spanAlign * u
                let freeMid = ph.pointee.state.freeBytes, regionMid = ph.pointee.state.regionBytes
                let span = try XCTUnwrap(ph.pointee.state.allocateAlignedLocked(pages: pages, alignPages: align))
                spans.append(span)
                let first = span.firstPage
                if align > 1 { XCTAssertEqual(first % align, 0, "\(pages) pages aligned to \(align)") }
                XCTAssertEqual(span.pageCount, pages)
                XCTAssertEqual(span.state, .large)
                XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: first), span)
                XCTAssertNotNil(ph.pointee.state.largeSpan(startingAt: span.startAddress))
                // Exactly `pages` pages left the free lists (lead and trail went back).
                XCTAssertEqual(ph.pointee.state.freeBytes, freeMid + (ph.pointee.state.regionBytes - regionMid) - pages * UInt(Page.size),
                               "\(pages) pages aligned to \(align)")
                // Usable memory.
                span.start.storeBytes(of: 1, as: UInt64.self)
                span.start.advanced(by: Int(span.byteCount) - 8).storeBytes(of: 2, as: UInt64.self)
                checkFreeLists(ph)
            }
            // No two spans overlap.
            let ranges = spans.map { ($0.firstPage, $0.pageCount) }.sorted { $0.0 < $1.0 }
            for i in ranges.indices.dropFirst() {
                XCTAssertLessThanOrEqual(ranges[i - 1].0 + ranges[i - 1].1, ranges[i].0)
            }
            for span in spans { freeNow(ph, span) }
            checkFreeLists(ph)
            XCTAssertEqual(ph.pointee.state.freeBytes, freeBefore + (ph.pointee.state.regionBytes - regionBefore))
        }
    }

    // MARK: released (madvised) pages: accounting and the release policy

    /// Freeing a small dirty span next to released free pages must count only
    /// the freed pages as dirty: `freeBytes - releasedBytes` (the dirty free
    /// memory the release policy reasons about) grows by the freed pages,
    /// not by the released neighbours' size.
    func testFreeingNextToReleasedPagesCountsOnlyTheFreedPagesDirty() throws {
        _ = Allocator.releaseFreeMemory()
        try locked { ph in
            XCTAssertEqual(ph.pointee.state.releasedBytes, ph.pointee.state.freeBytes, "after a trim every free page is released")
            let pages: UInt = 37 * u
            let s = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: pages))
            // Precondition: s was carved from the front of a larger released span, whose rest follows it.
            let right = try XCTUnwrap(ph.pointee.state.pageMap.span(ofPage: s.lastPage + 1))
            XCTAssertEqual(right.state, .free, "setup: the rest of the span s came from is free")
            XCTAssertEqual(right.firstPage, s.lastPage + 1)
            XCTAssertTrue((right.dirtyPages == 0), "setup: and released")
            let neighbourBytes = right.byteCount
            XCTAssertLessThan(ph.pointee.state.freeBytes - ph.pointee.state.releasedBytes, UInt(Page.size), "nothing dirty yet")
            s.start.initializeMemory(as: UInt8.self, repeating: 7, count: Int(s.byteCount))   // now dirty
            freeNow(ph, s)
            let dirty = ph.pointee.state.freeBytes - ph.pointee.state.releasedBytes
            XCTAssertLessThanOrEqual(dirty, pages * UInt(Page.size),
                                     "dirty free bytes \(dirty) after freeing \(pages) touched pages next to \(neighbourBytes) released bytes")
        }
    }

    /// The consequence of the one above: were the dirty total overstated,
    /// once past `dirtyLimit` every free would madvise the whole coalesced
    /// run, so an allocate/touch/free loop of a few pages would pay a madvise
    /// and page faults per iteration ("an allocate/free loop should not pay a
    /// page fault per page", PageHeap.freeSpan).
    func testSmallAllocateFreeLoopDoesNotMadviseAfterTrim() throws {
        _ = Allocator.releaseFreeMemory()
        var leftovers: [SpanRef] = []
        defer { locked { ph in for span in leftovers { freeNow(ph, span) } } }
        try locked { ph in
            // A pocket of released pages the loop will use, longer than the
            // longest listed run, free between two in-use guards.
            let pocketPages = UInt(PageHeap.maxListedPages) + u
            let parts = try XCTUnwrap(allocateAdjacent(ph, [u, pocketPages, u], leftovers: &leftovers))
            leftovers += [parts[0], parts[2]]
            let pocket = parts[1]
            pastTheDirtyLimit(ph) { freeNow(ph, pocket) }
            XCTAssertTrue((pocket.dirtyPages == 0), "setup: the pocket is released")

            // Elsewhere, touch a few pages in each of many released regions and free them.
            var trulyDirtyPages: UInt = 0
            for _ in 0..<4 where ph.pointee.state.freeBytes - ph.pointee.state.releasedBytes < ph.pointee.state.dirtyLimit - 8 * u * UInt(Page.size) {
                var big: [SpanRef] = [], small: [SpanRef] = []
                for _ in 0..<12 { big.append(try XCTUnwrap(ph.pointee.state.allocateLocked(pages: 1000 * u))) }
                for _ in 0..<12 {
                    let s = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: 8 * u))
                    s.start.initializeMemory(as: UInt8.self, repeating: 1, count: Int(s.byteCount))
                    small.append(s)
                }
                pastTheDirtyLimit(ph) { for s in big { freeNow(ph, s) } }
                for s in small {
                    freeNow(ph, s)
                    if s.dirtyPages > 0 { trulyDirtyPages += 8 * u }
                }
            }
            XCTAssertLessThan(trulyDirtyPages * UInt(Page.size), ph.pointee.state.dirtyLimit / 8, "setup: little memory is really dirty")
            XCTAssertTrue(pocket.state == .free && (pocket.dirtyPages == 0) && pocket.pageCount == pocketPages,
                          "setup: the pocket was not used by the setup")

            // The loop takes `k` pages from the pocket (the best fit: lists k ... maxListedPages are empty).
            var k: UInt = 8 * u
            let largestK = min(UInt(PageHeap.maxListedPages), pocketPages - u)
            while k <= largestK && (Int(k)...PageHeap.maxListedPages).contains(where: { ph.pointee.state.freeLists[$0].head != nil }) {
                k += u
            }
            XCTAssertLessThanOrEqual(k, largestK, "setup: no block size for which the pocket is the best fit")
            guard k <= largestK else { return }
            var madvised = 0
            for _ in 0..<20 {
                let s = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: k))
                guard s.firstPage == pocket.firstPage || s == pocket else {
                    XCTFail("setup: the block did not come from the pocket")
                    leftovers.append(s)
                    break
                }
                s.start.initializeMemory(as: UInt8.self, repeating: 2, count: Int(s.byteCount))
                freeNow(ph, s)                            // joins the released rest of the pocket
                if (s.dirtyPages == 0) { madvised += 1 }
            }
            XCTAssertEqual(madvised, 0, "of 20 frees of \(k) touched pages next to released pages, these madvised the coalesced run (dirty by the books: \((ph.pointee.state.freeBytes - ph.pointee.state.releasedBytes) >> 10) KiB, really at most \(trulyDirtyPages + k) pages)")
        }
    }

    func testRejectsImpossibleRequests() {
        locked { ph in
            let free = ph.pointee.state.freeBytes
            XCTAssertNil(ph.pointee.state.allocateLocked(pages: 0))
            XCTAssertNil(ph.pointee.state.allocateLocked(pages: (UInt(1) << UInt(PageMap.pageBits)) + 1))
            XCTAssertNil(ph.pointee.state.allocateAlignedLocked(pages: UInt.max, alignPages: 4))
            XCTAssertEqual(ph.pointee.state.freeBytes, free)
        }
    }

    /// Under a span page larger than the default (page_size = 64 KiB), a
    /// page heap of its own hands out and keeps only whole span pages at
    /// multiples of one, whatever is asked, aligned or not.
    func testSpansAreWholeSpanPagesAtSpanPageBoundaries() throws {
        let ph = try privatePageHeap(spanPageSize: 64 << 10)
        let unit = ph.pointee.state.spanPageGranules
        XCTAssertEqual(unit, UInt((64 << 10) >> Page.shift))
        ph.lock()
        defer { ph.unlock() }
        var spans: [SpanRef] = []
        for (pages, align) in [(UInt(1), UInt(0)), (unit, 0), (unit + 1, 0), (3, 4 * unit), (5 * unit, 2), (40, 64 * unit)] {
            let span = try XCTUnwrap(ph.pointee.state.allocateAlignedLocked(pages: pages, alignPages: align))
            XCTAssertEqual(span.pageCount, (pages + unit - 1) / unit * unit, "\(pages) pages: rounded up to span pages")
            XCTAssertEqual(span.firstPage % max(unit, align), 0, "\(pages) pages aligned to \(align)")
            span.start.storeBytes(of: 1, as: UInt64.self)
            span.start.advanced(by: Int(span.byteCount) - 8).storeBytes(of: 2, as: UInt64.self)
            spans.append(span)
            checkFreeLists(ph)
        }
        for i in 0...PageHeap.maxListedPages {
            var cursor = ph.pointee.state.freeLists[i].head
            while let free = cursor {
                XCTAssertEqual(free.firstPage % unit, 0, "free span at a span page boundary")
                XCTAssertEqual(free.pageCount % unit, 0, "free span of whole span pages")
                cursor = free.next
            }
        }
        let regionBytes = ph.pointee.state.regionBytes
        for span in spans { freeNow(ph, span) }
        checkFreeLists(ph)
        XCTAssertEqual(ph.pointee.state.freeBytes, regionBytes, "everything free again")
    }

    /// Small spans come and go several per acquisition of the lock, each
    /// with every page registered with its class while it is small.
    func testSmallSpansRegisterEveryPage() throws {
        let heap = self.heap
        let table = heap.pointee.sizeClasses
        let c = table.sizeClass(for: 3000)
        let pages = UInt(table.spanGranules(of: c))
        let ph = pageHeap
        _ = Allocator.releaseFreeMemory()   // so that freeing three spans gives nothing back to the OS
        let acquisitions = sm_lock_acquisitions(ph.lockAddress)
        let chain = try XCTUnwrap(ph.allocateSmallSpans(pages: pages, sizeClass: UInt8(c), count: 3))
        XCTAssertEqual(sm_lock_acquisitions(ph.lockAddress), acquisitions + 1, "three spans, one acquisition")
        var spans: [SpanRef] = []
        var cursor: SpanRef? = chain
        while let span = cursor {
            spans.append(span)
            cursor = span.next
        }
        XCTAssertEqual(spans.count, 3)
        var ranges: [(UInt, UInt)] = []
        for span in spans {
            XCTAssertEqual(span.state, .small)
            XCTAssertEqual(span.pageCount, pages)
            for page in span.firstPage...span.lastPage {
                XCTAssertEqual(heap.pointee.pageMap.span(ofPage: page), span)
                XCTAssertEqual(Int(heap.pointee.pageMap.sizeClass(ofPage: page)), c)
                XCTAssertEqual(heap.pointee.pageMap.flatClass(ofPage: page).map(Int.init), c)
            }
            ranges.append((span.firstPage, span.lastPage))
        }
        let beforeFree = sm_lock_acquisitions(ph.lockAddress)
        ph.freeSmallSpans(chain)
        XCTAssertEqual(sm_lock_acquisitions(ph.lockAddress), beforeFree + 1, "three spans back, one acquisition (none released)")
        for (first, last) in ranges {
            for page in first...last {
                XCTAssertEqual(heap.pointee.pageMap.sizeClass(ofPage: page), 0, "freed small span's page \(page) keeps its class")
                XCTAssertEqual(heap.pointee.pageMap.flatClass(ofPage: page), 0)
            }
        }
        XCTAssertTrue(spans.allSatisfy { $0.state == .free || isDead($0) }, "free, or absorbed by a free neighbour")
        locked { checkFreeLists($0) }
    }

    /// A chain of small spans comes as neighbours cut from one free run,
    /// and goes back merged with its neighbours whatever the chain's order:
    /// the free lists then hold one run per gap-free stretch.
    func testSmallSpansAreCarvedTogetherAndMergeOnTheWayBack() throws {
        let ph = try privatePageHeap(spanPageSize: Page.size)
        let pages: UInt = 2
        let chain = try XCTUnwrap(ph.allocateSmallSpans(pages: pages, sizeClass: 7, count: 6))
        var spans: [SpanRef] = []
        var cursor: SpanRef? = chain
        while let span = cursor {
            spans.append(span)
            cursor = span.next
        }
        spans.sort { $0.firstPage < $1.firstPage }
        XCTAssertEqual(spans.count, 6)
        for (a, b) in zip(spans, spans.dropFirst()) { XCTAssertEqual(a.firstPage + pages, b.firstPage, "neighbours") }
        for span in spans {
            XCTAssertEqual(span.state, .small)
            XCTAssertEqual(span.pageCount, pages)
            for page in span.firstPage...span.lastPage { XCTAssertEqual(ph.pointee.state.pageMap.span(ofPage: page), span) }
        }
        let regionBytes = ph.pointee.state.regionBytes
        XCTAssertEqual(ph.pointee.state.freeBytes, regionBytes - 6 * pages * UInt(Page.size), "the rest of the region, free")
        checkFreeLists(ph)

        // All but the fourth back, in a scrambled chain: two stretches.
        let kept = spans[3]
        var back: SpanRef? = nil
        for i in [2, 5, 0, 4, 1] {
            spans[i].next = back
            back = spans[i]
        }
        ph.freeSmallSpans(try XCTUnwrap(back))
        let first = spans[0].firstPage
        let heap = ph.pointee.state
        XCTAssertEqual(heap.freeBytes, regionBytes - pages * UInt(Page.size))
        let before = try XCTUnwrap(heap.pageMap.span(ofPage: first))
        XCTAssertEqual(before.state, .free)
        XCTAssertEqual(before.firstPage, first)
        XCTAssertEqual(before.pageCount, 3 * pages, "the three spans before the kept one, one run")
        let after = try XCTUnwrap(heap.pageMap.span(ofPage: kept.firstPage + pages))
        XCTAssertEqual(after.state, .free)
        XCTAssertEqual(after.firstPage + after.pageCount, first + regionBytes / UInt(Page.size),
                       "the two after it and the region's rest, one run")
        checkFreeLists(ph)
        XCTAssertEqual(kept.state, .small, "the span still in use is untouched")
    }

    /// The mapping cache hands what it evicts to the caller, to unmap after
    /// the page heap's lock: one or several mappings, all unmapped by
    /// `unmapAll`.
    func testMappingCacheHandsEvictedMappingsOut() throws {
        let metadata = UnsafeMutablePointer<Guarded<MetadataArena>>.allocate(capacity: 1)
        metadata.initialize(to: Guarded(MetadataArena()))
        var cache = MappingCache(metadata: &metadata.state.pointee)
        let mib = 1 << 20
        cache.capBytes = UInt(2 * mib)
        func mapping(_ bytes: Int) throws -> UInt { UInt(bitPattern: try XCTUnwrap(OSMemory.map(bytes))) }
        func isMapped(_ start: UInt, _ bytes: Int) -> Bool {
            msync(UnsafeMutableRawPointer(bitPattern: start), bytes, MS_ASYNC) == 0
        }
        let a = try mapping(mib), b = try mapping(mib)
        XCTAssertEqual(cache.put(start: a, length: UInt(mib)).bytes, 0)
        XCTAssertEqual(cache.put(start: b, length: UInt(mib)).bytes, 0)
        // Room for a 2 MiB mapping: both others go, in one hand-out.
        let c = try mapping(2 * mib)
        let evicted = cache.put(start: c, length: UInt(2 * mib))
        XCTAssertEqual(evicted.bytes, UInt(2 * mib))
        XCTAssertTrue(isMapped(a, mib) && isMapped(b, mib), "nothing is unmapped under the lock")
        XCTAssertEqual(evicted.unmapAll(), UInt(2 * mib))
        XCTAssertFalse(isMapped(a, mib))
        XCTAssertFalse(isMapped(b, mib))
        XCTAssertTrue(isMapped(c, 2 * mib))
        // Bigger than the cap: handed straight back, untouched.
        let d = try mapping(3 * mib)
        let refused = cache.put(start: d, length: UInt(3 * mib))
        XCTAssertEqual(refused.bytes, UInt(3 * mib))
        XCTAssertEqual(refused.unmapAll(), UInt(3 * mib))
        XCTAssertFalse(isMapped(d, 3 * mib))
        let all = cache.removeAll()
        XCTAssertEqual(all.bytes, UInt(2 * mib))
        all.unmapAll()
        XCTAssertFalse(isMapped(c, 2 * mib))
        XCTAssertEqual(cache.bytes, 0)
    }

    /// A request takes the cached mapping that fits closest: as it is when
    /// it is at most a quarter longer, else cut to the request's length,
    /// its tail handed out for the caller to unmap; none shorter.
    func testMappingCacheCutsALongerMappingToTheRequest() throws {
        let metadata = UnsafeMutablePointer<Guarded<MetadataArena>>.allocate(capacity: 1)
        metadata.initialize(to: Guarded(MetadataArena()))
        var cache = MappingCache(metadata: &metadata.state.pointee)
        let mib = 1 << 20
        func mapping(_ bytes: Int) throws -> UInt { UInt(bitPattern: try XCTUnwrap(OSMemory.map(bytes))) }
        func isMapped(_ start: UInt, _ bytes: Int) -> Bool {
            msync(UnsafeMutableRawPointer(bitPattern: start), bytes, MS_ASYNC) == 0
        }
        let small = try mapping(mib), big = try mapping(8 * mib)
        _ = cache.put(start: small, length: UInt(mib))
        _ = cache.put(start: big, length: UInt(8 * mib))
        XCTAssertNil(cache.take(length: UInt(9 * mib), alignment: UInt(Page.size)), "none long enough")

        // 2 MiB: the 8 MiB mapping is the only one long enough, cut to 2 MiB.
        let cut = try XCTUnwrap(cache.take(length: UInt(2 * mib), alignment: UInt(Page.size)))
        XCTAssertEqual(cut.mapping.start, big)
        XCTAssertEqual(cut.mapping.length, UInt(2 * mib))
        XCTAssertEqual(cut.tail.bytes, UInt(6 * mib))
        XCTAssertTrue(isMapped(big + UInt(2 * mib), 6 * mib), "nothing is unmapped under the lock")
        XCTAssertEqual(cut.tail.unmapAll(), UInt(6 * mib))
        XCTAssertFalse(isMapped(big + UInt(2 * mib), 6 * mib))
        XCTAssertTrue(isMapped(big, 2 * mib), "the part handed out stays")
        XCTAssertEqual(cache.bytes, UInt(mib))

        // 900 KiB: the 1 MiB mapping is within a quarter, taken whole.
        let whole = try XCTUnwrap(cache.take(length: UInt(900 << 10), alignment: UInt(Page.size)))
        XCTAssertEqual(whole.mapping.start, small)
        XCTAssertEqual(whole.mapping.length, UInt(mib))
        XCTAssertEqual(whole.tail.bytes, 0)
        XCTAssertEqual(cache.count, 0)
        OSMemory.unmap(UnsafeMutableRawPointer(bitPattern: big)!, 2 * mib)
        OSMemory.unmap(UnsafeMutableRawPointer(bitPattern: small)!, mib)
    }

    /// fork's prepare handler waits, with the page heap's lock let go, until
    /// every run out being given back has come back.
    func testForkWaitsForRunsBeingGivenBack() throws {
        let ph = try privatePageHeap(spanPageSize: Page.defaultSpanPageSize)
        ph.lock()
        let runPages: UInt = 256
        let span = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: runPages))
        let run = try XCTUnwrap(pastTheDirtyLimit(ph) { ph.pointee.state.freeSpan(span) }, "given back at once")
        XCTAssertEqual(ph.pointee.state.releasingSpans, 1)
        ph.unlock()

        // Pointers cross to the waiting thread as addresses (not Sendable).
        let finished = DispatchSemaphore(value: 0)
        let seen = UnsafeMutablePointer<UInt>.allocate(capacity: 2)
        seen.initialize(repeating: 99, count: 2)
        defer { seen.deallocate() }
        let (heapAddress, runAddress, seenAddress) =
            (UInt(bitPattern: ph), UInt(bitPattern: run.record), UInt(bitPattern: seen))
        let waiter = Thread {
            let ph = UnsafeMutablePointer<Guarded<PageHeap>>(bitPattern: heapAddress)!
            let run = SpanRef(UnsafeMutablePointer<Span>(bitPattern: runAddress)!)
            let seen = UnsafeMutablePointer<UInt>(bitPattern: seenAddress)!
            ph.lock()
            ph.waitForReleases()
            seen[0] = ph.pointee.state.releasingSpans
            seen[1] = UInt(run.state.rawValue)
            ph.unlock()
            finished.signal()
        }
        waiter.start()
        XCTAssertEqual(finished.wait(timeout: .now() + 0.2), .timedOut, "waited while the run was out")
        XCTAssertEqual(ph.release(run), runPages << UInt(Page.shift))
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success, "done once it came back")
        XCTAssertEqual(seen[0], 0)
        XCTAssertEqual(seen[1], UInt(SpanState.free.rawValue))
    }

    /// The dirty limit: a program that frees more than it and comes back for
    /// the memory makes it grow, so that its next cycle keeps its pages; it
    /// shrinks after the free pages stayed low for `limitDecayPasses` decay
    /// passes, and returns to the minimum when everything is given back.
    func testTheDirtyLimitFollowsAProgramThatCyclesMoreThanIt() throws {
        let ph = try privatePageHeap(spanPageSize: Page.defaultSpanPageSize)
        ph.lock()
        defer { ph.unlock() }
        let minimum = PageHeap.minDirtyLimit
        // 48 MiB in spans of 512 KiB.
        let spanPages = UInt((512 << 10) >> Page.shift)
        let count = Int((48 << 20) / (spanPages << UInt(Page.shift)))
        func giveBack(_ runs: SpanRef?) -> UInt {
            var bytes: UInt = 0
            var cursor = runs
            while let run = cursor {
                cursor = run.next
                bytes += run.byteCount
                OSMemory.release(run.start, Int(run.byteCount))
            }
            ph.pointee.state.returnReleasedLocked(runs)
            return bytes
        }
        func cycleIn() throws -> [SpanRef] {
            try (0..<count).map { _ in try XCTUnwrap(ph.pointee.state.allocateLocked(pages: spanPages)) }
        }
        func cycleOut(_ spans: [SpanRef]) -> UInt {
            spans.reduce(0) { $0 + giveBack(ph.pointee.state.freeSpan($1)) }
        }
        func passes(_ n: UInt) { for _ in 0..<n { XCTAssertNil(ph.pointee.state.takeIdleRunsLocked(floor: .max, now: 0, decayMilliseconds: 0)) } }

        XCTAssertEqual(ph.pointee.state.dirtyLimit, minimum)
        XCTAssertGreaterThan(cycleOut(try cycleIn()), 0, "past the limit, freed runs go back to the OS")
        XCTAssertLessThanOrEqual(ph.pointee.state.dirtyBytes, minimum)
        XCTAssertEqual(ph.pointee.state.dirtyLimit, minimum)
        var spans = try cycleIn()
        // Doubled, up to the regions' size (48 MiB and a little, here).
        let grown = min(2 * minimum, ph.pointee.state.regionBytes)
        XCTAssertGreaterThanOrEqual(grown, 48 << 20)
        XCTAssertEqual(ph.pointee.state.dirtyLimit, grown, "as many bytes handed out as were given back: it grows")
        XCTAssertEqual(cycleOut(spans), 0, "the next cycle keeps its pages")
        passes(PageHeap.limitDecayPasses)
        XCTAssertEqual(ph.pointee.state.dirtyLimit, grown, "the free pages reached the limit since the last review")
        spans = try cycleIn()
        passes(2 * PageHeap.limitDecayPasses)
        XCTAssertEqual(ph.pointee.state.dirtyLimit, minimum, "a review period with the free pages low halves it")
        XCTAssertGreaterThan(cycleOut(spans), 0)
        spans = try cycleIn()
        XCTAssertEqual(ph.pointee.state.dirtyLimit, grown)
        _ = cycleOut(spans)
        XCTAssertGreaterThan(giveBack(ph.pointee.state.takeDirtyRunsLocked()), 0)
        XCTAssertEqual(ph.pointee.state.dirtyLimit, minimum, "everything given back: back to the minimum")
    }

    /// The decay pass gives back the free spans that stayed free for
    /// `decay_ms` by the clock, however many passes came meanwhile, and
    /// keeps those freed again since.
    func testDecayGivesBackWhatStayedFreeForTheDecayTime() throws {
        let ph = try privatePageHeap(spanPageSize: Page.defaultSpanPageSize)
        ph.lock()
        defer { ph.unlock() }
        let pages: UInt = 16
        let decay: UInt64 = 1000
        // a and b with live spans after each, so that they never merge.
        let a = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: pages))
        let afterA = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: pages))
        let b = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: pages))
        let afterB = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: pages))
        let aStart = a.start, bStart = b.start
        XCTAssertNil(ph.pointee.state.freeSpan(a))
        XCTAssertNil(ph.pointee.state.freeSpan(b))
        func pass(at now: UInt64) -> [UnsafeMutableRawPointer] {
            var starts: [UnsafeMutableRawPointer] = []
            let runs = ph.pointee.state.takeIdleRunsLocked(floor: 0, now: now, decayMilliseconds: decay)
            var cursor = runs
            while let run = cursor {
                cursor = run.next
                starts.append(run.start)
                OSMemory.release(run.start, Int(run.byteCount))
            }
            ph.pointee.state.returnReleasedLocked(runs)
            return starts
        }
        let start: UInt64 = 1_000_000
        for _ in 0..<100 { XCTAssertEqual(pass(at: start), [], "passes in quick succession give nothing back") }
        // A pass every 50 ms; b is used and freed again at 950 ms.
        let reuse = start + decay - 50
        var givenBack: [UnsafeMutableRawPointer: UInt64] = [:]
        for now in stride(from: start + 50, through: start + 3 * decay, by: 50) {
            if now == reuse {
                let again = try XCTUnwrap(ph.pointee.state.allocateLocked(pages: pages))
                XCTAssertEqual(again.start, bStart)
                XCTAssertNil(ph.pointee.state.freeSpan(again))
            }
            for run in pass(at: now) {
                XCTAssertNil(givenBack[run], "given back twice")
                givenBack[run] = now
            }
        }
        XCTAssertEqual(givenBack.count, 2)
        let aTime = try XCTUnwrap(givenBack[aStart]), bTime = try XCTUnwrap(givenBack[bStart])
        // Not before decay_ms; a quarter of it (one epoch) and a pass late at most.
        XCTAssertGreaterThanOrEqual(aTime - start, decay)
        XCTAssertLessThanOrEqual(aTime - start, decay + decay / 4 + 50)
        XCTAssertGreaterThanOrEqual(bTime - reuse, decay, "freed again: its time starts again")
        XCTAssertLessThanOrEqual(bTime - reuse, decay + decay / 4 + 50)
        XCTAssertEqual(ph.pointee.state.dirtyBytes, 0)
        freeNow(ph, afterA)
        freeNow(ph, afterB)
    }
}
