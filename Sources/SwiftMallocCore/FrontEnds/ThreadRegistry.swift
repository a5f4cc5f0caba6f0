// The registry of live threads' records, and the totals of exited ones.
//
// Stats, trim and fork walk it; threads join it at their first allocation
// and leave it from their pthread key destructor, handing their cache back
// to the middle, so a short-lived thread loses nothing.
import SwiftMallocShims

struct ThreadRegistry {
    var live: UnsafeMutablePointer<ThreadState>? = nil
    /// Unlinked records wait here for a grace period (walkers may still be
    /// on them), then are reused.
    var records: RecordPool<ThreadState>
    /// Counters of exited threads and of calls made after a thread's exit.
    var exited = ThreadCounters()
    var exitedClasses: ClassCounts
    /// When the allocation histogram is on: exited threads' counts and
    /// those of requests made after a thread's exit; nil when it is off.
    var exitedHistogram: AllocationHistogram?
    var threadsSeen: UInt64 = 0
    var threadsLive: UInt64 = 0
    /// Where new records come from, and what a record's cache is made of.
    let metadata: UnsafeMutablePointer<Guarded<MetadataArena>>
    let sizeClasses: SizeClassTable
    let cacheBudget: Int

    init(metadata: UnsafeMutablePointer<Guarded<MetadataArena>>, sizeClasses: SizeClassTable, cacheBudget: Int, histogram: Bool) {
        self.metadata = metadata
        records = RecordPool(metadata: metadata)
        self.sizeClasses = sizeClasses
        self.cacheBudget = cacheBudget
        exitedClasses = ClassCounts(base: metadata.allocateArray(of: UInt64.self, count: 2 * SizeClassTable.maxClasses))
        exitedHistogram = histogram
            ? AllocationHistogram(base: metadata.allocateArray(of: UInt64.self, count: AllocationHistogram.wordCount))
            : nil
    }

    /// Whether requests are recorded in the allocation histogram (then the
    /// fast paths are off, see ThreadState).
    var recordsHistogram: Bool { exitedHistogram != nil }

    /// Registers the calling thread and returns its record, already in the
    /// TLS slots (see ThreadState).
    /// `sharedCaches`: the shared-cache front ends' caches (none for the
    /// others); the thread's is found here, once.
    static func registerCurrentThread(_ registry: UnsafeMutablePointer<Guarded<ThreadRegistry>>, frontEnd: FrontEndKind,
                                      scavengeInterval: UInt64, sharedCaches: SharedCaches) -> UnsafeMutablePointer<ThreadState> {
        let classCount = registry.state.pointee.sizeClasses.count
        let histogram = registry.state.pointee.recordsHistogram
        let recycled = registry.withLock { $0.records.takeUnused() }
        let state = recycled ?? newRecord(registry, classCount: classCount, histogram: histogram)
        // Layout: the record, its per-class counts, their values at the last
        // scavenger pass seen, its cache lists, its scratch, its histogram
        // (when on).
        let listsRaw = UnsafeMutableRawPointer(state) + MemoryLayout<ThreadState>.stride + ClassCounts.byteCount
            + ThreadState.allocationsAtSeenPassBytes
        let lists = listsRaw.bindMemory(to: CacheList.self, capacity: classCount)
        let scratch = (listsRaw + classCount * MemoryLayout<CacheList>.stride)
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: PerCPUSlabs.scratchSlots)
        state.initialize(to: ThreadState(cache: ObjectCache(lists: lists, classCount: classCount,
                                                              budget: registry.state.pointee.cacheBudget,
                                                              sizes: registry.state.pointee.sizeClasses.sizes),
                                         scratch: scratch))
        ThreadState.classCounts(state).clear()
        ThreadState.allocationsAtSeenPass(state).update(repeating: 0, count: SizeClassTable.maxClasses)
        if histogram {
            UnsafeMutableRawPointer(scratch + PerCPUSlabs.scratchSlots)
                .bindMemory(to: UInt64.self, capacity: AllocationHistogram.wordCount)
            ThreadState.histogram(state).clear()
        }
        state.pointee.nextScavenge = scavengeInterval == 0 ? .max : scavengeInterval
        // Own rseq registration (when glibc has none) before the first per-CPU operation.
        _ = sm_rseq_thread_register()
        state.pointee.threadID = sm_gettid()
        if sharedCaches.count > 0 { state.pointee.sharedCache = sharedCaches.cache(for: state) }
        // Visible to this thread before anything below can call malloc again.
        ThreadState.setCurrent(state, frontEnd: frontEnd, fastPaths: !histogram)

        registry.withLock { registry in
            state.pointee.next = registry.live
            if let head = registry.live { head.pointee.prev = state }
            registry.live = state
            registry.threadsSeen &+= 1
            registry.threadsLive &+= 1
        }
        // Arms the exit handler (may allocate inside glibc: the TLS slots are set).
        _ = sm_thread_key_set(UnsafeMutableRawPointer(state))
        return state
    }

    private static func newRecord(_ registry: UnsafeMutablePointer<Guarded<ThreadRegistry>>, classCount: Int,
                                  histogram: Bool) -> UnsafeMutablePointer<ThreadState> {
        let bytes = MemoryLayout<ThreadState>.stride + ClassCounts.byteCount + ThreadState.allocationsAtSeenPassBytes
            + classCount * MemoryLayout<CacheList>.stride
            + PerCPUSlabs.scratchSlots * MemoryLayout<UnsafeMutableRawPointer?>.stride
            + (histogram ? AllocationHistogram.byteCount : 0)
        return registry.state.pointee.metadata.allocate(bytes).bindMemory(to: ThreadState.self, capacity: 1)
    }

    /// Takes a record out of the registry: its cache goes to the middle, its
    /// counters to the exited totals. Walkers may still be on it, so it is
    /// unlinked RCU-style (its `next` stays valid) and reused only after a
    /// grace period, unless `afterGracePeriod` is false (no other thread).
    static func retire(_ registry: UnsafeMutablePointer<Guarded<ThreadRegistry>>, _ state: UnsafeMutablePointer<ThreadState>,
                       middle: Middle, afterGracePeriod: Bool = true) {
        state.pointee.middleObjects &+= UInt64(state.pointee.cache.flushAll(to: middle))
        registry.withLock { registry in
            if let p = state.pointee.prev { p.pointee.next = state.pointee.next } else { registry.live = state.pointee.next }
            if let n = state.pointee.next { n.pointee.prev = state.pointee.prev }
            registry.exited.add(state.pointee.counters)
            registry.exitedClasses.add(ThreadState.classCounts(state))
            registry.exitedHistogram?.add(ThreadState.histogram(state))
            registry.threadsLive &-= 1
            registry.records.retire(state)
            if !afterGracePeriod { registry.records.recycle(registry.records.takeRetired()) }
        }
    }

    /// Sum of every thread's counters, live and exited.
    /// `classInUse`, when given, receives objects in use per class (added to
    /// what it holds; see CounterTotals.classInUse).
    static func totals(_ registry: UnsafeMutablePointer<Guarded<ThreadRegistry>>, reader: RCUReader,
                       classInUse: UnsafeMutablePointer<UInt64>? = nil) -> CounterTotals {
        let sizes = registry.state.pointee.sizeClasses.sizes
        let classCount = registry.state.pointee.sizeClasses.count
        var sum = CounterTotals()
        sum.classInUse = classInUse
        forEachCount(registry, reader: reader) { counters, classes, histogram in
            sum.add(counters, classes, sizes: sizes, classCount: classCount)
            if let histogram { sum.requestedBytes &+= histogram.requestedBytes }
        }
        return sum
    }

    /// The allocation histogram summed over every thread, live and exited,
    /// into `sum` (which it clears first); false when the histogram is off.
    static func histogramTotals(_ registry: UnsafeMutablePointer<Guarded<ThreadRegistry>>, reader: RCUReader,
                                into sum: AllocationHistogram) -> Bool {
        guard registry.state.pointee.recordsHistogram else { return false }
        sum.clear()
        forEachCount(registry, reader: reader) { _, _, histogram in
            if let histogram { sum.add(histogram) }
        }
        return true
    }

    /// Calls `body` with the exited threads' counts, then with each live
    /// thread's. The live list is walked in an RCU read-side section,
    /// without the registry lock, while threads come and go (a thread
    /// exiting during the walk may be counted twice or not at all;
    /// quiescent totals are exact).
    private static func forEachCount(_ registry: UnsafeMutablePointer<Guarded<ThreadRegistry>>, reader: RCUReader,
                                     _ body: (ThreadCounters, ClassCounts, AllocationHistogram?) -> Void) {
        let histogram = registry.state.pointee.recordsHistogram
        let underRCU = reader.enter()
        sm_lock(registry.lockAddress)
        body(registry.state.pointee.exited, registry.state.pointee.exitedClasses, registry.state.pointee.exitedHistogram)
        if underRCU { sm_unlock(registry.lockAddress) }
        var cursor = registry.state.pointee.live
        while let state = cursor {
            if state.pointee.poisoned { fatal("stats walked a thread record after its grace period") }
            body(state.pointee.counters, ThreadState.classCounts(state),
                 histogram ? ThreadState.histogram(state) : nil)
            cursor = state.pointee.next
        }
        if underRCU { reader.exit() } else { sm_unlock(registry.lockAddress) }
    }
}

// Called through the registry's address, under its lock (Guarded).
extension UnsafeMutablePointer where Pointee == Guarded<ThreadRegistry> {
    /// Counts a call made by a thread after its exit handler ran.
    func countExited(allocationOf sizeClass: Int = 0, freeOf freedClass: Int = 0, miss: Bool = false,
                     largeAllocated: UInt64 = 0, largeFreed: UInt64 = 0) {
        withLock { registry in
            if sizeClass != 0 { registry.exitedClasses.countAllocation(sizeClass) }
            if freedClass != 0 { registry.exitedClasses.countFree(freedClass) }
            if miss { registry.exited.fastMisses &+= 1 }
            if largeAllocated != 0 {
                registry.exited.largeAllocations &+= 1
                registry.exited.largeAllocatedBytes &+= largeAllocated
            }
            if largeFreed != 0 {
                registry.exited.largeFrees &+= 1
                registry.exited.largeFreedBytes &+= largeFreed
            }
        }
    }

    /// Records a request in the histogram of exited threads (when it is on).
    func recordExited(requested: UInt, handedOut: UInt) {
        withLock { registry in registry.exitedHistogram?.record(requested: requested, handedOut: handedOut) }
    }
}
