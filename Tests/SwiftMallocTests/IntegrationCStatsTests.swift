// The statistics for C programs (malloc_stats, malloc_info, mallinfo2,
// mallinfo, swiftmalloc_stats_print), checked by a C program run under
// LD_PRELOAD=libSwiftMalloc.so (Tests/CPrograms/c_stats.c) with each front
// end.
import Foundation
import XCTest

final class IntegrationCStatsTests: XCTestCase {
    func testCStatisticsUnderEveryFrontEnd() throws {
        let program = try Preload.cProgram("c_stats")
        for frontend in ["percpu", "thread", "arenas", "global"] {
            let (result, _) = try Preload.runPreloaded([program], environment: ["SWIFTMALLOC_FRONTEND": frontend],
                                                       timeout: 120)
            XCTAssertFalse(result.timedOut, "\(frontend): \(result.summary)")
            XCTAssertNil(result.signal, "\(frontend): c_stats crashed:\n\(result.summary)")
            let failures = lines(of: result.stdout, startingWith: "FAIL")
            XCTAssertEqual(failures, [], "\(frontend):\n" + result.stdout)
            XCTAssertEqual(result.exitStatus, 0, "\(frontend): \(result.summary)")
            guard let ok = lines(of: result.stdout, startingWith: "c_stats ok").last else {
                XCTFail("\(frontend): no summary line:\n\(result.summary)")
                continue
            }
            let used = ok.components(separatedBy: "frontend: ").last
            if used != frontend {
                // percpu needs rseq; the library falls back to thread where it has none.
                XCTAssertEqual(frontend, "percpu", "\(frontend) asked, \(used ?? "?") used")
                print("note: front end \(frontend) not available here; the library used \(used ?? "?")")
            }
        }
    }

    /// The summary has the shape documented in <swiftmalloc.h> (front end
    /// line, class table, byte lines), and malloc_stats writes it to stderr.
    func testMallocStatsWritesToStderr() throws {
        let source = """
            #include <malloc.h>
            #include <stdlib.h>
            int main(void) { void *p = malloc(100); malloc_stats(); free(p); return 0; }
            """
        let dir = try Preload.makeTemporaryDirectory("cstats")
        let c = dir.appendingPathComponent("ms.c").path
        let exe = dir.appendingPathComponent("ms").path
        try source.write(toFile: c, atomically: true, encoding: .utf8)
        let compiled = try Preload.run(["cc", "-O1", c, "-o", exe], timeout: 60)
        XCTAssertEqual(compiled.exitStatus, 0, compiled.summary)
        let (result, _) = try Preload.runPreloaded([exe], environment: ["SWIFTMALLOC_FRONTEND": "thread"])
        XCTAssertEqual(result.exitStatus, 0, result.summary)
        for expected in ["SwiftMalloc statistics", "front end: thread", " class      size      in use      cached   spans",
                         "mapped bytes", "resident bytes", "in-use bytes", "Total (incl. mmap):"] {
            XCTAssertTrue(result.stderr.contains(expected), "no \"\(expected)\" in:\n\(result.stderr)")
        }
        XCTAssertEqual(result.stdout, "")
    }
}
