// malloc-lab: the experiments command line.
//
//   malloc-lab list                     workloads, front ends, allocators here
//   malloc-lab run WORKLOAD ...          one workload × allocator × threads, N times
//   malloc-lab compare [--quick] --out DIR   the matrix, with report and charts
//   malloc-lab micro                     single-threaded malloc/free pairs and batches, all allocators
//   malloc-lab report DIR                re-render a report from DIR/results.json
//   malloc-lab setup                     install the peer allocators' Debian packages
//   malloc-lab profile -- CMD ...        suggest size classes for a program (ProfileCommand.swift)
//   malloc-lab tune --config F -- CMD    built-in classes against a configuration (TuneCommand.swift)
import ArgumentParser
import Foundation
import MallocLabCore
import MallocLabShared

public struct MallocLab: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "malloc-lab",
        abstract: "Compare SwiftMalloc's front ends with glibc, jemalloc, mimalloc and tcmalloc on allocation workloads.",
        discussion: """
            Every run is its own process (malloc-lab-workload) with the allocator preloaded (LD_PRELOAD), so all \
            allocators are measured the same way. Start with `malloc-lab compare --quick --out results/quick`.
            """,
        subcommands: [List.self, Run.self, Compare.self, Micro.self, Report.self, Setup.self, Profile.self, Tune.self])

    public init() {}
}

// MARK: - Shared options

public struct LibraryOptions: ParsableArguments {
    @Option(name: [.customLong("library"), .customLong("lib")],
            help: ArgumentHelp("The SwiftMalloc library to preload (default: $SWIFTMALLOC_LIB or .build/release/libSwiftMalloc.so).",
                               valueName: "path"))
    public var library: String?

    public init() {}

    public var resolvedLibrary: String {
        if let library { return URL(fileURLWithPath: library).standardizedFileURL.path }
        return LabPaths.defaultLibrary
    }

    public var libraryExists: Bool { FileManager.default.fileExists(atPath: resolvedLibrary) }

    public func missingLibraryMessage() -> String {
        "SwiftMalloc library not found: \(resolvedLibrary)\n  \(LabPaths.libraryBuildHint)\n  (or leave SwiftMalloc out with --allocators glibc,peers)"
    }
}

/// The program a command runs under the allocator (profile, tune): what
/// follows `--`, and its time limit.
public struct ProgramArguments: ParsableArguments {
    @Option(name: .long, help: "Time limit for each run of the program, in seconds.")
    public var timeout: Double = 600

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The program and its arguments, after --.", valueName: "command"))
    public var command: [String] = []

    public init() {}

    public func validate() throws {
        if command.isEmpty { throw ValidationError("give the program to run after --, e.g. `-- python3 script.py`") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }

    public func program(library: LibraryOptions) throws -> ProgramUnderTest {
        try ProgramUnderTest(command: command, library: library.resolvedLibrary, timeout: timeout)
    }
}

/// Splits repeated and comma-separated values: ["a,b", "c"] → ["a", "b", "c"].
func splitList(_ values: [String]) -> [String] {
    values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

func parseThreads(_ values: [String]) throws -> [Int] {
    try splitList(values).map { v in
        guard let n = Int(v), n >= 1, n <= 4096 else { throw ValidationError("thread counts are integers from 1 to 4096 (got '\(v)')") }
        return n
    }
}

func parseWorkloads(_ values: [String]) throws -> [WorkloadInfo] {
    let names = splitList(values)
    if names.isEmpty || names == ["all"] { return WorkloadCatalog.all }
    return try names.map { n in
        guard let w = WorkloadCatalog.named(n) else {
            throw ValidationError("unknown workload '\(n)'; known: \(WorkloadCatalog.names.joined(separator: ", "))")
        }
        return w
    }
}

func stderrLine(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

func commandLineText() -> String {
    (["malloc-lab"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
}

func isoNow() -> String { ISO8601DateFormatter().string(from: Date()) }

// MARK: - list

public struct List: ParsableCommand {
    public static let configuration = CommandConfiguration(abstract: "Show the workloads, SwiftMalloc's front ends, and the allocators found on this machine.")

    @OptionGroup public var lib: LibraryOptions

    public init() {}

    public func run() throws {
        print("Workloads (quick threads / full threads):")
        for w in WorkloadCatalog.all {
            print("  \(w.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(w.title) — \(w.quickThreads.map(String.init).joined(separator: ",")) / \(w.fullThreads.map(String.init).joined(separator: ","))")
            print("  \(String(repeating: " ", count: 14)) \(w.pattern)")
        }
        print("\nSwiftMalloc front ends (SWIFTMALLOC_FRONTEND): \(FrontEnds.all.joined(separator: ", "))")
        print("\nAllocators:")
        for a in AllocatorDiscovery.all(swiftMallocLibrary: lib.resolvedLibrary) {
            print("  \(a.available ? "✓" : "✗") \(a.id.padding(toLength: 20, withPad: " ", startingAt: 0)) \(a.note)")
        }
        let workload = LabPaths.workloadExecutable
        print("\nWorkload program: \(workload)\(FileManager.default.isExecutableFile(atPath: workload) ? "" : " (missing: build with `swift build -c release --scratch-path .build-lab`)")")
        let perf = MachineProbe.perfSupport()
        print("perf counters: \(perf.available ? "available" : "not available") — \(perf.note)")
        if !lib.libraryExists { print("\n" + lib.missingLibraryMessage()) }
    }
}

// MARK: - run

public struct Run: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Run one workload under one allocator at one thread count, several times.",
        discussion: "Example: malloc-lab run larson --allocator swiftmalloc --frontend percpu --threads 8 --repetitions 5")

    @Argument(help: ArgumentHelp("The workload (see `malloc-lab list`).", valueName: "workload"))
    public var workload: String

    @Option(name: [.short, .long], help: "Allocator: swiftmalloc, swiftmalloc-<frontend>, glibc, jemalloc, mimalloc or tcmalloc.")
    public var allocator: String = "swiftmalloc"

    @Option(name: .long, help: ArgumentHelp("SwiftMalloc front end when --allocator is swiftmalloc: \(FrontEnds.all.joined(separator: ", ")).", valueName: "name"))
    public var frontend: String?

    @Option(name: [.short, .long], help: "Thread count (default: the workload's largest quick count).")
    public var threads: Int?

    @Option(name: [.short, .long], help: "Repetitions.")
    public var repetitions: Int = 5

    @Option(name: .long, help: "Work multiplier (1 = the quick size).")
    public var scale: Double = 1

    @Option(name: .long, help: "Time every Nth malloc and free.")
    public var sampleEvery: Int = 64

    @Option(name: .long, help: "Random seed (repetition r uses seed + r).")
    public var seed: UInt64 = 1

    @Option(name: .long, help: "Time limit per run, in seconds.")
    public var timeout: Double = 300

    @Flag(inversion: .prefixedNo, help: "Wrap runs in `perf stat` (default: when perf works here).")
    public var perf: Bool?

    @Option(name: .long, help: ArgumentHelp("Also write results.json, results.csv, report.md and charts here.", valueName: "dir"))
    public var out: String?

    @Flag(name: .long, help: "Print each run's sample as JSON.")
    public var json = false

    @OptionGroup public var lib: LibraryOptions

    public init() {}

    public func validate() throws {
        guard WorkloadCatalog.named(workload) != nil else {
            throw ValidationError("unknown workload '\(workload)'; known: \(WorkloadCatalog.names.joined(separator: ", "))")
        }
        if repetitions < 1 { throw ValidationError("--repetitions must be at least 1") }
        if let threads, threads < 1 || threads > 4096 { throw ValidationError("--threads must be from 1 to 4096") }
        if scale <= 0 || scale > 1000 { throw ValidationError("--scale must be in (0, 1000]") }
        if sampleEvery < 1 { throw ValidationError("--sample-every must be at least 1") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if let frontend, !FrontEnds.all.contains(frontend) {
            throw ValidationError("unknown front end '\(frontend)'; choose from \(FrontEnds.all.joined(separator: ", "))")
        }
        if frontend != nil, allocator != "swiftmalloc" {
            throw ValidationError("--frontend applies to --allocator swiftmalloc only")
        }
    }

    /// The allocator id this invocation means.
    public var allocatorID: String {
        if allocator == "swiftmalloc" { return "swiftmalloc-\(frontend ?? "percpu")" }
        return allocator
    }

    public func run() throws {
        let info = WorkloadCatalog.named(workload)!
        let known = AllocatorDiscovery.all(swiftMallocLibrary: lib.resolvedLibrary)
        guard let spec = try AllocatorDiscovery.select([allocatorID], from: known).first else {
            throw ValidationError("no allocator selected")
        }
        if spec.kind == .swiftmalloc && !lib.libraryExists { throw LabError.missing(lib.missingLibraryMessage()) }
        if !spec.available { throw LabError.missing("\(spec.id): \(spec.note)") }
        // An explicit thread count is honoured (rounded up to the workload's
        // multiple: producer/consumer runs in pairs).
        let m = max(info.threadMultiple, 1)
        let t = threads.map { max(m, (($0 + m - 1) / m) * m) } ?? info.quickThreads.last ?? 1
        if let threads, t != threads { stderrLine("note: \(info.name) runs \(t) threads (asked for \(threads))") }
        let perfSupport = MachineProbe.perfSupport()
        let usePerf = (perf ?? perfSupport.available) && perfSupport.available
        if perf == true && !perfSupport.available { stderrLine("note: \(perfSupport.note)") }
        let runner = try WorkloadRunner(workloadExecutable: LabPaths.workloadExecutable, perfPath: usePerf ? perfSupport.perfPath : nil)
        defer { runner.cleanUp() }
        let start = Date()
        let progress = ProgressLine(total: repetitions)
        var samples: [Sample] = []
        for rep in 0..<repetitions {
            progress.update(done: rep, failed: samples.filter { !$0.status.isOK }.count, current: "\(info.name) · \(spec.id) · \(t) threads · rep \(rep + 1)/\(repetitions)")
            let s = runner.run(RunRequest(workload: info, allocator: spec, threads: t, repetition: rep, scale: scale,
                                          sampleEvery: sampleEvery, seed: seed, timeout: timeout, perf: usePerf))
            samples.append(s)
            if !s.status.isOK { break }
        }
        progress.finish("\(samples.count) run\(samples.count == 1 ? "" : "s") in \(Fmt.seconds(Date().timeIntervalSince(start)))")
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            for s in samples { print(String(decoding: try e.encode(s), as: UTF8.self)) }
        }
        print("\(info.name) · \(spec.id) · \(t) thread\(t == 1 ? "" : "s") · scale \(scale)")
        for s in samples {
            if s.status.isOK {
                print(String(format: "  rep %d: %@ %@/s  wall %@  peak RSS %@  malloc p50/p99 %@/%@ ns",
                             s.repetition + 1, Fmt.si(s.throughput ?? 0), info.opsUnit, Fmt.seconds(s.wallSeconds ?? 0),
                             Fmt.bytes(s.peakRss ?? 0), s.malloc.map { String(format: "%.0f", $0.p50) } ?? "—",
                             s.malloc.map { String(format: "%.0f", $0.p99) } ?? "—"))
            } else {
                print("  rep \(s.repetition + 1): \(s.status.label): \(s.error ?? "")")
            }
        }
        let cell = Summarizer.summarize(samples)
        if cell.isOK, let tp = cell.throughput {
            print(String(format: "  median %@ %@/s (min %@, max %@, range ±%@); peak RSS %@",
                         Fmt.si(tp.median), info.opsUnit, Fmt.si(tp.min), Fmt.si(tp.max), Fmt.percent(tp.relativeRange / 2),
                         Fmt.bytes(cell.peakRss?.median ?? 0)))
        }
        if let out {
            let dir = URL(fileURLWithPath: out)
            let env = ProcessRunner.allocatorSettings()
            let settings = RunSettings(quick: false, repetitions: repetitions, scale: scale, sampleEvery: sampleEvery, seed: seed,
                                       threads: [t], timeoutSeconds: timeout, perf: usePerf, environment: env.isEmpty ? nil : env)
            let machine = MachineProbe.collect(libraryPath: lib.resolvedLibrary, workloadExecutable: LabPaths.workloadExecutable,
                                               packageRoot: LabPaths.packageRoot, perf: perfSupport)
            let results = ResultsFile(command: commandLineText(), createdAt: isoNow(), durationSeconds: Date().timeIntervalSince(start),
                                      settings: settings, machine: Compare.refine(machine, with: samples), allocators: [spec],
                                      workloads: [info], samples: samples)
            try OutputWriter.write(results, to: dir)
            print("Wrote \(dir.path)/report.md")
        }
        if !cell.isOK { throw ExitCode(3) }
    }
}

// MARK: - compare

public struct Compare: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Run the matrix of workloads × allocators × thread counts and write a report.",
        discussion: """
            Writes DIR/report.md, DIR/results.json, DIR/results.csv and DIR/charts/*.svg. \
            --quick (3 repetitions, small sizes, threads 1,2,8 and 64 for oversubscription) takes about 2 minutes on 2 CPUs. \
            Exit status 3 when some cells failed their checks (the report says which).
            """)

    @Flag(name: .long, help: "The quick matrix: 3 repetitions, scale 1, the workloads' quick thread counts.")
    public var quick = false

    @Option(name: [.short, .long], help: ArgumentHelp("Output directory (default: results/<date>).", valueName: "dir"))
    public var out: String?

    @Option(name: [.short, .long], parsing: .singleValue, help: ArgumentHelp("Workloads, comma-separated or repeated (default: all).", valueName: "names"))
    public var workloads: [String] = []

    @Option(name: [.short, .long], parsing: .singleValue,
            help: ArgumentHelp("Allocators: ids, or swiftmalloc (all front ends), peers, glibc, all (default: swiftmalloc,glibc,peers — peers that are not installed are skipped).", valueName: "names"))
    public var allocators: [String] = []

    @Option(name: [.short, .long], parsing: .singleValue, help: ArgumentHelp("Thread counts for the workloads that take them (default: each workload's own).", valueName: "n,n,..."))
    public var threads: [String] = []

    @Option(name: [.short, .long], help: "Repetitions per cell (default 5; 3 with --quick).")
    public var repetitions: Int?

    @Option(name: .long, help: "Work multiplier (default 3; 1 with --quick).")
    public var scale: Double?

    @Option(name: .long, help: "Time every Nth malloc and free.")
    public var sampleEvery: Int = 64

    @Option(name: .long, help: "Random seed (repetition r uses seed + r).")
    public var seed: UInt64 = 1

    @Option(name: .long, help: "Time limit per run, in seconds.")
    public var timeout: Double = 120

    @Flag(inversion: .prefixedNo, help: "Wrap runs in `perf stat` (default: when perf works here).")
    public var perf: Bool?

    @Flag(name: .long, help: "No progress line.")
    public var quiet = false

    @OptionGroup public var lib: LibraryOptions

    public init() {}

    public var effectiveRepetitions: Int { repetitions ?? (quick ? 3 : 5) }
    public var effectiveScale: Double { scale ?? (quick ? 1 : 3) }

    public func validate() throws {
        _ = try parseWorkloads(workloads)
        _ = try parseThreads(threads)
        if effectiveRepetitions < 1 { throw ValidationError("--repetitions must be at least 1") }
        if effectiveScale <= 0 || effectiveScale > 1000 { throw ValidationError("--scale must be in (0, 1000]") }
        if sampleEvery < 1 { throw ValidationError("--sample-every must be at least 1") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }

    /// The allocators to run: explicit ones must exist; in the default
    /// selection, missing peers are skipped with a note.
    public func selectedAllocators(known: [AllocatorSpec]) throws -> (run: [AllocatorSpec], skipped: [AllocatorSpec]) {
        let explicit = !splitList(allocators).isEmpty
        let chosen = try AllocatorDiscovery.select(explicit ? splitList(allocators) : ["swiftmalloc", "glibc", "peers"], from: known)
        let missing = chosen.filter { !$0.available }
        if missing.contains(where: { $0.kind == .swiftmalloc }) { throw LabError.missing(lib.missingLibraryMessage()) }
        if explicit, let m = missing.first { throw LabError.missing("\(m.id): \(m.note)") }
        return (chosen.filter(\.available), missing)
    }

    public func settings(perf usePerf: Bool) throws -> RunSettings {
        let t = try parseThreads(threads)
        let env = ProcessRunner.allocatorSettings()
        return RunSettings(quick: quick, repetitions: effectiveRepetitions, scale: effectiveScale, sampleEvery: sampleEvery,
                           seed: seed, threads: t.isEmpty ? nil : t, timeoutSeconds: timeout, perf: usePerf,
                           environment: env.isEmpty ? nil : env)
    }

    /// rseq availability from SwiftMalloc's own report when a run has one.
    static func refine(_ m: MachineFacts, with samples: [Sample]) -> MachineFacts {
        var m = m
        m.loadAverageEnd = MachineProbe.loadAverage()
        if let v = samples.compactMap({ $0.swiftmalloc?["rseq_available"] }).first {
            m.rseqAvailable = v != 0
            m.rseqNote += "; SwiftMalloc reported rseq_available = \(v != 0)"
        }
        return m
    }

    public func run() throws {
        let known = AllocatorDiscovery.all(swiftMallocLibrary: lib.resolvedLibrary)
        let (allocs, skipped) = try selectedAllocators(known: known)
        for s in skipped { stderrLine("note: skipping \(s.id): \(s.note)") }
        guard !allocs.isEmpty else { throw LabError.usage("no allocator to run") }
        let perfSupport = MachineProbe.perfSupport()
        let usePerf = (perf ?? perfSupport.available) && perfSupport.available
        if perf == true && !perfSupport.available { stderrLine("note: \(perfSupport.note)") }
        let plan = MatrixPlan(workloads: try parseWorkloads(workloads), allocators: allocs, settings: try settings(perf: usePerf))
        for note in plan.threadOptionNotes { stderrLine(note) }
        let outDir = URL(fileURLWithPath: out ?? "results/\(Self.stamp())")
        let runner = try WorkloadRunner(workloadExecutable: LabPaths.workloadExecutable, perfPath: usePerf ? perfSupport.perfPath : nil)
        defer { runner.cleanUp() }
        let machine = MachineProbe.collect(libraryPath: lib.resolvedLibrary, workloadExecutable: LabPaths.workloadExecutable,
                                           packageRoot: LabPaths.packageRoot, perf: perfSupport)
        if !quiet {
            stderrLine("malloc-lab: \(plan.workloads.count) workloads × \(allocs.count) allocators (\(allocs.map(\.id).joined(separator: ", "))), \(plan.cellCount) cells × \(plan.settings.repetitions) repetitions = \(plan.requests.count) runs → \(outDir.path)")
            if !perfSupport.available { stderrLine("note: \(perfSupport.note)") }
        }
        let start = Date()
        let samples = MatrixRunner.run(plan, runner: runner, progress: quiet ? nil : ProgressLine(total: plan.requests.count))
        let results = ResultsFile(command: commandLineText(), createdAt: isoNow(), durationSeconds: Date().timeIntervalSince(start),
                                  settings: plan.settings, machine: Self.refine(machine, with: samples), allocators: allocs,
                                  workloads: plan.workloads, samples: samples)
        try OutputWriter.write(results, to: outDir)
        let data = ReportData(results)
        print("Report: \(outDir.appendingPathComponent("report.md").path)")
        for f in Findings.perWorkload(data) {
            print("  \(f.workload.padding(toLength: 14, withPad: " ", startingAt: 0)) \(f.threads) thr: \(f.winner)" + (f.runnerUp.map { " \(Fmt.ratio(f.overRunnerUp ?? 1)) over \($0)" } ?? ""))
        }
        let failed = data.failedCells
        if !failed.isEmpty {
            print("\(failed.count) cell\(failed.count == 1 ? "" : "s") FAILED:")
            for c in failed { print("  \(c.workload) · \(c.allocator) · \(c.threads): \(c.status.label): \(c.errors.first ?? "")") }
            throw ExitCode(3)
        }
    }

    static func stamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.locale = Locale(identifier: "en_US_POSIX")
        return f.string(from: Date())
    }
}

// MARK: - report

public struct Report: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Re-render report.md, results.csv and the charts of DIR from DIR/results.json.")

    @Argument(help: ArgumentHelp("A directory written by `malloc-lab compare` or `run --out`.", valueName: "dir"))
    public var dir: String

    public init() {}

    public func run() throws {
        let url = URL(fileURLWithPath: dir)
        let results = try OutputWriter.load(url)
        let written = try OutputWriter.write(results, to: url, writeJSON: false)
        print("Re-rendered \(written.count) files in \(url.path) from \(results.samples.count) runs (\(results.createdAt)).")
    }
}

// MARK: - setup

public struct Setup: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Install the Debian packages of the peer allocators that are missing (jemalloc, mimalloc, tcmalloc).")

    @Flag(name: .long, help: "Only say what would be installed.")
    public var dryRun = false

    @Flag(name: .long, help: "Also install perf (Debian: linux-perf) for hardware counters.")
    public var withPerf = false

    @OptionGroup public var lib: LibraryOptions

    public init() {}

    /// The apt-get command (with sudo when not root), or nil when nothing is missing.
    public static func installCommand(packages: [String], isRoot: Bool, sudo: String?) -> [String]? {
        guard !packages.isEmpty else { return nil }
        let base = ["apt-get", "install", "-y", "--no-install-recommends"] + packages
        if isRoot { return base }
        if let sudo { return [sudo] + base }
        return nil
    }

    public func run() throws {
        var missing: [String] = []
        for peer in PeerAllocator.all {
            if let path = AllocatorDiscovery.locate(peer) {
                print("✓ \(peer.id): \(path) (\(peer.debianPackage))")
            } else {
                print("✗ \(peer.id): not found — needs Debian package \(peer.debianPackage)")
                missing.append(peer.debianPackage)
            }
        }
        if withPerf {
            if ProcessRunner.which("perf") == nil { missing.append("linux-perf"); print("✗ perf: not found — needs linux-perf") }
            else { print("✓ perf: \(ProcessRunner.which("perf")!)") }
        }
        print(lib.libraryExists ? "✓ SwiftMalloc: \(lib.resolvedLibrary)" : "✗ SwiftMalloc: \(lib.resolvedLibrary) is missing — \(LabPaths.libraryBuildHint)")
        guard !missing.isEmpty else {
            print("Nothing to install.")
            return
        }
        guard let aptGet = ProcessRunner.which("apt-get") else {
            throw LabError.missing("apt-get not found: install \(missing.joined(separator: " ")) with this system's package manager, or point MALLOC_LAB_JEMALLOC / MALLOC_LAB_MIMALLOC / MALLOC_LAB_TCMALLOC at the libraries")
        }
        let isRoot = getuid() == 0
        guard var cmd = Self.installCommand(packages: missing, isRoot: isRoot, sudo: ProcessRunner.which("sudo")) else {
            throw LabError.missing("not root and no sudo: run `apt-get install -y \(missing.joined(separator: " "))` as root")
        }
        if cmd.first == "apt-get" { cmd[0] = aptGet }
        print(dryRun ? "Would run: \(cmd.joined(separator: " "))" : "Installing: \(cmd.joined(separator: " "))")
        if dryRun {
            print("(dry run: nothing installed)")
            return
        }
        var status = Self.runVisible(cmd)
        if status != 0 {
            let update = (isRoot ? [aptGet] : [ProcessRunner.which("sudo") ?? "sudo", aptGet]) + ["update"]
            print("apt-get install failed (status \(status)); refreshing the package lists: \(update.joined(separator: " "))")
            _ = Self.runVisible(update)
            print("Retrying: \(cmd.joined(separator: " "))")
            status = Self.runVisible(cmd)
        }
        guard status == 0 else { throw LabError.io("installation failed (status \(status))") }
        for peer in PeerAllocator.all {
            print("\(AllocatorDiscovery.locate(peer) != nil ? "✓" : "✗") \(peer.id): \(AllocatorDiscovery.locate(peer) ?? "still missing")")
        }
    }

    /// Runs a command with the terminal's stdout/stderr; returns its status.
    static func runVisible(_ cmd: [String]) -> Int32 {
        var env = ProcessInfo.processInfo.environment
        env["DEBIAN_FRONTEND"] = "noninteractive"
        return (try? ProcessRunner.runVisible(executable: cmd[0], arguments: Array(cmd.dropFirst()), environment: env)) ?? 127
    }
}
