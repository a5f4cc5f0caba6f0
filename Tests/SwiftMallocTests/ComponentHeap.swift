// Components built on their own, for unit tests: none of them is the test
// process's Heap (Heap.ensureInitialized) or shares anything with it.
import XCTest

@testable import SwiftMallocCoreTestable

/// A back end and a middle of the test's own: a metadata arena, a page heap
/// with its own page map and regions, and the middle over it.
struct PrivateHeap {
    let metadata: UnsafeMutablePointer<Guarded<MetadataArena>>
    let pageHeap: UnsafeMutablePointer<Guarded<PageHeap>>
    let table: SizeClassTable
    let middle: Middle

    /// `shards` transfer-cache shards over `cpus` CPUs (Middle).
    init(shards: Int = 1, cpus: Int = 1) {
        metadata = .allocate(capacity: 1)
        metadata.initialize(to: Guarded(MetadataArena()))
        table = SizeClassTable(metadata: &metadata.state.pointee, spanPageSize: Page.defaultSpanPageSize)
        pageHeap = .allocate(capacity: 1)
        pageHeap.initialize(to: Guarded(PageHeap(metadata: metadata, spanPageSize: Page.defaultSpanPageSize)!))
        middle = Middle(table: table, spans: PageHeapSpans(pageHeap), metadata: metadata, shards: shards, cpus: cpus)
    }

    var pageMap: PageMap { pageHeap.pointee.state.pageMap }
}

/// A back end for a central list that is not a page heap: spans carved from
/// one private mapping, every call recorded.
final class StubSpans: SpanSource {
    let base: UnsafeMutableRawPointer
    let pages: Int
    private var nextPage = 0
    private(set) var allocated: [SpanRef] = []
    private(set) var freed: [SpanRef] = []
    private var byPage: [UInt: SpanRef] = [:]

    init(pages: Int) {
        self.pages = pages
        base = OSMemory.mapAligned(pages * Page.size, alignment: Page.size)!
    }

    /// Calls of allocateSmallSpans and freeSmallSpans, and the spans each moved.
    private(set) var allocateCalls: [Int] = []
    private(set) var freeCalls: [Int] = []

    func allocateSmallSpans(pages count: UInt, sizeClass: UInt8, count spans: UInt) -> SpanRef? {
        var chain: SpanRef? = nil
        var made = 0
        while made < Int(spans), nextPage + Int(count) <= pages {
            let record = UnsafeMutablePointer<Span>.allocate(capacity: 1)
            record.initialize(to: Span(firstPage: Page.number(of: UInt(bitPattern: base)) + UInt(nextPage), pageCount: count,
                                       sizeClass: sizeClass, state: .small))
            let span = SpanRef(record)
            for p in 0..<count { byPage[span.firstPage + p] = span }
            nextPage += Int(count)
            allocated.append(span)
            span.next = chain
            chain = span
            made += 1
        }
        allocateCalls.append(made)
        return chain
    }

    func freeSmallSpans(_ spans: SpanRef) {
        var cursor: SpanRef? = spans
        var count = 0
        while let span = cursor {
            cursor = span.next
            freed.append(span)
            span.state = .free
            count += 1
        }
        freeCalls.append(count)
    }

    func span(ofPage page: UInt) -> SpanRef? { byPage[page] }
}
