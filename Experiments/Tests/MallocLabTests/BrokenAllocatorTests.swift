// A deliberately broken allocator (Experiments/Tests/Fixtures/broken_malloc.c:
// a bump allocator that sometimes returns the previous, still-live block
// again) must make the workloads fail their own checks, and the lab must
// report the failure instead of a time.
import Foundation
import XCTest
@testable import MallocLabCore
import MallocLabShared

final class BrokenAllocatorTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()      // MallocLabTests
        .deletingLastPathComponent()      // Tests
        .appendingPathComponent("Fixtures/broken_malloc.c")

    var scratch: URL!

    override func setUpWithError() throws {
        scratch = try Fixtures.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Compiles the broken allocator into the scratch folder.
    func buildBrokenLibrary() throws -> String {
        guard let cc = ProcessRunner.which("cc") ?? ProcessRunner.which("gcc") ?? ProcessRunner.which("clang") else {
            throw XCTSkip("no C compiler (cc, gcc or clang) to build the broken allocator")
        }
        let out = scratch.appendingPathComponent("libbroken_malloc.so").path
        let o = try ProcessRunner.run(executable: cc, arguments: ["-shared", "-fPIC", "-O1", "-o", out, Self.fixture.path],
                                      environment: ProcessRunner.cleanEnvironment(), scratch: scratch, timeout: 120)
        XCTAssertEqual(o.exitStatus, 0, "cc failed: \(o.stderr)")
        return out
    }

    func workloadExecutable() throws -> String {
        try Fixtures.built(LabPaths.workloadExecutable, hint: "`swift build` builds malloc-lab-workload next to the tests")
    }

    func brokenSpec(_ lib: String) -> AllocatorSpec {
        AllocatorSpec(id: "broken", kind: .peer, library: lib, frontend: nil, debianPackage: nil, available: true, note: lib)
    }

    func glibcSpec() -> AllocatorSpec {
        AllocatorSpec(id: "glibc", kind: .glibc, library: nil, frontend: nil, debianPackage: nil, available: true, note: "")
    }

    func testBrokenAllocatorFailsTheWorkloadChecks() throws {
        let lib = try buildBrokenLibrary()
        let runner = try WorkloadRunner(workloadExecutable: try workloadExecutable(), scratch: scratch.appendingPathComponent("runs"))
        for (name, threads) in [("churn", 1), ("larson", 2), ("threadchurn", 2), ("oversub", 4)] {
            let w = try XCTUnwrap(WorkloadCatalog.named(name))
            // The workloads themselves pass under a working allocator...
            let good = runner.run(RunRequest(workload: w, allocator: glibcSpec(), threads: threads, repetition: 0, scale: 0.05, timeout: 60))
            XCTAssertEqual(good.status, .ok, "\(name) under glibc: \(good.error ?? "")")
            XCTAssertNotNil(good.wallSeconds)
            XCTAssertNotNil(good.throughput)
            // ...and fail loudly under the broken one, with no time reported.
            let bad = runner.run(RunRequest(workload: w, allocator: brokenSpec(lib), threads: threads, repetition: 0, scale: 0.05, timeout: 60))
            XCTAssertNotEqual(bad.status, .ok, "\(name) passed under an allocator that returns overlapping blocks")
            XCTAssertEqual(bad.status, .failed, "\(name): \(bad.error ?? "")")
            XCTAssertTrue(bad.error?.contains("check failed [\(name)]") ?? false, "\(name): \(bad.error ?? "no error")")
            XCTAssertNil(bad.wallSeconds)
            XCTAssertNil(bad.throughput)
            XCTAssertNil(bad.malloc)
        }
    }

    func testLabReportsTheFailureInsteadOfATime() throws {
        let lib = try buildBrokenLibrary()
        let runner = try WorkloadRunner(workloadExecutable: try workloadExecutable(), scratch: scratch.appendingPathComponent("runs"))
        let settings = RunSettings(quick: true, repetitions: 2, scale: 0.05, sampleEvery: 64, seed: 1, threads: nil, timeoutSeconds: 60, perf: false)
        let plan = MatrixPlan(workloads: [WorkloadCatalog.named("churn")!], allocators: [glibcSpec(), brokenSpec(lib)], settings: settings)
        let samples = MatrixRunner.run(plan, runner: runner, progress: nil)
        // The broken cell's second repetition is skipped after the first failed.
        XCTAssertEqual(samples.filter { $0.allocator == "glibc" }.count, 2)
        XCTAssertEqual(samples.filter { $0.allocator == "broken" }.count, 1)
        let results = ResultsFile(command: "test", createdAt: "now", durationSeconds: 1, settings: settings, machine: Fixtures.machine(),
                                  allocators: [glibcSpec(), brokenSpec(lib)], workloads: plan.workloads, samples: samples)
        let dir = scratch.appendingPathComponent("out")
        try OutputWriter.write(results, to: dir)
        let back = try OutputWriter.load(dir)
        let cell = try XCTUnwrap(back.cells.first { $0.allocator == "broken" })
        XCTAssertEqual(cell.status, .failed)
        XCTAssertNil(cell.throughput)
        XCTAssertNil(cell.wallSeconds)
        XCTAssertTrue(cell.errors.first?.contains("check failed [churn]") ?? false)
        XCTAssertTrue(back.cells.first { $0.allocator == "glibc" }?.isOK ?? false)
        let md = try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("| broken | 1 | **FAILED** |"), md)
        XCTAssertTrue(md.contains("check failed [churn]"))
        // The chart marks it failed and draws no bar for it.
        let chart = ChartBuilder.charts(for: ReportData(back)).first { $0.name == "throughput-churn.svg" }
        XCTAssertEqual(chart?.chart.series.first { $0.id == "broken" }?.values, [nil])
    }

    func testMissingPreloadIsDetected() throws {
        // A "peer" whose library does not define malloc: the workload's own
        // check of which object provides malloc must catch it.
        let src = scratch.appendingPathComponent("empty.c")
        try "int not_an_allocator(void) { return 0; }\n".write(to: src, atomically: true, encoding: .utf8)
        guard let cc = ProcessRunner.which("cc") ?? ProcessRunner.which("gcc") else { throw XCTSkip("no C compiler") }
        let lib = scratch.appendingPathComponent("libempty.so").path
        let o = try ProcessRunner.run(executable: cc, arguments: ["-shared", "-fPIC", "-o", lib, src.path],
                                      environment: ProcessRunner.cleanEnvironment(), scratch: scratch, timeout: 60)
        XCTAssertEqual(o.exitStatus, 0, o.stderr)
        let runner = try WorkloadRunner(workloadExecutable: try workloadExecutable(), scratch: scratch.appendingPathComponent("runs"))
        let s = runner.run(RunRequest(workload: WorkloadCatalog.named("churn")!, allocator: brokenSpec(lib), threads: 1,
                                      repetition: 0, scale: 0.01, timeout: 60))
        XCTAssertEqual(s.status, .failed)
        XCTAssertTrue(s.error?.contains("LD_PRELOAD did not take effect") ?? false, s.error ?? "")
    }
}
