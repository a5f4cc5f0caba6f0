// Gives idle memory back: a little at a time from the slow paths, and all
// of it when a multi-threaded process stops calling the allocator.
//
// Without it, memory freed in one phase of a program stays with the
// allocator: batches parked in transfer caches keep their spans partly
// used, and free pages stay resident up to the page heap's dirty limit,
// until malloc_trim.
//
// Pacing. Each thread counts the objects it moves through the middle
// (ThreadState.middleObjects: refills and overflows of the cached front
// ends, every call of the global one, as the front ends report them);
// every `interval` of them (SWIFTMALLOC_SCAVENGE_INTERVAL, default 32768;
// 0 turns the scavenger off), a pass is due. A pass is also due once the
// page heap has handed out 256 KiB of pages that were not resident (or
// 1/256 of its regions, if more: a program that grows to gigabytes gets a
// pass per 0.4% of growth, not per 256 KiB) since the previous pass:
// while a program's footprint grows, the objects of the classes it
// stopped using go home, so that their spans can empty and serve the
// growth instead of fresh pages (the lab's `fragmentation`,
// docs/scaling.md). Either way the pass comes at the thread's next
// lock-free slow path (Heap.reclaim). While the idle-release thread below
// runs (a multi-threaded process), the slow path only rings its doorbell
// (`IdleRelease.bell`: a futex wake, once per ring) and the thread runs
// the pass: no program thread stalls for it. Otherwise the slow path runs
// it, unless another thread is running one.
//
// The pass:
// - the per-CPU slabs hand the objects of every class that served no
//   malloc since the previous pass to the central lists
//   (PerCPUSlabs.returnIdleClasses: a class only freed keeps a full list
//   otherwise, and each object in it keeps a span partly used); a thread's
//   own cache (front end thread) does the same for itself at its first
//   refill or overflow after the pass (ThreadCacheFrontEnd.returnIdleLists);
// - every transfer cache hands the batches that sat untouched since the
//   previous pass (its low-water mark) to the central list, where spans
//   whose objects are all home go back to the page heap;
// - on a pass the object count made due, the page heap gives back the
//   resident pages of the free spans that have stayed free for `decay_ms`
//   (SWIFTMALLOC_DECAY_MS, default 1000), longest first, down to `floor`
//   bytes of resident free pages; spans freed and reused in between keep
//   their pages (no page faults for a program that cycles memory, however
//   many passes its cycle takes). The age is time, not passes: passes come
//   every 32768 objects, a few milliseconds apart for small ones, and 48 MiB
//   of 256-byte objects cycled by a program that gave back pages free for
//   one pass faulted them in again each cycle: 1.2 s for 30 cycles against
//   0.46 s with the age in time (tcmalloc 0.28 s). Passes due to growth leave
//   the pages alone: they come every 256 KiB of growth, far more often
//   than the free lists need a walk.
//
// A program that keeps allocating the same classes keeps its batches (they
// do not sit idle). A pass walks the classes under their locks (a few
// microseconds) and gives pages back after the page heap's lock is released.
//
// The idle-release thread. A process that stops calling the allocator runs
// no slow path, so the pass above never comes. Once the process is
// multi-threaded, the first slow path that finds the thread missing starts
// it (idle_release_ms, SWIFTMALLOC_IDLE_RELEASE_MS, default 1000; 0: no
// thread). Not before: a second thread would turn a single-threaded
// process's glibc, and the arenas and global front ends, to their locked
// paths for good. Every `idle_release_ms` it looks at the activity word
// that slow paths clear (one load, and a store only once per period); if no
// slow path ran in a whole period, it gives back everything it can reach:
// the per-CPU slabs (drained the way malloc_trim drains them, fencing every
// CPU), the shared caches of arenas and global, every parked transfer-cache
// batch, and every resident free page (floor 0), then waits for activity
// before another such pass. Other threads' own caches (front end thread)
// are theirs alone and stay as they are. The fast paths do not change.
// While it runs, the page heap keeps runs freed past its dirty limit
// instead of giving them back at once (PageHeap.releasesAtLimit), and every
// quarter of decay_ms the thread gives back what of those has stayed free
// for decay_ms (`decayPastLimit`): a busy program that frees more than the
// limit and comes back for it faults nothing in again, and one that does
// not gets it back after decay_ms, whether or not its slow paths ring for
// passes.
//
// Such a thread must not keep a program alive that ends with pthread_exit:
// glibc ends the process when its last thread exits, counting ours. So the
// thread checks every `pollMilliseconds` whether any other thread is still
// alive (a main thread that called pthread_exit is a zombie and does not
// count), and if none is, it does what glibc's last thread does: exit(0),
// which runs the atexit handlers once and ends with status 0. It blocks
// every signal, so signals meant for the program never land on it, and is
// named "swiftmalloc". A fork child has no such thread: its first slow path
// once it is multi-threaded starts its own.
import SwiftMallocShims

enum Scavenger {
    /// Resident free pages the page heap keeps whatever their age.
    static let floor: UInt = 4 << 20
    /// A pass is also due once the page heap has handed out this many bytes
    /// of pages that were not resident (or 1/256 of its regions, if more)
    /// since the previous one: see "Pacing" above.
    static let growthPassBytes: UInt = 256 << 10
    static let growthPassFraction: UInt = 256
    /// How often the idle-release thread checks that the program still has
    /// a thread of its own: the longest a pthread_exit program outlives its
    /// last thread.
    static let pollMilliseconds: UInt64 = 50

    /// Runs a pass if the calling thread's count says one is due, or asks
    /// the idle-release thread for it while that runs. Call with no
    /// allocator lock held.
    @inline(__always)
    static func runIfDue(_ heap: UnsafeMutablePointer<Heap>) {
        guard let state = ThreadState.current else { return }
        let growing = sm_atomic_load_u64(heap.pointee.pageHeap.state.pointee.freshBytes)
            >= sm_atomic_load_u64(&heap.pointee.growthPassAt)
        let counted = state.pointee.middleObjects >= state.pointee.nextScavenge
        guard counted || growing else { return }
        let interval = heap.pointee.config.scavengeInterval
        // Interval 0 (SWIFTMALLOC_SCAVENGE_INTERVAL=0): never again.
        guard interval != 0 else {
            state.pointee.nextScavenge = .max
            return
        }
        if counted {
            state.pointee.nextScavenge = state.pointee.middleObjects &+ interval
            sm_atomic_store_u64(&heap.pointee.decayDue, 1)
        }
        if sm_atomic_load_u64(&heap.pointee.idle.running) != 0 {
            sm_idle_ring(&heap.pointee.idle.bell)
        } else {
            run(heap)
        }
    }

    /// `onThread`: run by the idle-release thread (counted apart).
    @inline(never)
    static func run(_ heap: UnsafeMutablePointer<Heap>, onThread: Bool = false) {
        guard sm_trylock(heap.pointee.scavengerLock) else { return }
        let pageHeap = heap.pointee.pageHeap
        let regions = pageHeap.withLock { $0.regionBytes }
        sm_atomic_store_u64(&heap.pointee.growthPassAt, sm_atomic_load_u64(pageHeap.state.pointee.freshBytes)
                            &+ UInt64(max(growthPassBytes, regions / growthPassFraction)))
        heap.pointee.percpuIdleDrains &+= UInt64(heap.pointee.percpu.returnIdleClasses(to: heap.pointee.middle))
        heap.pointee.middle.returnIdleBatches()
        if sm_atomic_exchange_u64(&heap.pointee.decayDue, 0) != 0 {
            decay(heap, floor: floor)
        }
        // Read without the lock by the thread caches (returnIdleLists).
        sm_atomic_store_u64(&heap.pointee.scavengerPasses, heap.pointee.scavengerPasses &+ 1)
        if onThread { heap.pointee.scavengerThreadPasses &+= 1 }
        sm_unlock(heap.pointee.scavengerLock)
    }
}

extension Scavenger {
    /// The idle-release thread's check, every quarter of decay_ms: free
    /// pages past the dirty limit (which the page heap keeps while the
    /// thread runs) go back once they have stayed free for decay_ms.
    static func decayPastLimit(_ heap: UnsafeMutablePointer<Heap>) {
        let pageHeap = heap.pointee.pageHeap
        let limit = pageHeap.withLock { $0.dirtyBytes > $0.dirtyLimit ? $0.dirtyLimit : nil }
        guard let limit, sm_trylock(heap.pointee.scavengerLock) else { return }
        decay(heap, floor: limit)
        sm_unlock(heap.pointee.scavengerLock)
    }

    /// Gives back the resident pages that have stayed free for decay_ms,
    /// down to `floor`, and counts them (scavenger lock held).
    private static func decay(_ heap: UnsafeMutablePointer<Heap>, floor: UInt) {
        heap.pointee.scavengedBytes &+= UInt64(heap.pointee.pageHeap.decay(floor: floor, decayMilliseconds: heap.pointee.config.decayMilliseconds))
    }
}

// MARK: giving everything back

extension Scavenger {
    /// Gives every free page the calling thread can reach back to the OS
    /// (malloc_trim, and the idle-release thread's pass): the calling
    /// thread's cache, the per-CPU slabs or shared caches, every batch
    /// parked in a transfer cache, every resident free page. Returns the
    /// bytes released. Call with no allocator lock held.
    static func releaseAll(_ heap: UnsafeMutablePointer<Heap>) -> UInt {
        FrontEnd.flushCaches(heap)
        heap.pointee.middle.drainTransferCaches()
        let released = heap.pointee.pageHeap.releaseAll()
        Reclamation.reclaimQueued(heap)
        return released
    }
}

// MARK: the idle-release thread

/// The idle-release thread's state, in the heap.
struct IdleRelease {
    /// Nonzero while a slow path has something to do here: the thread is
    /// wanted but not started (kept set while the process has one thread),
    /// or the thread has looked since the last slow path (the slow path
    /// clears it: there was activity). Zero once the thread is known to be
    /// off or cannot start. Racy peeks on the slow paths; swapped by the
    /// thread.
    var listening: UInt64 = 0
    /// 1 once a slow path took on starting the thread (this process).
    var started: UInt64 = 0
    /// 1 once the thread was created: the scavenger's passes are then its
    /// (a ring before it first waits leaves the bell set, so it runs that
    /// pass as soon as it gets a CPU).
    var running: UInt64 = 0
    /// The thread's doorbell: 1 when a slow path found a pass due and left
    /// it to the thread.
    var bell: UInt32 = 0
    /// Passes that found the process idle, and the bytes they gave back.
    var passes: UInt64 = 0
    var releasedBytes: UInt64 = 0

    init() {}

    /// The state of a process that has no such thread yet (start-up, and a
    /// fork child).
    mutating func reset(config: Configuration) {
        started = 0
        running = 0
        bell = 0
        listening = config.idleReleaseMilliseconds > 0 ? 1 : 0
    }
}

extension Scavenger {
    /// Tells the idle-release thread that the allocator is in use, or starts
    /// it. Call with no allocator lock held (slow paths, Heap.reclaim).
    @inline(__always)
    static func noteActivity(_ heap: UnsafeMutablePointer<Heap>) {
        if sm_atomic_load_u64(&heap.pointee.idle.listening) != 0 { activitySeen(heap) }
    }

    @inline(never)
    static func activitySeen(_ heap: UnsafeMutablePointer<Heap>) {
        if sm_atomic_load_u64(&heap.pointee.idle.started) == 0 {
            // One thread: starting ours would make the process
            // multi-threaded for good. An exiting thread (its key
            // destructor) starts nothing.
            if sm_single_threaded() || ThreadState.hasExited { return }
            // Without /proc the thread could not tell when the program's
            // last thread is gone, and would keep a pthread_exit program
            // alive. A thread that cannot start is not tried again.
            if sm_atomic_cas_u64(&heap.pointee.idle.started, 0, 1) && sm_other_threads_alive() >= 0
                && sm_idle_thread_start(idleReleaseMain) == 0 {
                sm_atomic_store_u64(&heap.pointee.idle.running, 1)
            }
        }
        // The thread is running (this slow path is activity: its first
        // period is not a quiet one), or will never run.
        sm_atomic_store_u64(&heap.pointee.idle.listening, 0)
    }
}

/// The idle-release thread (started by Scavenger.activitySeen): the
/// scavenger's passes the slow paths ring for, and everything back after a
/// period in which the allocator was not used.
private func idleReleaseMain() {
    let heap = Heap.shared
    let period = heap.pointee.config.idleReleaseMilliseconds
    // Runs freed past the dirty limit now wait here for decay_ms.
    heap.pointee.pageHeap.withLock { $0.releasesAtLimit = false }
    let limitCheckPeriod = max(heap.pointee.config.decayMilliseconds / UInt64(PageHeap.epochsPerDecay), Scavenger.pollMilliseconds)
    var periodStart = sm_monotonic_ms()
    var limitCheckedAt = periodStart
    // A pass gave back all there was: the next waits for new activity.
    var releasedSinceActivity = false
    while true {
        if sm_idle_wait(&heap.pointee.idle.bell, UInt32(Scavenger.pollMilliseconds)) {
            // Rung: the program's threads are busy allocating.
            Scavenger.run(heap, onThread: true)
            continue
        }
        if sm_other_threads_alive() == 0 { sm_exit_as_last_thread() }
        let now = sm_monotonic_ms()
        if now &- limitCheckedAt >= limitCheckPeriod {
            limitCheckedAt = now
            Scavenger.decayPastLimit(heap)
        }
        if now &- periodStart < period { continue }
        periodStart = now
        let quiet = sm_atomic_exchange_u64(&heap.pointee.idle.listening, 1) != 0
        if !quiet {
            releasedSinceActivity = false
            continue
        }
        if releasedSinceActivity { continue }
        let released = Scavenger.releaseAll(heap)
        heap.pointee.idle.releasedBytes &+= UInt64(released)
        heap.pointee.idle.passes &+= 1
        releasedSinceActivity = true
    }
}
