// The per-thread front end: each thread's ObjectCache (ThreadState.cache),
// used with no lock. Its fast paths also lead to the shared-cache front
// ends (arenas, global): malloc and free of a thread with a record under
// any front end but percpu come here first.

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
        Heap.reclaim(heap)
    }
}
