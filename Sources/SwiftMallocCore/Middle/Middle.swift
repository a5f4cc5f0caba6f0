// The middle: per size class, a transfer cache in front of a central free
// list. A front end asks for `count` objects of a class and gets a chain; it
// hands back chains. Whole batches go through the transfer cache; anything
// else (a partial batch, a full transfer cache) goes to the central list,
// which gets its spans from the back end (`spans`).

struct Middle {
    let transfer: UnsafeMutablePointer<Guarded<TransferCache>>
    let central: UnsafeMutablePointer<Guarded<CentralFreeList>>
    /// Classes 1 ..< classCount exist (class 0 means "not small").
    let classCount: Int
    let spans: PageHeapSpans

    /// `maxTransferSlots`: batches each transfer cache parks, at most.
    init(table: SizeClassTable, spans: PageHeapSpans, metadata: UnsafeMutablePointer<Guarded<MetadataArena>>,
         maxTransferSlots: Int = TransferCache.defaultMaxSlots) {
        classCount = table.count
        self.spans = spans
        central = metadata.allocateArray(of: Guarded<CentralFreeList>.self, count: table.count)
        transfer = metadata.allocateArray(of: Guarded<TransferCache>.self, count: table.count)
        for c in 0..<table.count {
            central.advanced(by: c).initialize(to: Guarded(CentralFreeList(sizeClass: c, table: table)))
            let size = c == 0 ? 8 : table.size(of: c)
            let batch = c == 0 ? 2 : Int(table.batch[c])
            transfer.advanced(by: c).initialize(to: Guarded(TransferCache(batchSize: batch, objectSize: size,
                                                                          maxSlots: maxTransferSlots,
                                                                          metadata: &metadata.state.pointee)))
        }
    }

    /// Up to `count` objects of `sizeClass`, stored at `objects`; returns
    /// how many (0 only when the OS has no memory). A whole batch from the
    /// transfer cache is copied without touching the objects.
    func fetch(_ sizeClass: Int, count: UInt32, into objects: UnsafeMutablePointer<ObjectPointer?>) -> UInt32 {
        let transfer = self.transfer + sizeClass
        if count == transfer.state.pointee.batchSize && transfer.removeBatch(into: objects) != nil { return count }
        let (chain, taken) = (central + sizeClass).removeRange(count, from: spans)
        Middle.unlink(chain, into: objects, count: taken)
        return taken
    }

    /// Up to `count` objects of `sizeClass` as a NULL-terminated chain (for
    /// caches that keep chains).
    func fetch(_ sizeClass: Int, count: UInt32) -> (head: ObjectPointer?, count: UInt32) {
        let transfer = self.transfer + sizeClass
        let batch = transfer.state.pointee.batchSize
        if count == batch {
            let parked = withUnsafeTemporaryAllocation(of: ObjectPointer?.self, capacity: Int(batch)) { objects -> ObjectPointer? in
                let base = objects.baseAddress.unsafelyUnwrapped
                guard let linked = transfer.removeBatch(into: base) else { return nil }
                // A batch parked as a chain is one still: no object touched.
                return linked ? base[0] : Middle.link(base, count: batch)
            }
            if let parked { return (parked, count) }
        }
        return (central + sizeClass).removeRange(count, from: spans)
    }

    /// Takes back the `count` objects of `sizeClass` stored at `objects`.
    func release(_ sizeClass: Int, objects: UnsafeMutablePointer<ObjectPointer?>, count: UInt32) {
        let transfer = self.transfer + sizeClass
        if count == transfer.state.pointee.batchSize && transfer.insertBatch(objects, linked: false) { return }
        (central + sizeClass).insertRange(Middle.link(objects, count: count), to: spans)
    }

    /// Takes back a NULL-terminated chain of `count` objects of `sizeClass`.
    func release(_ sizeClass: Int, chain: ObjectPointer, count: UInt32) {
        let transfer = self.transfer + sizeClass
        let batch = transfer.state.pointee.batchSize
        if count == batch {
            let parked = withUnsafeTemporaryAllocation(of: ObjectPointer?.self, capacity: Int(batch)) { objects -> Bool in
                let base = objects.baseAddress.unsafelyUnwrapped
                Middle.unlink(chain, into: base, count: batch)
                return transfer.insertBatch(base, linked: true)
            }
            if parked { return }
        }
        (central + sizeClass).insertRange(chain, to: spans)
    }

    /// Stores the first `count` objects of a chain at `objects` (the chain's
    /// links stay as they are).
    static func unlink(_ chain: ObjectPointer?, into objects: UnsafeMutablePointer<ObjectPointer?>, count: UInt32) {
        var cursor = chain
        var i = 0
        while i < Int(count), let object = cursor {
            objects[i] = object
            cursor = object.nextFree
            i &+= 1
        }
    }

    /// Links `count` objects stored at `objects` into a NULL-terminated chain.
    static func link(_ objects: UnsafeMutablePointer<ObjectPointer?>, count: UInt32) -> ObjectPointer {
        var head: ObjectPointer? = nil
        var i = Int(count)
        while i > 0 {
            i &-= 1
            let object = objects[i].unsafelyUnwrapped
            object.nextFree = head
            head = object
        }
        return head.unsafelyUnwrapped
    }

    /// The batch size of `sizeClass`: what moves between caches and the middle at once.
    @inline(__always)
    func batchSize(_ sizeClass: Int) -> UInt32 { transfer[sizeClass].state.batchSize }

    /// Empties every transfer cache into the central lists, so that spans
    /// whose objects are all free go back to the page heap (for trimming).
    func drainTransferCaches() {
        var c = 1
        while c < classCount {
            let (chain, _) = (transfer + c).removeAll()
            if let chain { (central + c).insertRange(chain, to: spans) }
            c += 1
        }
    }

    /// Hands the batches that sat in the transfer caches untouched since the
    /// previous call to the central lists (the scavenger's pass).
    func returnIdleBatches() {
        var c = 1
        while c < classCount {
            if let chain = (transfer + c).takeIdle() { (central + c).insertRange(chain, to: spans) }
            c += 1
        }
    }

    /// Statistics: bytes in small spans, bytes of free objects left in them,
    /// bytes parked in transfer caches (one class's locks at a time).
    func footprint(sizes: UnsafeMutablePointer<UInt32>) -> (spanBytes: UInt64, centralFreeBytes: UInt64, transferBytes: UInt64) {
        var spanBytes: UInt64 = 0
        var freeBytes: UInt64 = 0
        var parked: UInt64 = 0
        var c = 1
        while c < classCount {
            let (span, free) = (central + c).footprint()
            spanBytes &+= UInt64(span)
            freeBytes &+= UInt64(free)
            parked &+= UInt64((transfer + c).parkedObjects()) &* UInt64(sizes[c])
            c += 1
        }
        return (spanBytes, freeBytes, parked)
    }
}

/// What a central list needs from the back end. In the allocator it is
/// `PageHeapSpans`; unit tests give a central list a stub over memory of
/// their own.
protocol SpanSource {
    /// Up to `count` spans of `pages` pages for objects of `sizeClass`, each
    /// page mapped to its span in the page map, as a chain through `next`;
    /// fewer, or nil, when the OS has no memory.
    func allocateSmallSpans(pages: UInt, sizeClass: UInt8, count: UInt) -> SpanRef?
    /// Takes back small spans whose objects have all come home: a chain
    /// through `next`.
    func freeSmallSpans(_ spans: SpanRef)
    /// The span that holds `page`, or nil.
    func span(ofPage page: UInt) -> SpanRef?
}

/// The page heap as the middle uses it: spans under the page heap's lock,
/// lookups through the page map (lock-free).
struct PageHeapSpans: SpanSource {
    let pageHeap: UnsafeMutablePointer<Guarded<PageHeap>>
    /// The page heap's map (the same tree), read without its lock.
    let pageMap: PageMap

    init(_ pageHeap: UnsafeMutablePointer<Guarded<PageHeap>>) {
        self.pageHeap = pageHeap
        pageMap = pageHeap.state.pointee.pageMap
    }

    @inline(__always)
    func allocateSmallSpans(pages: UInt, sizeClass: UInt8, count: UInt) -> SpanRef? {
        pageHeap.allocateSmallSpans(pages: pages, sizeClass: sizeClass, count: count)
    }

    @inline(__always)
    func freeSmallSpans(_ spans: SpanRef) { pageHeap.freeSmallSpans(spans) }

    @inline(__always)
    func span(ofPage page: UInt) -> SpanRef? { pageMap.span(ofPage: page) }
}
