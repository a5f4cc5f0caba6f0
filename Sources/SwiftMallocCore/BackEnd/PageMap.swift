// The page map: from any address to the span that holds it, and to the size
// class of its objects, in O(1) with no header in the objects.
//
// A two-level radix tree over the 36-bit page numbers of 48-bit addresses:
// a root of 2^18 leaf pointers, each leaf covering 2^18 pages (1 GiB) with a
// span pointer and a size-class byte per page. Leaves are mapped on demand
// and never freed, so lock-free readers (free, malloc_usable_size) always
// read valid memory. Writers hold the page heap lock.
//
// Beside the tree, the flat class map: one size-class byte per page of the
// low 47 bits (x86-64's user space), `classMap[page]`, a 32 GiB reserve of
// which only the bytes of pages the heap has used are ever touched. It is
// free's lookup: a shift and one load, where the tree takes two dependent
// loads (leaf, then entry). In a loop of malloc and free each call waits for
// the previous one's result, so that load chain is most of a pair's time on
// Intel: with the flat map a pair takes 0.81-0.89x as long (docs/benchmarks.md).
// It is an accelerator only: where it is missing (the OS refused the
// reserve, as under a low RLIMIT_AS or valgrind's 32 GiB limit on single
// mappings above 2^35 bytes) or does not cover a page, free's fast path sees class 0 and
// the exact lookup through the tree decides.
//
// What is recorded: every page of a small span (objects anywhere in it are
// freed through it), the first page of an in-use large span (only its start
// is a valid pointer), and the first and last page of a free span (its
// neighbours find it there to coalesce). Entries for other pages may be
// stale; readers check the span's range and state before trusting them.
import SwiftMallocShims

struct PageMap {
    static let addressBits = 48
    static let pageBits = addressBits - Page.shift      // 36
    static let leafBits = 18
    static let rootBits = pageBits - leafBits           // 18
    static let leafEntries = 1 << leafBits
    static let rootEntries = 1 << rootBits
    static let leafBytes = leafEntries * (MemoryLayout<SpanRef?>.stride + 1)

    /// Pages the flat class map covers: every page below 2^47.
    static let classMapPages = 1 << (47 - Page.shift)

    /// root[i] is the base of leaf i: `leafEntries` span pointers followed by
    /// `leafEntries` size-class bytes.
    var root: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var mappedBytes: UInt = 0
    /// The flat class map, or nil when the OS refused its reserve.
    private(set) var classMap: UnsafeMutablePointer<UInt8>?

    /// `flatClassMap`: whether to reserve the flat class map (unit tests
    /// build maps without one as well).
    init?(flatClassMap: Bool = true) {
        let bytes = PageMap.rootEntries * MemoryLayout<UnsafeMutableRawPointer?>.stride
        guard let memory = OSMemory.map(bytes) else { return nil }
        root = memory.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: PageMap.rootEntries)
        mappedBytes = UInt(bytes)
        if flatClassMap, let flat = OSMemory.map(PageMap.classMapPages) {
            // 32 GiB of mostly untouched zeros has no place in a core file.
            OSMemory.excludeFromDumps(flat, PageMap.classMapPages)
            classMap = flat.bindMemory(to: UInt8.self, capacity: PageMap.classMapPages)
        }
    }

    /// Pages the flat class map covers: free's fast path reads it below this.
    var classMapCoverage: UInt { classMap == nil ? 0 : UInt(PageMap.classMapPages) }

    /// The flat class map's byte for `page`, or nil where it has none.
    func flatClass(ofPage page: UInt) -> UInt8? {
        guard let classMap, page < UInt(PageMap.classMapPages) else { return nil }
        return sm_atomic_load_u8(classMap + Int(bitPattern: page))
    }

    /// Stores the flat class map's byte for `page` (where it has one) with
    /// release order: after the tree's entry, which free reads once it has
    /// seen the class.
    private func setFlatClass(_ page: UInt, _ sizeClass: UInt8) {
        guard let classMap, page < UInt(PageMap.classMapPages) else { return }
        sm_atomic_store_u8(classMap + Int(bitPattern: page), sizeClass)
    }

    @inline(__always)
    private func leaf(of page: UInt) -> UnsafeMutableRawPointer? {
        let index = page >> UInt(PageMap.leafBits)
        if index >= UInt(PageMap.rootEntries) { return nil }
        return root[Int(index)]
    }

    /// The size class of the objects on `page`; 0 for anything that is not a
    /// small span (large, free, unknown). (free uses `smallObjectEntry`.)
    @inline(__always)
    func sizeClass(ofPage page: UInt) -> UInt8 {
        guard let leaf = leaf(of: page) else { return 0 }
        let classes = leaf + PageMap.leafEntries * MemoryLayout<SpanRef?>.stride
        return classes.load(fromByteOffset: Int(page & UInt(PageMap.leafEntries - 1)), as: UInt8.self)
    }

    /// The span of `page`, a page the flat class map gives a class: such a
    /// page is below 2^47, and its leaf and span were stored before its class
    /// (free's fast path, after `sm_fast_page_class`).
    /// `root`: this map's `root` (free passes it from `sm_fast`).
    @inline(__always)
    static func span(root: UnsafePointer<UnsafeMutableRawPointer?>, ofClassifiedPage page: UInt) -> SpanRef {
        let leaf = root[Int(bitPattern: page >> UInt(PageMap.leafBits))].unsafelyUnwrapped
        let spans = leaf.assumingMemoryBound(to: SpanRef?.self)
        return spans[Int(bitPattern: page & UInt(PageMap.leafEntries - 1))].unsafelyUnwrapped
    }

    /// The size class of `page` (as `sizeClass(ofPage:)`) and, for a small
    /// span's page, its span, from one leaf lookup. Every page of a small
    /// span is recorded and its record stays put while any of its objects is
    /// live, so for the page of a live object both are exact.
    ///
    /// This is the exact lookup of free's slow path, pared down: the root index is masked
    /// instead of range-checked (an address above 48 bits reads the entry of
    /// its low 48 bits, and the caller's `bumpNext` bound rejects it), and
    /// the span is only meaningful when the class is not 0 (a page with a
    /// class always has a span: `set` stores the span before the class and
    /// `clear` the class before the span).
    /// `root`: this map's `root` (from `sm_fast`).
    @inline(__always)
    static func smallObjectEntry(root: UnsafePointer<UnsafeMutableRawPointer?>,
                                 ofPage page: UInt) -> (sizeClass: UInt8, span: SpanRef?) {
        let index = (page >> UInt(PageMap.leafBits)) & UInt(PageMap.rootEntries - 1)
        guard let leaf = root[Int(bitPattern: index)] else { return (0, nil) }
        let slot = Int(bitPattern: page & UInt(PageMap.leafEntries - 1))
        let spans = leaf.assumingMemoryBound(to: SpanRef?.self)
        let classes = UnsafeMutableRawPointer(spans + PageMap.leafEntries).assumingMemoryBound(to: UInt8.self)
        return (classes[slot], spans[slot])
    }

    /// The span recorded for `page`, possibly stale (see above).
    @inline(__always)
    func span(ofPage page: UInt) -> SpanRef? {
        guard let leaf = leaf(of: page) else { return nil }
        return leaf.load(fromByteOffset: Int(page & UInt(PageMap.leafEntries - 1)) &* 8,
                         as: SpanRef?.self)
    }

    /// Makes sure the leaf for `page` exists (page heap lock held).
    private mutating func ensureLeaf(for page: UInt) -> UnsafeMutableRawPointer {
        let index = Int(page >> UInt(PageMap.leafBits))
        if index >= PageMap.rootEntries { fatal("address outside the 48-bit page map") }
        if let leaf = root[index] { return leaf }
        guard let leaf = OSMemory.map(PageMap.leafBytes) else { fatal("out of memory for the page map") }
        mappedBytes &+= UInt(PageMap.leafBytes)
        sm_atomic_store_ptr(UnsafeMutableRawPointer(root + index).assumingMemoryBound(to: UnsafeMutableRawPointer?.self), leaf)
        return leaf
    }

    /// Records `span` (and `sizeClass`) for one page.
    mutating func set(page: UInt, span: SpanRef?, sizeClass: UInt8 = 0) {
        let leaf = ensureLeaf(for: page)
        let slot = Int(page & UInt(PageMap.leafEntries - 1))
        // A span before its class, a class of 0 before a nil span (free
        // reads the span only where the class is not 0).
        if span != nil {
            leaf.storeBytes(of: span, toByteOffset: slot &* 8, as: SpanRef?.self)
            leaf.storeBytes(of: sizeClass, toByteOffset: PageMap.leafEntries &* 8 &+ slot, as: UInt8.self)
            setFlatClass(page, sizeClass)
        } else {
            setFlatClass(page, 0)
            leaf.storeBytes(of: 0, toByteOffset: PageMap.leafEntries &* 8 &+ slot, as: UInt8.self)
            leaf.storeBytes(of: nil, toByteOffset: slot &* 8, as: SpanRef?.self)
        }
    }

    /// Records `span` for every page of it, with `sizeClass`.
    mutating func setRange(_ span: SpanRef, sizeClass: UInt8) {
        var page = span.firstPage
        let end = page &+ span.pageCount
        while page < end {
            set(page: page, span: span, sizeClass: sizeClass)
            page &+= 1
        }
    }

    /// Records `span` at its first and last page with size class 0.
    mutating func setEnds(_ span: SpanRef) {
        set(page: span.firstPage, span: span)
        set(page: span.lastPage, span: span)
    }

    /// Forgets one page.
    mutating func clear(page: UInt) {
        guard let leaf = leaf(of: page) else { return }
        let slot = Int(page & UInt(PageMap.leafEntries - 1))
        // The class first: a page with a class always has a span (free
        // reads the span only where the class is not 0).
        setFlatClass(page, 0)
        leaf.storeBytes(of: 0, toByteOffset: PageMap.leafEntries &* 8 &+ slot, as: UInt8.self)
        leaf.storeBytes(of: nil, toByteOffset: slot &* 8, as: SpanRef?.self)
    }
}
