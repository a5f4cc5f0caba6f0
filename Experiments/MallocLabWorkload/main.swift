// malloc-lab-workload: runs one workload in this process and prints one JSON
// line of measurements. The lab starts it under LD_PRELOAD (and
// SWIFTMALLOC_FRONTEND), so every allocator is measured the same way.
//
//   malloc-lab-workload NAME [--threads N] [--scale X] [--sample-every N]
//                            [--seed S] [--out FILE]
//   malloc-lab-workload --probe      (rseq / mm_cid / malloc provider facts)
//   malloc-lab-workload --list
//
// Exit status: 0 with a result; 2 for bad arguments; 3 when the workload's
// own checks fail (the message on stderr says what was found).
import Glibc
import Histogram
import MallocLabCSupport
import MallocLabShared

struct Options {
    var workload = ""
    var threads = 1
    var scale = 1.0
    var sampleEvery = 64
    var seed: UInt64 = 1
    var outPath: String? = nil
}

func usageAndExit(_ message: String) -> Never {
    writeStderr("malloc-lab-workload: \(message)\n")
    writeStderr("usage: malloc-lab-workload NAME [--threads N] [--scale X] [--sample-every N] [--seed S] [--out FILE]\n")
    writeStderr("       malloc-lab-workload --list | --probe\n")
    writeStderr("workloads: \(WorkloadCatalog.names.joined(separator: ", "))\n")
    exit(2)
}

func parseOptions(_ args: [String]) -> Options {
    var o = Options()
    var i = 0
    func value() -> String {
        i += 1
        guard i < args.count else { usageAndExit("\(args[i - 1]) needs a value") }
        return args[i]
    }
    while i < args.count {
        let a = args[i]
        switch a {
        case "--threads":
            guard let v = Int(value()), v >= 1, v <= 4096 else { usageAndExit("--threads takes 1...4096") }
            o.threads = v
        case "--scale":
            guard let v = Double(value()), v > 0, v <= 1000 else { usageAndExit("--scale takes a number in (0, 1000]") }
            o.scale = v
        case "--sample-every":
            guard let v = Int(value()), v >= 1 else { usageAndExit("--sample-every takes a positive integer") }
            o.sampleEvery = v
        case "--seed":
            guard let v = UInt64(value()) else { usageAndExit("--seed takes an unsigned integer") }
            o.seed = v
        case "--out":
            o.outPath = value()
        default:
            if a.hasPrefix("-") { usageAndExit("unknown option \(a)") }
            if !o.workload.isEmpty { usageAndExit("one workload at a time (got \(o.workload) and \(a))") }
            o.workload = a
        }
        i += 1
    }
    return o
}

// MARK: - JSON output (hand-written: no Foundation in this process)

struct JSONObject {
    private var parts: [String] = []
    mutating func add(_ key: String, _ value: String?) {
        parts.append("\"\(key)\":" + (value.map { "\"\(jsonEscape($0))\"" } ?? "null"))
    }
    mutating func add(_ key: String, _ value: Double?) {
        parts.append("\"\(key)\":" + (value.map(jsonNumber) ?? "null"))
    }
    mutating func add(_ key: String, _ value: UInt64?) {
        parts.append("\"\(key)\":" + (value.map { String($0) } ?? "null"))
    }
    mutating func add(_ key: String, _ value: Int64) { parts.append("\"\(key)\":\(value)") }
    mutating func add(_ key: String, _ value: Int) { parts.append("\"\(key)\":\(value)") }
    mutating func add(_ key: String, _ value: Bool) { parts.append("\"\(key)\":\(value)") }
    mutating func add(_ key: String, object: JSONObject?) {
        parts.append("\"\(key)\":" + (object?.rendered ?? "null"))
    }
    var rendered: String { "{" + parts.joined(separator: ",") + "}" }
}

func jsonNumber(_ d: Double) -> String {
    guard d.isFinite else { return "null" }
    if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
    return String(d)
}

func jsonEscape(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out
}

func writeAll(_ fd: Int32, _ s: String) {
    var s = s
    s.withUTF8 { buf in
        var off = 0
        while off < buf.count {
            let n = write(fd, buf.baseAddress! + off, buf.count - off)
            if n <= 0 { break }
            off += n
        }
    }
}

func writeStderr(_ s: String) { writeAll(2, s) }

func emit(_ line: String, to path: String?) {
    if let path {
        guard let f = fopen(path, "w") else {
            writeStderr("malloc-lab-workload: cannot write \(path)\n")
            exit(2)
        }
        fputs(line + "\n", f)
        fclose(f)
    } else {
        writeAll(1, line + "\n")
    }
}

func mallocProvider() -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    guard lab_malloc_provider(&buf, buf.count) == 0 else { return nil }
    return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

// MARK: - Main

let args = Array(CommandLine.arguments.dropFirst())
if args.first == "--list" {
    for w in WorkloadCatalog.all { print("\(w.name)\t\(w.title)") }
    exit(0)
}
if args.first == "--probe" {
    var o = JSONObject()
    o.add("glibc_rseq_size", UInt64(lab_glibc_rseq_size()))
    o.add("rseq_feature_size", lab_rseq_feature_size())
    o.add("rseq_syscall", lab_rseq_syscall_exists() != 0)
    o.add("cpus", Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    o.add("malloc_provider", mallocProvider())
    emit(o.rendered, to: args.count >= 3 && args[1] == "--out" ? args[2] : nil)
    exit(0)
}

let options = parseOptions(args)
guard !options.workload.isEmpty else { usageAndExit("name a workload") }
guard let info = WorkloadCatalog.named(options.workload), let run = workloadRunner(options.workload) else {
    usageAndExit("unknown workload \(options.workload)")
}
let threads = max(options.threads, info.threadMultiple)
if threads % info.threadMultiple != 0 {
    usageAndExit("\(info.name) needs a multiple of \(info.threadMultiple) threads")
}
lab_set_workload_name(strdup(info.name))

let calibration = TimerCalibration.measure()
let harness = Harness(options: options, threads: threads)
run(harness)
let finalRSS = lab_rss_bytes()
let peakRSS = lab_peak_rss_bytes()
let finalLive = harness.liveNow()

var out = JSONObject()
out.add("workload", info.name)
out.add("threads", threads)
out.add("ok", true)
out.add("scale", options.scale)
out.add("seed", options.seed)
out.add("wall_ns", harness.m.wallNS)
out.add("ops", harness.m.ops)
out.add("ops_unit", info.opsUnit)
out.add("baseline_rss", harness.m.baselineRSS)
out.add("peak_rss", peakRSS)
out.add("max_sampled_rss", harness.m.maxSampledRSS)
out.add("final_rss", finalRSS)
out.add("idle_rss", harness.m.idleRSS)
out.add("live_peak", harness.m.livePeak)
out.add("rss_at_live_peak", harness.m.rssAtLivePeak)
out.add("live_final", finalLive)
if info.samplesLatency {
    let (hm, hf) = harness.latencyHistograms(ticksPerNS: calibration.ticksPerNS)
    func summary(_ h: Histogram<UInt64>) -> JSONObject? {
        guard h.totalCount > 0 else { return nil }
        var o = JSONObject()
        o.add("samples", h.totalCount)
        o.add("p50", h.valueAtPercentile(50))
        o.add("p90", h.valueAtPercentile(90))
        o.add("p99", h.valueAtPercentile(99))
        o.add("p999", h.valueAtPercentile(99.9))
        o.add("max", h.max)
        o.add("mean", h.mean)
        return o
    }
    out.add("malloc_ns", object: summary(hm))
    out.add("free_ns", object: summary(hf))
} else {
    out.add("malloc_ns", object: nil)
    out.add("free_ns", object: nil)
}
out.add("sample_every", harness.workers[0].sampleEvery)
out.add("timer_overhead_ns", calibration.overheadNS)
out.add("ticks_per_ns", calibration.ticksPerNS)
out.add("malloc_provider", mallocProvider())
out.add("cpus", Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
var notes = JSONObject()
for (k, v) in harness.notes { notes.add(k, v) }
out.add("notes", object: notes)
emit(out.rendered, to: options.outPath)
exit(0)
