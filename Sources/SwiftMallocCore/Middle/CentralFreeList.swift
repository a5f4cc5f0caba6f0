// The central free list of one size class: the spans carved into its objects.
//
// Caches take objects out and bring them back in batches. A span with free
// objects sits in the partial list; a span whose objects are all out leaves
// it; a span whose objects have all come back goes to the back end. The
// back end is a parameter (SpanSource): the page heap in the allocator, a
// stub in unit tests.

struct CentralFreeList {
    var sizeClass: UInt8 = 0
    var objectSize: UInt = 0
    var spanPages: UInt = 0
    var partial = SpanList()
    /// Spans this list owns (lock held to write).
    var spanCount: UInt = 0

    init(sizeClass: Int, table: SizeClassTable) {
        self.sizeClass = UInt8(sizeClass)
        objectSize = UInt(table.size(of: sizeClass))
        spanPages = UInt(table.spanGranules(of: sizeClass))
    }

    /// `removeRange` with the lock held.
    mutating func removeRangeLocked<Spans: SpanSource>(_ count: UInt32, from spans: Spans) -> (head: ObjectPointer?, count: UInt32) {
        var head: ObjectPointer? = nil
        var taken: UInt32 = 0
        while taken < count {
            var span = partial.head
            if span == nil {
                guard let fresh = newSpan(from: spans) else { break }
                span = fresh
            }
            let s = span!
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

    /// A new span for this class, already in the partial list.
    private mutating func newSpan<Spans: SpanSource>(from spans: Spans) -> SpanRef? {
        // The page heap has its own lock; taking it under ours is the one
        // lock order of the middle (central -> page heap).
        guard let span = spans.allocateSmallSpan(pages: spanPages, sizeClass: sizeClass) else { return nil }
        span.objectDivisibility = SizeClassTable.divisibilityConstant(forSize: Int(objectSize))
        span.bumpNext = span.startAddress
        span.bumpEnd = span.startAddress &+ (span.byteCount / objectSize) &* objectSize
        span.inPartialList = true
        partial.pushFront(span)
        spanCount &+= 1
        return span
    }

    /// The chain's objects go home until one is rejected; returns that one.
    mutating func insertLocked<Spans: SpanSource>(_ chain: ObjectPointer, _ spans: Spans)
        -> (object: ObjectPointer, problem: FreeProblem)? {
        var cursor: ObjectPointer? = chain
        while let object = cursor {
            cursor = object.nextFree
            let page = Page.number(of: UInt(bitPattern: object))
            // Also catches a pointer inside an object (the caches take any
            // pointer into a small span; it is caught here, on its way home).
            guard let span = spans.span(ofPage: page),
                  span.state == .small, span.sizeClass == sizeClass,
                  (UInt(bitPattern: object) &- span.startAddress) % objectSize == 0 else {
                return (object, .invalidPointer)
            }
            // A span with no object out, or whose free list starts with this
            // one: the object is being freed twice (the second case catches
            // the global front end's free(p); free(p)).
            if span.liveObjects == 0 || span.freeObjects == object { return (object, .doubleFree) }
            object.nextFree = span.freeObjects
            span.freeObjects = object
            span.liveObjects &-= 1
            if span.liveObjects == 0 {
                // Every object is home: the pages go back to the back end.
                if span.inPartialList { partial.remove(span) }
                spanCount &-= 1
                spans.freeSmallSpan(span)
            } else if !span.inPartialList {
                span.inPartialList = true
                partial.pushFront(span)
            }
        }
        return nil
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
    /// chain and how many it holds (0 only when the OS has no memory).
    func removeRange<Spans: SpanSource>(_ count: UInt32, from spans: Spans) -> (head: ObjectPointer?, count: UInt32) {
        withLock { $0.removeRangeLocked(count, from: spans) }
    }

    /// Brings back a NULL-terminated chain of objects of this class. An
    /// object that is not one of this class's, or is already home, stops the
    /// process (after the lock is released).
    func insertRange<Spans: SpanSource>(_ chain: ObjectPointer, to spans: Spans) {
        let rejected = withLock { $0.insertLocked(chain, spans) }
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
