// Starting child processes with a clean environment, their output in files
// (no pipes to fill up), and a time limit.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ProcessOutcome: Sendable {
    public var exitStatus: Int32?
    public var signal: Int32?
    public var timedOut: Bool
    public var seconds: Double
    public var stdout: String
    public var stderr: String

    public var succeeded: Bool { exitStatus == 0 && !timedOut }
}

public enum ProcessRunner {
    /// The environment children start from: ours, without LD_PRELOAD and
    /// the two variables the lab sets itself (SWIFTMALLOC_FRONTEND,
    /// SWIFTMALLOC_STATS_FILE). Other allocator settings a researcher
    /// exported on purpose (GLIBC_TUNABLES, MALLOC_CONF, SWIFTMALLOC_*, ...)
    /// pass through and are recorded with the results.
    public static func cleanEnvironment(_ base: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var env = base
        for key in ["LD_PRELOAD", "SWIFTMALLOC_FRONTEND", "SWIFTMALLOC_STATS_FILE"] { env.removeValue(forKey: key) }
        return env
    }

    /// The variables in `base` that change how some allocator behaves.
    public static func allocatorSettings(_ base: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        let prefixes = ["SWIFTMALLOC_", "MALLOC_", "GLIBC_TUNABLES", "MIMALLOC_", "TCMALLOC_", "JEMALLOC_", "_RJEM_", "HEAPPROFILE"]
        return cleanEnvironment(base).filter { kv in prefixes.contains { kv.key.hasPrefix($0) } && kv.key != "MALLOC_LAB_WORKLOAD" && !kv.key.hasPrefix("MALLOC_LAB_") }
    }

    /// Runs `executable` with `arguments`; stdout and stderr go to files in
    /// `scratch` and are read back. Kills it (TERM, then KILL) after `timeout`.
    public static func run(executable: String, arguments: [String], environment: [String: String],
                           scratch: URL, timeout: Double) throws -> ProcessOutcome {
        let id = UUID().uuidString
        let outURL = scratch.appendingPathComponent("stdout-\(id)")
        let errURL = scratch.appendingPathComponent("stderr-\(id)")
        guard FileManager.default.createFile(atPath: outURL.path, contents: nil),
              FileManager.default.createFile(atPath: errURL.path, contents: nil) else {
            throw LabError.io("cannot create files in \(scratch.path)")
        }
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = environment
        p.standardOutput = outHandle
        p.standardError = errHandle
        p.standardInput = FileHandle.nullDevice
        let done = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in done.signal() }
        let start = DispatchTime.now()
        do {
            try p.run()
        } catch {
            try? outHandle.close()
            try? errHandle.close()
            throw LabError.io("cannot start \(executable): \(error)")
        }
        var timedOut = false
        if done.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            p.terminate()
            if done.wait(timeout: .now() + 2) == .timedOut {
                kill(p.processIdentifier, SIGKILL)
                done.wait()
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        try? outHandle.close()
        try? errHandle.close()
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        let signaled = p.terminationReason == .uncaughtSignal
        return ProcessOutcome(exitStatus: signaled ? nil : p.terminationStatus,
                              signal: signaled ? p.terminationStatus : nil,
                              timedOut: timedOut, seconds: seconds, stdout: stdout, stderr: stderr)
    }

    /// Runs a short command and returns its trimmed stdout (nil on failure).
    public static func capture(_ executable: String, _ arguments: [String], timeout: Double = 10,
                               mergeStderr: Bool = false) -> String? {
        let scratch = FileManager.default.temporaryDirectory
        guard let o = try? run(executable: executable, arguments: arguments,
                               environment: cleanEnvironment(), scratch: scratch, timeout: timeout) else { return nil }
        guard o.exitStatus == 0 else { return nil }
        let text = mergeStderr ? o.stdout + o.stderr : o.stdout
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Full path of a program on PATH, or nil.
    public static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return nil
    }

    public static func signalName(_ s: Int32) -> String {
        switch s {
        case SIGSEGV: return "SIGSEGV"
        case SIGABRT: return "SIGABRT"
        case SIGBUS: return "SIGBUS"
        case SIGILL: return "SIGILL"
        case SIGFPE: return "SIGFPE"
        case SIGKILL: return "SIGKILL"
        case SIGTERM: return "SIGTERM"
        case SIGTRAP: return "SIGTRAP"
        default: return "signal \(s)"
        }
    }
}
