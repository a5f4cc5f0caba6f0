// The C-level workloads. Each has a body (a @convention(c) function run by
// every worker thread: the timed part) and a driver (prepares memory before
// timing, runs the threads, checks and cleans up after).
//
// Every workload checks what it gets back from the allocator: objects carry
// tags that are verified before they are freed, so an allocator that hands
// out overlapping or corrupted blocks fails loudly (exit 3) instead of
// looking fast.
import Glibc
import MallocLabCSupport

/// name → driver. Drivers get a configured Harness and fill it.
func workloadRunner(_ name: String) -> ((Harness) -> Void)? {
    switch name {
    case "churn": return runChurn
    case "larson": return runLarson
    case "prodcons": return runProdCons
    case "threadchurn": return runThreadChurn
    case "oversub": return runOversub
    case "falseshare": return runFalseShare
    case "fragmentation": return runFragmentation
    case "largerealloc": return runLargeRealloc
    case "cycle": return runCycle
    case "swiftprog": return runSwiftProgram
    default: return nil
    }
}

@inline(__always) func scaled(_ base: Double, _ scale: Double, min lower: Int = 1) -> Int {
    max(lower, Int((base * scale).rounded()))
}

@inline(__always) func pointer(_ bits: UInt64) -> UnsafeMutableRawPointer {
    UnsafeMutableRawPointer(bitPattern: UInt(bits)).unsafelyUnwrapped
}

@inline(__always) func bits(_ p: UnsafeMutableRawPointer) -> UInt64 {
    UInt64(UInt(bitPattern: p))
}

// MARK: - churn: single-thread small-object churn

/// A table of slots: pointer, size and tag arrays.
struct SlotTable {
    var ptrs: UnsafeMutablePointer<UInt64>
    var sizes: UnsafeMutablePointer<Int>
    var tags: UnsafeMutablePointer<UInt64>
    var count: Int

    static func make(_ n: Int) -> UnsafeMutableRawPointer {
        let t = prealloc(1, of: SlotTable.self)
        t.initialize(to: SlotTable(ptrs: prealloc(n, of: UInt64.self), sizes: prealloc(n, of: Int.self),
                                   tags: prealloc(n, of: UInt64.self), count: n))
        return UnsafeMutableRawPointer(t)
    }

    /// Allocates `size` bytes for worker `w`, stamps them with `tag` and
    /// records the object in `slot`.
    @inline(__always)
    func fill(_ slot: Int, _ w: UnsafeMutablePointer<Worker>, size: Int, tag: UInt64) {
        let p = tmalloc(w, size)
        stamp(p, size, tag)
        ptrs[slot] = bits(p)
        sizes[slot] = size
        tags[slot] = tag
        addLive(w, size)
    }
}

private let churnSlots = 8192

private let churnBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let t = w.pointee.local.unsafelyUnwrapped.assumingMemoryBound(to: SlotTable.self).pointee
    var rng = Rng(seed: w.pointee.seed)
    var seq = UInt64(w.pointee.index) << 48
    let n = w.pointee.target
    for _ in 0..<n {
        let r = rng.next()
        let s = Int(r & UInt64(churnSlots - 1))
        let old = t.ptrs[s]
        if old != 0 {
            let p = pointer(old)
            let size = t.sizes[s]
            if !stampIntact(p, size, t.tags[s]) { fail("churn: object tag changed while live", t.tags[s], p.load(as: UInt64.self)) }
            tfree(w, p)
            addLive(w, -size)
        }
        let k = Int((r >> 13) % 7) + 3
        let size = 8 + Int((r >> 16) & ((1 << k) - 1))
        seq &+= 1
        t.fill(s, w, size: size, tag: seq)
    }
    // Drain (checked).
    for s in 0..<churnSlots where t.ptrs[s] != 0 {
        let p = pointer(t.ptrs[s])
        if !stampIntact(p, t.sizes[s], t.tags[s]) { fail("churn: object tag changed while live", t.tags[s], p.load(as: UInt64.self)) }
        tfree(w, p)
        addLive(w, -t.sizes[s])
        t.ptrs[s] = 0
    }
    w.pointee.ops = UInt64(n)
}

func runChurn(_ h: Harness) {
    let n = scaled(6_000_000, h.options.scale)
    h.configure(body: churnBody, shared: nil, target: { _ in n }, expectedCalls: { _ in n },
                local: { _ in SlotTable.make(churnSlots) })
    h.markBaseline()
    h.runTimed()
}

// MARK: - larson: threads free each other's objects

struct LarsonShared {
    var slots: UnsafeMutablePointer<UInt64>
    var count: Int
}

private let larsonSlots = 16384

private let larsonBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let sh = w.pointee.shared.unsafelyUnwrapped.assumingMemoryBound(to: LarsonShared.self).pointee
    var rng = Rng(seed: w.pointee.seed)
    let n = w.pointee.target
    let mask = UInt64(sh.count - 1)
    for _ in 0..<n {
        let r = rng.next()
        let s = Int(r & mask)
        let size = 8 + Int((r >> 20) % 393)
        let p = tmalloc(w, size)
        let pb = bits(p)
        if pb >> 48 != 0 { fail("larson: pointer above 2^48", pb) }
        let tag16 = ((r >> 40) & 0xFFFF) | 1
        let header = (tag16 << 48) | UInt64(size)
        stamp(p, size, header)
        addLive(w, size)
        let old = lab_exchange(sh.slots + s, pb | (tag16 << 48))
        if old != 0 {
            let op = pointer(old & 0xFFFF_FFFF_FFFF)
            let h = op.load(as: UInt64.self)
            if h >> 48 != old >> 48 { fail("larson: object header does not carry its slot's tag", old, h) }
            let osize = Int(h & 0xFFFF_FFFF)
            if osize < 8 || osize > 400 || !stampIntact(op, osize, h) { fail("larson: object tail overwritten while live", old, h) }
            tfree(w, op)
            addLive(w, -osize)
        }
    }
    w.pointee.ops = UInt64(n)
}

func runLarson(_ h: Harness) {
    let total = scaled(6_000_000, h.options.scale)
    let sh = prealloc(1, of: LarsonShared.self)
    sh.initialize(to: LarsonShared(slots: prealloc(larsonSlots, of: UInt64.self), count: larsonSlots))
    let per = total / h.threads
    h.configure(body: larsonBody, shared: UnsafeMutableRawPointer(sh), target: { _ in per }, expectedCalls: { _ in per })
    h.markBaseline()
    h.runTimed()
    // Drain (checked, untimed) from the main thread.
    for s in 0..<larsonSlots {
        let old = sh.pointee.slots[s]
        if old == 0 { continue }
        let op = pointer(old & 0xFFFF_FFFF_FFFF)
        let hdr = op.load(as: UInt64.self)
        let osize = Int(hdr & 0xFFFF_FFFF)
        if hdr >> 48 != old >> 48 || osize < 8 || osize > 400 || !stampIntact(op, osize, hdr) {
            fail("larson: object changed while live (drain)", old, hdr)
        }
        free(op)
        addLive(h.workers, -osize)
        sh.pointee.slots[s] = 0
    }
}

// MARK: - prodcons: producer/consumer pairs, every free is remote

struct Ring {
    // head (consumer) and tail (producer) 128 bytes apart; slots follow.
    var words: UnsafeMutablePointer<UInt64>
    static let capacity = 1024
    var head: UnsafeMutablePointer<UInt64> { words }
    var tail: UnsafeMutablePointer<UInt64> { words + 16 }
    var slots: UnsafeMutablePointer<UInt64> { words + 32 }
}

struct ProdConsShared {
    var rings: UnsafeMutablePointer<Ring>
}

@inline(__always) func spinWait(_ spins: inout Int) {
    spins += 1
    if spins < 64 { lab_cpu_relax() } else { sched_yield() }
}

private let prodConsBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let sh = w.pointee.shared.unsafelyUnwrapped.assumingMemoryBound(to: ProdConsShared.self).pointee
    let pair = w.pointee.index / 2
    let ring = sh.rings[pair]
    let n = UInt64(w.pointee.target)
    let mask = UInt64(Ring.capacity - 1)
    let pairTag = UInt64(pair + 1) << 48
    if w.pointee.index % 2 == 0 {
        // Producer.
        var rng = Rng(seed: w.pointee.seed)
        var t: UInt64 = 0
        var cachedHead: UInt64 = 0
        while t < n {
            let size = 24 + Int(rng.next() % 233)
            let p = tmalloc(w, size)
            stamp(p, size, pairTag | t)
            (p + 8).storeBytes(of: UInt64(size), as: UInt64.self)
            addLive(w, size)
            if t - cachedHead >= UInt64(Ring.capacity) {
                var spins = 0
                cachedHead = lab_load_acquire(ring.head)
                while t - cachedHead >= UInt64(Ring.capacity) {
                    spinWait(&spins)
                    cachedHead = lab_load_acquire(ring.head)
                }
            }
            ring.slots[Int(t & mask)] = bits(p)
            t += 1
            lab_store_release(ring.tail, t)
        }
        w.pointee.ops = n
    } else {
        // Consumer.
        var h: UInt64 = 0
        while h < n {
            var avail = lab_load_acquire(ring.tail)
            var spins = 0
            while avail == h {
                spinWait(&spins)
                avail = lab_load_acquire(ring.tail)
            }
            while h < avail {
                let p = pointer(ring.slots[Int(h & mask)])
                let size = Int((p + 8).load(as: UInt64.self))
                if size < 24 || size > 256 || !stampIntact(p, size, pairTag | h) {
                    fail("prodcons: object arrived changed (sequence/tag mismatch)", pairTag | h, p.load(as: UInt64.self))
                }
                tfree(w, p)
                addLive(w, -size)
                h += 1
            }
            lab_store_release(ring.head, h)
        }
        w.pointee.ops = 0
    }
}

func runProdCons(_ h: Harness) {
    let pairs = h.threads / 2
    let total = scaled(3_000_000, h.options.scale)
    let per = max(1, total / pairs)
    let sh = prealloc(1, of: ProdConsShared.self)
    let rings = prealloc(pairs, of: Ring.self)
    for i in 0..<pairs { (rings + i).initialize(to: Ring(words: prealloc(32 + Ring.capacity, of: UInt64.self))) }
    sh.initialize(to: ProdConsShared(rings: rings))
    h.configure(body: prodConsBody, shared: UnsafeMutableRawPointer(sh), target: { _ in per }, expectedCalls: { _ in per })
    h.markBaseline()
    h.runTimed()
}

// MARK: - threadchurn: many short-lived threads

private let tcObjects = 128
private let tcSurvivors = 32

/// Per slot (thread index in a wave): survivors handed to the next thread.
struct Handoff {
    var ptrs: UnsafeMutablePointer<UInt64>
    var sizes: UnsafeMutablePointer<Int>
    var tags: UnsafeMutablePointer<UInt64>
    var count: Int
    var wave: UInt64
}

private let threadChurnBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let hand = w.pointee.local.unsafelyUnwrapped.assumingMemoryBound(to: Handoff.self)
    var rng = Rng(seed: w.pointee.seed &+ hand.pointee.wave &* 0x9E37_79B9)
    // Free what the predecessor left (allocated by another, exited thread).
    for k in 0..<hand.pointee.count {
        let p = pointer(hand.pointee.ptrs[k])
        if !stampIntact(p, hand.pointee.sizes[k], hand.pointee.tags[k]) {
            fail("threadchurn: survivor changed after its thread exited", hand.pointee.tags[k], p.load(as: UInt64.self))
        }
        tfree(w, p)
        addLive(w, -hand.pointee.sizes[k])
    }
    hand.pointee.count = 0
    // This thread's objects live in the upper part of the handoff arrays.
    let base = tcSurvivors
    let tagBase = (UInt64(w.pointee.index + 1) << 48) | (hand.pointee.wave << 16)
    for k in 0..<tcObjects {
        let size = 16 + Int(rng.next() % 497)
        let p = tmalloc(w, size)
        stamp(p, size, tagBase | UInt64(k))
        hand.pointee.ptrs[base + k] = bits(p)
        hand.pointee.sizes[base + k] = size
        addLive(w, size)
    }
    var kept = 0
    for k in 0..<tcObjects {
        let p = pointer(hand.pointee.ptrs[base + k])
        let size = hand.pointee.sizes[base + k]
        if !stampIntact(p, size, tagBase | UInt64(k)) { fail("threadchurn: object changed while live", tagBase | UInt64(k), p.load(as: UInt64.self)) }
        if k % 4 == 0 && kept < tcSurvivors {
            hand.pointee.ptrs[kept] = bits(p)
            hand.pointee.sizes[kept] = size
            hand.pointee.tags[kept] = tagBase | UInt64(k)
            kept += 1
        } else {
            tfree(w, p)
            addLive(w, -size)
        }
    }
    hand.pointee.count = kept
    hand.pointee.wave &+= 1
    w.pointee.ops &+= UInt64(tcObjects)
}

func runThreadChurn(_ h: Harness) {
    let totalThreads = scaled(3200, h.options.scale, min: h.threads)
    let waves = max(1, totalThreads / h.threads)
    let hands = prealloc(h.threads, of: Handoff.self)
    for i in 0..<h.threads {
        (hands + i).initialize(to: Handoff(ptrs: prealloc(tcSurvivors + tcObjects, of: UInt64.self),
                                           sizes: prealloc(tcSurvivors + tcObjects, of: Int.self),
                                           tags: prealloc(tcSurvivors + tcObjects, of: UInt64.self), count: 0, wave: 0))
    }
    h.configure(body: threadChurnBody, shared: nil, target: { _ in waves }, expectedCalls: { _ in waves * tcObjects },
                local: { i in UnsafeMutableRawPointer(hands + i) })
    h.markBaseline()
    h.startClock()
    for wave in 0..<waves {
        h.spawnAndJoin(count: h.threads)
        if wave % 8 == 0 { h.sampleNow() }
    }
    h.stopClock()
    h.sampleNow()
    h.note("threads_started", Double(waves * h.threads))
    h.note("threads_per_s", Double(waves * h.threads) / (Double(h.m.wallNS) / 1e9))
    // Free the last survivors (checked, untimed).
    for i in 0..<h.threads {
        let hand = hands + i
        for k in 0..<hand.pointee.count {
            let p = pointer(hand.pointee.ptrs[k])
            if !stampIntact(p, hand.pointee.sizes[k], hand.pointee.tags[k]) { fail("threadchurn: survivor changed (final)", hand.pointee.tags[k]) }
            free(p)
            addLive(h.workers + i, -hand.pointee.sizes[k])
        }
        hand.pointee.count = 0
    }
}

// MARK: - oversub: threads >> CPUs, footprint with idle threads

private let burst = 256

private let oversubBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let t = w.pointee.local.unsafelyUnwrapped.assumingMemoryBound(to: SlotTable.self).pointee
    var rng = Rng(seed: w.pointee.seed)
    let rounds = w.pointee.target
    var tag = UInt64(w.pointee.index + 1) << 40
    for _ in 0..<rounds {
        for k in 0..<burst {
            let size = 16 + Int(rng.next() % 497)
            let p = tmalloc(w, size)
            tag &+= 1
            stamp(p, size, tag)
            t.ptrs[k] = bits(p)
            t.sizes[k] = size
            t.tags[k] = tag
            addLive(w, size)
        }
        for j in 0..<burst {
            let k = (j &* 97) & (burst - 1)
            let p = pointer(t.ptrs[k])
            if !stampIntact(p, t.sizes[k], t.tags[k]) { fail("oversub: object changed while live", t.tags[k], p.load(as: UInt64.self)) }
            tfree(w, p)
            addLive(w, -t.sizes[k])
        }
    }
    w.pointee.ops = UInt64(rounds * burst)
}

func runOversub(_ h: Harness) {
    let total = scaled(8_000_000, h.options.scale)
    let rounds = max(1, total / burst / h.threads)
    h.configure(body: oversubBody, shared: nil, target: { _ in rounds }, expectedCalls: { _ in rounds * burst },
                local: { _ in SlotTable.make(burst) })
    h.markBaseline()
    h.runTimed(holdAtEnd: true)
    if let idle = h.m.idleRSS {
        h.note("idle_rss_over_baseline_bytes", Double(idle > h.m.baselineRSS ? idle - h.m.baselineRSS : 0))
        h.note("idle_rss_per_thread_bytes", Double(idle > h.m.baselineRSS ? idle - h.m.baselineRSS : 0) / Double(h.threads))
    }
}

// MARK: - falseshare: objects allocated by one thread, written by another

struct FalseShareShared {
    var handed: UnsafeMutablePointer<UInt64>
}

private let fsObjectSize = 24
private let fsWrites = 500

private let falseShareBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let sh = w.pointee.shared.unsafelyUnwrapped.assumingMemoryBound(to: FalseShareShared.self).pointee
    let me = UInt64(w.pointee.index + 1)
    // The object the main thread allocated for us: write it, check, free it.
    let first = pointer(sh.handed[w.pointee.index])
    let counter = first.assumingMemoryBound(to: UInt64.self)
    for _ in 0..<fsWrites { lab_volatile_add(counter, 1) }
    if counter.pointee != UInt64(fsWrites) || (first + 8).load(as: UInt64.self) != me {
        fail("falseshare: handed object changed by someone else", counter.pointee, (first + 8).load(as: UInt64.self))
    }
    tfree(w, first)
    addLive(w, -fsObjectSize)
    // Then our own objects, allocated, written and freed in turn.
    let rounds = w.pointee.target
    for _ in 0..<rounds {
        let p = tmalloc(w, fsObjectSize)
        addLive(w, fsObjectSize)
        let c = p.assumingMemoryBound(to: UInt64.self)
        c.pointee = 0
        (p + 8).storeBytes(of: me, as: UInt64.self)
        for _ in 0..<fsWrites { lab_volatile_add(c, 1) }
        if c.pointee != UInt64(fsWrites) || (p + 8).load(as: UInt64.self) != me {
            fail("falseshare: object written by another thread while live", c.pointee, (p + 8).load(as: UInt64.self))
        }
        tfree(w, p)
        addLive(w, -fsObjectSize)
    }
    w.pointee.ops = UInt64((rounds + 1) * fsWrites)
}

func runFalseShare(_ h: Harness) {
    let totalRounds = scaled(200_000, h.options.scale)
    let per = max(1, totalRounds / h.threads)
    let sh = prealloc(1, of: FalseShareShared.self)
    sh.initialize(to: FalseShareShared(handed: prealloc(h.threads, of: UInt64.self)))
    h.configure(body: falseShareBody, shared: UnsafeMutableRawPointer(sh), target: { _ in per }, expectedCalls: { _ in per })
    // The main thread allocates every thread's first object back to back, so
    // neighbours share cache lines unless the allocator keeps them apart.
    for i in 0..<h.threads {
        guard let p = malloc(fsObjectSize) else { fail("malloc returned NULL") }
        p.storeBytes(of: 0, as: UInt64.self)
        (p + 8).storeBytes(of: UInt64(i + 1), as: UInt64.self)
        sh.pointee.handed[i] = bits(p)
        addLive(h.workers + i, fsObjectSize)
    }
    var sameLine = 0
    for i in 1..<max(h.threads, 1) where sh.pointee.handed[i] / 64 == sh.pointee.handed[i - 1] / 64 { sameLine += 1 }
    h.note("handed_pairs_sharing_a_line", Double(sameLine))
    h.markBaseline()
    h.runTimed()
}

// MARK: - fragmentation: drifting size mix, RSS against live bytes

private let fragPhases: [(lo: Int, hi: Int)] = [
    (16, 64), (64, 256), (256, 1024), (1024, 4096), (4096, 16384), (1024, 4096), (256, 1024), (16, 64),
]
private let fragLiveTarget = 8 << 20

struct FragShared {
    var phaseLo: UnsafeMutablePointer<Int>
    var phaseHi: UnsafeMutablePointer<Int>
    var phaseOps: UnsafeMutablePointer<Int>
    var phases: Int
    /// Written by thread 0 at each phase end: process RSS and live sum.
    var phaseRSS: UnsafeMutablePointer<UInt64>
    var phaseLive: UnsafeMutablePointer<UInt64>
    var liveSlots: UnsafeMutablePointer<UInt64>
    var threads: Int
    var after90RSS: UInt64
    var after90Live: UInt64
}

@inline(__always) func liveSum(_ slots: UnsafeMutablePointer<UInt64>, _ n: Int) -> UInt64 {
    var s: Int64 = 0
    for i in 0..<n { s &+= Int64(bitPattern: lab_load_relaxed(slots + i * 16)) }
    return UInt64(max(s, 0))
}

private let fragmentationBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let sh = w.pointee.shared.unsafelyUnwrapped.assumingMemoryBound(to: FragShared.self)
    let t = w.pointee.local.unsafelyUnwrapped.assumingMemoryBound(to: SlotTable.self).pointee
    var rng = Rng(seed: w.pointee.seed)
    var count = 0
    var live = 0
    var seq = UInt64(w.pointee.index + 1) << 48
    var calls: UInt64 = 0
    @inline(__always) func freeAt(_ j: Int) {
        let p = pointer(t.ptrs[j])
        let size = t.sizes[j]
        if !stampIntact(p, size, t.tags[j]) { fail("fragmentation: object changed while live", t.tags[j], p.load(as: UInt64.self)) }
        tfree(w, p)
        addLive(w, -size)
        live -= size
        count -= 1
        t.ptrs[j] = t.ptrs[count]
        t.sizes[j] = t.sizes[count]
        t.tags[j] = t.tags[count]
    }
    // Allocates one object of a random size in [lo, lo + span), stamped and
    // recorded in the table.
    @inline(__always) func allocateOne(_ lo: Int, _ span: Int) {
        let size = lo + Int(rng.next() % UInt64(span))
        seq &+= 1
        t.fill(count, w, size: size, tag: seq)
        count += 1
        live += size
        calls &+= 1
    }
    for phase in 0..<sh.pointee.phases {
        let lo = sh.pointee.phaseLo[phase], span = sh.pointee.phaseHi[phase] - lo
        for _ in 0..<sh.pointee.phaseOps[phase] {
            // Free random objects until there is room, then allocate one of
            // this phase's size.
            while count > 0 && (live >= fragLiveTarget || count >= t.count) {
                freeAt(Int(rng.next() % UInt64(count)))
            }
            allocateOne(lo, span)
            // Top the live set up to its target.
            while live < fragLiveTarget - 16384 && count < t.count {
                allocateOne(lo, span)
            }
        }
        if w.pointee.index == 0 {
            sh.pointee.phaseRSS[phase] = lab_rss_bytes()
            sh.pointee.phaseLive[phase] = liveSum(sh.pointee.liveSlots, sh.pointee.threads)
        }
    }
    // Free 90% (random victims), look at RSS, then free the rest.
    let keep = count / 10
    while count > keep { freeAt(Int(rng.next() % UInt64(count))) }
    if w.pointee.index == 0 {
        sh.pointee.after90RSS = lab_rss_bytes()
        sh.pointee.after90Live = liveSum(sh.pointee.liveSlots, sh.pointee.threads)
    }
    while count > 0 { freeAt(count - 1) }
    w.pointee.ops = calls
}

func runFragmentation(_ h: Harness) {
    let sh = prealloc(1, of: FragShared.self)
    let n = fragPhases.count
    // Replacements per phase: enough to turn over most of the live set.
    let lo = prealloc(n, of: Int.self), hi = prealloc(n, of: Int.self), ops = prealloc(n, of: Int.self)
    for (i, p) in fragPhases.enumerated() {
        lo[i] = p.lo
        hi[i] = p.hi
        let avg = Double(p.lo + p.hi) / 2
        ops[i] = scaled(1.5 * Double(fragLiveTarget) / avg, h.options.scale, min: 256)
    }
    // Live-slot addresses: the harness's, through worker 0's pointer.
    sh.initialize(to: FragShared(phaseLo: lo, phaseHi: hi, phaseOps: ops, phases: n,
                                 phaseRSS: prealloc(n, of: UInt64.self), phaseLive: prealloc(n, of: UInt64.self),
                                 liveSlots: h.workers[0].liveSlot.unsafelyUnwrapped, threads: h.threads,
                                 after90RSS: 0, after90Live: 0))
    let capacity = fragLiveTarget / 16 + 1024
    h.configure(body: fragmentationBody, shared: UnsafeMutableRawPointer(sh),
                target: { _ in 0 }, expectedCalls: { _ in (0..<n).reduce(0) { $0 + ops[$1] } * 2 },
                local: { _ in SlotTable.make(capacity) })
    h.markBaseline()
    h.runTimed()
    let base = Double(h.m.baselineRSS)
    var worst = 0.0
    for i in 0..<n {
        let rss = Double(sh.pointee.phaseRSS[i]) - base
        let live = Double(max(sh.pointee.phaseLive[i], 1))
        let ratio = rss / live
        worst = max(worst, ratio)
        h.note("phase\(i)_rss_over_live", ratio)
    }
    h.note("worst_phase_rss_over_live", worst)
    h.note("after_free90_rss_over_baseline_bytes", max(Double(sh.pointee.after90RSS) - base, 0))
    h.note("after_free90_live_bytes", Double(sh.pointee.after90Live))
}

// MARK: - largerealloc: large blocks and realloc growth

private let lrWindow = 4
private let lrBuffers = 16
private let lrMaxGrow = 4 << 20

struct LargeLocal {
    var blocks: UnsafeMutablePointer<UInt64>
    var blockSizes: UnsafeMutablePointer<Int>
    var blockTags: UnsafeMutablePointer<UInt64>
    var bufs: UnsafeMutablePointer<UInt64>
    var bufSizes: UnsafeMutablePointer<Int>
    var growRounds: Int
}

@inline(__always) func pageStamp(_ tag: UInt64, _ page: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: tag &+ UInt64(page) &* 131)
}

@inline(__always) func growStamp(_ buf: Int, _ offset: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: (offset >> 12) &* 31 &+ buf &* 7 &+ 1)
}

private let largeReallocBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let l = w.pointee.local.unsafelyUnwrapped.assumingMemoryBound(to: LargeLocal.self).pointee
    var rng = Rng(seed: w.pointee.seed)
    var calls: UInt64 = 0
    var tag = UInt64(w.pointee.index) << 32
    // Part A: large blocks in a small window, every page touched.
    @inline(__always) func checkAndFree(_ k: Int) {
        let p = pointer(l.blocks[k]).assumingMemoryBound(to: UInt8.self)
        let size = l.blockSizes[k]
        var page = 0
        while page * 4096 < size - 1 {
            if lab_volatile_load_byte(p + page * 4096) != pageStamp(l.blockTags[k], page) {
                fail("largerealloc: large block page stamp changed", l.blockTags[k], UInt64(page))
            }
            page += 1
        }
        if p[size - 1] != 0xA5 { fail("largerealloc: large block last byte changed", l.blockTags[k], UInt64(size)) }
        tfree(w, UnsafeMutableRawPointer(p))
        addLive(w, -size)
        l.blocks[k] = 0
    }
    for _ in 0..<w.pointee.target {
        let r = rng.next()
        let k = Int(r % UInt64(lrWindow))
        if l.blocks[k] != 0 { checkAndFree(k) }
        let base = 65536 << Int((r >> 8) % 6)
        let size = base + Int((r >> 16) % UInt64(base))
        let p = tmalloc(w, size).assumingMemoryBound(to: UInt8.self)
        calls &+= 1
        tag &+= 1
        var page = 0
        while page * 4096 < size - 1 {
            lab_volatile_store_byte(p + page * 4096, pageStamp(tag, page))
            page += 1
        }
        p[size - 1] = 0xA5
        l.blocks[k] = bits(UnsafeMutableRawPointer(p))
        l.blockSizes[k] = size
        l.blockTags[k] = tag
        addLive(w, size)
    }
    for k in 0..<lrWindow where l.blocks[k] != 0 { checkAndFree(k) }
    // Part B: buffers grown by realloc, round-robin, contents checked.
    for _ in 0..<l.growRounds {
        for b in 0..<lrBuffers {
            let p = tmalloc(w, 16).assumingMemoryBound(to: UInt8.self)
            calls &+= 1
            p[0] = growStamp(b, 0)
            p[15] = 0x5A
            l.bufs[b] = bits(UnsafeMutableRawPointer(p))
            l.bufSizes[b] = 16
            addLive(w, 16)
        }
        var growing = true
        while growing {
            growing = false
            for b in 0..<lrBuffers {
                let old = l.bufSizes[b]
                if old >= lrMaxGrow { continue }
                growing = true
                let new = min(old + old / 4 + 16, lrMaxGrow)
                let p = trealloc(w, pointer(l.bufs[b]), new).assumingMemoryBound(to: UInt8.self)
                calls &+= 1
                // Everything stamped before must have moved with the data.
                var off = 0
                while off < old - 1 {
                    if p[off] != growStamp(b, off) { fail("largerealloc: realloc lost data", UInt64(b), UInt64(off)) }
                    off += 4096
                }
                if p[old - 1] != 0x5A { fail("realloc lost the last byte", UInt64(b), UInt64(old)) }
                // Stamp the new part, and the new last byte.
                off = (old + 4095) & ~4095
                while off < new - 1 {
                    p[off] = growStamp(b, off)
                    off += 4096
                }
                p[new - 1] = 0x5A
                l.bufs[b] = bits(UnsafeMutableRawPointer(p))
                l.bufSizes[b] = new
                addLive(w, new - old)
            }
        }
        for b in 0..<lrBuffers {
            tfree(w, pointer(l.bufs[b]))
            addLive(w, -l.bufSizes[b])
        }
    }
    w.pointee.ops = calls
}

func runLargeRealloc(_ h: Harness) {
    let totalBlocks = scaled(600, h.options.scale)
    let per = max(1, totalBlocks / h.threads)
    let growRounds = max(1, scaled(2, h.options.scale) / h.threads)
    h.configure(body: largeReallocBody, shared: nil, target: { _ in per },
                expectedCalls: { _ in per + growRounds * lrBuffers * 64 },
                local: { _ in
                    let l = prealloc(1, of: LargeLocal.self)
                    l.initialize(to: LargeLocal(blocks: prealloc(lrWindow, of: UInt64.self), blockSizes: prealloc(lrWindow, of: Int.self),
                                                blockTags: prealloc(lrWindow, of: UInt64.self), bufs: prealloc(lrBuffers, of: UInt64.self),
                                                bufSizes: prealloc(lrBuffers, of: Int.self), growRounds: growRounds))
                    return UnsafeMutableRawPointer(l)
                },
                sampleEvery: 1)
    h.markBaseline()
    h.runTimed()
}

// MARK: - cycle: a working set allocated whole and freed whole, round after round

/// What each thread cycles per round: 48 MiB of 8 KiB blocks, more than an
/// allocator may keep of free pages resident at first (SwiftMalloc: 32 MiB).
private let cycleBlockSize = 8192
private let cycleBlocks = (48 << 20) / cycleBlockSize

private let cycleBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let blocks = w.pointee.local.unsafelyUnwrapped.assumingMemoryBound(to: UInt64.self)
    var tag = UInt64(w.pointee.index) << 40
    var calls: UInt64 = 0
    for _ in 0..<w.pointee.target {
        let first = tag &+ 1
        for i in 0..<cycleBlocks {
            let p = tmalloc(w, cycleBlockSize)
            tag &+= 1
            // Every page of the block is touched: its pages are what a round
            // faults in when the allocator gave them back.
            var offset = 4096
            while offset < cycleBlockSize {
                lab_volatile_store_byte(p.assumingMemoryBound(to: UInt8.self) + offset, UInt8(truncatingIfNeeded: tag))
                offset += 4096
            }
            stamp(p, cycleBlockSize, tag)
            blocks[i] = bits(p)
            addLive(w, cycleBlockSize)
            calls &+= 1
        }
        for i in 0..<cycleBlocks {
            let p = pointer(blocks[i])
            if !stampIntact(p, cycleBlockSize, first &+ UInt64(i)) { fail("cycle: block changed while live", first &+ UInt64(i), p.load(as: UInt64.self)) }
            tfree(w, p)
            addLive(w, -cycleBlockSize)
        }
    }
    w.pointee.ops = calls
}

func runCycle(_ h: Harness) {
    let rounds = scaled(10, h.options.scale)
    h.configure(body: cycleBody, shared: nil, target: { _ in rounds }, expectedCalls: { _ in rounds * cycleBlocks },
                local: { _ in UnsafeMutableRawPointer(prealloc(cycleBlocks, of: UInt64.self)) })
    h.markBaseline()
    h.runTimed()
}
