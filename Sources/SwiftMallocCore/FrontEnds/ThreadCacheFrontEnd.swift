// The per-thread front end: each thread's ObjectCache (ThreadState.cache),
// used with no lock. Its fast paths also lead to the shared-cache front
// ends (arenas, global): malloc and free of a thread with a record under
// any front end but percpu come here first.
import SwiftMallocShims

enum ThreadCacheFrontEnd: FrontEndStrategy {
    /// malloc's fast path for every front end but percpu: the thread's
    /// cache under thread, else (a tail call) the shared cache. `size`: the
    /// bytes requested, for the slow path.
    @inline(__always)
    static func allocateOrShare(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                                _ sizeClass: Int, _ size: UInt) -> ObjectPointer? {
        if heap.pointee.frontEnd == .thread, let object = state.pointee.cache.pop(sizeClass) {
            ThreadState.classCounts(state).countAllocation(sizeClass)
            return object
        }
        if heap.pointee.frontEnd == .thread { return FrontEnd.allocateSlow(size, heap, sizeClass) }
        return SharedCacheFrontEnd.allocate(heap, state, sizeClass, size)
    }

    /// free's fast path for every front end but percpu.
    @inline(__always)
    static func deallocateOrShare(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                                  _ object: ObjectPointer, _ sizeClass: Int) {
        if heap.pointee.frontEnd == .thread {
            if _slowPath(state.pointee.cache.isOnTop(object, sizeClass)) { return FrontEnd.doubleFree(object) }
            ThreadState.classCounts(state).countFree(sizeClass)
            if state.pointee.cache.push(object, sizeClass) { return }
            overflow(heap, state, sizeClass)
            return
        }
        SharedCacheFrontEnd.deallocate(heap, state, object, sizeClass)
    }

    static func allocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                             _ sizeClass: Int) -> ObjectPointer? {
        if let object = state.pointee.cache.pop(sizeClass) {
            ThreadState.countAllocation(state, sizeClass, miss: false)
            return object
        }
        let (object, moved) = state.pointee.cache.refill(sizeClass, from: heap.pointee.middle)
        state.pointee.middleObjects &+= UInt64(moved)
        guard let object else { return nil }
        ThreadState.countAllocation(state, sizeClass, miss: true)
        returnIdleLists(heap, state)
        return object
    }

    static func deallocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                               _ object: ObjectPointer, _ sizeClass: Int) {
        if state.pointee.cache.isOnTop(object, sizeClass) { FrontEnd.doubleFree(object) }
        if !state.pointee.cache.push(object, sizeClass) { overflow(heap, state, sizeClass) }
    }

    static func flush(_ heap: UnsafeMutablePointer<Heap>) {
        guard let state = ThreadState.current else { return }
        state.pointee.middleObjects &+= UInt64(state.pointee.cache.flushAll(to: heap.pointee.middle))
    }

    @inline(never)
    static func overflow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>, _ sizeClass: Int) {
        state.pointee.middleObjects &+= UInt64(state.pointee.cache.overflow(sizeClass, to: heap.pointee.middle))
        ThreadState.allocationsAtSeenPass(state)[sizeClass] = .max
        returnIdleLists(heap, state)
        Heap.reclaim(heap)
    }

    /// At the thread's first refill or overflow after a scavenger pass, the
    /// lists of the classes it has not allocated since the pass before go
    /// back (ObjectCache.returnIdleLists): no other thread may touch this
    /// cache, so the thread does what the pass does to the per-CPU slabs.
    @inline(__always)
    private static func returnIdleLists(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>) {
        let passes = sm_atomic_load_u64(&heap.pointee.scavengerPasses)
        if passes == state.pointee.seenPass { return }
        state.pointee.seenPass = passes
        let returned = state.pointee.cache.returnIdleLists(allocations: ThreadState.classCounts(state),
                                                           allocationsBefore: ThreadState.allocationsAtSeenPass(state),
                                                           to: heap.pointee.middle)
        state.pointee.counters.idleListReturns &+= UInt64(returned)
    }
}
