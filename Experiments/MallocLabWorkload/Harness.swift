// The measuring harness of the workload process: threads, timing, latency
// sampling, RSS and live-byte sampling, and the one JSON line of results.
//
// Rules that keep the measurement honest:
//  * Timed loops call malloc/free/realloc (from Glibc, so LD_PRELOAD decides
//    which allocator answers) and touch only memory prepared before timing:
//    no Swift arrays, strings, classes or closures inside them.
//  * Every Nth malloc and free is timed with a fenced TSC read and the raw
//    tick count is stored in a buffer mmapped before timing; the buffers are
//    turned into an HdrHistogram only after the threads are joined.
//  * The main thread samples RSS (/proc/self/statm, read without malloc) and
//    the sum of the threads' live-byte counters every 2 ms while they run.
import Glibc
import Histogram
import MallocLabCSupport

// MARK: - Small helpers usable inside timed loops

/// xorshift64*: fast, deterministic, no allocation.
struct Rng {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    @inline(__always) mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}

/// Stops the whole process with a check-failure message (no allocation).
@inline(never)
func fail(_ message: StaticString, _ a: UInt64 = 0, _ b: UInt64 = 0) -> Never {
    let cstr = UnsafeRawPointer(message.utf8Start).assumingMemoryBound(to: CChar.self)
    lab_fail(cstr, a, b)
}

/// Writes `tag` in the first word and `~tag` in the last whole word of a
/// block of `size` (>= 8) bytes.
@inline(__always)
func stamp(_ p: UnsafeMutableRawPointer, _ size: Int, _ tag: UInt64) {
    p.storeBytes(of: tag, as: UInt64.self)
    if size >= 16 {
        (p + ((size & ~7) - 8)).storeBytes(of: ~tag, as: UInt64.self)
    }
}

/// Whether a block still holds what `stamp` wrote.
@inline(__always)
func stampIntact(_ p: UnsafeMutableRawPointer, _ size: Int, _ tag: UInt64) -> Bool {
    if p.load(as: UInt64.self) != tag { return false }
    if size >= 16 && (p + ((size & ~7) - 8)).load(as: UInt64.self) != ~tag { return false }
    return true
}

/// Raw tick counts of sampled calls, in memory mapped before timing.
struct SampleBuffer {
    var base: UnsafeMutablePointer<UInt32>?
    var count: Int = 0
    var capacity: Int = 0

    static func mapped(capacity: Int) -> SampleBuffer {
        let bytes = max(capacity, 1) * MemoryLayout<UInt32>.stride
        let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let raw, raw != MAP_FAILED else { return SampleBuffer() }
        return SampleBuffer(base: raw.assumingMemoryBound(to: UInt32.self), count: 0, capacity: capacity)
    }

    @inline(__always) mutating func add(_ ticks: UInt64) {
        if count < capacity {
            base.unsafelyUnwrapped[count] = ticks > UInt64(UInt32.max) ? UInt32.max : UInt32(truncatingIfNeeded: ticks)
            count &+= 1
        }
    }
}

/// Everything one worker thread needs; lives in memory allocated before timing.
struct Worker {
    var index: Int = 0
    var threads: Int = 1
    var seed: UInt64 = 1
    /// Work this thread should do (the unit is the workload's).
    var target: Int = 0
    /// Work it did (ops), set by the body.
    var ops: UInt64 = 0
    var sampleEvery: Int = 64
    var mallocCountdown: Int = 64
    var freeCountdown: Int = 64
    var mallocLat = SampleBuffer()
    var freeLat = SampleBuffer()
    /// Bytes this thread allocated minus bytes it freed (may go negative when
    /// it frees others' objects); mirrored into `liveSlot` for the sampler.
    var live: Int64 = 0
    var liveSlot: UnsafeMutablePointer<UInt64>? = nil
    /// Workload state shared by all threads, and this thread's own.
    var shared: UnsafeMutableRawPointer? = nil
    var local: UnsafeMutableRawPointer? = nil
    var body: (@convention(c) (UnsafeMutableRawPointer) -> Void)? = nil
    var harness: UnsafeMutablePointer<HarnessShared>? = nil
}

/// The C-level part of the harness the threads touch.
struct HarnessShared {
    var startBarrier = pthread_barrier_t()
    var endBarrier = pthread_barrier_t()
    var useStartBarrier: Bool = true
    var holdAtEnd: Bool = false
    /// Threads finished (atomic).
    var done: UInt64 = 0
    /// Latest finish time (ns, monotonic) over threads (atomic max by CAS-free
    /// per-thread slots: see finishSlots).
    var finishSlots: UnsafeMutablePointer<UInt64>? = nil
}

// MARK: - Timed calls

@inline(__always)
func tmalloc(_ w: UnsafeMutablePointer<Worker>, _ size: Int) -> UnsafeMutableRawPointer {
    let c = w.pointee.mallocCountdown &- 1
    let p: UnsafeMutableRawPointer?
    if c == 0 {
        w.pointee.mallocCountdown = w.pointee.sampleEvery
        let t0 = lab_ticks_begin()
        p = malloc(size)
        let t1 = lab_ticks_end()
        w.pointee.mallocLat.add(t1 &- t0)
    } else {
        w.pointee.mallocCountdown = c
        p = malloc(size)
    }
    guard let p else { fail("malloc returned NULL", UInt64(size)) }
    return p
}

@inline(__always)
func trealloc(_ w: UnsafeMutablePointer<Worker>, _ old: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer {
    let c = w.pointee.mallocCountdown &- 1
    let p: UnsafeMutableRawPointer?
    if c == 0 {
        w.pointee.mallocCountdown = w.pointee.sampleEvery
        let t0 = lab_ticks_begin()
        p = realloc(old, size)
        let t1 = lab_ticks_end()
        w.pointee.mallocLat.add(t1 &- t0)
    } else {
        w.pointee.mallocCountdown = c
        p = realloc(old, size)
    }
    guard let p else { fail("realloc returned NULL", UInt64(size)) }
    return p
}

@inline(__always)
func tfree(_ w: UnsafeMutablePointer<Worker>, _ p: UnsafeMutableRawPointer) {
    let c = w.pointee.freeCountdown &- 1
    if c == 0 {
        w.pointee.freeCountdown = w.pointee.sampleEvery
        let t0 = lab_ticks_begin()
        free(p)
        let t1 = lab_ticks_end()
        w.pointee.freeLat.add(t1 &- t0)
    } else {
        w.pointee.freeCountdown = c
        free(p)
    }
}

@inline(__always)
func addLive(_ w: UnsafeMutablePointer<Worker>, _ delta: Int) {
    let v = w.pointee.live &+ Int64(delta)
    w.pointee.live = v
    lab_store_relaxed(w.pointee.liveSlot.unsafelyUnwrapped, UInt64(bitPattern: v))
}

// MARK: - Preallocation

/// Zeroed, touched memory from the allocator under test, taken before the
/// baseline RSS is read (so it counts as baseline, not as the workload's).
func prealloc<T>(_ count: Int, of _: T.Type) -> UnsafeMutablePointer<T> {
    let bytes = max(count, 1) * MemoryLayout<T>.stride
    guard let raw = calloc(1, bytes) else { fail("could not preallocate harness memory", UInt64(bytes)) }
    memset(raw, 0, bytes)
    return raw.assumingMemoryBound(to: T.self)
}

// MARK: - The harness

/// Measurements of a whole run.
struct RunMeasurements {
    var wallNS: UInt64 = 0
    var ops: UInt64 = 0
    var baselineRSS: UInt64 = 0
    var maxSampledRSS: UInt64 = 0
    var livePeak: Int64 = 0
    var rssAtLivePeak: UInt64 = 0
    var idleRSS: UInt64? = nil
}

private let threadEntry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { raw in
    let w = raw.unsafelyUnwrapped.assumingMemoryBound(to: Worker.self)
    let h = w.pointee.harness.unsafelyUnwrapped
    if h.pointee.useStartBarrier {
        pthread_barrier_wait(&h.pointee.startBarrier)
    }
    w.pointee.body.unsafelyUnwrapped(UnsafeMutableRawPointer(w))
    lab_store_release(h.pointee.finishSlots.unsafelyUnwrapped + w.pointee.index * 16, lab_monotonic_ns())
    _ = lab_fetch_add(&h.pointee.done, 1)
    if h.pointee.holdAtEnd {
        pthread_barrier_wait(&h.pointee.endBarrier)
    }
    return nil
}

final class Harness {
    let options: Options
    let threads: Int
    let workers: UnsafeMutablePointer<Worker>
    let shared: UnsafeMutablePointer<HarnessShared>
    private let liveSlots: UnsafeMutablePointer<UInt64>
    private let finishSlots: UnsafeMutablePointer<UInt64>
    private var pthreads: [pthread_t] = []
    var m = RunMeasurements()
    var notes: [(String, Double)] = []
    private var startNS: UInt64 = 0

    init(options: Options, threads: Int) {
        self.options = options
        self.threads = threads
        workers = prealloc(threads, of: Worker.self)
        // 128-byte spacing between the counters the sampler reads.
        liveSlots = prealloc(threads * 16, of: UInt64.self)
        finishSlots = prealloc(threads * 16, of: UInt64.self)
        shared = prealloc(1, of: HarnessShared.self)
        shared.initialize(to: HarnessShared())
        shared.pointee.finishSlots = finishSlots
        pthreads = Array(repeating: pthread_t(), count: threads)
        for i in 0..<threads {
            (workers + i).initialize(to: Worker())
            workers[i].index = i
            workers[i].threads = threads
            workers[i].seed = options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i + 1) &* 0xD1B5_4A32_D192_ED03
            workers[i].sampleEvery = options.sampleEvery
            workers[i].mallocCountdown = options.sampleEvery
            workers[i].freeCountdown = options.sampleEvery
            workers[i].liveSlot = liveSlots + i * 16
            workers[i].harness = shared
        }
    }

    func note(_ key: String, _ value: Double) { notes.append((key, value)) }

    /// Gives each worker its body, shared state and work target, and maps its
    /// latency buffers for about `expectedCalls` calls of each kind.
    func configure(body: @convention(c) (UnsafeMutableRawPointer) -> Void,
                   shared workloadShared: UnsafeMutableRawPointer?,
                   target: (Int) -> Int, expectedCalls: (Int) -> Int,
                   local: ((Int) -> UnsafeMutableRawPointer?)? = nil,
                   sampleEvery: Int? = nil) {
        for i in 0..<threads {
            workers[i].body = body
            workers[i].shared = workloadShared
            workers[i].target = target(i)
            workers[i].local = local?(i)
            if let sampleEvery {
                workers[i].sampleEvery = sampleEvery
                workers[i].mallocCountdown = sampleEvery
                workers[i].freeCountdown = sampleEvery
            }
            let calls = expectedCalls(i) / max(workers[i].sampleEvery, 1) + 64
            let cap = min(calls, 1 << 21)
            workers[i].mallocLat = SampleBuffer.mapped(capacity: cap)
            workers[i].freeLat = SampleBuffer.mapped(capacity: cap)
        }
    }

    /// Reads the baseline RSS; call after all preallocation.
    func markBaseline() {
        m.baselineRSS = lab_rss_bytes()
        m.maxSampledRSS = m.baselineRSS
    }

    /// Samples RSS and the live-byte sum once.
    func sampleNow() {
        let rss = lab_rss_bytes()
        if rss > m.maxSampledRSS { m.maxSampledRSS = rss }
        var live: Int64 = 0
        for i in 0..<threads {
            live &+= Int64(bitPattern: lab_load_relaxed(liveSlots + i * 16))
        }
        if live > m.livePeak {
            m.livePeak = live
            m.rssAtLivePeak = rss
        }
    }

    /// Sum of the threads' live counters now.
    func liveNow() -> Int64 {
        var live: Int64 = 0
        for i in 0..<threads { live &+= Int64(bitPattern: lab_load_relaxed(liveSlots + i * 16)) }
        return live
    }

    private func spawn(_ i: Int) {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        let rc = pthread_create(&pthreads[i], &attr, threadEntry, UnsafeMutableRawPointer(workers + i))
        pthread_attr_destroy(&attr)
        if rc != 0 { fail("pthread_create failed", UInt64(rc), UInt64(i)) }
    }

    /// Starts all threads at once (barrier), times from the release to the
    /// last thread's finish, sampling RSS meanwhile. With `holdAtEnd`, the
    /// finished threads wait (alive, caches full) while `idleRSS` is read.
    func runTimed(holdAtEnd: Bool = false) {
        shared.pointee.useStartBarrier = true
        shared.pointee.holdAtEnd = holdAtEnd
        shared.pointee.done = 0
        pthread_barrier_init(&shared.pointee.startBarrier, nil, UInt32(threads + 1))
        if holdAtEnd { pthread_barrier_init(&shared.pointee.endBarrier, nil, UInt32(threads + 1)) }
        for i in 0..<threads { spawn(i) }
        startNS = lab_monotonic_ns()
        pthread_barrier_wait(&shared.pointee.startBarrier)
        var pause = timespec(tv_sec: 0, tv_nsec: 2_000_000)
        while lab_load_acquire(&shared.pointee.done) < UInt64(threads) {
            sampleNow()
            nanosleep(&pause, nil)
        }
        var end: UInt64 = 0
        for i in 0..<threads { end = max(end, lab_load_acquire(finishSlots + i * 16)) }
        sampleNow()
        if holdAtEnd {
            m.idleRSS = lab_rss_bytes()
            pthread_barrier_wait(&shared.pointee.endBarrier)
        }
        for i in 0..<threads { pthread_join(pthreads[i], nil) }
        m.wallNS = end > startNS ? end - startNS : 1
        pthread_barrier_destroy(&shared.pointee.startBarrier)
        if holdAtEnd { pthread_barrier_destroy(&shared.pointee.endBarrier) }
        collectOps()
    }

    /// For workloads that drive threads themselves (thread churn): starts
    /// the clock; `spawnAndJoin` runs workers `indices` concurrently.
    func startClock() { startNS = lab_monotonic_ns() }
    func stopClock() { m.wallNS = max(lab_monotonic_ns() - startNS, 1); collectOps() }

    func spawnAndJoin(count: Int) {
        shared.pointee.useStartBarrier = false
        shared.pointee.holdAtEnd = false
        for i in 0..<count { spawn(i) }
        for i in 0..<count { pthread_join(pthreads[i], nil) }
    }

    private func collectOps() {
        var ops: UInt64 = 0
        for i in 0..<threads { ops &+= workers[i].ops }
        m.ops = ops
    }

    /// Latency histograms (nanoseconds) of the sampled malloc and free calls.
    func latencyHistograms(ticksPerNS: Double) -> (malloc: Histogram<UInt64>, free: Histogram<UInt64>) {
        var hm = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 100_000_000_000, numberOfSignificantValueDigits: .three)
        var hf = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 100_000_000_000, numberOfSignificantValueDigits: .three)
        for i in 0..<threads {
            let bm = workers[i].mallocLat
            if let base = bm.base {
                for k in 0..<bm.count { hm.record(ticksToNS(base[k], ticksPerNS)) }
            }
            let bf = workers[i].freeLat
            if let base = bf.base {
                for k in 0..<bf.count { hf.record(ticksToNS(base[k], ticksPerNS)) }
            }
        }
        return (hm, hf)
    }

    private func ticksToNS(_ t: UInt32, _ ticksPerNS: Double) -> UInt64 {
        let ns = (Double(t) / ticksPerNS).rounded()
        return ns < 1 ? 1 : UInt64(min(ns, 99_000_000_000))
    }
}

// MARK: - Timer calibration

struct TimerCalibration {
    var ticksPerNS: Double
    /// Median cost of an empty timed region, in ns (included in every sample).
    var overheadNS: Double

    static func measure() -> TimerCalibration {
        var ticksPerNS = 1.0
        if lab_ticks_are_tsc() != 0 {
            let n0 = lab_monotonic_ns(), t0 = lab_ticks_begin()
            var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
            nanosleep(&pause, nil)
            let n1 = lab_monotonic_ns(), t1 = lab_ticks_end()
            if n1 > n0 && t1 > t0 { ticksPerNS = Double(t1 - t0) / Double(n1 - n0) }
        }
        // Median cost of an empty timed region, by counting (no sort: an
        // unspecialised sort allocates in debug builds, and the allocator
        // under test may be one that misbehaves after a while).
        let n = 4096, buckets = 4096
        let counts = prealloc(buckets, of: Int.self)
        for _ in 0..<n {
            let a = lab_ticks_begin()
            let b = lab_ticks_end()
            counts[Int(min(b &- a, UInt64(buckets - 1)))] += 1
        }
        var seen = 0, medianTicks = 0
        for t in 0..<buckets {
            seen += counts[t]
            if seen * 2 >= n { medianTicks = t; break }
        }
        free(counts)
        let overhead = Double(medianTicks) / ticksPerNS
        return TimerCalibration(ticksPerNS: ticksPerNS, overheadNS: overhead)
    }
}
