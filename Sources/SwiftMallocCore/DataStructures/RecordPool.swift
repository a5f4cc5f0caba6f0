// Records that lock-free readers may still hold (span records, thread
// records) are never freed: an unlinked record waits in `retired` until an
// RCU grace period has passed (no reader can still see it), then joins
// `unused`, from which new records are taken. The owner (page heap, thread
// registry) keeps its pool under its own lock; Reclamation moves retired
// records to `unused` across a grace period.
import SwiftMallocShims

/// A record kept in a RecordPool, linked through `poolNext` while retired
/// or unused.
protocol PoolRecord {
    var poolNext: UnsafeMutablePointer<Self>? { get set }
}

struct RecordPool<Record: PoolRecord> {
    var unused: UnsafeMutablePointer<Record>? = nil
    var retired: UnsafeMutablePointer<Record>? = nil
    /// How many records are in `retired`: a relaxed atomic word, written
    /// under the owner's lock and read without it (Reclamation.flush peeks
    /// at it to decide when a grace period is worth waiting for). It is a
    /// word of its own in metadata, reached by pointer, because the pool's
    /// `mutating` methods could reach a field of theirs only through an
    /// `inout` access, which ThreadSanitizer counts as a plain write.
    private let pending: UnsafeMutablePointer<UInt>
    /// Records retired so far, and those whose grace period has ended (the
    /// difference is metadata waiting for grace periods).
    var retiredCount: UInt64 = 0
    var reclaimedCount: UInt64 = 0

    init(metadata: UnsafeMutablePointer<Guarded<MetadataArena>>) {
        pending = metadata.allocateArray(of: UInt.self, count: 1)
    }

    /// Records in `retired`; without the owner's lock, a peek that may be
    /// stale.
    var retiredPending: Int { Int(bitPattern: sm_atomic_load_uptr(pending)) }

    /// A reusable record, or nil when the owner must make a new one.
    mutating func takeUnused() -> UnsafeMutablePointer<Record>? {
        guard let record = unused else { return nil }
        unused = record.pointee.poolNext
        return record
    }

    /// A record no structure points to any more; it waits for a grace period.
    mutating func retire(_ record: UnsafeMutablePointer<Record>) {
        retiredCount &+= 1
        queue(record)
    }

    /// Takes every record waiting for a grace period, as a chain.
    mutating func takeRetired() -> UnsafeMutablePointer<Record>? {
        let chain = retired
        retired = nil
        sm_atomic_store_uptr(pending, 0)
        return chain
    }

    /// Puts back a chain taken by `takeRetired` (no grace period happened).
    mutating func requeue(_ chain: UnsafeMutablePointer<Record>?) {
        var cursor = chain
        while let record = cursor {
            cursor = record.pointee.poolNext
            queue(record)
        }
    }

    /// Makes a chain taken by `takeRetired` reusable: its grace period is over.
    mutating func recycle(_ chain: UnsafeMutablePointer<Record>?) {
        var cursor = chain
        while let record = cursor {
            cursor = record.pointee.poolNext
            reclaimedCount &+= 1
            record.pointee.poolNext = unused
            unused = record
        }
    }

    private mutating func queue(_ record: UnsafeMutablePointer<Record>) {
        record.pointee.poolNext = retired
        retired = record
        sm_atomic_store_uptr(pending, sm_atomic_load_uptr(pending) &+ 1)
    }
}
