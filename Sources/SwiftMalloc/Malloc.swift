// The allocator for Swift code that wants it directly.
//
//     import SwiftMallocAPI
//     let p = Malloc.allocate(byteCount: 4096, alignment: 64)!
//     defer { Malloc.deallocate(p) }
//
// A Swift program that links libSwiftMalloc.so (the `SwiftMalloc` product)
// gets SwiftMalloc as its process allocator anyway: every class instance,
// array and string goes through it. This API is for memory the program
// manages by hand. It is ordinary Swift over <swiftmalloc.h>: the library
// itself is Embedded Swift, which an ordinary module cannot import.
import CSwiftMalloc

/// Entry points of the SwiftMalloc heap.
public enum Malloc {
    /// `byteCount` bytes aligned to `alignment` (a power of two), or nil when
    /// the memory cannot be had or the alignment is not a power of two.
    public static func allocate(byteCount: Int, alignment: Int = 16) -> UnsafeMutableRawPointer? {
        guard byteCount >= 0, alignment > 0, alignment & (alignment - 1) == 0 else { return nil }
        if alignment <= 16 && byteCount >= 16 { return swiftmalloc_malloc(byteCount) }
        return swiftmalloc_aligned_alloc(max(alignment, 8), max(byteCount, 1))
    }

    /// `byteCount` zeroed bytes (16-byte aligned), or nil.
    public static func allocateZeroed(byteCount: Int) -> UnsafeMutableRawPointer? {
        guard byteCount >= 0 else { return nil }
        return swiftmalloc_calloc(1, byteCount)
    }

    /// Resizes a block from this heap, keeping its contents (like realloc).
    public static func reallocate(_ pointer: UnsafeMutableRawPointer?, byteCount: Int) -> UnsafeMutableRawPointer? {
        guard byteCount >= 0 else { return nil }
        return swiftmalloc_realloc(pointer, max(byteCount, 1))
    }

    /// Frees a block from this heap.
    public static func deallocate(_ pointer: UnsafeMutableRawPointer?) {
        swiftmalloc_free(pointer)
    }

    /// The bytes usable in a block (at least what was asked for).
    public static func usableSize(of pointer: UnsafeMutableRawPointer) -> Int {
        swiftmalloc_usable_size(pointer)
    }

    /// Gives free memory back to the OS; returns the bytes released.
    @discardableResult
    public static func releaseFreeMemory() -> Int {
        swiftmalloc_release_free_memory()
    }

    /// The front end in use ("percpu", "thread", "arenas" or "global").
    public static var frontEnd: String {
        String(cString: swiftmalloc_frontend_name())
    }

    /// A snapshot of the allocator's counters.
    public static var statistics: swiftmalloc_stats {
        var stats = swiftmalloc_stats()
        _ = swiftmalloc_get_stats_sized(&stats, MemoryLayout<swiftmalloc_stats>.size)
        return stats
    }
}
