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
    /// Runs `body` on the thread's shared cache under its lock; while the
    /// process has one thread there is no one to exclude, and the lock is
    /// skipped (as glibc skips its own).
    @inline(__always)
    static func withCache<Result>(_ state: UnsafeMutablePointer<ThreadState>,
                                  _ body: (inout ObjectCache) -> Result) -> Result {
        let shared = state.pointee.sharedCache.unsafelyUnwrapped
        if sm_single_threaded() { return body(&shared.state.pointee.cache) }
        return shared.withLock { body(&$0.cache) }
    }

    /// malloc under arenas or global, for a thread with a record: a hit is
    /// a pop under the cache's lock.
    @inline(never)
    static func allocate(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                         _ sizeClass: Int, _ size: UInt) -> ObjectPointer? {
        guard let object = withCache(state, { $0.pop(sizeClass) }) else { return FrontEnd.allocateSlow(size, heap, sizeClass) }
        ThreadState.countAllocation(state, sizeClass, miss: false)
        return object
    }

    /// free under arenas or global, for a thread with a record.
    @inline(never)
    static func deallocate(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                           _ object: ObjectPointer, _ sizeClass: Int) {
        ThreadState.classCounts(state).countFree(sizeClass)
        deallocateSlow(heap, state, object, sizeClass)
    }

    static func allocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                             _ sizeClass: Int) -> ObjectPointer? {
        let middle = heap.pointee.middle
        let (object, moved) = withCache(state) { cache -> (ObjectPointer?, UInt32) in
            if let object = cache.pop(sizeClass) { return (object, 0) }
            return cache.refill(sizeClass, from: middle)
        }
        state.pointee.middleObjects &+= UInt64(moved)
        guard let object else { return nil }
        ThreadState.countAllocation(state, sizeClass, miss: moved != 0)
        return object
    }

    /// The free is counted by the caller. A push that finds the list or the
    /// cache over its bound gives back to the middle, under the lock.
    static func deallocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                               _ object: ObjectPointer, _ sizeClass: Int) {
        let middle = heap.pointee.middle
        // nil: freed twice in a row (stopped once the lock is released).
        let moved = withCache(state) { cache -> UInt32? in
            if cache.isOnTop(object, sizeClass) { return nil }
            if cache.push(object, sizeClass) { return 0 }
            return cache.overflow(sizeClass, to: middle)
        }
        guard let moved else { return FrontEnd.doubleFree(object) }
        if moved == 0 { return }
        state.pointee.middleObjects &+= UInt64(moved)
        Heap.reclaim(heap)
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
