// The allocation histogram (SWIFTMALLOC_HISTOGRAM): every request's size,
// counted in fine buckets, with the sums of the bytes requested and of the
// usable bytes handed out for them. Each thread counts into its own
// (ThreadState.histogram, part of its record), without atomics; an exiting
// thread's counts are folded into the registry's, like its other counters.
//
// Buckets, by the requested size s (bounds inclusive):
//   * up to 1 KiB, 8-byte steps: [0, 8], [9, 16], ..., [1017, 1024]
//     (a request of 0 bytes is in the first);
//   * above, 16 buckets per power of two: (2^k, 2^(k+1)] in steps of
//     2^(k-4), for k = 10 ... 63, so every size_t has a bucket.
// The lookup is a shift below 1 KiB and a leading-zero count above: no
// table, no search.

struct AllocationHistogram {
    /// requestedBytes, handedOutBytes, then one count per bucket.
    let base: UnsafeMutablePointer<UInt64>

    static let fineLimit: UInt = 1024
    static let fineShift: UInt = 3
    static let fineBuckets = Int(fineLimit >> fineShift)
    /// log2 of the buckets per power of two above `fineLimit`.
    static let coarseShift: UInt = 4
    static let fineLimitLog2 = 10
    static let bucketCount = fineBuckets + (64 - fineLimitLog2) << Int(coarseShift)
    static let wordCount = 2 + bucketCount
    static let byteCount = wordCount * MemoryLayout<UInt64>.stride

    var requestedBytes: UInt64 { base[0] }
    var handedOutBytes: UInt64 { base[1] }
    func count(_ bucket: Int) -> UInt64 { base[2 &+ bucket] }

    /// A request of `requested` bytes, served with `handedOut` usable bytes.
    @inline(__always)
    func record(requested: UInt, handedOut: UInt) {
        base[0] &+= UInt64(requested)
        base[1] &+= UInt64(handedOut)
        base[2 &+ AllocationHistogram.bucket(for: requested)] &+= 1
    }

    func clear() { base.update(repeating: 0, count: AllocationHistogram.wordCount) }

    func add(_ other: AllocationHistogram) {
        var i = 0
        while i < AllocationHistogram.wordCount { base[i] &+= other.base[i]; i += 1 }
    }

    /// The bucket whose bounds hold `size`.
    @inline(__always)
    static func bucket(for size: UInt) -> Int {
        if size <= fineLimit { return size == 0 ? 0 : Int((size &- 1) >> fineShift) }
        let k = UInt(UInt.bitWidth &- 1 &- (size &- 1).leadingZeroBitCount)   // 2^k < size <= 2^(k+1)
        let step = k &- coarseShift
        let within = ((size &- 1) &- (UInt(1) << k)) >> step
        return fineBuckets &+ (Int(k) &- fineLimitLog2) << Int(coarseShift) &+ Int(within)
    }

    /// The smallest and the largest size of `bucket` (inclusive).
    static func bounds(of bucket: Int) -> (min: UInt64, max: UInt64) {
        if bucket < fineBuckets {
            let max = UInt64(bucket &+ 1) << UInt64(fineShift)
            return (bucket == 0 ? 0 : max &- (1 << UInt64(fineShift)) &+ 1, max)
        }
        let coarse = bucket &- fineBuckets
        let k = UInt64(fineLimitLog2 &+ coarse >> Int(coarseShift))
        let step = UInt64(1) << (k &- UInt64(coarseShift))
        let min = (UInt64(1) << k) &+ UInt64(coarse & ((1 << Int(coarseShift)) &- 1)) &* step &+ 1
        // The last bucket's bound would be 2^64: no size is above UInt64.max.
        let (max, beyond) = (min &- 1).addingReportingOverflow(step)
        return (min, beyond ? UInt64.max : max)
    }
}
