// Starting child processes (through swift-subprocess) with a clean
// environment, their output in files (no pipes to fill up), and a time limit.
import Foundation
import Subprocess
import Synchronization
import SystemPackage
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
    /// `scratch` and are read back. Stops it (TERM, then KILL 2 s later)
    /// after `timeout` seconds.
    ///
    /// Synchronous on purpose: every caller is a synchronous command that
    /// runs one child at a time. The calling thread waits on a semaphore
    /// while Subprocess's asynchronous work runs in a detached task, so it
    /// must not be called from inside a Swift concurrency task (use
    /// `launch` there).
    public static func run(executable: String, arguments: [String], environment: [String: String],
                           scratch: URL, timeout: Double) throws -> ProcessOutcome {
        try waiting {
            try await launch(executable: executable, arguments: arguments, environment: environment,
                             scratch: scratch, timeout: timeout)
        }
    }

    /// Runs `executable` on this process's stdout and stderr (what it
    /// prints is seen as it prints it: an installer), without a time limit;
    /// returns its exit status (128 + the signal that ended it).
    /// Synchronous, as `run`.
    public static func runVisible(executable: String, arguments: [String], environment: [String: String]) throws -> Int32 {
        let env = Dictionary(uniqueKeysWithValues: environment.compactMap { kv in
            Environment.Key(rawValue: kv.key).map { ($0, kv.value) }
        })
        let status = try waiting {
            try await Subprocess.run(.path(FilePath(executable)), arguments: Arguments(arguments),
                                     environment: .custom(env), input: .none,
                                     output: .fileDescriptor(.standardOutput, closeAfterSpawningProcess: false),
                                     error: .fileDescriptor(.standardError, closeAfterSpawningProcess: false)).terminationStatus
        }
        switch status {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }

    /// Waits on this thread for `body`, run in a detached task: the
    /// synchronous commands' bridge to Subprocess's asynchronous API.
    private static func waiting<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// The asynchronous form of `run`.
    ///
    /// Subprocess has no time limit of its own; it stops a child when the
    /// task running it is cancelled (with `teardownSequence`). So the limit
    /// is a sleeping task racing the child: when it wakes first it cancels
    /// the child's task. The output goes to files rather than pipes
    /// collected in memory, so that what a child printed before it was
    /// stopped is still there to read.
    public static func launch(executable: String, arguments: [String], environment: [String: String],
                              scratch: URL, timeout: Double) async throws -> ProcessOutcome {
        let id = UUID().uuidString
        let outPath = scratch.appendingPathComponent("stdout-\(id)").path
        let errPath = scratch.appendingPathComponent("stderr-\(id)").path
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        // Ours to close (the child gets its own copies), also when the start fails.
        let outFD = try createOutputFile(outPath)
        defer { try? outFD.close() }
        let errFD = try createOutputFile(errPath)
        defer { try? errFD.close() }
        var platformOptions = PlatformOptions()
        platformOptions.teardownSequence = [.send(signal: .terminate, allowedDurationToNextStep: .seconds(2))]
        let options = platformOptions
        let env = Dictionary(uniqueKeysWithValues: environment.compactMap { kv in
            Environment.Key(rawValue: kv.key).map { ($0, kv.value) }
        })
        let start = ContinuousClock.now
        let status: TerminationStatus?
        let timedOut: Bool
        do {
            (status, timedOut) = try await withThrowingTaskGroup(of: TerminationStatus?.self) { group in
                group.addTask {
                    try await Subprocess.run(.path(FilePath(executable)), arguments: Arguments(arguments),
                                             environment: .custom(env), platformOptions: options, input: .none,
                                             output: .fileDescriptor(outFD, closeAfterSpawningProcess: false),
                                             error: .fileDescriptor(errFD, closeAfterSpawningProcess: false)).terminationStatus
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeout))
                    return nil
                }
                let first = try await group.next()!
                group.cancelAll()
                if first != nil { return (first, false) }
                // Timed out: the child's task, cancelled, stops the child;
                // it ends with the child's status or with a cancellation error.
                while let next = try? await group.next() { if let next { return (next, true) } }
                return (nil, true)
            }
        } catch {
            throw LabError.io("cannot start \(executable): \(error)")
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        var exitStatus: Int32?
        var signal: Int32?
        switch status {
        case .exited(let code): exitStatus = code
        case .signaled(let s): signal = s
        case nil: break
        }
        return ProcessOutcome(exitStatus: exitStatus, signal: signal, timedOut: timedOut,
                              seconds: seconds, stdout: stdout, stderr: stderr)
    }

    private static func createOutputFile(_ path: String) throws -> FileDescriptor {
        do {
            return try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        } catch {
            throw LabError.io("cannot create \(path): \(error)")
        }
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
