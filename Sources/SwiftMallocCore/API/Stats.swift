// Statistics: a snapshot summed from every thread's counters and the back
// end's accounting, and its JSON form (the SWIFTMALLOC_STATS_FILE object).
// Formatting writes into a preallocated buffer: no allocation, so it can run
// at process exit, from any state.
import SwiftMallocShims

struct StatsSnapshot {
    let frontEnd: FrontEndKind
    let rseqAvailable: Bool
    let idMode: PerCPUIDMode
    /// The numeric counters, as swiftmalloc_get_stats hands them out; which
    /// ones there are is SWIFTMALLOC_STATS_FIELDS (swiftmalloc.h).
    let counters: swiftmalloc_stats
    /// Not in the public counters (mallinfo2 and the reports use them): the
    /// page heap's regions, the live directly mapped blocks (bytes, count),
    /// and the bytes in live small objects.
    var regionBytes: UInt64 = 0
    var directBytes: UInt64 = 0
    var directCount: UInt64 = 0
    var smallInUseBytes: UInt64 = 0
    /// Bytes requested by every counted allocation: known only while the
    /// allocation histogram records them, else nil.
    var requestedBytes: UInt64? = nil
    /// The configuration file in use (nil: the built-in configuration) and
    /// the size classes' sizes, classes 1 ..< classCount.
    var configFile: UnsafePointer<CChar>? = nil
    var classSizes: UnsafePointer<UInt32>? = nil
    var classCount = 0

    /// The snapshot; with `classes`, also each size class's objects in use
    /// and spans (ClassTable), taken under the same locks one at a time.
    static func take(classes: ClassTable? = nil) -> StatsSnapshot {
        let heap = Heap.ensureInitialized()
        var counters = swiftmalloc_stats()
        counters.version = UInt64(SWIFTMALLOC_STATS_VERSION)
        // First, before this snapshot takes locks of its own.
        heap.pointee.addLockCounts(to: &counters)
        classes?.clear()
        var totals = ThreadRegistry.totals(heap.pointee.threads, reader: Heap.reader(heap), classInUse: classes?.inUse)
        // The per-CPU front end counts its hits in the slabs.
        if heap.pointee.frontEnd == .percpu {
            var c = 1
            while c < heap.pointee.sizeClasses.count {
                totals.addAllocations(heap.pointee.percpu.pops(c), sizeClass: c, size: heap.pointee.sizeClasses.sizes[c])
                c += 1
            }
        }
        if let classes {
            var c = 1
            while c < heap.pointee.sizeClasses.count {
                classes.spans[c] = UInt64((heap.pointee.middle.central + c).spans())
                c += 1
            }
        }
        counters.rseq_aborts = totals.scalars.rseqAborts
        counters.allocations = totals.allocations
        counters.frees = totals.frees
        counters.fast_path_hits = totals.fastHits
        counters.fast_path_misses = totals.scalars.fastMisses
        counters.large_allocations = totals.scalars.largeAllocations
        counters.in_use_bytes = totals.inUseBytes
        counters.handed_out_bytes = totals.handedOutBytes
        counters.peak_resident_bytes = sm_peak_resident_bytes()
        let registry = heap.pointee.threads
        sm_lock(registry.lockAddress)
        counters.threads_seen = registry.state.pointee.threadsSeen
        counters.threads_live = registry.state.pointee.threadsLive
        sm_unlock(registry.lockAddress)
        if heap.pointee.frontEnd == .percpu {
            counters.percpu_cached_bytes = heap.pointee.percpu.cachedBytes(reader: Heap.reader(heap))
        }
        // Where small-object memory is: spans, free objects left in them,
        // batches parked between caches.
        (counters.small_span_bytes, counters.central_free_bytes, counters.transfer_cached_bytes) =
            heap.pointee.middle.footprint(sizes: heap.pointee.sizeClasses.sizes)
        let pageHeap = heap.pointee.pageHeap
        sm_lock(pageHeap.lockAddress)
        let metadata = UInt64(heap.pointee.metadata.state.pointee.mappedBytes) &+ UInt64(pageHeap.state.pointee.pageMap.mappedBytes)
        counters.metadata_bytes = metadata
        counters.class_map_pages = UInt64(pageHeap.state.pointee.pageMap.classMapCoverage)
        counters.scavenger_passes = sm_atomic_load_u64(&heap.pointee.scavengerPasses)
        counters.scavenged_bytes = heap.pointee.scavengedBytes
        counters.scavenger_thread_passes = heap.pointee.scavengerThreadPasses
        counters.percpu_idle_drains = heap.pointee.percpuIdleDrains
        counters.thread_idle_returns = totals.scalars.idleListReturns
        counters.idle_release_passes = heap.pointee.idle.passes
        counters.idle_released_bytes = heap.pointee.idle.releasedBytes
        counters.transfer_shards = UInt64(heap.pointee.middle.shardCount)
        counters.large_cache_bytes = UInt64(pageHeap.state.pointee.mappingCache.bytes)
        counters.large_cache_hits = pageHeap.state.pointee.mappingCache.hits
        counters.page_heap_dirty_limit = UInt64(pageHeap.state.pointee.dirtyLimit)
        counters.mapped_bytes = UInt64(pageHeap.state.pointee.regionBytes &+ pageHeap.state.pointee.directBytes)
            &+ counters.large_cache_bytes &+ metadata
        counters.released_bytes = UInt64(pageHeap.state.pointee.releasedBytes)
        counters.page_heap_free_bytes = UInt64(pageHeap.state.pointee.freeBytes)
        counters.percpu_rebalances = heap.pointee.percpu.rebalances
        counters.rcu_retired_spans = pageHeap.state.pointee.records.retiredCount
        counters.rcu_reclaimed_spans = pageHeap.state.pointee.records.reclaimedCount
        let regionBytes = UInt64(pageHeap.state.pointee.regionBytes)
        let directBytes = UInt64(pageHeap.state.pointee.directBytes)
        let directCount = UInt64(pageHeap.state.pointee.directCount)
        sm_unlock(pageHeap.lockAddress)
        var snapshot = StatsSnapshot(frontEnd: heap.pointee.frontEnd, rseqAvailable: heap.pointee.config.rseqAvailable,
                                     idMode: sm_rseq_uses_mm_cid() ? .mmcid : .cpu, counters: counters)
        snapshot.regionBytes = regionBytes
        snapshot.directBytes = directBytes
        snapshot.directCount = directCount
        snapshot.smallInUseBytes = totals.smallInUseBytes
        if heap.pointee.threads.state.pointee.recordsHistogram { snapshot.requestedBytes = totals.requestedBytes }
        snapshot.configFile = UnsafePointer(heap.pointee.config.filePath)
        snapshot.classSizes = UnsafePointer(heap.pointee.sizeClasses.sizes)
        snapshot.classCount = heap.pointee.sizeClasses.count
        return snapshot
    }

    /// The JSON object, written into `buffer`: the front end's description,
    /// every counter in list order, the bytes requested (null unless the
    /// histogram is on), the process id.
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
        buffer.append(",\"config\":")
        if let configFile {
            buffer.append(jsonString: configFile)
        } else {
            buffer.append("\"built-in\"")
        }
        buffer.append(",\"size_classes\":")
        buffer.append(UInt64(max(classCount - 1, 0)))
        buffer.append(",\"class_sizes\":[")
        var c = 1
        while c < classCount {
            if c > 1 { buffer.append(",") }
            buffer.append(UInt64(classSizes.unsafelyUnwrapped[c]))
            c += 1
        }
        buffer.append("]")
        var counters = self.counters
        var i = 0
        while i < Int(SM_STATS_COUNTERS) {
            buffer.append(",\"")
            buffer.append(cString: sm_stats_counter_name(i))
            buffer.append("\":")
            buffer.append(sm_stats_counter_value(&counters, i))
            i += 1
        }
        buffer.append(",\"requested_bytes\":")
        if let requestedBytes { buffer.append(requestedBytes) } else { buffer.append("null") }
        buffer.append(",\"pid\":")
        buffer.append(UInt64(sm_getpid()))
        buffer.append("}\n")
    }

    /// Writes the JSON object to `path`, where "%p" stands for the process
    /// id. False, with errno set, when it cannot.
    static func writeFile(_ path: UnsafePointer<CChar>) -> Bool {
        let heap = Heap.ensureInitialized()
        let snapshot = take()
        let scratch = heap.pointee.statsScratch
        scratch.lock.pointee.lock()
        defer { scratch.lock.pointee.unlock() }
        var text = TextBuffer(base: scratch.text, capacity: StatsScratch.textBytes)
        snapshot.json(into: &text)
        var name = TextBuffer(base: scratch.path, capacity: StatsScratch.pathBytes)
        name.appendPath(path)
        if name.overflowed { sm_set_errno(ENAMETOOLONG); return false }
        if text.overflowed { sm_set_errno(EFBIG); return false }
        return sm_write_file(UnsafeRawPointer(scratch.path).assumingMemoryBound(to: CChar.self),
                             UnsafeRawPointer(scratch.text).assumingMemoryBound(to: CChar.self), text.count) == 0
    }
}

extension Heap {
    /// Each lock's acquisitions and contended acquisitions, summed per tier
    /// (the lock_* counters). The locks are the ones `forEachLock` takes at
    /// a fork, less the scavenger's (taken by trylock only) and the
    /// per-CPU drain lock.
    mutating func addLockCounts(to counters: inout swiftmalloc_stats) {
        var transfer = LockCounts(), central = LockCounts(), arenas = LockCounts(), global = LockCounts()
        var c = 0
        while c < middle.transferCacheCount { transfer.add((middle.transfer + c).lockAddress); c += 1 }
        c = 0
        while c < sizeClasses.count { central.add((middle.central + c).lockAddress); c += 1 }
        var shared = LockCounts()
        var i = 0
        while i < self.shared.count { shared.add((self.shared.caches.unsafelyUnwrapped + i).lockAddress); i += 1 }
        // The shared caches are the arenas under arenas and the one global
        // cache under global.
        if frontEnd == .global { global = shared } else { arenas = shared }
        var pageHeapLock = LockCounts(), registry = LockCounts(), meta = LockCounts()
        pageHeapLock.add(pageHeap.lockAddress)
        registry.add(threads.lockAddress)
        meta.add(metadata.lockAddress)
        (counters.lock_acquisitions_transfer, counters.lock_contended_transfer) = (transfer.acquisitions, transfer.contended)
        (counters.lock_acquisitions_central, counters.lock_contended_central) = (central.acquisitions, central.contended)
        (counters.lock_acquisitions_page_heap, counters.lock_contended_page_heap) =
            (pageHeapLock.acquisitions, pageHeapLock.contended)
        (counters.lock_acquisitions_registry, counters.lock_contended_registry) = (registry.acquisitions, registry.contended)
        (counters.lock_acquisitions_arenas, counters.lock_contended_arenas) = (arenas.acquisitions, arenas.contended)
        (counters.lock_acquisitions_global, counters.lock_contended_global) = (global.acquisitions, global.contended)
        (counters.lock_acquisitions_metadata, counters.lock_contended_metadata) = (meta.acquisitions, meta.contended)
    }
}

/// Preallocated memory for writing stats without allocating.
struct StatsScratch {
    static let textBytes = 16384
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

    mutating func append(cString text: UnsafePointer<CChar>) {
        var i = 0
        while text[i] != 0 { appendByte(UInt8(bitPattern: text[i])); i += 1 }
    }

    /// A file name and its terminating NUL, with "%p" replaced by the
    /// process id.
    mutating func appendPath(_ path: UnsafePointer<CChar>) {
        var i = 0
        while path[i] != 0 {
            if path[i] == 37 /* % */ && path[i + 1] == 112 /* p */ {
                append(UInt64(sm_getpid()))
                i += 2
            } else {
                appendByte(UInt8(bitPattern: path[i]))
                i += 1
            }
        }
        appendByte(0)
    }

    /// `text` as a JSON string, quoted and escaped.
    mutating func append(jsonString text: UnsafePointer<CChar>) {
        appendByte(34)
        var i = 0
        while text[i] != 0 {
            let byte = UInt8(bitPattern: text[i])
            if byte == 34 || byte == 92 {
                appendByte(92)
                appendByte(byte)
            } else if byte < 32 {
                append("\\u00")
                appendByte(byte >> 4 == 0 ? 48 : 49)
                let low = byte & 15
                appendByte(low < 10 ? 48 + low : 87 + low)
            } else {
                appendByte(byte)
            }
            i += 1
        }
        appendByte(34)
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
}
