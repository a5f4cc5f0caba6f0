// results.csv: one row per run (sample), RFC 4180 quoting. Numbers are
// written in Swift's shortest round-trip form, so reading the file back
// gives the same samples.
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

    /// Parses CSV text into rows of fields (quoted fields may hold commas,
    /// doubled quotes and newlines). A trailing newline ends the last row.
    public static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQuotes = false
        var fieldStarted = false
        var it = Array(text.unicodeScalars)[...]
        while let c = it.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if it.first == "\"" { field.unicodeScalars.append("\""); it.removeFirst() } else { inQuotes = false }
                } else {
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"":
                inQuotes = true
                fieldStarted = true
            case ",":
                row.append(field)
                field = ""
                fieldStarted = false
            case "\r":
                if it.first == "\n" { continue }
                fallthrough
            case "\n":
                row.append(field)
                rows.append(row)
                row = []
                field = ""
                fieldStarted = false
            default:
                field.unicodeScalars.append(c)
                fieldStarted = true
            }
        }
        if fieldStarted || !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return rows
    }
}

/// The samples of a results file as CSV, and back.
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

    /// Reads results.csv back into samples. Throws on a missing column or a
    /// malformed number.
    public static func decode(_ text: String) throws -> [Sample] {
        let rows = CSV.parse(text)
        guard let header = rows.first else { return [] }
        var index: [String: Int] = [:]
        for (i, name) in header.enumerated() { index[name] = i }
        for c in columns where index[c] == nil { throw LabError.io("results.csv: missing column \(c)") }
        var samples: [Sample] = []
        for (n, r) in rows.dropFirst().enumerated() {
            if r.count == 1 && r[0].isEmpty { continue }
            func f(_ c: String) -> String { let i = index[c]!; return i < r.count ? r[i] : "" }
            func d(_ c: String) throws -> Double? {
                let v = f(c)
                if v.isEmpty { return nil }
                guard let x = Double(v) else { throw LabError.io("results.csv row \(n + 2): \(c) is not a number: \(v)") }
                return x
            }
            func i(_ c: String) throws -> Int {
                guard let x = Int(f(c)) else { throw LabError.io("results.csv row \(n + 2): \(c) is not an integer: \(f(c))") }
                return x
            }
            func lat(_ prefix: String) throws -> LatencySummary? {
                guard !f("\(prefix)_samples").isEmpty else { return nil }
                return LatencySummary(samples: try i("\(prefix)_samples"), p50: try d("\(prefix)_p50_ns") ?? 0,
                                      p90: try d("\(prefix)_p90_ns") ?? 0, p99: try d("\(prefix)_p99_ns") ?? 0,
                                      p999: try d("\(prefix)_p999_ns") ?? 0, max: try d("\(prefix)_max_ns") ?? 0,
                                      mean: try d("\(prefix)_mean_ns") ?? 0)
            }
            func dict(_ c: String) throws -> [String: Double]? {
                let v = f(c)
                if v.isEmpty { return nil }
                var out: [String: Double] = [:]
                for part in v.split(separator: ";") {
                    let kv = part.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2, let x = Double(kv[1]) else { throw LabError.io("results.csv row \(n + 2): bad \(c) entry \(part)") }
                    out[String(kv[0])] = x
                }
                return out
            }
            guard let status = RunStatus(rawValue: f("status")) else { throw LabError.io("results.csv row \(n + 2): unknown status \(f("status"))") }
            guard let seed = UInt64(f("seed")) else { throw LabError.io("results.csv row \(n + 2): bad seed") }
            let perf = PerfCounters(instructions: try d("instructions"), cycles: try d("cycles"), cacheMisses: try d("cache_misses"))
            samples.append(Sample(
                workload: f("workload"), allocator: f("allocator"), threads: try i("threads"), repetition: try i("repetition"),
                seed: seed, scale: try d("scale") ?? 1, status: status, error: f("error").isEmpty ? nil : f("error"),
                wallSeconds: try d("wall_seconds"), ops: try d("ops"), throughput: try d("throughput"),
                baselineRss: try d("baseline_rss"), peakRss: try d("peak_rss"), finalRss: try d("final_rss"),
                idleRss: try d("idle_rss"), livePeak: try d("live_peak"), rssAtLivePeak: try d("rss_at_live_peak"),
                malloc: try lat("malloc"), free: try lat("free"), timerOverheadNs: try d("timer_overhead_ns"),
                perf: perf.isEmpty ? nil : perf,
                mallocProvider: f("malloc_provider").isEmpty ? nil : f("malloc_provider"),
                swiftmalloc: try dict("swiftmalloc"),
                frontendUsed: f("frontend_used").isEmpty ? nil : f("frontend_used"),
                notes: try dict("notes") ?? [:], processSeconds: try d("process_seconds")))
        }
        return samples
    }
}
