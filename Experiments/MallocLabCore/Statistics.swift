// Order statistics for repetitions and for any list of measurements.
import Foundation

public enum Stats {
    /// The median (mean of the two middle values for an even count); nil when empty.
    public static func median(_ values: [Double]) -> Double? {
        percentile(values, 50)
    }

    /// The p-th percentile (0...100) with linear interpolation between
    /// closest ranks (the "R-7" / NumPy default definition); nil when empty.
    public static func percentile(_ values: [Double], _ p: Double) -> Double? {
        let v = values.filter { $0.isFinite }.sorted()
        guard !v.isEmpty else { return nil }
        if v.count == 1 { return v[0] }
        let clamped = min(max(p, 0), 100)
        let rank = clamped / 100 * Double(v.count - 1)
        let lo = Int(rank.rounded(.down))
        let hi = min(lo + 1, v.count - 1)
        let frac = rank - Double(lo)
        return v[lo] + (v[hi] - v[lo]) * frac
    }

    public static func mean(_ values: [Double]) -> Double? {
        let v = values.filter { $0.isFinite }
        guard !v.isEmpty else { return nil }
        return v.reduce(0, +) / Double(v.count)
    }

    /// Sample standard deviation (n - 1); 0 for a single value, nil when empty.
    public static func standardDeviation(_ values: [Double]) -> Double? {
        let v = values.filter { $0.isFinite }
        guard let m = mean(v) else { return nil }
        guard v.count > 1 else { return 0 }
        let ss = v.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return (ss / Double(v.count - 1)).squareRoot()
    }

    /// Median absolute deviation from the median.
    public static func medianAbsoluteDeviation(_ values: [Double]) -> Double? {
        guard let m = median(values) else { return nil }
        return median(values.filter { $0.isFinite }.map { abs($0 - m) })
    }
}

/// Median and spread of the repetitions of one measurement.
public struct Spread: Codable, Equatable, Sendable {
    public var n: Int
    public var median: Double
    public var min: Double
    public var max: Double
    public var mean: Double
    public var stdev: Double

    public init(n: Int, median: Double, min: Double, max: Double, mean: Double, stdev: Double) {
        self.n = n
        self.median = median
        self.min = min
        self.max = max
        self.mean = mean
        self.stdev = stdev
    }

    /// nil when there are no finite values.
    public init?(_ values: [Double]) {
        let v = values.filter { $0.isFinite }
        guard let med = Stats.median(v), let mean = Stats.mean(v), let sd = Stats.standardDeviation(v) else { return nil }
        self.init(n: v.count, median: med, min: v.min()!, max: v.max()!, mean: mean, stdev: sd)
    }

    /// (max - min) / median: the whole range of the repetitions relative to
    /// their median (0 when the median is 0).
    public var relativeRange: Double { median == 0 ? 0 : (max - min) / abs(median) }
}
