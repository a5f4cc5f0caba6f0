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
    let classCount: Int

    /// Lists grow to at most this many objects (and the byte budget).
    static let maxListLength: UInt32 = 8192
    /// A list that overflows this many times in a row gives back a batch of room.
    static let maxOverages: UInt32 = 3

    init(lists: UnsafeMutablePointer<CacheList>, classCount: Int, budget: Int, sizes: UnsafeMutablePointer<UInt32>) {
        self.lists = lists
        self.budget = budget
        self.classCount = classCount
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
    //
    // Each returns how many objects it moved to or from the middle (the
    // scavenger's pace, counted by the caller).

    /// The list of `sizeClass` is empty: fetch from the middle and return one
    /// object (nil when the OS has no memory).
    mutating func refill(_ sizeClass: Int, from middle: Middle) -> (object: ObjectPointer?, moved: UInt32) {
        let list = lists + sizeClass
        let batchSize = middle.batchSize(sizeClass)
        let want = min(batchSize, list.pointee.maxLength)
        let (chain, count) = middle.fetch(sizeClass, count: want)
        guard let first = chain else { return (nil, 0) }
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
            cachedBytes &+= Int(count &- 1) &* Int(list.pointee.objectSize)
        }
        return (first, count)
    }

    /// After a push returned false: give back a batch from the list that
    /// overflowed, and if the cache is over budget, scavenge every list.
    mutating func overflow(_ sizeClass: Int, to middle: Middle) -> UInt32 {
        let list = lists + sizeClass
        let batchSize = middle.batchSize(sizeClass)
        var moved: UInt32 = 0
        if list.pointee.length > list.pointee.maxLength {
            moved &+= releaseFromList(sizeClass, count: min(batchSize, list.pointee.length), to: middle)
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
        if cachedBytes > budget { moved &+= scavenge(to: middle) }
        return moved
    }

    /// Gives back half of each list, and halves its room.
    mutating func scavenge(to middle: Middle) -> UInt32 {
        var moved: UInt32 = 0
        for c in 1..<classCount {
            let list = lists + c
            let length = list.pointee.length
            if length > 0 {
                moved &+= releaseFromList(c, count: max(1, length / 2), to: middle)
                if list.pointee.maxLength > 1 { list.pointee.maxLength = max(1, list.pointee.maxLength / 2) }
            }
        }
        // Still over (every list was in use): empty the largest offenders.
        if cachedBytes > budget {
            for c in stride(from: classCount - 1, through: 1, by: -1) where cachedBytes > budget {
                moved &+= releaseFromList(c, count: lists[c].length, to: middle)
            }
        }
        return moved
    }

    /// Hands `count` objects of a list back to the middle, in batches.
    mutating func releaseFromList(_ sizeClass: Int, count: UInt32, to middle: Middle) -> UInt32 {
        let list = lists + sizeClass
        let batchSize = middle.batchSize(sizeClass)
        let size = Int(list.pointee.objectSize)
        var left = min(count, list.pointee.length)
        var moved: UInt32 = 0
        while left > 0, let first = list.pointee.head {
            // Detach up to a batch from the front as a NULL-terminated chain.
            var last = first
            var taken: UInt32 = 1
            while taken < min(left, batchSize), let next = last.nextFree {
                last = next
                taken &+= 1
            }
            list.pointee.head = last.nextFree
            last.nextFree = nil
            list.pointee.length &-= taken
            cachedBytes &-= Int(taken) &* size
            middle.release(sizeClass, chain: first, count: taken)
            left &-= taken
            moved &+= taken
        }
        return moved
    }

    /// Gives back, whole, every list of a class its owner allocated none of
    /// since the previous call, so that a program that moved on to other
    /// sizes lets the spans of the old ones empty (the per-CPU slabs do the
    /// same, PerCPUSlabs.returnIdleClasses). The batches go to the transfer
    /// caches, where a thread that allocates what this one only frees finds
    /// them; batches nobody takes go on to the central lists at the next
    /// pass (TransferCache.takeIdle). `allocations`: the owner's counts per
    /// class; `allocationsBefore`: its allocation counts at the previous
    /// call, updated here, or UInt64.max for a list that overflowed since
    /// (its objects are on their way out anyway: a thread that frees what
    /// others allocate keeps its lists). Returns the objects moved.
    mutating func returnIdleLists(allocations: ClassCounts, allocationsBefore: UnsafeMutablePointer<UInt64>,
                                  to middle: Middle) -> UInt32 {
        var moved: UInt32 = 0
        for c in 1..<classCount {
            let now = allocations.allocations(c)
            if now == allocationsBefore[c], lists[c].length > 0 {
                moved &+= releaseFromList(c, count: lists[c].length, to: middle)
                lists[c].maxLength = 1
            }
            allocationsBefore[c] = now
        }
        return moved
    }

    /// Empties every list into the middle (thread exit, trim, fork child).
    mutating func flushAll(to middle: Middle) -> UInt32 {
        var moved: UInt32 = 0
        for c in 1..<classCount where lists[c].length > 0 {
            moved &+= releaseFromList(c, count: lists[c].length, to: middle)
            lists[c].maxLength = 1
        }
        return moved
    }
}
