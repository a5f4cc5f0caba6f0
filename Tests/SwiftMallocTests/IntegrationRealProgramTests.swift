// Real programs under LD_PRELOAD=libSwiftMalloc.so: each one's observable
// behaviour must be exactly what it is without the library, and the
// statistics file of the process we started must show it allocated through
// the library, with the front end asked for. Every program runs under each
// front end, and under percpu with glibc's rseq registration off.
import Foundation
import XCTest

final class IntegrationRealProgramTests: XCTestCase {
    /// Each program runs under the default front end and under every one
    /// SWIFTMALLOC_FRONTEND can name, and under percpu with glibc's rseq
    /// registration turned off (the shim registers its own).
    enum Variant {
        case defaultFrontEnd, thread, arenas, global, percpuOwnRseq

        var environment: [String: String] {
            switch self {
            case .defaultFrontEnd: return [:]
            case .thread: return ["SWIFTMALLOC_FRONTEND": "thread"]
            case .arenas: return ["SWIFTMALLOC_FRONTEND": "arenas"]
            case .global: return ["SWIFTMALLOC_FRONTEND": "global"]
            case .percpuOwnRseq: return ["SWIFTMALLOC_FRONTEND": "percpu", "GLIBC_TUNABLES": "glibc.pthread.rseq=0"]
            }
        }

        /// The front end the stats file must report (nil: the default).
        var frontEnd: String? {
            switch self {
            case .defaultFrontEnd: return nil
            case .thread: return "thread"
            case .arenas: return "arenas"
            case .global: return "global"
            case .percpuOwnRseq: return "percpu"
            }
        }
    }

    /// Fails unless the process's own statistics file shows allocations
    /// through the front end `variant` asked for.
    private func assertAllocated(
        _ result: ProcessResult, statsIn dir: URL, atLeast minimum: UInt64 = 1, variant: Variant = .defaultFrontEnd,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let stats = try Preload.stats(in: dir, pid: result.pid)
            XCTAssertGreaterThanOrEqual(Preload.number(stats, "allocations") ?? 0, minimum,
                                        "\(result.command.joined(separator: " ")): \(stats)", file: file, line: line)
            if let expected = variant.frontEnd {
                XCTAssertEqual(stats["frontend"] as? String, expected, "\(stats)", file: file, line: line)
            }
            if variant == .percpuOwnRseq {
                XCTAssertEqual(stats["rseq_available"] as? Bool, true, "the shim's own registration: \(stats)",
                               file: file, line: line)
            }
        } catch {
            let present = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            XCTFail("\(error) (files: \(present.sorted()))\n\(result.summary)", file: file, line: line)
        }
    }

    /// Path of an executable in PATH; fails the test when it is missing.
    private func tool(_ name: String) throws -> String {
        do {
            return try Preload.executablePath(name)
        } catch {
            XCTFail("\(name) is not installed (scripts/test.sh installs it): \(error)")
            throw error
        }
    }

    // MARK: python3 -m test

    func testPythonRegressionTestsPass() throws { try python(.defaultFrontEnd) }
    func testPythonRegressionTestsPassUnderThread() throws { try python(.thread) }
    func testPythonRegressionTestsPassUnderArenas() throws { try python(.arenas) }
    func testPythonRegressionTestsPassUnderGlobal() throws { try python(.global) }
    func testPythonRegressionTestsPassUnderPerCPUWithOwnRseq() throws { try python(.percpuOwnRseq) }

    private func python(_ variant: Variant, file: StaticString = #filePath, line: UInt = #line) throws {
        // The real interpreter (not a pyenv shim script), so that the process
        // we start and check is python itself.
        let probe = try Preload.run(["python3", "-c", "import sys, test.support; print(sys.executable)"], timeout: 60)
        guard probe.exitStatus == 0 else {
            XCTFail("python3 with its `test` package is required:\n\(probe.summary)")
            return
        }
        let python = probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var command = [python, "-m", "test", "test_dict", "test_list", "test_set", "test_unicode", "test_json",
                       "test_threading", "--timeout", "120"]
        // test_threading's test_import_from_another_thread asserts that an
        // isolated (-I) interpreter starts without `threading` imported; a
        // site-packages .pth hook that imports it (some sandboxes install one)
        // breaks that test with or without the library. Only then, leave it out.
        let isolated = try Preload.run([python, "-I", "-c", "import sys; print('threading' in sys.modules)"],
                                       timeout: 60)
        if isolated.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "True" {
            command += ["-i", "test_import_from_another_thread"]
            print("note: this python imports threading at start-up (site .pth hook); "
                  + "test_import_from_another_thread is excluded")
        }
        // About 20 s here without the library; the limit is for a hang.
        let work = try Preload.makeTemporaryDirectory("python")
        let baseline = try Preload.run(command, currentDirectory: work, timeout: 300)
        XCTAssertEqual(baseline.exitStatus, 0, "python tests fail WITHOUT the library:\n\(baseline.summary)")

        let (result, statsDir) = try Preload.runPreloaded(command, environment: variant.environment,
                                                          currentDirectory: work, timeout: 300)
        guard result.exitStatus == 0, result.stdout.contains("Result: SUCCESS") else {
            return XCTFail("python tests fail under the library (\(variant)):\n\(result.summary)", file: file, line: line)
        }
        // Same tests run, skipped and failed.
        let totals = { (r: ProcessResult) in lines(of: r.stdout, startingWith: "Total tests:") }
        XCTAssertEqual(totals(result), totals(baseline), "different test totals with and without the library (\(variant))",
                       file: file, line: line)
        XCTAssertFalse(totals(result).isEmpty, result.summary, file: file, line: line)
        assertAllocated(result, statsIn: statsDir, atLeast: 100_000, variant: variant, file: file, line: line)
    }

    // MARK: sqlite3

    /// A deterministic SQL script: 100,000 single-row inserts in one
    /// transaction, a CTE-generated table, an index, and queries.
    static func sqliteScript() -> String {
        var script = """
            CREATE TABLE items(id INTEGER PRIMARY KEY, category INTEGER NOT NULL, name TEXT NOT NULL, price REAL NOT NULL, note TEXT);
            CREATE TABLE categories(id INTEGER PRIMARY KEY, label TEXT);
            BEGIN;

            """
        var state: UInt64 = 0x2545F4914F6CDD1D
        func nextRandom() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        script.reserveCapacity(8 << 20)
        for i in 1...100_000 {
            let r = nextRandom()
            let category = r % 50
            let price = Double((r >> 8) % 100_000) / 100.0
            let noteLength = Int((r >> 32) % 60)
            let note = noteLength == 0 ? "NULL" : "'" + String(repeating: "n", count: noteLength) + "-\(i % 977)'"
            script += "INSERT INTO items(category, name, price, note) VALUES (\(category), 'item-\(r % 1_000_003)', "
                + String(format: "%.2f", price) + ", \(note));\n"
        }
        script += """
            WITH RECURSIVE seq(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM seq WHERE x < 49)
            INSERT INTO categories(id, label) SELECT x, 'category-' || printf('%02d', x) FROM seq;
            COMMIT;
            CREATE INDEX items_name ON items(name);
            SELECT 'count', count(*) FROM items;
            SELECT 'sum', sum(category), printf('%.2f', sum(price)), sum(length(note)) FROM items;
            SELECT c.label, count(*), printf('%.2f', avg(i.price)), max(i.id) FROM items i JOIN categories c ON c.id = i.category GROUP BY c.label ORDER BY c.label;
            SELECT 'lookup', id, category, price FROM items WHERE name = (SELECT name FROM items WHERE id = 54321) ORDER BY id;
            SELECT 'lookup-miss', count(*) FROM items WHERE name = 'item-nonexistent';
            SELECT 'top', id, name, price FROM items ORDER BY price DESC, id LIMIT 10;
            SELECT 'distinct', count(DISTINCT name) FROM items;
            UPDATE items SET price = price * 2 WHERE category = 7;
            DELETE FROM items WHERE id % 3 = 0;
            SELECT 'after', count(*), printf('%.2f', sum(price)) FROM items;
            SELECT group_concat(name, ',') FROM (SELECT name FROM items ORDER BY id LIMIT 20);
            PRAGMA integrity_check;

            """
        return script
    }

    func testSqliteOutputIsUnchanged() throws { try sqlite(.defaultFrontEnd) }
    func testSqliteOutputIsUnchangedUnderThread() throws { try sqlite(.thread) }
    func testSqliteOutputIsUnchangedUnderArenas() throws { try sqlite(.arenas) }
    func testSqliteOutputIsUnchangedUnderGlobal() throws { try sqlite(.global) }
    func testSqliteOutputIsUnchangedUnderPerCPUWithOwnRseq() throws { try sqlite(.percpuOwnRseq) }

    private func sqlite(_ variant: Variant) throws {
        let sqlite = try tool("sqlite3")
        let work = try Preload.makeTemporaryDirectory("sqlite")
        let scriptPath = work.appendingPathComponent("script.sql").path
        try Self.sqliteScript().write(toFile: scriptPath, atomically: true, encoding: .utf8)

        let baseline = try Preload.run(
            [sqlite, "-batch", work.appendingPathComponent("baseline.db").path, ".read \(scriptPath)"], timeout: 300)
        XCTAssertEqual(baseline.exitStatus, 0, baseline.summary)
        XCTAssertEqual(baseline.stderr, "", baseline.summary)
        XCTAssertTrue(baseline.stdout.contains("count|100000"), baseline.summary)

        let (result, statsDir) = try Preload.runPreloaded(
            [sqlite, "-batch", work.appendingPathComponent("preloaded.db").path, ".read \(scriptPath)"],
            environment: variant.environment, timeout: 300)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        XCTAssertEqual(result.stderr, "", result.summary)
        XCTAssertEqual(result.stdout, baseline.stdout, "sqlite3 output differs under the library (\(variant))")
        XCTAssertTrue(result.stdout.contains("\nok\n"), "integrity_check did not print ok:\n\(result.summary)")
        assertAllocated(result, statsIn: statsDir, atLeast: 1_000, variant: variant)

        // The database written under the library reads back the same without it.
        let dump = { (db: String) throws -> ProcessResult in
            try Preload.run([sqlite, "-batch", work.appendingPathComponent(db).path,
                             "SELECT count(*), sum(price), group_concat(id % 10, '') FROM items;"], timeout: 120)
        }
        let a = try dump("baseline.db")
        let b = try dump("preloaded.db")
        XCTAssertEqual(a.exitStatus, 0, a.summary)
        XCTAssertEqual(b.stdout, a.stdout, "the database written under the library reads differently")
    }

    // MARK: git

    /// init, add, three commits, log, diff, status, fsck, in a fresh
    /// repository, with fixed identities and dates so hashes are reproducible.
    private func gitSession(preload: Bool, variant: Variant = .defaultFrontEnd) throws
        -> (outputs: [String], results: [(ProcessResult, URL?)]) {
        let git = try tool("git")
        let home = try Preload.makeTemporaryDirectory("git-home")
        let repo = home.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
        let env = [
            "HOME": home.path, "XDG_CONFIG_HOME": home.path, "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Ada Tester", "GIT_AUTHOR_EMAIL": "ada@example.com",
            "GIT_COMMITTER_NAME": "Ada Tester", "GIT_COMMITTER_EMAIL": "ada@example.com",
            "GIT_AUTHOR_DATE": "2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE": "2024-01-02T03:04:05Z",
            "LC_ALL": "C", "TZ": "UTC", "GIT_PAGER": "cat", "PAGER": "cat",
        ]
        var outputs: [String] = []
        var results: [(ProcessResult, URL?)] = []
        func step(_ args: [String]) throws {
            let command = [git] + args
            if preload {
                let (r, dir) = try Preload.runPreloaded(command, environment: env.merging(variant.environment) { $1 },
                                                        currentDirectory: repo, timeout: 120)
                results.append((r, dir))
                outputs.append("$ git \(args.joined(separator: " "))\n[\(r.exitStatus ?? -1)]\n\(r.stdout)")
            } else {
                let r = try Preload.run(command, environment: env, currentDirectory: repo, timeout: 120)
                results.append((r, nil))
                outputs.append("$ git \(args.joined(separator: " "))\n[\(r.exitStatus ?? -1)]\n\(r.stdout)")
            }
        }
        func write(_ name: String, _ text: String) throws {
            let url = repo.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }

        try step(["init", "-q", "-b", "main"])
        for i in 0..<200 {
            try write("src/file\(i).txt", (0..<(i % 37 + 1)).map { "line \($0) of file \(i)\n" }.joined())
        }
        try step(["add", "."])
        try step(["commit", "-q", "-m", "Initial import of 200 files"])
        for i in stride(from: 0, to: 200, by: 3) {
            try write("src/file\(i).txt", "rewritten \(i)\n" + String(repeating: "x", count: i * 10))
        }
        try write("README", "A test repository.\n")
        try step(["add", "-A"])
        try step(["commit", "-q", "-m", "Rewrite every third file"])
        try FileManager.default.removeItem(at: repo.appendingPathComponent("src/file1.txt"))
        try step(["commit", "-q", "-a", "-m", "Remove file1"])
        try step(["log", "--format=%s"])
        try step(["log", "--format=%H %an %s"])
        try step(["diff", "--stat", "HEAD~2", "HEAD"])
        try step(["status", "--porcelain"])
        try step(["fsck", "--no-progress"])
        try step(["gc", "-q"])
        try step(["log", "--oneline", "--name-status", "-1"])
        return (outputs, results)
    }

    func testGitSessionIsUnchanged() throws { try git(.defaultFrontEnd) }
    func testGitSessionIsUnchangedUnderThread() throws { try git(.thread) }
    func testGitSessionIsUnchangedUnderArenas() throws { try git(.arenas) }
    func testGitSessionIsUnchangedUnderGlobal() throws { try git(.global) }
    func testGitSessionIsUnchangedUnderPerCPUWithOwnRseq() throws { try git(.percpuOwnRseq) }

    private func git(_ variant: Variant) throws {
        let baseline = try gitSession(preload: false)
        for (r, _) in baseline.results {
            XCTAssertEqual(r.exitStatus, 0, "git fails WITHOUT the library:\n\(r.summary)")
        }
        let preloaded = try gitSession(preload: true, variant: variant)
        for (r, dir) in preloaded.results {
            XCTAssertEqual(r.exitStatus, 0, "git fails under the library (\(variant)):\n\(r.summary)")
            if let dir { assertAllocated(r, statsIn: dir, variant: variant) }
        }
        XCTAssertEqual(preloaded.outputs.count, baseline.outputs.count)
        for (a, b) in zip(preloaded.outputs, baseline.outputs) {
            XCTAssertEqual(a, b, "git output differs under the library")
        }
        // The log itself, exactly.
        let log = preloaded.outputs.first { $0.hasPrefix("$ git log --format=%s\n") }
        XCTAssertEqual(log, "$ git log --format=%s\n[0]\nRemove file1\nRewrite every third file\nInitial import of 200 files\n")
    }
}

/// A Swift executable that depends on the package (Examples/AdoptDemo, a
/// package of its own, as an adopter's would be) links libSwiftMalloc.so and
/// uses it as its allocator without LD_PRELOAD, next to the Swift runtime.
final class IntegrationAdoptionTests: XCTestCase {
    /// scripts/test.sh builds it (`swift build -c release --package-path Examples/AdoptDemo`).
    static let demo = Preload.packageRoot.appendingPathComponent("Examples/AdoptDemo/.build/release/swiftmalloc-adopt-demo").path

    func testAdoptDemoUsesSwiftMallocWithoutPreload() throws {
        let demo = Self.demo
        guard FileManager.default.isExecutableFile(atPath: demo) else {
            return XCTFail("\(demo) not found: run `swift build -c release --package-path Examples/AdoptDemo` first")
        }
        // Linked, not preloaded: the program names the library itself.
        let needed = try ELFDynamic.needed(of: demo)
        XCTAssertTrue(needed.contains("libSwiftMalloc.so"), "\(needed)")
        XCTAssertTrue(needed.contains("libswiftCore.so"), "\(needed)")

        let statsDir = try Preload.makeTemporaryDirectory("adopt")
        let statsPath = statsDir.appendingPathComponent("stats-%p.json").path
        // Preload.run removes LD_PRELOAD from the inherited environment.
        let result = try Preload.run([demo], environment: ["SWIFTMALLOC_STATS_FILE": statsPath], timeout: 120)
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        XCTAssertTrue(result.stdout.contains("allocations served by SwiftMalloc: "), result.summary)
        let stats = try Preload.stats(in: statsDir, pid: result.pid)
        XCTAssertGreaterThanOrEqual(Preload.number(stats, "allocations") ?? 0, 1_000, "\(stats)")
        XCTAssertEqual(Preload.number(stats, "pid"), UInt64(result.pid))

        // The harness really starts children without LD_PRELOAD (it strips an
        // inherited one), so the library in the demo came from linking.
        let env = try Preload.run(["sh", "-c", "echo \"[$LD_PRELOAD]\""], timeout: 30)
        XCTAssertEqual(env.stdout, "[]\n", "LD_PRELOAD leaks into child processes")
    }
}
