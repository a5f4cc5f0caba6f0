// The transfer cache of one size class: whole batches parked between caches.
//
// A cache that overflows hands over one batch (a chain of exactly `batchSize`
// objects); a cache that runs dry takes one. Moving a batch is a pointer
// store under a short lock, instead of walking objects into spans. Only
// when the transfer cache is full or empty does the central list take part.

struct TransferCache {
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

    /// Parks a chain of exactly `batchSize` objects; false when full.
    @inline(__always)
    mutating func insertBatch(_ chain: ObjectPointer) -> Bool {
        lock.lock()
        if used < capacity {
            slots[used] = chain
            used &+= 1
            lock.unlock()
            return true
        }
        lock.unlock()
        return false
    }

    /// Takes a parked chain of `batchSize` objects, or nil when empty.
    @inline(__always)
    mutating func removeBatch() -> ObjectPointer? {
        lock.lock()
        if used > 0 {
            used &-= 1
            if used < lowWater { lowWater = used }
            let chain = slots[used]
            lock.unlock()
            return chain
        }
        lock.unlock()
        return nil
    }

    /// Takes every parked chain (for trimming): returns them linked through
    /// the slots' order into one chain, and how many objects it holds.
    mutating func removeAll() -> (head: ObjectPointer?, count: UInt32) {
        lock.lock()
        var head: ObjectPointer? = nil
        var total: UInt32 = 0
        while used > 0 {
            used -= 1
            if let chain = slots[used] {
                var last = chain
                while let next = last.nextFree { last = next }
                last.nextFree = head
                head = chain
                total &+= batchSize
            }
        }
        lock.unlock()
        return (head, total)
    }

    /// Statistics: objects parked here.
    mutating func parkedObjects() -> UInt {
        lock.lock()
        defer { lock.unlock() }
        return UInt(used) &* UInt(batchSize)
    }

    /// Takes the batches that sat untouched since the last call (the oldest
    /// ones) as one chain, for the central list (Scavenger).
    mutating func takeIdle() -> ObjectPointer? {
        lock.lock()
        let idle = min(lowWater, used)
        var head: ObjectPointer? = nil
        var i = 0
        while i < idle {
            if let chain = slots[i] {
                var last = chain
                while let next = last.nextFree { last = next }
                last.nextFree = head
                head = chain
            }
            i += 1
        }
        if idle > 0 {
            var j = idle
            while j < used { slots[j - idle] = slots[j]; j += 1 }
            used -= idle
        }
        lowWater = used
        lock.unlock()
        return head
    }
}
