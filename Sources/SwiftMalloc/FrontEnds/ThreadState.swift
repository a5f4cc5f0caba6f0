// What the allocator keeps for each thread: its counters (every front end
// counts per thread, without contention, summed when stats are read) and,
// under the per-thread front end, its object cache.
//
// The record is found through one initial-exec TLS slot (C shim). Its states:
//   nil            the thread has not allocated yet;
//   exitedMarker   the thread's exit handler has run; later calls (from other
//                  exit handlers) go straight to the middle, uncached;
//   a record       registered in the ThreadRegistry.
import SwiftMallocShims

/// Counters that are not per size class.
struct ThreadCounters {
    var fastMisses: UInt64 = 0
    var largeAllocations: UInt64 = 0
    var largeFrees: UInt64 = 0
    var largeAllocatedBytes: UInt64 = 0
    var largeFreedBytes: UInt64 = 0
    var rseqAborts: UInt64 = 0

    mutating func add(_ other: ThreadCounters) {
        fastMisses &+= other.fastMisses
        largeAllocations &+= other.largeAllocations
        largeFrees &+= other.largeFrees
        largeAllocatedBytes &+= other.largeAllocatedBytes
        largeFreedBytes &+= other.largeFreedBytes
        rseqAborts &+= other.rseqAborts
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
    var scalars = ThreadCounters()

    mutating func add(_ counters: ThreadCounters, _ classes: ClassCounts, sizes: UnsafeMutablePointer<UInt32>, classCount: Int) {
        scalars.add(counters)
        var c = 1
        while c < classCount {
            let a = classes.allocations(c)
            let f = classes.frees(c)
            smallAllocations &+= a
            smallFrees &+= f
            smallInUseBytes &+= (a &- f) &* UInt64(sizes[c])
            c += 1
        }
    }

    var allocations: UInt64 { smallAllocations &+ scalars.largeAllocations }
    var frees: UInt64 { smallFrees &+ scalars.largeFrees }
    var fastHits: UInt64 { smallAllocations &- scalars.fastMisses }
    var inUseBytes: UInt64 { smallInUseBytes &+ scalars.largeAllocatedBytes &- scalars.largeFreedBytes }
}

struct ThreadState {
    /// Links the registry's queue of retired records waiting for a grace period.
    var retiredNext: UnsafeMutablePointer<ThreadState>? = nil
    var counters = ThreadCounters()
    var cache: ObjectCache
    /// Room for moving objects in and out of per-CPU slabs in batches.
    var scratch: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var next: UnsafeMutablePointer<ThreadState>? = nil
    var prev: UnsafeMutablePointer<ThreadState>? = nil
    var threadID: Int32 = 0
    /// The thread registered itself as an RCU reader (at its first read).
    var rcuRegistered = false
    /// liburcu's reader record of the thread, when we registered it.
    var rcuReader: UnsafeMutableRawPointer? = nil
    /// Debug mode: set when the record's grace period has ended.
    var poisoned = false
    /// Objects moved through the middle, and when the next scavenger pass
    /// is due (Scavenger).
    var middleObjects: UInt64 = 0
    var nextScavenge: UInt64 = 0

    static let exitedMarker = UInt(1)

    /// The per-class counts, right after the record (see ThreadRegistry).
    @inline(__always)
    static func classCounts(_ state: UnsafeMutablePointer<ThreadState>) -> ClassCounts {
        ClassCounts(base: (UnsafeMutableRawPointer(state) + MemoryLayout<ThreadState>.stride)
            .assumingMemoryBound(to: UInt64.self))
    }

    /// The calling thread's record, or nil (not yet registered, or exited).
    @inline(__always)
    static var current: UnsafeMutablePointer<ThreadState>? {
        let raw = sm_tls_thread_get()
        if UInt(bitPattern: raw) > exitedMarker { return raw!.assumingMemoryBound(to: ThreadState.self) }
        return nil
    }

    /// The TLS slot as an integer: a record's address iff > exitedMarker.
    @inline(__always)
    static var currentBits: UInt { sm_tls_thread_bits() }

    @inline(__always)
    static func record(_ bits: UInt) -> UnsafeMutablePointer<ThreadState> {
        UnsafeMutablePointer<ThreadState>(bitPattern: bits).unsafelyUnwrapped
    }

    @inline(__always)
    static var hasExited: Bool { UInt(bitPattern: sm_tls_thread_get()) == exitedMarker }
}
