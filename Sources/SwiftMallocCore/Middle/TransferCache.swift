// The transfer cache of one size class: whole batches parked between caches.
//
// A cache that overflows hands over one batch (exactly `batchSize`
// objects); a cache that runs dry takes one. A batch is parked as an array
// of pointers, so moving one copies `batchSize` pointers under a short lock
// and never touches the objects themselves: they may have been written
// last on another CPU, and reading each one's link word would be a cache
// miss per object (tcmalloc's transfer caches are arrays for the same
// reason). A batch that came as a chain (from a thread or shared cache)
// keeps its links, and is marked so: a cache that wants a chain takes it as
// it is, again without touching the objects. Only when the transfer cache
// is full or empty does the central list take part.

struct TransferCache {
    /// Batches parked (a stack: the newest on top). First, since only the
    /// lock holder touches it (see `Guarded`).
    var used: Int = 0
    /// Read without the lock (it never changes).
    let batchSize: UInt32
    var capacity: Int = 0
    /// `capacity` batches of `batchSize` pointers each; batch i starts at
    /// `slots + i * batchSize`.
    var slots: UnsafeMutablePointer<ObjectPointer?>
    /// Per parked batch: its objects are also linked, slot order, into a
    /// NULL-terminated chain.
    var linked: UnsafeMutablePointer<Bool>
    /// The fewest batches parked since the last scavenge: the batches below
    /// it (the oldest, at the bottom of the stack) sat there untouched.
    var lowWater: Int = 0

    static let capacityBytes = 1 << 20   // objects parked per class, at most
    /// Batches parked per class, at most, unless configured otherwise
    /// (Configuration.maxTransferSlots).
    static let defaultMaxSlots = 64

    /// One of `shards` transfer caches of a class (Middle). The class's
    /// bound (`maxSlots` batches, `capacityBytes`) is shared out among its
    /// shards rather than given to each: a shard serves 1/shards of the
    /// CPUs, so each CPU has as much parking room as with one cache, and
    /// the bytes a class can park stay what they were with one cache, so
    /// sharding adds no footprint (only the floor of 2 batches per shard
    /// can add some, for the largest classes).
    init(batchSize: Int, objectSize: Int, maxSlots: Int, shards: Int, metadata: inout MetadataArena) {
        self.batchSize = UInt32(batchSize)
        capacity = max(2, min(maxSlots, TransferCache.capacityBytes / (batchSize * objectSize)) / shards)
        slots = metadata.allocateArray(of: ObjectPointer?.self, count: capacity * batchSize)
        linked = metadata.allocateArray(of: Bool.self, count: capacity)
    }

    @inline(__always)
    func batch(_ index: Int) -> UnsafeMutablePointer<ObjectPointer?> { slots + index &* Int(batchSize) }

    /// Links parked batches `first ..< end` into one chain in front of `head`
    /// (for the central list, which takes chains).
    func chain(batches first: Int, _ end: Int, onto head: ObjectPointer?) -> ObjectPointer? {
        var head = head
        var i = first &* Int(batchSize)
        let stop = end &* Int(batchSize)
        while i < stop {
            let object = slots[i].unsafelyUnwrapped
            object.nextFree = head
            head = object
            i &+= 1
        }
        return head
    }
}

// A transfer cache's operations, called through its address, under its lock
// (Guarded).
extension UnsafeMutablePointer where Pointee == Guarded<TransferCache> {
    /// Parks the `batchSize` objects at `objects` (`linked`: they are also
    /// a chain in that order); false when full.
    @inline(__always)
    func insertBatch(_ objects: UnsafePointer<ObjectPointer?>, linked: Bool) -> Bool {
        withLock { cache in
            guard cache.used < cache.capacity else { return false }
            cache.batch(cache.used).update(from: objects, count: Int(cache.batchSize))
            cache.linked[cache.used] = linked
            cache.used &+= 1
            return true
        }
    }

    /// Copies a parked batch of `batchSize` objects to `objects`; returns
    /// whether they are also linked into a chain, or nil when none is parked.
    @inline(__always)
    func removeBatch(into objects: UnsafeMutablePointer<ObjectPointer?>) -> Bool? {
        withLock { cache in
            guard cache.used > 0 else { return nil }
            cache.used &-= 1
            if cache.used < cache.lowWater { cache.lowWater = cache.used }
            objects.update(from: cache.batch(cache.used), count: Int(cache.batchSize))
            return cache.linked[cache.used]
        }
    }

    /// Takes every parked batch (for trimming) as one chain, and how many
    /// objects it holds.
    func removeAll() -> (head: ObjectPointer?, count: UInt32) {
        withLock { cache in
            let head = cache.chain(batches: 0, cache.used, onto: nil)
            let total = UInt32(cache.used) &* cache.batchSize
            cache.used = 0
            cache.lowWater = 0
            return (head, total)
        }
    }

    /// Statistics: objects parked here.
    func parkedObjects() -> UInt {
        withLock { UInt($0.used) &* UInt($0.batchSize) }
    }

    /// Takes the batches that sat untouched since the last call (the oldest
    /// ones) as one chain, for the central list (Scavenger).
    func takeIdle() -> ObjectPointer? {
        withLock { cache in
            let idle = min(cache.lowWater, cache.used)
            let head = cache.chain(batches: 0, idle, onto: nil)
            if idle > 0 {
                cache.slots.update(from: cache.batch(idle), count: (cache.used &- idle) &* Int(cache.batchSize))
                cache.linked.update(from: cache.linked + idle, count: cache.used &- idle)
                cache.used -= idle
            }
            cache.lowWater = cache.used
            return head
        }
    }
}
