// malloc-lab micro: the single-threaded malloc/free microbenchmark,
// SwiftMalloc against glibc, jemalloc, mimalloc and tcmalloc in one run
// (MallocLabCore/Micro.swift does the work).
import ArgumentParser
import Foundation
import MallocLabCore
import MallocLabShared

extension MicroStatistic: ExpressibleByArgument {}

public struct Micro: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Time single-threaded malloc+free pairs and batches under every allocator, side by side (or count instructions with --callgrind).",
        discussion: """
            Each repetition runs malloc-lab-micro once per allocator, round-robin (the first allocator rotating), and the \
            table shows medians with ratios against the fastest peer in the same run. Workloads: pairs (malloc, write a \
            byte, free), batch64-fifo and batch64-lifo (64 mallocs, then 64 frees in allocation or reverse order), each \
            with a size (pairs:16) or a range of random sizes (pairs:16-256). --callgrind counts instructions in the \
            measured loop instead (valgrind --tool=callgrind --toggle-collect=mb_measure_*). \
            Example: malloc-lab micro --frontends percpu,thread --reps 5 --ops 5000000
            """)

    @OptionGroup public var lib: LibraryOptions

    @Option(name: .long, parsing: .singleValue,
            help: ArgumentHelp("SwiftMalloc front ends, comma-separated or repeated.", valueName: "names"))
    public var frontends: [String] = ["thread"]

    @Option(name: [.short, .customLong("reps"), .customLong("repetitions")], help: "Repetitions.")
    public var repetitions: Int = 7

    @Option(name: .long, help: "Operations per workload per run.")
    public var ops: Int = 20_000_000

    @Option(name: .long, help: "Operations per workload under --callgrind.")
    public var callgrindOps: Int = 200_000

    @Option(name: .long, help: "Operations per timed trial inside a run (a few ms: shorter than a time slice).")
    public var trial: Int = 200_000

    @Option(name: .long, help: ArgumentHelp("Per-run statistic over its trials: wall-min (the fastest trial by CLOCK_MONOTONIC), wall-median, cpu-min, cpu-median (CPU time of the thread: ignores preemption).", valueName: "stat"))
    public var stat: MicroStatistic = .wallMin

    // .unconditional: "-1" is the value, not an option.
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Pin malloc-lab-micro to this CPU; -1: no pinning (default: the last CPU it may use).", valueName: "n"))
    public var cpu: Int?

    @Option(name: [.short, .long], parsing: .singleValue,
            help: ArgumentHelp("WORKLOAD:SIZE or WORKLOAD:LO-HI, comma-separated or repeated (default: pairs:16,pairs:64,pairs:256,batch64-fifo:16,batch64-lifo:16).", valueName: "specs"))
    public var workloads: [String] = []

    @Flag(name: .long, help: "Count instructions per operation under valgrind's callgrind instead of timing.")
    public var callgrind = false

    @Flag(name: .long, help: "With --callgrind: also show callgrind_annotate's per-function breakdown for SwiftMalloc.")
    public var annotate = false

    @Option(name: .long, parsing: .singleValue,
            help: ArgumentHelp("Allocators to run: glibc, jemalloc, mimalloc, tcmalloc, swiftmalloc (default: all; peers that are not installed are skipped).", valueName: "names"))
    public var only: [String] = ["glibc", "jemalloc", "mimalloc", "tcmalloc", "swiftmalloc"]

    @Option(name: [.short, .long], help: ArgumentHelp("Keep report.md, the raw results (raw.tsv) and callgrind's files here.", valueName: "dir"))
    public var out: String?

    @Option(name: .long, help: "Time limit per malloc-lab-micro process, in seconds.")
    public var timeout: Double = 600

    public init() {}

    public func validate() throws {
        _ = try settings()
        if annotate && !callgrind { throw ValidationError("--annotate goes with --callgrind") }
        for fe in splitList(frontends) where !FrontEnds.all.contains(fe) {
            throw ValidationError("unknown front end '\(fe)'; choose from \(FrontEnds.all.joined(separator: ", "))")
        }
    }

    public func settings() throws -> MicroSettings {
        let specs = splitList(workloads)
        let parsed: [MicroWorkload]
        do {
            parsed = specs.isEmpty ? MicroWorkload.defaults : try specs.map(MicroWorkload.init(parsing:))
        } catch {
            throw ValidationError("\(error)")
        }
        if repetitions < 1 { throw ValidationError("--reps must be at least 1") }
        if ops < 1 || callgrindOps < 1 || trial < 1 { throw ValidationError("--ops, --callgrind-ops and --trial must be at least 1") }
        if let cpu, cpu < -1 { throw ValidationError("--cpu takes a CPU number, or -1 for no pinning") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
        return MicroSettings(workloads: parsed, repetitions: repetitions, ops: ops, callgrindOps: callgrindOps,
                             trialOps: trial, statistic: stat, cpu: cpu, timeout: timeout)
    }

    public func run() throws {
        let settings = try settings()
        let known = AllocatorDiscovery.all(swiftMallocLibrary: lib.resolvedLibrary)
        let chosen: (run: [AllocatorSpec], skipped: [AllocatorSpec])
        do {
            chosen = try MicroSelection.choose(only: splitList(only), frontends: splitList(frontends), known: known)
        } catch LabError.missing {
            throw LabError.missing(lib.missingLibraryMessage())
        }
        for s in chosen.skipped { stderrLine("note: skipping \(s.id): \(s.note)") }
        guard !chosen.run.isEmpty else { throw LabError.usage("no allocator to run") }
        let valgrind = ProcessRunner.which("valgrind")
        if callgrind && valgrind == nil { throw LabError.missing("valgrind is not installed (Debian: apt-get install -y valgrind)") }

        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("malloc-lab-micro-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let runner = try MicroRunner(executable: LabPaths.microExecutable, scratch: scratch, settings: settings)
        let outDir = out.map { URL(fileURLWithPath: $0) }
        if let outDir { try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true) }

        stderrLine("verifying that each allocator is the one in use...")
        var loaded: [String] = []
        var compiler: String?
        for a in chosen.run {
            let v = try runner.verify(a)
            loaded.append(v.line)
            compiler = compiler ?? v.compiler
        }
        var machine = MachineProbe.collect(
            libraryPath: lib.resolvedLibrary, workloadExecutable: LabPaths.microExecutable, packageRoot: LabPaths.packageRoot,
            perf: PerfSupport(available: false, perfPath: nil, note: "not used by malloc-lab micro"))
        let start = Date()
        var text: String
        if callgrind, let valgrind {
            let cgDir = outDir ?? scratch.appendingPathComponent("callgrind")
            let run = try runner.callgrind(chosen.run, valgrind: valgrind, outDirectory: cgDir, progress: stderrLine)
            var annotations: [(title: String, text: String)] = []
            if annotate {
                for a in chosen.run where a.kind == .swiftmalloc {
                    for w in settings.workloads {
                        if let file = run.files["\(a.id)|\(w)"], let t = MicroRunner.annotate(file) {
                            annotations.append(("\(a.id), \(w.title)", t))
                        }
                    }
                }
            }
            let version = ProcessRunner.capture(valgrind, ["--version"]) ?? "valgrind"
            machine.loadAverageEnd = MachineProbe.loadAverage()
            text = MicroReport.header(machine: machine, compiler: compiler, allocators: chosen.run, skipped: chosen.skipped,
                                      run: "\(version) --tool=callgrind, \(settings.callgrindOps) ops per workload, counting only the measured loop",
                                      createdAt: isoNow(), command: commandLineText())
            text += MicroReport.callgrind(run, annotations: annotations)
        } else {
            let progress = ProgressLine(total: settings.repetitions * chosen.run.count)
            let run = try runner.timeAll(chosen.run) { done, _, id, rep in
                progress.update(done: done, failed: 0, current: "rep \(rep + 1)/\(settings.repetitions) · \(id)")
            }
            progress.finish("\(settings.repetitions * chosen.run.count) runs in \(Fmt.seconds(Date().timeIntervalSince(start)))")
            machine.loadAverageEnd = MachineProbe.loadAverage()
            text = MicroReport.header(machine: machine, compiler: compiler, allocators: chosen.run, skipped: chosen.skipped,
                                      run: MicroReport.timingRunLine(settings), createdAt: isoNow(), command: commandLineText())
            text += MicroReport.timing(run, settings: settings, loaded: loaded)
            if let outDir { try run.rawTSV.write(to: outDir.appendingPathComponent("raw.tsv"), atomically: true, encoding: .utf8) }
        }
        print(text, terminator: "")
        if let outDir {
            try text.write(to: outDir.appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
            stderrLine("kept in \(outDir.path): report.md" + (callgrind ? " and callgrind's files" : ", raw.tsv (allocator, workload, size, wall_min, wall_median, cpu_min, cpu_median [ns/op], repetition)"))
        }
    }
}
