// The allocation histogram (SWIFTMALLOC_HISTOGRAM, docs/tuning.md) against
// the statistics of the same run: a C program that uses every allocating
// entry point from several threads, under each front end, and python.
import Foundation
import XCTest

final class HistogramPreloadTests: XCTestCase {
    struct Histogram {
        var total: UInt64
        var requestedBytes: UInt64
        var handedOutBytes: UInt64
        var buckets: [(min: UInt64, max: UInt64, count: UInt64)]

        func count(containing size: UInt64) -> UInt64 {
            buckets.first { $0.min <= size && size <= $0.max }?.count ?? 0
        }
    }

    struct Run {
        var result: ProcessResult
        var stats: [String: Any]
        var histogram: Histogram
    }

    /// Runs `command` preloaded with the histogram on; checks what must hold
    /// for any run: the file's shape, and that it agrees with the stats.
    private func runWithHistogram(_ command: [String], environment: [String: String] = [:],
                                  file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let dir = try Preload.makeTemporaryDirectory("histogram")
        var env = environment
        env["SWIFTMALLOC_HISTOGRAM"] = dir.appendingPathComponent("histogram-%p.json").path
        let (result, statsDir) = try Preload.runPreloaded(command, environment: env, timeout: 300, file: file, line: line)
        guard result.exitStatus == 0 else {
            XCTFail("run failed:\n\(result.summary)", file: file, line: line)
            throw HarnessError(description: "run failed")
        }
        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        let path = dir.appendingPathComponent("histogram-\(result.pid).json").path
        let histogram = try readHistogram(path)

        XCTAssertEqual(histogram.total, Preload.number(stats, "allocations"),
                       "histogram total vs stats allocations", file: file, line: line)
        XCTAssertEqual(histogram.total, histogram.buckets.reduce(0) { $0 + $1.count },
                       "total is the buckets' sum", file: file, line: line)
        XCTAssertEqual(histogram.requestedBytes, Preload.number(stats, "requested_bytes"),
                       "requested_bytes: histogram vs stats", file: file, line: line)
        XCTAssertEqual(histogram.handedOutBytes, Preload.number(stats, "handed_out_bytes"),
                       "handed_out_bytes: histogram vs stats", file: file, line: line)
        XCTAssertGreaterThanOrEqual(histogram.handedOutBytes, histogram.requestedBytes, file: file, line: line)
        XCTAssertGreaterThan(Preload.number(stats, "peak_resident_bytes") ?? 0, 0, file: file, line: line)
        for (i, bucket) in histogram.buckets.enumerated() {
            XCTAssertGreaterThan(bucket.count, 0, "only counted buckets are listed", file: file, line: line)
            XCTAssertLessThanOrEqual(bucket.min, bucket.max, file: file, line: line)
            if i > 0 {
                XCTAssertGreaterThan(bucket.min, histogram.buckets[i - 1].max, "buckets ascending", file: file, line: line)
            }
        }
        return Run(result: result, stats: stats, histogram: histogram)
    }

    private func readHistogram(_ path: String) throws -> Histogram {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let total = (object["total"] as? NSNumber)?.uint64Value,
              let requested = (object["requested_bytes"] as? NSNumber)?.uint64Value,
              let handedOut = (object["handed_out_bytes"] as? NSNumber)?.uint64Value,
              let buckets = object["buckets"] as? [[String: Any]]
        else { throw HarnessError(description: "no histogram of the expected shape at \(path)") }
        return Histogram(total: total, requestedBytes: requested, handedOutBytes: handedOut, buckets: try buckets.map {
            guard let min = ($0["min_size"] as? NSNumber)?.uint64Value, let max = ($0["max_size"] as? NSNumber)?.uint64Value,
                  let count = ($0["count"] as? NSNumber)?.uint64Value
            else { throw HarnessError(description: "bad bucket \($0) in \(path)") }
            return (min, max, count)
        })
    }

    /// "label value [count]" lines of the C program's output.
    private func programFigures(_ output: String) -> (requested: UInt64, allocations: UInt64, sizes: [UInt64: UInt64]) {
        var requested: UInt64 = 0, allocations: UInt64 = 0
        var sizes: [UInt64: UInt64] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ")
            switch parts.first {
            case "requested": requested = UInt64(parts[1]) ?? 0
            case "allocations": allocations = UInt64(parts[1]) ?? 0
            case "size": sizes[UInt64(parts[1]) ?? 0] = UInt64(parts[2]) ?? 0
            default: break
            }
        }
        return (requested, allocations, sizes)
    }

    /// The C library allocates on its own (thread data, ...): the baseline
    /// run does all the program does but its own allocations, so the
    /// difference is the program's requests, exactly.
    /// `configuration`: the text of a SWIFTMALLOC_CONFIG file to run under.
    private func entryPoints(_ frontEnd: String, configuration: String? = nil,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let program = try Preload.cProgram("histogram")
        var env = ["SWIFTMALLOC_FRONTEND": frontEnd]
        if let configuration {
            let path = try Preload.makeTemporaryDirectory("histogram-config").appendingPathComponent("classes.toml")
            try configuration.write(to: path, atomically: true, encoding: .utf8)
            env["SWIFTMALLOC_CONFIG"] = path.path
        }
        let baseline = try runWithHistogram([program, "baseline"], environment: env, file: file, line: line)
        let full = try runWithHistogram([program], environment: env, file: file, line: line)
        if frontEnd != "percpu" {
            XCTAssertEqual(full.stats["frontend"] as? String, frontEnd, file: file, line: line)
        }
        if configuration != nil {
            XCTAssertEqual(full.stats["config"] as? String, env["SWIFTMALLOC_CONFIG"], full.result.stderr, file: file, line: line)
        }
        let own = programFigures(full.result.stdout)
        XCTAssertGreaterThan(own.allocations, 500, "the program allocated: \(full.result.stdout)", file: file, line: line)
        XCTAssertGreaterThan(Preload.number(full.stats, "threads_seen") ?? 0, 6, file: file, line: line)
        XCTAssertEqual(full.histogram.total - baseline.histogram.total, own.allocations,
                       "allocations the program made", file: file, line: line)
        XCTAssertEqual(full.histogram.requestedBytes - baseline.histogram.requestedBytes, own.requested,
                       "bytes the program requested", file: file, line: line)
        XCTAssertEqual(own.sizes.count, 3, "sizes tracked: \(full.result.stdout)", file: file, line: line)
        for (size, count) in own.sizes {
            XCTAssertGreaterThan(count, 0, file: file, line: line)
            XCTAssertEqual(full.histogram.count(containing: size) - baseline.histogram.count(containing: size), count,
                           "requests of \(size) bytes", file: file, line: line)
        }
        // Growing a mapped block (realloc by mremap) is counted when the stats count it.
        _ = try runWithHistogram([program, "remap"], environment: env, file: file, line: line)
    }

    func testEveryEntryPointUnderPerCPU() throws { try entryPoints("percpu") }
    func testEveryEntryPointUnderThread() throws { try entryPoints("thread") }
    func testEveryEntryPointUnderArenas() throws { try entryPoints("arenas") }
    func testEveryEntryPointUnderGlobal() throws { try entryPoints("global") }

    /// A configured table that ends at 1 KiB: the program's requests of
    /// 1025 to 32768 bytes are served as large allocations of their size, from
    /// the fast paths' class 0 and from the general path, and recorded once
    /// each with the size asked for.
    func testEveryEntryPointUnderAShortConfiguredTable() throws {
        let classes = "classes = [8, 16, 32, 64, 128, 256, 512, 1024]\n"
        try entryPoints("percpu", configuration: classes)
        try entryPoints("thread", configuration: classes)
    }

    /// A real program: python building many objects on several threads,
    /// with its own allocator off (every object through malloc).
    func testPythonTotalsMatchTheStats() throws {
        let script = """
            import threading
            def work(n): return [{'k': str(i), 'v': [i] * 5} for i in range(n)]
            threads = [threading.Thread(target=work, args=(20000,)) for _ in range(4)]
            for t in threads: t.start()
            print(len(work(50000)))
            for t in threads: t.join()
            """
        for frontEnd in ["percpu", "thread"] {
            let run = try runWithHistogram(["python3", "-c", script],
                                           environment: ["PYTHONMALLOC": "malloc", "SWIFTMALLOC_FRONTEND": frontEnd])
            XCTAssertEqual(run.result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "50000")
            XCTAssertGreaterThan(run.histogram.total, 100_000, "python's objects went through malloc")
        }
    }

    /// Files asked for that cannot be written are said so, one line each,
    /// with the system's reason; the program's own status is kept.
    func testUnwritableFilesAreReported() throws {
        let program = try Preload.cProgram("histogram")
        let missing = try Preload.makeTemporaryDirectory("unwritable").appendingPathComponent("no-such-folder")
        let stats = missing.appendingPathComponent("stats.json").path
        let histogram = missing.appendingPathComponent("histogram.json").path
        let result = try Preload.run([program, "baseline"], preload: Preload.library(),
                                     environment: ["SWIFTMALLOC_STATS_FILE": stats, "SWIFTMALLOC_HISTOGRAM": histogram])
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, ["swiftmalloc: cannot write SWIFTMALLOC_STATS_FILE=\(stats): No such file or directory",
                               "swiftmalloc: cannot write SWIFTMALLOC_HISTOGRAM=\(histogram): No such file or directory"])
    }

    func testStatsSayRequestedBytesNullWhenTheHistogramIsOff() throws {
        let program = try Preload.cProgram("histogram")
        let (result, statsDir) = try Preload.runPreloaded([program])
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertTrue(stats["requested_bytes"] is NSNull, "requested_bytes: \(String(describing: stats["requested_bytes"]))")
        let allocated = Preload.number(stats, "handed_out_bytes") ?? 0
        XCTAssertGreaterThan(allocated, programFigures(result.stdout).requested, "handed_out_bytes counts without the histogram")
        XCTAssertGreaterThan(Preload.number(stats, "peak_resident_bytes") ?? 0, 0)
    }
}
