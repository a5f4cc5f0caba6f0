// The allocation histogram's file (SWIFTMALLOC_HISTOGRAM), written at exit:
//   {"total": N, "requested_bytes": R, "handed_out_bytes": H,
//    "buckets": [{"min_size": a, "max_size": b, "count": c}, ...]}
// with only the buckets counted, ascending (AllocationHistogram has the
// layout). The sums and the text go into memory mapped for the write alone:
// nothing is allocated, and the histogram does not count its own report.
import SwiftMallocShims

enum HistogramFile {
    /// Room for every bucket's line at its longest, and the header.
    static let textBytes = (AllocationHistogram.bucketCount + 1) * 96
    static let pathBytes = 4096
    static let mappedBytes = AllocationHistogram.byteCount + pathBytes + textBytes

    /// Writes the histogram to `path` ("%p": the process id). False, with
    /// errno set, when memory could not be mapped or the file could not be
    /// written.
    static func write(_ path: UnsafePointer<CChar>) -> Bool {
        let heap = Heap.ensureInitialized()
        guard let memory = OSMemory.map(mappedBytes) else { return false }
        defer { OSMemory.unmap(memory, mappedBytes) }
        let sum = AllocationHistogram(base: memory.bindMemory(to: UInt64.self, capacity: AllocationHistogram.wordCount))
        guard ThreadRegistry.histogramTotals(heap.pointee.threads, reader: Heap.reader(heap), into: sum) else { return false }
        var name = TextBuffer(base: (memory + AllocationHistogram.byteCount).bindMemory(to: UInt8.self, capacity: pathBytes),
                              capacity: pathBytes)
        name.appendPath(path)
        var text = TextBuffer(base: (memory + AllocationHistogram.byteCount + pathBytes)
                                  .bindMemory(to: UInt8.self, capacity: textBytes),
                              capacity: textBytes)
        json(sum, into: &text)
        if name.overflowed { sm_set_errno(ENAMETOOLONG); return false }
        if text.overflowed { sm_set_errno(EFBIG); return false }
        return sm_write_file(UnsafeRawPointer(name.base).assumingMemoryBound(to: CChar.self),
                             UnsafeRawPointer(text.base).assumingMemoryBound(to: CChar.self), text.count) == 0
    }

    static func json(_ histogram: AllocationHistogram, into b: inout TextBuffer) {
        var total: UInt64 = 0
        var i = 0
        while i < AllocationHistogram.bucketCount { total &+= histogram.count(i); i += 1 }
        b.append("{\"total\":"); b.append(total)
        b.append(",\"requested_bytes\":"); b.append(histogram.requestedBytes)
        b.append(",\"handed_out_bytes\":"); b.append(histogram.handedOutBytes)
        b.append(",\"buckets\":[")
        var first = true
        i = 0
        while i < AllocationHistogram.bucketCount {
            let count = histogram.count(i)
            if count != 0 {
                let bounds = AllocationHistogram.bounds(of: i)
                b.append(first ? "\n{\"min_size\":" : ",\n{\"min_size\":"); b.append(bounds.min)
                b.append(",\"max_size\":"); b.append(bounds.max)
                b.append(",\"count\":"); b.append(count)
                b.append("}")
                first = false
            }
            i += 1
        }
        b.append("]}\n")
    }
}
