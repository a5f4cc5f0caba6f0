// Statistics: a snapshot summed from every thread's counters and the back
// end's accounting, and its JSON form (the SWIFTMALLOC_STATS_FILE object).
// Formatting writes into a preallocated buffer: no allocation, so it can run
// at process exit, from any state.
import SwiftMallocShims

struct StatsSnapshot {
    var frontEnd: FrontEndKind = .thread
    var rseqAvailable = false
    var idMode: PerCPUIDMode = .cpu
    var allocations: UInt64 = 0
    var frees: UInt64 = 0
    var fastPathHits: UInt64 = 0
    var fastPathMisses: UInt64 = 0
    var rseqAborts: UInt64 = 0
    var mappedBytes: UInt64 = 0
    var releasedBytes: UInt64 = 0
    var inUseBytes: UInt64 = 0
    var threadsSeen: UInt64 = 0
    var threadsLive: UInt64 = 0
    var largeAllocations: UInt64 = 0
    var pageHeapFreeBytes: UInt64 = 0
    var metadataBytes: UInt64 = 0
    var percpuRebalances: UInt64 = 0
    var percpuCachedBytes: UInt64 = 0
    var largeCacheBytes: UInt64 = 0
    var smallSpanBytes: UInt64 = 0
    var scavengerPasses: UInt64 = 0
    var scavengedBytes: UInt64 = 0
    var centralFreeBytes: UInt64 = 0
    var transferCachedBytes: UInt64 = 0
    var largeCacheHits: UInt64 = 0
    var rcuRetired: UInt64 = 0
    var rcuReclaimed: UInt64 = 0

    static func take() -> StatsSnapshot {
        let heap = Heap.ensureInitialized()
        var s = StatsSnapshot()
        s.frontEnd = heap.pointee.frontEnd
        s.rseqAvailable = heap.pointee.config.rseqAvailable
        s.idMode = sm_rseq_uses_mm_cid() ? .mmcid : .cpu
        var totals = ThreadRegistry.totals(heap.pointee.threads, reader: Heap.reader(heap))
        // The per-CPU front end counts its hits in the slabs.
        if heap.pointee.frontEnd == .percpu {
            var c = 1
            while c < heap.pointee.sizeClasses.count {
                totals.addAllocations(heap.pointee.percpu.pops(c), size: heap.pointee.sizeClasses.sizes[c])
                c += 1
            }
        }
        s.rseqAborts = totals.scalars.rseqAborts
        s.allocations = totals.allocations
        s.frees = totals.frees
        s.fastPathHits = totals.fastHits
        s.fastPathMisses = totals.scalars.fastMisses
        s.largeAllocations = totals.scalars.largeAllocations
        s.inUseBytes = totals.inUseBytes
        let registry = heap.pointee.threads
        registry.pointee.lock.lock()
        s.threadsSeen = registry.pointee.threadsSeen
        s.threadsLive = registry.pointee.threadsLive
        registry.pointee.lock.unlock()
        if heap.pointee.frontEnd == .percpu { s.percpuCachedBytes = heap.pointee.percpu.cachedBytes(reader: Heap.reader(heap)) }
        // Where small-object memory is: spans, free objects left in them,
        // batches parked between caches.
        (s.smallSpanBytes, s.centralFreeBytes, s.transferCachedBytes) = heap.pointee.middle.footprint(sizes: heap.pointee.sizeClasses.sizes)
        let pageHeap = heap.pointee.pageHeap
        pageHeap.pointee.lock.lock()
        let metadata = UInt64(heap.pointee.metadata.pointee.mappedBytes) &+ UInt64(pageHeap.pointee.pageMap.mappedBytes)
        s.metadataBytes = metadata
        s.scavengerPasses = heap.pointee.scavengerPasses
        s.scavengedBytes = heap.pointee.scavengedBytes
        s.largeCacheBytes = UInt64(pageHeap.pointee.mappingCache.bytes)
        s.largeCacheHits = pageHeap.pointee.mappingCache.hits
        s.mappedBytes = UInt64(pageHeap.pointee.regionBytes &+ pageHeap.pointee.directBytes) &+ s.largeCacheBytes &+ metadata
        s.releasedBytes = UInt64(pageHeap.pointee.releasedBytes)
        s.pageHeapFreeBytes = UInt64(pageHeap.pointee.freeBytes)
        s.percpuRebalances = heap.pointee.percpu.rebalances
        s.rcuRetired = pageHeap.pointee.records.retiredCount
        s.rcuReclaimed = pageHeap.pointee.records.reclaimedCount
        pageHeap.pointee.lock.unlock()
        return s
    }

    /// Writes the fields in the order of `struct swiftmalloc_stats`.
    func store(into out: UnsafeMutablePointer<UInt64>) {
        let fields: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (1, allocations, frees, fastPathHits, fastPathMisses, rseqAborts, mappedBytes, releasedBytes,
             inUseBytes, threadsSeen, threadsLive, largeAllocations, pageHeapFreeBytes, metadataBytes)
        withUnsafeBytes(of: fields) { raw in
            out.update(from: raw.baseAddress!.assumingMemoryBound(to: UInt64.self), count: 14)
        }
    }

    /// The JSON object, written into `buffer`; returns its length.
    func json(into buffer: inout TextBuffer) {
        buffer.append("{\"frontend\":\"")
        buffer.append(frontEnd.name)
        buffer.append("\",\"rseq_available\":")
        buffer.append(rseqAvailable ? "true" : "false")
        buffer.append(",\"percpu_id\":")
        if frontEnd == .percpu {
            buffer.append("\"")
            buffer.append(idMode.name)
            buffer.append("\"")
        } else {
            buffer.append("null")
        }
        buffer.field("allocations", allocations)
        buffer.field("frees", frees)
        buffer.field("fast_path_hits", fastPathHits)
        buffer.field("fast_path_misses", fastPathMisses)
        buffer.field("rseq_aborts", rseqAborts)
        buffer.field("mapped_bytes", mappedBytes)
        buffer.field("released_bytes", releasedBytes)
        buffer.field("in_use_bytes", inUseBytes)
        buffer.field("threads_seen", threadsSeen)
        buffer.field("threads_live", threadsLive)
        buffer.field("large_allocations", largeAllocations)
        buffer.field("page_heap_free_bytes", pageHeapFreeBytes)
        buffer.field("metadata_bytes", metadataBytes)
        buffer.field("percpu_rebalances", percpuRebalances)
        buffer.field("percpu_cached_bytes", percpuCachedBytes)
        buffer.field("large_cache_bytes", largeCacheBytes)
        buffer.field("small_span_bytes", smallSpanBytes)
        buffer.field("central_free_bytes", centralFreeBytes)
        buffer.field("transfer_cached_bytes", transferCachedBytes)
        buffer.field("scavenger_passes", scavengerPasses)
        buffer.field("scavenged_bytes", scavengedBytes)
        buffer.field("large_cache_hits", largeCacheHits)
        buffer.field("rcu_retired_spans", rcuRetired)
        buffer.field("rcu_reclaimed_spans", rcuReclaimed)
        buffer.field("pid", UInt64(sm_getpid()))
        buffer.append("}\n")
    }

    /// Writes the JSON object to `path`, where "%p" stands for the process id.
    static func writeFile(_ path: UnsafePointer<CChar>) -> Bool {
        let heap = Heap.ensureInitialized()
        let snapshot = take()
        let scratch = heap.pointee.statsScratch
        scratch.lock.pointee.lock()
        defer { scratch.lock.pointee.unlock() }
        var text = TextBuffer(base: scratch.text, capacity: StatsScratch.textBytes)
        snapshot.json(into: &text)
        var name = TextBuffer(base: scratch.path, capacity: StatsScratch.pathBytes)
        var i = 0
        while path[i] != 0 {
            if path[i] == 37 /* % */ && path[i + 1] == 112 /* p */ {
                name.append(UInt64(sm_getpid()))
                i += 2
            } else {
                name.appendByte(UInt8(bitPattern: path[i]))
                i += 1
            }
        }
        if name.overflowed || text.overflowed { return false }
        name.appendByte(0)
        return sm_write_file(UnsafeRawPointer(scratch.path).assumingMemoryBound(to: CChar.self),
                             UnsafeRawPointer(scratch.text).assumingMemoryBound(to: CChar.self), text.count) == 0
    }
}

/// Preallocated memory for writing stats without allocating.
struct StatsScratch {
    static let textBytes = 2048
    static let pathBytes = 4096
    var lock: UnsafeMutablePointer<Lock>
    var text: UnsafeMutablePointer<UInt8>
    var path: UnsafeMutablePointer<UInt8>

    init(metadata: inout MetadataArena) {
        lock = metadata.allocateArray(of: Lock.self, count: 1)
        text = metadata.allocateArray(of: UInt8.self, count: StatsScratch.textBytes)
        path = metadata.allocateArray(of: UInt8.self, count: StatsScratch.pathBytes)
    }
}

/// Appends text to a fixed buffer; remembers (rather than traps on) overflow.
struct TextBuffer {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    var count = 0
    var overflowed = false

    init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    mutating func appendByte(_ byte: UInt8) {
        if count < capacity { base[count] = byte; count += 1 } else { overflowed = true }
    }

    mutating func append(_ text: StaticString) {
        let bytes = text.utf8Start
        var i = 0
        while i < text.utf8CodeUnitCount { appendByte(bytes[i]); i += 1 }
    }

    mutating func append(_ value: UInt64) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(48 + v % 10)
                v /= 10
                n += 1
            } while v > 0
            while n > 0 { n -= 1; appendByte(d[n]) }
        }
    }

    mutating func field(_ name: StaticString, _ value: UInt64) {
        append(",\"")
        append(name)
        append("\":")
        append(value)
    }
}
