// Gives idle memory back, a little at a time, with no thread of its own.
//
// Without it, memory freed in one phase of a program stays with the
// allocator: batches parked in transfer caches keep their spans partly
// used, and free pages stay resident up to the page heap's dirty limit,
// until malloc_trim. Each thread counts the objects it moves through the
// middle (ThreadState.middleObjects: refills and overflows of the cached
// front ends, every call of the global one, as the front ends report
// them); every `interval` of them (SWIFTMALLOC_SCAVENGE_INTERVAL, default 32768; 0 turns the
// scavenger off), at its next lock-free slow path (Heap.reclaim), it runs one pass,
// unless another thread is running one:
//
// - every transfer cache hands the batches that sat untouched since the
//   previous pass (its low-water mark) to the central list, where spans
//   whose objects are all home go back to the page heap;
// - the page heap gives back the resident pages of the free spans that have
//   stayed free since before the previous pass, longest first, down to
//   `floor` bytes of resident free pages; spans freed and reused in between
//   keep their pages (no page faults for a program that cycles memory).
//
// A program that keeps allocating the same classes keeps its batches (they
// do not sit idle) and pays one pass per `interval` objects through the
// middle: a walk over the classes under their locks, a few microseconds.
import SwiftMallocShims

enum Scavenger {
    /// Resident free pages the page heap keeps whatever their age.
    static let floor: UInt = 4 << 20

    /// Runs a pass if the calling thread's count says one is due. Call with
    /// no allocator lock held.
    @inline(__always)
    static func runIfDue(_ heap: UnsafeMutablePointer<Heap>) {
        guard let state = ThreadState.current, state.pointee.middleObjects >= state.pointee.nextScavenge else { return }
        let interval = heap.pointee.config.scavengeInterval
        // Interval 0 (SWIFTMALLOC_SCAVENGE_INTERVAL=0): never again.
        state.pointee.nextScavenge = interval == 0 ? .max : state.pointee.middleObjects &+ interval
        if interval != 0 { run(heap) }
    }

    @inline(never)
    static func run(_ heap: UnsafeMutablePointer<Heap>) {
        guard heap.pointee.scavengerLock.tryLock() else { return }
        heap.pointee.middle.returnIdleBatches()
        let released = heap.pointee.pageHeap.withLock { $0.decayLocked(floor: floor) }
        heap.pointee.scavengedBytes &+= UInt64(released)
        heap.pointee.scavengerPasses &+= 1
        heap.pointee.scavengerLock.unlock()
    }
}
