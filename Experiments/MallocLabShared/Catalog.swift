// The workloads the lab knows, shared by the lab (which plans runs and labels
// reports) and the workload process (which runs them). No Foundation here:
// the workload process stays small.

/// One workload: what it does, what it checks, and which thread counts the
/// quick and full matrices run it at.
public struct WorkloadInfo: Sendable, Hashable, Codable {
    /// The name on the command line (`malloc-lab-workload NAME`).
    public let name: String
    /// A short title for tables.
    public let title: String
    /// The allocation pattern, one or two sentences.
    public let pattern: String
    /// What the workload verifies before it reports a time.
    public let check: String
    /// What one unit of `ops` is (throughput is ops per second).
    public let opsUnit: String
    /// Thread counts of `compare --quick`.
    public let quickThreads: [Int]
    /// Thread counts of a full `compare`.
    public let fullThreads: [Int]
    /// Whether the workload takes the general `--threads` list (false: it
    /// keeps its own counts, e.g. single-threaded churn, oversubscription).
    public let followsThreadOption: Bool
    /// Smallest thread count it accepts; thread counts are rounded up to a
    /// multiple of this (producer/consumer runs in pairs).
    public let threadMultiple: Int
    /// Whether malloc/free latency is sampled (false where the allocations
    /// come from the Swift runtime, not from timed calls).
    public let samplesLatency: Bool

    public init(name: String, title: String, pattern: String, check: String, opsUnit: String,
                quickThreads: [Int], fullThreads: [Int], followsThreadOption: Bool,
                threadMultiple: Int = 1, samplesLatency: Bool = true) {
        self.name = name
        self.title = title
        self.pattern = pattern
        self.check = check
        self.opsUnit = opsUnit
        self.quickThreads = quickThreads
        self.fullThreads = fullThreads
        self.followsThreadOption = followsThreadOption
        self.threadMultiple = threadMultiple
        self.samplesLatency = samplesLatency
    }

    /// The thread counts to run: the workload's own for quick/full, or the
    /// requested list adapted to what the workload accepts.
    public func threadCounts(quick: Bool, requested: [Int]?) -> [Int] {
        guard let requested, !requested.isEmpty, followsThreadOption else {
            return quick ? quickThreads : fullThreads
        }
        var seen: [Int] = []
        for t in requested where t > 0 {
            let m = max(threadMultiple, 1)
            let adapted = max(m, ((t + m - 1) / m) * m)
            if !seen.contains(adapted) { seen.append(adapted) }
        }
        return seen.sorted()
    }
}

public enum WorkloadCatalog {
    public static let all: [WorkloadInfo] = [
        WorkloadInfo(
            name: "churn",
            title: "Single-thread churn",
            pattern: "One thread replaces random slots of an 8192-slot table: free the old object, malloc a new one of 8–520 bytes (small sizes most likely).",
            check: "Every object carries a unique tag in its first and last word, checked before it is freed.",
            opsUnit: "malloc+free pairs",
            quickThreads: [1], fullThreads: [1], followsThreadOption: false),
        WorkloadInfo(
            name: "larson",
            title: "Larson-style server",
            pattern: "Threads swap new objects (8–400 bytes) into random slots of one shared table and free what they take out, so most frees are of another thread's objects.",
            check: "A 16-bit tag travels with each slot's pointer and must match the object's header and tail when it is freed.",
            opsUnit: "malloc+free pairs",
            quickThreads: [1, 2, 8], fullThreads: [1, 2, 4, 8, 16], followsThreadOption: true),
        WorkloadInfo(
            name: "prodcons",
            title: "Producer/consumer",
            pattern: "Threads in pairs: a producer mallocs objects (24–256 bytes) and passes them through a ring; the consumer frees them (every free is remote).",
            check: "The consumer checks each object's sequence number arrives intact and in order.",
            opsUnit: "objects passed",
            quickThreads: [2, 8], fullThreads: [2, 4, 8, 16], followsThreadOption: true, threadMultiple: 2),
        WorkloadInfo(
            name: "threadchurn",
            title: "Thread churn",
            pattern: "Waves of short-lived threads (N at a time): each allocates 128 objects, frees the survivors its predecessor left, keeps a quarter for its successor and exits.",
            check: "Survivors are checked by the next thread; every thread checks its own objects' tags.",
            opsUnit: "malloc+free pairs",
            quickThreads: [2, 8], fullThreads: [1, 2, 4, 8], followsThreadOption: true),
        WorkloadInfo(
            name: "oversub",
            title: "Oversubscription",
            pattern: "Many more threads than CPUs: each allocates bursts of 256 objects (16–512 bytes) and frees them; RSS is read while all threads sit idle with their caches full.",
            check: "Each burst's tags are checked before it is freed.",
            opsUnit: "malloc+free pairs",
            quickThreads: [64], fullThreads: [16, 32, 64, 128], followsThreadOption: true),
        WorkloadInfo(
            name: "falseshare",
            title: "False sharing / locality",
            pattern: "The main thread allocates small objects and hands one to each thread, which writes it, frees it, then repeatedly allocates its own 24-byte object, increments it 500 times, and frees it (cache-scratch: an allocator that recycles the handed object keeps threads writing to one cache line).",
            check: "Every object's counter must equal the number of increments its thread made.",
            opsUnit: "object writes",
            quickThreads: [2, 8], fullThreads: [2, 4, 8], followsThreadOption: true),
        WorkloadInfo(
            name: "fragmentation",
            title: "Fragmentation (drifting sizes)",
            pattern: "A live set of about 8 MiB per thread whose size mix drifts from 16 B to 16 KiB and back over eight phases; RSS is compared with live bytes at each phase end.",
            check: "Every object's tag is checked when it is freed.",
            opsUnit: "malloc+free pairs",
            quickThreads: [1], fullThreads: [1, 2], followsThreadOption: true),
        WorkloadInfo(
            name: "largerealloc",
            title: "Large blocks and realloc growth",
            pattern: "Blocks of 64 KiB–4 MiB allocated, touched on every page and freed; then 16 buffers grown by realloc round-robin from 16 bytes to 4 MiB.",
            check: "Page stamps of large blocks and every byte pattern written before a realloc are checked after it.",
            opsUnit: "malloc/realloc calls",
            quickThreads: [1, 2], fullThreads: [1, 2, 4], followsThreadOption: true),
        WorkloadInfo(
            name: "cycle",
            title: "Cycling a large working set",
            pattern: "Each thread allocates 48 MiB of 8 KiB blocks, touching every page, then frees them all, round after round: an allocator that gives freed pages back to the OS faults them in again on the next round.",
            check: "Every block's tag is checked before it is freed.",
            opsUnit: "mallocs",
            quickThreads: [1], fullThreads: [1, 2], followsThreadOption: true),
        WorkloadInfo(
            name: "swiftprog",
            title: "A real Swift program",
            pattern: "Swift classes, arrays, dictionaries and strings: generate text, count words in a dictionary, build a class-based search tree, sort records, round-trip strings; finished trees are handed to another thread to free.",
            check: "Word counts sum to the number of words, the tree is ordered and agrees with the dictionary, round trips are equal, and all threads compute the same checksum.",
            opsUnit: "program iterations",
            quickThreads: [1, 2], fullThreads: [1, 2, 4], followsThreadOption: true, samplesLatency: false),
    ]

    public static func named(_ name: String) -> WorkloadInfo? {
        all.first { $0.name == name }
    }

    public static var names: [String] { all.map(\.name) }
}

/// SwiftMalloc's front ends, in the order reports show them.
public enum FrontEnds {
    public static let all = ["percpu", "thread", "arenas", "global"]
}
