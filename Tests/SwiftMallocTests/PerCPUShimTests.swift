// Tests of the C shim's restartable sequences, run in the test process on
// this machine's CPUs (these do not use the allocator; they drive the shim's
// per-CPU operations on slabs and counters of their own).
import Foundation
import SwiftMallocShims
import XCTest

@testable import SwiftMallocCoreTestable

/// Runs `body(index)` on `count` threads of its own (not a pool: the point is
/// to have many more threads than CPUs) and waits for all of them.
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    var threads: [Thread] = []
    for i in 0..<count {
        group.enter()
        let thread = Thread {
            body(i)
            group.leave()
        }
        thread.stackSize = 1 << 20
        threads.append(thread)
    }
    for thread in threads { thread.start() }
    group.wait()
}

/// A set of per-CPU slabs for one class (class 1), outside the allocator.
final class TestSlabs: @unchecked Sendable {
    let slabCount: UInt32
    let base: UnsafeMutablePointer<CChar>
    let begin = UInt16(SM_SLAB_FIRST_SLOT)
    let capacity: UInt16

    init(slabCount: Int, capacity: UInt16) {
        self.slabCount = UInt32(slabCount)
        self.capacity = capacity
        let bytes = slabCount << Int(SM_SLAB_SHIFT)
        base = sm_os_map(bytes)!.assumingMemoryBound(to: CChar.self)
        for s in 0..<slabCount {
            sm_slab_init_list(base + (s << Int(SM_SLAB_SHIFT)), 1, begin, capacity)
        }
    }

    /// Everything left in the slabs (after all threads are done).
    func remaining() -> [UInt] {
        var result: [UInt] = []
        for s in 0..<Int(slabCount) {
            let slab = base + (s << Int(SM_SLAB_SHIFT))
            let slots = UnsafeMutableRawPointer(slab).assumingMemoryBound(to: UInt.self)
            for i in Int(sm_slab_begin(slab, 1))..<Int(sm_slab_current(slab, 1)) { result.append(slots[i]) }
        }
        return result
    }
}

final class PerCPUShimTests: XCTestCase {
    override func setUp() {
        super.setUp()
        // Builds the allocator's heap in this process, which probes rseq.
        _ = Heap.ensureInitialized()
    }

    func testRseqIsAvailableAndReportsAnId() throws {
        try XCTSkipUnless(sm_rseq_mode() != Int32(SM_RSEQ_NONE), "rseq is not available on this kernel")
        let id = sm_rseq_current_id()
        XCTAssertGreaterThanOrEqual(id, 0)
        XCTAssertLessThan(Int(id), Int(sm_online_cpus()))
    }

    func testPerCPUCountersFromSixteenThreadsSumExactly() throws {
        try XCTSkipUnless(sm_rseq_mode() != Int32(SM_RSEQ_NONE), "rseq is not available on this kernel")
        let cpus = Int(sm_online_cpus())
        let strideShift: UInt32 = 3  // one counter per 64-byte line
        let counters = UnsafeMutablePointer<UInt64>.allocate(capacity: cpus << Int(strideShift))
        counters.initialize(repeating: 0, count: cpus << Int(strideShift))
        defer { counters.deallocate() }
        let perThread = 200_000
        let abortTotal = UnsafeMutablePointer<UInt64>.allocate(capacity: 16)
        abortTotal.initialize(repeating: 0, count: 16)
        defer { abortTotal.deallocate() }
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        failures.initialize(repeating: 0, count: 16)
        defer { failures.deallocate() }
        let countersAddress = UInt(bitPattern: counters)
        let abortsAddress = UInt(bitPattern: abortTotal)
        let failuresAddress = UInt(bitPattern: failures)
        runThreads(16) { t in
            let counters = UnsafeMutablePointer<UInt64>(bitPattern: countersAddress)!
            let aborts = UnsafeMutablePointer<UInt64>(bitPattern: abortsAddress)! + t
            let failed = UnsafeMutablePointer<Int>(bitPattern: failuresAddress)! + t
            for _ in 0..<perThread {
                if !sm_percpu_add(counters, UInt32(cpus), strideShift, 1, aborts) { failed.pointee += 1 }
            }
        }
        var sum: UInt64 = 0
        for c in 0..<cpus { sum += counters[c << Int(strideShift)] }
        XCTAssertEqual((0..<16).reduce(0) { $0 + failures[$1] }, 0)
        XCTAssertEqual(sum, UInt64(16 * perThread), "per-CPU increments lost or doubled")
    }

    /// 64 threads on this machine's few CPUs push 10 million distinct objects
    /// through per-CPU slabs and pop them again: every object must come out
    /// exactly once, and preemption inside critical sections must have made
    /// the kernel abort some of them (counted by the abort path).
    func testSixtyFourThreadsPushAndPopTenMillionObjectsExactlyOnce() throws {
        try XCTSkipUnless(sm_rseq_mode() != Int32(SM_RSEQ_NONE), "rseq is not available on this kernel")
        let threads = 64
        let total = 10_000_000
        let perThread = total / threads
        let slabs = TestSlabs(slabCount: Int(sm_online_cpus()), capacity: 1024)
        // seen[id] counts how often object id came out.
        let seen = UnsafeMutablePointer<UInt8>.allocate(capacity: total)
        seen.initialize(repeating: 0, count: total)
        defer { seen.deallocate() }
        let aborts = UnsafeMutablePointer<UInt64>.allocate(capacity: threads)
        aborts.initialize(repeating: 0, count: threads)
        defer { aborts.deallocate() }
        let seenAddress = UInt(bitPattern: seen)
        let abortsAddress = UInt(bitPattern: aborts)
        let lock = NSLock()
        nonisolated(unsafe) var singlePops: UInt64 = 0
        // Signals abort critical sections too: a storm of them makes sure
        // the abort path runs even if no thread is preempted mid-section.
        let storm = SignalStorm(threads: threads)
        storm.start()
        defer { storm.stop() }
        runThreads(threads) { t in
            storm.register(t)
            defer { storm.unregister(t) }
            let seen = UnsafeMutablePointer<UInt8>(bitPattern: seenAddress)!
            let myAborts = UnsafeMutablePointer<UInt64>(bitPattern: abortsAddress)! + t
            var out = [UnsafeMutableRawPointer?](repeating: nil, count: 16)
            var batchIn = [UnsafeMutableRawPointer?](repeating: nil, count: 8)
            var popped: [Int] = []
            popped.reserveCapacity(4096)
            func note(_ p: UnsafeMutableRawPointer?) { popped.append(Int(bitPattern: p) >> 4) }
            var next = t * perThread
            let end = next + perThread
            var step = 0
            var mySinglePops: UInt64 = 0
            while next < end {
                step += 1
                // Objects are ids shifted left, never NULL.
                if step % 5 == 0 && end - next >= 8 {
                    for k in 0..<8 { batchIn[k] = UnsafeMutableRawPointer(bitPattern: (next + k) << 4 | 8) }
                    let pushed = batchIn.withUnsafeBufferPointer {
                        sm_percpu_push_batch(slabs.base, slabs.slabCount, 1, $0.baseAddress, 8, myAborts)
                    }
                    next += Int(pushed)
                } else if sm_percpu_push(slabs.base, slabs.slabCount, 1,
                                         UnsafeMutableRawPointer(bitPattern: next << 4 | 8), myAborts) {
                    next += 1
                }
                // Take objects out at a slightly lower rate, in single pops and batches.
                if step % 3 != 0 {
                    if let p = sm_percpu_pop(slabs.base, slabs.slabCount, 1, myAborts) { note(p); mySinglePops += 1 }
                } else {
                    let n = out.withUnsafeMutableBufferPointer {
                        sm_percpu_pop_batch(slabs.base, slabs.slabCount, 1, $0.baseAddress, 4, myAborts)
                    }
                    for k in 0..<Int(n) { note(out[k]) }
                }
                if popped.count >= 4096 {
                    lock.lock()
                    for id in popped { seen[id] &+= 1 }
                    lock.unlock()
                    popped.removeAll(keepingCapacity: true)
                }
            }
            lock.lock()
            for id in popped { seen[id] &+= 1 }
            singlePops += mySinglePops
            lock.unlock()
        }
        for value in slabs.remaining() { seen[Int(value >> 4)] &+= 1 }
        var missing = 0
        var duplicated = 0
        for id in 0..<total {
            if seen[id] == 0 { missing += 1 } else if seen[id] > 1 { duplicated += 1 }
        }
        XCTAssertEqual(missing, 0, "objects lost")
        XCTAssertEqual(duplicated, 0, "objects that came out twice")
        // Each list word counts the single pops committed on its CPU: aborted
        // ones never, batch pops not at all.
        let counted = (0..<Int(slabs.slabCount)).reduce(UInt64(0)) { $0 + sm_slab_pops(slabs.base + ($1 << Int(SM_SLAB_SHIFT)), 1) }
        XCTAssertEqual(counted, singlePops, "pops counted in the slabs' list words")
        let abortCount = (0..<threads).reduce(UInt64(0)) { $0 + aborts[$1] }
        print("rseq aborts over \(total) pushes: \(abortCount)")
        XCTAssertGreaterThan(abortCount, 0, "no critical section was ever aborted: the abort path went untested")
    }
}

/// Sends SIGURG (with a handler that does nothing) to registered threads
/// every 50 microseconds while running.
final class SignalStorm: @unchecked Sendable {
    private let lock = NSLock()
    private var targets: [pthread_t?]
    private var running = true
    private var thread: Thread?

    init(threads: Int) {
        targets = Array(repeating: nil, count: threads)
        signal(SIGURG) { _ in }
    }

    func register(_ index: Int) { lock.lock(); targets[index] = pthread_self(); lock.unlock() }
    func unregister(_ index: Int) { lock.lock(); targets[index] = nil; lock.unlock() }

    func start() {
        let t = Thread { [self] in
            while true {
                lock.lock()
                if !running { lock.unlock(); return }
                for case let target? in targets { pthread_kill(target, SIGURG) }
                lock.unlock()
                usleep(50)
            }
        }
        thread = t
        t.start()
    }

    func stop() { lock.lock(); running = false; lock.unlock() }
}
