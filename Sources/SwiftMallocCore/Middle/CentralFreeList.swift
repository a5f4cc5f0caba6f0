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

    /// Up to `count` objects from the partial spans, stored at
    /// `objects[0..<count]` from the end down, so that the first taken is
    /// last: the caches use an array from its end and a chain from its
    /// start, so the program gets the objects of the fullest spans first,
    /// which lets the others empty. (Filled from the start, `fragmentation`'s
    /// worst phase rose from 3.7 to 4.0 times the live bytes.) Lock held;
    /// returns how many, fewer when the partial spans run out (then at the
    /// end of the range). Objects carved from a span's never-used tail are
    /// not touched (the caller's cache keeps pointers; the program writes
    /// them first).
    mutating func removeRangeLocked(_ count: UInt32, into objects: UnsafeMutablePointer<ObjectPointer?>) -> UInt32 {
        var taken: UInt32 = 0
        while taken < count, let s = partial.head {
            while taken < count, let object = s.takeObject(size: objectSize) {
                taken &+= 1
                objects[Int(count &- taken)] = object
            }
            if !s.hasFreeObjects {
                partial.remove(s)
                s.inPartialList = false
            }
        }
        return taken
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

    /// The `count` objects at `objects` go home until one is rejected;
    /// returns that one, and the spans whose objects have all come home, out
    /// of the list, as a chain through `next` for the back end.
    mutating func insertLocked<Spans: SpanSource>(_ objects: UnsafePointer<ObjectPointer?>, count: Int, _ spans: Spans)
        -> (rejected: (object: ObjectPointer, problem: FreeProblem)?, emptied: SpanRef?) {
        var emptied: SpanRef? = nil
        // The span of the previous object: objects freed together are
        // often neighbours, and then need no page-map walk. (A span emptied
        // below stays `.small` until the back end has it, so an object of it
        // seen again is caught as freed twice.)
        var span: SpanRef? = nil
        var i = 0
        while i < count {
            let object = objects[i].unsafelyUnwrapped
            i &+= 1
            let address = UInt(bitPattern: object)
            if span == nil || address &- span.unsafelyUnwrapped.startAddress >= span.unsafelyUnwrapped.byteCount {
                // Also catches a pointer inside an object (the caches take
                // any pointer into a small span; it is caught here, on its
                // way home).
                guard let found = spans.span(ofPage: Page.number(of: address)),
                      found.state == .small, found.sizeClass == sizeClass else {
                    return ((object, .invalidPointer), emptied)
                }
                span = found
            }
            let home = span.unsafelyUnwrapped
            guard SizeClassTable.isMultiple(address &- home.startAddress, divisibility: home.objectDivisibility) else {
                return ((object, .invalidPointer), emptied)
            }
            // A span with no object out, or whose free list starts with this
            // one: the object is being freed twice (the second case catches
            // the global front end's free(p); free(p)).
            if home.liveObjects == 0 || home.freeObjects == object { return ((object, .doubleFree), emptied) }
            object.nextFree = home.freeObjects
            home.freeObjects = object
            home.liveObjects &-= 1
            if home.liveObjects == 0 {
                // Every object is home: the pages go back to the back end.
                if home.inPartialList {
                    partial.remove(home)
                    home.inPartialList = false
                }
                spanCount &-= 1
                home.next = emptied
                emptied = home
            } else if !home.inPartialList {
                home.inPartialList = true
                partial.pushFront(home)
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
    /// Takes up to `count` objects, stored at `objects` in the order
    /// `removeRangeLocked` gives. Returns how many (0 only when the OS has no
    /// memory). When the partial spans fall short, the spans for the rest
    /// come from the back end, without this list's lock.
    func removeRange<Spans: SpanSource>(_ count: UInt32, into objects: UnsafeMutablePointer<ObjectPointer?>,
                                        from spans: Spans) -> UInt32 {
        let taken = withLock { $0.removeRangeLocked(count, into: objects) }
        if taken == count { return taken }
        // Fixed at start-up, so read without the lock.
        let perSpan = state.pointee.objectsPerSpan
        let wanted = (UInt(count &- taken) &+ perSpan &- 1) / perSpan
        // The rest goes in front of what was taken (objects[count - taken ..< count]).
        var total = taken
        if let fresh = spans.allocateSmallSpans(pages: state.pointee.spanPages, sizeClass: state.pointee.sizeClass,
                                                count: wanted) {
            total &+= withLock { list in
                list.adoptLocked(fresh)
                return list.removeRangeLocked(count &- taken, into: objects)
            }
        }
        if total < count {
            // Out of memory: what was taken, to the front.
            let first = Int(count &- total)
            for i in 0..<Int(total) { objects[i] = objects[first &+ i] }
        }
        return total
    }

    /// Brings back the `count` objects of this class at `objects`; spans it
    /// empties go back to the back end after the lock is released. An object
    /// that is not one of this class's, or is already home, stops the
    /// process (after that).
    func insertRange<Spans: SpanSource>(_ objects: UnsafePointer<ObjectPointer?>, count: Int, to spans: Spans) {
        let (rejected, emptied) = withLock { $0.insertLocked(objects, count: count, spans) }
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
