// Planning and running a comparison matrix, with a progress line.
import Foundation
import MallocLabShared
#if canImport(Glibc)
import Glibc
#endif

public struct MatrixPlan: Sendable {
    public var workloads: [WorkloadInfo]
    public var allocators: [AllocatorSpec]
    /// Thread counts per workload name.
    public var threads: [String: [Int]]
    public var settings: RunSettings

    public init(workloads: [WorkloadInfo], allocators: [AllocatorSpec], settings: RunSettings) {
        self.workloads = workloads
        self.allocators = allocators
        self.settings = settings
        var t: [String: [Int]] = [:]
        for w in workloads { t[w.name] = w.threadCounts(quick: settings.quick, requested: settings.threads) }
        threads = t
    }

    /// One line per workload that does not follow an explicit `--threads`
    /// (none when no thread counts were asked for).
    public var threadOptionNotes: [String] {
        guard let requested = settings.threads, !requested.isEmpty else { return [] }
        return workloads.filter { !$0.followsThreadOption }.map { w in
            let counts = (threads[w.name] ?? []).map(String.init).joined(separator: ",")
            return "note: \(w.name) runs \(counts) thread\(counts == "1" ? "" : "s") whatever --threads says"
        }
    }

    /// The runs in execution order: repetition-major, so drifts of the
    /// machine spread over every allocator; allocators innermost.
    public var requests: [RunRequest] {
        var out: [RunRequest] = []
        for rep in 0..<settings.repetitions {
            for w in workloads {
                for t in threads[w.name] ?? [] {
                    for a in allocators {
                        out.append(RunRequest(workload: w, allocator: a, threads: t, repetition: rep, scale: settings.scale,
                                              sampleEvery: settings.sampleEvery, seed: settings.seed,
                                              timeout: settings.timeoutSeconds, perf: settings.perf))
                    }
                }
            }
        }
        return out
    }

    public var cellCount: Int { workloads.reduce(0) { $0 + (threads[$1.name]?.count ?? 0) } * allocators.count }
}

/// A progress line on stderr: rewritten in place on a terminal, one line
/// per run otherwise (logs).
public final class ProgressLine: @unchecked Sendable {
    let total: Int
    let start = Date()
    let isTTY: Bool
    let enabled: Bool
    private var lastWidth = 0

    public init(total: Int, enabled: Bool = true) {
        self.total = total
        self.enabled = enabled
        isTTY = isatty(2) != 0
    }

    public func update(done: Int, failed: Int, current: String) {
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let pct = total > 0 ? Int(Double(done) / Double(total) * 100) : 100
        var line = String(format: "[%3d%%] %d/%d runs, %@ elapsed, ~%@ left", pct, done, total, Self.clock(elapsed), Self.clock(eta))
        if failed > 0 { line += ", \(failed) failed" }
        line += " — \(current)"
        if isTTY {
            let pad = max(0, lastWidth - line.count)
            FileHandle.standardError.write(("\r" + line + String(repeating: " ", count: pad)).data(using: .utf8)!)
            lastWidth = line.count
        } else {
            FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
        }
    }

    public func finish(_ message: String) {
        guard enabled else { return }
        FileHandle.standardError.write(((isTTY ? "\r" + String(repeating: " ", count: lastWidth) + "\r" : "") + message + "\n").data(using: .utf8)!)
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return String(format: "%d:%02d", t / 60, t % 60)
    }
}

public enum MatrixRunner {
    /// Runs every request; a failed run makes the rest of its cell's
    /// repetitions skip (recorded once, as the failure).
    public static func run(_ plan: MatrixPlan, runner: WorkloadRunner, progress: ProgressLine?) -> [Sample] {
        let requests = plan.requests
        var samples: [Sample] = []
        var failedCells = Set<String>()
        var failures = 0
        for (i, r) in requests.enumerated() {
            let key = "\(r.workload.name)|\(r.allocator.id)|\(r.threads)"
            let label = "\(r.workload.name) · \(r.allocator.id) · \(r.threads) thread\(r.threads == 1 ? "" : "s") · rep \(r.repetition + 1)/\(plan.settings.repetitions)"
            if failedCells.contains(key) {
                progress?.update(done: i + 1, failed: failures, current: label + " (skipped: failed before)")
                continue
            }
            progress?.update(done: i, failed: failures, current: label)
            let s = runner.run(r)
            if !s.status.isOK {
                failedCells.insert(key)
                failures += 1
            }
            samples.append(s)
        }
        progress?.finish("\(samples.count) runs done, \(failures) failed.")
        return samples
    }
}
