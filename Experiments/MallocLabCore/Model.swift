// The result model: what one run measured (Sample), what the repetitions of
// one (workload, allocator, threads) cell add up to (CellSummary), and the
// whole file a comparison writes (ResultsFile). All Codable; JSON keys are
// the property names.
import Foundation
import MallocLabShared

public enum RunStatus: String, Codable, Sendable {
    /// The workload finished and passed its own checks.
    case ok
    /// It exited with an error: its checks failed, or the setup was wrong.
    case failed
    /// It was killed by a signal (SIGSEGV, SIGABRT, ...).
    case crashed
    /// It ran past the time limit and was killed.
    case timedOut = "timed_out"

    public var isOK: Bool { self == .ok }
    public var label: String {
        switch self {
        case .ok: return "ok"
        case .failed: return "FAILED"
        case .crashed: return "CRASHED"
        case .timedOut: return "TIMED OUT"
        }
    }
}

/// Percentiles of the sampled calls of one kind, in nanoseconds (each
/// includes the timer's own cost, `Sample.timerOverheadNs`).
public struct LatencySummary: Codable, Equatable, Sendable {
    public var samples: Int
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var mean: Double

    public init(samples: Int, p50: Double, p90: Double, p99: Double, p999: Double, max: Double, mean: Double) {
        self.samples = samples
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
        self.max = max
        self.mean = mean
    }
}

/// Hardware counters from `perf stat`; nil fields were not supported.
public struct PerfCounters: Codable, Equatable, Sendable {
    public var instructions: Double?
    public var cycles: Double?
    public var cacheMisses: Double?

    public init(instructions: Double? = nil, cycles: Double? = nil, cacheMisses: Double? = nil) {
        self.instructions = instructions
        self.cycles = cycles
        self.cacheMisses = cacheMisses
    }

    public var isEmpty: Bool { instructions == nil && cycles == nil && cacheMisses == nil }
}

/// One run: one process, one workload under one allocator at one thread count.
public struct Sample: Codable, Equatable, Sendable {
    public var workload: String
    public var allocator: String
    public var threads: Int
    public var repetition: Int
    public var seed: UInt64
    public var scale: Double
    public var status: RunStatus
    /// Why it did not succeed (the workload's own message where it gave one).
    public var error: String?
    /// Timed region, from the threads' start to the last one's finish.
    public var wallSeconds: Double?
    public var ops: Double?
    /// ops / wallSeconds.
    public var throughput: Double?
    public var baselineRss: Double?
    /// VmHWM at the end: the process's peak resident set.
    public var peakRss: Double?
    public var finalRss: Double?
    /// RSS while all threads were finished but alive (oversubscription).
    public var idleRss: Double?
    /// Largest sum of live bytes the workload tracked, and RSS at that moment.
    public var livePeak: Double?
    public var rssAtLivePeak: Double?
    public var malloc: LatencySummary?
    public var free: LatencySummary?
    public var timerOverheadNs: Double?
    public var perf: PerfCounters?
    /// The object that defined `malloc` in the workload process.
    public var mallocProvider: String?
    /// SwiftMalloc's own statistics (its stats file at exit), numbers only.
    public var swiftmalloc: [String: Double]?
    /// The front end SwiftMalloc reported using.
    public var frontendUsed: String?
    /// Workload-specific measurements.
    public var notes: [String: Double]
    /// The whole process, start to exit (includes start-up).
    public var processSeconds: Double?

    public init(workload: String, allocator: String, threads: Int, repetition: Int, seed: UInt64, scale: Double,
                status: RunStatus, error: String? = nil, wallSeconds: Double? = nil, ops: Double? = nil,
                throughput: Double? = nil, baselineRss: Double? = nil, peakRss: Double? = nil, finalRss: Double? = nil,
                idleRss: Double? = nil, livePeak: Double? = nil, rssAtLivePeak: Double? = nil,
                malloc: LatencySummary? = nil, free: LatencySummary? = nil, timerOverheadNs: Double? = nil,
                perf: PerfCounters? = nil, mallocProvider: String? = nil, swiftmalloc: [String: Double]? = nil,
                frontendUsed: String? = nil, notes: [String: Double] = [:], processSeconds: Double? = nil) {
        self.workload = workload
        self.allocator = allocator
        self.threads = threads
        self.repetition = repetition
        self.seed = seed
        self.scale = scale
        self.status = status
        self.error = error
        self.wallSeconds = wallSeconds
        self.ops = ops
        self.throughput = throughput
        self.baselineRss = baselineRss
        self.peakRss = peakRss
        self.finalRss = finalRss
        self.idleRss = idleRss
        self.livePeak = livePeak
        self.rssAtLivePeak = rssAtLivePeak
        self.malloc = malloc
        self.free = free
        self.timerOverheadNs = timerOverheadNs
        self.perf = perf
        self.mallocProvider = mallocProvider
        self.swiftmalloc = swiftmalloc
        self.frontendUsed = frontendUsed
        self.notes = notes
        self.processSeconds = processSeconds
    }

    /// Bytes of RSS above the baseline per live byte at the live peak
    /// (1.0 = no overhead); nil without live-byte tracking, or when the live
    /// peak is under 1 MiB (then page-granular RSS says little about it).
    public var rssOverLive: Double? {
        guard let live = livePeak, live >= 1_048_576, let rss = rssAtLivePeak, let base = baselineRss else { return nil }
        return max(rss - base, 0) / live
    }
}

/// Machine facts recorded with every result.
public struct MachineFacts: Codable, Equatable, Sendable {
    public var cpuModel: String
    public var logicalCpus: Int
    public var kernel: String
    public var glibc: String
    public var hostname: String
    /// Whether rseq works for this process (glibc registered it, or the
    /// system call exists), and where that came from.
    public var rseqAvailable: Bool?
    public var rseqNote: String
    public var glibcRseqSize: Int?
    /// getauxval(AT_RSEQ_FEATURE_SIZE): >= 28 means the kernel fills mm_cid.
    public var rseqFeatureSize: Int?
    public var mmCidAvailable: Bool?
    /// The SwiftMalloc library's git revision (short hash, "-dirty" when its
    /// sources have uncommitted changes).
    public var gitRevision: String?
    public var libraryPath: String
    public var libraryModified: String?
    public var perfAvailable: Bool
    public var perfNote: String
    public var swiftVersion: String?
    /// 1-minute load average when the runs started and ended (other
    /// processes competing for the CPUs make results noisier).
    public var loadAverageStart: Double?
    public var loadAverageEnd: Double?

    public init(cpuModel: String, logicalCpus: Int, kernel: String, glibc: String, hostname: String,
                rseqAvailable: Bool?, rseqNote: String, glibcRseqSize: Int?, rseqFeatureSize: Int?,
                mmCidAvailable: Bool?, gitRevision: String?, libraryPath: String, libraryModified: String?,
                perfAvailable: Bool, perfNote: String, swiftVersion: String?) {
        self.cpuModel = cpuModel
        self.logicalCpus = logicalCpus
        self.kernel = kernel
        self.glibc = glibc
        self.hostname = hostname
        self.rseqAvailable = rseqAvailable
        self.rseqNote = rseqNote
        self.glibcRseqSize = glibcRseqSize
        self.rseqFeatureSize = rseqFeatureSize
        self.mmCidAvailable = mmCidAvailable
        self.gitRevision = gitRevision
        self.libraryPath = libraryPath
        self.libraryModified = libraryModified
        self.perfAvailable = perfAvailable
        self.perfNote = perfNote
        self.swiftVersion = swiftVersion
    }
}

/// How a comparison was run.
public struct RunSettings: Codable, Equatable, Sendable {
    public var quick: Bool
    public var repetitions: Int
    public var scale: Double
    public var sampleEvery: Int
    public var seed: UInt64
    public var threads: [Int]?
    public var timeoutSeconds: Double
    public var perf: Bool
    /// Allocator settings inherited from the lab's environment (MALLOC_CONF,
    /// GLIBC_TUNABLES, SWIFTMALLOC_*, ...), passed to every run.
    public var environment: [String: String]?

    public init(quick: Bool, repetitions: Int, scale: Double, sampleEvery: Int, seed: UInt64,
                threads: [Int]?, timeoutSeconds: Double, perf: Bool, environment: [String: String]? = nil) {
        self.quick = quick
        self.repetitions = repetitions
        self.scale = scale
        self.sampleEvery = sampleEvery
        self.seed = seed
        self.threads = threads
        self.timeoutSeconds = timeoutSeconds
        self.perf = perf
        self.environment = environment
    }
}

/// The repetitions of one (workload, allocator, threads) cell.
public struct CellSummary: Codable, Equatable, Sendable {
    public var workload: String
    public var allocator: String
    public var threads: Int
    /// ok only when every repetition was; otherwise the first failure's status.
    public var status: RunStatus
    public var okRuns: Int
    public var failedRuns: Int
    public var errors: [String]
    public var wallSeconds: Spread?
    public var throughput: Spread?
    public var peakRss: Spread?
    public var finalRss: Spread?
    public var idleRss: Spread?
    public var rssOverLive: Spread?
    /// Medians over repetitions of each run's percentile.
    public var mallocP50: Double?
    public var mallocP99: Double?
    public var mallocP999: Double?
    public var mallocMax: Double?
    public var freeP50: Double?
    public var freeP99: Double?
    public var freeP999: Double?
    public var freeMax: Double?
    public var instructions: Double?
    public var cycles: Double?
    public var cacheMisses: Double?
    public var frontendUsed: String?
    /// SwiftMalloc: fast-path hits / (hits + misses), and rseq aborts (medians).
    public var fastPathHitRatio: Double?
    public var rseqAborts: Double?
    /// SwiftMalloc: contended lock acquisitions (the lock was held and the
    /// acquirer spun or slept) per million workload operations, per lock
    /// tier (`LockTiers`; the stats file's lock_contended_*), medians.
    public var lockWaitsPerMillionOps: [String: Double]? = nil
    /// Medians of the workload's own notes.
    public var notes: [String: Double]

    public var isOK: Bool { status == .ok }
}

/// SwiftMalloc's lock tiers, as its stats file names them
/// (lock_acquisitions_<tier>, lock_contended_<tier>), with a label.
public enum LockTiers {
    public static let all: [(key: String, label: String)] = [
        ("central", "central"), ("transfer", "transfer"), ("page_heap", "page heap"), ("arenas", "arenas"),
        ("global", "global"), ("registry", "registry"), ("metadata", "metadata"),
    ]

    /// Contended acquisitions per million operations of one run, per tier;
    /// nil for a run without lock counters (another allocator, or a
    /// SwiftMalloc older than stats version 3) or without an op count.
    public static func waitsPerMillionOps(_ s: Sample) -> [String: Double]? {
        guard let stats = s.swiftmalloc, let ops = s.ops, ops > 0 else { return nil }
        var out: [String: Double] = [:]
        for t in all {
            if let waits = stats["lock_contended_\(t.key)"] { out[t.key] = waits / ops * 1e6 }
        }
        return out.isEmpty ? nil : out
    }
}

/// Everything a comparison writes to results.json.
public struct ResultsFile: Codable, Equatable, Sendable {
    public static let currentSchema = "malloc-lab/1"
    public var schema: String
    public var command: String
    public var createdAt: String
    public var durationSeconds: Double
    public var settings: RunSettings
    public var machine: MachineFacts
    public var allocators: [AllocatorSpec]
    public var workloads: [WorkloadInfo]
    public var samples: [Sample]
    public var cells: [CellSummary]

    public init(command: String, createdAt: String, durationSeconds: Double, settings: RunSettings,
                machine: MachineFacts, allocators: [AllocatorSpec], workloads: [WorkloadInfo],
                samples: [Sample], cells: [CellSummary]? = nil) {
        self.schema = Self.currentSchema
        self.command = command
        self.createdAt = createdAt
        self.durationSeconds = durationSeconds
        self.settings = settings
        self.machine = machine
        self.allocators = allocators
        self.workloads = workloads
        self.samples = samples
        self.cells = cells ?? Summarizer.cells(from: samples)
    }

    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try e.encode(self)
    }

    public static func decode(_ data: Data) throws -> ResultsFile {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try d.decode(ResultsFile.self, from: data)
    }
}

/// Turns samples into cells.
public enum Summarizer {
    public static func cells(from samples: [Sample]) -> [CellSummary] {
        var order: [String] = []
        var groups: [String: [Sample]] = [:]
        for s in samples {
            let key = "\(s.workload)\u{1}\(s.allocator)\u{1}\(s.threads)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(s)
        }
        return order.map { summarize(groups[$0]!) }
    }

    /// Per tier, the median over runs of contended acquisitions per million ops.
    static func lockWaits(_ ok: [Sample], status: RunStatus) -> [String: Double]? {
        guard status.isOK else { return nil }
        let perRun = ok.compactMap(LockTiers.waitsPerMillionOps)
        guard !perRun.isEmpty else { return nil }
        var out: [String: Double] = [:]
        for t in LockTiers.all {
            if let m = Stats.median(perRun.compactMap { $0[t.key] }) { out[t.key] = m }
        }
        return out.isEmpty ? nil : out
    }

    public static func summarize(_ runs: [Sample]) -> CellSummary {
        let first = runs[0]
        let ok = runs.filter { $0.status.isOK }
        let bad = runs.filter { !$0.status.isOK }
        let status = bad.first?.status ?? .ok
        func spread(_ f: (Sample) -> Double?) -> Spread? {
            guard status.isOK else { return nil }
            return Spread(ok.compactMap(f))
        }
        func med(_ f: (Sample) -> Double?) -> Double? {
            guard status.isOK else { return nil }
            return Stats.median(ok.compactMap(f))
        }
        var notes: [String: Double] = [:]
        if status.isOK {
            let keys = Set(ok.flatMap { $0.notes.keys })
            for k in keys { notes[k] = Stats.median(ok.compactMap { $0.notes[k] }) }
        }
        return CellSummary(
            workload: first.workload, allocator: first.allocator, threads: first.threads,
            status: status, okRuns: ok.count, failedRuns: bad.count,
            errors: Array(Set(bad.compactMap { $0.error })).sorted(),
            wallSeconds: spread { $0.wallSeconds }, throughput: spread { $0.throughput },
            peakRss: spread { $0.peakRss }, finalRss: spread { $0.finalRss }, idleRss: spread { $0.idleRss },
            rssOverLive: spread { $0.rssOverLive },
            mallocP50: med { $0.malloc?.p50 }, mallocP99: med { $0.malloc?.p99 },
            mallocP999: med { $0.malloc?.p999 }, mallocMax: med { $0.malloc?.max },
            freeP50: med { $0.free?.p50 }, freeP99: med { $0.free?.p99 },
            freeP999: med { $0.free?.p999 }, freeMax: med { $0.free?.max },
            instructions: med { $0.perf?.instructions }, cycles: med { $0.perf?.cycles },
            cacheMisses: med { $0.perf?.cacheMisses },
            frontendUsed: ok.compactMap(\.frontendUsed).first,
            fastPathHitRatio: med { s in
                guard let h = s.swiftmalloc?["fast_path_hits"], let m = s.swiftmalloc?["fast_path_misses"], h + m > 0 else { return nil }
                return h / (h + m)
            },
            rseqAborts: med { $0.swiftmalloc?["rseq_aborts"] },
            lockWaitsPerMillionOps: lockWaits(ok, status: status),
            notes: notes)
    }
}
