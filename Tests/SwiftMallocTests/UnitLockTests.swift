// A shared structure is a `Guarded` state: its lock first, then the state.
// Threads take the lock through the structure's address (`lockAddress`),
// and `withLock` hands its body the state alone, never the lock word.
import XCTest
@testable import SwiftMallocCoreTestable

final class UnitLockTests: XCTestCase {
    /// `lockAddress` and `state` of a pointer are Guarded's two fields,
    /// whatever the state's alignment.
    func testLockAndStateAreGuardedsFields() {
        func check<S>(_ value: S) {
            let p = UnsafeMutablePointer<Guarded<S>>.allocate(capacity: 1)
            p.initialize(to: Guarded(value))
            defer { p.deinitialize(count: 1); p.deallocate() }
            XCTAssertEqual(MemoryLayout<Guarded<S>>.offset(of: \Guarded<S>.lock), 0)
            XCTAssertEqual(UnsafeMutableRawPointer(p.lockAddress), UnsafeMutableRawPointer(p))
            XCTAssertEqual(UnsafeMutableRawPointer(p.state) - UnsafeMutableRawPointer(p),
                           MemoryLayout<Guarded<S>>.offset(of: \Guarded<S>.state), "\(S.self)")
        }
        check(MetadataArena())
        check(UInt8(1))
        check(SIMD4<UInt32>(1, 2, 3, 4))   // 16-byte aligned
        check(BytePrefixedState())
    }

    /// The body gets the state, and the lock is held while it runs.
    func testWithLockHoldsTheLockAndGivesTheState() {
        let arena = UnsafeMutablePointer<Guarded<MetadataArena>>.allocate(capacity: 1)
        arena.initialize(to: Guarded(MetadataArena()))
        defer { arena.deallocate() }
        arena.withLock { state in
            XCTAssertFalse(arena.tryLock(), "held while the body runs")
            state.mappedBytes = 42
        }
        XCTAssertEqual(arena.pointee.state.mappedBytes, 42)
        XCTAssertTrue(arena.tryLock(), "free after the body")
        arena.unlock()
    }
}

/// A state whose first field is a byte: the state starts right after the lock.
private struct BytePrefixedState {
    var flag: UInt8 = 1
    var count: UInt64 = 2
}
