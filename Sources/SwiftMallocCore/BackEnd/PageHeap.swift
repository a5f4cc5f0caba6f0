// The page heap: spans of whole pages, carved from large mmapped regions.
//
// Free spans sit in lists by length (1 … maxListedPages pages, best fit by
// construction) and one list of longer spans (searched for the best fit).
// Freed spans coalesce with free neighbours, found through the page map.
// Free pages go back to the OS with madvise past the dirty limit (at once
// in a single-threaded process, after decay_ms while the idle-release
// thread runs), once they have stayed free for decay_ms (the scavenger's
// decay), and on demand (malloc_trim / swiftmalloc_release_free_memory).
//
// madvise and munmap never run under the lock: each can take tens of
// microseconds (a TLB shootdown on every CPU the process runs on), and every
// thread that needs pages would wait for it. A run to give back leaves the
// free lists as `.releasing` (no list, no coalescing, no allocation sees
// it); the caller gives it back after unlocking and then returns it to the
// heap, clean (`release(_:)`). Mappings to unmap are handed out the same
// way (MappingCache).
//
// Allocations too big for the page heap's regions are mapped on their own
// (`mapLarge`); freed, they wait in the mapping cache for reuse, or are
// unmapped (MappingCache).
//
// One lock guards the heap, the page map's writers and the span records.
import SwiftMallocShims

struct PageHeap {
    var pageMap: PageMap
    /// freeLists[n] holds free spans of n pages (1 … maxListedPages);
    /// freeLists[0] holds the longer ones.
    var freeLists: UnsafeMutablePointer<SpanList>
    /// Bit n (of word n / 64) set: freeLists[n] is not empty. The best fit
    /// is then one bit scan, not a walk over up to 256 list heads (each a
    /// cache miss) whenever the short lists are empty.
    let nonEmptyLists: UnsafeMutablePointer<UInt64>
    /// Span records: unlinked ones wait here for a grace period before
    /// reuse (Reclamation), since lock-free readers may still hold them.
    var records: RecordPool<Span>
    /// Where new span records come from.
    let metadata: UnsafeMutablePointer<Guarded<MetadataArena>>
    /// Freed direct mappings kept for reuse.
    var mappingCache: MappingCache
    /// The decay clock: free spans are stamped with the epoch they were
    /// freed in (Span.freedInEpoch). An epoch begins at a decay pass that
    /// finds the current one at least a quarter of `decay_ms` old, at
    /// `epochStart` (milliseconds, sm_monotonic_ms), so a span stamped
    /// `epochsPerDecay + 1` or more epochs ago was freed at least `decay_ms`
    /// ago: no clock is read when a span is freed.
    var epoch: UInt32 = 0
    var epochStart: UInt64 = 0
    /// Pages (granules) per span page: every span the heap hands out or
    /// keeps free is a multiple of this many pages and starts at a multiple
    /// of it (regions are aligned to a span page, and only such runs are
    /// split off), so spans keep the span page's alignment.
    let spanPageGranules: UInt

    // Accounting, in bytes (page heap lock held to write; racy reads are fine).
    var regionBytes: UInt = 0        // mapped for regions
    var directBytes: UInt = 0        // mapped for directly mapped allocations
    var directCount: UInt = 0        // how many directly mapped allocations are live
    var freeBytes: UInt = 0          // in free spans
    var dirtyBytes: UInt = 0         // of those, pages that may be resident
    /// Free pages not yet given back are kept up to this many bytes; over
    /// it, a freed run goes back to the OS at once. It starts at
    /// `minDirtyLimit` and doubles (up to the regions' size) once the heap
    /// has handed out as many bytes as it gave back to stay under it (the
    /// program came back for that memory): a program that cycles more
    /// memory than the limit through the heap would otherwise fault the
    /// same pages in again on every cycle
    /// (64 MiB of 8 KiB objects, freed and allocated again: 7x slower than
    /// with the pages kept). It halves back when the free pages stayed
    /// under a quarter of it for `limitDecayPasses` scavenger decay passes,
    /// and returns to the minimum when everything is given back (an idle
    /// process, malloc_trim).
    var dirtyLimit: UInt = PageHeap.minDirtyLimit
    /// Whether a run freed past `dirtyLimit` goes back to the OS at once.
    /// Not while the idle-release thread runs (a multi-threaded process):
    /// it gives such runs back once they have stayed free for decay_ms, so
    /// that a program that frees more than the limit and comes back for it
    /// within that time faults nothing in again (the lab's `cycle`, 48 MiB
    /// a round: 0.63x tcmalloc with runs given back at once, 0.83x with them
    /// kept). A single-threaded process has no such thread:
    /// the limit is what bounds its free pages once it stops calling.
    var releasesAtLimit = true
    /// Bytes given back to stay under `dirtyLimit` since it last grew, and
    /// bytes handed out since the first of them.
    var releasedOverLimit: UInt = 0
    var handedOutSinceRelease: UInt = 0
    /// The most resident free bytes since `dirtyLimit` was last reviewed,
    /// and the decay passes since then.
    var dirtyPeak: UInt = 0
    var decayPassesSinceReview: UInt = 0
    /// Spans out of the lists while callers give their pages back
    /// (`.releasing`); fork waits for them to come back.
    var releasingSpans: UInt = 0
    /// Bytes of pages handed out that were not resident (the heap's share
    /// of the process's resident growth): counted under the lock, read
    /// without it (the scavenger's pacing), so kept apart, in metadata.
    let freshBytes: UnsafeMutablePointer<UInt64>

    /// Free bytes given back to the OS (or never touched).
    var releasedBytes: UInt { freeBytes &- dirtyBytes }

    static let maxListedPages = 256
    static let listWords = (maxListedPages + 1 + 63) / 64
    /// Regions grow by at least this much (virtual; pages are touched on use).
    static let regionPages = (8 << 20) >> Page.shift
    /// The least `dirtyLimit` ever is.
    static let minDirtyLimit: UInt = 32 << 20
    /// Decay passes between two reviews of `dirtyLimit`: a pass can come at
    /// any point of a program's cycle, so one low reading says nothing.
    static let limitDecayPasses: UInt = 16
    /// Decay epochs per `decay_ms`.
    static let epochsPerDecay: UInt32 = 4

    /// `spanPageSize`: the span page in bytes, a power of two >= Page.size.
    init?(metadata: UnsafeMutablePointer<Guarded<MetadataArena>>, spanPageSize: Int) {
        guard let map = PageMap() else { return nil }
        spanPageGranules = UInt(spanPageSize >> Page.shift)
        self.metadata = metadata
        records = RecordPool(metadata: metadata)
        freshBytes = metadata.allocateArray(of: UInt64.self, count: 1)
        pageMap = map
        mappingCache = MappingCache(metadata: &metadata.state.pointee)
        freeLists = metadata.allocateArray(of: SpanList.self, count: PageHeap.maxListedPages + 1)
        for i in 0...PageHeap.maxListedPages { freeLists[i] = SpanList() }
        nonEmptyLists = metadata.allocateArray(of: UInt64.self, count: PageHeap.listWords)
    }

    // MARK: span records

    private mutating func newSpanRecord(first: UInt, count: UInt) -> SpanRef {
        let record = records.takeUnused() ?? metadata.allocateArray(of: Span.self, count: 1)
        record.initialize(to: Span(firstPage: first, pageCount: count))
        return SpanRef(record)
    }

    /// A record no structure points to any more; lock-free readers may
    /// still hold it, so it waits for a grace period before reuse.
    private mutating func retire(_ span: SpanRef) {
        span.state = .retired
        records.retire(span.record)
    }

    // MARK: free lists

    @inline(__always)
    private func listIndex(_ pages: UInt) -> Int { pages <= UInt(PageHeap.maxListedPages) ? Int(pages) : 0 }

    /// Takes `span` (out of every list) to be given back to the OS without
    /// the lock, in front of the chain `runs` (linked through `next`).
    private mutating func markReleasing(_ span: SpanRef, onto runs: SpanRef?) -> SpanRef {
        releasingSpans &+= 1
        span.state = .releasing
        span.sizeClass = 0
        pageMap.setEnds(span)
        span.prev = nil
        span.next = runs
        return span
    }

    private mutating func insertFree(_ span: SpanRef) {
        span.state = .free
        span.freedInEpoch = epoch
        span.sizeClass = 0
        pageMap.setEnds(span)
        let list = listIndex(span.pageCount)
        freeLists[list].pushFront(span)
        nonEmptyLists[list >> 6] |= 1 << UInt64(list & 63)
        freeBytes &+= span.byteCount
        dirtyBytes &+= span.dirtyPages << UInt(Page.shift)
        dirtyPeak = max(dirtyPeak, dirtyBytes)
    }

    private mutating func removeFree(_ span: SpanRef) {
        let list = listIndex(span.pageCount)
        freeLists[list].remove(span)
        if freeLists[list].head == nil { nonEmptyLists[list >> 6] &= ~(1 << UInt64(list & 63)) }
        freeBytes &-= span.byteCount
        dirtyBytes &-= span.dirtyPages << UInt(Page.shift)
    }

    /// The smallest free span of at least `pages` pages, or nil.
    private func findFree(_ pages: UInt) -> SpanRef? {
        if pages <= UInt(PageHeap.maxListedPages) {
            // The first non-empty list from `pages` on (list 0, of longer
            // spans, never matches here: its bit is below any `pages`).
            var word = Int(pages) >> 6
            var bits = nonEmptyLists[word] & (~0 << UInt64(pages & 63))
            while bits == 0 && word &+ 1 < PageHeap.listWords {
                word &+= 1
                bits = nonEmptyLists[word]
            }
            if bits != 0 { return freeLists[word << 6 | bits.trailingZeroBitCount].head }
        }
        var best: SpanRef? = nil
        var cursor = freeLists[0].head
        while let span = cursor {
            let count = span.pageCount
            if count >= pages && (best == nil || count < best!.pageCount
                || (count == best!.pageCount && span.firstPage < best!.firstPage)) {
                best = span
            }
            cursor = span.next
        }
        return best
    }

    /// Maps a new region of at least `pages` pages and adds it as a free span.
    private mutating func grow(_ pages: UInt) -> Bool {
        let want = max(pages, UInt(PageHeap.regionPages))
        let bytes = Int(want) << Page.shift
        let alignment = Int(spanPageGranules) << Page.shift
        guard let memory = OSMemory.mapAligned(bytes, alignment: alignment) else {
            if want == pages { return false }
            // Fall back to exactly what is needed.
            let exact = Int(pages) << Page.shift
            guard let m = OSMemory.mapAligned(exact, alignment: alignment) else { return false }
            regionBytes &+= UInt(exact)
            freeSpan(newSpanRecord(first: Page.number(of: UInt(bitPattern: m)), count: pages), dirtyPages: 0, release: false)
            return true
        }
        regionBytes &+= UInt(bytes)
        // A new mapping is untouched: nothing in it is resident yet.
        freeSpan(newSpanRecord(first: Page.number(of: UInt(bitPattern: memory)), count: want), dirtyPages: 0, release: false)
        return true
    }

    // MARK: allocation (lock held by the caller)

    /// A span of `pages` pages rounded up to whole span pages, state
    /// `.large`, registered at its first page; nil when the OS has no memory.
    /// `locked`: page heap lock held.
    mutating func allocateLocked(pages requested: UInt) -> SpanRef? {
        if requested == 0 || requested > (UInt(1) << UInt(PageMap.pageBits)) { return nil }
        let pages = roundedToSpanPages(requested)
        guard let found = bestFit(pages) else { return nil }
        return take(pages, from: found)
    }

    /// The smallest free span of at least `pages` pages, after growing the
    /// heap if none is; nil when the OS has no memory.
    private mutating func bestFit(_ pages: UInt) -> SpanRef? {
        if let found = findFree(pages) { return found }
        guard grow(pages) else { return nil }
        return findFree(pages)
    }

    /// The first `pages` pages (a multiple of a span page) of the free span
    /// `span`, state `.large`, registered at its first page; the rest stays
    /// free.
    private mutating func take(_ pages: UInt, from span: SpanRef) -> SpanRef {
        removeFree(span)
        let dirty = span.dirtyPages
        if span.pageCount > pages {
            // Keep the front, give the tail back. Which pages are dirty is
            // not known, only how many: each part keeps that bound.
            let rest = newSpanRecord(first: span.firstPage &+ pages, count: span.pageCount &- pages)
            rest.dirtyPages = min(dirty, rest.pageCount)
            span.pageCount = pages
            insertFree(rest)
        }
        span.state = .large
        span.dirtyPages = min(dirty, pages)
        _ = sm_atomic_add_u64(freshBytes, UInt64(pages &- span.dirtyPages) << UInt64(Page.shift))
        if releasedOverLimit > 0 {
            // (Which pages come back faulted out is not known: free runs
            // merge, and keep only a bound on their dirty pages.)
            handedOutSinceRelease &+= pages << UInt(Page.shift)
            if handedOutSinceRelease >= releasedOverLimit {
                dirtyLimit = min(dirtyLimit &* 2, max(PageHeap.minDirtyLimit, regionBytes))
                releasedOverLimit = 0
                handedOutSinceRelease = 0
            }
        }
        pageMap.set(page: span.firstPage, span: span)
        return span
    }

    /// A span of `pages` pages rounded up to whole span pages, whose start
    /// is aligned to `alignPages` pages (a power of two).
    mutating func allocateAlignedLocked(pages requested: UInt, alignPages requestedAlignment: UInt) -> SpanRef? {
        let alignPages = max(requestedAlignment, spanPageGranules)
        if alignPages == spanPageGranules { return allocateLocked(pages: requested) }
        if requested == 0 || requested > (UInt(1) << UInt(PageMap.pageBits)) { return nil }
        let pages = roundedToSpanPages(requested)
        // Free runs start at multiples of a span page: the aligned start is
        // at most alignPages - spanPageGranules pages into one.
        let (padded, overflow) = pages.addingReportingOverflow(alignPages &- spanPageGranules)
        if overflow { return nil }
        guard let span = allocateLocked(pages: padded) else { return nil }
        let first = span.firstPage
        let alignedFirst = (first &+ alignPages &- 1) & ~(alignPages &- 1)
        let lead = alignedFirst &- first
        let trail = padded &- lead &- pages
        let dirty = span.dirtyPages
        if lead > 0 {
            let head = newSpanRecord(first: first, count: lead)
            freeSpan(head, dirtyPages: min(dirty, lead), release: false)
        }
        if trail > 0 {
            let tail = newSpanRecord(first: alignedFirst &+ pages, count: trail)
            freeSpan(tail, dirtyPages: min(dirty, trail), release: false)
        }
        span.firstPage = alignedFirst
        span.pageCount = pages
        span.state = .large
        pageMap.set(page: alignedFirst, span: span)
        return span
    }

    /// `pages` rounded up to a whole number of span pages.
    @inline(__always)
    func roundedToSpanPages(_ pages: UInt) -> UInt {
        (pages &+ spanPageGranules &- 1) & ~(spanPageGranules &- 1)
    }

    /// Returns a span's pages to the heap, coalescing with free neighbours.
    /// `dirtyPages`: how many may hold data (default: all, as for a span that
    /// was in use). `release`: give the run back to the OS now if the policy
    /// below says so; the run is then returned instead of kept, for the
    /// caller to hand to `release(_:)` once it has let go of the lock.
    @discardableResult
    mutating func freeSpan(_ span: SpanRef, dirtyPages: UInt? = nil, release: Bool = true) -> SpanRef? {
        var first = span.firstPage
        var count = span.pageCount
        var dirty = dirtyPages ?? count

        if first > 0, let left = pageMap.span(ofPage: first &- 1),
           left.state == .free, left.contains(page: first &- 1),
           left.firstPage &+ left.pageCount == first {
            removeFree(left)
            first = left.firstPage
            count &+= left.pageCount
            dirty &+= left.dirtyPages
            retire(left)
        }
        let after = first &+ count
        if let right = pageMap.span(ofPage: after),
           right.state == .free, right.firstPage == after {
            removeFree(right)
            count &+= right.pageCount
            dirty &+= right.dirtyPages
            retire(right)
        }
        span.firstPage = first
        span.pageCount = count
        span.next = nil
        span.prev = nil
        span.freeObjects = nil
        span.liveObjects = 0
        span.inPartialList = false
        span.dirtyPages = min(dirty, count)
        // Give the run back now if the heap would hold too many dirty free
        // pages; otherwise keep it for reuse, however long (an allocate/free
        // loop should not pay a page fault per page; a run that stays free
        // goes back after decay_ms).
        let dirtyAfter = dirtyBytes &+ (span.dirtyPages << UInt(Page.shift))
        if release && releasesAtLimit && span.dirtyPages > 0 && dirtyAfter > dirtyLimit {
            releasedOverLimit &+= span.dirtyPages << UInt(Page.shift)
            return markReleasing(span, onto: nil)
        }
        insertFree(span)
        return nil
    }

    /// Returns runs given back to the OS (a chain from `markReleasing`) to
    /// the free lists, clean, coalescing with their neighbours.
    mutating func returnReleasedLocked(_ runs: SpanRef?) {
        var cursor = runs
        while let span = cursor {
            cursor = span.next
            span.next = nil
            releasingSpans &-= 1
            freeSpan(span, dirtyPages: 0, release: false)
        }
    }

    /// Gives back the resident pages of free spans that have stayed free
    /// for `decayMilliseconds` or more (by the clock reading `now`), longest
    /// spans first, while more than `floor` bytes of free pages are resident
    /// (the scavenger's decay pass). Spans freed and reused within that time
    /// keep their pages, so a program that keeps cycling memory does not pay
    /// for page faults (passes come every `scavenge_interval` objects, a few
    /// milliseconds apart for small objects, so an age counted in passes
    /// had such a program fault its pages in again every cycle). Takes
    /// those spans out of the lists, as a chain for `release(_:)`, which
    /// gives them back.
    mutating func takeIdleRunsLocked(floor: UInt, now: UInt64, decayMilliseconds: UInt64) -> SpanRef? {
        if now &- epochStart >= decayMilliseconds / UInt64(PageHeap.epochsPerDecay) {
            epoch &+= 1
            epochStart = now
        }
        decayPassesSinceReview &+= 1
        if decayPassesSinceReview >= PageHeap.limitDecayPasses {
            if dirtyPeak < dirtyLimit / 4 { dirtyLimit = max(PageHeap.minDirtyLimit, dirtyLimit / 2) }
            dirtyPeak = dirtyBytes
            decayPassesSinceReview = 0
        }
        guard dirtyBytes > floor else { return nil }
        var runs: SpanRef? = nil
        // freeLists[0] holds the longest spans, then maxListedPages down to 1.
        var list = 0
        while dirtyBytes > floor {
            var cursor = freeLists[list].head
            while let span = cursor, dirtyBytes > floor {
                cursor = span.next
                if span.dirtyPages > 0 && epoch &- span.freedInEpoch > PageHeap.epochsPerDecay {
                    removeFree(span)
                    runs = markReleasing(span, onto: runs)
                }
            }
            list = list == 0 ? PageHeap.maxListedPages : list - 1
            if list == 0 { break }
        }
        return runs
    }

    /// Takes every free span with resident pages out of the lists, as a
    /// chain for `release(_:)` (giving every free page back).
    mutating func takeDirtyRunsLocked() -> SpanRef? {
        dirtyLimit = PageHeap.minDirtyLimit
        releasedOverLimit = 0
        handedOutSinceRelease = 0
        var runs: SpanRef? = nil
        for i in 0...PageHeap.maxListedPages {
            var cursor = freeLists[i].head
            while let span = cursor {
                cursor = span.next
                if span.dirtyPages > 0 {
                    removeFree(span)
                    runs = markReleasing(span, onto: runs)
                }
            }
        }
        return runs
    }

    // MARK: small spans (called by central free lists)

    /// Up to `count` spans of `pages` pages for objects of `sizeClass`, a
    /// chain through `next`, every page of each mapped to it in the page map
    /// (lock held); fewer only when the OS has no memory. The best fit for
    /// one span gives as many as it holds and the chain still needs: one
    /// free-list update for them all, where taking them one at a time would
    /// split the same run again for each.
    mutating func allocateSmallSpansLocked(pages requested: UInt, sizeClass: UInt8, count: UInt) -> SpanRef? {
        let pages = roundedToSpanPages(requested)
        var chain: SpanRef? = nil
        var made: UInt = 0
        while made < count, let run = bestFit(pages) {
            let carved = min(count &- made, run.pageCount / pages)
            let first = take(carved &* pages, from: run)
            // Each span keeps the run's bound on dirty pages, as a split does.
            let dirty = first.dirtyPages
            for i in 0..<carved {
                let span = i == 0 ? first : newSpanRecord(first: first.firstPage &+ i &* pages, count: pages)
                span.pageCount = pages
                span.dirtyPages = min(dirty, pages)
                span.state = .small
                span.sizeClass = sizeClass
                pageMap.setRange(span, sizeClass: sizeClass)
                span.next = chain
                chain = span
            }
            made &+= carved
        }
        return chain
    }

    /// Takes back small spans whose objects have all come home (a chain
    /// through `next`; lock held); returns the runs to give back, as
    /// `freeSpan` says. Spans of the chain that are neighbours become one
    /// run first (a batch often empties neighbours): one free-list update
    /// for them, where freeing them one at a time would take the growing
    /// run out of its list and put it back for each.
    mutating func freeSmallSpansLocked(_ spans: SpanRef) -> SpanRef? {
        // Sorted by address, by insertion: a chain lists the spans a batch
        // emptied, last first, so spans freed in address order go in front
        // at once.
        var sorted: SpanRef? = nil
        var cursor: SpanRef? = spans
        while let span = cursor {
            cursor = span.next
            pageMap.setRange(span, sizeClass: 0)
            if let head = sorted, head.firstPage < span.firstPage {
                var before = head
                while let next = before.next, next.firstPage < span.firstPage { before = next }
                span.next = before.next
                before.next = span
            } else {
                span.next = sorted
                sorted = span
            }
        }
        var runs: SpanRef? = nil
        cursor = sorted
        while let run = cursor {
            cursor = run.next
            while let neighbour = cursor, run.firstPage &+ run.pageCount == neighbour.firstPage {
                cursor = neighbour.next
                run.pageCount &+= neighbour.pageCount
                retire(neighbour)
            }
            if let given = freeSpan(run) {
                given.next = runs
                runs = given
            }
        }
        return runs
    }

    fileprivate mutating func recordMappedLocked(_ memory: UnsafeMutableRawPointer, length: Int) -> SpanRef {
        let span = newSpanRecord(first: Page.number(of: UInt(bitPattern: memory)),
                                 count: UInt(Page.count(for: length)!))
        span.state = .mapped
        span.mappedStart = UInt(bitPattern: memory)
        span.mappedBytes = UInt(length)
        pageMap.set(page: span.firstPage, span: span)
        directBytes &+= UInt(length)
        directCount &+= 1
        return span
    }

    /// Takes back a directly mapped allocation (page heap lock held): the
    /// page map forgets it (a racing double free finds nothing) and the
    /// mapping goes to the cache. Returns a range the caller unmaps after
    /// releasing the lock, when the cache did not keep it.
    mutating func freeMappedLocked(_ span: SpanRef) -> Unmappings {
        let start = span.mappedStart
        let length = span.mappedBytes
        pageMap.clear(page: span.firstPage)
        directBytes &-= length
        directCount &-= 1
        retire(span)
        return mappingCache.put(start: start, length: length)
    }

    // MARK: lookups

    /// The span holding `address` if it is the start of a live large or mapped
    /// allocation; nil otherwise. Page heap lock held, or inside an RCU
    /// read-side section (the record then stays readable, if perhaps stale,
    /// until the section ends; the checks reject a stale one).
    func largeSpan(startingAt address: UInt) -> SpanRef? {
        PageHeap.largeSpan(in: pageMap, startingAt: address)
    }

    /// `largeSpan(startingAt:)` from the page map alone (for a reader
    /// without the lock, which must not access the whole heap).
    static func largeSpan(in pageMap: PageMap, startingAt address: UInt) -> SpanRef? {
        let page = Page.number(of: address)
        guard let span = pageMap.span(ofPage: page) else { return nil }
        let state = span.state
        guard state == .large || state == .mapped, span.firstPage == page,
              span.allocationStart == address else { return nil }
        return span
    }
}

// The page heap's operations that take its lock, called through the heap's
// address (Guarded).
extension UnsafeMutablePointer where Pointee == Guarded<PageHeap> {
    // MARK: small spans (called by central free lists)

    /// Up to `count` spans of `pages` pages for objects of `sizeClass`,
    /// every page mapped to its span in the page map, as a chain through
    /// `next` (one acquisition of the lock for all).
    func allocateSmallSpans(pages: UInt, sizeClass: UInt8, count: UInt) -> SpanRef? {
        withLock { $0.allocateSmallSpansLocked(pages: pages, sizeClass: sizeClass, count: count) }
    }

    /// Takes back small spans whose objects have all come home (a chain
    /// through `next`), with one acquisition of the lock; the runs to give
    /// back to the OS are given back after it.
    func freeSmallSpans(_ spans: SpanRef) {
        release(withLock { $0.freeSmallSpansLocked(spans) })
    }

    // MARK: giving pages back (without the lock)

    /// Gives the runs of a chain from the locked methods back to the OS,
    /// then returns them to the heap, clean. Returns the bytes released.
    @discardableResult
    func release(_ runs: SpanRef?) -> UInt {
        guard let runs else { return 0 }
        var released: UInt = 0
        var cursor: SpanRef? = runs
        while let span = cursor {
            // `.releasing` spans are the caller's alone until returned.
            OSMemory.release(span.start, Int(span.byteCount))
            released &+= span.dirtyPages << UInt(Page.shift)
            cursor = span.next
        }
        withLock { $0.returnReleasedLocked(runs) }
        return released
    }

    /// With the lock held (fork's prepare handler, holding no lock that
    /// comes after this one): lets go of it and takes it again until no run
    /// is out being given back, so that a forked child does not inherit
    /// spans that the thread giving them back, absent in the child, would
    /// never return. Such a run needs only this lock to come back.
    func waitForReleases() {
        while state.pointee.releasingSpans != 0 {
            unlock()
            sm_yield()
            lock()
        }
    }

    /// The scavenger's decay pass: gives back the resident pages of free
    /// spans idle for `decayMilliseconds`, down to `floor`
    /// (`takeIdleRunsLocked`).
    func decay(floor: UInt, decayMilliseconds: UInt64) -> UInt {
        let now = sm_monotonic_ms()
        return release(withLock { $0.takeIdleRunsLocked(floor: floor, now: now, decayMilliseconds: decayMilliseconds) })
    }

    /// Gives every free page and every cached mapping back to the OS.
    /// Returns the bytes released.
    func releaseAll() -> UInt {
        let (runs, unmappings) = withLock { ($0.takeDirtyRunsLocked(), $0.mappingCache.removeAll()) }
        return unmappings.unmapAll() &+ release(runs)
    }

    // MARK: directly mapped allocations

    /// Maps `bytes` for one allocation, aligned to `alignment` and at least
    /// to a span page, like the page heap's blocks: a cached mapping that
    /// fits, or a new one. `reused` says which (a
    /// reused one holds old data; a new one reads as zero).
    func mapLarge(bytes: Int, alignment: Int) -> (span: SpanRef, reused: Bool)? {
        let systemPage = Int(sm_os_page_size())
        let (rounded, overflow) = bytes.addingReportingOverflow(systemPage - 1)
        if overflow { return nil }
        let length = rounded & ~(systemPage - 1)
        let align = max(alignment, Int(state.pointee.spanPageGranules) << Page.shift)
        let reused = withLock { heap -> (span: SpanRef, tail: Unmappings)? in
            guard let (cached, tail) = heap.mappingCache.take(length: UInt(length), alignment: UInt(align)) else { return nil }
            return (heap.recordMappedLocked(UnsafeMutableRawPointer(bitPattern: cached.start).unsafelyUnwrapped,
                                            length: Int(cached.length)), tail)
        }
        if let reused {
            reused.tail.unmapAll()
            return (reused.span, true)
        }
        // Mapped without the lock: mmap can take a while.
        guard let memory = OSMemory.mapAligned(length, alignment: align) else { return nil }
        return (withLock { $0.recordMappedLocked(memory, length: length) }, false)
    }

    /// Grows or shrinks a directly mapped allocation in place or by moving it
    /// (mremap). Returns the new start, or nil (the old mapping is intact).
    /// The allocation is the caller's (realloc), so its record is not
    /// touched by others; mremap runs without the lock, and the page map
    /// forgets the old start before it, since once moved, the old range may
    /// be another mapping's.
    func remapLarge(_ span: SpanRef, bytes: Int) -> UnsafeMutableRawPointer? {
        let systemPage = Int(sm_os_page_size())
        let (rounded, overflow) = bytes.addingReportingOverflow(systemPage - 1)
        if overflow { return nil }
        let length = rounded & ~(systemPage - 1)
        let oldLength = span.mappedBytes
        let oldStart = UnsafeMutableRawPointer(bitPattern: span.mappedStart)!
        withLock { $0.pageMap.clear(page: span.firstPage) }
        let memory = sm_os_remap(oldStart, Int(oldLength), length)
        return withLock { heap -> UnsafeMutableRawPointer? in
            if let memory {
                // mremap keeps only the system page alignment: the start may lie
                // inside one of our pages, which is why mapped spans keep mappedStart.
                span.firstPage = Page.number(of: UInt(bitPattern: memory))
                span.pageCount = UInt(Page.count(for: length)!)
                span.mappedStart = UInt(bitPattern: memory)
                span.mappedBytes = UInt(length)
                heap.directBytes = heap.directBytes &- oldLength &+ UInt(length)
            }
            heap.pageMap.set(page: span.firstPage, span: span)
            return memory
        }
    }
}
