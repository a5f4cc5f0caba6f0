// The statistics for C programs: malloc_stats / swiftmalloc_stats_print (a
// readable summary), malloc_info (glibc's XML shape) and mallinfo2.
//
// A report is made in three steps, so that nothing allocates or writes to a
// stream under an allocator lock: the snapshot (StatsSnapshot.take, with the
// per-class table) takes and releases the locks it needs one at a time; the
// text is formatted into memory mapped for this report alone (not from the
// heap, so the report does not count itself, and no lock guards it); then
// the C shim writes it to the FILE* (stdio may call malloc for the stream's
// buffer: no allocator lock is held by then) and the memory is unmapped.
import SwiftMallocShims

/// Each size class's objects in use and spans, indexed by class (class 0
/// unused), in memory the caller provides.
struct ClassTable {
    let inUse: UnsafeMutablePointer<UInt64>
    let spans: UnsafeMutablePointer<UInt64>

    static let byteCount = 2 * SizeClassTable.maxClasses * MemoryLayout<UInt64>.stride

    init(_ base: UnsafeMutableRawPointer) {
        inUse = base.bindMemory(to: UInt64.self, capacity: 2 * SizeClassTable.maxClasses)
        spans = inUse + SizeClassTable.maxClasses
    }

    func clear() { inUse.update(repeating: 0, count: 2 * SizeClassTable.maxClasses) }
}

enum StatsReport {
    static let textBytes = 64 << 10
    static let mappedBytes = ClassTable.byteCount + textBytes

    enum Form { case text, xml }

    /// Takes a snapshot, formats it, writes it to `stream` (a FILE*).
    /// Returns false when the memory could not be mapped, the text did not
    /// fit, or the write failed.
    static func write(_ form: Form, to stream: UnsafeMutableRawPointer) -> Bool {
        let heap = Heap.ensureInitialized()
        guard let memory = OSMemory.map(mappedBytes) else { return false }
        defer { OSMemory.unmap(memory, mappedBytes) }
        let classes = ClassTable(memory)
        let snapshot = StatsSnapshot.take(classes: classes)
        var text = TextBuffer(base: (memory + ClassTable.byteCount).bindMemory(to: UInt8.self, capacity: textBytes),
                              capacity: textBytes)
        let table = heap.pointee.sizeClasses
        let rows = ClassRows(classes: classes, table: table)
        switch form {
        case .text: snapshot.summary(rows, into: &text)
        case .xml: snapshot.xml(rows, into: &text)
        }
        if text.overflowed { return false }
        // Every allocator lock is released here.
        return sm_write_stream(stream, UnsafeRawPointer(text.base).assumingMemoryBound(to: CChar.self), text.count) == 0
    }

    /// glibc's struct mallinfo2, from a snapshot (see <swiftmalloc.h>).
    static func mallinfo2() -> swiftmalloc_mallinfo2 {
        let s = StatsSnapshot.take()
        let c = s.counters
        var info: swiftmalloc_mallinfo2 = .init()
        let smallFree = s.smallFreeBytes
        let residentFree = c.page_heap_free_bytes > c.released_bytes ? c.page_heap_free_bytes - c.released_bytes : 0
        info.arena = Int(truncatingIfNeeded: s.regionBytes)
        info.ordblks = 0
        info.smblks = 0
        info.hblks = Int(truncatingIfNeeded: s.directCount)
        info.hblkhd = Int(truncatingIfNeeded: s.directBytes)
        info.usmblks = 0
        info.fsmblks = Int(truncatingIfNeeded: smallFree)
        info.uordblks = Int(truncatingIfNeeded: c.in_use_bytes)
        info.fordblks = Int(truncatingIfNeeded: smallFree &+ c.page_heap_free_bytes &+ c.large_cache_bytes)
        info.keepcost = Int(truncatingIfNeeded: residentFree)
        return info
    }
}

/// The per-class figures a report prints: in use and spans from the
/// snapshot; capacity and cached derived from the spans.
struct ClassRows {
    let classes: ClassTable
    let table: SizeClassTable
    var count: Int { table.count }

    func size(_ c: Int) -> UInt64 { UInt64(table.sizes[c]) }
    func spanBytes(_ c: Int) -> Int { table.spanGranules(of: c) << Page.shift }
    func inUse(_ c: Int) -> UInt64 { classes.inUse[c] }
    func spans(_ c: Int) -> UInt64 { classes.spans[c] }
    /// Objects the class's spans hold, carved or not.
    func capacity(_ c: Int) -> UInt64 {
        spans(c) &* (UInt64(spanBytes(c)) / size(c))
    }
    /// Free objects of the class held anywhere (front-end caches, transfer
    /// cache, central list, never carved span tails): capacity less in use.
    func cached(_ c: Int) -> UInt64 {
        let held = capacity(c), used = inUse(c)
        return held > used ? held - used : 0
    }
    /// Whether the report lists the class: it has spans or objects in use.
    func listed(_ c: Int) -> Bool { spans(c) != 0 || inUse(c) != 0 }
}

extension StatsSnapshot {
    /// Bytes of free small objects held (span bytes less small in-use bytes).
    var smallFreeBytes: UInt64 {
        counters.small_span_bytes > smallInUseBytes ? counters.small_span_bytes - smallInUseBytes : 0
    }

    /// Mapped bytes less the free page-heap bytes given back to the OS.
    var residentBytes: UInt64 {
        counters.mapped_bytes > counters.released_bytes ? counters.mapped_bytes - counters.released_bytes : 0
    }

    /// The malloc_stats text.
    func summary(_ rows: ClassRows, into b: inout TextBuffer) {
        let c = counters
        b.append("SwiftMalloc statistics\nfront end: ")
        b.append(frontEnd.name)
        b.append(" (rseq ")
        b.append(rseqAvailable ? "available" : "unavailable")
        if frontEnd == .percpu { b.append(", ids "); b.append(idMode.name) }
        b.append(")\n")
        b.append("front end "); b.append(frontEnd.name)
        b.append(": hits "); b.append(c.fast_path_hits)
        b.append(" misses "); b.append(c.fast_path_misses)
        b.append(" rseq aborts "); b.append(c.rseq_aborts)
        b.append("\nallocations "); b.append(c.allocations)
        b.append(" frees "); b.append(c.frees)
        b.append(" large allocations "); b.append(c.large_allocations)
        b.append("\nthreads seen "); b.append(c.threads_seen)
        b.append(" live "); b.append(c.threads_live)
        b.append("\n\n class      size      in use      cached   spans\n")
        var k = 1
        while k < rows.count {
            if rows.listed(k) {
                b.appendPadded(UInt64(k), width: 6)
                b.appendPadded(rows.size(k), width: 10)
                b.appendPadded(rows.inUse(k), width: 12)
                b.appendPadded(rows.cached(k), width: 12)
                b.appendPadded(rows.spans(k), width: 8)
                b.append("\n")
            }
            k += 1
        }
        b.append("\nmapped bytes          "); b.append(c.mapped_bytes)
        b.append("\nresident bytes        "); b.append(residentBytes)
        b.append("\nin-use bytes          "); b.append(c.in_use_bytes)
        b.append("\nsmall span bytes      "); b.append(c.small_span_bytes)
        b.append("\nsmall free bytes      "); b.append(smallFreeBytes)
        b.append("\npage heap free bytes  "); b.append(c.page_heap_free_bytes)
        b.append("\nreleased bytes        "); b.append(c.released_bytes)
        b.append("\nlarge mapped blocks   "); b.append(directCount)
        b.append(" ("); b.append(directBytes); b.append(" bytes)")
        b.append("\nlarge cache bytes     "); b.append(c.large_cache_bytes)
        b.append("\nmetadata bytes        "); b.append(c.metadata_bytes)
        // glibc's closing lines, for readers used to them.
        b.append("\nTotal (incl. mmap):\nsystem bytes     = "); b.append(c.mapped_bytes)
        b.append("\nin use bytes     = "); b.append(c.in_use_bytes)
        b.append("\nmax mmap regions = "); b.append(directCount)
        b.append("\nmax mmap bytes   = "); b.append(directBytes)
        b.append("\n")
    }

    /// The malloc_info XML, in glibc's shape: one heap (nr 0) whose <sizes>
    /// lists each size class (from the size above the previous class's to
    /// its own; count: objects in use, total: their bytes; our attributes
    /// cached and spans besides), then totals, system and aspace lines, then
    /// the same for the whole process with the directly mapped blocks as
    /// type "mmap", and a <swiftmalloc> element for the front end.
    func xml(_ rows: ClassRows, into b: inout TextBuffer) {
        let c = counters
        var cachedObjects: UInt64 = 0
        b.append("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n")
        var previous: UInt64 = 0
        var k = 1
        while k < rows.count {
            let size = rows.size(k)
            if rows.listed(k) {
                b.append("  <size from=\""); b.append(previous &+ 1)
                b.append("\" to=\""); b.append(size)
                b.append("\" total=\""); b.append(rows.inUse(k) &* size)
                b.append("\" count=\""); b.append(rows.inUse(k))
                b.append("\" cached=\""); b.append(rows.cached(k))
                b.append("\" spans=\""); b.append(rows.spans(k))
                b.append("\"/>\n")
            }
            cachedObjects &+= rows.cached(k)
            previous = size
            k += 1
        }
        b.append("</sizes>\n")
        let heapBytes = regionBytes
        xmlTotals(fastCount: cachedObjects, includeMmap: false, systemBytes: heapBytes, into: &b)
        b.append("</heap>\n")
        xmlTotals(fastCount: cachedObjects, includeMmap: true, systemBytes: c.mapped_bytes, into: &b)
        b.append("<swiftmalloc frontend=\""); b.append(frontEnd.name)
        b.append("\" hits=\""); b.append(c.fast_path_hits)
        b.append("\" misses=\""); b.append(c.fast_path_misses)
        b.append("\" rseq_aborts=\""); b.append(c.rseq_aborts)
        b.append("\" in_use=\""); b.append(c.in_use_bytes)
        b.append("\" resident=\""); b.append(residentBytes)
        b.append("\"/>\n</malloc>\n")
    }

    private func xmlTotals(fastCount: UInt64, includeMmap: Bool, systemBytes: UInt64, into b: inout TextBuffer) {
        let c = counters
        // fast: free small objects; rest: free page-heap pages and kept
        // large blocks; mmap: live directly mapped blocks.
        b.append("<total type=\"fast\" count=\""); b.append(fastCount)
        b.append("\" size=\""); b.append(smallFreeBytes)
        b.append("\"/>\n<total type=\"rest\" count=\"0\" size=\"")
        b.append(c.page_heap_free_bytes &+ c.large_cache_bytes)
        b.append("\"/>\n")
        if includeMmap {
            b.append("<total type=\"mmap\" count=\""); b.append(directCount)
            b.append("\" size=\""); b.append(directBytes); b.append("\"/>\n")
        }
        // No peak is kept: "max" is the current figure.
        b.append("<system type=\"current\" size=\""); b.append(systemBytes)
        b.append("\"/>\n<system type=\"max\" size=\""); b.append(systemBytes)
        b.append("\"/>\n<aspace type=\"total\" size=\""); b.append(systemBytes)
        b.append("\"/>\n<aspace type=\"mprotect\" size=\""); b.append(systemBytes)
        b.append("\"/>\n")
    }
}

extension TextBuffer {
    /// `value` right-aligned in `width` columns (wider values as they are).
    mutating func appendPadded(_ value: UInt64, width: Int) {
        var digits = 1
        var v = value
        while v >= 10 { v /= 10; digits += 1 }
        var pad = width - digits
        while pad > 0 { appendByte(32); pad -= 1 }
        append(value)
    }
}
