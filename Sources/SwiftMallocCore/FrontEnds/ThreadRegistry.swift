// The registry of live threads' records, and the totals of exited ones.
//
// Stats, trim and fork walk it; threads join it at their first allocation
// and leave it from their pthread key destructor, handing their cache back
// to the middle, so a short-lived thread loses nothing.
import SwiftMallocShims

struct ThreadRegistry {
    var lock = Lock()
    var live: UnsafeMutablePointer<ThreadState>? = nil
    var unused: UnsafeMutablePointer<ThreadState>? = nil
    /// Unlinked records waiting for a grace period (see Reclamation).
    var retired: UnsafeMutablePointer<ThreadState>? = nil
    var retiredPending = 0
    /// Counters of exited threads and of calls made after a thread's exit.
    var exited = ThreadCounters()
    var exitedClasses: ClassCounts
    var threadsSeen: UInt64 = 0
    var threadsLive: UInt64 = 0

    /// Registers the calling thread; returns its record.
    static func registerCurrentThread() -> UnsafeMutablePointer<ThreadState> {
        let heap = Heap.shared
        let classCount = heap.pointee.sizeClasses.count
        let registry = heap.pointee.threads
        registry.pointee.lock.lock()
        var record = registry.pointee.unused
        if let r = record {
            registry.pointee.unused = r.pointee.next
        }
        registry.pointee.lock.unlock()
        if record == nil {
            let bytes = MemoryLayout<ThreadState>.stride + ClassCounts.byteCount
                + classCount * MemoryLayout<CacheList>.stride
                + PerCPUSlabs.scratchSlots * MemoryLayout<UnsafeMutableRawPointer?>.stride
            let raw = heap.pointee.metadata.pointee.allocate(bytes)
            record = raw.bindMemory(to: ThreadState.self, capacity: 1)
        }
        let state = record!
        // Layout: the record, its per-class counts, its cache lists, its scratch.
        let listsRaw = UnsafeMutableRawPointer(state) + MemoryLayout<ThreadState>.stride + ClassCounts.byteCount
        let lists = listsRaw.bindMemory(to: CacheList.self, capacity: classCount)
        let scratch = (listsRaw + classCount * MemoryLayout<CacheList>.stride)
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: PerCPUSlabs.scratchSlots)
        state.initialize(to: ThreadState(cache: ObjectCache(lists: lists, classCount: classCount,
                                                              budget: heap.pointee.config.threadCacheBytes,
                                                              sizes: heap.pointee.sizeClasses.sizes),
                                         scratch: scratch))
        ThreadState.classCounts(state).clear()
        let interval = heap.pointee.config.scavengeInterval
        state.pointee.nextScavenge = interval == 0 ? .max : interval
        // Own rseq registration (when glibc has none) before the first per-CPU operation.
        _ = sm_rseq_thread_register()
        state.pointee.threadID = sm_gettid()
        // Visible to this thread before anything below can call malloc again.
        sm_tls_thread_set(ThreadState.slotValue(state, heap.pointee.frontEnd))

        registry.pointee.lock.lock()
        state.pointee.next = registry.pointee.live
        if let head = registry.pointee.live { head.pointee.prev = state }
        registry.pointee.live = state
        registry.pointee.threadsSeen &+= 1
        registry.pointee.threadsLive &+= 1
        registry.pointee.lock.unlock()

        // Arms the exit handler (may allocate inside glibc: the TLS slot is set).
        _ = sm_thread_key_set(UnsafeMutableRawPointer(state))
        return state
    }

    /// Takes a record out of the registry: its cache goes to the middle, its
    /// counters to the exited totals. Walkers may still be on it, so it is
    /// unlinked RCU-style (its `next` stays valid) and reused only after a
    /// grace period, unless `afterGracePeriod` is false (no other thread).
    static func retire(_ state: UnsafeMutablePointer<ThreadState>, afterGracePeriod: Bool = true) {
        let heap = Heap.shared
        state.pointee.cache.flushAll(sizes: heap.pointee.sizeClasses.sizes, classCount: heap.pointee.sizeClasses.count)
        let registry = heap.pointee.threads
        registry.pointee.lock.lock()
        if let p = state.pointee.prev { p.pointee.next = state.pointee.next } else { registry.pointee.live = state.pointee.next }
        if let n = state.pointee.next { n.pointee.prev = state.pointee.prev }
        registry.pointee.exited.add(state.pointee.counters)
        registry.pointee.exitedClasses.add(ThreadState.classCounts(state))
        registry.pointee.threadsLive &-= 1
        if afterGracePeriod { registry.pointee.queueRetiredLocked(state) }
        registry.pointee.lock.unlock()
        if !afterGracePeriod { recycle(state) }
        Heap.reclaim(heap)
    }

    mutating func queueRetiredLocked(_ state: UnsafeMutablePointer<ThreadState>) {
        state.pointee.retiredNext = retired
        retired = state
        retiredPending &+= 1
    }

    mutating func takeRetiredLocked() -> UnsafeMutablePointer<ThreadState>? {
        let list = retired
        retired = nil
        retiredPending = 0
        return list
    }

    /// A retired record becomes reusable.
    static func recycle(_ state: UnsafeMutablePointer<ThreadState>) {
        let registry = Heap.shared.pointee.threads
        registry.pointee.lock.lock()
        state.pointee.prev = nil
        state.pointee.next = registry.pointee.unused
        registry.pointee.unused = state
        registry.pointee.lock.unlock()
    }

    /// Counts a call made by a thread after its exit handler ran.
    static func countExited(allocationOf sizeClass: Int = 0, freeOf freedClass: Int = 0, miss: Bool = false,
                            largeAllocated: UInt64 = 0, largeFreed: UInt64 = 0) {
        let registry = Heap.shared.pointee.threads
        registry.pointee.lock.lock()
        if sizeClass != 0 { registry.pointee.exitedClasses.countAllocation(sizeClass) }
        if freedClass != 0 { registry.pointee.exitedClasses.countFree(freedClass) }
        if miss { registry.pointee.exited.fastMisses &+= 1 }
        if largeAllocated != 0 {
            registry.pointee.exited.largeAllocations &+= 1
            registry.pointee.exited.largeAllocatedBytes &+= largeAllocated
        }
        if largeFreed != 0 {
            registry.pointee.exited.largeFrees &+= 1
            registry.pointee.exited.largeFreedBytes &+= largeFreed
        }
        registry.pointee.lock.unlock()
    }

    /// Sum of every thread's counters, live and exited. The live list is
    /// walked in an RCU read-side section, without the registry lock, while
    /// threads come and go (a thread exiting during the walk may be counted
    /// twice or not at all; quiescent totals are exact).
    static func totals() -> CounterTotals {
        let heap = Heap.shared
        let sizes = heap.pointee.sizeClasses.sizes
        let classCount = heap.pointee.sizeClasses.count
        let registry = heap.pointee.threads
        var sum = CounterTotals()
        // Entering may register this thread, which takes the registry lock.
        let underRCU = RCUReader.enter(heap)
        registry.pointee.lock.lock()
        sum.add(registry.pointee.exited, registry.pointee.exitedClasses, sizes: sizes, classCount: classCount)
        if underRCU { registry.pointee.lock.unlock() }
        var cursor = registry.pointee.live
        while let state = cursor {
            if state.pointee.poisoned { Poison.caught("stats walked a thread record after its grace period") }
            sum.add(state.pointee.counters, ThreadState.classCounts(state), sizes: sizes, classCount: classCount)
            cursor = state.pointee.next
        }
        if underRCU { RCUReader.exit() } else { registry.pointee.lock.unlock() }
        // The per-CPU front end counts its hits in the slabs.
        if heap.pointee.frontEnd == .percpu {
            var c = 1
            while c < classCount {
                sum.addAllocations(heap.pointee.percpu.pops(c), size: sizes[c])
                c += 1
            }
        }
        return sum
    }
}

/// The pthread key destructor: the thread is exiting.
func threadDidExit(_ value: UnsafeMutableRawPointer?) {
    guard let value, UInt(bitPattern: value) > ThreadState.exitedMarker else { return }
    let state = value.assumingMemoryBound(to: ThreadState.self)
    // From here on this thread's calls bypass caches (see ThreadState).
    sm_tls_thread_set(UnsafeMutableRawPointer(bitPattern: ThreadState.exitedMarker))
    let rcuRegistered = state.pointee.rcuRegistered
    ThreadRegistry.retire(state)
    if rcuRegistered { sm_rcu_unregister_thread() }
    _ = sm_rseq_thread_unregister()
}
