// The size-class optimiser: from a histogram, the layout of at most N
// classes with the least internal waste in which no class wastes more than
// a threshold.
import Foundation

/// What the optimiser suggests, and how it fares.
public struct SizeClassSuggestion: Equatable, Sendable {
    public var layout: SizeClassLayout
    public var maxClasses: Int
    /// The per-class threshold on waste over alignment, a fraction (0.1 =
    /// 10%; see `ClassWaste.wasteOverAlignment`).
    public var maxWaste: Double
    /// False when no layout of at most `maxClasses` classes keeps every
    /// class within `maxWaste`; `layout` is then the least wasteful layout
    /// of at most `maxClasses` classes, with `classesOverLimit` naming the
    /// classes above the threshold.
    public var meetsWasteLimit: Bool
    public var breakdown: WasteBreakdown

    public var classesOverLimit: [ClassWaste] {
        breakdown.classes.filter { $0.wasteOverAlignment > maxWaste + SizeClassOptimizer.tolerance }
    }
}

/// Builds a layout from a histogram.
///
/// Candidate classes are the small buckets' `max_size`s rounded up to a
/// valid class size (8, or a multiple of 16), so every observed request has
/// a class of its own to start with and the smallest possible waste. A
/// layout merges runs of adjacent candidates into one class, the run's
/// largest: merging is the only way to have fewer classes, and each merge
/// hands the smaller requests more bytes. Rather than merging greedily one
/// pair at a time (which can paint itself into a corner where the remaining
/// merges all break the threshold although another order would not), the
/// optimiser finds the best merge outright: dynamic programming over the
/// candidates picks, among all partitions into at most `maxClasses` runs in
/// which every run's waste is within the threshold, one with the least total
/// waste. So it fails to meet the threshold only when no layout can.
///
/// The threshold bounds each class's waste over alignment (see
/// `WasteModel`): the 8 bytes a request of 24 loses to 16-byte alignment
/// are lost under every layout, so they count against no threshold. A class
/// of a single candidate stays within any threshold but for a wide bucket's
/// spread (about 3% above 1 KiB, under the even-spread estimate).
///
/// The classes cover the largest observed small request, and when the
/// layout has room for one more class, a final class of 32768 follows.
/// The profiled program makes no request between its largest class and
/// 32768, so that class costs it no waste; another input may, and the
/// allocator serves such a request (class 0 of a configured table) as a
/// large allocation of 32768 bytes (FrontEnd.allocateSlow): the final class
/// hands out the same bytes, from a cache instead of the page heap.
public struct SizeClassOptimizer: Sendable {
    public var maxClasses: Int
    public var maxWaste: Double

    /// Slack for comparing computed fractions with the threshold.
    static let tolerance = 1e-9

    public init(maxClasses: Int, maxWaste: Double) throws {
        guard (1...SizeClassLayout.maxClassCount).contains(maxClasses) else {
            throw LabError.usage("the class count must be from 1 to \(SizeClassLayout.maxClassCount) (got \(maxClasses))")
        }
        guard maxWaste >= 0, maxWaste < 1 else {
            throw LabError.usage("the waste threshold must be a fraction in [0, 1) (got \(maxWaste))")
        }
        self.maxClasses = maxClasses
        self.maxWaste = maxWaste
    }

    /// One candidate class: the requests whose smallest valid class it is,
    /// and their requested bytes rounded up to malloc's alignment.
    struct Candidate {
        var size: Int
        var requests: Double
        var alignedRequestedBytes: Double
    }

    static func candidates(_ histogram: AllocationHistogram) -> [Candidate] {
        var result: [Candidate] = []
        for bucket in histogram.smallBuckets {
            let size = SizeClassLayout.classSize(holding: bucket.maxSize)
            let count = Double(bucket.count)
            if let last = result.last, last.size == size {
                result[result.count - 1].requests += count
                result[result.count - 1].alignedRequestedBytes += count * bucket.alignedEstimatedRequest
            } else {
                result.append(Candidate(size: size, requests: count, alignedRequestedBytes: count * bucket.alignedEstimatedRequest))
            }
        }
        return result
    }

    public func suggest(for histogram: AllocationHistogram) throws -> SizeClassSuggestion {
        let candidates = Self.candidates(histogram)
        guard !candidates.isEmpty else {
            throw LabError.usage("the profile has no request of at most \(SizeClassLayout.largestClassSize) bytes: no size class to suggest")
        }
        var sizes: [Int]
        let feasible: Bool
        if let capped = bestPartition(candidates, capped: true) {
            sizes = capped
            feasible = true
        } else {
            sizes = bestPartition(candidates, capped: false)!
            feasible = false
        }
        if sizes.count < maxClasses && sizes.last! < SizeClassLayout.largestClassSize {
            sizes.append(SizeClassLayout.largestClassSize)
        }
        let layout = try SizeClassLayout(sizes: sizes)
        return SizeClassSuggestion(layout: layout, maxClasses: maxClasses, maxWaste: maxWaste, meetsWasteLimit: feasible,
                                   breakdown: WasteModel.evaluate(layout, over: histogram))
    }

    /// The class sizes of the least wasteful partition of `candidates` into
    /// at most `maxClasses` runs (each run's waste within the threshold when
    /// `capped`), or nil when there is none.
    func bestPartition(_ candidates: [Candidate], capped: Bool) -> [Int]? {
        let n = candidates.count
        // Prefix sums: the run i..<j hands out size(j-1) × requests and wastes
        // that minus its aligned requested bytes (which differs from the
        // waste over the requested bytes by the same amount in every layout).
        var requests = [0.0]
        var requested = [0.0]
        for c in candidates {
            requests.append(requests.last! + c.requests)
            requested.append(requested.last! + c.alignedRequestedBytes)
        }
        func waste(_ i: Int, _ j: Int) -> Double? {
            let handed = Double(candidates[j - 1].size) * (requests[j] - requests[i])
            let wasted = handed - (requested[j] - requested[i])
            if capped && handed > 0 && wasted / handed > maxWaste + Self.tolerance { return nil }
            return wasted
        }
        let runs = min(maxClasses, n)
        // best[k][j]: least waste covering candidates 0..<j with k runs.
        var best = Array(repeating: Array(repeating: Double.infinity, count: n + 1), count: runs + 1)
        var cut = Array(repeating: Array(repeating: -1, count: n + 1), count: runs + 1)
        best[0][0] = 0
        for k in 1...runs {
            for j in k...n {
                for i in (k - 1)..<j where best[k - 1][i] < .infinity {
                    guard let w = waste(i, j) else { continue }
                    let total = best[k - 1][i] + w
                    if total < best[k][j] {
                        best[k][j] = total
                        cut[k][j] = i
                    }
                }
            }
        }
        // Fewer classes win ties: no class that buys nothing.
        var bestRuns = -1
        for k in 1...runs where best[k][n] < .infinity {
            if bestRuns < 0 || best[k][n] < best[bestRuns][n] - Self.tolerance * max(1, best[k][n]) { bestRuns = k }
        }
        guard bestRuns > 0 else { return nil }
        var sizes: [Int] = []
        var j = n
        var k = bestRuns
        while k > 0 {
            sizes.append(candidates[j - 1].size)
            j = cut[k][j]
            k -= 1
        }
        return sizes.reversed()
    }
}
