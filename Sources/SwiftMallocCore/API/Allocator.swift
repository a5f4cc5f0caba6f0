// The malloc family's logic, with C semantics: the exported entry points
// (Exports.swift) are one-line calls into these.
//
// Small requests (<= 32 KiB) go to the front end by size class; large ones
// to the page heap (whole pages) or, from `mapThreshold` up (from
// `zeroedOrGrowingMapThreshold` for calloc and realloc growth), to their own
// mapping. `free` finds what it holds through the page map: a size class
// means a small object, anything else must be the start of a live large
// allocation or the process stops ("invalid pointer"). Its fast path asks
// the flat class map (one load); what that does not classify goes to
// `deallocateUnclassified`, which asks the page map's tree.
import SwiftMallocShims

enum Allocator {
    /// No request above this is attempted (the page map covers 48 bits).
    static let maxRequest = UInt(1) << 47

    // MARK: malloc / free

    // The fast path keeps nothing alive across a call: every way out of it
    // is a return or a tail call, so it needs no saved registers. A thread
    // with a record implies a built heap, and the TLS slot also tells the
    // per-CPU front end from the others (ThreadState): one signed compare
    // selects the path.
    @inline(__always)
    static func allocate(_ size: UInt) -> UnsafeMutableRawPointer? {
        let bits = ThreadState.currentBits
        if _fastPath(size <= UInt(SizeClassTable.maxSize)) {
            if _fastPath(bits > Int(ThreadState.exitedMarker)) {
                let sizeClass = SizeClassTable.fastSizeClass(for: size)
                return PerCPUFrontEnd.allocate(ThreadState.record(UInt(bitPattern: bits)), sizeClass, size)
            }
            if bits < 0 {
                let sizeClass = SizeClassTable.fastSizeClass(for: size)
                return ThreadCacheFrontEnd.allocateOrShare(Heap.shared, ThreadState.record(UInt(bitPattern: bits)), sizeClass, size)
            }
        }
        return allocateGeneral(size)
    }

    /// Large requests, every request of a thread without a record (its
    /// first, or after its exit handler), including the process's first,
    /// and every request while the allocation histogram is on.
    @inline(never)
    static func allocateGeneral(_ size: UInt) -> UnsafeMutableRawPointer? {
        let heap = Heap.ensureInitialized()
        if size <= UInt(SizeClassTable.maxSize) {
            let sizeClass = heap.pointee.sizeClasses.sizeClass(for: Int(size))
            let object = FrontEnd.allocateSlow(size, heap, sizeClass)
            // Class 0 (above a configured table's largest class) was a large
            // allocation, recorded as such.
            if sizeClass == 0 { return object }
            if object != nil { FrontEnd.recordRequest(heap, size, handedOut: UInt(heap.pointee.sizeClasses.sizes[sizeClass])) }
            return object
        }
        return allocateLarge(heap, size, alignment: 0)
    }

    /// Whole pages for `size` bytes, aligned to `alignment` (0: page aligned).
    /// `requested`: what the caller asked for, when not `size` (pvalloc).
    /// `zeroed`, `growing`: as PageHeap.allocateLarge.
    @inline(never)
    static func allocateLarge(_ heap: UnsafeMutablePointer<Heap>, _ size: UInt, alignment: UInt,
                              zeroed: Bool = false, growing: Bool = false, requested: UInt? = nil) -> UnsafeMutableRawPointer? {
        guard size <= maxRequest, alignment <= maxRequest else {
            sm_set_errno(ENOMEM)
            return nil
        }
        return FrontEnd.allocateLarge(heap, bytes: Int(max(size, 1)), alignment: Int(alignment), zeroed: zeroed,
                                      growing: growing, requested: requested ?? size)
    }

    @inline(__always)
    static func deallocate(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        let bits = ThreadState.currentBits
        if _fastPath(bits > Int(ThreadState.exitedMarker)) {
            return deallocate(pointer, ThreadState.record(UInt(bitPattern: bits)), perCPU: true)
        }
        if bits < 0 {
            return deallocate(pointer, ThreadState.record(UInt(bitPattern: bits)), perCPU: false)
        }
        deallocateGeneral(pointer)
    }

    /// free from a thread with a record; `perCPU`: whether the front end is
    /// percpu (a constant at each call).
    @inline(__always)
    static func deallocate(_ pointer: UnsafeMutableRawPointer, _ state: UnsafeMutablePointer<ThreadState>, perCPU: Bool) {
        let sizeClass = fastObjectClass(pointer)
        if _fastPath(sizeClass != 0) {
            if perCPU {
                PerCPUFrontEnd.deallocate(state, pointer, sizeClass)
            } else {
                ThreadCacheFrontEnd.deallocateOrShare(Heap.shared, state, pointer, sizeClass)
            }
            return
        }
        deallocateUnclassified(Heap.shared, pointer)
    }

    /// free from a thread without a record.
    @inline(never)
    static func deallocateGeneral(_ pointer: UnsafeMutableRawPointer) {
        guard let root = sm_heap_get() else { fatal(FreeProblem.invalidPointer.message, pointer: pointer) }
        deallocateUnclassified(root.assumingMemoryBound(to: Heap.self), pointer)
    }

    /// free of what the fast path's lookup did not classify: a large block,
    /// a small object on a page the flat class map does not cover (or of a
    /// process without the map), or an invalid pointer (the process stops).
    @inline(never)
    static func deallocateUnclassified(_ heap: UnsafeMutablePointer<Heap>, _ pointer: UnsafeMutableRawPointer) {
        let sizeClass = smallObjectClass(pointer)
        if sizeClass != 0 {
            FrontEnd.deallocateSlow(heap, pointer, sizeClass)
            return
        }
        deallocateLarge(heap, pointer)
    }

    /// free's fast lookup: `smallObjectClass`'s answer from the flat class
    /// map where it has one, else 0 (then `deallocateUnclassified` asks the
    /// tree). From the pointer to the class, a shift and one load: the span
    /// check's loads feed only predicted branches.
    @inline(__always)
    static func fastObjectClass(_ pointer: UnsafeMutableRawPointer) -> Int {
        let address = UInt(bitPattern: pointer)
        let page = Page.number(of: address)
        let sizeClass = Int(bitPattern: sm_fast_page_class(page))
        guard sizeClass != 0 else { return 0 }
        let span = PageMap.span(root: sm_fast_page_map_root().unsafelyUnwrapped, ofClassifiedPage: page)
        return startsObject(address, span) ? sizeClass : 0
    }

    /// The size class of the small object that starts at `pointer`, or 0
    /// when `pointer` is not the start of one: then it must be a large
    /// allocation, and the large paths (free, realloc, malloc_usable_size)
    /// stop the process if it is not.
    /// That catches a pointer into a small span that is not where one of
    /// its objects starts (inside an object, or misaligned), or is where an
    /// object would start but none was ever carved (the span's untouched
    /// tail, or the slack after its last object), before it could reach a
    /// cache and be handed out again overlapping a live block. The check is
    /// a multiply and two compares on the span's record, exact for the page
    /// of a live object (its span stays put and `bumpNext` only grows while
    /// it lives, so a relaxed atomic load of it, taken while the central
    /// list advances it, is enough); it feeds only predicted branches, so it
    /// adds no latency to the chain from one call to the next, and its way
    /// out is a tail call, so free's fast path still needs no frame.
    /// (The page map's root comes from `sm_fast`, one RIP-relative load.)
    @inline(__always)
    static func smallObjectClass(_ pointer: UnsafeMutableRawPointer) -> Int {
        let address = UInt(bitPattern: pointer)
        let entry = PageMap.smallObjectEntry(root: sm_fast_page_map_root().unsafelyUnwrapped, ofPage: Page.number(of: address))
        let sizeClass = Int(entry.sizeClass)
        guard sizeClass != 0 else { return 0 }
        return startsObject(address, entry.span.unsafelyUnwrapped) ? sizeClass : 0
    }

    /// Whether `address`, on a page of the small span `span`, is where one
    /// of its objects starts and was carved (smallObjectClass).
    @inline(__always)
    static func startsObject(_ address: UInt, _ span: SpanRef) -> Bool {
        _fastPath(SizeClassTable.isMultiple(address &- span.startAddress, divisibility: span.objectDivisibility))
            && _fastPath(address < span.bumpNext)
    }

    @inline(never)
    static func deallocateLarge(_ heap: UnsafeMutablePointer<Heap>, _ pointer: UnsafeMutableRawPointer) {
        guard let bytes = heap.pointee.pageHeap.freeLarge(at: UInt(bitPattern: pointer)) else {
            fatal(FreeProblem.invalidPointer.message, pointer: pointer)
        }
        FrontEnd.countLarge(heap, freedBytes: Int(bytes))
        Heap.reclaim(heap)
    }

    // MARK: sizes

    /// Usable bytes of a live block; stops the process for a foreign pointer.
    static func usableSize(_ pointer: UnsafeMutableRawPointer?) -> UInt {
        guard let pointer else { return 0 }
        guard let root = sm_heap_get() else { fatal("malloc_usable_size(): invalid pointer ", pointer: pointer) }
        let heap = root.assumingMemoryBound(to: Heap.self)
        let sizeClass = smallObjectClass(pointer)
        if sizeClass != 0 { return UInt(heap.pointee.sizeClasses.sizes[sizeClass]) }
        guard let usable = largeBlockSize(heap, pointer) else {
            fatal("malloc_usable_size(): invalid pointer ", pointer: pointer)
        }
        return usable
    }

    /// The bytes of the large or mapped block starting at `pointer`, or nil
    /// if no live one starts there (read without the page heap's lock).
    static func largeBlockSize(_ heap: UnsafeMutablePointer<Heap>, _ pointer: UnsafeMutableRawPointer) -> UInt? {
        heap.pointee.pageHeap.largeSize(at: UInt(bitPattern: pointer), pageMap: heap.pointee.pageMap, reader: Heap.reader(heap))
    }

    // MARK: calloc / realloc

    static func allocateZeroed(_ count: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
        let (total, overflow) = count.multipliedReportingOverflow(by: size)
        if overflow {
            sm_set_errno(ENOMEM)
            return nil
        }
        // Large: zeroed there only if the memory is not a fresh mapping.
        if total >= UInt(PageHeap.zeroedOrGrowingMapThreshold) {
            return allocateLarge(Heap.ensureInitialized(), total, alignment: 0, zeroed: true)
        }
        guard let p = allocate(total) else { return nil }
        p.initializeMemory(as: UInt8.self, repeating: 0, count: Int(total))
        return p
    }

    static func reallocate(_ pointer: UnsafeMutableRawPointer?, _ size: UInt) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(size) }
        if size == 0 {
            // glibc: realloc(p, 0) frees p and returns NULL.
            deallocate(pointer)
            return nil
        }
        let heap = Heap.ensureInitialized()
        let sizeClass = smallObjectClass(pointer)
        let oldSize: UInt
        if sizeClass != 0 {
            oldSize = UInt(heap.pointee.sizeClasses.sizes[sizeClass])
            // Same class, or shrinking by less than half: keep the block.
            if size <= oldSize {
                if size <= UInt(SizeClassTable.maxSize) && heap.pointee.sizeClasses.sizeClass(for: Int(size)) == sizeClass { return pointer }
                if size >= oldSize / 2 { return pointer }
            }
        } else {
            guard let size0 = largeBlockSize(heap, pointer) else { fatal("realloc(): invalid pointer ", pointer: pointer) }
            oldSize = size0
            if size <= oldSize && size >= oldSize / 2 { return pointer }
            // The block is the caller's: its span cannot change under us.
            let span = heap.pointee.pageMap.span(ofPage: Page.number(of: UInt(bitPattern: pointer)))!
            if span.state == .mapped && size >= UInt(PageHeap.zeroedOrGrowingMapThreshold) && size <= maxRequest {
                // Let the kernel move the pages instead of copying them.
                guard let moved = heap.pointee.pageHeap.remapLarge(span, bytes: Int(size)) else {
                    sm_set_errno(ENOMEM)
                    return nil
                }
                let newSize = span.mappedBytes
                FrontEnd.countLarge(heap, allocatedBytes: Int(newSize), freedBytes: Int(oldSize))
                FrontEnd.recordRequest(heap, size, handedOut: UInt(newSize))
                return moved
            }
        }
        // Grown past the threshold, the block gets a mapping, which the next
        // growth moves instead of copying.
        let growsIntoMapping = size > oldSize && size >= UInt(PageHeap.zeroedOrGrowingMapThreshold)
        guard let fresh = growsIntoMapping ? allocateLarge(heap, size, alignment: 0, growing: true) : allocate(size) else {
            return nil
        }
        fresh.copyMemory(from: pointer, byteCount: Int(min(oldSize, size)))
        deallocate(pointer)
        return fresh
    }

    static func reallocateArray(_ pointer: UnsafeMutableRawPointer?, _ count: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
        let (total, overflow) = count.multipliedReportingOverflow(by: size)
        if overflow {
            sm_set_errno(ENOMEM)
            return nil
        }
        return reallocate(pointer, total)
    }

    // MARK: aligned allocation

    /// `size` bytes aligned to `alignment` (a power of two). `requested`:
    /// what the caller asked for, when not `size` (pvalloc).
    static func allocateAligned(_ alignment: UInt, _ size: UInt, requested: UInt? = nil) -> UnsafeMutableRawPointer? {
        if alignment <= 8 { return allocate(size) }
        let heap = Heap.ensureInitialized()
        if size <= UInt(SizeClassTable.maxSize) && alignment <= UInt(heap.pointee.sizeClasses.spanPageSize) {
            // Objects of a class start at multiples of its size from a span
            // page boundary: a class whose size is a multiple of the
            // alignment gives aligned objects.
            let table = heap.pointee.sizeClasses
            var sizeClass = table.sizeClass(for: Int(max(size, alignment)))
            while sizeClass != 0 && sizeClass < table.count && UInt(table.sizes[sizeClass]) % alignment != 0 { sizeClass += 1 }
            if sizeClass != 0 && sizeClass < table.count {
                let object: UnsafeMutableRawPointer?
                if let state = ThreadState.current {
                    object = FrontEnd.allocate(heap, state, sizeClass, size)
                } else {
                    object = FrontEnd.allocateSlow(size, heap, sizeClass)
                }
                if object != nil { FrontEnd.recordRequest(heap, requested ?? size, handedOut: UInt(table.sizes[sizeClass])) }
                return object
            }
        }
        return allocateLarge(heap, size, alignment: alignment, requested: requested)
    }

    @inline(__always) static func isPowerOfTwo(_ x: UInt) -> Bool { x != 0 && (x & (x &- 1)) == 0 }

    static func posixMemalign(_ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ alignment: UInt, _ size: UInt) -> Int32 {
        guard let result else { return EINVAL }
        if !isPowerOfTwo(alignment) || alignment % UInt(MemoryLayout<UnsafeRawPointer>.size) != 0 { return EINVAL }
        let savedErrno = sm_get_errno()
        guard let p = allocateAligned(alignment, size) else {
            sm_set_errno(savedErrno)
            return ENOMEM
        }
        result.pointee = p
        return 0
    }

    static func alignedAlloc(_ alignment: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
        if !isPowerOfTwo(alignment) {
            sm_set_errno(EINVAL)
            return nil
        }
        return allocateAligned(alignment, size)
    }

    /// glibc's memalign: rounds a non-power-of-two alignment up.
    static func memalign(_ alignment: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
        if alignment > UInt.max / 2 + 1 {
            sm_set_errno(EINVAL)
            return nil
        }
        var a = alignment
        if !isPowerOfTwo(a) {
            a = 1
            while a < alignment { a <<= 1 }
        }
        return allocateAligned(a, size)
    }

    static func valloc(_ size: UInt) -> UnsafeMutableRawPointer? {
        allocateAligned(UInt(sm_os_page_size()), size)
    }

    static func pvalloc(_ size: UInt) -> UnsafeMutableRawPointer? {
        let page = UInt(sm_os_page_size())
        let (padded, overflow) = size.addingReportingOverflow(page - 1)
        if overflow {
            sm_set_errno(ENOMEM)
            return nil
        }
        let rounded = padded & ~(page - 1)
        return allocateAligned(page, rounded == 0 ? page : rounded, requested: size)
    }

    // MARK: pages

    /// `pages` span pages (swiftmalloc_page_size() bytes each).
    static func allocatePages(_ pages: UInt) -> UnsafeMutableRawPointer? {
        if pages == 0 {
            sm_set_errno(EINVAL)
            return nil
        }
        let heap = Heap.ensureInitialized()
        if pages > maxRequest / UInt(heap.pointee.sizeClasses.spanPageSize) {
            sm_set_errno(ENOMEM)
            return nil
        }
        guard let span = heap.pointee.pageHeap.allocatePages(pages) else {
            sm_set_errno(ENOMEM)
            return nil
        }
        FrontEnd.countLarge(heap, allocatedBytes: Int(span.byteCount))
        FrontEnd.recordRequest(heap, pages &* UInt(heap.pointee.sizeClasses.spanPageSize), handedOut: UInt(span.byteCount))
        return span.start
    }

    static func freePages(_ pointer: UnsafeMutableRawPointer?, _ pages: UInt) {
        guard let pointer else { return }
        guard let root = sm_heap_get() else { fatal("page_free(): invalid pointer ", pointer: pointer) }
        let heap = root.assumingMemoryBound(to: Heap.self)
        let (bytes, problem) = heap.pointee.pageHeap.freePages(at: UInt(bitPattern: pointer), spanPages: pages)
        switch problem {
        case .invalidPointer: fatal("page_free(): invalid pointer ", pointer: pointer)
        case .pageCountMismatch: fatal("page_free(): page count does not match the allocation at ", pointer: pointer)
        case nil: break
        }
        FrontEnd.countLarge(heap, freedBytes: Int(bytes))
        Heap.reclaim(heap)
    }

    // MARK: trim

    /// Gives free memory back to the OS; returns the bytes released.
    static func releaseFreeMemory() -> UInt {
        Scavenger.releaseAll(Heap.ensureInitialized())
    }
}
