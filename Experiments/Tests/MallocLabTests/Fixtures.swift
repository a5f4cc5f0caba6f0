import Foundation
import XCTest
@testable import MallocLabCore
import MallocLabShared

/// Synthetic results for the rendering and round-trip tests.
enum Fixtures {
    static let allocatorIDs = ["swiftmalloc-percpu", "swiftmalloc-thread", "glibc", "jemalloc"]

    static func allocators() -> [AllocatorSpec] {
        allocatorIDs.map { id in
            AllocatorSpec(id: id, kind: id.hasPrefix("swiftmalloc") ? .swiftmalloc : id == "glibc" ? .glibc : .peer,
                          library: id == "glibc" ? nil : "/lib/\(id).so", frontend: id.hasPrefix("swiftmalloc-") ? String(id.dropFirst(12)) : nil,
                          debianPackage: nil, available: true, note: "")
        }
    }

    static func machine() -> MachineFacts {
        MachineFacts(cpuModel: "Test CPU", logicalCpus: 2, kernel: "Linux 6.1 x86_64", glibc: "ldd 2.36", hostname: "test",
                     rseqAvailable: true, rseqNote: "glibc registered rseq", glibcRseqSize: 20, rseqFeatureSize: 28,
                     mmCidAvailable: true, gitRevision: "abc1234", libraryPath: "/lib/libSwiftMalloc.so", libraryModified: nil,
                     perfAvailable: false, perfNote: "not supported", swiftVersion: "Swift 6")
    }

    /// larson at 1, 2, 8 threads and churn at 1 thread for every allocator,
    /// 3 repetitions; `failing` fails every run of that allocator on churn.
    static func results(failing: String? = "jemalloc") -> ResultsFile {
        var samples: [Sample] = []
        let workloads = [("larson", [1, 2, 8]), ("churn", [1])]
        for rep in 0..<3 {
            for (w, threads) in workloads {
                for t in threads {
                    for (ai, a) in allocatorIDs.enumerated() {
                        if a == failing && w == "churn" {
                            samples.append(Sample(workload: w, allocator: a, threads: t, repetition: rep, seed: UInt64(1 + rep), scale: 1,
                                                  status: .failed, error: "malloc-lab-workload: check failed [churn]: churn: object tag changed while live (0x1, 0x2)"))
                            continue
                        }
                        let tp = 1e7 * Double(ai + 1) * Double(t).squareRoot() * (1 + 0.01 * Double(rep))
                        samples.append(Sample(
                            workload: w, allocator: a, threads: t, repetition: rep, seed: UInt64(1 + rep), scale: 1, status: .ok,
                            wallSeconds: 1e6 / tp, ops: 1e6, throughput: tp, baselineRss: 8e6, peakRss: 1e7 + Double(ai) * 1e6 * Double(t),
                            finalRss: 9e6, livePeak: 1e6, rssAtLivePeak: 9.5e6,
                            malloc: LatencySummary(samples: 1000, p50: 20 + Double(ai), p90: 30, p99: 100, p999: 1000, max: 50000, mean: 25.5),
                            free: LatencySummary(samples: 1000, p50: 18, p90: 25, p99: 90, p999: 900, max: 40000, mean: 21.25),
                            timerOverheadNs: 20.03, mallocProvider: "/lib/\(a).so",
                            swiftmalloc: a.hasPrefix("swiftmalloc") ? swiftmallocStats(threads: t) : nil,
                            frontendUsed: a.hasPrefix("swiftmalloc-") ? String(a.dropFirst(12)) : nil,
                            notes: w == "larson" ? ["extra_metric": 1.5] : [:], processSeconds: 0.25))
                    }
                }
            }
        }
        return ResultsFile(command: "malloc-lab compare --quick", createdAt: "2026-01-01T00:00:00Z", durationSeconds: 12.5,
                           settings: RunSettings(quick: true, repetitions: 3, scale: 1, sampleEvery: 64, seed: 1, threads: nil, timeoutSeconds: 120, perf: false),
                           machine: machine(), allocators: allocators(),
                           workloads: [WorkloadCatalog.named("larson")!, WorkloadCatalog.named("churn")!], samples: samples)
    }

    /// A SwiftMalloc stats file's numbers: with `threads` threads, the
    /// central lists waited 10 x (threads - 1) times (per 1e6 ops), the
    /// transfer caches never.
    static func swiftmallocStats(threads: Int) -> [String: Double] {
        ["fast_path_hits": 990, "fast_path_misses": 10, "rseq_aborts": 3, "rseq_available": 1,
         "lock_acquisitions_central": 5000, "lock_contended_central": 10 * Double(threads - 1),
         "lock_acquisitions_transfer": 400, "lock_contended_transfer": 0]
    }

    /// `path`, something the package's build makes (`hint` says how). A
    /// test that needs it fails without it, and stops there.
    static func built(_ path: String, hint: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("\(path) is missing: \(hint)", file: file, line: line)
            throw XCTSkip("missing \(path)")
        }
        return path
    }

    /// The release library the lab preloads by default.
    static func swiftMallocLibrary(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try built(LabPaths.defaultLibrary, hint: "build it with `swift build -c release` (scripts/test.sh does) or set SWIFTMALLOC_LIB",
                  file: file, line: line)
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("malloc-lab-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
