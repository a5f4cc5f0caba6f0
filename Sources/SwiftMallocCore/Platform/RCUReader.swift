// RCU read-side sections for the allocator's lock-free readers.
//
// A thread becomes an RCU reader (liburcu memb flavour) the first time it
// needs a read-side section, and stops being one when it exits. Threads that
// cannot (liburcu not started, the thread already exiting, or inside a
// liburcu call) take the writers' lock instead; `enter` says which.
import SwiftMallocShims

enum RCUReader {
    /// Enters a read-side section; false when the caller must lock instead.
    @inline(__always)
    static func enter(_ heap: UnsafeMutablePointer<Heap>) -> Bool {
        guard heap.pointee.rcuReady, let state = FrontEnd.currentOrRegister() else { return false }
        if !state.pointee.rcuRegistered {
            if sm_rcu_busy() { return false }
            state.pointee.rcuReader = sm_rcu_register_thread()
            state.pointee.rcuRegistered = true
        }
        sm_rcu_read_lock()
        return true
    }

    @inline(__always)
    static func exit() { sm_rcu_read_unlock() }
}
