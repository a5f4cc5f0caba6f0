// The text `malloc-lab profile` prints: the requests per bucket, the waste
// of the built-in classes, and the suggested layout.
import Foundation

public enum ProfileReport {
    public static func text(histogram: AllocationHistogram, builtIn: WasteBreakdown, suggestion: SizeClassSuggestion) -> String {
        var lines: [String] = []
        let total = max(histogram.total, 1)
        lines.append("\(histogram.total) requests, \(Fmt.bytes(Double(histogram.requestedBytes))) requested, in \(histogram.buckets.count) buckets")
        lines.append("")
        lines.append(row(["bucket (bytes)", "requests", "share", "built-in class", "suggested class"]))
        let builtInSizes = SizeClassLayout.builtIn.sizes
        let suggested = suggestion.layout.sizes
        for b in histogram.buckets {
            lines.append(row([
                "\(b.minSize)–\(b.maxSize)", "\(b.count)", String(format: "%.2f%%", Double(b.count) * 100 / Double(total)),
                classes(in: builtInSizes, for: b), classes(in: suggested, for: b),
            ]))
        }
        let measured = histogram.handedOutBytes > 0 ? 1 - Double(histogram.requestedBytes) / Double(histogram.handedOutBytes) : 0
        lines.append("")
        lines.append("Internal waste of the built-in classes (\(builtInSizes.count) classes, \(builtIn.classes.count) used): "
                     + "\(percent(measured)) measured (\(Fmt.bytes(Double(histogram.handedOutBytes - histogram.requestedBytes))) of "
                     + "\(Fmt.bytes(Double(histogram.handedOutBytes))) handed out), \(percent(builtIn.wasteFraction)) by the model")
        let s = suggestion.breakdown
        lines.append("Suggested layout: \(suggested.count) classes (at most \(suggestion.maxClasses)), internal waste "
                     + "\(percent(s.wasteFraction)) by the model (\(Fmt.bytes(s.wastedBytes)) of \(Fmt.bytes(s.handedOutBytes))), "
                     + "worst class over alignment \(percent(s.worstClassWasteOverAlignment)) (limit \(percent(suggestion.maxWaste)))")
        if !suggestion.meetsWasteLimit {
            lines.append("NOT FEASIBLE: no layout of at most \(suggestion.maxClasses) classes keeps every class within "
                         + "\(percent(suggestion.maxWaste)); this is the least wasteful one. Over the limit: "
                         + suggestion.classesOverLimit.map { "\($0.size) (\(percent($0.wasteOverAlignment)))" }.joined(separator: ", "))
        }
        lines.append("Requests above \(suggestion.layout.largest) bytes are large allocations\(WasteModel.largeRule(above: suggestion.layout.largest)): "
                     + "\(Int(s.large.requests.rounded())) here, wasting \(Fmt.bytes(s.large.wastedBytes)) (the same under both layouts when both cover the observed small sizes)")
        lines.append("")
        lines.append(row(["class", "requests", "waste", "over alignment"]))
        for c in s.classes {
            lines.append(row(["\(c.size)", String(format: "%.0f", c.requests), percent(c.wasteFraction), percent(c.wasteOverAlignment)]))
        }
        lines.append("(Model: an 8-byte bucket counts as requests of its upper bound, a wider one as spread evenly over its sizes; "
                     + "totals use the exact requested bytes. Over alignment: leaving out the rounding to 8 or 16 bytes every layout has.)")
        return lines.joined(separator: "\n")
    }

    /// The classes of `sizes` that serve the bucket's requests, or "large".
    static func classes(in sizes: [Int], for b: AllocationHistogram.Bucket) -> String {
        guard let first = WasteModel.firstIndex(in: sizes, holding: max(b.minSize, 1)) else { return "large" }
        guard let last = WasteModel.firstIndex(in: sizes, holding: b.maxSize) else { return "\(sizes[first]), large" }
        return first == last ? "\(sizes[first])" : "\(sizes[first])–\(sizes[last])"
    }

    static func row(_ cells: [String]) -> String {
        let widths = [16, 10, 8, 16, 16]
        return cells.enumerated().map { i, c in
            i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                   : String(repeating: " ", count: max(0, widths[i] - c.count)) + c
        }.joined(separator: " ")
    }

    static func percent(_ f: Double) -> String { String(format: "%.2f%%", f * 100) }
}
