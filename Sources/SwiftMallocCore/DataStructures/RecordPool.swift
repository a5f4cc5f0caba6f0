// Records that lock-free readers may still hold (span records, thread
// records) are never freed: an unlinked record waits in `retired` until an
// RCU grace period has passed (no reader can still see it), then joins
// `unused`, from which new records are taken. The owner (page heap, thread
// registry) keeps its pool under its own lock; Reclamation moves retired
// records to `unused` across a grace period.

/// A record kept in a RecordPool, linked through `poolNext` while retired
/// or unused.
protocol PoolRecord {
    var poolNext: UnsafeMutablePointer<Self>? { get set }
}

struct RecordPool<Record: PoolRecord> {
    var unused: UnsafeMutablePointer<Record>? = nil
    var retired: UnsafeMutablePointer<Record>? = nil
    /// Records in `retired` (read without the lock to decide when a grace
    /// period is worth waiting for).
    var retiredPending = 0
    /// Records retired so far, and those whose grace period has ended (the
    /// difference is metadata waiting for grace periods).
    var retiredCount: UInt64 = 0
    var reclaimedCount: UInt64 = 0

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
        retiredPending = 0
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
        retiredPending &+= 1
    }
}
