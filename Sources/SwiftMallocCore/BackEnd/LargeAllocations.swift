// Large allocations (above the largest size class): whole pages from the
// page heap's regions, or from `mapThreshold` up (from
// `zeroedOrGrowingMapThreshold` for calloc and realloc growth) a mapping of
// their own (MappingCache keeps freed ones for reuse). The API layer checks sizes and
// alignments and counts; these take the page heap's lock themselves, and
// report a pointer that is not a live allocation's start to the caller,
// which stops the process once no lock is held. They are called through the
// page heap's address, under its lock (Guarded).
import SwiftMallocShims

extension PageHeap {
    /// Large requests from this size up get a mapping of their own. Below
    /// it (half a region) they come from the page heap, whose freed pages
    /// stay resident up to the dirty limit and serve later requests of any
    /// size, where a cached mapping serves only a request it holds (with
    /// mappings from 1 MiB, `largerealloc`'s blocks of 64 KiB to 4 MiB
    /// fault in four times the pages the peers do).
    static let mapThreshold = 4 << 20
    /// The same for a block that must read as zero (calloc: a fresh mapping
    /// does without being written) or that realloc grows (mremap moves a
    /// mapping's pages where a heap block is copied).
    static let zeroedOrGrowingMapThreshold = 1 << 20
}

extension UnsafeMutablePointer where Pointee == Guarded<PageHeap> {

    /// Whole pages for `bytes` (> 0) aligned to `alignment` (a power of two;
    /// up to a page: page aligned); `zeroed`: the memory must read as zero;
    /// `growing`: realloc is growing a block into it. Returns where it
    /// starts and the usable bytes, or nil when the OS has no memory.
    func allocateLarge(bytes: Int, alignment: Int, zeroed: Bool, growing: Bool) -> (start: UInt, usable: Int)? {
        if bytes >= (zeroed || growing ? PageHeap.zeroedOrGrowingMapThreshold : PageHeap.mapThreshold) {
            guard let (span, reused) = mapLarge(bytes: bytes, alignment: alignment) else { return nil }
            let start = span.mappedStart
            // A new mapping reads as zero; a reused one holds old data.
            if zeroed && reused {
                UnsafeMutableRawPointer(bitPattern: start).unsafelyUnwrapped
                    .initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            }
            return (start, Int(span.mappedBytes))
        }
        guard let pages = Page.count(for: bytes) else { return nil }
        let alignPages = alignment > Page.size ? UInt(alignment >> Page.shift) : 1
        guard let span = withLock({ $0.allocateAlignedLocked(pages: UInt(pages), alignPages: alignPages) }) else { return nil }
        if zeroed { span.start.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
        return (span.startAddress, Int(span.byteCount))
    }

    /// Takes back the large allocation that starts at `address`. Returns its
    /// bytes, or nil when no live one starts there.
    func freeLarge(at address: UInt) -> UInt? {
        // Mappings the cache does not keep are unmapped, and runs given back,
        // after the lock is released; the page map forgets the block under
        // the lock, so a racing double free finds nothing.
        let freed = withLock { heap -> (bytes: UInt, unmap: Unmappings, release: SpanRef?)? in
            guard let span = heap.largeSpan(startingAt: address) else { return nil }
            if span.state == .mapped {
                let bytes = span.mappedBytes
                return (bytes, heap.freeMappedLocked(span), nil)
            }
            let bytes = span.byteCount
            return (bytes, Unmappings(), heap.freeSpan(span))
        }
        guard let freed else { return nil }
        freed.unmap.unmapAll()
        release(freed.release)
        return freed.bytes
    }

    /// The usable bytes of the large allocation that starts at `address`, or
    /// nil if no live one starts there. Reads the span record without the
    /// lock, inside an RCU read-side section, when `reader` can enter one.
    /// `pageMap`: the read-only copy of this heap's map (Heap.pageMap). The
    /// map's readers need no lock, but the page heap's own copy is the lock
    /// holder's to change (it counts the leaves it maps).
    func largeSize(at address: UInt, pageMap: PageMap, reader: RCUReader) -> UInt? {
        let underRCU = reader.enter()
        if !underRCU { sm_lock(lockAddress) }
        var usable: UInt? = nil
        if let span = pageMap.span(ofPage: Page.number(of: address)) {
            if span.state == .poisoned { fatal("read a span record after its grace period") }
            if let live = PageHeap.largeSpan(in: pageMap, startingAt: address) {
                usable = live.state == .mapped ? live.mappedBytes : live.byteCount
            }
        }
        if underRCU { reader.exit() } else { sm_unlock(lockAddress) }
        return usable
    }

    /// `pages` whole pages (the page-level allocator); nil when the OS has no memory.
    /// `spanPages` span pages (the caller checked that their bytes fit).
    func allocatePages(_ spanPages: UInt) -> SpanRef? {
        withLock { $0.allocateLocked(pages: spanPages &* $0.spanPageGranules) }
    }

    enum PageFreeProblem { case invalidPointer, pageCountMismatch }

    /// Takes back span pages from `allocatePages`. Returns the bytes freed,
    /// or what is wrong with the call.
    func freePages(at address: UInt, spanPages: UInt) -> (bytes: UInt, problem: PageFreeProblem?) {
        let freed = withLock { heap -> (bytes: UInt, problem: PageFreeProblem?, release: SpanRef?) in
            guard let span = heap.largeSpan(startingAt: address), span.state == .large else {
                return (0, .invalidPointer, nil)
            }
            let (pages, overflow) = spanPages.multipliedReportingOverflow(by: heap.spanPageGranules)
            if overflow || span.pageCount != pages { return (0, .pageCountMismatch, nil) }
            let bytes = span.byteCount
            return (bytes, nil, heap.freeSpan(span))
        }
        release(freed.release)
        return (freed.bytes, freed.problem)
    }
}
