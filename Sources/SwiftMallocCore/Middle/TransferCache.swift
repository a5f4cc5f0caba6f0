// The transfer cache of one size class: whole batches parked between caches.
//
// A cache that overflows hands over one batch (a chain of exactly `batchSize`
// objects); a cache that runs dry takes one. Moving a batch is a pointer
// store under a short lock, instead of walking objects into spans. Only
// when the transfer cache is full or empty does the central list take part.

struct TransferCache: LockGuarded {
    var lock = Lock()
    var batchSize: UInt32 = 0
    var used: Int = 0
    var capacity: Int = 0
    /// `capacity` slots, each the head of a chain of `batchSize` objects.
    var slots: UnsafeMutablePointer<ObjectPointer?>
    /// The fewest batches parked since the last scavenge: the batches below
    /// it (the oldest, at the bottom of the stack) sat there untouched.
    var lowWater: Int = 0

    static let capacityBytes = 1 << 20   // objects parked per class, at most

    init(batchSize: Int, objectSize: Int, metadata: inout MetadataArena) {
        self.batchSize = UInt32(batchSize)
        capacity = max(2, min(64, TransferCache.capacityBytes / (batchSize * objectSize)))
        slots = metadata.allocateArray(of: ObjectPointer?.self, count: capacity)
    }
}

// A transfer cache's operations, called through its address: a thread
// waiting for the lock holds no access to the cache yet (see LockGuarded).
extension UnsafeMutablePointer where Pointee == TransferCache {
    /// Parks a chain of exactly `batchSize` objects; false when full.
    @inline(__always)
    func insertBatch(_ chain: ObjectPointer) -> Bool {
        withLock { cache in
            guard cache.used < cache.capacity else { return false }
            cache.slots[cache.used] = chain
            cache.used &+= 1
            return true
        }
    }

    /// Takes a parked chain of `batchSize` objects, or nil when empty.
    @inline(__always)
    func removeBatch() -> ObjectPointer? {
        withLock { cache in
            guard cache.used > 0 else { return nil }
            cache.used &-= 1
            if cache.used < cache.lowWater { cache.lowWater = cache.used }
            return cache.slots[cache.used]
        }
    }

    /// Takes every parked chain (for trimming): returns them linked through
    /// the slots' order into one chain, and how many objects it holds.
    func removeAll() -> (head: ObjectPointer?, count: UInt32) {
        withLock { cache in
            var head: ObjectPointer? = nil
            var total: UInt32 = 0
            while cache.used > 0 {
                cache.used -= 1
                if let chain = cache.slots[cache.used] {
                    var last = chain
                    while let next = last.nextFree { last = next }
                    last.nextFree = head
                    head = chain
                    total &+= cache.batchSize
                }
            }
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
            var head: ObjectPointer? = nil
            var i = 0
            while i < idle {
                if let chain = cache.slots[i] {
                    var last = chain
                    while let next = last.nextFree { last = next }
                    last.nextFree = head
                    head = chain
                }
                i += 1
            }
            if idle > 0 {
                var j = idle
                while j < cache.used { cache.slots[j - idle] = cache.slots[j]; j += 1 }
                cache.used -= idle
            }
            cache.lowWater = cache.used
            return head
        }
    }
}
