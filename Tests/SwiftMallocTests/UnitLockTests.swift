// Each LockGuarded structure's lock is its first stored property: threads
// take the lock through the structure's address (`lockAddress`), before
// they access the structure itself.
import XCTest
@testable import SwiftMallocCoreTestable

final class UnitLockTests: XCTestCase {
    func testTheLockIsEachGuardedStructuresFirstField() {
        XCTAssertEqual(MemoryLayout<PageHeap>.offset(of: \PageHeap.lock), 0)
        XCTAssertEqual(MemoryLayout<ThreadRegistry>.offset(of: \ThreadRegistry.lock), 0)
        XCTAssertEqual(MemoryLayout<LockedCache>.offset(of: \LockedCache.lock), 0)
        XCTAssertEqual(MemoryLayout<CentralFreeList>.offset(of: \CentralFreeList.lock), 0)
        XCTAssertEqual(MemoryLayout<TransferCache>.offset(of: \TransferCache.lock), 0)
        XCTAssertEqual(MemoryLayout<MetadataArena>.offset(of: \MetadataArena.lock), 0)
    }

    /// The pointer's lock is the structure's: taken through one, it is seen
    /// held through the other.
    func testLockAddressIsTheLockField() {
        let arena = UnsafeMutablePointer<MetadataArena>.allocate(capacity: 1)
        arena.initialize(to: MetadataArena())
        defer { arena.deallocate() }
        XCTAssertEqual(UnsafeMutableRawPointer(arena.lockAddress), UnsafeMutableRawPointer(arena))
        arena.lock()
        XCTAssertFalse(arena.pointee.lock.tryLock(), "held through the pointer")
        arena.unlock()
        XCTAssertTrue(arena.lockAddress.pointee.tryLock())
        arena.unlock()
    }
}
