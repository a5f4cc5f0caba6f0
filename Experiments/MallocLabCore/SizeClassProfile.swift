// Profile-guided size classes, the model: the allocation histogram a
// process writes at exit (SWIFTMALLOC_HISTOGRAM), a size-class layout as
// the allocator accepts it (SWIFTMALLOC_CONFIG), and the internal waste of a
// layout over a histogram.
import Foundation

/// The histogram SwiftMalloc writes at exit when SWIFTMALLOC_HISTOGRAM names
/// a file: requests counted in buckets with inclusive bounds (8 bytes wide
/// up to 1 KiB, 16 per power of two above), non-empty buckets only,
/// ascending.
public struct AllocationHistogram: Codable, Equatable, Sendable {
    public struct Bucket: Codable, Equatable, Sendable {
        public var minSize: Int
        public var maxSize: Int
        public var count: Int

        public init(minSize: Int, maxSize: Int, count: Int) {
            self.minSize = minSize
            self.maxSize = maxSize
            self.count = count
        }

        /// How many request sizes the bucket spans.
        public var width: Int { maxSize - minSize + 1 }

        /// Whether every size in the bucket rounds up to the same multiple
        /// of 8 (a request of 0 gets 8 bytes, as one of 1 does).
        public var isWithinEightBytes: Bool { (max(minSize, 1) + 7) / 8 == (maxSize + 7) / 8 }

        /// The estimated mean request of the bucket (see `WasteModel`).
        public var estimatedRequest: Double {
            isWithinEightBytes ? Double(maxSize) : Double(minSize + maxSize) / 2
        }

        /// The estimated mean request rounded up to malloc's alignment: the
        /// least any layout can hand out for it (see `WasteModel`).
        public var alignedEstimatedRequest: Double {
            isWithinEightBytes ? Double(SizeClassLayout.classSize(holding: maxSize)) : estimatedRequest
        }

        enum CodingKeys: String, CodingKey {
            case minSize = "min_size"
            case maxSize = "max_size"
            case count
        }
    }

    public var total: Int
    /// The exact sum of the requested sizes.
    public var requestedBytes: Int
    /// The sum of the usable sizes handed out for them, under the layout the
    /// profiled process ran with.
    public var handedOutBytes: Int
    public var buckets: [Bucket]

    public init(total: Int, requestedBytes: Int, handedOutBytes: Int, buckets: [Bucket]) {
        self.total = total
        self.requestedBytes = requestedBytes
        self.handedOutBytes = handedOutBytes
        self.buckets = buckets
    }

    enum CodingKeys: String, CodingKey {
        case total
        case requestedBytes = "requested_bytes"
        case handedOutBytes = "handed_out_bytes"
        case buckets
    }

    /// Decodes and checks a histogram file's contents; `source` names it in
    /// errors.
    public static func decode(_ data: Data, source: String) throws -> AllocationHistogram {
        let h: AllocationHistogram
        do {
            h = try JSONDecoder().decode(AllocationHistogram.self, from: data)
        } catch {
            throw LabError.io("\(source): not an allocation histogram (\(Self.describe(error)))")
        }
        if let problem = h.problem { throw LabError.io("\(source): \(problem)") }
        return h
    }

    public static func load(_ url: URL) throws -> AllocationHistogram {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw LabError.io("cannot read \(url.path): \(error.localizedDescription)") }
        return try decode(data, source: url.path)
    }

    /// What makes this histogram inconsistent, or nil.
    public var problem: String? {
        var previousMax = -1
        var counted = 0
        for b in buckets {
            if b.minSize < 0 || b.minSize > b.maxSize { return "bucket [\(b.minSize), \(b.maxSize)] has its bounds out of order" }
            if b.minSize <= previousMax { return "bucket [\(b.minSize), \(b.maxSize)] overlaps or precedes the one before it" }
            if b.count < 0 { return "bucket [\(b.minSize), \(b.maxSize)] has a negative count" }
            previousMax = b.maxSize
            counted += b.count
        }
        if counted != total { return "the buckets count \(counted) requests, total says \(total)" }
        if requestedBytes < 0 || handedOutBytes < 0 { return "negative byte totals" }
        return nil
    }

    /// The buckets that small classes can serve (requests up to the
    /// allocator's largest class size).
    public var smallBuckets: [Bucket] { buckets.filter { $0.maxSize <= SizeClassLayout.largestClassSize && $0.count > 0 } }

    /// The bounds of the allocator's bucket for a request of `size` bytes:
    /// [0, 8], then 8 bytes wide up to 1024, then 16 buckets per power of two.
    public static func bucketBounds(of size: Int) -> ClosedRange<Int> {
        if size <= 8 { return 0...8 }
        if size <= 1024 {
            let high = (size + 7) / 8 * 8
            return (high - 7)...high
        }
        var power = 1024
        while power * 2 < size { power *= 2 }
        let step = power / 16
        let high = power + (size - power + step - 1) / step * step
        return (high - step + 1)...high
    }

    /// The histogram the allocator would write for these requests (size:
    /// how many); handed-out bytes as the built-in classes would give them.
    public static func of(requests: [Int: Int]) -> AllocationHistogram {
        var counts: [Int: (ClosedRange<Int>, Int)] = [:]
        var requested = 0
        var handedOut = 0
        let layout = SizeClassLayout.builtIn.sizes
        for (size, n) in requests where n > 0 {
            let bounds = bucketBounds(of: size)
            counts[bounds.lowerBound, default: (bounds, 0)].1 += n
            requested += size * n
            handedOut += n * (WasteModel.firstIndex(in: layout, holding: max(size, 1)).map { layout[$0] } ?? WasteModel.largeSize(size))
        }
        let buckets = counts.values.sorted { $0.0.lowerBound < $1.0.lowerBound }
            .map { Bucket(minSize: $0.0.lowerBound, maxSize: $0.0.upperBound, count: $0.1) }
        return AllocationHistogram(total: buckets.reduce(0) { $0 + $1.count }, requestedBytes: requested,
                                   handedOutBytes: handedOut, buckets: buckets)
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "no \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        default: return "\(error)"
        }
    }
}

/// The sizes small requests are rounded up to, ascending; larger requests
/// are large allocations (whole pages).
public struct SizeClassLayout: Equatable, Sendable {
    /// The largest size a class may have; also the largest the allocator's
    /// built-in classes reach.
    public static let largestClassSize = 32 * 1024
    /// Class 0 of the allocator's table is reserved, so 127 are left.
    public static let maxClassCount = 127

    public var sizes: [Int]

    /// A checked layout: strictly ascending, multiples of 8, multiples of 16
    /// from 16 up (malloc's 16-byte alignment), 1 to 127 classes, each at
    /// most 32768: the rules SWIFTMALLOC_CONFIG enforces.
    public init(sizes: [Int]) throws {
        if let problem = Self.problem(sizes) { throw LabError.usage("invalid size classes: \(problem)") }
        self.sizes = sizes
    }

    public static func problem(_ sizes: [Int]) -> String? {
        if sizes.isEmpty { return "no classes" }
        if sizes.count > maxClassCount { return "\(sizes.count) classes; at most \(maxClassCount)" }
        var previous = 0
        for s in sizes {
            if s <= previous { return "\(s) after \(previous): classes must be strictly ascending" }
            if s < 8 || s > largestClassSize { return "\(s) is outside 8...\(largestClassSize)" }
            if s % 8 != 0 { return "\(s) is not a multiple of 8" }
            if s > 8 && s % 16 != 0 { return "\(s) is not a multiple of 16 (every class from 16 up keeps 16-byte alignment)" }
            previous = s
        }
        return nil
    }

    /// The smallest valid class size that holds `size` bytes (8 for up to 8,
    /// else `size` rounded up to 16).
    public static func classSize(holding size: Int) -> Int {
        size <= 8 ? 8 : (size + 15) / 16 * 16
    }

    /// The allocator's built-in classes (Sources/SwiftMallocCore/Middle/
    /// SizeClasses.swift): 8, multiples of 16 up to 128, then eight classes
    /// per power of two up to 32768.
    public static let builtIn: SizeClassLayout = {
        var sizes = [8]
        sizes += stride(from: 16, through: 128, by: 16)
        var power = 128
        while power < largestClassSize {
            let step = power / 8
            sizes += (1...8).map { power + $0 * step }
            power *= 2
        }
        return try! SizeClassLayout(sizes: sizes)
    }()

    public var largest: Int { sizes.last! }
}

/// Internal waste of one class over a histogram.
public struct ClassWaste: Equatable, Sendable {
    public var size: Int
    /// Requests the class serves (a fraction when a class boundary cuts a
    /// wide bucket: its requests count as spread evenly over its sizes).
    public var requests: Double
    /// Estimated requested bytes (see `WasteModel`).
    public var requestedBytes: Double
    /// The same rounded up to malloc's alignment (see `WasteModel`).
    public var alignedRequestedBytes: Double
    public var handedOutBytes: Double

    public var wastedBytes: Double { handedOutBytes - requestedBytes }
    /// 1 - requested / handed out.
    public var wasteFraction: Double { handedOutBytes > 0 ? 1 - requestedBytes / handedOutBytes : 0 }
    /// 1 - aligned requested / handed out: the waste the layout chose, on
    /// top of the alignment no layout avoids. The optimiser's threshold
    /// bounds this.
    public var wasteOverAlignment: Double { handedOutBytes > 0 ? 1 - alignedRequestedBytes / handedOutBytes : 0 }
}

/// The waste of a whole layout over a histogram.
public struct WasteBreakdown: Equatable, Sendable {
    /// Classes that serve at least one request, ascending.
    public var classes: [ClassWaste]
    /// Requests above the largest class (see `WasteModel.largeSize`).
    public var large: ClassWaste
    /// The exact requested bytes from the histogram.
    public var requestedBytes: Double
    /// Estimated bytes handed out under the layout.
    public var handedOutBytes: Double

    public var wastedBytes: Double { handedOutBytes - requestedBytes }
    public var wasteFraction: Double { handedOutBytes > 0 ? 1 - requestedBytes / handedOutBytes : 0 }
    /// The worst class's waste over alignment (large allocations not
    /// included).
    public var worstClassWasteOverAlignment: Double { classes.map(\.wasteOverAlignment).max() ?? 0 }
}

/// How much a layout would hand out for the requests of a histogram.
///
/// The histogram gives counts per bucket, not the sizes within a bucket:
/// an 8-byte bucket counts as requests of its `max_size` (every size in it
/// rounds up to the same multiple of 8, and no class can be finer, so the
/// waste a layout adds on top of that rounding is exact); a wider bucket's
/// requests count as spread evenly over its sizes (the midpoint, when one
/// class takes the whole bucket). The layout's total waste uses the exact
/// requested bytes of the histogram; per-class figures use the estimate.
///
/// Part of the waste is the same under every valid layout: a request of 24
/// bytes gets at least 32, since classes from 16 up are multiples of 16.
/// Each class's `wasteOverAlignment` leaves that part out (an 8-byte
/// bucket's requests count as their smallest valid class size): it is the
/// waste the layout chose, which the optimiser's threshold bounds.
public enum WasteModel {
    /// Below `mappingThreshold` a large allocation by malloc takes whole
    /// span pages of the page heap (the default `page_size`, 4 KiB); from it
    /// up, a mapping of its own in whole OS pages (PageHeap.mapThreshold,
    /// LargeAllocations.swift).
    public static let largePageSize = 4096
    public static let mappingThreshold = 4 << 20
    public static let osPageSize = 4096

    /// How the large allocations above a largest class of `largest` are
    /// sized, for messages.
    public static func largeRule(above largest: Int) -> String {
        largest < SizeClassLayout.largestClassSize
            ? " (\(SizeClassLayout.largestClassSize) bytes up to \(SizeClassLayout.largestClassSize), whole pages above)"
            : " (whole pages)"
    }

    /// Bytes a large allocation of `size` takes: a request of at most 32768
    /// bytes above a configured table's largest class (class 0) is served as
    /// a large allocation of 32768 bytes (FrontEnd.allocateSlow).
    public static func largeSize(_ size: Int) -> Int {
        if size <= SizeClassLayout.largestClassSize { return SizeClassLayout.largestClassSize }
        let unit = size >= mappingThreshold ? osPageSize : largePageSize
        return (size + unit - 1) / unit * unit
    }

    public static func evaluate(_ layout: SizeClassLayout, over histogram: AllocationHistogram) -> WasteBreakdown {
        let sizes = layout.sizes
        var perClass = sizes.map { ClassWaste(size: $0, requests: 0, requestedBytes: 0, alignedRequestedBytes: 0, handedOutBytes: 0) }
        var large = ClassWaste(size: 0, requests: 0, requestedBytes: 0, alignedRequestedBytes: 0, handedOutBytes: 0)
        for bucket in histogram.buckets where bucket.count > 0 {
            let count = Double(bucket.count)
            if bucket.isWithinEightBytes {
                let i = firstIndex(in: sizes, holding: bucket.maxSize)
                let requested = count * bucket.estimatedRequest
                let aligned = count * bucket.alignedEstimatedRequest
                if let i {
                    perClass[i].requests += count
                    perClass[i].requestedBytes += requested
                    perClass[i].alignedRequestedBytes += aligned
                    perClass[i].handedOutBytes += count * Double(sizes[i])
                } else {
                    large.requests += count
                    large.requestedBytes += requested
                    large.alignedRequestedBytes += aligned
                    large.handedOutBytes += count * Double(largeSize(bucket.maxSize))
                }
                continue
            }
            // A wide bucket: split it where class boundaries cut it, its
            // requests spread evenly over its sizes.
            let perSize = count / Double(bucket.width)
            var low = bucket.minSize
            while low <= bucket.maxSize {
                if let i = firstIndex(in: sizes, holding: low) {
                    let high = min(bucket.maxSize, sizes[i])
                    let n = Double(high - low + 1) * perSize
                    perClass[i].requests += n
                    perClass[i].requestedBytes += n * Double(low + high) / 2
                    perClass[i].alignedRequestedBytes += n * Double(low + high) / 2
                    perClass[i].handedOutBytes += n * Double(sizes[i])
                    low = high + 1
                } else {
                    let n = Double(bucket.maxSize - low + 1) * perSize
                    let requested = n * Double(low + bucket.maxSize) / 2
                    large.requests += n
                    large.requestedBytes += requested
                    large.alignedRequestedBytes += requested
                    large.handedOutBytes += perSize * Double(sumOfLargeSizes(from: low, through: bucket.maxSize))
                    break
                }
            }
        }
        var handedOut = large.handedOutBytes
        for c in perClass { handedOut += c.handedOutBytes }
        return WasteBreakdown(classes: perClass.filter { $0.requests > 0 }, large: large,
                              requestedBytes: Double(histogram.requestedBytes), handedOutBytes: handedOut)
    }

    /// The index of the smallest class of at least `size` bytes, or nil.
    static func firstIndex(in sizes: [Int], holding size: Int) -> Int? {
        var low = 0
        var high = sizes.count
        while low < high {
            let mid = (low + high) / 2
            if sizes[mid] < size { low = mid + 1 } else { high = mid }
        }
        return low < sizes.count ? low : nil
    }

    /// The sum of `largeSize(s)` for s in low...high, a run of equal values
    /// at a time.
    static func sumOfLargeSizes(from low: Int, through high: Int) -> Int {
        var total = 0
        var s = low
        while s <= high {
            let rounded = largeSize(s)
            let runEnd = min(high, rounded)
            total += (runEnd - s + 1) * rounded
            s = runEnd + 1
        }
        return total
    }
}
