// The per-CPU front end: a slab of cached objects per CPU (or per mm_cid),
// used through restartable sequences (CShims/Shims/include/swiftmalloc_rseq.h).
//
// A thread allocates from the slab of the CPU it runs on, with no lock and
// no atomic instruction: the kernel restarts the operation if the thread is
// moved. So caches follow CPUs, not threads: 64 threads on 2 CPUs share 2
// caches, which is the point (footprint, warm caches, no per-thread memory).
//
// Capacity: each class starts with a number of slots in every slab derived
// from the per-CPU byte budget (SWIFTMALLOC_PERCPU_CACHE_BYTES): about
// 2 x budget / classes bytes per class, at least 2 slots, at most 2048.
// A list that runs dry is refilled with a batch from the middle; a full one
// hands a batch back. Both are misses, counted per class; every
// `rebalanceInterval` misses the capacity moves (`rebalance`): classes that
// keep missing grow, idle ones shrink, within the budget.
//
// Where each class's slots are (the layout: first slot and count per class,
// the same in every slab) is a record published through one pointer. Moving
// capacity writes a new layout into the spare record, then changes the
// slabs under the restartable sequences' feet in fenced steps
// (`drainAndRelayout`), publishes the new record, and keeps the old one as
// the next spare: it is written again only after an RCU grace period, since
// lock-free readers outside the critical sections (refills reading a
// capacity, statistics walking the slabs) may still hold it.
import SwiftMallocShims

/// The slabs' description does not change once built: what drains and
/// rebalances change lies behind pointers (`drain`, the layout records, the
/// miss counters), so every method is nonmutating and threads that trim or
/// rebalance at once never overlap in an access to the description.
struct PerCPUSlabs {
    let base: UnsafeMutablePointer<CChar>?
    let slabCount: UInt32
    let classCount: Int
    /// The published layout (see `SlabLayout`), read with an acquire load.
    let layoutCell: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    let budgetBytes: Int
    /// The drain lock, which serialises drains (trim) and rebalances (the
    /// fast paths never take it), and what it guards: a `Guarded` in
    /// metadata, taken through its address. Nil when there are no slabs.
    let drain: UnsafeMutablePointer<Guarded<SlabDrain>>?
    /// Class sizes (the size-class table's).
    let sizes: UnsafeMutablePointer<UInt32>?
    /// Per class: misses (refills and overflows) since the last rebalance;
    /// misses[0] (class 0 does not exist) counts them all.
    let misses: UnsafeMutablePointer<UInt64>?
    /// Misses between rebalances (SWIFTMALLOC_PERCPU_REBALANCE; 0: never).
    let rebalanceInterval: UInt64

    static let slabBytes = 1 << Int(SM_SLAB_SHIFT)
    static let maxSlotsPerClass = 2048
    /// Objects moved through a thread's scratch buffer at once.
    static let scratchSlots = 64

    /// No slabs (the other front ends).
    init() {
        base = nil
        slabCount = 0
        classCount = 0
        layoutCell = nil
        budgetBytes = 0
        drain = nil
        sizes = nil
        misses = nil
        rebalanceInterval = 0
    }

    /// Sets up `slabCount` slabs; nil if the memory cannot be mapped.
    init?(slabCount: Int, table: SizeClassTable, budgetBytes: Int, rebalanceInterval: UInt64,
          metadata: inout MetadataArena) {
        self.slabCount = UInt32(slabCount)
        self.classCount = table.count
        self.budgetBytes = budgetBytes
        self.rebalanceInterval = rebalanceInterval
        self.sizes = table.sizes
        self.misses = metadata.allocateArray(of: UInt64.self, count: table.count)
        let layout = SlabLayout(metadata.allocateArray(of: UInt16.self, count: 2 * table.count), classCount: table.count)
        let spare = SlabLayout(metadata.allocateArray(of: UInt16.self, count: 2 * table.count), classCount: table.count)
        let drain = metadata.allocateArray(of: Guarded<SlabDrain>.self, count: 1)
        drain.initialize(to: Guarded(SlabDrain(spare: spare,
                                               popsAtPass: metadata.allocateArray(of: UInt64.self, count: table.count),
                                               idle: metadata.allocateArray(of: Bool.self, count: table.count))))
        self.drain = drain
        // Slots start after the list words and limits (swiftmalloc_rseq.h).
        precondition(table.count <= Int(SM_SLAB_MAX_CLASSES), "more size classes than a slab has lists")
        var next = Int(SM_SLAB_FIRST_SLOT)
        let perClass = 2 * budgetBytes / max(1, table.count - 1)
        let slotLimit = PerCPUSlabs.slabBytes / 8
        var c = 1
        while c < table.count {
            var slots = perClass / table.size(of: c)
            slots = max(2, min(slots, PerCPUSlabs.maxSlotsPerClass))
            if next + slots > slotLimit { slots = max(0, slotLimit - next) }
            layout.begin[c] = UInt16(next)
            layout.capacity[c] = UInt16(slots)
            next += slots
            c += 1
        }
        let cell = metadata.allocateArray(of: UnsafeMutableRawPointer?.self, count: 1)
        cell.pointee = UnsafeMutableRawPointer(layout.begin)
        layoutCell = cell
        guard let memory = OSMemory.map(slabCount << Int(SM_SLAB_SHIFT)) else { return nil }
        base = memory.assumingMemoryBound(to: CChar.self)
        var s = 0
        while s < slabCount {
            let slab = self.slab(s)
            var c = 1
            while c < table.count {
                sm_slab_init_list(slab, c, layout.begin[c], layout.capacity[c])
                c += 1
            }
            s += 1
        }
    }

    /// The published layout. Outside the drain lock, read it inside an RCU
    /// read-side section (or treat what it says as a hint).
    @inline(__always)
    func layout() -> SlabLayout {
        SlabLayout(sm_atomic_load_ptr(layoutCell.unsafelyUnwrapped).unsafelyUnwrapped.assumingMemoryBound(to: UInt16.self),
                   classCount: classCount)
    }

    /// The slab of CPU (or mm_cid) `index`.
    @inline(__always)
    func slab(_ index: Int) -> UnsafeMutablePointer<CChar> {
        base.unsafelyUnwrapped + (index << Int(SM_SLAB_SHIFT))
    }

    /// malloc calls served by single pops from the slabs, for one class,
    /// summed over CPUs: the pop counts in the list words (the per-CPU
    /// front end's fast path counts nothing else; statistics add these).
    func pops(_ sizeClass: Int) -> UInt64 {
        var total: UInt64 = 0
        var s = 0
        while s < Int(slabCount) { total &+= sm_slab_pops(slab(s), sizeClass); s += 1 }
        return total
    }

    // MARK: fast paths

    @inline(__always)
    func pop(_ sizeClass: Int, aborts: UnsafeMutablePointer<UInt64>) -> ObjectPointer? {
        sm_percpu_pop(base, slabCount, sizeClass, aborts)
    }

    /// Pushes one object, retrying after an abort: SM_PUSH_DONE, or
    /// SM_PUSH_FULL (full, stopped, no slab), or SM_PUSH_TWICE (the object is
    /// already on top: freed twice; not pushed).
    @inline(__always)
    func push(_ object: ObjectPointer, _ sizeClass: Int, aborts: UnsafeMutablePointer<UInt64>) -> Int32 {
        sm_percpu_push_checked(base, slabCount, sizeClass, object, aborts)
    }

    // The fast paths' pop and push are the shim's sm_fast_percpu_pop/push,
    // on the process's slabs as published in `sm_fast` (Heap).

    // MARK: slow paths

    /// The current CPU's list is empty: fetch a batch from the middle, keep
    /// one for the caller and push the rest into the slab in one critical
    /// section; what does not fit (the thread moved, the slab is stopped)
    /// goes back.
    /// Returns the object and how many objects came from the middle.
    func refill(_ sizeClass: Int, from middle: Middle, reader: RCUReader,
                scratch: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                aborts: UnsafeMutablePointer<UInt64>) -> (object: ObjectPointer?, moved: UInt32) {
        // The class's capacity bounds the batch. Without a read-side section
        // (an exiting thread) the value may come from a layout being
        // rewritten: any value is safe here, the push below checks the slab.
        let underRCU = reader.enter()
        let capacity = UInt32(layout().capacity[sizeClass])
        if underRCU { reader.exit() }
        let want = max(1, min(middle.batchSize(sizeClass), capacity, UInt32(PerCPUSlabs.scratchSlots)))
        // The objects come as pointers, not walked: they may have been
        // freed on another CPU (see TransferCache).
        let count = middle.fetch(sizeClass, count: want, into: scratch)
        guard count > 0 else { return (nil, 0) }
        let first = scratch[0].unsafelyUnwrapped
        let n = count &- 1
        var moved = count
        if n > 0 {
            let pushed = sm_percpu_push_batch(base, slabCount, sizeClass, scratch + 1, n, aborts)
            if pushed < n {
                giveBack(sizeClass, scratch + 1 + Int(pushed), count: n &- pushed, to: middle)
                moved &+= n &- pushed
            }
        }
        return (first, moved)
    }

    /// The current CPU's list is full: hand `object` and up to a batch
    /// minus one from the slab back to the middle, as one chain.
    /// Returns how many objects went to the middle.
    func overflow(_ object: ObjectPointer, _ sizeClass: Int, to middle: Middle,
                  scratch: UnsafeMutablePointer<UnsafeMutableRawPointer?>, aborts: UnsafeMutablePointer<UInt64>) -> UInt32 {
        let want = min(middle.batchSize(sizeClass), UInt32(PerCPUSlabs.scratchSlots)) &- 1
        var n: UInt32 = 0
        if want > 0 { n = sm_percpu_pop_batch(base, slabCount, sizeClass, scratch, want, aborts) }
        scratch[Int(n)] = object
        giveBack(sizeClass, scratch, count: n &+ 1, to: middle)
        // Room was made: if the thread is still on that CPU, the next free
        // goes to the slab again.
        return n &+ 1
    }

    /// Hands `count` objects stored in an array back to the middle.
    func giveBack(_ sizeClass: Int, _ objects: UnsafeMutablePointer<UnsafeMutableRawPointer?>, count: UInt32,
                  to middle: Middle) {
        guard count > 0 else { return }
        middle.release(sizeClass, objects: objects, count: count)
    }

    /// Empties every slab into the middle (malloc_trim). Stops each list,
    /// fences every CPU so no critical section still runs against the old
    /// header, moves the objects out, then restarts the lists. Without
    /// membarrier other CPUs cannot be fenced, and nothing is drained.
    func drainAll(to middle: Middle) {
        guard slabCount > 0, sm_rseq_can_fence() else { return }
        let drain = self.drain.unsafelyUnwrapped
        drain.lock()
        defer { drain.unlock() }
        drainAndRelayout(nil, to: middle)
    }

    /// Hands back to the middle what every slab caches of the classes that
    /// served no malloc since the previous call (the scavenger's pass), so
    /// that objects of a size the program stopped asking for go home to
    /// their spans, which can then empty and go back to the page heap: the
    /// program's next phase reuses those pages instead of new ones. A class
    /// the program only frees overflows into the middle batch by batch and
    /// keeps a full list; without this, that list stays until malloc_trim. Idle is read from the pop counts in the list
    /// words, which the fast path keeps anyway. Returns how many classes
    /// were drained; none when a drain or rebalance is running, or other
    /// CPUs cannot be fenced.
    @discardableResult
    func returnIdleClasses(to middle: Middle) -> Int {
        guard slabCount > 0, sm_rseq_can_fence() else { return 0 }
        let drain = self.drain.unsafelyUnwrapped
        guard drain.tryLock() else { return 0 }
        defer { drain.unlock() }
        let state = drain.state
        let layout = self.layout()
        var drained = 0
        var c = 1
        while c < classCount {
            let served = pops(c)
            var cached = false
            var s = 0
            while s < Int(slabCount) && !cached {
                cached = sm_slab_current(slab(s), c) > layout.begin[c]
                s += 1
            }
            let idle = cached && served == state.pointee.popsAtPass[c]
            state.pointee.popsAtPass[c] = served
            state.pointee.idle[c] = idle
            if idle { drained += 1 }
            c += 1
        }
        if drained > 0 { drainAndRelayout(nil, only: state.pointee.idle, to: middle) }
        return drained
    }

    /// The one way to touch other CPUs' lists (drain lock held, fences
    /// available). Critical sections read `current` and then `begin` or
    /// `end` in separate loads, so a list can only be changed under their
    /// feet in steps that each one fence makes safe:
    ///   1. stop every list (end 0, begin 0xffff: pops and pushes fail);
    ///   2. fence: no section that saw a working list is still running;
    ///   3. move the cached objects to the middle, apply `capacities`;
    ///   4. reset `current` to the (new) first slot, lists still stopped;
    ///   5. fence: no section still holds the old `current` — without it,
    ///      one that loaded the stale `current` before step 4 and `begin`
    ///      after step 6 would pop an object already given back;
    ///   6. re-open: `end`, then `begin`.
    /// `only`: the classes to drain (true at their index), the others left
    /// running; nil: every class. A new layout moves every class, so it
    /// comes with `only` nil.
    private func drainAndRelayout(_ next: SlabLayout?, only: UnsafeMutablePointer<Bool>? = nil, to middle: Middle) {
        let old = layout()
        var s = 0
        while s < Int(slabCount) {
            let slab = self.slab(s)
            var c = 1
            while c < classCount { if PerCPUSlabs.chosen(c, only) { stopList(slab, c) }; c += 1 }
            s += 1
        }
        _ = sm_rseq_fence(-1)
        drainStopped(old, only: only, to: middle)
        var now = old
        if let next {
            // Publish: from here readers may pick up the new record.
            sm_atomic_store_ptr(layoutCell.unsafelyUnwrapped, UnsafeMutableRawPointer(next.begin))
            let state = drain.unsafelyUnwrapped.state
            sm_atomic_store_u64(&state.pointee.generation, state.pointee.generation &+ 1)
            state.pointee.spare = old
            now = next
        }
        s = 0
        while s < Int(slabCount) {
            let slab = self.slab(s)
            var c = 1
            while c < classCount { if PerCPUSlabs.chosen(c, only) { sm_slab_set_current(slab, c, now.begin[c]) }; c += 1 }
            s += 1
        }
        _ = sm_rseq_fence(-1)
        s = 0
        while s < Int(slabCount) {
            let slab = self.slab(s)
            var c = 1
            while c < classCount { if PerCPUSlabs.chosen(c, only) { reopenList(slab, c, now) }; c += 1 }
            s += 1
        }
    }

    // MARK: moving capacity

    /// Counts a miss of `sizeClass`; true when it is time to rebalance.
    @inline(__always)
    func noteMiss(_ sizeClass: Int) -> Bool {
        guard rebalanceInterval > 0 else { return false }
        _ = sm_atomic_add_u64(misses.unsafelyUnwrapped + sizeClass, 1)
        let total = sm_atomic_add_u64(misses.unsafelyUnwrapped, 1) &+ 1
        return total % rebalanceInterval == 0
    }

    /// Moves capacity between classes (see the top of this file). Called
    /// with no allocator lock held; a rebalance already running, or no way
    /// to fence other CPUs, makes it a no-op.
    func rebalance(rcuReady: Bool, middle: Middle) {
        guard slabCount > 0, sm_rseq_can_fence(), rcuReady else { return }
        let drain = self.drain.unsafelyUnwrapped
        let state = drain.state
        // The spare layout may be rewritten once a grace period has passed
        // since it was unpublished; wait for one first if needed (no lock
        // held: liburcu is never called under the allocator's locks).
        let seen = sm_atomic_load_u64(&state.pointee.generation)
        if sm_atomic_load_u64(&state.pointee.spareGeneration) != seen {
            guard sm_rcu_try_synchronize() else { return }
        }
        guard drain.tryLock() else { return }
        defer { drain.unlock() }
        if state.pointee.generation == seen { sm_atomic_store_u64(&state.pointee.spareGeneration, seen) }
        guard state.pointee.spareGeneration == state.pointee.generation, let fresh = state.pointee.spare else { return }
        let misses = self.misses.unsafelyUnwrapped
        let capacity = layout().capacity
        let sizes = self.sizes.unsafelyUnwrapped
        // The new capacities: a class missing more than twice as often as
        // the other missing classes on average doubles (alone, it doubles:
        // measured against an average that includes itself, a class that
        // misses alone or much more than the rest never could), a class
        // that did not miss halves, within the budget and the slab's slots.
        var total: UInt64 = 0
        var active: UInt64 = 0
        var c = 1
        while c < classCount {
            let m = sm_atomic_load_u64(misses + c)
            total &+= m
            if m > 0 { active &+= 1 }
            c += 1
        }
        guard active > 0 else { return }
        var changed = false
        var bytes = 0
        var slots = 0
        let budget = 2 * budgetBytes
        // First pass: shrink idle classes (frees room), keep the rest.
        c = 1
        while c < classCount {
            let m = sm_atomic_load_u64(misses + c)
            var cap = Int(capacity[c])
            if m == 0 && cap > 2 { cap = max(2, cap / 2) }
            fresh.capacity[c] = UInt16(cap)
            bytes += cap * Int(sizes[c])
            slots += cap
            c += 1
        }
        // Second pass: grow the classes that keep missing, while room lasts.
        let slotLimit = PerCPUSlabs.slabBytes / 8 - Int(SM_SLAB_FIRST_SLOT)
        c = 1
        while c < classCount {
            let m = sm_atomic_load_u64(misses + c)
            let cap = Int(fresh.capacity[c])
            let othersAverage = active > 1 ? (total &- m) / (active &- 1) : 0
            if m > 2 * othersAverage && m >= 8 {
                let grown = min(2 * cap, PerCPUSlabs.maxSlotsPerClass)
                let extra = grown - cap
                if extra > 0 && bytes + extra * Int(sizes[c]) <= budget && slots + extra <= slotLimit {
                    fresh.capacity[c] = UInt16(grown)
                    bytes += extra * Int(sizes[c])
                    slots += extra
                }
            }
            c += 1
        }
        var next = Int(SM_SLAB_FIRST_SLOT)
        c = 1
        while c < classCount {
            if fresh.capacity[c] != capacity[c] { changed = true }
            fresh.begin[c] = UInt16(next)
            next += Int(fresh.capacity[c])
            sm_atomic_store_u64(misses + c, 0)
            c += 1
        }
        guard changed else { return }
        drainAndRelayout(fresh, to: middle)
        state.pointee.rebalances &+= 1
    }

    /// Rebalances so far (statistics: read without the drain lock).
    var rebalances: UInt64 { drain?.state.pointee.rebalances ?? 0 }

    /// Whether class `c` is among those `only` selects (nil: all of them).
    @inline(__always)
    private static func chosen(_ c: Int, _ only: UnsafeMutablePointer<Bool>?) -> Bool { only.map { $0[c] } ?? true }

    /// Moves every object of the stopped lists (those of the classes `only`
    /// selects; nil: all) to the central lists (drain lock held): a drained
    /// list's objects are not expected back soon.
    private func drainStopped(_ layout: SlabLayout, only: UnsafeMutablePointer<Bool>?, to middle: Middle) {
        let slots = UnsafeMutableRawPointer(base.unsafelyUnwrapped).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        var s = 0
        while s < Int(slabCount) {
            let slab = self.slab(s)
            let slabSlots = slots + (s << (Int(SM_SLAB_SHIFT) - 3))
            var c = 1
            while c < classCount {
                let first = Int(layout.begin[c])
                let current = Int(sm_slab_current(slab, c))
                if current > first && PerCPUSlabs.chosen(c, only) {
                    middle.returnHome(c, objects: slabSlots + first, count: UInt32(current - first))
                }
                c += 1
            }
            s += 1
        }
    }

    /// Makes pops and pushes on one list fail (see swiftmalloc_rseq.h).
    func stopList(_ slab: UnsafeMutablePointer<CChar>, _ sizeClass: Int) {
        sm_slab_set_limits(slab, sizeClass, UInt16(SM_SLAB_STOPPED_BEGIN), 0)
    }

    /// Re-opens a stopped list whose `current` is already its first slot
    /// (and fenced: see `drainAndRelayout`).
    func reopenList(_ slab: UnsafeMutablePointer<CChar>, _ sizeClass: Int, _ layout: SlabLayout) {
        let first = layout.begin[sizeClass]
        sm_slab_set_limits(slab, sizeClass, first, first &+ layout.capacity[sizeClass])
    }

    /// Bytes cached in all slabs (statistics): a lock-free walk, with the
    /// layout held in a read-side section; lists being drained count as
    /// empty, and a list changing under the walk may be off by a batch.
    func cachedBytes(reader: RCUReader) -> UInt64 {
        guard slabCount > 0 else { return 0 }
        let drain = self.drain.unsafelyUnwrapped
        let underRCU = reader.enter()
        if !underRCU { drain.lock() }
        let layout = self.layout()
        var total: UInt64 = 0
        var s = 0
        while s < Int(slabCount) {
            let slab = self.slab(s)
            var c = 1
            while c < classCount {
                let current = UInt64(sm_slab_current(slab, c))
                let first = UInt64(layout.begin[c])
                if current > first && sm_slab_begin(slab, c) != UInt16(SM_SLAB_STOPPED_BEGIN) {
                    total &+= (current - first) &* UInt64(sizes.unsafelyUnwrapped[c])
                }
                c += 1
            }
            s += 1
        }
        if underRCU { reader.exit() } else { drain.unlock() }
        return total
    }
}

/// What the drain lock guards (PerCPUSlabs.drain).
struct SlabDrain {
    /// The other layout record; rewritten only once a grace period has
    /// passed since it was unpublished (`spareGeneration == generation`).
    var spare: SlabLayout?
    /// Layouts published so far, and the value it had when the latest grace
    /// period that followed the spare's unpublishing began. `rebalance`
    /// reads both without the lock first (relaxed atomics).
    var generation: UInt64 = 0
    var spareGeneration: UInt64 = 0
    var rebalances: UInt64 = 0
    /// Per class: its pops summed over the slabs at the previous
    /// `returnIdleClasses`, and whether that call found it idle.
    let popsAtPass: UnsafeMutablePointer<UInt64>
    let idle: UnsafeMutablePointer<Bool>
}

/// Where each class's slots are in every slab: one record of 2 x classes
/// 16-bit entries, first slots then counts.
struct SlabLayout {
    let begin: UnsafeMutablePointer<UInt16>
    let capacity: UnsafeMutablePointer<UInt16>

    init(_ block: UnsafeMutablePointer<UInt16>, classCount: Int) {
        begin = block
        capacity = block + classCount
    }
}
