// results.csv: one row per run (sample), RFC 4180 quoting. Numbers are
// written in Swift's shortest round-trip form, so a reader gets the same
// values back.
import Foundation

public enum CSV {
    /// One field, quoted when it has a comma, quote, CR or LF.
    public static func field(_ s: String) -> String {
        if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return s
    }

    public static func line(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",")
    }
}

/// The samples of a results file as CSV (the lab writes it and never reads
/// it: results.json is what `malloc-lab report` reads back).
public enum ResultsCSV {
    public static let columns = [
        "workload", "allocator", "threads", "repetition", "seed", "scale", "status", "error",
        "wall_seconds", "ops", "throughput", "baseline_rss", "peak_rss", "final_rss", "idle_rss",
        "live_peak", "rss_at_live_peak", "rss_over_live",
        "malloc_samples", "malloc_p50_ns", "malloc_p90_ns", "malloc_p99_ns", "malloc_p999_ns", "malloc_max_ns", "malloc_mean_ns",
        "free_samples", "free_p50_ns", "free_p90_ns", "free_p99_ns", "free_p999_ns", "free_max_ns", "free_mean_ns",
        "timer_overhead_ns", "instructions", "cycles", "cache_misses",
        "malloc_provider", "frontend_used", "process_seconds", "notes", "swiftmalloc",
    ]

    static func num(_ d: Double?) -> String {
        guard let d, d.isFinite else { return "" }
        return "\(d)"
    }

    static func pairs(_ d: [String: Double]?) -> String {
        guard let d, !d.isEmpty else { return "" }
        return d.keys.sorted().map { "\($0)=\(d[$0]!)" }.joined(separator: ";")
    }

    static func latency(_ l: LatencySummary?) -> [String] {
        guard let l else { return Array(repeating: "", count: 7) }
        return [String(l.samples), num(l.p50), num(l.p90), num(l.p99), num(l.p999), num(l.max), num(l.mean)]
    }

    public static func row(_ s: Sample) -> [String] {
        [s.workload, s.allocator, String(s.threads), String(s.repetition), String(s.seed), num(s.scale),
         s.status.rawValue, s.error ?? "",
         num(s.wallSeconds), num(s.ops), num(s.throughput), num(s.baselineRss), num(s.peakRss), num(s.finalRss), num(s.idleRss),
         num(s.livePeak), num(s.rssAtLivePeak), num(s.rssOverLive)]
            + latency(s.malloc) + latency(s.free)
            + [num(s.timerOverheadNs), num(s.perf?.instructions), num(s.perf?.cycles), num(s.perf?.cacheMisses),
               s.mallocProvider ?? "", s.frontendUsed ?? "", num(s.processSeconds), pairs(s.notes), pairs(s.swiftmalloc)]
    }

    public static func encode(_ samples: [Sample]) -> String {
        var out = CSV.line(columns) + "\n"
        for s in samples { out += CSV.line(row(s)) + "\n" }
        return out
    }
}
