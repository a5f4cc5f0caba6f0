// The allocator's root: every structure, reached from one pointer that the
// C shim holds (`sm_heap_root`), built on the first call. Here the layers
// are put together: each structure gets what it needs from below when it is
// built, and none of them reads this root.
//
//   API          (API/)            malloc family, stats, configuration
//   root         Heap, Reclamation, Scavenger, the front ends (FrontEnds/*FrontEnd.swift)
//   front-end components (FrontEnds/) ThreadState, ThreadRegistry, ObjectCache, PerCPUSlabs
//   middle       (Middle/)         size classes, transfer caches, central lists
//   back end     (BackEnd/)        page heap, page map, spans, metadata
//   data structures (DataStructures/) free objects, span lists, record pools
//   platform     (Platform/)       OS memory, locks, RCU readers, fatal errors
import SwiftMallocShims

struct Heap {
    var metadata: UnsafeMutablePointer<Guarded<MetadataArena>>
    var pageHeap: UnsafeMutablePointer<Guarded<PageHeap>>
    /// Read-only copy of the page heap's page map (same tree) for lookups.
    var pageMap: PageMap
    var sizeClasses: SizeClassTable
    // What the malloc and free fast paths read comes first (the page map's
    // root, the class index, these two), within the first 128 bytes, where
    // x86 addresses a field with a one-byte displacement: shorter fast paths.
    var frontEnd: FrontEndKind
    /// The per-CPU front end's slabs (empty for the others).
    var percpu: PerCPUSlabs
    var middle: Middle
    var threads: UnsafeMutablePointer<Guarded<ThreadRegistry>>
    var config: Configuration
    var statsScratch: StatsScratch
    /// The shared-cache front ends' caches: 4 x CPUs under arenas, one
    /// under global, none under the others.
    var shared: SharedCaches
    /// Held by the scavenger's pass (Scavenger), taken through its address
    /// (threads try it at once: an `inout` access to a lock field would
    /// overlap); its counters.
    let scavengerLock: UnsafeMutablePointer<Lock>
    var scavengerPasses: UInt64 = 0
    var scavengedBytes: UInt64 = 0
    /// Of those passes, the idle-release thread's.
    var scavengerThreadPasses: UInt64 = 0
    /// Per-CPU lists of idle classes the passes handed back (statistics).
    var percpuIdleDrains: UInt64 = 0
    /// The page heap's `freshBytes` at which a scavenger pass is next due
    /// (Scavenger, "Pacing").
    var growthPassAt: UInt64 = UInt64(Scavenger.growthPassBytes)
    /// 1 when a thread's object count made a pass due: the next pass also
    /// gives idle free pages back (Scavenger, "The pass").
    var decayDue: UInt64 = 0
    /// The idle-release thread's state and counters (Scavenger).
    var idle = IdleRelease()
    /// liburcu's grace periods work (set once, after start-up).
    var rcuReady = false

    /// The heap; only valid once `ensureInitialized` has returned it.
    @inline(__always)
    static var shared: UnsafeMutablePointer<Heap> {
        sm_heap_get().unsafelyUnwrapped.assumingMemoryBound(to: Heap.self)
    }


    /// The heap, built on first use.
    @inline(__always)
    static func ensureInitialized() -> UnsafeMutablePointer<Heap> {
        if let root = sm_heap_get() { return root.assumingMemoryBound(to: Heap.self) }
        return initializeSlow()
    }

    @inline(never)
    static func initializeSlow() -> UnsafeMutablePointer<Heap> {
        sm_lock(sm_init_lock_get())
        if let root = sm_heap_get() {
            sm_unlock(sm_init_lock_get())
            return root.assumingMemoryBound(to: Heap.self)
        }
        // Everything below uses mmap directly: there is no heap yet.
        guard let arenaMemory = OSMemory.map(MetadataArena.chunkSize) else { fatal("cannot map initial metadata") }
        let arena = arenaMemory.bindMemory(to: Guarded<MetadataArena>.self, capacity: 1)
        arena.initialize(to: Guarded(MetadataArena()))
        arena.state.pointee.cursor = UInt(bitPattern: arenaMemory) + UInt(MemoryLayout<Guarded<MetadataArena>>.stride)
        arena.state.pointee.end = UInt(bitPattern: arenaMemory) + UInt(MetadataArena.chunkSize)
        arena.state.pointee.mappedBytes = UInt(MetadataArena.chunkSize)

        let heap = arena.allocateArray(of: Heap.self, count: 1)
        var config = Configuration.load(metadata: &arena.state.pointee)
        let rseqMode = sm_rseq_init(config.requestedIDMode == .mmcid ? 1 : 0)
        config.settleFrontEnd(rseqAvailable: rseqMode != Int32(SM_RSEQ_NONE))
        config.captureOutputPaths(metadata: &arena.state.pointee)
        let statsScratch = StatsScratch(metadata: &arena.state.pointee)
        let table = SizeClassTable(metadata: &arena.state.pointee, spanPageSize: config.spanPageSize,
                                   classes: config.classes, classCount: config.classCount)
        let pageHeap = arena.allocateArray(of: Guarded<PageHeap>.self, count: 1)
        guard let ph = PageHeap(metadata: arena, spanPageSize: config.spanPageSize) else { fatal("cannot map the page map") }
        pageHeap.initialize(to: Guarded(ph))
        pageHeap.state.pointee.mappingCache.capBytes = UInt(config.largeCacheBytes)
        let cpus = Int(sm_online_cpus())
        let middle = Middle(table: table, spans: PageHeapSpans(pageHeap), metadata: arena,
                            maxTransferSlots: config.maxTransferSlots,
                            shards: Middle.shardCount(configured: config.transferShards, cpus: cpus), cpus: cpus)
        let sharedCount = config.frontEnd == .arenas ? 4 * cpus : config.frontEnd == .global ? 1 : 0
        let shared = SharedCaches(count: sharedCount, classCount: table.count, sizes: table.sizes, metadata: &arena.state.pointee)
        var percpu = PerCPUSlabs()
        if config.frontEnd == .percpu {
            guard let slabs = PerCPUSlabs(slabCount: cpus, table: table,
                                          budgetBytes: config.perCPUCacheBytes,
                                          rebalanceInterval: config.perCPURebalanceInterval, metadata: &arena.state.pointee) else {
                fatal("cannot map per-CPU slabs")
            }
            percpu = slabs
        }
        let threads = arena.allocateArray(of: Guarded<ThreadRegistry>.self, count: 1)
        threads.initialize(to: Guarded(ThreadRegistry(metadata: arena, sizeClasses: table, cacheBudget: config.threadCacheBytes,
                                                      histogram: config.histogramPath != nil)))
        let scavengerLock = arena.allocateArray(of: Lock.self, count: 1)
        scavengerLock.initialize(to: Lock())
        heap.initialize(to: Heap(metadata: arena, pageHeap: pageHeap, pageMap: ph.pageMap, sizeClasses: table,
                                 frontEnd: config.frontEnd, percpu: percpu, middle: middle, threads: threads,
                                 config: config, statsScratch: statsScratch, shared: shared,
                                 scavengerLock: scavengerLock))
        heap.pointee.idle.reset(config: config)
        _ = sm_thread_key_create(threadDidExit)
        // What the fast paths read, before any thread can take them.
        let fast = sm_fast_get().unsafelyUnwrapped
        fast.pointee.class_index = UnsafePointer(table.classIndex)
        fast.pointee.page_map_root = UnsafeRawPointer(ph.pageMap.root).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        fast.pointee.class_map = UnsafePointer(ph.pageMap.classMap)
        fast.pointee.class_map_pages = ph.pageMap.classMapCoverage
        fast.pointee.slab_base = percpu.base
        fast.pointee.slab_count = percpu.slabCount
        sm_heap_set(UnsafeMutableRawPointer(heap))
        sm_unlock(sm_init_lock_get())

        // From here on malloc works; what follows may allocate (glibc,
        // liburcu), and holds no allocator lock.
        config.reportProblems()
        _ = sm_register_atfork(forkPrepare, forkParent, forkChild)
        sm_rcu_init()
        heap.pointee.rcuReady = true
        return heap
    }

    /// Housekeeping after a slow path: a scavenger pass if one is due, the
    /// idle-release thread told of the activity (or started), and the
    /// reclamation of retired records once a batch is queued. Call with no
    /// allocator lock held.
    @inline(__always)
    static func reclaim(_ heap: UnsafeMutablePointer<Heap>) {
        Scavenger.runIfDue(heap)
        Scavenger.noteActivity(heap)
        Reclamation.flush(heap)
    }

    /// Read-side sections for the calling thread (registering it if needed).
    @inline(__always)
    static func reader(_ heap: UnsafeMutablePointer<Heap>) -> RCUReader {
        let state = FrontEnd.currentOrRegister(heap)
        return RCUReader(ready: heap.pointee.rcuReady, record: state.map { ThreadState.rcuRecord($0) })
    }

    /// Every lock of the heap, in the order they nest: the scavenger's, the
    /// per-CPU slabs' drain lock, shared caches, registry, transfer caches,
    /// central lists, page heap, metadata.
    func forEachLock(_ body: (UnsafeMutablePointer<Lock>) -> Void) {
        body(scavengerLock)
        if let drain = percpu.drain { body(drain.lockAddress) }
        var i = 0
        while i < shared.count { body((shared.caches.unsafelyUnwrapped + i).lockAddress); i += 1 }
        body(threads.lockAddress)
        for i in 0..<middle.transferCacheCount { body((middle.transfer + i).lockAddress) }
        for c in 0..<sizeClasses.count { body((middle.central + c).lockAddress) }
        body(pageHeap.lockAddress)
        body(metadata.lockAddress)
    }
}

// MARK: fork
//
// The child of a fork has one thread; any lock another thread held at the
// fork would stay held forever. So the parent takes every lock before fork
// and both sides release them after. In the child, the records of the
// threads that did not come along are retired: their caches go back to the
// middle instead of being lost.

// Before the allocator's locks, the prepare handler takes the lock around
// our calls into liburcu (registrations, grace periods), so that liburcu's
// own mutexes are free at the fork; in the child, the threads that did not
// come along leave liburcu's registry (sm_rcu_forget_reader).

private func forkPrepare() {
    guard let root = sm_heap_get() else { return }
    let heap = root.assumingMemoryBound(to: Heap.self)
    if heap.pointee.rcuReady { sm_rcu_before_fork() }
    let pageHeap = heap.pointee.pageHeap
    heap.pointee.forEachLock { lock in
        sm_lock(lock)
        // Before the metadata lock, which a thread holding the page heap's
        // may wait for.
        if lock == pageHeap.lockAddress { pageHeap.waitForReleases() }
    }
}

private func forkParent() {
    guard let root = sm_heap_get() else { return }
    let heap = root.assumingMemoryBound(to: Heap.self)
    heap.pointee.forEachLock { sm_unlock($0) }
    if heap.pointee.rcuReady { sm_rcu_after_fork_parent() }
}

private func forkChild() {
    guard let root = sm_heap_get() else { return }
    let heap = root.assumingMemoryBound(to: Heap.self)
    heap.pointee.forEachLock { $0.pointee.reset() }
    // The idle-release thread did not come along: runs past the dirty
    // limit go back at once again, until the child starts its own.
    heap.pointee.idle.reset(config: heap.pointee.config)
    heap.pointee.pageHeap.state.pointee.releasesAtLimit = true
    let me = ThreadState.current
    let registry = heap.pointee.threads
    var cursor = registry.state.pointee.live
    while let state = cursor {
        cursor = state.pointee.next
        // One thread, no readers: records are reused at once.
        if state != me {
            if heap.pointee.rcuReady && state.pointee.rcu.registered { sm_rcu_forget_reader(state.pointee.rcu.handle) }
            ThreadRegistry.retire(registry, state, middle: heap.pointee.middle, afterGracePeriod: false)
        }
    }
    if heap.pointee.rcuReady { sm_rcu_after_fork_child() }
}

/// The pthread key destructor: the thread is exiting. Its cache goes back
/// to the middle and its record to the registry's pool.
func threadDidExit(_ value: UnsafeMutableRawPointer?) {
    guard let value, UInt(bitPattern: value) > ThreadState.exitedMarker, let root = sm_heap_get() else { return }
    let heap = root.assumingMemoryBound(to: Heap.self)
    let state = value.assumingMemoryBound(to: ThreadState.self)
    // From here on this thread's calls bypass caches (see ThreadState).
    ThreadState.markExited()
    let rcuRegistered = state.pointee.rcu.registered
    ThreadRegistry.retire(heap.pointee.threads, state, middle: heap.pointee.middle)
    Heap.reclaim(heap)
    if rcuRegistered { sm_rcu_unregister_thread() }
    _ = sm_rseq_thread_unregister()
}
