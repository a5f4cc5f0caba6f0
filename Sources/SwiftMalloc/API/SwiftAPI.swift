// The allocator for Swift code that wants it directly.
//
//     import SwiftMalloc
//     let p = Malloc.allocate(byteCount: 4096, alignment: 64)!
//     defer { Malloc.deallocate(p) }
//
// (A Swift program that depends on the library product gets SwiftMalloc as
// its process allocator anyway: every class instance, array and string goes
// through it. This API is for memory the program manages by hand.)

/// Entry points of the SwiftMalloc heap.
public enum Malloc {
    /// `byteCount` bytes aligned to `alignment` (a power of two), or nil when
    /// the memory cannot be had or the alignment is not a power of two.
    public static func allocate(byteCount: Int, alignment: Int = 16) -> UnsafeMutableRawPointer? {
        guard byteCount >= 0, alignment > 0, alignment & (alignment - 1) == 0 else { return nil }
        if alignment <= 16 && byteCount >= 16 { return Allocator.allocate(UInt(byteCount)) }
        return Allocator.allocateAligned(UInt(alignment), UInt(max(byteCount, 1)))
    }

    /// `byteCount` zeroed bytes (16-byte aligned), or nil.
    public static func allocateZeroed(byteCount: Int) -> UnsafeMutableRawPointer? {
        guard byteCount >= 0 else { return nil }
        return Allocator.allocateZeroed(1, UInt(byteCount))
    }

    /// Resizes a block from this heap, keeping its contents (like realloc).
    public static func reallocate(_ pointer: UnsafeMutableRawPointer?, byteCount: Int) -> UnsafeMutableRawPointer? {
        guard byteCount >= 0 else { return nil }
        return Allocator.reallocate(pointer, UInt(max(byteCount, 1)))
    }

    /// Frees a block from this heap.
    public static func deallocate(_ pointer: UnsafeMutableRawPointer?) {
        Allocator.deallocate(pointer)
    }

    /// The bytes usable in a block (at least what was asked for).
    public static func usableSize(of pointer: UnsafeMutableRawPointer) -> Int {
        Int(Allocator.usableSize(pointer))
    }

    /// Gives free memory back to the OS; returns the bytes released.
    @discardableResult
    public static func releaseFreeMemory() -> Int {
        Int(Allocator.releaseFreeMemory())
    }

    /// The front end in use ("percpu", "thread", "arenas" or "global").
    public static var frontEnd: String {
        "\(Heap.ensureInitialized().pointee.frontEnd.name)"
    }

    /// A snapshot of the allocator's counters.
    public static var statistics: MallocStatistics {
        MallocStatistics(StatsSnapshot.take())
    }
}

/// Counters of the SwiftMalloc heap, summed over all threads.
public struct MallocStatistics: Sendable, Equatable {
    public var allocations: UInt64
    public var frees: UInt64
    public var fastPathHits: UInt64
    public var fastPathMisses: UInt64
    public var rseqAborts: UInt64
    public var mappedBytes: UInt64
    public var releasedBytes: UInt64
    public var inUseBytes: UInt64
    public var threadsSeen: UInt64
    public var threadsLive: UInt64
    public var largeAllocations: UInt64
    public var pageHeapFreeBytes: UInt64
    public var metadataBytes: UInt64
    public var rseqAvailable: Bool

    init(_ s: StatsSnapshot) {
        allocations = s.allocations
        frees = s.frees
        fastPathHits = s.fastPathHits
        fastPathMisses = s.fastPathMisses
        rseqAborts = s.rseqAborts
        mappedBytes = s.mappedBytes
        releasedBytes = s.releasedBytes
        inUseBytes = s.inUseBytes
        threadsSeen = s.threadsSeen
        threadsLive = s.threadsLive
        largeAllocations = s.largeAllocations
        pageHeapFreeBytes = s.pageHeapFreeBytes
        metadataBytes = s.metadataBytes
        rseqAvailable = s.rseqAvailable
    }
}
