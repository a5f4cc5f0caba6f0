// The malloc family's logic, with C semantics: the exported entry points
// (Exports.swift) are one-line calls into these.
//
// Small requests (<= 32 KiB) go to the front end by size class; large ones
// to the page heap (whole pages) or, from `mapThreshold` up, to their own
// mapping. `free` finds what it holds through the page map: a size class
// means a small object, anything else must be the start of a live large
// allocation or the process stops ("invalid pointer").
import SwiftMallocShims

enum Allocator {
    /// Large requests from this size up get a mapping of their own.
    static let mapThreshold = 1 << 20
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
                return FrontEnd.allocatePerCPU(ThreadState.record(UInt(bitPattern: bits)), sizeClass)
            }
            if bits < 0 {
                let sizeClass = SizeClassTable.fastSizeClass(for: size)
                return FrontEnd.allocateOther(Heap.shared, ThreadState.record(UInt(bitPattern: bits)), sizeClass)
            }
        }
        return allocateGeneral(size)
    }

    /// Large requests, and every request of a thread without a record (its
    /// first, or after its exit handler), including the process's first.
    @inline(never)
    static func allocateGeneral(_ size: UInt) -> UnsafeMutableRawPointer? {
        let heap = Heap.ensureInitialized()
        if size <= UInt(SizeClassTable.maxSize) {
            return allocateSmallSlow(heap, heap.pointee.sizeClasses.sizeClass(for: Int(size)))
        }
        return allocateLarge(heap, size, alignment: 0)
    }

    /// A small allocation the front end's cache could not serve.
    @inline(never)
    static func allocateSmallSlow(_ heap: UnsafeMutablePointer<Heap>, _ sizeClass: Int) -> UnsafeMutableRawPointer? {
        let object = FrontEnd.allocateSlow(heap, sizeClass, size: heap.pointee.sizeClasses.size(of: sizeClass))
        Heap.reclaim(heap)
        if object == nil { sm_set_errno(ENOMEM) }
        return object
    }

    /// Whole pages for `size` bytes, aligned to `alignment` (0: page aligned).
    @inline(never)
    static func allocateLarge(_ heap: UnsafeMutablePointer<Heap>, _ size: UInt, alignment: UInt,
                              zeroed: Bool = false) -> UnsafeMutableRawPointer? {
        if size > maxRequest || alignment > maxRequest {
            sm_set_errno(ENOMEM)
            return nil
        }
        let bytes = Int(size == 0 ? 1 : size)
        let pageHeap = heap.pointee.pageHeap
        var start: UInt = 0
        var usable = 0
        if bytes >= mapThreshold {
            guard let (span, reused) = pageHeap.pointee.mapLarge(bytes: bytes, alignment: Int(alignment)) else {
                sm_set_errno(ENOMEM)
                return nil
            }
            start = span.pointee.mappedStart
            usable = Int(span.pointee.mappedBytes)
            // A new mapping reads as zero; a reused one holds old data.
            if zeroed && reused {
                UnsafeMutableRawPointer(bitPattern: start).unsafelyUnwrapped
                    .initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            }
        } else {
            let pages = UInt(Page.count(for: bytes)!)
            let alignPages = alignment > UInt(Page.size) ? alignment >> UInt(Page.shift) : 1
            pageHeap.pointee.lock.lock()
            let span = pageHeap.pointee.allocateAlignedLocked(pages: pages, alignPages: alignPages)
            pageHeap.pointee.lock.unlock()
            guard let span else {
                sm_set_errno(ENOMEM)
                return nil
            }
            start = span.pointee.startAddress
            usable = Int(span.pointee.byteCount)
        }
        FrontEnd.countLarge(allocatedBytes: usable)
        Heap.reclaim(heap)
        return UnsafeMutableRawPointer(bitPattern: start)
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
        let sizeClass = smallObjectClass(pointer)
        if _fastPath(sizeClass != 0) {
            if perCPU {
                FrontEnd.deallocatePerCPU(state, pointer, sizeClass)
            } else {
                FrontEnd.deallocateOther(Heap.shared, state, pointer, sizeClass)
            }
            return
        }
        deallocateLarge(Heap.shared, pointer)
    }

    /// free from a thread without a record.
    @inline(never)
    static func deallocateGeneral(_ pointer: UnsafeMutableRawPointer) {
        guard let root = sm_heap_get() else { fatal("free(): invalid pointer ", pointer: pointer) }
        let heap = root.assumingMemoryBound(to: Heap.self)
        let sizeClass = smallObjectClass(pointer)
        if sizeClass != 0 {
            FrontEnd.deallocateSlow(heap, pointer, sizeClass)
            return
        }
        deallocateLarge(heap, pointer)
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
    /// it lives); it feeds only predicted branches, so it adds no latency to
    /// the chain from one call to the next, and its way out is the large
    /// path's tail call, so the fast path still needs no frame.
    /// (The page map's root comes from `sm_fast`, one RIP-relative load.)
    @inline(__always)
    static func smallObjectClass(_ pointer: UnsafeMutableRawPointer) -> Int {
        let address = UInt(bitPattern: pointer)
        let entry = PageMap.smallObjectEntry(root: sm_fast_page_map_root().unsafelyUnwrapped, ofPage: Page.number(of: address))
        let sizeClass = Int(entry.sizeClass)
        guard sizeClass != 0 else { return 0 }
        let span = entry.span.unsafelyUnwrapped
        guard _fastPath(SizeClassTable.isMultiple(address &- span.pointee.startAddress,
                                                  divisibility: span.pointee.objectDivisibility)),
              _fastPath(address < span.pointee.bumpNext)
        else { return 0 }
        return sizeClass
    }

    @inline(never)
    static func deallocateLarge(_ heap: UnsafeMutablePointer<Heap>, _ pointer: UnsafeMutableRawPointer) {
        let pageHeap = heap.pointee.pageHeap
        pageHeap.pointee.lock.lock()
        guard let span = pageHeap.pointee.largeSpan(startingAt: UInt(bitPattern: pointer)) else {
            pageHeap.pointee.lock.unlock()
            fatal("free(): invalid pointer ", pointer: pointer)
        }
        let bytes: UInt
        if span.pointee.state == .mapped {
            bytes = span.pointee.mappedBytes
            // Forget the span under the lock (a racing double free finds
            // nothing); unmap after releasing it, unless the cache kept it.
            let unmap = pageHeap.pointee.freeMappedLocked(span)
            pageHeap.pointee.lock.unlock()
            if let (start, length) = unmap { OSMemory.unmap(start, Int(length)) }
        } else {
            bytes = span.pointee.byteCount
            pageHeap.pointee.freeSpan(span)
            pageHeap.pointee.lock.unlock()
        }
        FrontEnd.countLargeFree(freedBytes: Int(bytes))
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
        return largeUsableSize(heap, pointer)
    }

    /// The usable size of a large block, read without the page heap lock: the
    /// span record is found and read inside an RCU read-side section.
    static func largeUsableSize(_ heap: UnsafeMutablePointer<Heap>, _ pointer: UnsafeMutableRawPointer) -> UInt {
        guard let usable = largeBlockSize(heap, pointer) else {
            fatal("malloc_usable_size(): invalid pointer ", pointer: pointer)
        }
        return usable
    }

    /// The bytes of the large or mapped block starting at `pointer`, or nil
    /// if no live one starts there.
    static func largeBlockSize(_ heap: UnsafeMutablePointer<Heap>, _ pointer: UnsafeMutableRawPointer) -> UInt? {
        let pageHeap = heap.pointee.pageHeap
        let underRCU = RCUReader.enter(heap)
        if !underRCU { pageHeap.pointee.lock.lock() }
        var usable: UInt? = nil
        if let span = pageHeap.pointee.pageMap.span(ofPage: Page.number(of: UInt(bitPattern: pointer))) {
            if span.pointee.state == .poisoned { Poison.caught("read a span record after its grace period") }
            if let live = pageHeap.pointee.largeSpan(startingAt: UInt(bitPattern: pointer)) {
                usable = live.pointee.state == .mapped ? live.pointee.mappedBytes : live.pointee.byteCount
            }
        }
        if underRCU { RCUReader.exit() } else { pageHeap.pointee.lock.unlock() }
        return usable
    }

    // MARK: calloc / realloc

    static func allocateZeroed(_ count: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
        let (total, overflow) = count.multipliedReportingOverflow(by: size)
        if overflow {
            sm_set_errno(ENOMEM)
            return nil
        }
        // Large: zeroed there only if the memory is not a fresh mapping.
        if total >= UInt(mapThreshold) { return allocateLarge(Heap.ensureInitialized(), total, alignment: 0, zeroed: true) }
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
            if span.pointee.state == .mapped && size >= UInt(mapThreshold) && size <= maxRequest {
                // Let the kernel move the pages instead of copying them.
                guard let moved = heap.pointee.pageHeap.pointee.remapLarge(span, bytes: Int(size)) else {
                    sm_set_errno(ENOMEM)
                    return nil
                }
                let newSize = span.pointee.mappedBytes
                FrontEnd.countLargeFree(freedBytes: Int(oldSize))
                FrontEnd.countLarge(allocatedBytes: Int(newSize))
                return moved
            }
        }
        guard let fresh = allocate(size) else { return nil }
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

    /// `size` bytes aligned to `alignment` (a power of two).
    static func allocateAligned(_ alignment: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
        if alignment <= 8 { return allocate(size) }
        let heap = Heap.ensureInitialized()
        if size <= UInt(SizeClassTable.maxSize) && alignment <= UInt(Page.size) {
            // Objects of a class start at multiples of its size from a page
            // boundary: a class whose size is a multiple of the alignment
            // gives aligned objects.
            let table = heap.pointee.sizeClasses
            var sizeClass = table.sizeClass(for: Int(max(size, alignment)))
            while sizeClass < table.count && UInt(table.sizes[sizeClass]) % alignment != 0 { sizeClass += 1 }
            if sizeClass < table.count {
                if let state = ThreadState.current { return FrontEnd.allocate(heap, state, sizeClass) }
                return allocateSmallSlow(heap, sizeClass)
            }
        }
        return allocateLarge(heap, size, alignment: alignment)
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
        return allocateAligned(page, rounded == 0 ? page : rounded)
    }

    // MARK: pages

    static func allocatePages(_ pages: UInt) -> UnsafeMutableRawPointer? {
        if pages == 0 {
            sm_set_errno(EINVAL)
            return nil
        }
        if pages > maxRequest >> UInt(Page.shift) {
            sm_set_errno(ENOMEM)
            return nil
        }
        let heap = Heap.ensureInitialized()
        let pageHeap = heap.pointee.pageHeap
        pageHeap.pointee.lock.lock()
        let span = pageHeap.pointee.allocateLocked(pages: pages)
        pageHeap.pointee.lock.unlock()
        guard let span else {
            sm_set_errno(ENOMEM)
            return nil
        }
        FrontEnd.countLarge(allocatedBytes: Int(span.pointee.byteCount))
        return span.pointee.start
    }

    static func freePages(_ pointer: UnsafeMutableRawPointer?, _ pages: UInt) {
        guard let pointer else { return }
        guard let root = sm_heap_get() else { fatal("page_free(): invalid pointer ", pointer: pointer) }
        let pageHeap = root.assumingMemoryBound(to: Heap.self).pointee.pageHeap
        pageHeap.pointee.lock.lock()
        guard let span = pageHeap.pointee.largeSpan(startingAt: UInt(bitPattern: pointer)),
              span.pointee.state == .large else {
            pageHeap.pointee.lock.unlock()
            fatal("page_free(): invalid pointer ", pointer: pointer)
        }
        if span.pointee.pageCount != pages {
            pageHeap.pointee.lock.unlock()
            fatal("page_free(): page count does not match the allocation at ", pointer: pointer)
        }
        let bytes = span.pointee.byteCount
        pageHeap.pointee.freeSpan(span)
        pageHeap.pointee.lock.unlock()
        FrontEnd.countLargeFree(freedBytes: Int(bytes))
        Heap.reclaim(root.assumingMemoryBound(to: Heap.self))
    }

    // MARK: trim

    /// Gives free memory back to the OS; returns the bytes released.
    static func releaseFreeMemory() -> UInt {
        let heap = Heap.ensureInitialized()
        FrontEnd.flushCaches(heap)
        Middle.drainTransferCaches()
        let pageHeap = heap.pointee.pageHeap
        pageHeap.pointee.lock.lock()
        let released = pageHeap.pointee.releaseAllLocked()
        pageHeap.pointee.lock.unlock()
        Heap.reclaim(heap, force: true)
        return released
    }
}
