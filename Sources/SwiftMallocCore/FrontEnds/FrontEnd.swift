// The front end: where small objects come from and go back to first.
//
// One is chosen at start-up (Configuration) and fixed for the process. Each
// is a type of its own with the operations of `FrontEndStrategy`:
//
//   percpu   PerCPUFrontEnd        a slab per CPU, through restartable sequences;
//   thread   ThreadCacheFrontEnd   each thread has an ObjectCache;
//   arenas   SharedCacheFrontEnd   threads share 4 x CPUs locked ObjectCaches;
//   global   SharedCacheFrontEnd   all threads share one locked ObjectCache.
//
// The fast paths (malloc and free of a thread with a record, Allocator) are
// chosen by the TLS slot's tag (ThreadState) and the heap's front-end byte,
// never by an existential or a closure; the slow paths meet here, where one
// switch on the kind (`FrontEndKind.visit`) picks the type.
//
// Every path counts into the calling thread's ThreadState, so counters need
// no atomics; a thread without a record gets one at its first call.
import SwiftMallocShims

/// What each front end does; `heap` is the process's, `state` the calling
/// thread's record.
protocol FrontEndStrategy {
    /// A small object the fast path could not serve; counts the allocation.
    static func allocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                             _ sizeClass: Int) -> ObjectPointer?
    /// Takes back a small object the fast path did not; the free is counted.
    static func deallocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                               _ object: ObjectPointer, _ sizeClass: Int)
    /// Returns the cached objects to the middle (malloc_trim).
    static func flush(_ heap: UnsafeMutablePointer<Heap>)
}

/// An operation on whichever front end is in use, specialised for each.
protocol FrontEndVisitor {
    associatedtype Result
    func visit<F: FrontEndStrategy>(_ frontEnd: F.Type) -> Result
}

extension FrontEndKind {
    @inline(__always)
    func visit<V: FrontEndVisitor>(_ visitor: V) -> V.Result {
        switch self {
        case .percpu: return visitor.visit(PerCPUFrontEnd.self)
        case .thread: return visitor.visit(ThreadCacheFrontEnd.self)
        case .arenas, .global: return visitor.visit(SharedCacheFrontEnd.self)
        }
    }
}

enum FrontEnd {
    /// A small object of `sizeClass` for a request of `size` bytes, for a
    /// thread with a record, by the fast path of its front end (aligned
    /// allocations).
    @inline(__always)
    static func allocate(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                         _ sizeClass: Int, _ size: UInt) -> ObjectPointer? {
        if heap.pointee.frontEnd == .percpu { return PerCPUFrontEnd.allocate(state, sizeClass, size) }
        return ThreadCacheFrontEnd.allocateOrShare(heap, state, sizeClass, size)
    }

    /// A small allocation the front end's cache could not serve, or a
    /// thread's first. Sets errno when the OS has no memory.
    /// `size`: the bytes requested, first because malloc receives it in the
    /// first argument register: the fast paths' tail calls leave it there.
    /// Class 0 is a size above the largest class of a configured table that
    /// stops below SizeClassTable.maxSize: every front end's list of class 0
    /// stays empty, so its fast path comes here, and the request is served
    /// as a large allocation of its size (whole span pages).
    @inline(never)
    static func allocateSlow(_ size: UInt, _ heap: UnsafeMutablePointer<Heap>, _ sizeClass: Int) -> ObjectPointer? {
        if _slowPath(sizeClass == 0) {
            return allocateLarge(heap, bytes: Int(max(size, 1)), alignment: 0, zeroed: false, growing: false, requested: size)
        }
        struct AllocateSlow: FrontEndVisitor {
            let heap: UnsafeMutablePointer<Heap>
            let state: UnsafeMutablePointer<ThreadState>
            let sizeClass: Int
            func visit<F: FrontEndStrategy>(_ frontEnd: F.Type) -> ObjectPointer? {
                F.allocateSlow(heap, state, sizeClass)
            }
        }
        let object: ObjectPointer?
        if let state = currentOrRegister(heap) {
            object = heap.pointee.frontEnd.visit(AllocateSlow(heap: heap, state: state, sizeClass: sizeClass))
        } else {
            // The thread is exiting: serve from the middle directly.
            object = heap.pointee.middle.fetch(sizeClass, count: 1).head
            if object != nil { heap.pointee.threads.countExited(allocationOf: sizeClass, miss: true) }
        }
        Heap.reclaim(heap)
        if object == nil { sm_set_errno(ENOMEM) }
        return object
    }

    /// Takes back a small object from a thread the fast path did not serve.
    @inline(never)
    static func deallocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ object: ObjectPointer, _ sizeClass: Int) {
        struct DeallocateSlow: FrontEndVisitor {
            let heap: UnsafeMutablePointer<Heap>
            let state: UnsafeMutablePointer<ThreadState>
            let object: ObjectPointer
            let sizeClass: Int
            func visit<F: FrontEndStrategy>(_ frontEnd: F.Type) {
                F.deallocateSlow(heap, state, object, sizeClass)
            }
        }
        if let state = currentOrRegister(heap) {
            ThreadState.classCounts(state).countFree(sizeClass)
            heap.pointee.frontEnd.visit(DeallocateSlow(heap: heap, state: state, object: object, sizeClass: sizeClass))
        } else {
            object.nextFree = nil
            heap.pointee.middle.release(sizeClass, chain: object, count: 1)
            heap.pointee.threads.countExited(freeOf: sizeClass)
        }
        Heap.reclaim(heap)
    }

    /// Returns cached objects to the middle (trim): the calling thread's,
    /// or every CPU's, or every arena's.
    static func flushCaches(_ heap: UnsafeMutablePointer<Heap>) {
        struct Flush: FrontEndVisitor {
            let heap: UnsafeMutablePointer<Heap>
            func visit<F: FrontEndStrategy>(_ frontEnd: F.Type) { F.flush(heap) }
        }
        heap.pointee.frontEnd.visit(Flush(heap: heap))
    }

    /// free of the object on top of the list it goes to: it is being freed
    /// twice in a row, and pushing it again would hand it out twice. (Only
    /// this case is caught: a double free with other frees in between is
    /// not.) Declared to return so that the fast paths reach it by a tail
    /// jump and need no frame.
    @inline(never)
    static func doubleFree(_ object: ObjectPointer) {
        fatal(FreeProblem.doubleFree.message, pointer: object)
    }

    /// The calling thread's record, registering it at its first call; nil
    /// once its exit handler has run.
    @inline(__always)
    static func currentOrRegister(_ heap: UnsafeMutablePointer<Heap>) -> UnsafeMutablePointer<ThreadState>? {
        if let state = ThreadState.current { return state }
        if ThreadState.hasExited { return nil }
        return ThreadRegistry.registerCurrentThread(heap.pointee.threads, frontEnd: heap.pointee.frontEnd,
                                                    scavengeInterval: heap.pointee.config.scavengeInterval,
                                                    sharedCaches: heap.pointee.shared)
    }

    /// Whole pages for `bytes` (at least 1), aligned to `alignment` (0: page
    /// aligned), counted for the calling thread and recorded as a request of
    /// `requested` bytes; nil and ENOMEM when the OS has no memory.
    /// `zeroed`, `growing`: as PageHeap.allocateLarge.
    @inline(never)
    static func allocateLarge(_ heap: UnsafeMutablePointer<Heap>, bytes: Int, alignment: Int,
                              zeroed: Bool, growing: Bool, requested: UInt) -> ObjectPointer? {
        guard let (start, usable) = heap.pointee.pageHeap.allocateLarge(bytes: bytes, alignment: alignment, zeroed: zeroed,
                                                                        growing: growing) else {
            sm_set_errno(ENOMEM)
            return nil
        }
        countLarge(heap, allocatedBytes: usable)
        recordRequest(heap, requested, handedOut: UInt(usable))
        Heap.reclaim(heap)
        return UnsafeMutableRawPointer(bitPattern: start)
    }

    /// Records a request of `requested` bytes, served with `handedOut` usable
    /// bytes, in the allocation histogram when it is on. Called once for
    /// each allocation the counters count, after it is counted.
    @inline(__always)
    static func recordRequest(_ heap: UnsafeMutablePointer<Heap>, _ requested: UInt, handedOut: UInt) {
        if _slowPath(heap.pointee.threads.state.pointee.recordsHistogram) {
            recordInHistogram(heap, requested, handedOut: handedOut)
        }
    }

    @inline(never)
    private static func recordInHistogram(_ heap: UnsafeMutablePointer<Heap>, _ requested: UInt, handedOut: UInt) {
        // The allocation registered the thread, unless it has exited.
        if let state = ThreadState.current {
            ThreadState.histogram(state).record(requested: requested, handedOut: handedOut)
        } else {
            heap.pointee.threads.recordExited(requested: requested, handedOut: handedOut)
        }
    }

    /// Counts a large allocation of `allocatedBytes` and a large free of
    /// `freedBytes` (either may be 0) for the calling thread.
    static func countLarge(_ heap: UnsafeMutablePointer<Heap>, allocatedBytes: Int = 0, freedBytes: Int = 0) {
        guard let state = currentOrRegister(heap) else {
            return heap.pointee.threads.countExited(largeAllocated: UInt64(allocatedBytes),
                                                            largeFreed: UInt64(freedBytes))
        }
        if allocatedBytes != 0 {
            state.pointee.counters.largeAllocations &+= 1
            state.pointee.counters.largeAllocatedBytes &+= UInt64(allocatedBytes)
        }
        if freedBytes != 0 {
            state.pointee.counters.largeFrees &+= 1
            state.pointee.counters.largeFreedBytes &+= UInt64(freedBytes)
        }
    }
}
