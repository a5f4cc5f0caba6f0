// The shared-cache front ends: object caches that threads share under a
// lock (SharedCaches).
//
//   arenas   4 x CPUs caches, a thread hashed onto one by its thread id
//            (rsbmalloc's design): few enough caches to stay warm, enough
//            to keep lock contention rare;
//   global   one cache for the whole process (rsbmalloc's single-threaded
//            mode): no per-thread or per-CPU state, so what it costs over
//            the others is what one lock costs under contention.
//
// The two differ only in how many caches there are; a thread's cache is
// found once, when it registers (ThreadState.sharedCache). A hit is a lock,
// a pop or push and an unlock (no lock while the process has one thread);
// the slow path's bookkeeping (the visitor, reclamation, the scavenger) runs
// only when the cache goes to the middle.
import SwiftMallocShims

enum SharedCacheFrontEnd: FrontEndStrategy {
    /// malloc under arenas or global, for a thread with a record. While
    /// the process has one thread there is no one to exclude, and the lock
    /// is skipped (as glibc skips its own); with threads a hit is a lock, a
    /// pop and an unlock.
    @inline(never)
    static func allocate(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                         _ sizeClass: Int) -> ObjectPointer? {
        let shared = state.pointee.sharedCache.unsafelyUnwrapped
        let alone = sm_single_threaded()
        if !alone { sm_lock(shared.lockAddress) }
        let object = shared.pointee.cache.pop(sizeClass)
        if !alone { sm_unlock(shared.lockAddress) }
        guard let object else { return FrontEnd.allocateSlow(heap, sizeClass) }
        ThreadState.countAllocation(state, sizeClass, miss: false)
        return object
    }

    /// free under arenas or global, for a thread with a record (the lock
    /// as in `allocate`).
    @inline(never)
    static func deallocate(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                           _ object: ObjectPointer, _ sizeClass: Int) {
        ThreadState.classCounts(state).countFree(sizeClass)
        let shared = state.pointee.sharedCache.unsafelyUnwrapped
        let alone = sm_single_threaded()
        if !alone { sm_lock(shared.lockAddress) }
        let twice = shared.pointee.cache.isOnTop(object, sizeClass)
        let kept = !twice && shared.pointee.cache.push(object, sizeClass)
        if !alone { sm_unlock(shared.lockAddress) }
        if kept { return }
        if twice { return FrontEnd.doubleFree(object) }
        overflow(heap, state, sizeClass)
    }

    /// A push found the list or the cache over its bound: give back to the middle.
    @inline(never)
    static func overflow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>, _ sizeClass: Int) {
        let middle = heap.pointee.middle
        let moved = state.pointee.sharedCache.unsafelyUnwrapped.withLock { $0.cache.overflow(sizeClass, to: middle) }
        state.pointee.middleObjects &+= UInt64(moved)
        Heap.reclaim(heap)
    }

    static func allocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                             _ sizeClass: Int) -> ObjectPointer? {
        let middle = heap.pointee.middle
        let (object, moved) = state.pointee.sharedCache.unsafelyUnwrapped.withLock { shared -> (ObjectPointer?, UInt32) in
            if let object = shared.cache.pop(sizeClass) { return (object, 0) }
            return shared.cache.refill(sizeClass, from: middle)
        }
        state.pointee.middleObjects &+= UInt64(moved)
        guard let object else { return nil }
        ThreadState.countAllocation(state, sizeClass, miss: moved != 0)
        return object
    }

    /// The free is counted by the caller.
    static func deallocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                               _ object: ObjectPointer, _ sizeClass: Int) {
        let middle = heap.pointee.middle
        // nil: freed twice in a row (stopped after the lock is released).
        let moved = state.pointee.sharedCache.unsafelyUnwrapped.withLock { shared -> UInt32? in
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
            _ = (shared.caches.unsafelyUnwrapped + i).withLock { $0.cache.flushAll(to: middle) }
            i += 1
        }
    }
}
