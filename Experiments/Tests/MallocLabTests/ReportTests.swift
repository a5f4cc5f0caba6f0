import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import SwiftCSV
import XCTest
@testable import MallocLabCLI
@testable import MallocLabCore

/// Collects the series groups of an SVG while checking it is well-formed XML.
final class SVGInspector: NSObject, XMLParserDelegate {
    var seriesIDs: [String] = []
    var rootName: String?
    var texts: [String] = []
    private var inText = false

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        if rootName == nil { rootName = name }
        if name == "g", attributes["class"] == "series", let id = attributes["data-series"] { seriesIDs.append(id) }
        inText = name == "text"
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if inText { texts.append(string) }
    }

    static func inspect(_ svg: String) throws -> SVGInspector {
        let p = XMLParser(data: Data(svg.utf8))
        let i = SVGInspector()
        p.delegate = i
        guard p.parse() else {
            throw NSError(domain: "SVG", code: 1, userInfo: [NSLocalizedDescriptionKey: "not XML: \(p.parserError.map { "\($0)" } ?? "?")"])
        }
        return i
    }
}

final class ReportTests: XCTestCase {
    func testChartsParseAndHaveOneSeriesPerAllocator() throws {
        let data = ReportData(Fixtures.results())
        let charts = ChartBuilder.charts(for: data)
        let names = Set(charts.map(\.name))
        for expected in ["throughput-larson.svg", "rss-larson.svg", "latency-larson.svg", "throughput-churn.svg",
                         "rss-churn.svg", "latency-churn.svg", "overview-throughput.svg", "overview-peak-rss.svg"] {
            XCTAssertTrue(names.contains(expected), "missing \(expected); have \(names.sorted())")
        }
        for c in charts {
            let svg = c.chart.svg()
            let i = try SVGInspector.inspect(svg)
            XCTAssertEqual(i.rootName, "svg", c.name)
            XCTAssertEqual(i.seriesIDs, Fixtures.allocatorIDs, "\(c.name): one series per allocator")
            XCTAssertTrue(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""), c.name)
        }
        // The line chart of throughput against threads has a point per thread count.
        let larson = try XCTUnwrap(charts.first { $0.name == "throughput-larson.svg" })
        XCTAssertEqual(larson.chart.style, .line)
        XCTAssertEqual(larson.chart.xValues, [1, 2, 8])
        XCTAssertEqual(larson.chart.series.first { $0.id == "glibc" }?.values.count, 3)
        // The failed cell is marked, not drawn as a value.
        let churn = try XCTUnwrap(charts.first { $0.name == "throughput-churn.svg" })
        let je = try XCTUnwrap(churn.chart.series.first { $0.id == "jemalloc" })
        XCTAssertEqual(je.values, [nil])
        XCTAssertEqual(je.failed, [true])
        XCTAssertTrue(churn.chart.svg().contains("failed"))
    }

    func testSVGEscapesText() throws {
        let chart = Chart(title: "a < b & \"c\"", xLabel: "x", yLabel: "y", groups: ["<g>"],
                          series: [ChartSeries(id: "odd&id", label: "odd & <label>", values: [1])], style: .bars)
        let i = try SVGInspector.inspect(chart.svg())
        XCTAssertEqual(i.seriesIDs, ["odd&id"])
        XCTAssertTrue(i.texts.joined().contains("a < b & \"c\""), "\(i.texts)")
    }

    func testReportMarkdown() throws {
        let data = ReportData(Fixtures.results())
        let md = ReportRenderer.markdown(data, charts: ChartBuilder.charts(for: data))
        XCTAssertTrue(md.contains("## Summary"))
        XCTAssertTrue(md.contains("## Machine"))
        XCTAssertTrue(md.contains("Test CPU"))
        XCTAssertTrue(md.contains("abc1234"))
        XCTAssertTrue(md.contains("![Larson-style server: throughput](charts/throughput-larson.svg)"))
        // The winner statement comes from the data: jemalloc has the highest
        // synthetic throughput on larson; on churn jemalloc failed, so glibc wins.
        XCTAssertTrue(md.contains("| larson | 8 | **jemalloc** |"), md)
        XCTAssertTrue(md.contains("| churn | 1 | **glibc** |"), md)
        XCTAssertTrue(md.contains("1.33× over glibc"), md)
        // Failures are reported instead of a time.
        XCTAssertTrue(md.contains("| jemalloc | 1 | **FAILED** |"), md)
        XCTAssertTrue(md.contains("check failed [churn]"))
        XCTAssertTrue(md.contains("1 of 16 cells failed"), md)
        XCTAssertTrue(md.contains("Per-CPU (rseq) against per-thread"))
        XCTAssertTrue(md.contains("perf") && md.contains("not supported"))
    }

    /// SwiftMalloc's lock counters: per tier, contended acquisitions per
    /// million ops, summarised per cell and shown beside throughput; tiers
    /// that never waited are left out; other allocators have none.
    func testLockContentionTable() throws {
        let r = Fixtures.results()
        let eight = r.samples.first { $0.workload == "larson" && $0.allocator == "swiftmalloc-percpu" && $0.threads == 8 }!
        XCTAssertEqual(LockTiers.waitsPerMillionOps(eight)?["central"], 70)
        XCTAssertEqual(LockTiers.waitsPerMillionOps(eight)?["transfer"], 0)
        XCTAssertNil(LockTiers.waitsPerMillionOps(eight)?["global"], "absent from the stats: not reported")
        let glibc = r.cells.first { $0.allocator == "glibc" }!
        XCTAssertNil(glibc.lockWaitsPerMillionOps)
        let cell = r.cells.first { $0.workload == "larson" && $0.allocator == "swiftmalloc-thread" && $0.threads == 2 }!
        XCTAssertEqual(cell.lockWaitsPerMillionOps?["central"], 10)

        let md = ReportRenderer.markdown(ReportData(r), charts: [])
        XCTAssertTrue(md.contains("### Lock contention"), md)
        XCTAssertTrue(md.contains("| workload | threads | allocator | throughput | waits/Mop | central |\n"), md)
        XCTAssertTrue(md.contains("| larson | 8 | swiftmalloc-percpu | 28.6M | 70 | 70 |\n"), md)
        XCTAssertTrue(md.contains("| larson | 1 | swiftmalloc-thread | 20.2M | 0 | 0 |\n"), md)

        // The counters travel in results.csv's swiftmalloc column.
        let csv = try EnumeratedCSV(string: ResultsCSV.encode(r.samples), delimiter: .comma, loadColumns: false)
        let column = { (name: String) in ResultsCSV.columns.firstIndex(of: name)! }
        let percpu8 = try XCTUnwrap(csv.rows.first { $0[column("allocator")] == "swiftmalloc-percpu" && $0[column("threads")] == "8" })
        XCTAssertTrue(percpu8[column("swiftmalloc")].split(separator: ";").contains("lock_contended_central=70.0"),
                      percpu8[column("swiftmalloc")])

        // Results without lock counters (an older library): no section.
        var old = r
        for i in old.samples.indices { old.samples[i].swiftmalloc?["lock_contended_central"] = nil; old.samples[i].swiftmalloc?["lock_contended_transfer"] = nil }
        old.cells = Summarizer.cells(from: old.samples)
        XCTAssertFalse(ReportRenderer.markdown(ReportData(old), charts: []).contains("Lock contention"))
    }

    func testOutputDirectoryAndReportCommand() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = Fixtures.results()
        try OutputWriter.write(r, to: dir)
        let fm = FileManager.default
        for f in ["report.md", "results.json", "results.csv", "charts/throughput-larson.svg", "charts/latency-larson.svg"] {
            XCTAssertTrue(fm.fileExists(atPath: dir.appendingPathComponent(f).path), f)
        }
        XCTAssertEqual(try OutputWriter.load(dir), try ResultsFile.decode(try r.encoded()))
        // `malloc-lab report DIR` re-renders from results.json alone.
        try fm.removeItem(at: dir.appendingPathComponent("report.md"))
        try fm.removeItem(at: dir.appendingPathComponent("charts"))
        let cmd = try XCTUnwrap(try MallocLab.parseAsRoot(["report", dir.path]) as? Report)
        try cmd.run()
        XCTAssertTrue(fm.fileExists(atPath: dir.appendingPathComponent("report.md").path))
        XCTAssertTrue(fm.fileExists(atPath: dir.appendingPathComponent("charts/rss-larson.svg").path))
        let csv = try String(contentsOf: dir.appendingPathComponent("results.csv"), encoding: .utf8)
        XCTAssertEqual(try EnumeratedCSV(string: csv, delimiter: .comma, loadColumns: false).rows, r.samples.map(ResultsCSV.row))
        // A directory without results.json is an error with a hint.
        let empty = try Fixtures.temporaryDirectory()
        defer { try? fm.removeItem(at: empty) }
        XCTAssertThrowsError(try OutputWriter.load(empty)) { e in XCTAssertTrue("\(e)".contains("compare")) }
    }
}
