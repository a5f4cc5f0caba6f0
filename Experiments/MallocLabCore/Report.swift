// report.md, the charts, and the files of an output directory.
import Foundation
import MallocLabShared

/// Indexed view of a results file for rendering.
public struct ReportData {
    public let results: ResultsFile
    public let cells: [CellSummary]
    /// Allocators in the order of the results file, only those with runs.
    public let allocators: [String]
    /// Workloads in catalog order (unknown ones after), only those with runs.
    public let workloads: [String]
    private let index: [String: CellSummary]

    public init(_ results: ResultsFile) {
        self.results = results
        // Always recomputed from samples: a hand-edited or older cells array
        // cannot disagree with the runs.
        cells = Summarizer.cells(from: results.samples)
        var idx: [String: CellSummary] = [:]
        for c in cells { idx[Self.key(c.workload, c.allocator, c.threads)] = c }
        index = idx
        let present = Set(results.samples.map(\.allocator))
        var a = results.allocators.map(\.id).filter { present.contains($0) }
        for s in results.samples where !a.contains(s.allocator) { a.append(s.allocator) }
        allocators = a
        let presentW = Set(results.samples.map(\.workload))
        var w = WorkloadCatalog.names.filter { presentW.contains($0) }
        for s in results.samples where !w.contains(s.workload) { w.append(s.workload) }
        workloads = w
    }

    static func key(_ w: String, _ a: String, _ t: Int) -> String { "\(w)|\(a)|\(t)" }

    public func cell(_ workload: String, _ allocator: String, _ threads: Int) -> CellSummary? {
        index[Self.key(workload, allocator, threads)]
    }

    public func threads(of workload: String) -> [Int] {
        Array(Set(cells.filter { $0.workload == workload }.map(\.threads))).sorted()
    }

    public func info(_ workload: String) -> WorkloadInfo? {
        results.workloads.first { $0.name == workload } ?? WorkloadCatalog.named(workload)
    }

    public var failedCells: [CellSummary] { cells.filter { !$0.isOK } }
}

// MARK: - Charts

public struct ChartFile {
    public var name: String
    public var title: String
    public var chart: Chart
}

public enum ChartBuilder {
    static func label(_ id: String) -> String { id }

    public static func charts(for data: ReportData) -> [ChartFile] {
        var out: [ChartFile] = []
        for w in data.workloads {
            let ts = data.threads(of: w)
            guard let info = data.info(w), !ts.isEmpty else { continue }
            let tpSeries = data.allocators.map { a in
                ChartSeries(id: a, label: label(a),
                            values: ts.map { data.cell(w, a, $0)?.throughput?.median },
                            failed: ts.map { t in data.cell(w, a, t).map { !$0.isOK } ?? false })
            }
            let rssSeries = data.allocators.map { a in
                ChartSeries(id: a, label: label(a),
                            values: ts.map { data.cell(w, a, $0)?.peakRss?.median },
                            failed: ts.map { t in data.cell(w, a, t).map { !$0.isOK } ?? false })
            }
            let style: Chart.Style = ts.count > 1 ? .line : .bars
            let groups = ts.map { "\($0) thread\($0 == 1 ? "" : "s")" }
            out.append(ChartFile(name: "throughput-\(w).svg", title: "\(info.title): throughput",
                                 chart: Chart(title: "\(info.title): throughput", subtitle: "median of repetitions; \(info.opsUnit) per second; higher is better",
                                              xLabel: style == .line ? "threads" : "", yLabel: "\(info.opsUnit) / s",
                                              xValues: ts.map(Double.init), groups: groups, series: tpSeries, style: style)))
            out.append(ChartFile(name: "rss-\(w).svg", title: "\(info.title): peak RSS",
                                 chart: Chart(title: "\(info.title): peak RSS", subtitle: "median VmHWM of the workload process; lower is better",
                                              xLabel: style == .line ? "threads" : "", yLabel: "peak RSS",
                                              xValues: ts.map(Double.init), groups: groups, series: rssSeries, style: style, yFormat: .bytes)))
            if info.samplesLatency, let t = ts.last {
                let names = ["malloc p50", "malloc p99", "malloc p99.9", "malloc max", "free p50", "free p99", "free p99.9", "free max"]
                let latSeries = data.allocators.map { a -> ChartSeries in
                    let c = data.cell(w, a, t)
                    let vals: [Double?] = [c?.mallocP50, c?.mallocP99, c?.mallocP999, c?.mallocMax, c?.freeP50, c?.freeP99, c?.freeP999, c?.freeMax]
                    let failed = c.map { !$0.isOK } ?? false
                    return ChartSeries(id: a, label: label(a), values: vals, failed: Array(repeating: failed, count: vals.count))
                }
                out.append(ChartFile(name: "latency-\(w).svg", title: "\(info.title): latency percentiles at \(t) threads",
                                     chart: Chart(title: "\(info.title): malloc and free latency, \(t) thread\(t == 1 ? "" : "s")",
                                                  subtitle: "sampled calls (every Nth), median over repetitions; includes ~\(overheadText(data)) of timer cost; lower is better",
                                                  xLabel: "percentile", yLabel: "latency", groups: names, series: latSeries,
                                                  style: .bars, logY: true, yFormat: .nanoseconds)))
            }
        }
        // Overview: throughput relative to glibc at each workload's largest thread count.
        if let base = data.allocators.first(where: { $0 == "glibc" }) ?? data.allocators.first {
            var groups: [String] = []
            var perAlloc: [String: [Double?]] = [:]
            var perAllocFailed: [String: [Bool]] = [:]
            var rssAlloc: [String: [Double?]] = [:]
            for w in data.workloads {
                guard let t = data.threads(of: w).last else { continue }
                groups.append("\(w)·\(t)")
                let b = data.cell(w, base, t)
                for a in data.allocators {
                    let c = data.cell(w, a, t)
                    var v: Double? = nil
                    if let x = c?.throughput?.median, let y = b?.throughput?.median, y > 0 { v = x / y }
                    perAlloc[a, default: []].append(v)
                    perAllocFailed[a, default: []].append(c.map { !$0.isOK } ?? false)
                    var r: Double? = nil
                    if let x = c?.peakRss?.median, let y = b?.peakRss?.median, y > 0 { r = x / y }
                    rssAlloc[a, default: []].append(r)
                }
            }
            let series = data.allocators.map { ChartSeries(id: $0, label: label($0), values: perAlloc[$0] ?? [], failed: perAllocFailed[$0]) }
            out.insert(ChartFile(name: "overview-throughput.svg", title: "Throughput relative to \(base)",
                                 chart: Chart(title: "Throughput relative to \(base)", subtitle: "each workload at its largest thread count (workload·threads); higher is better",
                                              xLabel: "workload · threads", yLabel: "throughput / \(base)", groups: groups, series: series,
                                              style: .bars, logY: true, yFormat: .ratio, referenceY: 1)), at: 0)
            let rseries = data.allocators.map { ChartSeries(id: $0, label: label($0), values: rssAlloc[$0] ?? [], failed: perAllocFailed[$0]) }
            out.insert(ChartFile(name: "overview-peak-rss.svg", title: "Peak RSS relative to \(base)",
                                 chart: Chart(title: "Peak RSS relative to \(base)", subtitle: "each workload at its largest thread count; lower is better",
                                              xLabel: "workload · threads", yLabel: "peak RSS / \(base)", groups: groups, series: rseries,
                                              style: .bars, logY: true, yFormat: .ratio, referenceY: 1)), at: 1)
        }
        return out
    }

    static func overheadText(_ data: ReportData) -> String {
        let o = Stats.median(data.results.samples.compactMap(\.timerOverheadNs)) ?? 0
        return Fmt.ns(o)
    }
}

// MARK: - The findings

public struct Finding {
    public var workload: String
    public var threads: Int
    public var winner: String
    public var winnerThroughput: Double
    public var runnerUp: String?
    public var overRunnerUp: Double?
    public var withinNoise: Bool
    public var overGlibc: Double?
    public var bestSwiftMalloc: String?
    public var swiftMallocOverBestPeer: Double?
    public var bestPeer: String?
    public var smallestRss: String?
    public var rssRatioLargestToSmallest: Double?
}

public enum Findings {
    /// Winner per workload at its largest thread count.
    public static func perWorkload(_ d: ReportData) -> [Finding] {
        var out: [Finding] = []
        for w in d.workloads {
            guard let t = d.threads(of: w).last else { continue }
            let ok = d.allocators.compactMap { d.cell(w, $0, t) }.filter { $0.isOK && $0.throughput != nil }
            let ranked = ok.sorted { $0.throughput!.median > $1.throughput!.median }
            guard let best = ranked.first else { continue }
            var f = Finding(workload: w, threads: t, winner: best.allocator, winnerThroughput: best.throughput!.median,
                            withinNoise: false)
            if ranked.count > 1 {
                let second = ranked[1]
                f.runnerUp = second.allocator
                f.overRunnerUp = best.throughput!.median / second.throughput!.median
                f.withinNoise = second.throughput!.max >= best.throughput!.min
            }
            if let g = d.cell(w, "glibc", t), g.isOK, let gt = g.throughput?.median, gt > 0 {
                f.overGlibc = best.throughput!.median / gt
            }
            let sm = ranked.first { $0.allocator.hasPrefix("swiftmalloc-") }
            let peer = ranked.first { !$0.allocator.hasPrefix("swiftmalloc-") && $0.allocator != "glibc" }
            f.bestSwiftMalloc = sm?.allocator
            f.bestPeer = peer?.allocator
            if let sm, let peer { f.swiftMallocOverBestPeer = sm.throughput!.median / peer.throughput!.median }
            let byRss = ok.filter { $0.peakRss != nil }.sorted { $0.peakRss!.median < $1.peakRss!.median }
            if let small = byRss.first, let large = byRss.last, small.peakRss!.median > 0 {
                f.smallestRss = small.allocator
                f.rssRatioLargestToSmallest = large.peakRss!.median / small.peakRss!.median
            }
            out.append(f)
        }
        return out
    }

    /// Geometric mean over cells of a/b of throughput, with the cells used.
    public static func pairwise(_ d: ReportData, _ a: String, _ b: String) -> (geomean: Double, cells: [(String, Int, Double)])? {
        var ratios: [(String, Int, Double)] = []
        for w in d.workloads {
            for t in d.threads(of: w) {
                guard let x = d.cell(w, a, t), let y = d.cell(w, b, t), x.isOK, y.isOK,
                      let xt = x.throughput?.median, let yt = y.throughput?.median, xt > 0, yt > 0 else { continue }
                ratios.append((w, t, xt / yt))
            }
        }
        guard !ratios.isEmpty else { return nil }
        let g = exp(ratios.map { log($0.2) }.reduce(0, +) / Double(ratios.count))
        return (g, ratios)
    }

    /// Geometric mean of throughput relative to `base` per allocator, over
    /// the cells where both succeeded.
    public static func overall(_ d: ReportData, base: String) -> [(String, Double, Int)] {
        d.allocators.compactMap { a in
            guard a != base, let p = pairwise(d, a, base) else { return nil }
            return (a, p.geomean, p.cells.count)
        }.sorted { $0.1 > $1.1 }
    }
}

// MARK: - report.md

public enum ReportRenderer {
    public static func markdown(_ d: ReportData, charts: [ChartFile]) -> String {
        let r = d.results
        var o = "# malloc-lab report\n\n"
        o += "Created \(r.createdAt) by `\(r.command)` in \(Fmt.seconds(r.durationSeconds)). "
        o += "\(r.samples.count) runs: \(d.workloads.count) workloads × \(d.allocators.count) allocators, "
        o += "\(r.settings.repetitions) repetition\(r.settings.repetitions == 1 ? "" : "s") each"
        o += r.settings.quick ? " (quick matrix: small iteration counts, so expect more noise than a full run).\n\n" : ".\n\n"

        // Summary
        o += "## Summary\n\n"
        o += summary(d)

        // Machine
        o += "\n## Machine\n\n" + machineTable(r.machine)
        o += "\n| allocator | library | front end |\n| --- | --- | --- |\n"
        for a in r.allocators where d.allocators.contains(a.id) {
            o += "| \(a.id) | \(a.library.map { "`\($0)`" } ?? "glibc (none preloaded)") | \(a.frontend ?? "—") |\n"
        }

        // Charts overview
        if let ov = charts.first(where: { $0.name == "overview-throughput.svg" }) {
            o += "\n## Overview\n\n![\(ov.title)](charts/\(ov.name))\n"
        }
        if let ov = charts.first(where: { $0.name == "overview-peak-rss.svg" }) {
            o += "\n![\(ov.title)](charts/\(ov.name))\n"
        }

        // Per workload
        for w in d.workloads {
            guard let info = d.info(w) else { continue }
            o += "\n## \(info.title) (`\(w)`)\n\n"
            o += "\(info.pattern) Check: \(info.check) Throughput unit: \(info.opsUnit) per second.\n\n"
            o += workloadTable(d, w)
            let names = ["throughput-\(w).svg", "rss-\(w).svg", "latency-\(w).svg"]
            for n in names {
                if let c = charts.first(where: { $0.name == n }) { o += "\n![\(c.title)](charts/\(c.name))\n" }
            }
        }

        // SwiftMalloc internals
        let smCells = d.cells.filter { $0.allocator.hasPrefix("swiftmalloc-") && $0.isOK }
        if !smCells.isEmpty {
            o += "\n## SwiftMalloc internals\n\nFrom the library's own statistics file (SWIFTMALLOC_STATS_FILE), medians over repetitions. Hit ratio: small allocations served by the front end's cache.\n\n"
            o += "| workload | threads | " + d.allocators.filter { $0.hasPrefix("swiftmalloc-") }.map { "\($0) hits / rseq aborts" }.joined(separator: " | ") + " |\n"
            o += "| --- | ---: |" + String(repeating: " ---: |", count: d.allocators.filter { $0.hasPrefix("swiftmalloc-") }.count) + "\n"
            for w in d.workloads {
                for t in d.threads(of: w) {
                    o += "| \(w) | \(t) |"
                    for a in d.allocators where a.hasPrefix("swiftmalloc-") {
                        if let c = d.cell(w, a, t), c.isOK {
                            let hit = c.fastPathHitRatio.map { String(format: "%.1f%%", $0 * 100) } ?? "—"
                            let ab = c.rseqAborts.map { Fmt.si($0) } ?? "—"
                            o += " \(hit) / \(ab) |"
                        } else {
                            o += " \(d.cell(w, a, t)?.status.label ?? "—") |"
                        }
                    }
                    o += "\n"
                }
            }
        }

        o += lockContentionSection(d)

        // perf
        o += "\n## Hardware counters\n\n"
        if r.machine.perfAvailable && r.settings.perf {
            o += "`perf stat -e \(MachineProbe.perfEvents)` per run (whole process, including start-up), medians, per op.\n\n"
            o += "| workload | threads | allocator | instructions/op | cycles/op | cache misses/op |\n| --- | ---: | --- | ---: | ---: | ---: |\n"
            for c in d.cells where c.isOK {
                let ops = Stats.median(r.samples.filter { $0.workload == c.workload && $0.allocator == c.allocator && $0.threads == c.threads && $0.status.isOK }.compactMap(\.ops)) ?? 0
                func per(_ v: Double?) -> String { guard let v, ops > 0 else { return "n/a" }; return String(format: "%.1f", v / ops) }
                o += "| \(c.workload) | \(c.threads) | \(c.allocator) | \(per(c.instructions)) | \(per(c.cycles)) | \(per(c.cacheMisses)) |\n"
            }
        } else {
            o += "Not recorded: \(r.machine.perfNote). The `instructions`, `cycles` and `cache_misses` fields of results.json and results.csv are null.\n"
        }

        // Failures
        o += "\n## Failures\n\n"
        let failed = d.failedCells
        if failed.isEmpty {
            o += "None: every run passed its workload's checks.\n"
        } else {
            o += "These cells report no time: a run failed its checks, crashed, or timed out (remaining repetitions of a failed cell are skipped).\n\n| workload | threads | allocator | status | message |\n| --- | ---: | --- | --- | --- |\n"
            for c in failed {
                o += "| \(c.workload) | \(c.threads) | \(c.allocator) | **\(c.status.label)** | \(cellText(c.errors.first ?? "")) |\n"
            }
        }

        // Method
        o += "\n## How this was measured\n\n"
        o += "- Each run is its own process (`malloc-lab-workload`), started with `LD_PRELOAD` set to the allocator's library (nothing for glibc) and, for SwiftMalloc, `SWIFTMALLOC_FRONTEND`. The process checks which library defines `malloc`; a run where the preload did not take effect fails.\n"
        o += "- Wall time: from the release of all threads (a barrier) to the last thread's finish. Throughput = operations / wall time. Median over repetitions; \"range\" is (max − min) / median.\n"
        o += "- RSS: VmHWM (peak) and VmRSS after the workload freed everything (final). \"RSS/live\" is (RSS − baseline RSS) / live bytes at the moment the live bytes peaked; 1.0 would be no overhead. Live bytes are the bytes the workload asked for and has not freed.\n"
        o += "- Latency: every \(r.settings.sampleEvery)th malloc and free (every call for large blocks) timed with fenced TSC reads, recorded into an HdrHistogram (3 significant digits). Each sample includes the timer's own cost, a median of \(ChartBuilder.overheadText(d)) here. Values are medians over repetitions of each run's percentile.\n"
        o += "- Runs are ordered repetition by repetition, so slow drifts of the machine spread over all allocators. Seeds: \(r.settings.seed) + repetition; every allocator sees the same operation sequence.\n"
        if let env = r.settings.environment, !env.isEmpty {
            o += "- Allocator settings inherited from the environment, passed to every run: " + env.keys.sorted().map { "`\($0)=\(env[$0]!)`" }.joined(separator: ", ") + ".\n"
        }
        o += "- Scale \(r.settings.scale)\(r.settings.quick ? " (quick)" : ""); time limit \(Int(r.settings.timeoutSeconds)) s per run.\n"
        o += "\nData: `results.json` (everything, including per-run samples), `results.csv` (one row per run). Re-render with `malloc-lab report DIR`.\n"
        return o
    }

    /// SwiftMalloc's contended lock acquisitions per million operations,
    /// per tier, beside throughput: the numbers that explain a change in
    /// throughput under threads. Tiers that never waited in any cell are
    /// left out; empty when no run has lock counters.
    static func lockContentionSection(_ d: ReportData) -> String {
        let cells = d.cells.filter { $0.allocator.hasPrefix("swiftmalloc-") && $0.isOK && $0.lockWaitsPerMillionOps != nil }
        guard !cells.isEmpty else { return "" }
        let tiers = LockTiers.all.filter { t in cells.contains { ($0.lockWaitsPerMillionOps?[t.key] ?? 0) > 0 } }
        var o = "\n### Lock contention\n\n"
        o += "Contended lock acquisitions (the lock was held: the caller spun or slept) per million operations, "
        o += "per lock tier, from the stats file's `lock_contended_*` (whole process, medians over repetitions).\n\n"
        if tiers.isEmpty {
            o += "No SwiftMalloc run waited for a lock.\n"
            return o
        }
        o += "| workload | threads | allocator | throughput | waits/Mop | " + tiers.map(\.label).joined(separator: " | ") + " |\n"
        o += "| --- | ---: | --- | ---: | ---: |" + String(repeating: " ---: |", count: tiers.count) + "\n"
        func rate(_ v: Double?) -> String {
            guard let v else { return "—" }
            return v == 0 ? "0" : Fmt.si(v)
        }
        for w in d.workloads {
            for t in d.threads(of: w) {
                for a in d.allocators where a.hasPrefix("swiftmalloc-") {
                    guard let c = d.cell(w, a, t), c.isOK, let waits = c.lockWaitsPerMillionOps else { continue }
                    let tp = c.throughput.map { Fmt.si($0.median) } ?? "—"
                    let total = LockTiers.all.compactMap { waits[$0.key] }.reduce(0, +)
                    o += "| \(w) | \(t) | \(a) | \(tp) | \(rate(total)) |"
                    o += tiers.map { " \(rate(waits[$0.key])) |" }.joined() + "\n"
                }
            }
        }
        return o
    }

    /// The machine facts recorded with every result, as a Markdown table.
    public static func machineTable(_ m: MachineFacts) -> String {
        var o = "| fact | value |\n| --- | --- |\n"
        o += "| CPU | \(cellText(m.cpuModel)) × \(m.logicalCpus) logical CPUs |\n"
        o += "| kernel | \(cellText(m.kernel)) |\n"
        o += "| C library | \(cellText(m.glibc)) |\n"
        o += "| rseq | \(m.rseqAvailable.map { $0 ? "available" : "not available" } ?? "unknown") — \(cellText(m.rseqNote)) |\n"
        o += "| mm_cid | \(m.mmCidAvailable.map { $0 ? "available" : "not available" } ?? "unknown") (AT_RSEQ_FEATURE_SIZE = \(m.rseqFeatureSize.map(String.init) ?? "?")) |\n"
        o += "| SwiftMalloc | `\(cellText(m.libraryPath))`, git \(m.gitRevision ?? "unknown")\(m.libraryModified.map { ", built \($0)" } ?? "") |\n"
        o += "| perf counters | \(m.perfAvailable ? "yes" : "no") — \(cellText(m.perfNote)) |\n"
        if let sv = m.swiftVersion { o += "| Swift | \(cellText(sv)) |\n" }
        if let a = m.loadAverageStart {
            o += "| load average (1 min) | \(String(format: "%.2f", a)) at the start, \(m.loadAverageEnd.map { String(format: "%.2f", $0) } ?? "?") at the end, on \(m.logicalCpus) CPUs\(max(a, m.loadAverageEnd ?? 0) > Double(m.logicalCpus) * 0.75 ? " — other work competed for the CPUs: expect noisy numbers" : "") |\n"
        }
        o += "| host | \(cellText(m.hostname)) |\n"
        return o
    }

    static func cellText(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    static func workloadTable(_ d: ReportData, _ w: String) -> String {
        guard let info = d.info(w) else { return "" }
        let noteKeys: [String: [(String, String, ValueFormat)]] = [
            "oversub": [("idle_rss_per_thread_bytes", "idle RSS/thread", .bytes)],
            "fragmentation": [("worst_phase_rss_over_live", "worst phase RSS/live", .ratio),
                              ("after_free90_rss_over_baseline_bytes", "RSS after freeing 90%", .bytes)],
            "threadchurn": [("threads_per_s", "threads/s", .plain)],
            "falseshare": [("handed_pairs_sharing_a_line", "handed objects sharing a line", .plain)],
        ]
        let extras = noteKeys[w] ?? []
        var o = "| allocator | threads | throughput | range | wall | peak RSS | final RSS | RSS/live |"
        if info.samplesLatency { o += " malloc p50 / p99 / p99.9 / max | free p50 / p99 / p99.9 / max |" }
        for e in extras { o += " \(e.1) |" }
        o += "\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        if info.samplesLatency { o += " ---: | ---: |" }
        o += String(repeating: " ---: |", count: extras.count) + "\n"
        for t in d.threads(of: w) {
            // Best throughput in this thread count, bolded.
            let best = d.allocators.compactMap { d.cell(w, $0, t) }.filter(\.isOK).compactMap { $0.throughput?.median }.max()
            for a in d.allocators {
                guard let c = d.cell(w, a, t) else { continue }
                guard c.isOK else {
                    let cols = 6 + (info.samplesLatency ? 2 : 0) + extras.count
                    o += "| \(a) | \(t) | **\(c.status.label)** | \(cellText(String((c.errors.first ?? "").prefix(160))))" + String(repeating: " | —", count: cols - 1) + " |\n"
                    continue
                }
                let tp = c.throughput.map { Fmt.si($0.median) } ?? "—"
                let isBest = c.throughput?.median == best && best != nil
                o += "| \(a) | \(t) | \(isBest ? "**\(tp)**" : tp) | \(c.throughput.map { "±\(Fmt.percent($0.relativeRange / 2))" } ?? "—") "
                o += "| \(c.wallSeconds.map { Fmt.seconds($0.median) } ?? "—") | \(c.peakRss.map { Fmt.bytes($0.median) } ?? "—") "
                o += "| \(c.finalRss.map { Fmt.bytes($0.median) } ?? "—") | \(c.rssOverLive.map { String(format: "%.2f", $0.median) } ?? "—") |"
                if info.samplesLatency {
                    func l(_ v: Double?) -> String { v.map { String(format: "%.0f", $0) } ?? "—" }
                    o += " \(l(c.mallocP50)) / \(l(c.mallocP99)) / \(l(c.mallocP999)) / \(l(c.mallocMax)) |"
                    o += " \(l(c.freeP50)) / \(l(c.freeP99)) / \(l(c.freeP999)) / \(l(c.freeMax)) |"
                }
                for e in extras { o += " \(c.notes[e.0].map { e.2.format($0) } ?? "—") |" }
                o += "\n"
            }
        }
        o += "\nLatencies in ns. Range: ± half the spread of the repetitions around the median. Bold: fastest at that thread count.\n"
        return o
    }

    static func summary(_ d: ReportData) -> String {
        var o = ""
        let findings = Findings.perWorkload(d)
        let failed = d.failedCells
        if failed.isEmpty {
            o += "All \(d.cells.count) cells passed their checks.\n\n"
        } else {
            let names = Set(failed.map(\.allocator)).sorted().joined(separator: ", ")
            o += "**\(failed.count) of \(d.cells.count) cells failed** (\(names)); they report no time — see Failures.\n\n"
        }
        if !findings.isEmpty {
            o += "Who wins each workload, at its largest thread count (median throughput; \"≈\" marks a lead smaller than the repetitions' spread):\n\n"
            o += "| workload | threads | fastest | lead over runner-up | vs glibc | best SwiftMalloc front end | vs best peer | smallest peak RSS |\n"
            o += "| --- | ---: | --- | --- | ---: | --- | ---: | --- |\n"
            for f in findings {
                let lead = f.runnerUp.map { "\(Fmt.ratio(f.overRunnerUp ?? 1)) over \($0)\(f.withinNoise ? " ≈" : "")" } ?? "—"
                let g = f.overGlibc.map(Fmt.ratio) ?? "—"
                let sm = f.bestSwiftMalloc ?? "—"
                let smPeer = f.swiftMallocOverBestPeer.map { "\(Fmt.ratio($0)) of \(f.bestPeer ?? "")" } ?? "—"
                let rss = f.smallestRss.map { "\($0) (largest is \(Fmt.ratio(f.rssRatioLargestToSmallest ?? 1)))" } ?? "—"
                o += "| \(f.workload) | \(f.threads) | **\(f.winner)** | \(lead) | \(g) | \(sm) | \(smPeer) | \(rss) |\n"
            }
            o += "\n"
            // Sentences.
            var wins: [String: [String]] = [:]
            for f in findings { wins[f.winner, default: []].append(f.workload) }
            let ordered = wins.sorted { $0.value.count > $1.value.count || ($0.value.count == $1.value.count && $0.key < $1.key) }
            o += "- Fastest per workload: " + ordered.map { "**\($0.key)** on \($0.value.joined(separator: ", "))" }.joined(separator: "; ") + ".\n"
        }
        if d.allocators.contains("glibc") {
            let overall = Findings.overall(d, base: "glibc")
            if !overall.isEmpty {
                o += "- Across all cells (geometric mean of throughput relative to glibc): " + overall.map { "\($0.0) \(Fmt.ratio($0.1))" }.joined(separator: ", ") + ".\n"
            }
        }
        // Per-CPU against per-thread.
        if let p = Findings.pairwise(d, "swiftmalloc-percpu", "swiftmalloc-thread") {
            let winsCount = p.cells.filter { $0.2 > 1 }.count
            let best = p.cells.max { $0.2 < $1.2 }!
            let worst = p.cells.min { $0.2 < $1.2 }!
            o += "- Per-CPU (rseq) against per-thread caches: per-CPU is faster in \(winsCount) of \(p.cells.count) cells, \(Fmt.ratio(p.geomean)) overall (geometric mean); "
            o += "largest lead \(Fmt.ratio(best.2)) on \(best.0) at \(best.1) threads, largest deficit \(Fmt.ratio(worst.2)) on \(worst.0) at \(worst.1) threads.\n"
        }
        // Footprint with many threads.
        for w in d.workloads where w == "oversub" {
            guard let t = d.threads(of: w).last,
                  let pc = d.cell(w, "swiftmalloc-percpu", t), let th = d.cell(w, "swiftmalloc-thread", t), pc.isOK, th.isOK,
                  let a = pc.peakRss?.median, let b = th.peakRss?.median else { continue }
            o += "- Footprint with \(t) threads on \(d.results.machine.logicalCpus) CPUs (oversub): per-CPU peak RSS \(Fmt.bytes(a)) against per-thread \(Fmt.bytes(b))"
            if let ia = pc.idleRss?.median, let ib = th.idleRss?.median {
                o += "; with all threads alive and idle \(Fmt.bytes(ia)) against \(Fmt.bytes(ib))"
            }
            o += ".\n"
        }
        // Best SwiftMalloc front end against best peer.
        let smVsPeer = findings.compactMap { f -> (String, Double)? in f.swiftMallocOverBestPeer.map { (f.workload, $0) } }
        if !smVsPeer.isEmpty {
            let ahead = smVsPeer.filter { $0.1 >= 1 }.map(\.0)
            o += "- SwiftMalloc's best front end matches or beats the best peer on \(ahead.count) of \(smVsPeer.count) workloads"
            o += ahead.isEmpty ? ".\n" : " (\(ahead.joined(separator: ", "))).\n"
        }
        let noisy = d.cells.filter { ($0.throughput?.relativeRange ?? 0) > 0.2 }
        if !noisy.isEmpty {
            o += "- \(noisy.count) of \(d.cells.count) cells vary by more than 20% between repetitions (max − min over median); treat differences smaller than that as noise.\n"
        }
        return o
    }
}

// MARK: - Writing a results directory

public enum OutputWriter {
    /// Writes results.json, results.csv, report.md and charts/*.svg into dir.
    @discardableResult
    public static func write(_ results: ResultsFile, to dir: URL, writeJSON: Bool = true) throws -> [URL] {
        let fm = FileManager.default
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let chartsDir = dir.appendingPathComponent("charts")
        try fm.createDirectory(at: chartsDir, withIntermediateDirectories: true)
        var written: [URL] = []
        var r = results
        r.cells = Summarizer.cells(from: r.samples)
        if writeJSON {
            let url = dir.appendingPathComponent("results.json")
            try r.encoded().write(to: url, options: .atomic)
            written.append(url)
        }
        let csvURL = dir.appendingPathComponent("results.csv")
        try ResultsCSV.encode(r.samples).write(to: csvURL, atomically: true, encoding: .utf8)
        written.append(csvURL)
        let data = ReportData(r)
        let charts = ChartBuilder.charts(for: data)
        // Remove charts of an earlier rendering that no longer apply.
        for old in (try? fm.contentsOfDirectory(at: chartsDir, includingPropertiesForKeys: nil)) ?? [] where old.pathExtension == "svg" {
            try? fm.removeItem(at: old)
        }
        for c in charts {
            let url = chartsDir.appendingPathComponent(c.name)
            try c.chart.svg().write(to: url, atomically: true, encoding: .utf8)
            written.append(url)
        }
        let md = dir.appendingPathComponent("report.md")
        try ReportRenderer.markdown(data, charts: charts).write(to: md, atomically: true, encoding: .utf8)
        written.append(md)
        return written
    }

    /// Reads DIR/results.json.
    public static func load(_ dir: URL) throws -> ResultsFile {
        let url = dir.appendingPathComponent("results.json")
        guard let data = try? Data(contentsOf: url) else {
            throw LabError.missing("no results.json in \(dir.path) (run `malloc-lab compare --out \(dir.path)` first)")
        }
        do {
            return try ResultsFile.decode(data)
        } catch {
            throw LabError.io("cannot read \(url.path): \(error)")
        }
    }
}
