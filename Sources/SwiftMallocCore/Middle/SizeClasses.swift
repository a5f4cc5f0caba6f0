// Size classes: the sizes small requests are rounded up to.
//
// One table, built at start-up from the configuration file's classes
// (API/ConfigFile.swift) or, without one, from a few rules:
//   * 8, then multiples of 16 up to 128 (every object of 16 bytes or more is
//     16-byte aligned);
//   * above 128, eight classes per power of two, so the worst internal waste
//     of a class, (class - (previous class + 1)) / class, stays under 1/9;
//   * up to `maxSize` (32 KiB); larger requests are large allocations.
// A configured table may stop below `maxSize`: the index then gives class 0
// ("not small") for the sizes above its largest class, and the front ends'
// slow path serves those as large allocations (FrontEnd.allocateSlow).
// Each class has the pages of its spans (the smallest span that wastes at
// most 1/8 of its bytes on the tail and holds enough objects: 8 below
// 1 KiB, 1 from there on) and its batch
// size (objects moved at once between caches and the middle).
//
// Lookup is one byte table indexed by (size + 7) >> 3: no division, no
// search, no branch. Every class size is a multiple of 8, so each index
// holds exactly the sizes of one class. (tcmalloc splits the table at 1 KiB
// into steps of 8 and 128 bytes to keep it at 377 entries; the flat 4 KiB
// table costs malloc one add, one shift and one load, where the split one
// takes seven instructions.)

import SwiftMallocShims

/// One class as configured: its size, and the pages of its spans and its
/// batch size, or nil for the value the rules give.
struct ClassSpec: Equatable {
    var size = 0
    var pages: Int? = nil
    var batchSize: Int? = nil
    /// Where each was written (configuration file lines), for messages.
    var line = 0
    var pagesLine = 0
    var batchSizeLine = 0
}

struct SizeClassProblem {
    enum Field { case size, pages, batchSize }
    let index: Int
    var field = Field.size
    let message: StaticString

    init(index: Int, field: Field = .size, message: StaticString) {
        self.index = index
        self.field = field
        self.message = message
    }

    /// The line of the value at fault in `spec`.
    func line(in spec: ClassSpec) -> Int {
        switch field {
        case .size: return spec.line
        case .pages: return spec.pagesLine
        case .batchSize: return spec.batchSizeLine
        }
    }
}

struct SizeClassTable {
    static let maxSize = 32 * 1024
    static let maxClasses = 128
    static let indexEntries = (maxSize + 7) >> 3 + 1   // 4097

    /// Number of classes, including the unused class 0 (0 means "not small").
    var count: Int = 0
    /// The span page in bytes: `pages` counts these.
    var spanPageSize: Int
    var sizes: UnsafeMutablePointer<UInt32>
    var pages: UnsafeMutablePointer<UInt8>
    var batch: UnsafeMutablePointer<UInt16>
    var classIndex: UnsafeMutablePointer<UInt8>

    /// Spans of a class have at most this many pages (`pages` is a byte).
    static let maxSpanPages = Int(UInt8.max)
    /// A batch is at most this many objects: the middle moves a batch
    /// through a buffer on the stack of the thread that calls malloc
    /// (withUnsafeTemporaryAllocation), and the buffer stays on the stack
    /// only up to 1 KiB (128 pointers); a larger one would come from the
    /// Swift runtime's allocator, that is from malloc itself.
    static let maxBatchSize = 128

    /// The table of `classCount` classes at `classes` (validated, see
    /// `validate`), or the built-in one when `classes` is nil; spans are
    /// measured in span pages of `spanPageSize` bytes.
    init(metadata: inout MetadataArena, spanPageSize: Int, classes: UnsafePointer<ClassSpec>? = nil, classCount: Int = 0) {
        self.spanPageSize = spanPageSize
        sizes = metadata.allocateArray(of: UInt32.self, count: SizeClassTable.maxClasses)
        pages = metadata.allocateArray(of: UInt8.self, count: SizeClassTable.maxClasses)
        batch = metadata.allocateArray(of: UInt16.self, count: SizeClassTable.maxClasses)
        classIndex = metadata.allocateArray(of: UInt8.self, count: SizeClassTable.indexEntries)
        var n = 1
        if let classes {
            for i in 0..<classCount {
                let spec = classes[i]
                setClass(n, size: spec.size, pages: spec.pages, batchSize: spec.batchSize)
                n += 1
            }
        } else {
            SizeClassTable.forEachClassSize { size in
                setClass(n, size: size, pages: nil, batchSize: nil)
                n += 1
            }
        }
        count = n
        buildIndex()
    }

    /// The class sizes, ascending, from the rules above.
    static func forEachClassSize(_ body: (Int) -> Void) {
        body(8)
        var size = 16
        while size <= 128 { body(size); size += 16 }
        var power = 128
        while power < maxSize {
            let step = power / 8
            for k in 1...8 { body(power + k * step) }
            power *= 2
        }
    }

    /// Span pages per span for objects of `size`, with a tail waste of at
    /// most 1/8 of the span: below `fewObjectsFrom`, at least 8 objects (or
    /// 64 KiB); from there on, as few pages as hold one object. A span of
    /// few large objects empties sooner when a program frees most of them
    /// in random order, and goes back to the page heap for other classes,
    /// where one of 8 would keep a survivor (the lab's `fragmentation`,
    /// docs/scaling.md).
    static func spanPages(forSize size: Int, spanPageSize: Int) -> Int {
        let target = size < fewObjectsFrom ? min(size * 8, 64 * 1024) : size
        var pages = 1
        while true {
            let bytes = pages * spanPageSize
            if bytes >= target && (bytes % size) * 8 <= bytes { return pages }
            pages += 1
        }
    }

    /// Objects of this size or more get spans of few objects (`spanPages`).
    static let fewObjectsFrom = 1024

    /// Objects moved at once between a cache and the middle.
    static func batchSize(forSize size: Int) -> Int {
        min(max((64 * 1024) / size, 2), 32)
    }

    /// Class `n`: `size` bytes, spans of `pages` pages and batches of
    /// `batchSize` objects (nil: by the rules above).
    private func setClass(_ n: Int, size: Int, pages spanPages: Int?, batchSize: Int?) {
        sizes[n] = UInt32(size)
        pages[n] = UInt8(spanPages ?? SizeClassTable.spanPages(forSize: size, spanPageSize: spanPageSize))
        batch[n] = UInt16(batchSize ?? SizeClassTable.batchSize(forSize: size))
    }

    /// For each size, the smallest class that fits, or 0 above the largest
    /// class; every size that maps to an index gets that index's class
    /// (checked by the unit tests).
    private func buildIndex() {
        var c = 1
        for size in 0...SizeClassTable.maxSize {
            while c < count && Int(sizes[c]) < size { c += 1 }
            classIndex[SizeClassTable.index(for: size)] = c < count ? UInt8(c) : 0
        }
    }

    /// What is wrong with a list of classes, if anything: the index of the
    /// first offending class (or of where one is missing) and why.
    static func validate(_ classes: UnsafePointer<ClassSpec>, count: Int, spanPageSize: Int) -> SizeClassProblem? {
        if count == 0 { return SizeClassProblem(index: 0, message: "no size classes (at least one is needed)") }
        if count > maxClasses - 1 {
            return SizeClassProblem(index: maxClasses - 1, message: "too many size classes (at most 127)")
        }
        var previous = 0
        for i in 0..<count {
            let spec = classes[i]
            if spec.size < 8 || spec.size > maxSize {
                return SizeClassProblem(index: i, message: "class size must be within 8...32768")
            }
            if spec.size % 8 != 0 { return SizeClassProblem(index: i, message: "class size must be a multiple of 8") }
            if spec.size >= 16 && spec.size % 16 != 0 {
                return SizeClassProblem(index: i, message: "class sizes from 16 up must be multiples of 16 (malloc's alignment)")
            }
            if spec.size <= previous {
                return SizeClassProblem(index: i, message: "class sizes must be strictly ascending")
            }
            if let pages = spec.pages {
                if pages < 1 || pages > maxSpanPages {
                    return SizeClassProblem(index: i, field: .pages, message: "pages must be within 1...255")
                }
                if pages * spanPageSize < spec.size {
                    return SizeClassProblem(index: i, field: .pages, message: "a span of that many pages cannot hold one object of the class")
                }
            }
            if let batchSize = spec.batchSize, batchSize < 1 || batchSize > maxBatchSize {
                return SizeClassProblem(index: i, field: .batchSize, message: "batch_size must be within 1...128")
            }
            previous = spec.size
        }
        return nil
    }

    /// The class for a request of `size` bytes (0 ... maxSize).
    @inline(__always)
    static func index(for size: Int) -> Int {
        (size &+ 7) &>> 3
    }

    @inline(__always)
    func sizeClass(for size: Int) -> Int {
        Int(classIndex[SizeClassTable.index(for: size)])
    }

    /// `sizeClass(for:)` of the heap's table, read through `sm_fast` (one
    /// RIP-relative load for the table): malloc's lookup.
    @inline(__always)
    static func fastSizeClass(for size: UInt) -> Int {
        Int(sm_fast_class(index(for: Int(bitPattern: size))))
    }

    @inline(__always) func size(of sizeClass: Int) -> Int { Int(sizes[sizeClass]) }

    /// The pages (Page.size granules) of a span of class `sizeClass`.
    @inline(__always) func spanGranules(of sizeClass: Int) -> Int { Int(pages[sizeClass]) * (spanPageSize >> Page.shift) }

    /// ceil(2^64 / size): with it, a multiply and a compare tell whether an
    /// offset below 2^32 is a multiple of `size` (`isMultiple`), which is how
    /// `free` checks that a pointer is where an object starts. Lemire, Kaser
    /// and Kurz, "Faster remainder by direct computation" (2019).
    static func divisibilityConstant(forSize size: Int) -> UInt64 {
        UInt64.max / UInt64(size) &+ 1
    }

    /// Whether `offset` (below 2^32: offsets inside a span of small objects,
    /// at most 255 span pages of at most 1 MiB, are) is a multiple of the size whose
    /// `divisibilityConstant` is `c`.
    @inline(__always)
    static func isMultiple(_ offset: UInt, divisibility c: UInt64) -> Bool {
        UInt64(UInt32(truncatingIfNeeded: offset)) &* c < c
    }
}
