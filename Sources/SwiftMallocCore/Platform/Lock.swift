// A lock for the allocator's slow paths: the futex lock of the C shim.
//
// Locks live inside structures in mmapped memory and are taken through the
// structure's address, so they are never copied.
import SwiftMallocShims

typealias Lock = sm_lock_t

extension sm_lock_t {
    @inline(__always) mutating func lock() { sm_lock(&self) }
    @inline(__always) mutating func unlock() { sm_unlock(&self) }
    @inline(__always) mutating func tryLock() -> Bool { sm_trylock(&self) }
    /// In a forked child: the lock's holder (another thread) does not exist there.
    @inline(__always) mutating func reset() { sm_lock_reset(&self) }
}

/// A sum of locks' counters (stats): acquisitions, and those of them that
/// found the lock held (sm_lock_slow). Read without the locks, so a sum may
/// be a few acquisitions old, never more than the truth.
struct LockCounts {
    var acquisitions: UInt64 = 0
    var contended: UInt64 = 0

    @inline(__always)
    mutating func add(_ lock: UnsafePointer<Lock>) {
        acquisitions &+= sm_lock_acquisitions(lock)
        contended &+= sm_lock_contended(lock)
    }
}

/// A structure whose fields its `lock` guards.
protocol LockGuarded {
    var lock: Lock { get set }
}

extension LockGuarded {
    /// Runs `body` with the lock held. What must not happen under the lock
    /// (stopping the process on a bad pointer, unmapping, calling into
    /// liburcu) is decided by `body`'s result and done by the caller after.
    @inline(__always)
    mutating func withLock<Result>(_ body: (inout Self) -> Result) -> Result {
        lock.lock()
        let result = body(&self)
        lock.unlock()
        return result
    }
}
