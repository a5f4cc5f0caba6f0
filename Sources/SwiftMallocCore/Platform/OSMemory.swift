// Memory from the operating system: the only place that maps, unmaps and
// releases pages. Everything above works in pages of `Page.size` bytes.
import SwiftMallocShims

/// The allocator's page: the granule of the page heap and the page map, the
/// hardware's 4 KiB. Fixed at compile time: free's fast path shifts by it.
/// Spans are measured in a larger unit chosen at start-up, the span page
/// (`page_size` in the configuration file, 4 KiB by default, the page
/// itself): every span is a whole number of span pages and starts at a
/// multiple of one (PageHeap.spanPageGranules).
enum Page {
    static let shift = 12
    static let size = 1 << shift  // 4 KiB
    static let mask = size - 1
    /// The span page unless configured otherwise (`page_size`).
    static let defaultSpanPageSize = 4096

    @inline(__always) static func number(of address: UInt) -> UInt { address >> UInt(shift) }
    @inline(__always) static func address(of page: UInt) -> UInt { page << UInt(shift) }
    /// Pages needed for `bytes`, or nil if the count cannot be represented.
    @inline(__always) static func count(for bytes: Int) -> Int? {
        let (sum, overflow) = bytes.addingReportingOverflow(mask)
        return overflow ? nil : sum >> shift
    }
}

enum OSMemory {
    /// Maps `bytes` (a multiple of the system page size) of zeroed memory.
    @inline(__always)
    static func map(_ bytes: Int) -> UnsafeMutableRawPointer? {
        sm_os_map(bytes)
    }

    /// Maps `bytes` aligned to `alignment` (a power of two >= 4096).
    static func mapAligned(_ bytes: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        let (padded, overflow) = bytes.addingReportingOverflow(alignment)
        if overflow { return nil }
        guard let raw = sm_os_map(padded) else { return nil }
        let start = UInt(bitPattern: raw)
        let aligned = (start &+ UInt(alignment - 1)) & ~UInt(alignment - 1)
        let head = Int(aligned &- start)
        if head > 0 { _ = sm_os_unmap(raw, head) }
        let tail = padded - head - bytes
        if tail > 0 { _ = sm_os_unmap(UnsafeMutableRawPointer(bitPattern: aligned &+ UInt(bytes)), tail) }
        return UnsafeMutableRawPointer(bitPattern: aligned)
    }

    /// Leaves the mapping out of core dumps.
    static func excludeFromDumps(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        _ = sm_os_exclude_from_dumps(p, bytes)
    }

    @inline(__always)
    static func unmap(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        _ = sm_os_unmap(p, bytes)
    }

    /// Gives the pages back; the range stays mapped and reads as zero.
    @inline(__always)
    static func release(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        _ = sm_os_release(p, bytes)
    }
}
