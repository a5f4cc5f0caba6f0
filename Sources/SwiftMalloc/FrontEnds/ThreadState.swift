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

struct ThreadCounters {
    var fastHits: UInt64 = 0
    var fastMisses: UInt64 = 0
    var largeAllocations: UInt64 = 0
    var frees: UInt64 = 0
    var allocatedBytes: UInt64 = 0
    var freedBytes: UInt64 = 0
    var rseqAborts: UInt64 = 0

    @inline(__always) var allocations: UInt64 { fastHits &+ fastMisses &+ largeAllocations }

    mutating func add(_ other: ThreadCounters) {
        fastHits &+= other.fastHits
        fastMisses &+= other.fastMisses
        largeAllocations &+= other.largeAllocations
        frees &+= other.frees
        allocatedBytes &+= other.allocatedBytes
        freedBytes &+= other.freedBytes
        rseqAborts &+= other.rseqAborts
    }
}

struct ThreadState {
    var counters = ThreadCounters()
    var cache: ObjectCache
    /// Room for moving objects in and out of per-CPU slabs in batches.
    var scratch: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var next: UnsafeMutablePointer<ThreadState>? = nil
    var prev: UnsafeMutablePointer<ThreadState>? = nil
    var threadID: Int32 = 0

    static let exitedMarker = UInt(1)

    /// The calling thread's record, or nil (not yet registered, or exited).
    @inline(__always)
    static var current: UnsafeMutablePointer<ThreadState>? {
        let raw = sm_tls_thread_get()
        if UInt(bitPattern: raw) > exitedMarker { return raw!.assumingMemoryBound(to: ThreadState.self) }
        return nil
    }

    @inline(__always)
    static var hasExited: Bool { UInt(bitPattern: sm_tls_thread_get()) == exitedMarker }
}
