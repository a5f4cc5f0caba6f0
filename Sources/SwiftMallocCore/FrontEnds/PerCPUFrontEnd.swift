// The per-CPU front end: the calling CPU's slab (PerCPUSlabs), through
// restartable sequences. Its fast paths are the shim's sm_fast_percpu_pop
// and sm_fast_percpu_push on the process's slabs as published in `sm_fast`
// (Heap); a pop counts itself, in the slab's list word (PerCPUSlabs.pops).
import SwiftMallocShims

enum PerCPUFrontEnd: FrontEndStrategy {
    /// malloc's fast path under percpu (malloc knows it from the TLS slot,
    /// see ThreadState); every way out is a return or a tail call.
    @inline(__always)
    static func allocate(_ state: UnsafeMutablePointer<ThreadState>, _ sizeClass: Int, _ size: UInt) -> ObjectPointer? {
        let popped = sm_fast_percpu_pop(sizeClass, &state.pointee.counters.rseqAborts)
        if _fastPath(popped.ok) { return popped.object }
        return FrontEnd.allocateSlow(size, Heap.shared, sizeClass)
    }

    /// free's fast path under percpu, for a thread with a record.
    @inline(__always)
    static func deallocate(_ state: UnsafeMutablePointer<ThreadState>, _ object: ObjectPointer, _ sizeClass: Int) {
        ThreadState.classCounts(state).countFree(sizeClass)
        if sm_fast_percpu_push(sizeClass, object, &state.pointee.counters.rseqAborts) { return }
        pushSlow(Heap.shared, state, object, sizeClass)
    }

    static func allocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                             _ sizeClass: Int) -> ObjectPointer? {
        // A thread just registered has not tried its slab yet, and the fast
        // path gives up after an abort: try (again) first. A pop counts
        // itself in the slab.
        if let object = heap.pointee.percpu.pop(sizeClass, aborts: &state.pointee.counters.rseqAborts) { return object }
        let (object, moved) = heap.pointee.percpu.refill(sizeClass, from: heap.pointee.middle, reader: Heap.reader(heap),
                                                          scratch: state.pointee.scratch,
                                                          aborts: &state.pointee.counters.rseqAborts)
        state.pointee.middleObjects &+= UInt64(moved)
        noteMiss(heap, sizeClass)
        guard let object else { return nil }
        ThreadState.countAllocation(state, sizeClass, miss: true)
        return object
    }

    static func deallocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                               _ object: ObjectPointer, _ sizeClass: Int) {
        pushSlow(heap, state, object, sizeClass)
    }

    static func flush(_ heap: UnsafeMutablePointer<Heap>) {
        heap.pointee.percpu.drainAll(to: heap.pointee.middle)
    }

    /// The fast push failed: retry it (it fails on an abort too), and make
    /// room if the list is really full.
    @inline(never)
    static func pushSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                         _ object: ObjectPointer, _ sizeClass: Int) {
        switch heap.pointee.percpu.push(object, sizeClass, aborts: &state.pointee.counters.rseqAborts) {
        case Int32(SM_PUSH_DONE): return
        case Int32(SM_PUSH_TWICE): FrontEnd.doubleFree(object)
        default: overflow(heap, state, object, sizeClass)
        }
    }

    @inline(never)
    static func overflow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                         _ object: ObjectPointer, _ sizeClass: Int) {
        let moved = heap.pointee.percpu.overflow(object, sizeClass, to: heap.pointee.middle,
                                                 scratch: state.pointee.scratch, aborts: &state.pointee.counters.rseqAborts)
        state.pointee.middleObjects &+= UInt64(moved)
        noteMiss(heap, sizeClass)
        Heap.reclaim(heap)
    }

    /// Counts a miss; every so many, capacity moves between classes.
    private static func noteMiss(_ heap: UnsafeMutablePointer<Heap>, _ sizeClass: Int) {
        if heap.pointee.percpu.noteMiss(sizeClass) {
            heap.pointee.percpu.rebalance(rcuReady: heap.pointee.rcuReady, middle: heap.pointee.middle)
        }
    }
}
