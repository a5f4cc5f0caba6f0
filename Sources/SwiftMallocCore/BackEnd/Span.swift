// A span: a run of contiguous pages, the page heap's unit of allocation.
//
// Span records are read without a lock (malloc_usable_size, realloc) and
// retired through RCU: a record that coalescing absorbs, or whose mapping
// goes back to the OS, is reused only after a grace period (Reclamation).
//
// A span is free (in a page-heap free list), carved into small objects of one
// size class (owned by that class's central list), one large allocation, or a
// large allocation mapped directly from the OS. Span records live in metadata
// memory and are recycled, never unmapped, so a stale page-map entry always
// points at a readable record (which is why `free` can validate pointers).
import SwiftMallocShims

enum SpanState: UInt8 {
    case unused = 0      // record on the recycling list
    case free = 1        // pages in the page heap
    case small = 2       // carved into objects of `sizeClass`
    case large = 3       // one allocation of whole pages from the page heap
    case mapped = 4      // one allocation mapped directly with mmap
    case retired = 5     // unlinked, waiting for an RCU grace period
    case releasing = 6   // free pages being given back to the OS without the lock: in no list
    case poisoned = 0xEE // debug mode: grace period over, record not reused yet
}

struct Span {
    var firstPage: UInt = 0
    var pageCount: UInt = 0
    /// Small spans: SizeClassTable.divisibilityConstant of the object size,
    /// next to `firstPage` because `free` reads both to check that a pointer
    /// is where an object starts.
    var objectDivisibility: UInt64 = 0
    var next: SpanRef? = nil
    var prev: SpanRef? = nil

    // Small spans: free objects come from `freeObjects` first, then from the
    // never-used tail [bumpNext, bumpEnd), carved lazily so that a new span
    // touches no memory until its objects are used.
    var freeObjects: ObjectPointer? = nil
    /// A relaxed atomic word (SpanRef.bumpNext): written under the central
    /// list's lock, read without it by free's pointer check.
    var bumpNext: UInt = 0
    var bumpEnd: UInt = 0
    var liveObjects: UInt32 = 0     // objects out of the span (in caches or in use)
    var sizeClass: UInt8 = 0
    var state: SpanState = .unused
    /// Free spans: how many of the pages may hold data (at most pageCount);
    /// the others were given back to the OS or never touched, and read as
    /// zero without being resident. In-use spans: the same bound, as taken
    /// from the free span they were carved from.
    var dirtyPages: UInt = 0
    /// Free spans: the page heap's decay epoch in which the span became free
    /// (PageHeap.takeIdleRunsLocked gives back those free for `decay_ms`).
    var freedInEpoch: UInt32 = 0
    /// Small spans: linked in the central list's partial list.
    var inPartialList: Bool = false
    /// Mapped spans: where the mapping starts (aligned to the system page,
    /// which after mremap may be inside `firstPage`) and its length.
    var mappedStart: UInt = 0
    var mappedBytes: UInt = 0
}

/// Retired and unused records are linked through `next`, like free ones:
/// a record is in one list at a time.
extension Span: PoolRecord {
    var poolNext: UnsafeMutablePointer<Span>? {
        get { next?.record }
        set { next = newValue.map(SpanRef.init) }
    }
}

/// A span record by address: how the page map, the lists and their callers
/// hold a span. Its properties read and write the record in place (records
/// live in metadata memory and never move), so `span.firstPage` is one load.
struct SpanRef: Hashable {
    let record: UnsafeMutablePointer<Span>

    @inline(__always) init(_ record: UnsafeMutablePointer<Span>) { self.record = record }

    @inline(__always) var firstPage: UInt {
        get { record.pointee.firstPage }
        nonmutating set { record.pointee.firstPage = newValue }
    }
    @inline(__always) var pageCount: UInt {
        get { record.pointee.pageCount }
        nonmutating set { record.pointee.pageCount = newValue }
    }
    @inline(__always) var objectDivisibility: UInt64 {
        get { record.pointee.objectDivisibility }
        nonmutating set { record.pointee.objectDivisibility = newValue }
    }
    @inline(__always) var next: SpanRef? {
        get { record.pointee.next }
        nonmutating set { record.pointee.next = newValue }
    }
    @inline(__always) var prev: SpanRef? {
        get { record.pointee.prev }
        nonmutating set { record.pointee.prev = newValue }
    }
    @inline(__always) var freeObjects: ObjectPointer? {
        get { record.pointee.freeObjects }
        nonmutating set { record.pointee.freeObjects = newValue }
    }
    /// Loads and stores are relaxed atomics: free's pointer check
    /// (Allocator.smallObjectClass) reads the word without the central
    /// list's lock, under which it is written. On x86-64 either is a plain
    /// mov, but an atomic load is never folded into the instruction that
    /// uses it (free's compare takes one more instruction). The word is
    /// reached by its address in the record, never through an `inout`
    /// access (ThreadSanitizer counts one as a plain write).
    @inline(__always) var bumpNext: UInt {
        get { sm_atomic_load_uptr(bumpNextAddress) }
        nonmutating set { sm_atomic_store_uptr(bumpNextAddress, newValue) }
    }
    /// Where `Span.bumpNext` lies in a record. Embedded Swift cannot fold
    /// `MemoryLayout.offset(of:)` in every context this is inlined into, so
    /// the offset is written out; UnitPageHeapTests checks it.
    static let bumpNextOffset = 48
    @inline(__always) private var bumpNextAddress: UnsafeMutablePointer<UInt> {
        (UnsafeMutableRawPointer(record) + SpanRef.bumpNextOffset).assumingMemoryBound(to: UInt.self)
    }
    @inline(__always) var bumpEnd: UInt {
        get { record.pointee.bumpEnd }
        nonmutating set { record.pointee.bumpEnd = newValue }
    }
    @inline(__always) var liveObjects: UInt32 {
        get { record.pointee.liveObjects }
        nonmutating set { record.pointee.liveObjects = newValue }
    }
    @inline(__always) var sizeClass: UInt8 {
        get { record.pointee.sizeClass }
        nonmutating set { record.pointee.sizeClass = newValue }
    }
    @inline(__always) var state: SpanState {
        get { record.pointee.state }
        nonmutating set { record.pointee.state = newValue }
    }
    @inline(__always) var dirtyPages: UInt {
        get { record.pointee.dirtyPages }
        nonmutating set { record.pointee.dirtyPages = newValue }
    }
    @inline(__always) var freedInEpoch: UInt32 {
        get { record.pointee.freedInEpoch }
        nonmutating set { record.pointee.freedInEpoch = newValue }
    }
    @inline(__always) var inPartialList: Bool {
        get { record.pointee.inPartialList }
        nonmutating set { record.pointee.inPartialList = newValue }
    }
    @inline(__always) var mappedStart: UInt {
        get { record.pointee.mappedStart }
        nonmutating set { record.pointee.mappedStart = newValue }
    }
    @inline(__always) var mappedBytes: UInt {
        get { record.pointee.mappedBytes }
        nonmutating set { record.pointee.mappedBytes = newValue }
    }

    @inline(__always) var startAddress: UInt { Page.address(of: firstPage) }
    @inline(__always) var start: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: startAddress)! }
    /// The address handed to the program for a large or mapped span.
    @inline(__always) var allocationStart: UInt { state == .mapped ? mappedStart : startAddress }
    @inline(__always) var byteCount: UInt { pageCount << UInt(Page.shift) }
    @inline(__always) var lastPage: UInt { firstPage &+ pageCount &- 1 }
    @inline(__always) func contains(page: UInt) -> Bool { page >= firstPage && page &- firstPage < pageCount }

    /// Takes one free object from a small span, or nil when it is exhausted.
    @inline(__always)
    func takeObject(size: UInt) -> ObjectPointer? {
        if let object = freeObjects {
            freeObjects = object.nextFree
            liveObjects &+= 1
            return object
        }
        if bumpNext &+ size <= bumpEnd {
            let object = UnsafeMutableRawPointer(bitPattern: bumpNext)
            bumpNext &+= size
            liveObjects &+= 1
            return object
        }
        return nil
    }

    @inline(__always) var hasFreeObjects: Bool { freeObjects != nil || bumpNext < bumpEnd }
}

