// Shared caches: object caches that several threads use under a lock (the
// arenas front end: 4 x CPUs of them, a thread hashed onto one by its
// thread id; the global front end: one).

/// A shared cache and its lock.
typealias LockedCache = Guarded<SharedCache>

struct SharedCache {
    var cache: ObjectCache
    // Pad to a cache line's size with the lock (24 bytes with its counters,
    // cache 32, this 8: 64): neighbours are taken by other CPUs.
    var padding: UInt64 = 0
}

struct SharedCaches {
    var count: Int = 0
    var caches: UnsafeMutablePointer<LockedCache>? = nil

    static let arenaBudget = 1 << 20

    /// `count` locked caches (0 for the other front ends).
    init(count: Int, classCount: Int, sizes: UnsafeMutablePointer<UInt32>, metadata: inout MetadataArena) {
        self.count = count
        guard count > 0 else { return }
        let caches = metadata.allocateArray(of: LockedCache.self, count: count)
        var i = 0
        while i < count {
            let lists = metadata.allocateArray(of: CacheList.self, count: classCount)
            caches.advanced(by: i).initialize(to: LockedCache(SharedCache(cache: ObjectCache(lists: lists, classCount: classCount,
                                                                                           budget: SharedCaches.arenaBudget, sizes: sizes))))
            i += 1
        }
        self.caches = caches
    }

    /// The cache a thread uses.
    @inline(__always)
    func cache(for state: UnsafeMutablePointer<ThreadState>) -> UnsafeMutablePointer<LockedCache> {
        caches.unsafelyUnwrapped + Int(UInt32(bitPattern: state.pointee.threadID) % UInt32(count))
    }
}
