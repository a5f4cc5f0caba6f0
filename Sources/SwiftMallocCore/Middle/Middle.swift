// The middle: per size class, transfer caches in front of a central free
// list. A front end asks for `count` objects of a class and gets a chain; it
// hands back chains. Whole batches go through a transfer cache; anything
// else (a partial batch, a full transfer cache) goes to the central list,
// which gets its spans from the back end (`spans`).
//
// The transfer caches come in shards, one per group of CPUs (tcmalloc's
// sharded transfer caches): a batch goes to and comes from the shard of the
// CPU the calling thread runs on, so CPUs of different groups share a
// transfer cache lock only when one group's shard runs dry; the central
// list is still one lock per class. A release that finds its shard full goes to the central list;
// a fetch that finds its shard empty takes a batch parked in another shard
// before it goes to the central list: the objects moving from a producer's
// group to a consumer's (remote frees) are then still copied as pointers,
// under the other shard's lock, instead of being walked one by one into and
// out of spans under the central list's lock.

import SwiftMallocShims

struct Middle {
    /// `shardCount` x `classCount` transfer caches: class c of shard s at
    /// `transfer + s * classCount + c` (shard 0 first).
    let transfer: UnsafeMutablePointer<Guarded<TransferCache>>
    let central: UnsafeMutablePointer<Guarded<CentralFreeList>>
    /// Classes 1 ..< classCount exist (class 0 means "not small").
    let classCount: Int
    let shardCount: Int
    /// CPU ids (or mm_cids) per shard: shard = id / cpusPerShard.
    let cpusPerShard: Int
    let spans: PageHeapSpans

    /// CPUs per shard when the configuration leaves the shard count to the
    /// allocator (transfer_shards = 0).
    static let automaticCPUsPerShard = 8

    /// The shard count for `configured` shards (0: automatic) on a machine
    /// of `cpus` possible CPUs: automatic is one shard per
    /// `automaticCPUsPerShard` CPUs, rounded up.
    static func shardCount(configured: Int, cpus: Int) -> Int {
        configured > 0 ? configured : max(1, (cpus + automaticCPUsPerShard - 1) / automaticCPUsPerShard)
    }

    /// `maxTransferSlots`: batches each class parks in its transfer caches,
    /// at most, all shards together; `shards` groups of the `cpus` CPUs.
    init(table: SizeClassTable, spans: PageHeapSpans, metadata: UnsafeMutablePointer<Guarded<MetadataArena>>,
         maxTransferSlots: Int = TransferCache.defaultMaxSlots, shards: Int = 1, cpus: Int = 1) {
        classCount = table.count
        shardCount = max(1, shards)
        cpusPerShard = max(1, (cpus + shardCount - 1) / shardCount)
        self.spans = spans
        central = metadata.allocateArray(of: Guarded<CentralFreeList>.self, count: table.count)
        transfer = metadata.allocateArray(of: Guarded<TransferCache>.self, count: shardCount * table.count)
        for c in 0..<table.count {
            central.advanced(by: c).initialize(to: Guarded(CentralFreeList(sizeClass: c, table: table)))
        }
        for s in 0..<shardCount {
            for c in 0..<table.count {
                let size = c == 0 ? 8 : table.size(of: c)
                let batch = c == 0 ? 2 : Int(table.batch[c])
                transfer.advanced(by: s * table.count + c).initialize(to: Guarded(TransferCache(
                    batchSize: batch, objectSize: size, maxSlots: maxTransferSlots, shards: shardCount,
                    metadata: &metadata.state.pointee)))
            }
        }
    }

    /// The transfer cache of `sizeClass` in `shard`.
    @inline(__always)
    func transferCache(_ sizeClass: Int, shard: Int) -> UnsafeMutablePointer<Guarded<TransferCache>> {
        transfer + (shard &* classCount &+ sizeClass)
    }

    /// Every transfer cache, all shards (for the walks over all of them:
    /// drains, the scavenger, statistics, locks).
    var transferCacheCount: Int { shardCount &* classCount }

    /// The shard of the CPU the calling thread runs on: under the per-CPU
    /// front end the slab it works on (the rseq id), elsewhere its CPU.
    @inline(__always)
    func currentShard() -> Int {
        shardCount == 1 ? 0 : shard(ofCPU: Int(sm_current_cpu()))
    }

    /// The shard of CPU (or mm_cid) `id`; ids past the last group (a CPU
    /// brought online later) go to the last shard.
    @inline(__always)
    func shard(ofCPU id: Int) -> Int { min(id / cpusPerShard, shardCount &- 1) }

    /// Copies a batch parked in `shard`'s transfer cache of `sizeClass`, or
    /// else in another shard's, to `objects`; returns whether it is also a
    /// chain, or nil when no shard has one.
    private func takeParkedBatch(_ sizeClass: Int, shard: Int, into objects: UnsafeMutablePointer<ObjectPointer?>) -> Bool? {
        var s = shard
        repeat {
            if let linked = transferCache(sizeClass, shard: s).removeBatch(into: objects) { return linked }
            s = s &+ 1 == shardCount ? 0 : s &+ 1
        } while s != shard
        return nil
    }

    /// Up to `count` objects of `sizeClass`, stored at `objects`; returns
    /// how many (0 only when the OS has no memory). A whole batch from a
    /// transfer cache is copied without touching the objects.
    func fetch(_ sizeClass: Int, count: UInt32, into objects: UnsafeMutablePointer<ObjectPointer?>) -> UInt32 {
        fetch(sizeClass, count: count, into: objects, shard: currentShard())
    }

    /// The same for a caller of `shard` (the unit tests choose it).
    func fetch(_ sizeClass: Int, count: UInt32, into objects: UnsafeMutablePointer<ObjectPointer?>, shard: Int) -> UInt32 {
        if count == batchSize(sizeClass) && takeParkedBatch(sizeClass, shard: shard, into: objects) != nil { return count }
        return (central + sizeClass).removeRange(count, into: objects, from: spans)
    }

    /// Up to `count` objects of `sizeClass` as a NULL-terminated chain (for
    /// caches that keep chains).
    func fetch(_ sizeClass: Int, count: UInt32) -> (head: ObjectPointer?, count: UInt32) {
        fetch(sizeClass, count: count, shard: currentShard())
    }

    /// The same for a caller of `shard`.
    func fetch(_ sizeClass: Int, count: UInt32, shard: Int) -> (head: ObjectPointer?, count: UInt32) {
        let batch = batchSize(sizeClass)
        return withUnsafeTemporaryAllocation(of: ObjectPointer?.self, capacity: Int(count)) { objects in
            let base = objects.baseAddress.unsafelyUnwrapped
            if count == batch, let linked = takeParkedBatch(sizeClass, shard: shard, into: base) {
                // A batch parked as a chain is one still: no object touched.
                return (linked ? base[0] : Middle.link(base, count: batch), count)
            }
            let taken = (central + sizeClass).removeRange(count, into: base, from: spans)
            return (taken == 0 ? nil : Middle.link(base, count: taken), taken)
        }
    }

    /// Takes back the `count` objects of `sizeClass` stored at `objects`.
    func release(_ sizeClass: Int, objects: UnsafeMutablePointer<ObjectPointer?>, count: UInt32) {
        release(sizeClass, objects: objects, count: count, shard: currentShard())
    }

    /// The same for a caller of `shard`.
    func release(_ sizeClass: Int, objects: UnsafeMutablePointer<ObjectPointer?>, count: UInt32, shard: Int) {
        if count == batchSize(sizeClass) && transferCache(sizeClass, shard: shard).insertBatch(objects, linked: false) { return }
        (central + sizeClass).insertRange(objects, count: Int(count), to: spans)
    }

    /// Takes back a NULL-terminated chain of `count` objects of `sizeClass`
    /// (at most a batch).
    func release(_ sizeClass: Int, chain: ObjectPointer, count: UInt32) {
        release(sizeClass, chain: chain, count: count, shard: currentShard())
    }

    /// The same for a caller of `shard`.
    func release(_ sizeClass: Int, chain: ObjectPointer, count: UInt32, shard: Int) {
        withUnsafeTemporaryAllocation(of: ObjectPointer?.self, capacity: Int(count)) { objects in
            let base = objects.baseAddress.unsafelyUnwrapped
            Middle.unlink(chain, into: base, count: count)
            if count == batchSize(sizeClass) && transferCache(sizeClass, shard: shard).insertBatch(base, linked: true) { return }
            (central + sizeClass).insertRange(base, count: Int(count), to: spans)
        }
    }

    /// Takes a NULL-terminated chain of objects of `sizeClass`, of any
    /// length, home to the central list (which takes arrays), a run at a
    /// time.
    private func insertChain(_ sizeClass: Int, _ chain: ObjectPointer) {
        let run = 64
        withUnsafeTemporaryAllocation(of: ObjectPointer?.self, capacity: run) { objects in
            let base = objects.baseAddress.unsafelyUnwrapped
            var cursor: ObjectPointer? = chain
            while cursor != nil {
                var count = 0
                while count < run, let object = cursor {
                    base[count] = object
                    cursor = object.nextFree
                    count &+= 1
                }
                (central + sizeClass).insertRange(base, count: count, to: spans)
            }
        }
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

    /// Takes back objects that no cache is expected to ask for soon (drained
    /// from the per-CPU slabs): straight to the central list, past the
    /// transfer caches, so that spans whose objects are all home go back to
    /// the page heap.
    func returnHome(_ sizeClass: Int, objects: UnsafeMutablePointer<ObjectPointer?>, count: UInt32) {
        (central + sizeClass).insertRange(objects, count: Int(count), to: spans)
    }

    /// The batch size of `sizeClass`: what moves between caches and the middle at once.
    @inline(__always)
    func batchSize(_ sizeClass: Int) -> UInt32 { transfer[sizeClass].state.batchSize }

    /// Empties every transfer cache, every shard, into the central lists,
    /// so that spans whose objects are all free go back to the page heap
    /// (for trimming).
    func drainTransferCaches() {
        forEachTransferCache { cache, c in
            if let chain = cache.removeAll().head { insertChain(c, chain) }
        }
    }

    /// Hands the batches that sat in the transfer caches (every shard)
    /// untouched since the previous call to the central lists (the
    /// scavenger's pass).
    func returnIdleBatches() {
        forEachTransferCache { cache, c in
            if let chain = cache.takeIdle() { insertChain(c, chain) }
        }
    }

    /// Calls `body` with every transfer cache of a class that exists (not
    /// class 0), all shards, and its class.
    private func forEachTransferCache(_ body: (UnsafeMutablePointer<Guarded<TransferCache>>, Int) -> Void) {
        var i = 0
        while i < transferCacheCount {
            let c = i % classCount
            if c != 0 { body(transfer + i, c) }
            i += 1
        }
    }

    /// Statistics: bytes in small spans, bytes of free objects left in them,
    /// bytes parked in transfer caches of every shard (one lock at a time).
    func footprint(sizes: UnsafeMutablePointer<UInt32>) -> (spanBytes: UInt64, centralFreeBytes: UInt64, transferBytes: UInt64) {
        var spanBytes: UInt64 = 0
        var freeBytes: UInt64 = 0
        var parked: UInt64 = 0
        var c = 1
        while c < classCount {
            let (span, free) = (central + c).footprint()
            spanBytes &+= UInt64(span)
            freeBytes &+= UInt64(free)
            var s = 0
            while s < shardCount {
                parked &+= UInt64(transferCache(c, shard: s).parkedObjects()) &* UInt64(sizes[c])
                s += 1
            }
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
