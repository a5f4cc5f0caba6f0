// The per-CPU front end: a slab of cached objects per CPU (or per mm_cid),
// used through restartable sequences (CShims/Shims/include/swiftmalloc_rseq.h).
//
// A thread allocates from the slab of the CPU it runs on, with no lock and
// no atomic instruction: the kernel restarts the operation if the thread is
// moved. So caches follow CPUs, not threads: 64 threads on 2 CPUs share 2
// caches, which is the point (footprint, warm caches, no per-thread memory).
//
// Capacity: each class gets a fixed number of slots in every slab, derived
// from the per-CPU byte budget (SWIFTMALLOC_PERCPU_CACHE_BYTES): about
// 2 x budget / classes bytes per class, at least 2 slots, at most 2048.
// A list that runs dry is refilled with a batch from the middle; a full one
// hands a batch back.
import SwiftMallocShims

struct PerCPUSlabs {
    var base: UnsafeMutablePointer<CChar>? = nil
    var slabCount: UInt32 = 0
    var classCount: Int = 0
    /// Per class: first slot and number of slots (the same in every slab).
    var begin: UnsafeMutablePointer<UInt16>? = nil
    var capacity: UnsafeMutablePointer<UInt16>? = nil
    var budgetBytes: Int = 0
    /// Serialises drains (trim); the fast paths never take it.
    var drainLock = Lock()

    static let slabBytes = 1 << Int(SM_SLAB_SHIFT)
    static let maxSlotsPerClass = 2048
    /// Objects moved through a thread's scratch buffer at once.
    static let scratchSlots = 64

    init() {}

    /// Sets up `slabCount` slabs; nil if the memory cannot be mapped.
    init?(slabCount: Int, table: SizeClassTable, budgetBytes: Int, metadata: inout MetadataArena) {
        self.slabCount = UInt32(slabCount)
        self.classCount = table.count
        self.budgetBytes = budgetBytes
        let begin = metadata.allocateArray(of: UInt16.self, count: table.count)
        let capacity = metadata.allocateArray(of: UInt16.self, count: table.count)
        // Slots start after the headers (8 bytes each, like a slot).
        var next = table.count
        let perClass = 2 * budgetBytes / max(1, table.count - 1)
        let slotLimit = PerCPUSlabs.slabBytes / 8
        var c = 1
        while c < table.count {
            var slots = perClass / table.size(of: c)
            slots = max(2, min(slots, PerCPUSlabs.maxSlotsPerClass))
            if next + slots > slotLimit { slots = max(0, slotLimit - next) }
            begin[c] = UInt16(next)
            capacity[c] = UInt16(slots)
            next += slots
            c += 1
        }
        self.begin = begin
        self.capacity = capacity
        guard let memory = OSMemory.map(slabCount << Int(SM_SLAB_SHIFT)) else { return nil }
        base = memory.assumingMemoryBound(to: CChar.self)
        var s = 0
        while s < slabCount {
            let headers = header(slab: s)
            var c = 1
            while c < table.count {
                headers[c] = sm_slab_header_t(current: begin[c], end: begin[c] &+ capacity[c], begin: begin[c], unused: 0)
                c += 1
            }
            s += 1
        }
    }

    @inline(__always)
    func header(slab: Int) -> UnsafeMutablePointer<sm_slab_header_t> {
        UnsafeMutableRawPointer(base.unsafelyUnwrapped + (slab << Int(SM_SLAB_SHIFT)))
            .assumingMemoryBound(to: sm_slab_header_t.self)
    }

    // MARK: fast paths

    @inline(__always)
    func pop(_ sizeClass: Int, aborts: UnsafeMutablePointer<UInt64>) -> ObjectPointer? {
        sm_percpu_pop(base, slabCount, sizeClass, aborts)
    }

    @inline(__always)
    func push(_ object: ObjectPointer, _ sizeClass: Int, aborts: UnsafeMutablePointer<UInt64>) -> Bool {
        sm_percpu_push(base, slabCount, sizeClass, object, aborts)
    }

    // MARK: slow paths

    /// The current CPU's list is empty: fetch a batch from the middle, keep
    /// one for the caller and push the rest into the slab in one critical
    /// section; what does not fit (the thread moved, the slab is stopped)
    /// goes back.
    func refill(_ sizeClass: Int, batchSize: UInt32, scratch: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                aborts: UnsafeMutablePointer<UInt64>) -> ObjectPointer? {
        let want = max(1, min(batchSize, UInt32(capacity.unsafelyUnwrapped[sizeClass]), UInt32(PerCPUSlabs.scratchSlots)))
        let (chain, count) = Middle.fetch(sizeClass, count: want)
        guard let first = chain else { return nil }
        var n: UInt32 = 0
        var cursor = first.nextFree
        while let object = cursor {
            cursor = object.nextFree
            scratch[Int(n)] = object
            n &+= 1
        }
        _ = count
        if n > 0 {
            let pushed = sm_percpu_push_batch(base, slabCount, sizeClass, scratch, n, aborts)
            if pushed < n { giveBack(sizeClass, scratch + Int(pushed), count: n &- pushed) }
        }
        return first
    }

    /// The current CPU's list is full: hand `object` and up to a batch
    /// minus one from the slab back to the middle, as one chain.
    func overflow(_ object: ObjectPointer, _ sizeClass: Int, batchSize: UInt32,
                  scratch: UnsafeMutablePointer<UnsafeMutableRawPointer?>, aborts: UnsafeMutablePointer<UInt64>) {
        let want = min(batchSize, UInt32(PerCPUSlabs.scratchSlots)) &- 1
        var n: UInt32 = 0
        if want > 0 { n = sm_percpu_pop_batch(base, slabCount, sizeClass, scratch, want, aborts) }
        scratch[Int(n)] = object
        giveBack(sizeClass, scratch, count: n &+ 1)
        // Room was made: if the thread is still on that CPU, the next free
        // goes to the slab again.
    }

    /// Links `count` objects from an array into a chain for the middle.
    func giveBack(_ sizeClass: Int, _ objects: UnsafeMutablePointer<UnsafeMutableRawPointer?>, count: UInt32) {
        guard count > 0 else { return }
        var i = Int(count) - 1
        var chain: ObjectPointer? = nil
        while i >= 0 {
            let object = objects[i].unsafelyUnwrapped
            object.nextFree = chain
            chain = object
            i -= 1
        }
        Middle.release(sizeClass, chain: chain.unsafelyUnwrapped, count: count)
    }

    /// Empties every slab into the middle (malloc_trim). Stops each list,
    /// fences every CPU so no critical section still runs against the old
    /// header, moves the objects out, then restarts the lists. Without
    /// membarrier other CPUs cannot be fenced, and nothing is drained.
    mutating func drainAll() {
        guard slabCount > 0, sm_rseq_can_fence() else { return }
        drainLock.lock()
        defer { drainLock.unlock() }
        var s = 0
        while s < Int(slabCount) {
            let headers = header(slab: s)
            var c = 1
            while c < classCount {
                stopHeader(headers + c)
                c += 1
            }
            s += 1
        }
        _ = sm_rseq_fence(-1)
        s = 0
        let slots = UnsafeMutableRawPointer(base.unsafelyUnwrapped).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        while s < Int(slabCount) {
            let headers = header(slab: s)
            let slabSlots = slots + (s << (Int(SM_SLAB_SHIFT) - 3))
            var c = 1
            while c < classCount {
                let first = Int(begin.unsafelyUnwrapped[c])
                let current = Int(sm_atomic_load_u16(&headers[c].current))
                if current > first {
                    giveBack(c, slabSlots + first, count: UInt32(current - first))
                }
                restartHeader(headers + c, c)
                c += 1
            }
            s += 1
        }
    }

    /// Makes pops and pushes on one list fail (see swiftmalloc_rseq.h).
    func stopHeader(_ header: UnsafeMutablePointer<sm_slab_header_t>) {
        sm_atomic_store_u16(&header.pointee.end, 0)
        sm_atomic_store_u16(&header.pointee.begin, UInt16(SM_SLAB_STOPPED_BEGIN))
    }

    /// An empty, working list again.
    func restartHeader(_ header: UnsafeMutablePointer<sm_slab_header_t>, _ sizeClass: Int) {
        let first = begin.unsafelyUnwrapped[sizeClass]
        sm_atomic_store_u16(&header.pointee.current, first)
        sm_atomic_store_u16(&header.pointee.end, first &+ capacity.unsafelyUnwrapped[sizeClass])
        sm_atomic_store_u16(&header.pointee.begin, first)
    }

    /// Objects cached in all slabs (for stats); racy but consistent enough.
    func cachedObjects() -> Int {
        var total = 0
        var s = 0
        while s < Int(slabCount) {
            let headers = header(slab: s)
            var c = 1
            while c < classCount {
                let current = Int(headers[c].current)
                let first = Int(begin.unsafelyUnwrapped[c])
                if current > first && headers[c].begin != UInt16(SM_SLAB_STOPPED_BEGIN) { total += current - first }
                c += 1
            }
            s += 1
        }
        return total
    }
}
