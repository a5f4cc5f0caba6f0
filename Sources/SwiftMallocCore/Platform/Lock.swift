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

/// A structure whose fields its `lock` guards; `lock` is its first stored
/// property (UnitLockTests checks each). Threads share such a structure
/// through a pointer, and take its lock through the pointer too
/// (`UnsafeMutablePointer.withLock`): the lock's address comes from the
/// structure's, so a thread waiting for the lock is not yet accessing the
/// structure, and only the holder has it `inout`.
protocol LockGuarded {
    var lock: Lock { get set }
}

extension LockGuarded {
    /// Runs `body` with the lock held, for a caller that already has the
    /// structure to itself (inside one of its own methods).
    @inline(__always)
    mutating func withLock<Result>(_ body: (inout Self) -> Result) -> Result {
        lock.lock()
        let result = body(&self)
        lock.unlock()
        return result
    }
}

extension UnsafeMutablePointer where Pointee: LockGuarded {
    /// The structure's lock: its first stored property.
    @inline(__always)
    var lockAddress: UnsafeMutablePointer<Lock> { UnsafeMutableRawPointer(self).assumingMemoryBound(to: Lock.self) }

    /// Takes the lock (for code that then reads fields through the pointer,
    /// or that hands the lock's scope to several statements).
    @inline(__always)
    func lock() { sm_lock(lockAddress) }

    @inline(__always)
    func unlock() { sm_unlock(lockAddress) }

    /// Runs `body` with the lock held and the structure to itself. What
    /// must not happen under the lock (stopping the process on a bad
    /// pointer, unmapping, calling into liburcu) is decided by `body`'s
    /// result and done by the caller after.
    @inline(__always)
    func withLock<Result>(_ body: (inout Pointee) -> Result) -> Result {
        sm_lock(lockAddress)
        let result = body(&pointee)
        sm_unlock(lockAddress)
        return result
    }
}
