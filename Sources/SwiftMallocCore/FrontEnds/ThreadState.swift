// What the allocator keeps for each thread: its counters (every front end
// counts per thread, without contention, summed when stats are read) and,
// under the per-thread front end, its object cache.
//
// The record is found through two initial-exec TLS slots (C shim).
//
// The fast slot (sm_tls_thread) chooses malloc's and free's path:
//   nil            the thread has not allocated yet, or the allocation
//                  histogram is on (then every call takes the general path,
//                  which records the request; see AllocationHistogram);
//   exitedMarker   the thread's exit handler has run; later calls (from other
//                  exit handlers) go straight to the middle, uncached;
//   a record       registered in the ThreadRegistry; its address, with the
//                  top bit (`otherFrontEndTag`) set unless the front end is
//                  percpu. So as a signed integer the slot is > exitedMarker
//                  exactly when the per-CPU fast path applies, and < 0 when
//                  another front end's does: malloc and free learn both
//                  "registered?" and "which front end?" from one compare of
//                  a value they load anyway.
// The record slot (sm_tls_record) is what the slow paths ask: nil,
// exitedMarker, or the record's plain address, whatever the fast slot holds.
// So the fast paths can be turned off (the histogram) without the thread
// losing its record: the general path still finds it, and its cache.
import SwiftMallocShims

/// Counters that are not per size class.
struct ThreadCounters {
    var fastMisses: UInt64 = 0
    var largeAllocations: UInt64 = 0
    var largeFrees: UInt64 = 0
    var largeAllocatedBytes: UInt64 = 0
    var largeFreedBytes: UInt64 = 0
    var rseqAborts: UInt64 = 0
    /// Objects the thread's cache gave back from idle classes
    /// (ObjectCache.returnIdleLists).
    var idleListReturns: UInt64 = 0

    mutating func add(_ other: ThreadCounters) {
        fastMisses &+= other.fastMisses
        largeAllocations &+= other.largeAllocations
        largeFrees &+= other.largeFrees
        largeAllocatedBytes &+= other.largeAllocatedBytes
        largeFreedBytes &+= other.largeFreedBytes
        rseqAborts &+= other.rseqAborts
        idleListReturns &+= other.idleListReturns
    }
}

/// Small allocations and frees counted per size class: two arrays of
/// `SizeClassTable.maxClasses` counters. Bytes in use follow from the class
/// sizes when the counts are summed, so the fast paths count with one
/// increment and no size lookup.
struct ClassCounts {
    let base: UnsafeMutablePointer<UInt64>

    static let byteCount = 2 * SizeClassTable.maxClasses * MemoryLayout<UInt64>.stride

    @inline(__always) func countAllocation(_ sizeClass: Int) { base[sizeClass] &+= 1 }
    @inline(__always) func countFree(_ sizeClass: Int) { base[SizeClassTable.maxClasses &+ sizeClass] &+= 1 }
    @inline(__always) func allocations(_ sizeClass: Int) -> UInt64 { base[sizeClass] }
    @inline(__always) func frees(_ sizeClass: Int) -> UInt64 { base[SizeClassTable.maxClasses &+ sizeClass] }

    func clear() { base.update(repeating: 0, count: 2 * SizeClassTable.maxClasses) }

    func add(_ other: ClassCounts) {
        var i = 0
        while i < 2 * SizeClassTable.maxClasses { base[i] &+= other.base[i]; i += 1 }
    }
}

/// Everything counted, summed over threads.
struct CounterTotals {
    var smallAllocations: UInt64 = 0
    var smallFrees: UInt64 = 0
    var smallInUseBytes: UInt64 = 0
    /// Class sizes of every small allocation, summed.
    var smallAllocatedBytes: UInt64 = 0
    var scalars = ThreadCounters()
    /// Bytes requested, summed from the allocation histograms (0 when off).
    var requestedBytes: UInt64 = 0
    /// When set, objects in use per size class (allocations less frees,
    /// indexed by class) are added here too (the stats report's table).
    var classInUse: UnsafeMutablePointer<UInt64>? = nil

    mutating func add(_ counters: ThreadCounters, _ classes: ClassCounts, sizes: UnsafeMutablePointer<UInt32>, classCount: Int) {
        scalars.add(counters)
        var c = 1
        while c < classCount {
            let a = classes.allocations(c)
            let f = classes.frees(c)
            smallAllocations &+= a
            smallFrees &+= f
            smallInUseBytes &+= (a &- f) &* UInt64(sizes[c])
            smallAllocatedBytes &+= a &* UInt64(sizes[c])
            if let perClass = classInUse { perClass[c] &+= a &- f }
            c += 1
        }
    }

    /// Small allocations counted outside thread records: the per-CPU
    /// slabs' pops (PerCPUSlabs.pops). Counts are summed modulo 2^64, so a
    /// class whose frees are in thread records and allocations here comes
    /// out right in the total.
    mutating func addAllocations(_ count: UInt64, sizeClass: Int, size: UInt32) {
        smallAllocations &+= count
        smallInUseBytes &+= count &* UInt64(size)
        smallAllocatedBytes &+= count &* UInt64(size)
        if let perClass = classInUse { perClass[sizeClass] &+= count }
    }

    var allocations: UInt64 { smallAllocations &+ scalars.largeAllocations }
    var frees: UInt64 { smallFrees &+ scalars.largeFrees }
    var fastHits: UInt64 { smallAllocations &- scalars.fastMisses }
    var inUseBytes: UInt64 { smallInUseBytes &+ scalars.largeAllocatedBytes &- scalars.largeFreedBytes }
    var handedOutBytes: UInt64 { smallAllocatedBytes &+ scalars.largeAllocatedBytes }
}

struct ThreadState: PoolRecord {
    /// Links the registry's retired and unused records (RecordPool); `next`
    /// stays valid for walkers while the record waits for a grace period.
    var poolNext: UnsafeMutablePointer<ThreadState>? = nil
    var counters = ThreadCounters()
    var cache: ObjectCache
    /// Room for moving objects in and out of per-CPU slabs in batches.
    var scratch: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var next: UnsafeMutablePointer<ThreadState>? = nil
    var prev: UnsafeMutablePointer<ThreadState>? = nil
    var threadID: Int32 = 0
    var rcu = RCUReaderRecord()
    /// Under arenas and global: the shared cache this thread uses.
    var sharedCache: UnsafeMutablePointer<LockedCache>? = nil
    /// Debug mode: set when the record's grace period has ended.
    var poisoned = false
    /// Objects moved through the middle, and when the next scavenger pass
    /// is due (Scavenger).
    var middleObjects: UInt64 = 0
    var nextScavenge: UInt64 = 0
    /// The scavenger pass this thread's cache last looked for idle classes
    /// at (ThreadCacheFrontEnd.returnIdleLists).
    var seenPass: UInt64 = 0

    static let exitedMarker = UInt(1)
    /// Set in the TLS slot's value when the front end is not percpu.
    static let otherFrontEndTag = UInt(1) << 63

    /// What the TLS slot holds for `state` under `frontEnd`.
    @inline(__always)
    static func slotValue(_ state: UnsafeMutablePointer<ThreadState>, _ frontEnd: FrontEndKind) -> UnsafeMutableRawPointer {
        let bits = UInt(bitPattern: state) | (frontEnd == .percpu ? 0 : otherFrontEndTag)
        return UnsafeMutableRawPointer(bitPattern: bits).unsafelyUnwrapped
    }

    /// The per-class counts, right after the record (see ThreadRegistry).
    @inline(__always)
    static func classCounts(_ state: UnsafeMutablePointer<ThreadState>) -> ClassCounts {
        ClassCounts(base: (UnsafeMutableRawPointer(state) + MemoryLayout<ThreadState>.stride)
            .assumingMemoryBound(to: UInt64.self))
    }

    /// Per class, the allocation count at the last scavenger pass the
    /// thread's cache looked at, or UInt64.max once the class's list
    /// overflowed since (ObjectCache.returnIdleLists), right after the
    /// per-class counts.
    @inline(__always)
    static func allocationsAtSeenPass(_ state: UnsafeMutablePointer<ThreadState>) -> UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(state) + MemoryLayout<ThreadState>.stride + ClassCounts.byteCount)
            .assumingMemoryBound(to: UInt64.self)
    }
    static let allocationsAtSeenPassBytes = SizeClassTable.maxClasses * MemoryLayout<UInt64>.stride

    /// The thread's allocation histogram, right after its scratch; there is
    /// one only while the histogram is on (ThreadRegistry.recordsHistogram).
    /// Found from the layout rather than a field, so that the record and the
    /// offsets the fast paths use do not change.
    @inline(__always)
    static func histogram(_ state: UnsafeMutablePointer<ThreadState>) -> AllocationHistogram {
        AllocationHistogram(base: UnsafeMutableRawPointer(state.pointee.scratch + PerCPUSlabs.scratchSlots)
            .assumingMemoryBound(to: UInt64.self))
    }

    /// The thread's RCU registration, in place (records never move).
    @inline(__always)
    static func rcuRecord(_ state: UnsafeMutablePointer<ThreadState>) -> UnsafeMutablePointer<RCUReaderRecord> {
        withUnsafeMutablePointer(to: &state.pointee.rcu) { $0 }
    }

    /// Counts a small allocation served outside the per-CPU slabs (which
    /// count their own pops); `miss`: it went to the middle.
    @inline(__always)
    static func countAllocation(_ state: UnsafeMutablePointer<ThreadState>, _ sizeClass: Int, miss: Bool) {
        if miss { state.pointee.counters.fastMisses &+= 1 }
        classCounts(state).countAllocation(sizeClass)
    }

    /// The calling thread's record, or nil (not yet registered, or exited).
    @inline(__always)
    static var current: UnsafeMutablePointer<ThreadState>? {
        let bits = sm_tls_record_bits()
        if bits > exitedMarker { return UnsafeMutablePointer<ThreadState>(bitPattern: bits) }
        return nil
    }

    /// Makes `state` the calling thread's record; with `fastPaths`, malloc
    /// and free serve it by the fast paths of `frontEnd`, else always by the
    /// general ones.
    @inline(__always)
    static func setCurrent(_ state: UnsafeMutablePointer<ThreadState>, frontEnd: FrontEndKind, fastPaths: Bool) {
        sm_tls_record_set(UnsafeMutableRawPointer(state))
        if fastPaths { sm_tls_thread_set(slotValue(state, frontEnd)) }
    }

    /// The calling thread's exit handler has run: both slots say so.
    static func markExited() {
        let marker = UnsafeMutableRawPointer(bitPattern: exitedMarker)
        sm_tls_thread_set(marker)
        sm_tls_record_set(marker)
    }

    /// The fast slot as a signed integer: > exitedMarker for a record under
    /// percpu, < 0 for a record under another front end (see above).
    @inline(__always)
    static var currentBits: Int { Int(bitPattern: sm_tls_thread_bits()) }

    /// The record of a fast-slot value that holds one (tagged or not).
    @inline(__always)
    static func record(_ bits: UInt) -> UnsafeMutablePointer<ThreadState> {
        UnsafeMutablePointer<ThreadState>(bitPattern: bits & ~otherFrontEndTag).unsafelyUnwrapped
    }

    @inline(__always)
    static var hasExited: Bool { sm_tls_record_bits() == exitedMarker }
}
