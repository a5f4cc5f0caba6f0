import Foundation
import TOMLKit
import XCTest
@testable import MallocLabCore

final class SizeClassProfileTests: XCTestCase {
    // MARK: histogram decoding

    func testDecodesTheAllocatorsHistogramFormat() throws {
        let json = """
            {"total": 6, "requested_bytes": 150, "handed_out_bytes": 176,
             "buckets": [{"min_size": 0, "max_size": 8, "count": 1},
                         {"min_size": 17, "max_size": 24, "count": 4},
                         {"min_size": 1025, "max_size": 1088, "count": 1}]}
            """
        let h = try AllocationHistogram.decode(Data(json.utf8), source: "h.json")
        XCTAssertEqual(h.total, 6)
        XCTAssertEqual(h.requestedBytes, 150)
        XCTAssertEqual(h.handedOutBytes, 176)
        XCTAssertEqual(h.buckets, [.init(minSize: 0, maxSize: 8, count: 1), .init(minSize: 17, maxSize: 24, count: 4),
                                   .init(minSize: 1025, maxSize: 1088, count: 1)])
        XCTAssertTrue(h.buckets[0].isWithinEightBytes)
        XCTAssertTrue(h.buckets[1].isWithinEightBytes)
        XCTAssertFalse(h.buckets[2].isWithinEightBytes)
        XCTAssertEqual(h.buckets[2].estimatedRequest, 1056.5)
    }

    func testRejectsInconsistentHistograms() {
        func problem(_ json: String) -> String {
            do {
                _ = try AllocationHistogram.decode(Data(json.utf8), source: "h.json")
                return "accepted"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(problem(#"{"total": 1, "requested_bytes": 1, "buckets": []}"#),
                       #"h.json: not an allocation histogram (no "handed_out_bytes")"#)
        XCTAssertEqual(problem(#"{"total": 2, "requested_bytes": 1, "handed_out_bytes": 8, "buckets": [{"min_size": 0, "max_size": 8, "count": 1}]}"#),
                       "h.json: the buckets count 1 requests, total says 2")
        XCTAssertEqual(problem(#"{"total": 2, "requested_bytes": 1, "handed_out_bytes": 8, "buckets": [{"min_size": 9, "max_size": 16, "count": 1}, {"min_size": 0, "max_size": 8, "count": 1}]}"#),
                       "h.json: bucket [0, 8] overlaps or precedes the one before it")
        XCTAssertEqual(problem(#"{"total": 1, "requested_bytes": 1, "handed_out_bytes": 8, "buckets": [{"min_size": 16, "max_size": 9, "count": 1}]}"#),
                       "h.json: bucket [16, 9] has its bounds out of order")
        XCTAssertTrue(problem("not json").hasPrefix("h.json: not an allocation histogram"))
    }

    func testBucketBoundsFollowTheAllocatorsLayout() {
        XCTAssertEqual(AllocationHistogram.bucketBounds(of: 0), 0...8)
        XCTAssertEqual(AllocationHistogram.bucketBounds(of: 8), 0...8)
        XCTAssertEqual(AllocationHistogram.bucketBounds(of: 9), 9...16)
        XCTAssertEqual(AllocationHistogram.bucketBounds(of: 1024), 1017...1024)
        XCTAssertEqual(AllocationHistogram.bucketBounds(of: 1025), 1025...1088)
        XCTAssertEqual(AllocationHistogram.bucketBounds(of: 2048), 1985...2048)
        XCTAssertEqual(AllocationHistogram.bucketBounds(of: 2049), 2049...2176)
        XCTAssertEqual(AllocationHistogram.bucketBounds(of: 32768), 31745...32768)
        // Contiguous and each holds its size, over a wide range.
        var next = 0
        var size = 0
        while size <= 70_000 {
            let b = AllocationHistogram.bucketBounds(of: size)
            XCTAssertTrue(b.contains(size))
            if b.lowerBound == next { next = b.upperBound + 1 } else { XCTAssertLessThan(b.lowerBound, next) }
            size += 1
        }
        XCTAssertGreaterThan(next, 70_000)
    }

    // MARK: layouts and waste

    func testBuiltInLayoutMatchesTheAllocatorsRules() throws {
        let sizes = SizeClassLayout.builtIn.sizes
        XCTAssertEqual(sizes.count, 73)
        XCTAssertEqual(Array(sizes.prefix(10)), [8, 16, 32, 48, 64, 80, 96, 112, 128, 144])
        XCTAssertEqual(Array(sizes.suffix(2)), [30720, 32768])
        XCTAssertNil(SizeClassLayout.problem(sizes))
    }

    func testLayoutValidation() {
        XCTAssertEqual(SizeClassLayout.problem([]), "no classes")
        XCTAssertEqual(SizeClassLayout.problem([16, 16]), "16 after 16: classes must be strictly ascending")
        XCTAssertEqual(SizeClassLayout.problem([8, 24]), "24 is not a multiple of 16 (every class from 16 up keeps 16-byte alignment)")
        XCTAssertEqual(SizeClassLayout.problem([12]), "12 is not a multiple of 8")
        XCTAssertEqual(SizeClassLayout.problem([32784]), "32784 is outside 8...32768")
        XCTAssertEqual(SizeClassLayout.problem(Array(stride(from: 16, through: 16 * 128, by: 16))), "128 classes; at most 127")
        XCTAssertNil(SizeClassLayout.problem([8]))
        XCTAssertEqual(SizeClassLayout.classSize(holding: 0), 8)
        XCTAssertEqual(SizeClassLayout.classSize(holding: 8), 8)
        XCTAssertEqual(SizeClassLayout.classSize(holding: 24), 32)
        XCTAssertEqual(SizeClassLayout.classSize(holding: 1088), 1088)
    }

    func testWasteOfALayoutOverAHistogram() throws {
        // 10 requests of 24 bytes, 2 of a wide bucket 1025-1088, one of 40000.
        let h = AllocationHistogram(total: 13, requestedBytes: 10 * 24 + 2 * 1030 + 40000, handedOutBytes: 0, buckets: [
            .init(minSize: 17, maxSize: 24, count: 10), .init(minSize: 1025, maxSize: 1088, count: 2),
            .init(minSize: 38913, maxSize: 40960, count: 1),
        ])
        let layout = try SizeClassLayout(sizes: [32, 1056, 2048])
        let w = WasteModel.evaluate(layout, over: h)
        XCTAssertEqual(w.classes.map(\.size), [32, 1056, 2048])
        XCTAssertEqual(w.classes[0].requests, 10)
        XCTAssertEqual(w.classes[0].handedOutBytes, 320)
        XCTAssertEqual(w.classes[0].requestedBytes, 240)
        XCTAssertEqual(w.classes[0].wasteFraction, 0.25, accuracy: 1e-12)
        // The wide bucket is cut at 1056: 32 of its 64 sizes each side.
        XCTAssertEqual(w.classes[1].requests, 1, accuracy: 1e-12)
        XCTAssertEqual(w.classes[1].requestedBytes, (1025 + 1056) / 2.0, accuracy: 1e-9)
        XCTAssertEqual(w.classes[2].requests, 1, accuracy: 1e-12)
        XCTAssertEqual(w.classes[2].handedOutBytes, 2048, accuracy: 1e-9)
        // The large request: evenly over 38913...40960, every size rounds to 40960 (10 pages of 4 KiB).
        XCTAssertEqual(w.large.requests, 1, accuracy: 1e-12)
        XCTAssertEqual(w.large.handedOutBytes, 40960, accuracy: 1e-6)
        XCTAssertEqual(w.handedOutBytes, 320 + 1056 + 2048 + 40960, accuracy: 1e-6)
        XCTAssertEqual(w.requestedBytes, Double(h.requestedBytes))
        XCTAssertEqual(w.wasteFraction, 1 - Double(h.requestedBytes) / w.handedOutBytes, accuracy: 1e-12)
    }

    func testRequestsAboveTheLargestClassAreLarge() throws {
        let h = AllocationHistogram(total: 3, requestedBytes: 2 * 20 + 1050, handedOutBytes: 0, buckets: [
            .init(minSize: 17, maxSize: 24, count: 2), .init(minSize: 1025, maxSize: 1088, count: 1),
        ])
        let w = WasteModel.evaluate(try SizeClassLayout(sizes: [16]), over: h)
        XCTAssertTrue(w.classes.isEmpty)
        XCTAssertEqual(w.large.requests, 3, accuracy: 1e-12)
        XCTAssertEqual(w.large.requestedBytes, 2 * 24 + 1056.5, accuracy: 1e-9)
        XCTAssertEqual(w.large.alignedRequestedBytes, 2 * 32 + 1056.5, accuracy: 1e-9)
        // Up to 32768, above the largest class: a large allocation of 32768.
        XCTAssertEqual(w.large.handedOutBytes, 3 * 32768, accuracy: 1e-6)
    }

    func testLargeSizesRoundToPages() {
        XCTAssertEqual(WasteModel.largeSize(32769), 36864)
        XCTAssertEqual(WasteModel.largeSize(8192), 32768)
        XCTAssertEqual(WasteModel.largeSize(32768), 32768)
        XCTAssertEqual(WasteModel.largeSize(49152), 49152)
        XCTAssertEqual(WasteModel.largeSize((1 << 20) + 1), (1 << 20) + 4096)
        XCTAssertEqual(WasteModel.sumOfLargeSizes(from: 32766, through: 32770), 3 * 32768 + 2 * 36864)
        XCTAssertEqual(WasteModel.sumOfLargeSizes(from: 40958, through: 40962), 3 * 40960 + 2 * 45056)
    }

    func testSyntheticHistogramUsesTheBuiltInClassesForHandedOut() {
        let h = AllocationHistogram.of(requests: [24: 3, 1000: 1, 50000: 1])
        XCTAssertEqual(h.total, 5)
        XCTAssertEqual(h.requestedBytes, 72 + 1000 + 50000)
        XCTAssertEqual(h.handedOutBytes, 3 * 32 + 1024 + 53248)
        XCTAssertNil(h.problem)
    }

    // MARK: the optimiser

    /// Most requests of 24, 40, 72, 200, 1000 and 3000 bytes, a little of
    /// everything else.
    static let skewed: AllocationHistogram = {
        var requests: [Int: Int] = [24: 50_000, 40: 30_000, 72: 20_000, 200: 8_000, 1000: 3_000, 3000: 1_000]
        for size in stride(from: 8, through: 20_000, by: 104) { requests[size, default: 0] += 3 }
        requests[100_000] = 2
        return AllocationHistogram.of(requests: requests)
    }()

    func testSkewedProfileBeatsTheBuiltInClasses() throws {
        let builtIn = WasteModel.evaluate(.builtIn, over: Self.skewed)
        for (maxClasses, maxWaste) in [(32, 0.15), (48, 0.12), (64, 0.1)] {
            let s = try SizeClassOptimizer(maxClasses: maxClasses, maxWaste: maxWaste).suggest(for: Self.skewed)
            XCTAssertTrue(s.meetsWasteLimit, "\(maxClasses) classes")
            XCTAssertLessThanOrEqual(s.layout.sizes.count, maxClasses)
            XCTAssertLessThan(s.breakdown.wastedBytes, builtIn.wastedBytes, "\(maxClasses) classes")
            XCTAssertTrue(s.classesOverLimit.isEmpty)
            // The heavy sizes get classes of their own.
            for size in [24, 40, 72, 200, 1000] {
                XCTAssertTrue(s.layout.sizes.contains(SizeClassLayout.classSize(holding: (size + 7) / 8 * 8)), "\(size) with \(maxClasses) classes: \(s.layout.sizes)")
            }
        }
        // Measured against the handed-out bytes the built-in classes really give.
        XCTAssertEqual(builtIn.handedOutBytes, Double(Self.skewed.handedOutBytes), accuracy: Double(Self.skewed.handedOutBytes) * 0.01)
    }

    func testCoversTheLargestObservedSmallRequestThen32768WhenThereIsRoom() throws {
        let h = AllocationHistogram.of(requests: [40: 100, 5000: 3, 70_000: 1])
        XCTAssertEqual(AllocationHistogram.bucketBounds(of: 5000).upperBound, 5120)
        let roomy = try SizeClassOptimizer(maxClasses: 4, maxWaste: 0.5).suggest(for: h)
        XCTAssertEqual(roomy.layout.sizes, [48, 5120, 32768])
        XCTAssertEqual(roomy.breakdown.large.requests, 1, accuracy: 1e-12)
        let tight = try SizeClassOptimizer(maxClasses: 2, maxWaste: 0.5).suggest(for: h)
        XCTAssertEqual(tight.layout.sizes, [48, 5120])
        XCTAssertEqual(tight.breakdown.wastedBytes, roomy.breakdown.wastedBytes, accuracy: 1e-6)
        let one = try SizeClassOptimizer(maxClasses: 1, maxWaste: 0.5).suggest(for: h)
        XCTAssertEqual(one.layout.sizes, [5120])
        XCTAssertFalse(one.meetsWasteLimit)
    }

    func testInfeasibleLimitIsReportedWithTheLeastWastefulLayout() throws {
        // Four heavy sizes far apart cannot share 2 classes within 5%.
        let h = AllocationHistogram.of(requests: [16: 1000, 64: 1000, 256: 1000, 1024: 1000])
        let s = try SizeClassOptimizer(maxClasses: 2, maxWaste: 0.05).suggest(for: h)
        XCTAssertFalse(s.meetsWasteLimit)
        XCTAssertEqual(s.layout.sizes.count, 2)
        XCTAssertFalse(s.classesOverLimit.isEmpty)
        // The least waste with two classes: 16 alone wastes the most if merged, so it splits there or at 256.
        let candidates = [[16, 1024], [64, 1024], [256, 1024]].map { try! SizeClassLayout(sizes: $0) }
        let best = candidates.map { WasteModel.evaluate($0, over: h).wastedBytes }.min()!
        XCTAssertEqual(s.breakdown.wastedBytes, best, accuracy: 1e-6)
        // With four classes the same profile meets the limit.
        XCTAssertTrue(try SizeClassOptimizer(maxClasses: 4, maxWaste: 0.05).suggest(for: h).meetsWasteLimit)
    }

    func testRejectsBadLimitsAndEmptyProfiles() {
        XCTAssertThrowsError(try SizeClassOptimizer(maxClasses: 0, maxWaste: 0.1))
        XCTAssertThrowsError(try SizeClassOptimizer(maxClasses: 128, maxWaste: 0.1))
        XCTAssertThrowsError(try SizeClassOptimizer(maxClasses: 8, maxWaste: 1))
        let onlyLarge = AllocationHistogram.of(requests: [100_000: 3])
        XCTAssertThrowsError(try SizeClassOptimizer(maxClasses: 8, maxWaste: 0.1).suggest(for: onlyLarge)) { error in
            XCTAssertEqual("\(error)", "the profile has no request of at most 32768 bytes: no size class to suggest")
        }
    }

    // MARK: configuration files

    func testConfigurationFileRoundTripsInBothStyles() throws {
        let s = try SizeClassOptimizer(maxClasses: 24, maxWaste: 0.12).suggest(for: Self.skewed)
        let header = SizeClassConfigFile.header(command: "malloc-lab profile -- prog", date: "2026-12-01T00:00:00Z", suggestion: s,
                                                builtIn: WasteModel.evaluate(.builtIn, over: Self.skewed))
        for style in SizeClassConfigFile.Style.allCases {
            let text = try SizeClassConfigFile.render(s.layout, style: style, header: header)
            XCTAssertTrue(text.hasPrefix("# SwiftMalloc size classes suggested by malloc-lab profile"))
            XCTAssertTrue(text.contains("# Command: malloc-lab profile -- prog\n"))
            XCTAssertTrue(text.contains("# Internal waste, estimated from the histogram: built-in classes "))
            // TOMLKit reads it back to the same classes.
            let table = try TOMLTable(string: text)
            let sizes: [Int]
            switch style {
            case .tables:
                XCTAssertTrue(text.contains("[[class]]\nsize = \(s.layout.sizes[0])\n"), text)
                sizes = try XCTUnwrap(table["class"]?.array).map { try XCTUnwrap($0.table?["size"]?.int) }
            case .shorthand:
                sizes = try XCTUnwrap(table["classes"]?.array).map { try XCTUnwrap($0.int) }
            }
            XCTAssertEqual(sizes, s.layout.sizes)
            XCTAssertEqual(try SizeClassConfigFile.classes(fromTOML: text, source: "f.toml"), s.layout)
        }
    }

    func testReadsEitherFormAndRejectsBadFiles() throws {
        XCTAssertEqual(try SizeClassConfigFile.classes(fromTOML: "[config]\npage_size = 8192\nclasses = [8, 16, 48]\n", source: "f").sizes, [8, 16, 48])
        XCTAssertEqual(try SizeClassConfigFile.classes(fromTOML: "[[class]]\nsize = 16\npages = 1\n[[class]]\nsize = 64\n", source: "f").sizes, [16, 64])
        func problem(_ text: String) -> String {
            do {
                _ = try SizeClassConfigFile.classes(fromTOML: text, source: "f")
                return "accepted"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(problem("[config]\npage_size = 8192\n"), "f: no size classes ([[class]] tables or `classes = [...]`)")
        XCTAssertEqual(problem("classes = [16, 8]\n"), "f: invalid size classes: 8 after 16: classes must be strictly ascending")
        XCTAssertEqual(problem("classes = [8, \"x\"]\n"), "f: `classes` holds a value that is not an integer")
        XCTAssertEqual(problem("classes = [16]\n[[class]]\nsize = 16\n"), "f: the classes are given twice ([[class]] and `classes`)")
        XCTAssertEqual(problem("[[class]]\npages = 1\n"), "f: [[class]] number 1 has no integer `size`")
        XCTAssertTrue(problem("classes = [").hasPrefix("f: not valid TOML"))
    }
}
