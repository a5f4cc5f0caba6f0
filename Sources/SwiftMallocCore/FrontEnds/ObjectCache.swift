// A cache of free objects, one LIFO list per size class, in front of the
// middle. The per-thread front end gives each thread one; the shared front
// ends (arenas, global) put one behind a lock.
//
// Sizing follows tcmalloc's thread cache: each list has a maximum length that
// starts small and grows by a batch each time the list runs dry (a class in
// steady use earns room) and shrinks when the list keeps overflowing. The
// whole cache is bounded by a byte budget; over it, every list gives back
// half of its objects and half of its room. (No low-water mark is kept: it
// would cost the allocation fast path a compare and a store.)

struct CacheList {
    var head: ObjectPointer? = nil
    var length: UInt32 = 0
    var maxLength: UInt32 = 1
    /// The class's object size, next to the head: the fast paths count
    /// cached bytes without a second table.
    var objectSize: UInt32 = 0
    var overages: UInt32 = 0
}

struct ObjectCache {
    var lists: UnsafeMutablePointer<CacheList>
    var cachedBytes: Int = 0
    var budget: Int

    /// Lists grow to at most this many objects (and the byte budget).
    static let maxListLength: UInt32 = 8192
    /// A list that overflows this many times in a row gives back a batch of room.
    static let maxOverages: UInt32 = 3

    init(lists: UnsafeMutablePointer<CacheList>, classCount: Int, budget: Int, sizes: UnsafeMutablePointer<UInt32>) {
        self.lists = lists
        self.budget = budget
        var i = 0
        while i < classCount {
            lists[i] = CacheList(objectSize: i == 0 ? 0 : sizes[i])
            i += 1
        }
    }

    // MARK: fast paths

    @inline(__always)
    mutating func pop(_ sizeClass: Int) -> ObjectPointer? {
        let list = lists + sizeClass
        guard let object = list.pointee.head else { return nil }
        list.pointee.head = object.nextFree
        list.pointee.length &-= 1
        cachedBytes &-= Int(list.pointee.objectSize)
        return object
    }

    /// Whether `object` is the top of its class's list: freeing it now
    /// would be freeing it twice in a row.
    @inline(__always)
    func isOnTop(_ object: ObjectPointer, _ sizeClass: Int) -> Bool {
        lists[sizeClass].head == object
    }

    /// Pushes a freed object; returns false when the list or the cache is
    /// over its bound and `overflow` must run.
    @inline(__always)
    mutating func push(_ object: ObjectPointer, _ sizeClass: Int) -> Bool {
        let list = lists + sizeClass
        object.nextFree = list.pointee.head
        list.pointee.head = object
        let length = list.pointee.length &+ 1
        list.pointee.length = length
        cachedBytes &+= Int(list.pointee.objectSize)
        return length <= list.pointee.maxLength && cachedBytes <= budget
    }

    // MARK: slow paths

    /// The list of `sizeClass` is empty: fetch from the middle and return one
    /// object (nil when the OS has no memory).
    mutating func refill(_ sizeClass: Int, size: Int, batchSize: UInt32) -> ObjectPointer? {
        let list = lists + sizeClass
        let want = min(batchSize, list.pointee.maxLength)
        let (chain, count) = Middle.fetch(sizeClass, count: want)
        guard let first = chain else { return nil }
        // Grow the list's room: slowly up to one batch, then a batch at a time.
        if list.pointee.maxLength < batchSize {
            list.pointee.maxLength &+= 1
        } else {
            list.pointee.maxLength = min(list.pointee.maxLength &+ batchSize, ObjectCache.maxListLength)
        }
        if count > 1 {
            // Keep the rest (the list was empty).
            list.pointee.head = first.nextFree
            list.pointee.length = count &- 1
            cachedBytes &+= Int(count &- 1) &* size
        }
        return first
    }

    /// After a push returned false: give back a batch from the list that
    /// overflowed, and if the cache is over budget, scavenge every list.
    mutating func overflow(_ sizeClass: Int, size: Int, batchSize: UInt32, sizes: UnsafeMutablePointer<UInt32>, classCount: Int) {
        let list = lists + sizeClass
        if list.pointee.length > list.pointee.maxLength {
            releaseFromList(sizeClass, count: min(batchSize, list.pointee.length), size: size)
            if list.pointee.maxLength < batchSize {
                list.pointee.maxLength &+= 1
            } else {
                list.pointee.overages &+= 1
                if list.pointee.overages > ObjectCache.maxOverages {
                    list.pointee.maxLength = max(batchSize, list.pointee.maxLength &- batchSize)
                    list.pointee.overages = 0
                }
            }
        }
        if cachedBytes > budget { scavenge(sizes: sizes, classCount: classCount) }
    }

    /// Gives back half of each list, and halves its room.
    mutating func scavenge(sizes: UnsafeMutablePointer<UInt32>, classCount: Int) {
        for c in 1..<classCount {
            let list = lists + c
            let length = list.pointee.length
            if length > 0 {
                releaseFromList(c, count: max(1, length / 2), size: Int(sizes[c]))
                if list.pointee.maxLength > 1 { list.pointee.maxLength = max(1, list.pointee.maxLength / 2) }
            }
        }
        // Still over (every list was in use): empty the largest offenders.
        if cachedBytes > budget {
            for c in stride(from: classCount - 1, through: 1, by: -1) where cachedBytes > budget {
                releaseFromList(c, count: lists[c].length, size: Int(sizes[c]))
            }
        }
    }

    /// Hands `count` objects of a list back to the middle, in batches.
    mutating func releaseFromList(_ sizeClass: Int, count: UInt32, size: Int) {
        let list = lists + sizeClass
        let batchSize = Heap.shared.pointee.transfer[sizeClass].batchSize
        var left = min(count, list.pointee.length)
        while left > 0 {
            let n = min(left, batchSize)
            var chainList = FreeList(head: list.pointee.head, length: list.pointee.length)
            let (chain, taken) = chainList.popChain(n)
            list.pointee.head = chainList.head
            list.pointee.length = chainList.length
            cachedBytes &-= Int(taken) &* size
            if let chain { Middle.release(sizeClass, chain: chain, count: taken) }
            left &-= taken
            if taken == 0 { break }
        }
    }

    /// Empties every list into the middle (thread exit, trim, fork child).
    mutating func flushAll(sizes: UnsafeMutablePointer<UInt32>, classCount: Int) {
        for c in 1..<classCount where lists[c].length > 0 {
            releaseFromList(c, count: lists[c].length, size: Int(sizes[c]))
            lists[c].maxLength = 1
        }
    }
}
