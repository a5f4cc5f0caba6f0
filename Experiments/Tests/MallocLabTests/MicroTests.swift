// malloc-lab micro: its options, its workload specs, the tables it prints,
// and real runs of malloc-lab with malloc-lab-micro under glibc and
// SwiftMalloc (and callgrind, where valgrind is installed).
import ArgumentParser
import Foundation
import XCTest
@testable import MallocLabCLI
@testable import MallocLabCore

final class MicroTests: XCTestCase {
    // MARK: Options

    func testMicroDefaultsAreTheScriptsMethodology() throws {
        let m = try XCTUnwrap(try MallocLab.parseAsRoot(["micro"]) as? Micro)
        let s = try m.settings()
        XCTAssertEqual(s.workloads.map(\.description), ["pairs:16", "pairs:64", "pairs:256", "batch64-fifo:16", "batch64-lifo:16"])
        XCTAssertEqual(s.repetitions, 7)
        XCTAssertEqual(s.ops, 20_000_000)
        XCTAssertEqual(s.callgrindOps, 200_000)
        XCTAssertEqual(s.trialOps, 200_000)
        XCTAssertEqual(s.statistic, .wallMin)
        XCTAssertNil(s.cpu)
        XCTAssertEqual(m.frontends, ["thread"])
        XCTAssertEqual(splitList(m.only), ["glibc", "jemalloc", "mimalloc", "tcmalloc", "swiftmalloc"])
        XCTAssertFalse(m.callgrind)
        XCTAssertNil(m.out)
    }

    func testMicroOptions() throws {
        let m = try XCTUnwrap(try MallocLab.parseAsRoot([
            "micro", "--library", "/x/libSwiftMalloc.so", "--frontends", "thread,percpu", "--reps", "3", "--ops", "1000",
            "--callgrind-ops", "500", "--trial", "100", "--stat", "cpu-median", "--cpu", "-1",
            "-w", "pairs:16-256", "--workloads", "batch64-lifo:32,batch64-fifo:8-64", "--only", "glibc,swiftmalloc",
            "--callgrind", "--annotate", "--out", "/tmp/o", "--timeout", "9",
        ]) as? Micro)
        let s = try m.settings()
        XCTAssertEqual(m.lib.resolvedLibrary, "/x/libSwiftMalloc.so")
        XCTAssertEqual(splitList(m.frontends), ["thread", "percpu"])
        XCTAssertEqual(s.repetitions, 3)
        XCTAssertEqual(s.ops, 1000)
        XCTAssertEqual(s.callgrindOps, 500)
        XCTAssertEqual(s.trialOps, 100)
        XCTAssertEqual(s.statistic, .cpuMedian)
        XCTAssertEqual(s.cpu, -1)
        XCTAssertEqual(s.timeout, 9)
        XCTAssertEqual(s.workloads, [MicroWorkload(kind: .pairs, minSize: 16, maxSize: 256),
                                     MicroWorkload(kind: .batch64LIFO, minSize: 32, maxSize: 32),
                                     MicroWorkload(kind: .batch64FIFO, minSize: 8, maxSize: 64)])
        XCTAssertEqual(s.workloadArguments, ["-w", "pairs:16-256", "-w", "batch64-lifo:32", "-w", "batch64-fifo:8-64"])
        XCTAssertEqual(splitList(m.only), ["glibc", "swiftmalloc"])
        XCTAssertTrue(m.callgrind && m.annotate)
        XCTAssertEqual(m.out, "/tmp/o")
        let short = try XCTUnwrap(try MallocLab.parseAsRoot(["micro", "-r", "2"]) as? Micro)
        XCTAssertEqual(short.repetitions, 2)
    }

    func testMicroRejectsBadValues() {
        for args in [["--stat", "fastest"], ["--reps", "0"], ["--ops", "0"], ["--cpu", "-2"], ["-w", "pairs"],
                     ["-w", "pairs:0"], ["-w", "pairs:64-16"], ["-w", "triples:16"], ["--frontends", "nosuch"],
                     ["--annotate"], ["--timeout", "0"]] {
            XCTAssertThrowsError(try MallocLab.parseAsRoot(["micro"] + args), "\(args)")
        }
    }

    func testWorkloadSpecs() throws {
        let fixed = try MicroWorkload(parsing: "batch64-fifo:16")
        XCTAssertFalse(fixed.isRandom)
        XCTAssertEqual(fixed.description, "batch64-fifo:16")
        XCTAssertEqual(fixed.title, "batch64-fifo 16 B")
        let random = try MicroWorkload(parsing: "pairs:8-1024")
        XCTAssertTrue(random.isRandom)
        XCTAssertEqual(random.sizeLabel, "8-1024")
        XCTAssertEqual(random.title, "pairs 8–1024 B random")
        for bad in ["pairs", "pairs:", "pairs:-3", "pairs:3-", "pairs:1-2-3", "pairs:x", ":16", "pairs:16:32"] {
            XCTAssertThrowsError(try MicroWorkload(parsing: bad), bad)
        }
    }

    func testChoosingAllocators() throws {
        let known = AllocatorDiscovery.all(swiftMallocLibrary: "/bin/sh")  // any existing file stands for the library
        let (run, _) = try MicroSelection.choose(only: ["swiftmalloc", "glibc"], frontends: ["percpu", "thread"], known: known)
        XCTAssertEqual(run.map(\.id), ["glibc", "swiftmalloc-percpu", "swiftmalloc-thread"])
        XCTAssertThrowsError(try MicroSelection.choose(only: ["ptmalloc"], frontends: ["thread"], known: known))
        let missing = AllocatorDiscovery.all(swiftMallocLibrary: "/nonexistent/libSwiftMalloc.so")
        XCTAssertThrowsError(try MicroSelection.choose(only: ["swiftmalloc"], frontends: ["thread"], known: missing))
        XCTAssertEqual(try MicroSelection.choose(only: ["glibc"], frontends: [], known: missing).run.map(\.id), ["glibc"])
    }

    // MARK: Output and tables

    func testParsesTheBenchmarksLines() {
        let text = "malloc_from\t/lib/libc.so.6\nfree_from\t/lib/libc.so.6\ncpu\t1\ncompiler\tClang 21\n"
            + "result\tpairs\t16\t200000\t10.5\t11.0\t10.4\t10.9\nresult\tbatch64-lifo\t8-64\t199936\t7.25\t7.5\t7.0\t7.1\nnoise\n"
        let o = MicroOutput.parse(text)
        XCTAssertEqual(o.mallocFrom, "/lib/libc.so.6")
        XCTAssertEqual(o.compiler, "Clang 21")
        XCTAssertEqual(o.results, [
            MicroResult(workload: "pairs:16", ops: 200000, wallMin: 10.5, wallMedian: 11.0, cpuMin: 10.4, cpuMedian: 10.9),
            MicroResult(workload: "batch64-lifo:8-64", ops: 199936, wallMin: 7.25, wallMedian: 7.5, cpuMin: 7.0, cpuMedian: 7.1),
        ])
        XCTAssertEqual(o.results[1].value(.cpuMin), 7.0)
        XCTAssertEqual(o.results[1].value(.wallMedian), 7.5)
    }

    func testTableMediansRatiosAndVerdict() throws {
        let pairs = try MicroWorkload(parsing: "pairs:16"), batch = try MicroWorkload(parsing: "batch64-fifo:16")
        var t = MicroTable(allocators: ["glibc", "tcmalloc", "swiftmalloc-percpu"], peers: ["glibc", "tcmalloc"], workloads: [pairs, batch])
        for v in [10.0, 12, 11] { t.add(v, workload: pairs, allocator: "glibc") }
        for v in [6.0, 5, 7] { t.add(v, workload: pairs, allocator: "tcmalloc") }
        for v in [9.0, 8, 100] { t.add(v, workload: pairs, allocator: "swiftmalloc-percpu") }
        for v in [8.0, 8] { t.add(v, workload: batch, allocator: "glibc") }
        for v in [10.0, 12] { t.add(v, workload: batch, allocator: "tcmalloc") }
        for v in [8.4, 8.4] { t.add(v, workload: batch, allocator: "swiftmalloc-percpu") }
        XCTAssertEqual(t.median(pairs, "swiftmalloc-percpu"), 9)
        XCTAssertEqual(t.fastestPeer(pairs)?.name, "tcmalloc")
        XCTAssertEqual(t.fastestPeer(batch)?.name, "glibc")
        let md = t.markdown(unit: "ns", decimals: 2, goalMarks: true).split(separator: "\n").map(String.init)
        XCTAssertEqual(md[0], "| workload (ns) | glibc | tcmalloc | swiftmalloc-percpu | fastest peer | swiftmalloc-percpu ÷ fastest peer |")
        XCTAssertEqual(md[2], "| pairs 16 B | 11.00 (1.83×) | 6.00 (1.00×) | 9.00 (1.50×) | tcmalloc | **1.50×** ✅ |")
        XCTAssertEqual(md[3], "| batch64-fifo 16 B | 8.00 (1.00×) | 11.00 (1.38×) | 8.40 (1.05×) | glibc | **1.05×** ✅ |")
        let spread = t.spreadMarkdown(decimals: 1).split(separator: "\n").map(String.init)
        XCTAssertEqual(spread[2], "| pairs 16 B | 10.0–12.0 | 5.0–7.0 | 8.0–100.0 |")
        let verdict = t.verdict()
        XCTAssertEqual(verdict.count, 2)
        XCTAssertEqual(verdict[0], "swiftmalloc-percpu: within 1.5× of the fastest peer on every workload (worst 1.50× on pairs 16 B). Goal met.")
        XCTAssertEqual(verdict[1], "swiftmalloc-percpu: NOT within 1.1× of tcmalloc on: pairs 16 B (1.500×). Goal not met.")
        t.add(20, workload: batch, allocator: "swiftmalloc-percpu")  // median now 8.4 of [8.4, 8.4, 20]: unchanged
        XCTAssertEqual(t.median(batch, "swiftmalloc-percpu"), 8.4)
    }

    func testCallgrindCountIsRead() {
        XCTAssertEqual(MicroRunner.collectedInstructions("==12== Events    : Ir\n==12== Collected : 5100021\n==12==\n"), 5_100_021)
        XCTAssertNil(MicroRunner.collectedInstructions("==12== nothing\n"))
    }

    // MARK: Real runs

    /// malloc-lab and malloc-lab-micro, built next to the tests.
    func labExecutables() throws -> (lab: String, micro: String) {
        let hint = "`swift build` builds it next to the tests"
        return (try Fixtures.built(LabPaths.buildDirectory.appendingPathComponent("malloc-lab").path, hint: hint),
                try Fixtures.built(LabPaths.microExecutable, hint: hint))
    }

    /// Runs `malloc-lab micro ARGUMENTS` on the release library; its
    /// output, once it has ended with status 0.
    func runMicro(_ arguments: [String], scratch: URL, timeout: Double) throws -> String {
        let (lab, _) = try labExecutables()
        let o = try ProcessRunner.run(executable: lab,
                                      arguments: ["micro", "--library", try Fixtures.swiftMallocLibrary()] + arguments,
                                      environment: ProcessRunner.cleanEnvironment(), scratch: scratch, timeout: timeout)
        XCTAssertEqual(o.exitStatus, 0, o.stderr)
        return o.stdout
    }

    /// The cells of the results table's row for `workload`, by column title.
    func resultRow(_ report: String, workload: String) throws -> [String: String] {
        let lines = report.split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.first { $0.hasPrefix("| workload (") }, report)
        let row = try XCTUnwrap(lines.first { $0.hasPrefix("| \(workload) |") }, report)
        func cells(_ line: String) -> [String] {
            line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return Dictionary(uniqueKeysWithValues: zip(cells(header), cells(row)))
    }

    /// The number at the start of a cell ("10.61 (1.71×)" → 10.61).
    func leadingNumber(_ cell: String?) -> Double? {
        cell.flatMap { $0.split(separator: " ").first }.flatMap { Double($0) }
    }

    func testARealTimedRunHasAColumnPerAllocatorWithPositiveTimes() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let stdout = try runMicro(["--only", "glibc,swiftmalloc", "--frontends", "thread", "--reps", "2", "--ops", "20000",
                                   "--trial", "5000", "-w", "pairs:64", "--out", scratch.appendingPathComponent("out").path],
                                  scratch: scratch, timeout: 120)
        let row = try resultRow(stdout, workload: "pairs 64 B")
        for a in ["glibc", "swiftmalloc-thread"] {
            let v = try XCTUnwrap(leadingNumber(row[a]), "no number for \(a) in \(row)")
            XCTAssertGreaterThan(v, 0, a)
            XCTAssertLessThan(v, 100_000, a)
        }
        XCTAssertEqual(row["fastest peer"], "glibc")
        XCTAssertNotNil(row["swiftmalloc-thread ÷ fastest peer"])
        // Machine facts and the allocator checks come with the result.
        for fact in ["| CPU |", "| kernel |", "| C library |", "| rseq |", "glibc: malloc from", "front end thread confirmed"] {
            XCTAssertTrue(stdout.contains(fact), "missing \(fact) in\n\(stdout)")
        }
        // --out keeps every run: 2 repetitions × 2 allocators × 1 workload.
        let raw = try String(contentsOf: scratch.appendingPathComponent("out/raw.tsv"), encoding: .utf8)
        let rows = raw.split(separator: "\n").map { $0.split(separator: "\t") }
        XCTAssertEqual(rows.count, 4)
        XCTAssertEqual(Set(rows.map { String($0[0]) }), ["glibc", "swiftmalloc-thread"])
        XCTAssertTrue(rows.allSatisfy { $0.count == 8 && $0[1] == "pairs" && $0[2] == "64" && (Double($0[3]) ?? 0) > 0 })
    }

    func testAWrongLibraryIsCaughtBeforeTiming() throws {
        let (_, micro) = try labExecutables()
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let runner = try MicroRunner(executable: micro, scratch: scratch, settings: MicroSettings(repetitions: 1, ops: 1000))
        // Claims to preload a library it does not: malloc resolves to libc.
        let liar = AllocatorSpec(id: "jemalloc", kind: .peer, library: "/nonexistent/libjemalloc.so.2", frontend: nil,
                                 debianPackage: nil, available: true, note: "")
        XCTAssertThrowsError(try runner.verify(liar)) { error in
            XCTAssertTrue("\(error)".contains("jemalloc"), "\(error)")
        }
    }

    func testCallgrindCountsInstructionsPerPair() throws {
        guard ProcessRunner.which("valgrind") != nil else { throw XCTSkip("valgrind is not installed") }
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let stdout = try runMicro(["--callgrind", "--only", "glibc,swiftmalloc", "--frontends", "thread",
                                   "--callgrind-ops", "2000", "-w", "pairs:16"], scratch: scratch, timeout: 300)
        let row = try resultRow(stdout, workload: "pairs 16 B")
        for a in ["glibc", "swiftmalloc-thread"] {
            // A pair is at least the loop's instructions plus two calls.
            let ir = try XCTUnwrap(leadingNumber(row[a]), "no count for \(a) in \(row)")
            XCTAssertGreaterThan(ir, 20, a)
            XCTAssertLessThan(ir, 2000, a)
        }
    }
}
