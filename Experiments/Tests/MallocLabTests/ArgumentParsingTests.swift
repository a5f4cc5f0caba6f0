import ArgumentParser
import XCTest
@testable import MallocLabCLI
@testable import MallocLabCore
import MallocLabShared

final class ArgumentParsingTests: XCTestCase {
    func testCompareQuickDefaultsAndLists() throws {
        let cmd = try MallocLab.parseAsRoot(["compare", "--quick", "--out", "/tmp/x", "--threads", "1,2", "--threads", "8",
                                             "-a", "glibc,jemalloc", "-w", "larson", "--workloads", "churn,prodcons"])
        let c = try XCTUnwrap(cmd as? Compare)
        XCTAssertTrue(c.quick)
        XCTAssertEqual(c.out, "/tmp/x")
        XCTAssertEqual(c.effectiveRepetitions, 3)
        XCTAssertEqual(c.effectiveScale, 1)
        XCTAssertEqual(try parseThreads(c.threads), [1, 2, 8])
        XCTAssertEqual(try parseWorkloads(c.workloads).map(\.name), ["larson", "churn", "prodcons"])
        XCTAssertEqual(splitList(c.allocators), ["glibc", "jemalloc"])
        let s = try c.settings(perf: false)
        XCTAssertEqual(s.threads, [1, 2, 8])
        XCTAssertTrue(s.quick)
    }

    func testCompareFullDefaults() throws {
        let c = try XCTUnwrap(try MallocLab.parseAsRoot(["compare"]) as? Compare)
        XCTAssertFalse(c.quick)
        XCTAssertEqual(c.effectiveRepetitions, 5)
        XCTAssertEqual(c.effectiveScale, 3)
        XCTAssertNil(c.out)
        XCTAssertEqual(try parseWorkloads(c.workloads).count, WorkloadCatalog.all.count)
        XCTAssertEqual(c.repetitions, nil)
        let c2 = try XCTUnwrap(try MallocLab.parseAsRoot(["compare", "--quick", "-r", "7", "--scale", "0.5"]) as? Compare)
        XCTAssertEqual(c2.effectiveRepetitions, 7)
        XCTAssertEqual(c2.effectiveScale, 0.5)
    }

    func testCompareRejectsBadValues() {
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["compare", "--threads", "0"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["compare", "--threads", "two"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["compare", "--workloads", "nosuch"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["compare", "--repetitions", "0"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["compare", "--scale", "-1"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["compare", "--bogus"]))
    }

    func testRunAllocatorAndFrontEnd() throws {
        let r = try XCTUnwrap(try MallocLab.parseAsRoot(["run", "larson", "-a", "swiftmalloc", "--frontend", "thread", "-t", "8", "-r", "2"]) as? Run)
        XCTAssertEqual(r.workload, "larson")
        XCTAssertEqual(r.allocatorID, "swiftmalloc-thread")
        XCTAssertEqual(r.threads, 8)
        XCTAssertEqual(r.repetitions, 2)
        let d = try XCTUnwrap(try MallocLab.parseAsRoot(["run", "churn"]) as? Run)
        XCTAssertEqual(d.allocatorID, "swiftmalloc-percpu")
        XCTAssertEqual(d.repetitions, 5)
        XCTAssertNil(d.perf)
        let p = try XCTUnwrap(try MallocLab.parseAsRoot(["run", "churn", "--no-perf", "-a", "jemalloc"]) as? Run)
        XCTAssertEqual(p.perf, false)
        XCTAssertEqual(p.allocatorID, "jemalloc")
        let l = try XCTUnwrap(try MallocLab.parseAsRoot(["run", "churn", "--library", "/x/libSwiftMalloc.so"]) as? Run)
        XCTAssertEqual(l.lib.resolvedLibrary, "/x/libSwiftMalloc.so")
    }

    func testRunRejectsBadValues() {
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["run", "nosuch"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["run"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["run", "churn", "--frontend", "bogus"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["run", "churn", "-a", "glibc", "--frontend", "thread"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["run", "churn", "-t", "0"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["run", "churn", "-r", "0"]))
    }

    func testReportListSetup() throws {
        let rep = try XCTUnwrap(try MallocLab.parseAsRoot(["report", "some/dir"]) as? Report)
        XCTAssertEqual(rep.dir, "some/dir")
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["report"]))
        XCTAssertNotNil(try MallocLab.parseAsRoot(["list"]) as? List)
        let s = try XCTUnwrap(try MallocLab.parseAsRoot(["setup", "--dry-run"]) as? Setup)
        XCTAssertTrue(s.dryRun)
        XCTAssertEqual(Setup.installCommand(packages: ["libjemalloc2"], isRoot: true, sudo: nil),
                       ["apt-get", "install", "-y", "--no-install-recommends", "libjemalloc2"])
        XCTAssertEqual(Setup.installCommand(packages: ["libjemalloc2"], isRoot: false, sudo: "/usr/bin/sudo")?.first, "/usr/bin/sudo")
        XCTAssertNil(Setup.installCommand(packages: ["libjemalloc2"], isRoot: false, sudo: nil))
        XCTAssertNil(Setup.installCommand(packages: [], isRoot: true, sudo: nil))
    }

    func testAllocatorSelection() throws {
        let known = AllocatorDiscovery.all(swiftMallocLibrary: "/nonexistent/libSwiftMalloc.so")
        XCTAssertEqual(try AllocatorDiscovery.select(["swiftmalloc"], from: known).map(\.id),
                       ["swiftmalloc-percpu", "swiftmalloc-thread", "swiftmalloc-arenas", "swiftmalloc-global"])
        XCTAssertEqual(try AllocatorDiscovery.select(["glibc,peers"], from: known).map(\.id), ["glibc", "jemalloc", "mimalloc", "tcmalloc"])
        XCTAssertThrowsError(try AllocatorDiscovery.select(["hoard"], from: known))
        // A missing library makes SwiftMalloc unavailable, with a build hint.
        let sm = try XCTUnwrap(known.first { $0.id == "swiftmalloc-percpu" })
        XCTAssertFalse(sm.available)
        XCTAssertTrue(sm.note.contains("swift build -c release"))
        let c = try XCTUnwrap(try MallocLab.parseAsRoot(["compare", "--library", "/nonexistent/libSwiftMalloc.so"]) as? Compare)
        XCTAssertThrowsError(try c.selectedAllocators(known: known)) { e in
            XCTAssertTrue("\(e)".contains("swift build -c release"), "\(e)")
        }
        // Without SwiftMalloc selected, the missing library does not matter.
        let g = try XCTUnwrap(try MallocLab.parseAsRoot(["compare", "-a", "glibc"]) as? Compare)
        XCTAssertEqual(try g.selectedAllocators(known: known).run.map(\.id), ["glibc"])
    }

    func testWorkloadThreadCounts() throws {
        let prodcons = try XCTUnwrap(WorkloadCatalog.named("prodcons"))
        XCTAssertEqual(prodcons.threadCounts(quick: true, requested: [1, 3, 8]), [2, 4, 8])
        let churn = try XCTUnwrap(WorkloadCatalog.named("churn"))
        XCTAssertEqual(churn.threadCounts(quick: true, requested: [4, 8]), [1])
        let larson = try XCTUnwrap(WorkloadCatalog.named("larson"))
        XCTAssertEqual(larson.threadCounts(quick: true, requested: nil), [1, 2, 8])
        XCTAssertEqual(larson.threadCounts(quick: false, requested: [16, 4]), [4, 16])
        XCTAssertGreaterThanOrEqual(WorkloadCatalog.all.count, 9)
        XCTAssertEqual(Set(WorkloadCatalog.names).count, WorkloadCatalog.all.count)
    }

    /// Every workload with a thread count follows --threads (oversubscription
    /// at 64 and 256 threads); one that cannot says so in one line.
    func testCompareFollowsThreadsOrSaysItDoesNot() throws {
        let c = try XCTUnwrap(try MallocLab.parseAsRoot(["compare", "--threads", "64,256", "-w", "oversub,churn,larson"]) as? Compare)
        let plan = MatrixPlan(workloads: try parseWorkloads(c.workloads), allocators: [], settings: try c.settings(perf: false))
        XCTAssertEqual(plan.threads["oversub"], [64, 256])
        XCTAssertEqual(plan.threads["larson"], [64, 256])
        XCTAssertEqual(plan.threads["churn"], [1])
        XCTAssertEqual(plan.threadOptionNotes, ["note: churn runs 1 thread whatever --threads says"])
        let quick = try XCTUnwrap(try MallocLab.parseAsRoot(["compare", "--quick", "-w", "oversub,churn"]) as? Compare)
        let quickPlan = MatrixPlan(workloads: try parseWorkloads(quick.workloads), allocators: [], settings: try quick.settings(perf: false))
        XCTAssertEqual(quickPlan.threadOptionNotes, [], "no --threads, no note")
    }

    func testChildEnvironment() {
        let base = ["PATH": "/usr/bin", "LD_PRELOAD": "/x.so", "SWIFTMALLOC_FRONTEND": "global", "SWIFTMALLOC_STATS_FILE": "/tmp/s",
                    "MALLOC_CONF": "narenas:1", "GLIBC_TUNABLES": "glibc.pthread.rseq=0", "SWIFTMALLOC_PERCPU_ID": "cpu",
                    "MALLOC_LAB_JEMALLOC": "/j.so"]
        let clean = ProcessRunner.cleanEnvironment(base)
        XCTAssertNil(clean["LD_PRELOAD"])
        XCTAssertNil(clean["SWIFTMALLOC_FRONTEND"])
        XCTAssertNil(clean["SWIFTMALLOC_STATS_FILE"])
        XCTAssertEqual(clean["PATH"], "/usr/bin")
        XCTAssertEqual(ProcessRunner.allocatorSettings(base),
                       ["MALLOC_CONF": "narenas:1", "GLIBC_TUNABLES": "glibc.pthread.rseq=0", "SWIFTMALLOC_PERCPU_ID": "cpu"])
        let spec = AllocatorSpec(id: "swiftmalloc-arenas", kind: .swiftmalloc, library: "/l/libSwiftMalloc.so", frontend: "arenas",
                                 debianPackage: nil, available: true, note: "")
        XCTAssertEqual(spec.environment, ["LD_PRELOAD": "/l/libSwiftMalloc.so", "SWIFTMALLOC_FRONTEND": "arenas"])
        XCTAssertEqual(spec.expectedProvider, "libSwiftMalloc.so")
    }
}
