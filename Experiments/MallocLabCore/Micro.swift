// `malloc-lab micro`: the single-threaded malloc/free microbenchmark
// (malloc-lab-micro, Experiments/MallocLabMicro) run under each allocator,
// side by side.
//
// Timing: each repetition runs malloc-lab-micro once per allocator,
// round-robin, the starting allocator rotating each repetition, so that
// noise hits every allocator alike; the table shows medians over
// repetitions, each with its ratio to the fastest peer in the same run.
// Callgrind: instructions in the measured loop only
// (--toggle-collect=mb_measure_*), deterministic whatever the machine's load.
import Foundation

// MARK: - Workloads

/// One workload of malloc-lab-micro with its size: `pairs:16`, or a range
/// of random sizes, `pairs:16-256`.
public struct MicroWorkload: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, CaseIterable, Sendable {
        case pairs
        case batch64FIFO = "batch64-fifo"
        case batch64LIFO = "batch64-lifo"
    }

    public var kind: Kind
    public var minSize: Int
    public var maxSize: Int

    public init(kind: Kind, minSize: Int, maxSize: Int) {
        self.kind = kind
        self.minSize = minSize
        self.maxSize = maxSize
    }

    /// Parses `KIND:SIZE` or `KIND:LO-HI` (sizes from 1 byte).
    public init(parsing spec: String) throws {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
        let kinds = Kind.allCases.map(\.rawValue).joined(separator: ", ")
        guard parts.count == 2, let kind = Kind(rawValue: String(parts[0])) else {
            throw LabError.usage("bad micro workload '\(spec)': write KIND:SIZE or KIND:LO-HI, KIND one of \(kinds)")
        }
        let bounds = parts[1].split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard (1...2).contains(bounds.count), let lo = bounds.first ?? nil, let hi = bounds.last ?? nil,
              lo >= 1, hi >= lo, hi <= 1 << 30 else {
            throw LabError.usage("bad size in micro workload '\(spec)': a byte count, or LO-HI with 1 <= LO <= HI <= 1073741824")
        }
        self.init(kind: kind, minSize: lo, maxSize: hi)
    }

    public var isRandom: Bool { minSize != maxSize }
    /// The size as malloc-lab-micro takes and prints it.
    public var sizeLabel: String { isRandom ? "\(minSize)-\(maxSize)" : "\(minSize)" }
    /// The `-w` argument of malloc-lab-micro.
    public var description: String { "\(kind.rawValue):\(sizeLabel)" }
    /// The table's row title.
    public var title: String { isRandom ? "\(kind.rawValue) \(minSize)–\(maxSize) B random" : "\(kind.rawValue) \(minSize) B" }

    public static let defaults: [MicroWorkload] = [
        MicroWorkload(kind: .pairs, minSize: 16, maxSize: 16),
        MicroWorkload(kind: .pairs, minSize: 64, maxSize: 64),
        MicroWorkload(kind: .pairs, minSize: 256, maxSize: 256),
        MicroWorkload(kind: .batch64FIFO, minSize: 16, maxSize: 16),
        MicroWorkload(kind: .batch64LIFO, minSize: 16, maxSize: 16),
    ]
}

/// Which per-run number over malloc-lab-micro's trials the table shows.
public enum MicroStatistic: String, CaseIterable, Sendable {
    /// The fastest trial by CLOCK_MONOTONIC.
    case wallMin = "wall-min"
    case wallMedian = "wall-median"
    /// By CLOCK_THREAD_CPUTIME_ID: time spent preempted does not count.
    case cpuMin = "cpu-min"
    case cpuMedian = "cpu-median"
}

// MARK: - What malloc-lab-micro prints

/// One `result` line: ns per malloc+free pair (pairs) or per object (batch64).
public struct MicroResult: Equatable, Sendable {
    public var workload: String
    public var ops: Int
    public var wallMin: Double
    public var wallMedian: Double
    public var cpuMin: Double
    public var cpuMedian: Double

    public func value(_ s: MicroStatistic) -> Double {
        switch s {
        case .wallMin: return wallMin
        case .wallMedian: return wallMedian
        case .cpuMin: return cpuMin
        case .cpuMedian: return cpuMedian
        }
    }
}

public struct MicroOutput: Equatable, Sendable {
    public var mallocFrom: String?
    public var compiler: String?
    public var results: [MicroResult] = []

    /// Parses malloc-lab-micro's tab-separated lines; other lines are ignored.
    public static func parse(_ text: String) -> MicroOutput {
        var o = MicroOutput()
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            switch f.first {
            case "malloc_from" where f.count >= 2: o.mallocFrom = f[1]
            case "compiler" where f.count >= 2: o.compiler = f[1]
            case "result" where f.count >= 8:
                guard let ops = Int(f[3]), let v = Double(f[4]), let w = Double(f[5]), let x = Double(f[6]), let y = Double(f[7]) else { continue }
                o.results.append(MicroResult(workload: "\(f[1]):\(f[2])", ops: ops, wallMin: v, wallMedian: w, cpuMin: x, cpuMedian: y))
            default: break
            }
        }
        return o
    }
}

// MARK: - Tables

/// Measurements by workload and allocator (several per cell: one per
/// repetition), rendered as the Markdown tables `malloc-lab micro` prints.
public struct MicroTable: Sendable {
    /// Column order.
    public var allocators: [String]
    /// The allocators the others are measured against.
    public var peers: Set<String>
    /// Row order (workload specs, `pairs:16`).
    public var workloads: [MicroWorkload]
    private var values: [String: [Double]] = [:]

    public init(allocators: [String], peers: Set<String>, workloads: [MicroWorkload]) {
        self.allocators = allocators
        self.peers = peers
        self.workloads = workloads
    }

    static func key(_ w: MicroWorkload, _ a: String) -> String { "\(w)|\(a)" }

    public mutating func add(_ value: Double, workload: MicroWorkload, allocator: String) {
        values[Self.key(workload, allocator), default: []].append(value)
    }

    public func values(_ w: MicroWorkload, _ a: String) -> [Double] { values[Self.key(w, a)] ?? [] }
    public func median(_ w: MicroWorkload, _ a: String) -> Double? { Stats.median(values(w, a)) }

    /// The peer with the lowest median on this row.
    public func fastestPeer(_ w: MicroWorkload) -> (name: String, median: Double)? {
        allocators.filter { peers.contains($0) }
            .compactMap { a in median(w, a).map { (name: a, median: $0) } }
            .min { $0.median < $1.median }
    }

    /// Medians with their ratio to the fastest peer; then a column per
    /// non-peer with that ratio alone, marked against the 1.5× goal when
    /// `goalMarks`.
    public func markdown(unit: String, decimals: Int, goalMarks: Bool) -> String {
        let others = allocators.filter { !peers.contains($0) }
        var o = "| workload (\(unit)) | " + allocators.joined(separator: " | ") + " | fastest peer |"
        o += others.map { " \($0) ÷ fastest peer |" }.joined() + "\n"
        o += "|---|" + String(repeating: "---:|", count: allocators.count) + "---|" + String(repeating: "---:|", count: others.count) + "\n"
        for w in workloads {
            let best = fastestPeer(w)
            var line = "| \(w.title) |"
            for a in allocators {
                guard let m = median(w, a) else { line += " – |"; continue }
                line += " " + String(format: "%.\(decimals)f", m)
                if let best, best.median > 0 { line += String(format: " (%.2f×)", m / best.median) }
                line += " |"
            }
            line += " \(best?.name ?? "–") |"
            for a in others {
                guard let m = median(w, a), let best, best.median > 0 else { line += " – |"; continue }
                let r = m / best.median
                line += String(format: " **%.2f×**", r) + (goalMarks ? (r <= 1.5 ? " ✅" : " ❌") : "") + " |"
            }
            o += line + "\n"
        }
        return o
    }

    /// Minimum and maximum over the repetitions of each cell.
    public func spreadMarkdown(decimals: Int) -> String {
        var o = "| workload: min–max over repetitions | " + allocators.joined(separator: " | ") + " |\n"
        o += "|---|" + String(repeating: "---:|", count: allocators.count) + "\n"
        for w in workloads {
            o += "| \(w.title) |"
            for a in allocators {
                let v = values(w, a)
                if let lo = v.min(), let hi = v.max() {
                    o += " " + String(format: "%.\(decimals)f–%.\(decimals)f", lo, hi) + " |"
                } else {
                    o += " – |"
                }
            }
            o += "\n"
        }
        return o
    }

    /// The project's goals, one line per SwiftMalloc front end: within 1.5×
    /// of the fastest peer on every row; the per-CPU front end also within
    /// 1.1× of tcmalloc.
    public func verdict() -> [String] {
        guard allocators.contains(where: { peers.contains($0) }) else { return [] }
        var lines: [String] = []
        for a in allocators where !peers.contains(a) {
            var worst: (ratio: Double, workload: MicroWorkload)? = nil
            var fails: [String] = []
            for w in workloads {
                guard let m = median(w, a), let best = fastestPeer(w), best.median > 0 else { continue }
                let r = m / best.median
                if worst == nil || r > worst!.ratio { worst = (r, w) }
                if r > 1.5 { fails.append(String(format: "%@ (%.2f×)", w.title, r)) }
            }
            guard let worst else { continue }
            lines.append(fails.isEmpty
                ? String(format: "%@: within 1.5× of the fastest peer on every workload (worst %.2f× on %@). Goal met.", a, worst.ratio, worst.workload.title)
                : "\(a): NOT within 1.5× of the fastest peer on: \(fails.joined(separator: ", ")). Goal not met.")
        }
        let perCPU = "swiftmalloc-percpu"
        if allocators.contains(perCPU), allocators.contains("tcmalloc") {
            var worst: (ratio: Double, workload: MicroWorkload)? = nil
            var fails: [String] = []
            for w in workloads {
                guard let p = median(w, perCPU), let t = median(w, "tcmalloc"), t > 0 else { continue }
                let r = p / t
                if worst == nil || r > worst!.ratio { worst = (r, w) }
                if r > 1.1 { fails.append(String(format: "%@ (%.3f×)", w.title, r)) }
            }
            if let worst {
                lines.append(fails.isEmpty
                    ? String(format: "%@: within 1.1× of tcmalloc on every workload (worst %.3f× on %@). Goal met.", perCPU, worst.ratio, worst.workload.title)
                    : "\(perCPU): NOT within 1.1× of tcmalloc on: \(fails.joined(separator: ", ")). Goal not met.")
            }
        }
        return lines
    }
}

// MARK: - Choosing the allocators

public enum MicroSelection {
    /// The allocators `--only` names (glibc, jemalloc, mimalloc, tcmalloc,
    /// swiftmalloc; swiftmalloc once per front end in `frontends`), in that
    /// order. Peers that are not installed come back in `skipped`; unknown
    /// names and a missing SwiftMalloc library throw.
    public static func choose(only: [String], frontends: [String], known: [AllocatorSpec]) throws
        -> (run: [AllocatorSpec], skipped: [AllocatorSpec]) {
        let order = ["glibc", "jemalloc", "mimalloc", "tcmalloc", "swiftmalloc"]
        let asked = Set(only.map { $0.lowercased() })
        if let bad = asked.first(where: { !order.contains($0) }) {
            throw LabError.usage("unknown allocator '\(bad)' in --only; choose from \(order.joined(separator: ", "))")
        }
        guard !asked.isEmpty else { throw LabError.usage("--only names no allocator") }
        var ids: [String] = []
        for name in order where asked.contains(name) {
            if name == "swiftmalloc" {
                guard !frontends.isEmpty else { throw LabError.usage("--frontends names no front end") }
                ids += frontends.map { "swiftmalloc-\($0)" }
            } else {
                ids.append(name)
            }
        }
        let chosen = try AllocatorDiscovery.select(ids, from: known)
        if let lib = chosen.first(where: { $0.kind == .swiftmalloc && !$0.available }) {
            throw LabError.missing("SwiftMalloc library not found: \(lib.library ?? "?")")
        }
        return (chosen.filter(\.available), chosen.filter { !$0.available })
    }
}

// MARK: - Running

public struct MicroSettings: Sendable {
    public var workloads: [MicroWorkload]
    public var repetitions: Int
    /// Operations per workload per timed run.
    public var ops: Int
    /// Operations per workload under callgrind.
    public var callgrindOps: Int
    /// Operations per timed trial inside a run.
    public var trialOps: Int
    public var statistic: MicroStatistic
    /// The CPU malloc-lab-micro pins itself to; nil: the last one it may
    /// use; -1: no pinning.
    public var cpu: Int?
    /// Time limit for one malloc-lab-micro process, in seconds.
    public var timeout: Double

    public init(workloads: [MicroWorkload] = MicroWorkload.defaults, repetitions: Int = 7, ops: Int = 20_000_000,
                callgrindOps: Int = 200_000, trialOps: Int = 200_000, statistic: MicroStatistic = .wallMin,
                cpu: Int? = nil, timeout: Double = 600) {
        self.workloads = workloads
        self.repetitions = repetitions
        self.ops = ops
        self.callgrindOps = callgrindOps
        self.trialOps = trialOps
        self.statistic = statistic
        self.cpu = cpu
        self.timeout = timeout
    }

    public var workloadArguments: [String] { workloads.flatMap { ["-w", $0.description] } }
}

/// Runs malloc-lab-micro under allocators and checks that each run got the
/// allocator it asked for.
public struct MicroRunner {
    public var executable: String
    public var scratch: URL
    public var settings: MicroSettings

    public init(executable: String, scratch: URL, settings: MicroSettings) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw LabError.missing("\(executable) is missing: build it with `swift build -c release --product malloc-lab-micro` (it is built with malloc-lab)")
        }
        self.executable = executable
        self.scratch = scratch
        self.settings = settings
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    /// A clean environment with the allocator's settings; `library`
    /// replaces the preloaded library (callgrind's stripped copy).
    func environment(_ a: AllocatorSpec, library: String? = nil, statsFile: String? = nil) -> [String: String] {
        var env = ProcessRunner.cleanEnvironment()
        env.merge(a.environment) { _, new in new }
        if let library { env["LD_PRELOAD"] = library }
        if let statsFile { env["SWIFTMALLOC_STATS_FILE"] = statsFile }
        return env
    }

    /// The front end SwiftMalloc says it ran (its SWIFTMALLOC_STATS_FILE).
    static func frontEnd(inStatsFile path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
              let obj = try? JSONDecoder().decode([String: FlatJSONValue].self, from: data),
              case .string(let fe) = obj["frontend"] else { return nil }
        return fe
    }

    func failure(_ a: AllocatorSpec, _ o: ProcessOutcome, _ what: String) -> LabError {
        let why: String
        if o.timedOut { why = "killed after the \(Int(settings.timeout)) s time limit" }
        else if let s = o.signal { why = "killed by \(ProcessRunner.signalName(s))" }
        else { why = "exit status \(o.exitStatus ?? -1)" }
        let err = WorkloadRunner.failureLine(o.stderr).map { ": \($0)" } ?? ""
        return LabError.io("\(a.id): \(what) failed (\(why))\(err)")
    }

    /// One short run under `a`: malloc must resolve to its library and, for
    /// SwiftMalloc, the front end must be the one asked for. Returns the
    /// line for the report, and the compiler malloc-lab-micro was built with.
    public func verify(_ a: AllocatorSpec) throws -> (line: String, compiler: String?) {
        let stats = scratch.appendingPathComponent("verify-\(a.id).json").path
        try? FileManager.default.removeItem(atPath: stats)
        defer { try? FileManager.default.removeItem(atPath: stats) }
        let o = try ProcessRunner.run(executable: executable, arguments: ["-n", "1000", "-w", "pairs:16"],
                                      environment: environment(a, statsFile: a.kind == .swiftmalloc ? stats : nil),
                                      scratch: scratch, timeout: settings.timeout)
        guard o.succeeded else { throw failure(a, o, "the check run") }
        let out = MicroOutput.parse(o.stdout)
        guard let from = out.mallocFrom else { throw LabError.io("\(a.id): malloc-lab-micro did not say where malloc comes from") }
        try checkProvider(a, from: from, expected: a.expectedProvider)
        var line = "\(a.id): malloc from \(from)"
        if let want = a.frontend {
            let got = Self.frontEnd(inStatsFile: stats)
            guard got == want else {
                throw LabError.io("\(a.id): SwiftMalloc reports front end \(got ?? "?"), not \(want)")
            }
            line += ", front end \(want) confirmed by SWIFTMALLOC_STATS_FILE"
        }
        return (line, out.compiler)
    }

    func checkProvider(_ a: AllocatorSpec, from: String, expected: String) throws {
        let resolved = URL(fileURLWithPath: from).resolvingSymlinksInPath().lastPathComponent
        let want = a.library.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().lastPathComponent } ?? expected
        guard from.contains(expected) || resolved == want else {
            throw LabError.io("\(a.id): malloc resolved to \(from), not \(a.library ?? "the C library")")
        }
    }

    /// One timed run of every workload under `a`.
    public func time(_ a: AllocatorSpec) throws -> [MicroResult] {
        var args = ["-q", "-n", String(settings.ops), "-t", String(settings.trialOps)]
        if let cpu = settings.cpu { args += ["-c", String(cpu)] }
        let o = try ProcessRunner.run(executable: executable, arguments: args + settings.workloadArguments,
                                      environment: environment(a), scratch: scratch, timeout: settings.timeout)
        guard o.succeeded else { throw failure(a, o, "a timed run") }
        let results = MicroOutput.parse(o.stdout).results
        guard results.count == settings.workloads.count else {
            throw LabError.io("\(a.id): malloc-lab-micro printed \(results.count) results for \(settings.workloads.count) workloads")
        }
        return results
    }

    public struct TimedRun: Sendable {
        /// The chosen statistic of every run.
        public var table: MicroTable
        /// Every result line, for --out.
        public var raw: [(allocator: String, repetition: Int, result: MicroResult)]

        /// Tab-separated: allocator, workload, size, wall_min, wall_median,
        /// cpu_min, cpu_median (ns per operation), repetition (from 1).
        public var rawTSV: String {
            raw.map { row in
                let r = row.result
                let kindAndSize = r.workload.split(separator: ":", maxSplits: 1).map(String.init)
                return ([row.allocator] + kindAndSize + [r.wallMin, r.wallMedian, r.cpuMin, r.cpuMedian].map { String(format: "%.3f", $0) }
                        + [String(row.repetition + 1)]).joined(separator: "\t")
            }.joined(separator: "\n") + "\n"
        }
    }

    /// The timed comparison: `repetitions` rounds, each running every
    /// allocator once, the first one rotating. `progress` gets
    /// (done, total, allocator, repetition) before each run.
    public func timeAll(_ allocators: [AllocatorSpec], progress: (Int, Int, String, Int) -> Void = { _, _, _, _ in }) throws -> TimedRun {
        var run = TimedRun(table: MicroTable(allocators: allocators.map(\.id),
                                             peers: Set(allocators.filter { $0.kind != .swiftmalloc }.map(\.id)),
                                             workloads: settings.workloads),
                           raw: [])
        let n = allocators.count
        for r in 0..<settings.repetitions {
            for k in 0..<n {
                let a = allocators[(r + k) % n]
                progress(r * n + k, settings.repetitions * n, a.id, r)
                for (w, result) in zip(settings.workloads, try time(a)) {
                    run.table.add(result.value(settings.statistic), workload: w, allocator: a.id)
                    run.raw.append((a.id, r, result))
                }
            }
        }
        return run
    }

    // MARK: Callgrind

    public struct CallgrindRun: Sendable {
        public var table: MicroTable
        /// Where malloc came from, per allocator measured.
        public var loaded: [String]
        /// The allocators left out, and why (a front end valgrind cannot run).
        public var notMeasured: [String]
        /// callgrind's output files, by allocator and workload.
        public var files: [String: URL]
    }

    /// valgrind 3.19 cannot read the DWARF 5 debug info that Swift's clang
    /// emits ("unhandled dwarf2 abbrev form code 0x25"), so callgrind runs a
    /// copy of libSwiftMalloc.so without debug sections (symbols kept).
    func strippedCopy(of library: String) throws -> String {
        let dir = scratch.appendingPathComponent("nodebug")
        let copy = dir.appendingPathComponent(URL(fileURLWithPath: library).lastPathComponent).path
        if FileManager.default.fileExists(atPath: copy) { return copy }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        guard let objcopy = ProcessRunner.which("objcopy") else { throw LabError.missing("objcopy not found (Debian: binutils)") }
        let o = try ProcessRunner.run(executable: objcopy, arguments: ["--strip-debug", library, copy],
                                      environment: ProcessRunner.cleanEnvironment(), scratch: scratch, timeout: 120)
        guard o.succeeded else { throw LabError.io("objcopy --strip-debug \(library) failed: \(o.stderr)") }
        return copy
    }

    /// Instructions per operation in the measured loop, per allocator and
    /// workload, under `valgrind --tool=callgrind`; callgrind's files go to
    /// `outDirectory`.
    public func callgrind(_ allocators: [AllocatorSpec], valgrind: String, outDirectory: URL,
                          progress: (String) -> Void = { _ in }) throws -> CallgrindRun {
        try FileManager.default.createDirectory(at: outDirectory, withIntermediateDirectories: true)
        var table = MicroTable(allocators: [], peers: Set(allocators.filter { $0.kind != .swiftmalloc }.map(\.id)),
                               workloads: settings.workloads)
        var loaded: [String] = []
        var notMeasured: [String] = []
        var files: [String: URL] = [:]
        allocatorLoop: for a in allocators {
            let library = try a.kind == .swiftmalloc ? a.library.map(strippedCopy) : a.library
            var from: String? = nil
            for w in settings.workloads {
                progress("callgrind: \(a.id) \(w)")
                let out = outDirectory.appendingPathComponent("callgrind.\(a.id).\(w.kind.rawValue).\(w.sizeLabel).out")
                let stats = scratch.appendingPathComponent("cgstats.json").path
                try? FileManager.default.removeItem(atPath: stats)
                let o = try ProcessRunner.run(
                    executable: valgrind,
                    arguments: ["--tool=callgrind", "--callgrind-out-file=\(out.path)", "--toggle-collect=mb_measure_*",
                                executable, "-c", "-1", "-n", String(settings.callgrindOps), "-w", w.description],
                    environment: environment(a, library: library, statsFile: a.kind == .swiftmalloc ? stats : nil),
                    scratch: scratch, timeout: settings.timeout)
                guard o.succeeded else { throw failure(a, o, "callgrind") }
                let parsed = MicroOutput.parse(o.stdout)
                guard let provider = parsed.mallocFrom else { throw LabError.io("\(a.id): no malloc_from line under callgrind") }
                try checkProvider(a, from: provider, expected: library.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "libc.so")
                if let want = a.frontend, let got = Self.frontEnd(inStatsFile: stats), got != want {
                    // e.g. percpu: valgrind does not implement rseq, so
                    // SwiftMalloc falls back to another front end, whose
                    // counts these would be.
                    notMeasured.append("\(a.id): not measured: under valgrind SwiftMalloc ran front end '\(got)' instead")
                    try? FileManager.default.removeItem(at: out)
                    continue allocatorLoop
                }
                guard let ir = Self.collectedInstructions(o.stderr), let ops = parsed.results.first?.ops, ops > 0 else {
                    throw LabError.io("\(a.id): callgrind gave no instruction count for \(w)")
                }
                from = provider
                files["\(a.id)|\(w)"] = out
                table.add(ir / Double(ops), workload: w, allocator: a.id)
            }
            table.allocators.append(a.id)
            if let from { loaded.append("\(a.id): malloc from \(from)") }
        }
        return CallgrindRun(table: table, loaded: loaded, notMeasured: notMeasured, files: files)
    }

    /// The count in callgrind's "==pid== Collected : N" line.
    public static func collectedInstructions(_ stderr: String) -> Double? {
        for line in stderr.split(separator: "\n") where line.contains("Collected :") {
            if let last = line.split(separator: " ").last, let v = Double(last) { return v }
        }
        return nil
    }

    /// callgrind_annotate's exclusive instruction counts by function: the
    /// first `limit` lines, Swift names demangled when swift-demangle is
    /// installed.
    public static func annotate(_ file: URL, limit: Int = 15) -> String? {
        guard let annotate = ProcessRunner.which("callgrind_annotate"),
              let text = ProcessRunner.capture(annotate, ["--inclusive=no", "--auto=no", file.path], timeout: 60) else { return nil }
        // The table follows the "Ir  file:function" header and its rule,
        // and ends at the next blank line or rule.
        var lines: [String] = []
        var state = 0  // 0: before the header, 1: at its rule, 2: in the table
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            switch state {
            case 0: if line.contains("file:function") { state = 1 }
            case 1: state = 2
            default:
                if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("---") || lines.count == limit {
                    return lines.isEmpty ? nil : lines.joined(separator: "\n")
                }
                lines.append(demangled(String(line)))
            }
        }
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }

    /// A callgrind_annotate line ("count (pct)  file:function [object]")
    /// with a Swift function's name demangled, when swift-demangle is
    /// installed.
    static func demangled(_ line: String) -> String {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 3, let colon = fields[2].lastIndex(of: ":") else { return line }
        let symbol = String(fields[2][fields[2].index(after: colon)...])
        guard symbol.hasPrefix("$s") || symbol.hasPrefix("$e"), let demangle = ProcessRunner.which("swift-demangle"),
              let plain = ProcessRunner.capture(demangle, ["--simplified", "--compact", symbol]), !plain.isEmpty else { return line }
        return line.replacingOccurrences(of: symbol, with: plain)
    }
}

// MARK: - Report

public enum MicroReport {
    /// The Debian package's installed version, or nil.
    static func packageVersion(_ package: String) -> String? {
        guard let dpkg = ProcessRunner.which("dpkg-query") else { return nil }
        return ProcessRunner.capture(dpkg, ["-W", "-f=${Version}", package]).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Machine facts, the benchmark's compiler, the peers' versions, what
    /// was run and what was skipped.
    public static func header(machine: MachineFacts, compiler: String?, allocators: [AllocatorSpec],
                              skipped: [AllocatorSpec], run: String, createdAt: String, command: String) -> String {
        var o = "# malloc-lab micro\n\nCreated \(createdAt) by `\(command)`.\n\n## Machine\n\n"
        o += ReportRenderer.machineTable(machine)
        o += "\n- Benchmark: malloc-lab-micro, compiled by \(compiler ?? "an unknown compiler") with -O2 -fno-builtin\n"
        let peers = allocators.filter { $0.kind == .peer }
        if !peers.isEmpty {
            o += "- Peers: " + peers.map { p in "\(p.id) \(p.debianPackage.flatMap(packageVersion) ?? "(version unknown)")" }
                .joined(separator: ", ") + "\n"
        }
        o += "- Run: \(run)\n"
        if !skipped.isEmpty { o += "- Skipped: " + skipped.map { "\($0.id) (\($0.note))" }.joined(separator: "; ") + "\n" }
        return o + "\n"
    }

    public static func timingRunLine(_ s: MicroSettings) -> String {
        "\(s.repetitions) repetitions, round-robin across allocators (one process per allocator per repetition, the first "
            + "rotating); \(s.ops) ops per workload per run after a warm-up of ops/10, in trials of \(s.trialOps) ops; "
            + "statistic per run: \(s.statistic.rawValue); pinned CPU: \(s.cpu.map { $0 < 0 ? "none" : String($0) } ?? "the last allowed")"
    }

    public static func timing(_ run: MicroRunner.TimedRun, settings s: MicroSettings, loaded: [String]) -> String {
        var o = "Loaded libraries (checked with dladdr(malloc) inside malloc-lab-micro):\n\n"
        o += loaded.map { "- \($0)\n" }.joined() + "\n"
        o += "## Results: ns per malloc+free (\(s.statistic.rawValue) per run, median of \(s.repetitions) runs)\n\n"
        o += "pairs: ns per malloc+free pair. batch64: ns per object (64 mallocs then 64 frees, divided by 64). "
        o += "Ratio in parentheses: to the fastest peer on that row; lower is better. ✅ = within the 1.5× goal.\n\n"
        o += run.table.markdown(unit: "ns", decimals: 2, goalMarks: true) + "\n"
        o += run.table.spreadMarkdown(decimals: 2) + "\n"
        let verdict = run.table.verdict()
        if !verdict.isEmpty {
            o += "## Acceptance (SwiftMalloc within 1.5× of the fastest peer; per-CPU within 1.1× of tcmalloc)\n\n"
            o += verdict.map { "- \($0)\n" }.joined()
        }
        return o
    }

    public static func callgrind(_ run: MicroRunner.CallgrindRun, annotations: [(title: String, text: String)]) -> String {
        var o = "Loaded libraries under valgrind (checked with dladdr(malloc) inside malloc-lab-micro):\n\n"
        o += (run.loaded + run.notMeasured).map { "- \($0)\n" }.joined() + "\n"
        o += "## Instructions per malloc+free (callgrind, Ir in the measured loop)\n\n"
        o += "pairs: instructions per malloc+free pair; batch64: per object. The counts include the benchmark's own loop "
        o += "and the two PLT jumps, the same for every allocator. Ratio in parentheses: to the peer with the fewest instructions.\n\n"
        o += run.table.markdown(unit: "Ir", decimals: 1, goalMarks: false)
        for a in annotations {
            o += "\n### \(a.title): exclusive instructions by function\n\n```\n\(a.text)\n```\n"
        }
        return o
    }
}
