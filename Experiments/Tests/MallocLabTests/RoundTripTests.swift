import Foundation
import SwiftCSV
import XCTest
@testable import MallocLabCore

final class RoundTripTests: XCTestCase {
    func testJSONRoundTrip() throws {
        let r = Fixtures.results()
        let data = try r.encoded()
        let back = try ResultsFile.decode(data)
        XCTAssertEqual(back, r)
        XCTAssertEqual(back.schema, ResultsFile.currentSchema)
        // Failed cells carry no time.
        let failed = back.cells.filter { !$0.isOK }
        XCTAssertEqual(failed.count, 1)
        XCTAssertNil(failed[0].throughput)
        XCTAssertNil(failed[0].wallSeconds)
    }

    func testCSVReadsBackWithAnIndependentReader() throws {
        var samples = Fixtures.results().samples
        // Awkward text: commas, quotes, newlines; extreme numbers.
        samples[0].error = "line one, with \"quotes\"\nline two"
        samples[0].status = .crashed
        samples[1].throughput = 1.0000000000000002e-300
        samples[1].notes = ["a": 0.1, "b_c": 12345678901234.5]
        samples[2].seed = UInt64.max
        let csv = try EnumeratedCSV(string: ResultsCSV.encode(samples), delimiter: .comma, loadColumns: false)
        XCTAssertEqual(csv.header, ResultsCSV.columns)
        // One record per sample, every field as written (the quoted newline stays inside its field).
        XCTAssertEqual(csv.rows, samples.map(ResultsCSV.row))
        func field(_ row: Int, _ column: String) -> String { csv.rows[row][ResultsCSV.columns.firstIndex(of: column)!] }
        XCTAssertEqual(field(0, "error"), "line one, with \"quotes\"\nline two")
        XCTAssertEqual(field(0, "status"), "crashed")
        // Numbers in the shortest form that reads back to the same value.
        XCTAssertEqual(Double(field(1, "throughput")), 1.0000000000000002e-300)
        XCTAssertEqual(field(1, "notes"), "a=0.1;b_c=12345678901234.5")
        XCTAssertEqual(UInt64(field(2, "seed")), UInt64.max)
    }

    func testCSVFieldQuoting() {
        XCTAssertEqual(MallocLabCore.CSV.line(["plain", "with,comma", "with \"q\"", "two\nlines", ""]),
                       "plain,\"with,comma\",\"with \"\"q\"\"\",\"two\nlines\",")
    }

    func testWorkloadOutputParsing() throws {
        let line = """
            {"workload":"churn","threads":1,"ok":true,"scale":1,"seed":1,"wall_ns":145364836,"ops":6000000,"ops_unit":"malloc+free pairs","baseline_rss":9121792,"peak_rss":11907072,"max_sampled_rss":11907072,"final_rss":11907072,"idle_rss":null,"live_peak":1348064,"rss_at_live_peak":11448320,"live_final":0,"malloc_ns":{"samples":93750,"p50":20,"p90":30,"p99":130,"p999":280,"max":84543,"mean":29.5},"free_ns":null,"sample_every":64,"timer_overhead_ns":20.02,"ticks_per_ns":2.59,"malloc_provider":"/lib/x86_64-linux-gnu/libc.so.6","cpus":2,"notes":{"k":1.5}}
            """
        let o = try XCTUnwrap(WorkloadOutput.parse("banner from an allocator\n" + line + "\n"))
        XCTAssertEqual(o.wallNs, 145364836)
        XCTAssertEqual(o.mallocNs?.p99, 130)
        XCTAssertNil(o.freeNs)
        XCTAssertNil(o.idleRss)
        XCTAssertEqual(o.notes["k"], 1.5)
        XCTAssertNil(WorkloadOutput.parse("no json here"))
    }
}
