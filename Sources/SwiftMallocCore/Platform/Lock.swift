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

/// A structure that threads share, and the lock that guards it, side by
/// side. Threads share it through a pointer and take the lock through the
/// pointer (`UnsafeMutablePointer.withLock`), which hands its body the state
/// alone: a thread waiting for the lock writes the lock word and nothing
/// else, and the holder's exclusive (`inout`) access covers the state and
/// not the lock word. (With the lock inside the state, the holder's access
/// covered memory that waiting threads write: Swift may pass an `inout`
/// by copying it in and out, which would write back a stale lock word, and
/// ThreadSanitizer reported the overlap.)
/// ThreadSanitizer counts the holder's `inout` access as a write of the
/// state's first byte, so a field that threads read without the lock (one
/// that never changes included) must not be the state's first.
struct Guarded<State>: LockGuarded {
    var lock = Lock()
    var state: State

    init(_ state: State) { self.state = state }
}

/// What `Guarded` is, for the pointer operations below (Swift has no
/// extensions over `UnsafeMutablePointer<Guarded<S>>` for every S).
protocol LockGuarded {
    associatedtype State
    var lock: Lock { get set }
    var state: State { get set }
}

extension UnsafeMutablePointer where Pointee: LockGuarded {
    /// The lock: `Guarded`'s first stored property (UnitLockTests).
    @inline(__always)
    var lockAddress: UnsafeMutablePointer<Lock> { UnsafeMutableRawPointer(self).assumingMemoryBound(to: Lock.self) }

    /// Takes the lock (for code that then works on the state through
    /// `state`, or that hands the lock's scope to several statements).
    @inline(__always)
    func lock() { sm_lock(lockAddress) }

    @inline(__always)
    func unlock() { sm_unlock(lockAddress) }

    @inline(__always)
    func tryLock() -> Bool { sm_trylock(lockAddress) }

    /// The state, without the lock: for what does not change once the
    /// structure is built, for walks that are racy by design, and for code
    /// that holds the lock through `lock()`.
    @inline(__always)
    var state: UnsafeMutablePointer<Pointee.State> {
        let offset = (MemoryLayout<Lock>.size &+ MemoryLayout<Pointee.State>.alignment &- 1)
            & ~(MemoryLayout<Pointee.State>.alignment &- 1)
        return (UnsafeMutableRawPointer(self) + offset).assumingMemoryBound(to: Pointee.State.self)
    }

    /// Runs `body` with the lock held and the state to itself. What must not
    /// happen under the lock (stopping the process on a bad pointer,
    /// unmapping, calling into liburcu) is decided by `body`'s result and
    /// done by the caller after.
    @inline(__always)
    func withLock<Result>(_ body: (inout Pointee.State) -> Result) -> Result {
        sm_lock(lockAddress)
        let result = body(&state.pointee)
        sm_unlock(lockAddress)
        return result
    }
}
