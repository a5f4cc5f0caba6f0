// The C entry points, under the swiftmalloc_* names. The standard names
// (malloc, free, ...) are defined in CShims/Exports as tail calls to these,
// except malloc, free and cfree: the linker gives those names to the Swift
// functions below themselves (Package.swift, by their mangled names, which
// change, failing the link, if their signatures do); <swiftmalloc.h>
// documents them.
import SwiftMallocShims

@_cdecl("swiftmalloc_malloc")
public func swiftmalloc_malloc(_ size: UInt) -> UnsafeMutableRawPointer? {
    Allocator.allocate(size)
}

@_cdecl("swiftmalloc_free")
public func swiftmalloc_free(_ pointer: UnsafeMutableRawPointer?) {
    Allocator.deallocate(pointer)
}

@_cdecl("swiftmalloc_calloc")
public func swiftmalloc_calloc(_ count: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
    Allocator.allocateZeroed(count, size)
}

@_cdecl("swiftmalloc_realloc")
public func swiftmalloc_realloc(_ pointer: UnsafeMutableRawPointer?, _ size: UInt) -> UnsafeMutableRawPointer? {
    Allocator.reallocate(pointer, size)
}

@_cdecl("swiftmalloc_reallocarray")
public func swiftmalloc_reallocarray(_ pointer: UnsafeMutableRawPointer?, _ count: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
    Allocator.reallocateArray(pointer, count, size)
}

@_cdecl("swiftmalloc_posix_memalign")
public func swiftmalloc_posix_memalign(_ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ alignment: UInt, _ size: UInt) -> Int32 {
    Allocator.posixMemalign(result, alignment, size)
}

@_cdecl("swiftmalloc_aligned_alloc")
public func swiftmalloc_aligned_alloc(_ alignment: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
    Allocator.alignedAlloc(alignment, size)
}

@_cdecl("swiftmalloc_memalign")
public func swiftmalloc_memalign(_ alignment: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
    Allocator.memalign(alignment, size)
}

@_cdecl("swiftmalloc_valloc")
public func swiftmalloc_valloc(_ size: UInt) -> UnsafeMutableRawPointer? {
    Allocator.valloc(size)
}

@_cdecl("swiftmalloc_pvalloc")
public func swiftmalloc_pvalloc(_ size: UInt) -> UnsafeMutableRawPointer? {
    Allocator.pvalloc(size)
}

@_cdecl("swiftmalloc_usable_size")
public func swiftmalloc_usable_size(_ pointer: UnsafeMutableRawPointer?) -> UInt {
    Allocator.usableSize(pointer)
}

@_cdecl("swiftmalloc_trim")
public func swiftmalloc_trim(_ pad: UInt) -> Int32 {
    Allocator.releaseFreeMemory() > 0 ? 1 : 0
}

@_cdecl("swiftmalloc_release_free_memory")
public func swiftmalloc_release_free_memory() -> UInt {
    Allocator.releaseFreeMemory()
}

@_cdecl("swiftmalloc_page_size")
public func swiftmalloc_page_size() -> UInt {
    UInt(Heap.ensureInitialized().pointee.sizeClasses.spanPageSize)
}

@_cdecl("swiftmalloc_page_alloc")
public func swiftmalloc_page_alloc(_ pages: UInt) -> UnsafeMutableRawPointer? {
    Allocator.allocatePages(pages)
}

@_cdecl("swiftmalloc_page_free")
public func swiftmalloc_page_free(_ pointer: UnsafeMutableRawPointer?, _ pages: UInt) {
    Allocator.freePages(pointer, pages)
}

@_cdecl("swiftmalloc_get_stats_sized")
public func swiftmalloc_get_stats_sized(_ out: UnsafeMutablePointer<swiftmalloc_stats>?, _ size: UInt) -> Int32 {
    guard let out else {
        sm_set_errno(EINVAL)
        return -1
    }
    var counters = StatsSnapshot.take().counters
    withUnsafeBytes(of: &counters) { bytes in
        UnsafeMutableRawPointer(out).copyMemory(from: bytes.baseAddress.unsafelyUnwrapped,
                                                byteCount: min(Int(size), bytes.count))
    }
    return 0
}

/// Version 1 of the struct: the version word and the 13 counters it had,
/// for programs built before the struct grew (see <swiftmalloc.h>).
@_cdecl("swiftmalloc_get_stats")
public func swiftmalloc_get_stats(_ out: UnsafeMutablePointer<swiftmalloc_stats>?) -> Int32 {
    let result = swiftmalloc_get_stats_sized(out, 14 * 8)
    if result == 0 { out.unsafelyUnwrapped.pointee.version = 1 }
    return result
}

@_cdecl("swiftmalloc_frontend_name")
public func swiftmalloc_frontend_name() -> UnsafePointer<CChar> {
    let name = Heap.ensureInitialized().pointee.frontEnd.name
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("swiftmalloc_write_stats")
public func swiftmalloc_write_stats(_ path: UnsafePointer<CChar>?) -> Int32 {
    guard let path else {
        sm_set_errno(EINVAL)
        return -1
    }
    return StatsSnapshot.writeFile(path) ? 0 : -1
}

/// Library constructor (CShims/Exports): build the heap before the program
/// starts threads, so fork handlers are in place from the start.
@_cdecl("sm_library_loaded")
public func sm_library_loaded() {
    _ = Heap.ensureInitialized()
}

/// Library destructor: write SWIFTMALLOC_STATS_FILE and
/// SWIFTMALLOC_HISTOGRAM if they were set.
@_cdecl("sm_library_exiting")
public func sm_library_exiting() {
    let heap = Heap.ensureInitialized()
    if let path = heap.pointee.config.statsPath, !StatsSnapshot.writeFile(path) {
        reportUnwritable("SWIFTMALLOC_STATS_FILE=", path)
    }
    if let path = heap.pointee.config.histogramPath, !HistogramFile.write(path) {
        reportUnwritable("SWIFTMALLOC_HISTOGRAM=", path)
    }
}

/// One line on stderr for a file asked for and not written, with errno's reason.
private func reportUnwritable(_ variable: StaticString, _ path: UnsafePointer<CChar>) {
    let reason = sm_error_text(sm_get_errno())
    writeStderr("swiftmalloc: cannot write ")
    writeStderr(variable)
    sm_write_stderr(path, Int(sm_string_length(path)))
    writeStderr(": ")
    sm_write_stderr(reason, Int(sm_string_length(reason)))
    writeStderr("\n")
}

// MARK: statistics for C programs (StatsReport.swift)

/// malloc_stats prints this to stderr (CShims/Exports).
@_cdecl("swiftmalloc_stats_print")
public func swiftmalloc_stats_print(_ stream: UnsafeMutableRawPointer?) -> Int32 {
    guard let stream else {
        sm_set_errno(EINVAL)
        return -1
    }
    return StatsReport.write(.text, to: stream) ? 0 : -1
}

@_cdecl("swiftmalloc_malloc_info")
public func swiftmalloc_malloc_info(_ options: Int32, _ stream: UnsafeMutableRawPointer?) -> Int32 {
    guard options == 0, let stream else {
        sm_set_errno(EINVAL)
        return -1
    }
    return StatsReport.write(.xml, to: stream) ? 0 : -1
}

@_cdecl("swiftmalloc_mallinfo2")
public func swiftmalloc_mallinfo2() -> swiftmalloc_mallinfo2 {
    StatsReport.mallinfo2()
}
