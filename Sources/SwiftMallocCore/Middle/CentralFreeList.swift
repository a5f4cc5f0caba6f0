// The central free list of one size class: the spans carved into its objects.
//
// Caches take objects out and bring them back in batches. A span with free
// objects sits in the partial list; a span whose objects are all out leaves
// it; a span whose objects have all come back goes to the back end. The
// back end is a parameter (SpanSource): the page heap in the allocator, a
// stub in unit tests.
//
// The back end is never called under this list's lock: the spans a batch
// needs are taken after letting go of it (all of them with one acquisition
// of the page heap's lock), and the spans a batch empties go back after it
// (likewise), so threads returning objects of this class never wait for the
// page heap, nor for the system calls it makes when pages go back to the OS.

struct CentralFreeList {
    // What changes comes first: the fields below are read without the lock
    // (Guarded).
    var partial = SpanList()
    /// Spans this list owns (lock held to write).
    var spanCount: UInt = 0
    let sizeClass: UInt8
    let objectSize: UInt
    let spanPages: UInt

    init(sizeClass: Int, table: SizeClassTable) {
        self.sizeClass = UInt8(sizeClass)
        objectSize = UInt(table.size(of: sizeClass))
        spanPages = UInt(table.spanGranules(of: sizeClass))
    }

    /// Objects in one of this class's spans.
    var objectsPerSpan: UInt { (spanPages << UInt(Page.shift)) / objectSize }

    /// Up to `count` objects from the partial spans, in front of the chain
    /// `head` (lock held); fewer when the partial spans run out.
    mutating func removeRangeLocked(_ count: UInt32, onto head: ObjectPointer?) -> (head: ObjectPointer?, count: UInt32) {
        var head = head
        var taken: UInt32 = 0
        while taken < count, let s = partial.head {
            while taken < count, let object = s.takeObject(size: objectSize) {
                object.nextFree = head
                head = object
                taken &+= 1
            }
            if !s.hasFreeObjects {
                partial.remove(s)
                s.inPartialList = false
            }
        }
        return (head, taken)
    }

    /// Makes the new spans of a chain (through `next`, from the back end)
    /// this class's, in the partial list (lock held).
    mutating func adoptLocked(_ fresh: SpanRef) {
        var cursor: SpanRef? = fresh
        while let span = cursor {
            cursor = span.next
            span.objectDivisibility = SizeClassTable.divisibilityConstant(forSize: Int(objectSize))
            span.bumpNext = span.startAddress
            span.bumpEnd = span.startAddress &+ (span.byteCount / objectSize) &* objectSize
            span.inPartialList = true
            partial.pushFront(span)
            spanCount &+= 1
        }
    }

    /// The chain's objects go home until one is rejected; returns that one,
    /// and the spans whose objects have all come home, out of the list, as a
    /// chain through `next` for the back end.
    mutating func insertLocked<Spans: SpanSource>(_ chain: ObjectPointer, _ spans: Spans)
        -> (rejected: (object: ObjectPointer, problem: FreeProblem)?, emptied: SpanRef?) {
        var emptied: SpanRef? = nil
        var cursor: ObjectPointer? = chain
        while let object = cursor {
            cursor = object.nextFree
            let page = Page.number(of: UInt(bitPattern: object))
            // Also catches a pointer inside an object (the caches take any
            // pointer into a small span; it is caught here, on its way home).
            guard let span = spans.span(ofPage: page),
                  span.state == .small, span.sizeClass == sizeClass,
                  (UInt(bitPattern: object) &- span.startAddress) % objectSize == 0 else {
                return ((object, .invalidPointer), emptied)
            }
            // A span with no object out, or whose free list starts with this
            // one: the object is being freed twice (the second case catches
            // the global front end's free(p); free(p)).
            if span.liveObjects == 0 || span.freeObjects == object { return ((object, .doubleFree), emptied) }
            object.nextFree = span.freeObjects
            span.freeObjects = object
            span.liveObjects &-= 1
            if span.liveObjects == 0 {
                // Every object is home: the pages go back to the back end.
                if span.inPartialList {
                    partial.remove(span)
                    span.inPartialList = false
                }
                spanCount &-= 1
                span.next = emptied
                emptied = span
            } else if !span.inPartialList {
                span.inPartialList = true
                partial.pushFront(span)
            }
        }
        return (nil, emptied)
    }

    /// `footprint` with the lock held. Statistics: bytes in this class's spans, and of those, bytes of free
    /// objects still in the spans (never carved tails included).
    mutating func footprintLocked() -> (spanBytes: UInt, freeBytes: UInt) {
        var free: UInt = 0
        var cursor = partial.head
        while let span = cursor {
            let objects = span.byteCount / objectSize
            free &+= (objects &- UInt(span.liveObjects)) &* objectSize
            cursor = span.next
        }
        return (spanCount &* (spanPages << UInt(Page.shift)), free)
    }
}

// A central list's operations, called through its address, under its lock
// (Guarded).
extension UnsafeMutablePointer where Pointee == Guarded<CentralFreeList> {
    /// Takes up to `count` objects as a NULL-terminated chain. Returns the
    /// chain and how many it holds (0 only when the OS has no memory). When
    /// the partial spans fall short, the spans for the rest come from the
    /// back end, without this list's lock.
    func removeRange<Spans: SpanSource>(_ count: UInt32, from spans: Spans) -> (head: ObjectPointer?, count: UInt32) {
        let (head, taken) = withLock { $0.removeRangeLocked(count, onto: nil) }
        if taken == count { return (head, taken) }
        // Fixed at start-up, so read without the lock.
        let perSpan = state.pointee.objectsPerSpan
        let wanted = (UInt(count &- taken) &+ perSpan &- 1) / perSpan
        guard let fresh = spans.allocateSmallSpans(pages: state.pointee.spanPages, sizeClass: state.pointee.sizeClass,
                                                   count: wanted) else {
            return (head, taken)
        }
        return withLock { list in
            list.adoptLocked(fresh)
            let (chain, more) = list.removeRangeLocked(count &- taken, onto: head)
            return (chain, taken &+ more)
        }
    }

    /// Brings back a NULL-terminated chain of objects of this class; spans
    /// it empties go back to the back end after the lock is released. An
    /// object that is not one of this class's, or is already home, stops
    /// the process (after that).
    func insertRange<Spans: SpanSource>(_ chain: ObjectPointer, to spans: Spans) {
        let (rejected, emptied) = withLock { $0.insertLocked(chain, spans) }
        if let emptied { spans.freeSmallSpans(emptied) }
        if let rejected { fatal(rejected.problem.message, pointer: rejected.object) }
    }

    /// Statistics: bytes in this class's spans, and of those, bytes of free
    /// objects still in the spans.
    func footprint() -> (spanBytes: UInt, freeBytes: UInt) {
        withLock { $0.footprintLocked() }
    }

    /// Statistics: how many spans this class owns.
    func spans() -> UInt {
        withLock { $0.spanCount }
    }
}
