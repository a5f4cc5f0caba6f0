// Properties of the size-class optimiser over random profiles.
import PropertyBased
import Testing
@testable import MallocLabCore

struct SizeClassOptimizerPropertyTests {
    /// A profile from random request sizes (some above 32768) and counts.
    static func profile(_ sizes: [Int], _ counts: [Int]) -> AllocationHistogram {
        var requests: [Int: Int] = [:]
        for (i, size) in sizes.enumerated() { requests[size, default: 0] += counts[i % counts.count] }
        return AllocationHistogram.of(requests: requests)
    }

    @Test func neverMoreClassesOrMoreWasteThanAllowed() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...40_000).array(of: 1...120), Gen.int(in: 1...5000).array(of: 1...20),
                            Gen.int(in: 1...127), Gen.int(in: 1...40)) { sizes, counts, maxClasses, wastePercent in
            let h = Self.profile(sizes, counts)
            guard !h.smallBuckets.isEmpty else { return }
            let maxWaste = Double(wastePercent) / 100
            let s = try SizeClassOptimizer(maxClasses: maxClasses, maxWaste: maxWaste).suggest(for: h)
            #expect(s.layout.sizes.count <= maxClasses)
            #expect(SizeClassLayout.problem(s.layout.sizes) == nil)
            // Covers the largest observed small request; beyond it, only a
            // final 32768 class, and only when there was room for it.
            let largestObserved = h.smallBuckets.last!.maxSize
            let covering = try #require(s.layout.sizes.first { $0 >= largestObserved })
            #expect(covering < largestObserved + 16)
            let beyond = s.layout.sizes.filter { $0 > covering }
            #expect(beyond.isEmpty || beyond == [SizeClassLayout.largestClassSize])
            let covered = s.layout.sizes.count - beyond.count
            #expect(beyond.isEmpty == (covered == maxClasses || covering == SizeClassLayout.largestClassSize))
            if s.meetsWasteLimit {
                #expect(s.breakdown.worstClassWasteOverAlignment <= maxWaste + 1e-9)
                #expect(s.classesOverLimit.isEmpty)
            } else {
                #expect(!s.classesOverLimit.isEmpty)
            }
            // One class per candidate is always the least waste; with room for
            // them all the suggestion wastes no more than that.
            let candidates = SizeClassOptimizer.candidates(h)
            let finest = WasteModel.evaluate(try SizeClassLayout(sizes: candidates.map(\.size)), over: h)
            #expect(s.breakdown.wastedBytes >= finest.wastedBytes - 1e-6 * max(1, finest.wastedBytes))
            if candidates.count <= maxClasses && finest.worstClassWasteOverAlignment <= maxWaste {
                #expect(s.meetsWasteLimit)
                #expect(abs(s.breakdown.wastedBytes - finest.wastedBytes) <= 1e-6 * max(1, finest.wastedBytes))
            }
        }
    }

    @Test func feasibilityIsExactOnSmallProfiles() async {
        // Brute force over every set of class boundaries among the candidates.
        await propertyCheck(count: 150, input: Gen.int(in: 1...3000).array(of: 1...9), Gen.int(in: 1...100).array(of: 1...9),
                            Gen.int(in: 1...4), Gen.int(in: 1...30)) { sizes, counts, maxClasses, wastePercent in
            let h = Self.profile(sizes, counts)
            let maxWaste = Double(wastePercent) / 100
            let s = try SizeClassOptimizer(maxClasses: maxClasses, maxWaste: maxWaste).suggest(for: h)
            let candidates = SizeClassOptimizer.candidates(h).map(\.size)
            var bestFeasible: Double?
            var bestAny = Double.infinity
            // The largest candidate is always a class; any subset of the others.
            for mask in 0..<(1 << (candidates.count - 1)) {
                let chosen = candidates.indices.filter { $0 == candidates.count - 1 || mask & (1 << $0) != 0 }.map { candidates[$0] }
                guard chosen.count <= maxClasses else { continue }
                let w = WasteModel.evaluate(try SizeClassLayout(sizes: chosen), over: h)
                bestAny = min(bestAny, w.wastedBytes)
                if w.worstClassWasteOverAlignment <= maxWaste + 1e-9 { bestFeasible = min(bestFeasible ?? .infinity, w.wastedBytes) }
            }
            #expect(s.meetsWasteLimit == (bestFeasible != nil))
            let target = bestFeasible ?? bestAny
            #expect(abs(s.breakdown.wastedBytes - target) <= 1e-6 * max(1, target))
        }
    }
}
