import ArgumentParser
import XCTest
@testable import MallocLabCLI
@testable import MallocLabCore

final class TuningArgumentTests: XCTestCase {
    func testProfileOptionsAndCommand() throws {
        let p = try XCTUnwrap(try MallocLab.parseAsRoot(["profile", "--max-classes", "32", "--max-waste", "7.5", "-o", "out.toml",
                                                         "--lib", "/x/libSwiftMalloc.so", "--", "python3", "-c", "print(1)", "--max-classes"]) as? Profile)
        XCTAssertEqual(p.maxClasses, 32)
        XCTAssertEqual(p.maxWaste, 7.5)
        XCTAssertEqual(p.output, "out.toml")
        XCTAssertEqual(p.lib.resolvedLibrary, "/x/libSwiftMalloc.so")
        XCTAssertEqual(p.program.command, ["python3", "-c", "print(1)", "--max-classes"])
        XCTAssertEqual(p.style, "tables")
        let d = try XCTUnwrap(try MallocLab.parseAsRoot(["profile", "--library", "/y.so", "--style", "shorthand", "--", "true"]) as? Profile)
        XCTAssertEqual(d.maxClasses, 64)
        XCTAssertEqual(d.maxWaste, 10)
        XCTAssertEqual(d.output, "size-classes.toml")
        XCTAssertEqual(d.lib.resolvedLibrary, "/y.so")
        XCTAssertEqual(d.style, "shorthand")
    }

    func testProfileRejectsBadValues() {
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["profile"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["profile", "--max-classes", "0", "--", "true"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["profile", "--max-classes", "128", "--", "true"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["profile", "--max-waste", "0", "--", "true"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["profile", "--max-waste", "100", "--", "true"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["profile", "--style", "yaml", "--", "true"]))
    }

    func testTuneOptionsAndCommand() throws {
        let t = try XCTUnwrap(try MallocLab.parseAsRoot(["tune", "--config", "py.toml", "--runs", "3", "--", "python3", "s.py"]) as? Tune)
        XCTAssertEqual(t.config, "py.toml")
        XCTAssertEqual(t.runs, 3)
        XCTAssertEqual(t.program.command, ["python3", "s.py"])
        XCTAssertEqual(try XCTUnwrap(try MallocLab.parseAsRoot(["tune", "--config", "c", "--", "x"]) as? Tune).runs, 5)
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["tune", "--", "x"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["tune", "--config", "c"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["tune", "--config", "c", "--runs", "0", "--", "x"]))
        XCTAssertThrowsError(try MallocLab.parseAsRoot(["tune", "--config", "c", "--timeout", "0", "--", "x"]))
        XCTAssertEqual(try XCTUnwrap(try MallocLab.parseAsRoot(["tune", "--config", "c", "--timeout", "9", "--", "x"]) as? Tune).program.timeout, 9)
    }

    func testAFailingProgramIsAnErrorWithItsStderr() throws {
        // Any existing file stands in for the library: the program never
        // allocates through it (sh ignores an LD_PRELOAD it cannot load only
        // with a warning, so use a real shared object: the C library).
        let libc = try XCTUnwrap(["/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6"]
            .first { FileManager.default.fileExists(atPath: $0) })
        let program = try ProgramUnderTest(command: ["sh", "-c", "echo first >&2; echo went wrong >&2; exit 3"], library: libc, timeout: 30)
        XCTAssertThrowsError(try Profiler.profile(program)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("exited with status 3; its stderr ends:\nfirst\nwent wrong"), text)
        }
        let quiet = try ProgramUnderTest(command: ["sh", "-c", "exit 0"], library: libc, timeout: 30)
        XCTAssertThrowsError(try Profiler.profile(quiet)) { error in XCTAssertTrue(error is MissingHistogram, "\(error)") }
        XCTAssertThrowsError(try ProgramUnderTest(command: ["no-such-program-here"], library: libc, timeout: 1))
        XCTAssertThrowsError(try ProgramUnderTest(command: ["sh"], library: "/no/such/lib.so", timeout: 1))
    }

    func testTuneTableShowsBothSidesAndRatios() {
        let a = TuneSide(label: "built-in", configPath: nil, classCount: 73, seconds: [1, 3, 2], peakResidentBytes: [100, 300, 200],
                         requestedBytes: 900, handedOutBytes: 1000)
        let b = TuneSide(label: "py.toml", configPath: "/p/py.toml", classCount: 40, seconds: [1, 1, 1], peakResidentBytes: [100, 100, 100],
                         requestedBytes: 900, handedOutBytes: 950)
        let table = TuneResult(command: ["x"], runs: 3, builtIn: a, tuned: b).table()
        let lines = table.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasSuffix("built-in  py.toml  ratio"), table)
        XCTAssertTrue(lines.contains { $0.hasPrefix("internal waste") && $0.contains("10.00%") && $0.contains("5.26%") && $0.hasSuffix("0.526x") }, table)
        XCTAssertTrue(lines.contains { $0.hasPrefix("time (median)") && $0.hasSuffix("0.500x") }, table)
        XCTAssertTrue(lines.contains { $0.hasPrefix("peak RSS (median)") && $0.hasSuffix("0.500x") }, table)
        XCTAssertTrue(lines.contains { $0.hasPrefix("size classes") && $0.contains("73") && $0.contains("40") }, table)
    }
}
