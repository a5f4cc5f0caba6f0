// Support for the integration tests: they never use SwiftMalloc as the test
// process's allocator; they start child processes with
// LD_PRELOAD=libSwiftMalloc.so (or the adoption demo, which links it) and
// look at what those processes print, how they exit, and the statistics file
// the library writes at exit (SWIFTMALLOC_STATS_FILE).
//
// The library under test: $SWIFTMALLOC_LIB, else
// <package root>/.build/release/libSwiftMalloc.so (`swift build -c release`).
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failure of the harness itself (missing library, compiler error, ...);
/// reported with XCTFail before it is thrown, so the test stops there.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
}

/// What a child process did.
struct ProcessResult {
    var command: [String]
    var pid: Int32
    var stdout: String
    var stderr: String
    /// Exit status when the process exited normally, else nil.
    var exitStatus: Int32?
    /// The signal that killed it, else nil.
    var signal: Int32?
    var timedOut: Bool
    var duration: TimeInterval
    /// Processes it started that were still alive after it ended (they
    /// were killed).
    var strayProcesses: Int = 0

    var exitedNormally: Bool { exitStatus != nil }

    /// A few lines describing the run, for failure messages.
    var summary: String {
        let how: String
        if timedOut { how = "timed out" }
        else if let s = signal { how = "killed by signal \(s)" }
        else { how = "exit status \(exitStatus ?? -1)" }
        let strays = strayProcesses > 0 ? "; \(strayProcesses) process(es) it started were left running (killed)" : ""
        return """
            command: \(command.joined(separator: " "))
            \(how) after \(String(format: "%.1f", duration)) s\(strays)
            stdout (tail):
            \(tail(stdout))
            stderr (tail):
            \(tail(stderr))
            """
    }

    private func tail(_ s: String, lines: Int = 40) -> String {
        let all = s.split(separator: "\n", omittingEmptySubsequences: false)
        return all.suffix(lines).joined(separator: "\n")
    }
}

enum Preload {
    // MARK: locations

    /// The package root, from this file's path (Tests/SwiftMallocTests/...).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // SwiftMallocTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// Where the library is expected (it may not exist).
    static var libraryPath: String {
        if let explicit = ProcessInfo.processInfo.environment["SWIFTMALLOC_LIB"], !explicit.isEmpty {
            return URL(fileURLWithPath: explicit, relativeTo: packageRoot).standardizedFileURL.path
        }
        return packageRoot.appendingPathComponent(".build/release/libSwiftMalloc.so").path
    }

    /// The release build folder: the one the library is in.
    static var releaseDirectory: String {
        URL(fileURLWithPath: libraryPath).deletingLastPathComponent().path
    }

    /// The library's path; fails the test (with what to do) when it is missing.
    static func library(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let path = libraryPath
        guard FileManager.default.fileExists(atPath: path) else {
            let message = """
                libSwiftMalloc.so not found at \(path). \
                Run `swift build -c release` first (or set SWIFTMALLOC_LIB to the library's path).
                """
            XCTFail(message, file: file, line: line)
            throw HarnessError(description: message)
        }
        return path
    }

    // MARK: temporary files

    /// One scratch folder per test process, removed at exit.
    static let scratch: URL = {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftmalloc-integ-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        scratchToRemove = dir.path
        atexit { if let path = scratchToRemove { try? FileManager.default.removeItem(atPath: path) } }
        return dir
    }()
    nonisolated(unsafe) private static var scratchToRemove: String?

    /// A new empty folder inside the scratch folder.
    static func makeTemporaryDirectory(_ name: String) throws -> URL {
        let dir = scratch.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    // MARK: C programs

    private static let compileLock = NSLock()
    nonisolated(unsafe) private static var compiled: [String: String] = [:]

    /// Compiles Tests/CPrograms/<name>.c once per test process and returns
    /// the executable's path. Fails the test with the compiler's output when
    /// it does not compile.
    static func cProgram(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        compileLock.lock()
        defer { compileLock.unlock() }
        if let done = compiled[name] { return done }
        let source = packageRoot.appendingPathComponent("Tests/CPrograms/\(name).c").path
        let include = packageRoot.appendingPathComponent("CShims/Exports/include").path
        let binDir = scratch.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: binDir, withIntermediateDirectories: true)
        let output = binDir.appendingPathComponent(name).path
        let command = ["cc", "-O2", "-pthread", "-I", include, source, "-o", output, "-ldl"]
        let result = try run(command, timeout: 120)
        guard result.exitStatus == 0, FileManager.default.isExecutableFile(atPath: output) else {
            let message = "could not compile \(source):\n\(result.summary)"
            XCTFail(message, file: file, line: line)
            throw HarnessError(description: message)
        }
        compiled[name] = output
        return output
    }

    // MARK: running

    /// Runs `command` (argv; the first element is looked up in PATH when it
    /// has no slash) and waits for it, at most `timeout` seconds (then it is
    /// killed and `timedOut` is set).
    ///
    /// - preload: the library's path for LD_PRELOAD, or nil for none. Without
    ///   it, LD_PRELOAD and every SWIFTMALLOC_* variable inherited from the
    ///   test process are removed, so a baseline run is the plain C library.
    /// - environment: extra variables (applied last).
    static func run(
        _ command: [String],
        preload: String? = nil,
        environment: [String: String] = [:],
        currentDirectory: URL? = nil,
        stdin: String? = nil,
        timeout: TimeInterval = 120
    ) throws -> ProcessResult {
        precondition(!command.isEmpty)
        var env = ProcessInfo.processInfo.environment
        env["LD_PRELOAD"] = nil
        for key in env.keys where key.hasPrefix("SWIFTMALLOC_") { env[key] = nil }
        if let preload { env["LD_PRELOAD"] = preload }
        for (key, value) in environment { env[key] = value }

        // Started directly (not through /usr/bin/env, which would be one
        // more preloaded process before the exec).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executablePath(command[0]))
        process.arguments = Array(command.dropFirst())
        process.environment = env
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }

        // Output goes to files (no pipe to drain while waiting).
        let outDir = try makeTemporaryDirectory("run")
        let outPath = outDir.appendingPathComponent("stdout").path
        let errPath = outDir.appendingPathComponent("stderr").path
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let outHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardOutput = outHandle
        process.standardError = errHandle
        if let stdin {
            let path = outDir.appendingPathComponent("stdin").path
            try stdin.write(toFile: path, atomically: true, encoding: .utf8)
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        } else {
            process.standardInput = FileHandle.nullDevice
        }

        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        let pid = process.processIdentifier
        // While it runs, note every process below it (pid and start time), so
        // that one left behind (a hung grandchild whose parent has exited is
        // adopted by init) can be ended afterwards instead of outliving the test.
        var seen: [Int32: UInt64] = [:]
        var timedOut = false
        let deadline = DispatchTime.now() + timeout
        while finished.wait(timeout: .now() + 0.2) == .timedOut {
            if DispatchTime.now() >= deadline {
                timedOut = true
                for child in descendants(of: pid) { kill(child, SIGKILL) }
                kill(pid, SIGTERM)
                if finished.wait(timeout: .now() + 5) == .timedOut {
                    kill(pid, SIGKILL)
                    finished.wait()
                }
                break
            }
            for child in descendants(of: pid) where seen[child] == nil {
                if let started = processInfo(child)?.startTime { seen[child] = started }
            }
        }
        var strays = 0
        for (child, started) in seen where processInfo(child)?.startTime == started {
            kill(child, SIGKILL)
            strays += 1
        }
        let duration = Date().timeIntervalSince(start)
        try? outHandle.close()
        try? errHandle.close()
        let stdoutText = (try? String(contentsOfFile: outPath, encoding: .utf8))
            ?? String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self)
        let stderrText = (try? String(contentsOfFile: errPath, encoding: .utf8))
            ?? String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
        try? FileManager.default.removeItem(at: outDir)

        var result = ProcessResult(
            command: command, pid: process.processIdentifier, stdout: stdoutText, stderr: stderrText,
            exitStatus: nil, signal: nil, timedOut: timedOut, duration: duration, strayProcesses: strays)
        switch process.terminationReason {
        case .exit: result.exitStatus = process.terminationStatus
        case .uncaughtSignal: result.signal = process.terminationStatus
        @unknown default: break
        }
        return result
    }

    /// Parent and start time (clock ticks since boot) of a live process, from
    /// /proc/<pid>/stat; nil when it is gone.
    static func processInfo(_ pid: Int32) -> (parent: Int32, startTime: UInt64)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // "pid (comm) state ppid ... starttime(22nd) ...": comm may hold spaces
        // and parentheses, so count from the last ')'.
        let rest = stat[stat.index(after: close)...].split(separator: " ")
        guard rest.count > 19, let parent = Int32(rest[1]), let start = UInt64(rest[19]) else { return nil }
        return (parent, start)
    }

    /// Every process below `root` (children, grandchildren, ...), from /proc.
    static func descendants(of root: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), let info = processInfo(pid) else { continue }
            children[info.parent, default: []].append(pid)
        }
        var result: [Int32] = []
        var queue = [root]
        while let next = queue.popLast() {
            for child in children[next] ?? [] {
                result.append(child)
                queue.append(child)
            }
        }
        return result
    }

    /// `name` itself when it has a slash, else its path from PATH.
    static func executablePath(_ name: String) throws -> String {
        if name.contains("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        throw HarnessError(description: "\(name) not found in PATH (\(path))")
    }

    /// Runs `command` under the library (LD_PRELOAD) with a statistics file
    /// per process in a new folder; returns the result and that folder.
    static func runPreloaded(
        _ command: [String],
        environment: [String: String] = [:],
        currentDirectory: URL? = nil,
        timeout: TimeInterval = 120,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> (result: ProcessResult, statsDirectory: URL) {
        let lib = try library(file: file, line: line)
        let statsDir = try makeTemporaryDirectory("stats")
        var env = environment
        env["SWIFTMALLOC_STATS_FILE"] = statsDir.appendingPathComponent("stats-%p.json").path
        let result = try run(command, preload: lib, environment: env, currentDirectory: currentDirectory,
                             timeout: timeout)
        return (result, statsDir)
    }

    // MARK: statistics

    /// The statistics JSON object in `path`.
    static func readStats(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HarnessError(description: "no statistics file at \(path)")
        }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw HarnessError(description: "\(path) does not hold a JSON object: "
                               + String(decoding: data, as: UTF8.self))
        }
        return object
    }

    /// The statistics written by process `pid` into a folder made by runPreloaded.
    static func stats(in directory: URL, pid: Int32) throws -> [String: Any] {
        try readStats(directory.appendingPathComponent("stats-\(pid).json").path)
    }

    /// Every statistics file in the folder, by pid.
    static func allStats(in directory: URL) throws -> [Int32: [String: Any]] {
        var all: [Int32: [String: Any]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path)
        where name.hasPrefix("stats-") && name.hasSuffix(".json") {
            let pidText = name.dropFirst("stats-".count).dropLast(".json".count)
            guard let pid = Int32(pidText) else { continue }
            all[pid] = try readStats(directory.appendingPathComponent(name).path)
        }
        return all
    }

    /// A numeric field of a statistics object (nil when absent or not a number).
    static func number(_ stats: [String: Any], _ key: String) -> UInt64? {
        guard let value = stats[key] else { return nil }
        if let n = value as? NSNumber { return n.uint64Value }
        if let n = value as? Int, n >= 0 { return UInt64(n) }
        return nil
    }
}

/// Lines of `text` that start with `prefix`.
func lines(of text: String, startingWith prefix: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
}

/// The value after "key: " in a line like "a: 1 b: 2", as an integer.
func field(_ key: String, in line: String) -> UInt64? {
    let parts = line.split(separator: " ")
    guard let i = parts.firstIndex(of: Substring(key + ":")), i + 1 < parts.count else { return nil }
    return UInt64(parts[i + 1])
}
