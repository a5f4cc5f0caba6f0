// Safe reclamation of records that lock-free readers may hold: span records
// (read by malloc_usable_size and realloc without the page heap lock) and
// thread records (walked by statistics while threads come and go).
//
// Writers unlink a record under their lock and retire it into their
// RecordPool (the page heap's spans, the registry's threads). Once enough
// are queued, a thread that holds no allocator lock takes both queues,
// waits for one grace period (synchronize_rcu: every reader that could have
// seen a record has left its read-side section) and makes the records
// reusable. One grace period thus covers a whole batch, and no helper thread
// is needed (see rcu.c for why there is no call_rcu worker). In debug mode
// (SWIFTMALLOC_DEBUG=1) the records are poisoned first, and readers that
// find poison stop the process: a reader outliving its grace period. See
// docs/rcu.md.
import SwiftMallocShims

enum Reclamation {
    /// Records of each kind queued before a grace period is worth waiting
    /// for. They are metadata only, the pages they described already free:
    /// 256 span records are 16 KiB (a program that cycles 4 KiB blocks
    /// through the page heap retires one per block freed, and spent a tenth
    /// of its time in grace periods with 32), 32 thread records about
    /// 96 KiB.
    static let spanBatch = 256
    static let threadBatch = 32

    /// Reclaims the queued records if there are enough. Call with no
    /// allocator lock held.
    @inline(__always)
    static func flush(_ heap: UnsafeMutablePointer<Heap>) {
        // Peeks without the owners' locks (relaxed atomic loads): a stale
        // count only delays the batch.
        if heap.pointee.pageHeap.state.pointee.records.retiredPending < spanBatch
            && heap.pointee.threads.state.pointee.records.retiredPending < threadBatch { return }
        reclaimQueued(heap)
    }

    /// Waits for a grace period and reclaims everything queued before it,
    /// unless another thread is already doing so, the caller is inside
    /// liburcu or inside a read-side section. Call with no allocator lock
    /// held. Returns whether it ran.
    @inline(never)
    @discardableResult
    static func reclaimQueued(_ heap: UnsafeMutablePointer<Heap>) -> Bool {
        guard heap.pointee.rcuReady, !sm_rcu_busy() else { return false }
        let pageHeap = heap.pointee.pageHeap
        let registry = heap.pointee.threads
        // Take the queues first: only what was retired before the grace
        // period starts may be reclaimed after it.
        let spans = pageHeap.withLock { $0.records.takeRetired() }
        let threads = registry.withLock { $0.records.takeRetired() }
        if spans == nil && threads == nil { return true }
        guard sm_rcu_try_synchronize() else {
            // Someone else is waiting for a grace period: put them back.
            pageHeap.withLock { $0.records.requeue(spans) }
            registry.withLock { $0.records.requeue(threads) }
            return false
        }
        if heap.pointee.config.debug {
            var cursor = spans
            while let span = cursor { cursor = span.pointee.poolNext; Poison.span(span) }
            var t = threads
            while let state = t { t = state.pointee.poolNext; Poison.threadRecord(state) }
        }
        pageHeap.withLock { $0.records.recycle(spans) }
        registry.withLock { $0.records.recycle(threads) }
        return true
    }
}

/// Debug poisoning of retired metadata.
enum Poison {
    static let word: UInt = 0xDEAD_BEEF_DEAD_BEEF

    static func span(_ span: UnsafeMutablePointer<Span>) {
        span.pointee.firstPage = word
        span.pointee.pageCount = word
        span.pointee.mappedStart = word
        span.pointee.mappedBytes = word
        span.pointee.freeObjects = UnsafeMutableRawPointer(bitPattern: word)
        span.pointee.state = .poisoned
    }

    static func threadRecord(_ state: UnsafeMutablePointer<ThreadState>) {
        state.pointee.counters = ThreadCounters(fastMisses: UInt64(word), largeAllocations: UInt64(word),
                                                largeFrees: UInt64(word), largeAllocatedBytes: UInt64(word),
                                                largeFreedBytes: UInt64(word), rseqAborts: UInt64(word))
        state.pointee.threadID = -0x2152_4111   // 0xDEADBEEF
        state.pointee.poisoned = true
    }
}
