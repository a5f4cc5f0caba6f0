// Freed directly mapped blocks, kept mapped for the next large request.
//
// Large blocks get a mapping of their own (PageHeap.mapLarge) from 4 MiB, or
// from 1 MiB when calloc or a growing realloc asks (LargeAllocations.swift).
// Unmapping one at free and mapping a fresh one at the next malloc costs two
// system calls, a TLB shootdown and a page fault for every page touched
// again: a program that allocates and frees large buffers in a loop (or
// grows them with realloc) pays that on every iteration. So freed mappings
// wait here, still resident, up to `capBytes` in all and `slots` of them,
// and a request takes the one that fits closest, cut to its length when it
// is more than a quarter longer.
// The oldest go when room is needed; `malloc_trim` unmaps them all;
// SWIFTMALLOC_LARGE_CACHE_BYTES sets the cap (0: unmap at once, as before).
//
// Everything here runs under the page heap lock, except munmap: what is to
// be unmapped is handed to the caller (Unmappings), which unmaps it after
// releasing the lock. A cached mapping is not an allocation: the page map
// forgets it when it is freed, so freeing it again is still caught.
import SwiftMallocShims

/// Mappings to unmap once the page heap's lock is released. The first is
/// held here; any further ones are chained through the mappings themselves
/// (the first two words of each hold the next one's start and its own
/// length), so that handing them out needs no memory, and the usual single
/// one (a freed block the cache does not keep) is not touched.
struct Unmappings {
    private var firstStart: UInt = 0
    private var firstLength: UInt = 0
    private var chain: UInt = 0
    private(set) var bytes: UInt = 0

    mutating func add(start: UInt, length: UInt) {
        bytes &+= length
        if firstStart == 0 {
            firstStart = start
            firstLength = length
            return
        }
        let link = UnsafeMutablePointer<UInt>(bitPattern: start).unsafelyUnwrapped
        link[0] = chain
        link[1] = length
        chain = start
    }

    /// Unmaps every one (no lock held); returns their bytes.
    @discardableResult
    func unmapAll() -> UInt {
        if firstStart != 0 { OSMemory.unmap(UnsafeMutableRawPointer(bitPattern: firstStart).unsafelyUnwrapped, Int(firstLength)) }
        var cursor = chain
        while cursor != 0 {
            let link = UnsafeMutablePointer<UInt>(bitPattern: cursor).unsafelyUnwrapped
            let next = link[0]
            OSMemory.unmap(UnsafeMutableRawPointer(bitPattern: cursor).unsafelyUnwrapped, Int(link[1]))
            cursor = next
        }
        return bytes
    }
}

struct CachedMapping {
    var start: UInt = 0
    var length: UInt = 0
    /// When it was freed (a counter): the smallest goes first.
    var freedAt: UInt64 = 0
}

struct MappingCache {
    static let slots = 16
    var entries: UnsafeMutablePointer<CachedMapping>
    var count = 0
    var bytes: UInt = 0
    var capBytes: UInt = 32 << 20
    var clock: UInt64 = 0
    /// Requests served from the cache (statistics).
    var hits: UInt64 = 0

    init(metadata: inout MetadataArena) {
        entries = metadata.allocateArray(of: CachedMapping.self, count: MappingCache.slots)
        entries.initialize(repeating: CachedMapping(), count: MappingCache.slots)
    }

    /// The cached mapping of at least `length` bytes starting at a multiple
    /// of `alignment` that fits closest, removed. One more than a quarter
    /// longer comes back cut to `length`, with its tail in the Unmappings
    /// for the caller to unmap: that costs the munmap its eviction would
    /// have cost anyway, where a new mapping would fault in every page the
    /// program touches (for requests of many sizes, a mapping within a
    /// quarter is rare: 1 in 8 of `largerealloc`'s with mappings from 1 MiB).
    mutating func take(length: UInt, alignment: UInt) -> (mapping: CachedMapping, tail: Unmappings)? {
        var best = -1
        var i = 0
        while i < count {
            let e = entries[i]
            if e.length >= length && e.start % alignment == 0 && (best < 0 || e.length < entries[best].length) {
                best = i
            }
            i += 1
        }
        guard best >= 0 else { return nil }
        var found = entries[best]
        remove(at: best)
        hits &+= 1
        var tail = Unmappings()
        if found.length - length > length / 4 {
            tail.add(start: found.start &+ length, length: found.length &- length)
            found.length = length
        }
        return (found, tail)
    }

    /// Keeps a freed mapping, making room by evicting the oldest. Returns
    /// what the caller unmaps: those, and the mapping itself when it is not
    /// worth keeping (bigger than the cap).
    mutating func put(start: UInt, length: UInt) -> Unmappings {
        var unmappings = Unmappings()
        guard length <= capBytes else {
            unmappings.add(start: start, length: length)
            return unmappings
        }
        while count > 0 && (count == MappingCache.slots || bytes &+ length > capBytes) {
            var oldest = 0
            var i = 1
            while i < count {
                if entries[i].freedAt < entries[oldest].freedAt { oldest = i }
                i += 1
            }
            let e = entries[oldest]
            remove(at: oldest)
            unmappings.add(start: e.start, length: e.length)
        }
        clock &+= 1
        entries[count] = CachedMapping(start: start, length: length, freedAt: clock)
        count += 1
        bytes &+= length
        return unmappings
    }

    /// Empties the cache (malloc_trim): the caller unmaps what it returns.
    mutating func removeAll() -> Unmappings {
        var unmappings = Unmappings()
        while count > 0 {
            let e = entries[count - 1]
            remove(at: count - 1)
            unmappings.add(start: e.start, length: e.length)
        }
        return unmappings
    }

    private mutating func remove(at index: Int) {
        bytes &-= entries[index].length
        count -= 1
        entries[index] = entries[count]
    }
}
