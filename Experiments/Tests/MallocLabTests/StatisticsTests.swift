import Histogram
import XCTest
@testable import MallocLabCore

final class StatisticsTests: XCTestCase {
    func testMedian() {
        XCTAssertNil(Stats.median([]))
        XCTAssertEqual(Stats.median([7]), 7)
        XCTAssertEqual(Stats.median([3, 1, 2]), 2)
        XCTAssertEqual(Stats.median([4, 1, 3, 2]), 2.5)
        XCTAssertEqual(Stats.median([5, 5, 5, 100]), 5)
        XCTAssertEqual(Stats.median([1, .nan, 3]), 2, "non-finite values are ignored")
    }

    /// Reference values from numpy.percentile (linear interpolation, the default).
    func testPercentilesAgainstKnownData() {
        let oneToTen = (1...10).map(Double.init)
        XCTAssertEqual(Stats.percentile(oneToTen, 0), 1)
        XCTAssertEqual(Stats.percentile(oneToTen, 100), 10)
        XCTAssertEqual(Stats.percentile(oneToTen, 50)!, 5.5, accuracy: 1e-12)
        XCTAssertEqual(Stats.percentile(oneToTen, 90)!, 9.1, accuracy: 1e-12)
        XCTAssertEqual(Stats.percentile(oneToTen, 99)!, 9.91, accuracy: 1e-12)
        XCTAssertEqual(Stats.percentile(oneToTen, 25)!, 3.25, accuracy: 1e-12)
        let data: [Double] = [15, 20, 35, 40, 50]
        XCTAssertEqual(Stats.percentile(data, 40)!, 29, accuracy: 1e-12)   // numpy: 29.0
        XCTAssertEqual(Stats.percentile(data, 99.9)!, 49.96, accuracy: 1e-9)
        let thousand = (1...1000).map(Double.init)
        XCTAssertEqual(Stats.percentile(thousand, 99.9)!, 999.001, accuracy: 1e-9)
        XCTAssertEqual(Stats.percentile(thousand, 99)!, 990.01, accuracy: 1e-9)
        XCTAssertEqual(Stats.percentile([2, 1], 50)!, 1.5, accuracy: 1e-12)
    }

    func testMeanAndDeviation() {
        let v: [Double] = [2, 4, 4, 4, 5, 5, 7, 9]
        XCTAssertEqual(Stats.mean(v), 5)
        XCTAssertEqual(Stats.standardDeviation(v)!, 2.138089935299395, accuracy: 1e-12)   // sample sd (n-1)
        XCTAssertEqual(Stats.standardDeviation([3]), 0)
        XCTAssertNil(Stats.standardDeviation([]))
        XCTAssertEqual(Stats.medianAbsoluteDeviation([1, 1, 2, 2, 4, 6, 9]), 1)
    }

    func testSpread() throws {
        let s = try XCTUnwrap(Spread([10, 12, 8, 11, 9]))
        XCTAssertEqual(s.n, 5)
        XCTAssertEqual(s.median, 10)
        XCTAssertEqual(s.min, 8)
        XCTAssertEqual(s.max, 12)
        XCTAssertEqual(s.mean, 10)
        XCTAssertEqual(s.relativeRange, 0.4, accuracy: 1e-12)
        XCTAssertNil(Spread([]))
    }

    /// The workload turns sampled latencies into percentiles with HdrHistogram
    /// (3 significant digits); on known data it must agree with exact order
    /// statistics to within that precision.
    func testHdrHistogramPercentilesMatchKnownData() {
        var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 100_000_000_000, numberOfSignificantValueDigits: .three)
        for v in 1...10_000 { h.record(UInt64(v)) }
        h.record(1_000_000)  // one outlier
        XCTAssertEqual(h.totalCount, 10_001)
        XCTAssertEqual(Double(h.valueAtPercentile(50)), 5001, accuracy: 5001 * 0.001 + 1)
        XCTAssertEqual(Double(h.valueAtPercentile(99)), 9901, accuracy: 9901 * 0.001 + 1)
        XCTAssertEqual(Double(h.valueAtPercentile(99.9)), 9991, accuracy: 9991 * 0.001 + 1)
        XCTAssertEqual(Double(h.max), 1_000_000, accuracy: 1_000_000 * 0.001)
    }

    func testSummarizerMediansAndFailures() {
        func s(_ rep: Int, _ tp: Double, status: RunStatus = .ok) -> Sample {
            Sample(workload: "churn", allocator: "glibc", threads: 1, repetition: rep, seed: 1, scale: 1, status: status,
                   error: status == .ok ? nil : "check failed", wallSeconds: status == .ok ? 1 / tp : nil, ops: 1,
                   throughput: status == .ok ? tp : nil, peakRss: 100, malloc: LatencySummary(samples: 1, p50: tp, p90: 0, p99: 0, p999: 0, max: 0, mean: 0))
        }
        let ok = Summarizer.summarize([s(0, 3), s(1, 1), s(2, 2)])
        XCTAssertTrue(ok.isOK)
        XCTAssertEqual(ok.throughput?.median, 2)
        XCTAssertEqual(ok.mallocP50, 2)
        XCTAssertEqual(ok.okRuns, 3)
        let bad = Summarizer.summarize([s(0, 3), s(1, 0, status: .failed)])
        XCTAssertFalse(bad.isOK)
        XCTAssertEqual(bad.status, .failed)
        XCTAssertNil(bad.throughput, "a failed cell reports no time")
        XCTAssertNil(bad.wallSeconds)
        XCTAssertEqual(bad.errors, ["check failed"])
    }

    func testPerfOutputParsing() {
        let supported = "1234567,,instructions:u,1000,100.00,,\n765432,,cycles:u,1000,100.00,,\n321,,cache-misses:u,1000,100.00,,\n"
        let c = MachineProbe.parsePerf(supported)
        XCTAssertEqual(c.instructions, 1234567)
        XCTAssertEqual(c.cycles, 765432)
        XCTAssertEqual(c.cacheMisses, 321)
        let unsupported = "<not supported>,,instructions,0,100.00,,\n<not supported>,,cycles,0,100.00,,\n"
        XCTAssertTrue(MachineProbe.parsePerf(unsupported).isEmpty)
    }
}
