// The front end: where small objects come from and go back to first.
//
// One is chosen at start-up (Configuration) and fixed for the process; the
// fast paths switch on that value (a byte in the heap), never on an
// existential or a closure.
//
//   percpu   a slab per CPU, through restartable sequences (PerCPUSlabs);
//   thread   each thread has an ObjectCache (ThreadState.cache);
//   arenas   threads share 4 x CPUs locked ObjectCaches (SharedCaches);
//   global   one lock in front of the central lists, no cache.
//
// Every path counts into the calling thread's ThreadState, so counters need
// no atomics; a thread without a record gets one at its first call.
import SwiftMallocShims

enum FrontEnd {
    /// A small object of `sizeClass`: from the cache of the thread or CPU,
    /// or else (a tail call) from `Allocator.allocateSmallSlow`, which
    /// refills or serves the shared front ends. Each way out returns its
    /// pointer directly, so no path tests a pointer it already knows.
    @inline(__always)
    static func allocate(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                         _ sizeClass: Int) -> ObjectPointer? {
        if heap.pointee.frontEnd == .percpu { return allocatePerCPU(state, sizeClass) }
        return allocateOther(heap, state, sizeClass)
    }

    /// `allocate` under the percpu front end (malloc knows it from the TLS
    /// slot, see ThreadState), on the process's slabs (`sm_fast`). A pop
    /// counts itself, in its list word (PerCPUSlabs.pops).
    @inline(__always)
    static func allocatePerCPU(_ state: UnsafeMutablePointer<ThreadState>, _ sizeClass: Int) -> ObjectPointer? {
        let popped = sm_fast_percpu_pop(sizeClass, &state.pointee.counters.rseqAborts)
        if _fastPath(popped.ok) { return popped.object }
        return Allocator.allocateSmallSlow(Heap.shared, sizeClass)
    }

    /// `allocate` under the other front ends: thread has a fast path, the
    /// shared ones are served by `allocateSlow`.
    @inline(__always)
    static func allocateOther(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                              _ sizeClass: Int) -> ObjectPointer? {
        if heap.pointee.frontEnd == .thread, let object = state.pointee.cache.pop(sizeClass) {
            ThreadState.classCounts(state).countAllocation(sizeClass)
            return object
        }
        return Allocator.allocateSmallSlow(heap, sizeClass)
    }

    @inline(never)
    static func allocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ sizeClass: Int, size: Int) -> ObjectPointer? {
        guard let state = currentOrRegister() else {
            // The thread is exiting: serve from the middle directly.
            let (object, _) = Middle.fetch(sizeClass, count: 1)
            if object != nil { ThreadRegistry.countExited(allocationOf: sizeClass, miss: true) }
            return object
        }
        let batch = UInt32(heap.pointee.sizeClasses.batch[sizeClass])
        var hit = false
        var object: ObjectPointer?
        switch heap.pointee.frontEnd {
        case .percpu:
            // A thread just registered has not tried its slab yet, and the
            // fast path gives up after an abort: try (again) first. A pop
            // counts itself in the slab.
            object = heap.pointee.percpu.pop(sizeClass, aborts: &state.pointee.counters.rseqAborts)
            if object != nil { return object }
            object = heap.pointee.percpu.refill(heap, sizeClass, batchSize: batch, scratch: state.pointee.scratch,
                                                aborts: &state.pointee.counters.rseqAborts)
            if heap.pointee.percpu.noteMiss(sizeClass) { heap.pointee.percpu.rebalance(heap) }
        case .thread:
            object = state.pointee.cache.pop(sizeClass)
            hit = object != nil
            if !hit { object = state.pointee.cache.refill(sizeClass, size: size, batchSize: batch) }
        case .arenas:
            let shared = heap.pointee.shared.cache(for: state)
            shared.pointee.lock.lock()
            object = shared.pointee.cache.pop(sizeClass)
            hit = object != nil
            if !hit { object = shared.pointee.cache.refill(sizeClass, size: size, batchSize: batch) }
            shared.pointee.lock.unlock()
        case .global:
            heap.pointee.globalLock.lock()
            object = Middle.fetch(sizeClass, count: 1).head
            heap.pointee.globalLock.unlock()
        }
        guard let object else { return nil }
        if !hit { state.pointee.counters.fastMisses &+= 1 }
        ThreadState.classCounts(state).countAllocation(sizeClass)
        return object
    }

    /// Takes back a small object of `sizeClass` from a thread with a record,
    /// under the percpu front end.
    @inline(__always)
    static func deallocatePerCPU(_ state: UnsafeMutablePointer<ThreadState>, _ object: ObjectPointer, _ sizeClass: Int) {
        ThreadState.classCounts(state).countFree(sizeClass)
        if sm_fast_percpu_push(sizeClass, object, &state.pointee.counters.rseqAborts) { return }
        percpuPushSlow(Heap.shared, state, object, sizeClass)
    }

    /// The same under the other front ends.
    @inline(__always)
    static func deallocateOther(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                                _ object: ObjectPointer, _ sizeClass: Int) {
        if heap.pointee.frontEnd == .thread {
            if _slowPath(state.pointee.cache.isOnTop(object, sizeClass)) { return doubleFree(object) }
            ThreadState.classCounts(state).countFree(sizeClass)
            if state.pointee.cache.push(object, sizeClass) { return }
            overflow(heap, state, sizeClass)
            return
        }
        deallocateSlow(heap, object, sizeClass)
    }

    @inline(never)
    static func overflow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>, _ sizeClass: Int) {
        let table = heap.pointee.sizeClasses
        state.pointee.cache.overflow(sizeClass, size: Int(table.sizes[sizeClass]), batchSize: UInt32(table.batch[sizeClass]),
                                     sizes: table.sizes, classCount: table.count)
        Heap.reclaim(heap)
    }

    /// The fast push failed: retry it (it fails on an abort too), and make
    /// room if the list is really full.
    @inline(never)
    static func percpuPushSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                               _ object: ObjectPointer, _ sizeClass: Int) {
        switch heap.pointee.percpu.push(object, sizeClass, aborts: &state.pointee.counters.rseqAborts) {
        case Int32(SM_PUSH_DONE): return
        case Int32(SM_PUSH_TWICE): doubleFree(object)
        default: percpuOverflow(heap, state, object, sizeClass)
        }
    }

    /// free of the object on top of the list it goes to: it is being freed
    /// twice in a row, and pushing it again would hand it out twice. (Only
    /// this case is caught: a double free with other frees in between is
    /// not.) Declared to return so that the fast paths reach it by a tail
    /// jump and need no frame.
    @inline(never)
    static func doubleFree(_ object: ObjectPointer) {
        fatal("free(): double free ", pointer: object)
    }

    @inline(never)
    static func percpuOverflow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                               _ object: ObjectPointer, _ sizeClass: Int) {
        heap.pointee.percpu.overflow(object, sizeClass, batchSize: UInt32(heap.pointee.sizeClasses.batch[sizeClass]),
                                     scratch: state.pointee.scratch, aborts: &state.pointee.counters.rseqAborts)
        if heap.pointee.percpu.noteMiss(sizeClass) { heap.pointee.percpu.rebalance(heap) }
        Heap.reclaim(heap)
    }

    @inline(never)
    static func deallocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ object: ObjectPointer, _ sizeClass: Int) {
        let size = Int(heap.pointee.sizeClasses.sizes[sizeClass])
        guard let state = currentOrRegister() else {
            object.nextFree = nil
            Middle.release(sizeClass, chain: object, count: 1)
            ThreadRegistry.countExited(freeOf: sizeClass)
            return
        }
        ThreadState.classCounts(state).countFree(sizeClass)
        switch heap.pointee.frontEnd {
        case .percpu:
            percpuPushSlow(heap, state, object, sizeClass)
        case .thread:
            if state.pointee.cache.isOnTop(object, sizeClass) { doubleFree(object) }
            if !state.pointee.cache.push(object, sizeClass) { overflow(heap, state, sizeClass) }
        case .arenas:
            let shared = heap.pointee.shared.cache(for: state)
            shared.pointee.lock.lock()
            if shared.pointee.cache.isOnTop(object, sizeClass) {
                shared.pointee.lock.unlock()
                doubleFree(object)
            }
            if !shared.pointee.cache.push(object, sizeClass) {
                let table = heap.pointee.sizeClasses
                shared.pointee.cache.overflow(sizeClass, size: size, batchSize: UInt32(table.batch[sizeClass]),
                                              sizes: table.sizes, classCount: table.count)
            }
            shared.pointee.lock.unlock()
        case .global:
            object.nextFree = nil
            heap.pointee.globalLock.lock()
            Middle.release(sizeClass, chain: object, count: 1)
            heap.pointee.globalLock.unlock()
        }
        Heap.reclaim(heap)
    }

    /// The calling thread's record, registering it at its first call; nil
    /// once its exit handler has run.
    @inline(__always)
    static func currentOrRegister() -> UnsafeMutablePointer<ThreadState>? {
        if let state = ThreadState.current { return state }
        if ThreadState.hasExited { return nil }
        return ThreadRegistry.registerCurrentThread()
    }

    /// Counts a large allocation or free for the calling thread.
    static func countLarge(allocatedBytes: Int) {
        if let state = currentOrRegister() {
            state.pointee.counters.largeAllocations &+= 1
            state.pointee.counters.largeAllocatedBytes &+= UInt64(allocatedBytes)
        } else {
            ThreadRegistry.countExited(largeAllocated: UInt64(allocatedBytes))
        }
    }

    static func countLargeFree(freedBytes: Int) {
        if let state = currentOrRegister() {
            state.pointee.counters.largeFrees &+= 1
            state.pointee.counters.largeFreedBytes &+= UInt64(freedBytes)
        } else {
            ThreadRegistry.countExited(largeFreed: UInt64(freedBytes))
        }
    }

    /// Returns the calling thread's cached objects to the middle (trim).
    /// Returns cached objects to the middle (trim): the calling thread's
    /// cache, every shared cache and every per-CPU slab.
    static func flushCaches(_ heap: UnsafeMutablePointer<Heap>) {
        let table = heap.pointee.sizeClasses
        if heap.pointee.frontEnd == .percpu { heap.pointee.percpu.drainAll() }
        if let state = ThreadState.current {
            state.pointee.cache.flushAll(sizes: table.sizes, classCount: table.count)
        }
        let shared = heap.pointee.shared
        var i = 0
        while i < shared.count {
            let cache = shared.caches.unsafelyUnwrapped + i
            cache.pointee.lock.lock()
            cache.pointee.cache.flushAll(sizes: table.sizes, classCount: table.count)
            cache.pointee.lock.unlock()
            i += 1
        }
    }
}
