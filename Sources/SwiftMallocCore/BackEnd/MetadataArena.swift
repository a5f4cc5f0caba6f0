// Memory for the allocator's own records (spans, thread caches, tables):
// carved from mmapped chunks, never returned to the OS. Records that can die
// (spans, thread states) are recycled by their owners through free lists, so
// metadata grows with the peak number of records, not with their turnover.
import SwiftMallocShims

struct MetadataArena {
    var cursor: UInt = 0
    var end: UInt = 0
    /// Bytes mapped for metadata (reported in the stats).
    var mappedBytes: UInt = 0

    static let chunkSize = 1 << 20

    /// Zeroed memory of `bytes`, aligned to `alignment` (a power of two
    /// <= 4096). Stops the process if the OS refuses memory: metadata is
    /// needed to serve any request at all. (With the lock held, or by a
    /// caller that has the arena to itself: building the heap.)
    mutating func allocate(_ bytes: Int, alignment: Int = 64) -> UnsafeMutableRawPointer {
        let mask = UInt(alignment - 1)
        var start = (cursor &+ mask) & ~mask
        if start &+ UInt(bytes) > end || cursor == 0 {
            let chunk = max(MetadataArena.chunkSize, (bytes + 4095) & ~4095)
            guard let memory = OSMemory.map(chunk) else { fatal("out of memory for metadata") }
            mappedBytes &+= UInt(chunk)
            cursor = UInt(bitPattern: memory)
            end = cursor &+ UInt(chunk)
            start = cursor
        }
        cursor = start &+ UInt(bytes)
        return UnsafeMutableRawPointer(bitPattern: start)!
    }

    /// A typed, zero-initialised array of `count` elements.
    mutating func allocateArray<T>(of type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = allocate(MemoryLayout<T>.stride * count, alignment: max(MemoryLayout<T>.alignment, 16))
        return raw.bindMemory(to: T.self, capacity: count)
    }
}

// The arena shared by the running heap's parts, under its lock (Guarded).
extension UnsafeMutablePointer where Pointee == Guarded<MetadataArena> {
    /// Zeroed memory of `bytes`, aligned to `alignment` (see
    /// `MetadataArena.allocate`).
    func allocate(_ bytes: Int, alignment: Int = 64) -> UnsafeMutableRawPointer {
        withLock { $0.allocate(bytes, alignment: alignment) }
    }

    /// A typed, zero-initialised array of `count` elements.
    func allocateArray<T>(of type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = allocate(MemoryLayout<T>.stride * count, alignment: max(MemoryLayout<T>.alignment, 16))
        return raw.bindMemory(to: T.self, capacity: count)
    }
}
