// Running a program under SwiftMalloc to profile its requests
// (`malloc-lab profile`) and to compare the built-in size classes with a
// configuration file (`malloc-lab tune`).
import Foundation

/// The program did not write the histogram file: the library predates
/// SWIFTMALLOC_HISTOGRAM, or the program left without running exit handlers.
public struct MissingHistogram: Error, CustomStringConvertible, Equatable {
    public var library: String
    public var path: String

    public var description: String {
        "no histogram at \(path): the library (\(library)) does not support SWIFTMALLOC_HISTOGRAM, or the program ended without running its exit handlers"
    }
}

/// The part of SwiftMalloc's stats file (SWIFTMALLOC_STATS_FILE) the tuning
/// commands read.
public struct TuningStats: Decodable, Equatable, Sendable {
    /// The configuration file in effect, or "built-in".
    public var config: String?
    public var sizeClasses: Int?
    public var classSizes: [Int]?
    /// The exact sum of requested sizes; null unless the histogram is on.
    public var requestedBytes: Double?
    public var handedOutBytes: Double?
    /// VmHWM when the stats were written.
    public var peakResidentBytes: Double?

    enum CodingKeys: String, CodingKey {
        case config
        case sizeClasses = "size_classes"
        case classSizes = "class_sizes"
        case requestedBytes = "requested_bytes"
        case handedOutBytes = "handed_out_bytes"
        case peakResidentBytes = "peak_resident_bytes"
    }

    public static func load(_ url: URL) throws -> TuningStats {
        guard let data = try? Data(contentsOf: url) else {
            throw LabError.io("no stats file at \(url.path): the library did not write SWIFTMALLOC_STATS_FILE")
        }
        do { return try JSONDecoder().decode(TuningStats.self, from: data) } catch {
            throw LabError.io("\(url.path): not a SwiftMalloc stats file (\(AllocationHistogram.describe(error)))")
        }
    }
}

/// A program to run under SwiftMalloc: the command, the library, a limit.
public struct ProgramUnderTest: Sendable {
    public var command: [String]
    public var library: String
    public var timeout: Double

    public init(command: [String], library: String, timeout: Double) throws {
        guard let first = command.first else { throw LabError.usage("no program to run (give it after --)") }
        guard let executable = ProcessRunner.which(first) else { throw LabError.missing("program not found: \(first)") }
        guard FileManager.default.fileExists(atPath: library) else {
            throw LabError.missing("SwiftMalloc library not found: \(library)\n  \(LabPaths.libraryBuildHint)")
        }
        self.command = [executable] + command.dropFirst()
        self.library = library
        self.timeout = timeout
    }

    /// Runs the program once with the library preloaded and `settings`
    /// (SWIFTMALLOC_* variables) on top of the lab's clean environment.
    /// A program that does not exit with status 0 is an error.
    public func run(settings: [String: String], scratch: URL) throws -> ProcessOutcome {
        var env = ProcessRunner.cleanEnvironment()
        // The comparison decides these, never the caller's environment.
        for key in ["SWIFTMALLOC_CONFIG", "SWIFTMALLOC_HISTOGRAM"] { env.removeValue(forKey: key) }
        env["LD_PRELOAD"] = library
        env.merge(settings) { $1 }
        let outcome = try ProcessRunner.run(executable: command[0], arguments: Array(command.dropFirst()),
                                            environment: env, scratch: scratch, timeout: timeout)
        if !outcome.succeeded { throw LabError.io(Self.failure(command, outcome)) }
        return outcome
    }

    static func failure(_ command: [String], _ o: ProcessOutcome) -> String {
        let how: String
        if o.timedOut { how = "timed out after \(Fmt.seconds(o.seconds))" }
        else if let s = o.signal { how = "was killed by \(ProcessRunner.signalName(s))" }
        else { how = "exited with status \(o.exitStatus ?? -1)" }
        let tail = o.stderr.split(separator: "\n", omittingEmptySubsequences: false).suffix(20).joined(separator: "\n")
        return "\(command.joined(separator: " ")) \(how)" + (tail.isEmpty ? " (no stderr)" : "; its stderr ends:\n\(tail)")
    }
}

public enum Profiler {
    /// Runs the program once with SWIFTMALLOC_HISTOGRAM and returns what it
    /// recorded.
    public static func profile(_ program: ProgramUnderTest) throws -> AllocationHistogram {
        let scratch = try makeScratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let path = scratch.appendingPathComponent("histogram.json")
        _ = try program.run(settings: ["SWIFTMALLOC_HISTOGRAM": path.path], scratch: scratch)
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw MissingHistogram(library: program.library, path: path.path)
        }
        return try AllocationHistogram.load(path)
    }

    static func makeScratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("malloc-lab-\(UUID().uuidString)")
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw LabError.io("cannot create \(url.path): \(error.localizedDescription)")
        }
        return url
    }
}

/// One side of a tuning comparison: the built-in classes or a file.
public struct TuneSide: Equatable, Sendable {
    public var label: String
    /// The configuration file, nil for the built-in classes.
    public var configPath: String?
    public var classCount: Int
    /// Wall seconds and peak resident bytes of the timed runs (histogram off).
    public var seconds: [Double]
    public var peakResidentBytes: [Double]
    /// From the run with the histogram on.
    public var requestedBytes: Double
    public var handedOutBytes: Double

    public var wastedBytes: Double { handedOutBytes - requestedBytes }
    public var wasteFraction: Double { handedOutBytes > 0 ? 1 - requestedBytes / handedOutBytes : 0 }
    public var medianSeconds: Double { Stats.median(seconds) ?? 0 }
    public var medianPeakResidentBytes: Double { Stats.median(peakResidentBytes) ?? 0 }
}

public struct TuneResult: Equatable, Sendable {
    public var command: [String]
    public var runs: Int
    public var builtIn: TuneSide
    public var tuned: TuneSide

    /// The side-by-side table; ratios are tuned / built-in.
    public func table() -> String {
        let rows: [(String, String, String, String)] = [
            ("size classes", "\(builtIn.classCount)", "\(tuned.classCount)", ""),
            ("internal waste", Self.percent(builtIn.wasteFraction), Self.percent(tuned.wasteFraction),
             Self.ratio(tuned.wasteFraction, builtIn.wasteFraction)),
            ("wasted bytes", Fmt.bytes(builtIn.wastedBytes), Fmt.bytes(tuned.wastedBytes),
             Self.ratio(tuned.wastedBytes, builtIn.wastedBytes)),
            ("handed out", Fmt.bytes(builtIn.handedOutBytes), Fmt.bytes(tuned.handedOutBytes),
             Self.ratio(tuned.handedOutBytes, builtIn.handedOutBytes)),
            ("requested", Fmt.bytes(builtIn.requestedBytes), Fmt.bytes(tuned.requestedBytes), ""),
            ("peak RSS (median)", Fmt.bytes(builtIn.medianPeakResidentBytes), Fmt.bytes(tuned.medianPeakResidentBytes),
             Self.ratio(tuned.medianPeakResidentBytes, builtIn.medianPeakResidentBytes)),
            ("time (median)", Fmt.seconds(builtIn.medianSeconds), Fmt.seconds(tuned.medianSeconds),
             Self.ratio(tuned.medianSeconds, builtIn.medianSeconds)),
        ]
        let header = ("", builtIn.label, tuned.label, "ratio")
        let widths = [0, 1, 2].map { column in
            ([header] + rows).map { row in [row.0, row.1, row.2][column].count }.max()!
        }
        func line(_ r: (String, String, String, String)) -> String {
            r.0.padding(toLength: widths[0], withPad: " ", startingAt: 0) + "  "
                + String(repeating: " ", count: widths[1] - r.1.count) + r.1 + "  "
                + String(repeating: " ", count: widths[2] - r.2.count) + r.2 + "  " + r.3
        }
        return ([header] + rows).map(line).joined(separator: "\n")
    }

    static func percent(_ f: Double) -> String { String(format: "%.2f%%", f * 100) }
    static func ratio(_ a: Double, _ b: Double) -> String { b > 0 ? String(format: "%.3fx", a / b) : "—" }
}

public enum Tuner {
    /// The machine facts printed with a comparison (perf is not used).
    public static func machineFacts(library: String) -> MachineFacts {
        MachineProbe.collect(libraryPath: library, workloadExecutable: LabPaths.workloadExecutable,
                             packageRoot: LabPaths.packageRoot,
                             perf: PerfSupport(available: false, perfPath: nil, note: "not used by malloc-lab tune"))
    }

    /// Runs the program `runs` times with each layout, alternating, the
    /// histogram off (time, peak RSS), then once each with the histogram on
    /// (internal waste: requested against handed-out bytes).
    public static func compare(_ program: ProgramUnderTest, config: URL, runs: Int,
                               progress: ((String) -> Void)? = nil) throws -> TuneResult {
        guard runs >= 1 else { throw LabError.usage("at least one run per layout") }
        let layout = try SizeClassConfigFile.load(config)
        let scratch = try Profiler.makeScratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let configPath = config.standardizedFileURL.path
        var sides = [
            TuneSide(label: "built-in", configPath: nil, classCount: SizeClassLayout.builtIn.sizes.count,
                     seconds: [], peakResidentBytes: [], requestedBytes: 0, handedOutBytes: 0),
            TuneSide(label: config.lastPathComponent, configPath: configPath, classCount: layout.sizes.count,
                     seconds: [], peakResidentBytes: [], requestedBytes: 0, handedOutBytes: 0),
        ]
        let stats = scratch.appendingPathComponent("stats.json")
        func settings(_ side: TuneSide) -> [String: String] {
            var s = ["SWIFTMALLOC_STATS_FILE": stats.path]
            if let path = side.configPath { s["SWIFTMALLOC_CONFIG"] = path }
            return s
        }
        func runOnce(_ i: Int, extra: [String: String]) throws -> (ProcessOutcome, TuningStats) {
            try? FileManager.default.removeItem(at: stats)
            let outcome = try program.run(settings: settings(sides[i]).merging(extra) { $1 }, scratch: scratch)
            let s = try TuningStats.load(stats)
            try check(s, side: sides[i], layout: i == 0 ? SizeClassLayout.builtIn : layout, stderr: outcome.stderr)
            return (outcome, s)
        }
        for r in 0..<runs {
            for i in sides.indices {
                progress?("run \(r + 1)/\(runs), \(sides[i].label)")
                let (outcome, s) = try runOnce(i, extra: [:])
                sides[i].seconds.append(outcome.seconds)
                guard let peak = s.peakResidentBytes else {
                    throw LabError.io("the stats file has no peak_resident_bytes: the library predates the tuning statistics")
                }
                sides[i].peakResidentBytes.append(peak)
            }
        }
        let histogram = scratch.appendingPathComponent("histogram.json")
        for i in sides.indices {
            progress?("waste run, \(sides[i].label)")
            let (_, s) = try runOnce(i, extra: ["SWIFTMALLOC_HISTOGRAM": histogram.path])
            guard let requested = s.requestedBytes, let handed = s.handedOutBytes else {
                throw LabError.io("the stats file has no requested_bytes/handed_out_bytes with SWIFTMALLOC_HISTOGRAM set: the library predates the histogram")
            }
            sides[i].requestedBytes = requested
            sides[i].handedOutBytes = handed
        }
        return TuneResult(command: program.command, runs: runs, builtIn: sides[0], tuned: sides[1])
    }

    /// The run used the layout it was meant to: a configuration the library
    /// rejected runs on the built-in classes, which would make the
    /// comparison meaningless.
    static func check(_ s: TuningStats, side: TuneSide, layout: SizeClassLayout, stderr: String) throws {
        let expected = side.configPath ?? "built-in"
        guard let config = s.config else {
            throw LabError.io("the stats file does not say which configuration was used: the library predates SWIFTMALLOC_CONFIG")
        }
        if config != expected {
            let said = stderr.split(separator: "\n").filter { $0.hasPrefix("swiftmalloc: config") }.joined(separator: "\n")
            throw LabError.io("the run meant for \(expected) ran with \(config)" + (said.isEmpty ? "" : ":\n\(said)"))
        }
        if let sizes = s.classSizes, sizes != layout.sizes {
            throw LabError.io("the run with \(expected) reports classes \(sizes.prefix(8).map(String.init).joined(separator: ", "))…, not the file's")
        }
    }
}
