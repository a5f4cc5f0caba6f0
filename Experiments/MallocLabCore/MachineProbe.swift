// Facts about this machine recorded with every result, and whether perf
// counters can be read here.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct PerfSupport: Sendable, Equatable {
    public var available: Bool
    public var perfPath: String?
    public var note: String

    public init(available: Bool, perfPath: String?, note: String) {
        self.available = available
        self.perfPath = perfPath
        self.note = note
    }
}

public enum MachineProbe {
    public static let perfEvents = "instructions,cycles,cache-misses"

    /// Tries `perf stat -x, -e instructions,cycles,cache-misses true`.
    public static func perfSupport() -> PerfSupport {
        guard let perf = ProcessRunner.which("perf") else {
            return PerfSupport(available: false, perfPath: nil, note: "perf is not installed (Debian: linux-perf); counters recorded as null")
        }
        let scratch = FileManager.default.temporaryDirectory
        guard let o = try? ProcessRunner.run(executable: perf, arguments: ["stat", "-x,", "-e", perfEvents, "true"],
                                             environment: ProcessRunner.cleanEnvironment(), scratch: scratch, timeout: 10) else {
            return PerfSupport(available: false, perfPath: perf, note: "perf could not be started; counters recorded as null")
        }
        let text = o.stderr + o.stdout
        let counters = parsePerf(text)
        if o.exitStatus == 0, !counters.isEmpty {
            return PerfSupport(available: true, perfPath: perf, note: "perf stat counts \(perfEvents)")
        }
        let why: String
        if text.contains("not supported") { why = "the kernel/VM says <not supported> for these events" }
        else if text.lowercased().contains("permission") || text.contains("paranoid") { why = "not permitted (perf_event_paranoid)" }
        else { why = "perf stat gave no counts" }
        return PerfSupport(available: false, perfPath: perf, note: "perf stat: \(why); counters recorded as null")
    }

    /// Parses `perf stat -x,` output: value,unit,event,...; "<not supported>"
    /// and "<not counted>" give nil.
    public static func parsePerf(_ text: String) -> PerfCounters {
        var c = PerfCounters()
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 3, let v = Double(f[0]) else { continue }
            let event = f[2].split(separator: ":").first.map(String.init) ?? f[2]
            switch event {
            case "instructions": c.instructions = v
            case "cycles": c.cycles = v
            case "cache-misses": c.cacheMisses = v
            default: break
            }
        }
        return c
    }

    /// Output of `malloc-lab-workload --probe`.
    public struct RseqProbe: Decodable, Sendable {
        public var glibcRseqSize: Int
        public var rseqFeatureSize: Int
        public var rseqSyscall: Bool
        public var cpus: Int
        enum CodingKeys: String, CodingKey {
            case glibcRseqSize = "glibc_rseq_size"
            case rseqFeatureSize = "rseq_feature_size"
            case rseqSyscall = "rseq_syscall"
            case cpus
        }
    }

    public static func rseqProbe(workload: String) -> RseqProbe? {
        guard let out = ProcessRunner.capture(workload, ["--probe"]), let data = out.data(using: .utf8) else { return nil }
        return try? JSONDecoder().decode(RseqProbe.self, from: data)
    }

    public static func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    public static func kernel() -> String {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "Linux \(release) \(machine)"
    }

    public static func glibcVersion() -> String {
        if let out = ProcessRunner.capture("/bin/sh", ["-c", "ldd --version 2>&1 | head -1"]), !out.isEmpty { return out }
        return "unknown"
    }

    /// Short git revision of the repository holding `path` (+ "-dirty" when
    /// the allocator's sources have uncommitted changes).
    public static func gitRevision(root: URL) -> String? {
        guard let git = ProcessRunner.which("git"),
              let rev = ProcessRunner.capture(git, ["-C", root.path, "rev-parse", "--short", "HEAD"]), !rev.isEmpty else { return nil }
        let status = ProcessRunner.capture(git, ["-C", root.path, "status", "--porcelain", "--", "Sources", "CShims", "Package.swift"]) ?? ""
        return status.isEmpty ? rev : rev + "-dirty"
    }

    /// The 1-minute load average (/proc/loadavg).
    public static func loadAverage() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Double($0) }
    }

    public static func collect(libraryPath: String, workloadExecutable: String, packageRoot: URL,
                               perf: PerfSupport) -> MachineFacts {
        let probe = rseqProbe(workload: workloadExecutable)
        var rseqAvailable: Bool? = nil
        var note = "unknown (the probe did not run)"
        if let probe {
            if probe.glibcRseqSize > 0 {
                rseqAvailable = true
                note = "glibc registered rseq (__rseq_size \(probe.glibcRseqSize))"
            } else if probe.rseqSyscall {
                rseqAvailable = true
                note = "rseq system call present; glibc did not register (a library must register its own area)"
            } else {
                rseqAvailable = false
                note = "no rseq system call"
            }
        }
        let modified = (try? FileManager.default.attributesOfItem(atPath: libraryPath)[.modificationDate] as? Date)
            .map { ISO8601DateFormatter().string(from: $0) }
        var facts = MachineFacts(
            cpuModel: cpuModel(),
            logicalCpus: ProcessInfo.processInfo.activeProcessorCount,
            kernel: kernel(),
            glibc: glibcVersion(),
            hostname: ProcessInfo.processInfo.hostName,
            rseqAvailable: rseqAvailable,
            rseqNote: note,
            glibcRseqSize: probe?.glibcRseqSize,
            rseqFeatureSize: probe?.rseqFeatureSize,
            mmCidAvailable: probe.map { $0.rseqFeatureSize >= 28 },
            gitRevision: gitRevision(root: LabPaths.enclosingPackage(of: libraryPath) ?? packageRoot),
            libraryPath: libraryPath,
            libraryModified: modified,
            perfAvailable: perf.available,
            perfNote: perf.note,
            swiftVersion: ProcessRunner.capture("/bin/sh", ["-c", "swift --version 2>/dev/null | head -1"]))
        facts.loadAverageStart = loadAverage()
        return facts
    }
}
