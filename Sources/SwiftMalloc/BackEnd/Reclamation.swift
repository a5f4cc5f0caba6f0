// Safe reclamation of records that lock-free readers may hold: span records
// (read by malloc_usable_size and realloc without the page heap lock) and
// thread records (walked by statistics while threads come and go).
//
// Writers unlink a record under their lock and queue it; once no allocator
// lock is held, the queue goes to liburcu's call_rcu; after a grace period
// (every reader that could have seen the record has left its read-side
// section) the callback makes the record reusable. In debug mode
// (SWIFTMALLOC_DEBUG=1) the callback first poisons the record, and readers
// that find poison stop the process: a reader outliving its grace period.
// See docs/rcu.md.
import SwiftMallocShims

enum Reclamation {
    /// Hands queued records to RCU. Call with no allocator lock held.
    @inline(__always)
    static func flush(_ heap: UnsafeMutablePointer<Heap>) {
        if heap.pointee.pageHeap.pointee.retiredSpans == nil { return }   // racy peek
        flushSlow(heap)
    }

    @inline(never)
    static func flushSlow(_ heap: UnsafeMutablePointer<Heap>) {
        // Inside liburcu (it allocated): leave the queue for the next flush.
        guard heap.pointee.rcuReady, !sm_rcu_busy() else { return }
        let pageHeap = heap.pointee.pageHeap
        pageHeap.pointee.lock.lock()
        var list = pageHeap.pointee.takeRetiredLocked()
        pageHeap.pointee.lock.unlock()
        while let span = list {
            list = span.pointee.next
            sm_rcu_call(UnsafeMutableRawPointer(span), spanGracePeriodEnded)
        }
    }

    /// Without liburcu (it failed to start), records are reused at once and
    /// readers take the page heap lock instead of a read-side section.
    static func recycleWithoutRCU(_ heap: UnsafeMutablePointer<Heap>) {
        let pageHeap = heap.pointee.pageHeap
        pageHeap.pointee.lock.lock()
        var list = pageHeap.pointee.takeRetiredLocked()
        while let span = list {
            list = span.pointee.next
            pageHeap.pointee.recycleLocked(span)
        }
        pageHeap.pointee.lock.unlock()
    }
}

/// call_rcu callback: a retired span record's grace period is over.
private func spanGracePeriodEnded(_ head: UnsafeMutableRawPointer?) {
    guard let head else { return }
    let span = head.assumingMemoryBound(to: Span.self)
    let heap = Heap.shared
    if heap.pointee.config.debug { Poison.span(span) }
    let pageHeap = heap.pointee.pageHeap
    pageHeap.pointee.lock.lock()
    pageHeap.pointee.recycleLocked(span)
    pageHeap.pointee.lock.unlock()
}

/// call_rcu callback: a retired thread record's grace period is over.
func threadRecordGracePeriodEnded(_ head: UnsafeMutableRawPointer?) {
    guard let head else { return }
    let state = head.assumingMemoryBound(to: ThreadState.self)
    let heap = Heap.shared
    if heap.pointee.config.debug { Poison.threadRecord(state) }
    ThreadRegistry.recycle(state)
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

    /// Stops the process: a reader found a record after its grace period.
    static func caught(_ what: StaticString) -> Never {
        fatal(what)
    }
}
