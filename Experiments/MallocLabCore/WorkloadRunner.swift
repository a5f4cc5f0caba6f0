// Runs one workload process under one allocator and turns what it printed
// (or how it died) into a Sample. A run that fails its checks, crashes,
// times out, or did not get the allocator it asked for is a failure with a
// message, never a time.
import Foundation
import MallocLabShared

/// One run to do.
public struct RunRequest: Sendable {
    public var workload: WorkloadInfo
    public var allocator: AllocatorSpec
    public var threads: Int
    public var repetition: Int
    public var scale: Double
    public var sampleEvery: Int
    public var seed: UInt64
    public var timeout: Double
    public var perf: Bool

    public init(workload: WorkloadInfo, allocator: AllocatorSpec, threads: Int, repetition: Int, scale: Double,
                sampleEvery: Int = 64, seed: UInt64 = 1, timeout: Double = 120, perf: Bool = false) {
        self.workload = workload
        self.allocator = allocator
        self.threads = threads
        self.repetition = repetition
        self.scale = scale
        self.sampleEvery = sampleEvery
        self.seed = seed
        self.timeout = timeout
        self.perf = perf
    }
}

/// The JSON line malloc-lab-workload prints.
public struct WorkloadOutput: Decodable, Sendable {
    /// The workload prints the same fields the results keep.
    public typealias Latency = LatencySummary
    public var workload: String
    public var threads: Int
    public var ok: Bool
    public var wallNs: Double
    public var ops: Double
    public var baselineRss: Double
    public var peakRss: Double
    public var maxSampledRss: Double
    public var finalRss: Double
    public var idleRss: Double?
    public var livePeak: Double
    public var rssAtLivePeak: Double
    public var mallocNs: Latency?
    public var freeNs: Latency?
    public var timerOverheadNs: Double
    public var mallocProvider: String?
    public var notes: [String: Double]

    enum CodingKeys: String, CodingKey {
        case workload, threads, ok, ops, notes
        case wallNs = "wall_ns"
        case baselineRss = "baseline_rss"
        case peakRss = "peak_rss"
        case maxSampledRss = "max_sampled_rss"
        case finalRss = "final_rss"
        case idleRss = "idle_rss"
        case livePeak = "live_peak"
        case rssAtLivePeak = "rss_at_live_peak"
        case mallocNs = "malloc_ns"
        case freeNs = "free_ns"
        case timerOverheadNs = "timer_overhead_ns"
        case mallocProvider = "malloc_provider"
    }

    public static func parse(_ text: String) -> WorkloadOutput? {
        // The last line that parses (a preloaded allocator may print banners).
        for line in text.split(separator: "\n").reversed() where line.hasPrefix("{") {
            if let data = line.data(using: .utf8), let o = try? JSONDecoder().decode(WorkloadOutput.self, from: data) {
                return o
            }
        }
        return nil
    }
}

public final class WorkloadRunner: @unchecked Sendable {
    public let workloadExecutable: String
    public let scratch: URL
    public let perfPath: String?

    /// `perfPath`: a perf binary to wrap runs with (only when perf works here).
    public init(workloadExecutable: String, scratch: URL? = nil, perfPath: String? = nil) throws {
        self.workloadExecutable = workloadExecutable
        self.perfPath = perfPath
        let dir = scratch ?? FileManager.default.temporaryDirectory.appendingPathComponent("malloc-lab-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        self.scratch = dir
        guard FileManager.default.isExecutableFile(atPath: workloadExecutable) else {
            throw LabError.missing("the workload program is missing: \(workloadExecutable) (build the lab with `swift build -c release --scratch-path .build-lab`; it builds malloc-lab-workload next to malloc-lab)")
        }
    }

    public func cleanUp() { try? FileManager.default.removeItem(at: scratch) }

    public func arguments(for r: RunRequest) -> [String] {
        [r.workload.name, "--threads", String(r.threads), "--scale", String(r.scale),
         "--sample-every", String(r.sampleEvery), "--seed", String(r.seed &+ UInt64(r.repetition))]
    }

    public func run(_ r: RunRequest) -> Sample {
        let seed = r.seed &+ UInt64(r.repetition)
        var sample = Sample(workload: r.workload.name, allocator: r.allocator.id, threads: r.threads,
                            repetition: r.repetition, seed: seed, scale: r.scale, status: .failed)
        guard r.allocator.available else {
            sample.error = "allocator \(r.allocator.id) is not available: \(r.allocator.note)"
            return sample
        }
        let tag = UUID().uuidString.prefix(8)
        let statsPattern = scratch.appendingPathComponent("swiftmalloc-\(tag)-%p.json").path
        let perfOut = scratch.appendingPathComponent("perf-\(tag).txt").path
        var env = ProcessRunner.cleanEnvironment()
        let allocatorEnv = r.allocator.environment.merging(
            r.allocator.kind == .swiftmalloc ? ["SWIFTMALLOC_STATS_FILE": statsPattern] : [:]) { a, _ in a }
        var executable = workloadExecutable
        var args = arguments(for: r)
        if r.perf, let perf = perfPath {
            // perf itself must not run on the allocator: preload only the
            // workload, through env(1).
            executable = perf
            args = ["stat", "-x,", "-o", perfOut, "-e", MachineProbe.perfEvents, "--", "/usr/bin/env"]
                + allocatorEnv.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                + [workloadExecutable] + args
        } else {
            env.merge(allocatorEnv) { _, new in new }
        }
        let outcome: ProcessOutcome
        do {
            outcome = try ProcessRunner.run(executable: executable, arguments: args, environment: env,
                                            scratch: scratch, timeout: r.timeout)
        } catch {
            sample.error = "\(error)"
            return sample
        }
        sample.processSeconds = outcome.seconds
        defer {
            try? FileManager.default.removeItem(atPath: perfOut)
            removeStatsFiles(tag: String(tag))
        }
        if outcome.timedOut {
            sample.status = .timedOut
            sample.error = "killed after the \(Int(r.timeout)) s time limit" + Self.tail(outcome.stderr, prefix: ": ")
            return sample
        }
        if let sig = outcome.signal {
            sample.status = .crashed
            sample.error = "killed by \(ProcessRunner.signalName(sig))" + Self.tail(outcome.stderr, prefix: ": ")
            return sample
        }
        if outcome.exitStatus != 0 {
            sample.status = .failed
            let code = outcome.exitStatus ?? -1
            let why = Self.failureLine(outcome.stderr)
            // perf exits with the child's status; a signal there shows as 128+n.
            if code > 128, r.perf {
                sample.status = .crashed
                sample.error = "killed by \(ProcessRunner.signalName(code - 128))" + (why.map { ": \($0)" } ?? "")
            } else {
                sample.error = why ?? "exit status \(code) with no message"
            }
            return sample
        }
        guard let out = WorkloadOutput.parse(outcome.stdout), out.ok else {
            sample.error = "the workload printed no result line" + Self.tail(outcome.stderr + outcome.stdout, prefix: ": ")
            return sample
        }
        // Did the preload take effect?
        if let provider = out.mallocProvider, !provider.contains(r.allocator.expectedProvider) {
            sample.error = "malloc came from \(provider), not \(r.allocator.expectedProvider): LD_PRELOAD did not take effect"
            return sample
        }
        sample.mallocProvider = out.mallocProvider
        if r.allocator.kind == .swiftmalloc, let stats = readStatsFile(tag: String(tag)) {
            sample.swiftmalloc = stats.numbers
            sample.frontendUsed = stats.frontend
            if let want = r.allocator.frontend, let got = stats.frontend, want != got {
                sample.error = "asked SwiftMalloc for front end \(want) but it used \(got)"
                return sample
            }
        }
        sample.status = .ok
        sample.wallSeconds = out.wallNs / 1e9
        sample.ops = out.ops
        sample.throughput = out.wallNs > 0 ? out.ops / (out.wallNs / 1e9) : nil
        sample.baselineRss = out.baselineRss
        sample.peakRss = out.peakRss
        sample.finalRss = out.finalRss
        sample.idleRss = out.idleRss
        sample.livePeak = out.livePeak > 0 ? out.livePeak : nil
        sample.rssAtLivePeak = out.livePeak > 0 ? out.rssAtLivePeak : nil
        sample.malloc = out.mallocNs
        sample.free = out.freeNs
        sample.timerOverheadNs = out.timerOverheadNs
        sample.notes = out.notes
        if r.perf, perfPath != nil, let text = try? String(contentsOfFile: perfOut, encoding: .utf8) {
            let c = MachineProbe.parsePerf(text)
            sample.perf = c.isEmpty ? nil : c
        }
        return sample
    }

    // MARK: helpers

    /// The workload's "check failed" line, else SwiftMalloc's or another
    /// allocator's message, else the last non-empty stderr line.
    static func failureLine(_ stderr: String) -> String? {
        let lines = stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if let l = lines.last(where: { $0.contains("check failed") }) { return l }
        if let l = lines.last(where: { $0.hasPrefix("malloc-lab-workload:") }) { return l }
        if let l = lines.last(where: { $0.lowercased().contains("swiftmalloc") || $0.contains("free()") || $0.contains("malloc") }) { return l }
        return lines.last
    }

    static func tail(_ text: String, prefix: String) -> String {
        guard let line = failureLine(text) else { return "" }
        return prefix + String(line.prefix(400))
    }

    struct SwiftMallocStats {
        var frontend: String?
        var numbers: [String: Double]
    }

    private func statsFiles(tag: String) -> [URL] {
        let files = (try? FileManager.default.contentsOfDirectory(at: scratch, includingPropertiesForKeys: nil)) ?? []
        return files.filter { $0.lastPathComponent.hasPrefix("swiftmalloc-\(tag)-") }
    }

    private func removeStatsFiles(tag: String) {
        for f in statsFiles(tag: tag) { try? FileManager.default.removeItem(at: f) }
    }

    /// SwiftMalloc's stats file of the workload process (the one whose
    /// `allocations` is largest, should perf or env leave one too).
    private func readStatsFile(tag: String) -> SwiftMallocStats? {
        var best: SwiftMallocStats? = nil
        for f in statsFiles(tag: tag) {
            guard let data = try? Data(contentsOf: f),
                  let obj = try? JSONDecoder().decode([String: FlatJSONValue].self, from: data) else { continue }
            var numbers: [String: Double] = [:]
            var frontend: String? = nil
            for (k, v) in obj {
                switch v {
                case .number(let d): numbers[k] = d
                case .bool(let b): numbers[k] = b ? 1 : 0
                case .string(let str): if k == "frontend" { frontend = str }
                case .other: break
                }
            }
            let s = SwiftMallocStats(frontend: frontend, numbers: numbers)
            if (s.numbers["allocations"] ?? 0) >= (best?.numbers["allocations"] ?? -1) { best = s }
        }
        return best
    }
}

/// A JSON value of a flat object: numbers, booleans, strings (others ignored).
enum FlatJSONValue: Decodable {
    case number(Double), bool(Bool), string(String), other

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .other }
    }
}
