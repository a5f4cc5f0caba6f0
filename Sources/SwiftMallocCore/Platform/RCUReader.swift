// RCU read-side sections for the allocator's lock-free readers.
//
// A thread becomes an RCU reader (liburcu memb flavour) the first time it
// needs a read-side section, and stops being one when it exits; its
// standing is an `RCUReaderRecord` that the caller keeps (in the thread's
// record). Threads that cannot (liburcu not started, the thread already
// exiting, or inside a liburcu call) take the writers' lock instead;
// `enter` says which.
import SwiftMallocShims

/// A thread's registration with liburcu.
struct RCUReaderRecord {
    /// The thread registered itself as a reader (at its first read).
    var registered = false
    /// liburcu's reader record of the thread, when we registered it.
    var handle: UnsafeMutableRawPointer? = nil
}

/// Read-side sections for one thread.
struct RCUReader {
    /// liburcu's grace periods work (set once, after start-up).
    let ready: Bool
    /// The calling thread's registration; nil for a thread that is exiting.
    let record: UnsafeMutablePointer<RCUReaderRecord>?

    /// Enters a read-side section; false when the caller must lock instead.
    @inline(__always)
    func enter() -> Bool {
        guard ready, let record else { return false }
        if !record.pointee.registered {
            if sm_rcu_busy() { return false }
            record.pointee.handle = sm_rcu_register_thread()
            record.pointee.registered = true
        }
        sm_rcu_read_lock()
        return true
    }

    @inline(__always)
    func exit() { sm_rcu_read_unlock() }
}
