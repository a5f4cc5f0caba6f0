// End to end: profile a real program (python3 building many objects, every
// object through malloc), write the suggested configuration, and compare it
// with the built-in classes. Needs the release library with
// SWIFTMALLOC_HISTOGRAM, SWIFTMALLOC_CONFIG and the tuning statistics
// (`swift build -c release`).
import ArgumentParser
import Foundation
import XCTest
@testable import MallocLabCLI
@testable import MallocLabCore

final class TuneEndToEndTests: XCTestCase {
    /// Many objects: instances with their dictionaries, tuples, small
    /// strings, and strings of a few lengths from 300 to 2500 characters
    /// (where the built-in classes are 32 to 256 bytes apart).
    static let script = """
        class Record:
            def __init__(self, key, name, payload):
                self.key = key
                self.name = name
                self.payload = payload
                self.tags = [key % 7, key % 11]
        records = []
        lengths = (300, 650, 1300, 2500)
        for i in range(40000):
            name = "n%d" % i
            records.append(Record(i, name, "p" * lengths[i % 4] + name))
        index = {r.name: (r.key, len(r.payload)) for r in records}
        print(sum(v[1] for v in index.values()))
        """

    func testProfileThenTuneLowersInternalWasteOfPython() throws {
        let library = try Fixtures.swiftMallocLibrary()
        guard let python = ProcessRunner.which("python3") else {
            XCTFail("python3 is not installed")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("malloc-lab-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let scriptURL = dir.appendingPathComponent("objects.py")
        try Self.script.write(to: scriptURL, atomically: true, encoding: .utf8)
        let configURL = dir.appendingPathComponent("python.toml")
        let command = ["env", "PYTHONMALLOC=malloc", python, scriptURL.path]

        let profile = try XCTUnwrap(try MallocLab.parseAsRoot(["profile", "--lib", library, "-o", configURL.path, "--"] + command) as? Profile)
        do {
            try profile.run()
        } catch let exit as ExitCode where exit == ExitCode(3) {
            // The waste limit was not met; the least wasteful layout is still written.
        }
        let layout = try SizeClassConfigFile.load(configURL)
        XCTAssertLessThanOrEqual(layout.sizes.count, profile.maxClasses)

        let program = try ProgramUnderTest(command: command, library: library, timeout: 300)
        let result = try Tuner.compare(program, config: configURL, runs: 2)
        XCTAssertEqual(result.builtIn.seconds.count, 2)
        XCTAssertEqual(result.tuned.peakResidentBytes.count, 2)
        XCTAssertEqual(result.tuned.classCount, layout.sizes.count)
        XCTAssertGreaterThan(result.builtIn.requestedBytes, 1_000_000)
        XCTAssertGreaterThan(result.builtIn.handedOutBytes, result.builtIn.requestedBytes)
        XCTAssertLessThan(result.tuned.wasteFraction, result.builtIn.wasteFraction, "\n" + result.table())
        XCTAssertLessThan(result.tuned.wastedBytes, result.builtIn.wastedBytes, "\n" + result.table())
        print(result.table())
    }
}
