// The arenas front end (rsbmalloc's design): 4 x CPUs object caches, each
// behind a lock, a thread hashed onto one by its thread id: few enough
// caches to stay warm, enough to keep lock contention rare (SharedCaches).

enum ArenaFrontEnd: FrontEndStrategy {
    static func allocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                             _ sizeClass: Int) -> ObjectPointer? {
        let middle = heap.pointee.middle
        let (object, moved) = heap.pointee.shared.cache(for: state).pointee.withLock { shared -> (ObjectPointer?, UInt32) in
            if let object = shared.cache.pop(sizeClass) { return (object, 0) }
            return shared.cache.refill(sizeClass, from: middle)
        }
        state.pointee.middleObjects &+= UInt64(moved)
        guard let object else { return nil }
        ThreadState.countAllocation(state, sizeClass, miss: moved != 0)
        return object
    }

    static func deallocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                               _ object: ObjectPointer, _ sizeClass: Int) {
        let middle = heap.pointee.middle
        // nil: freed twice in a row (stopped after the lock is released).
        let moved = heap.pointee.shared.cache(for: state).pointee.withLock { shared -> UInt32? in
            if shared.cache.isOnTop(object, sizeClass) { return nil }
            if shared.cache.push(object, sizeClass) { return 0 }
            return shared.cache.overflow(sizeClass, to: middle)
        }
        guard let moved else { return FrontEnd.doubleFree(object) }
        state.pointee.middleObjects &+= UInt64(moved)
    }

    static func flush(_ heap: UnsafeMutablePointer<Heap>) {
        let shared = heap.pointee.shared
        let middle = heap.pointee.middle
        var i = 0
        while i < shared.count {
            _ = shared.caches.unsafelyUnwrapped[i].withLock { $0.cache.flushAll(to: middle) }
            i += 1
        }
    }
}
