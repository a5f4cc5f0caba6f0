// Free objects are linked through their first word: a free block needs no
// memory besides itself. Every cache in the allocator (per-thread lists, the
// transfer cache's batches, a span's free objects) is made of these links.

typealias ObjectPointer = UnsafeMutableRawPointer

extension UnsafeMutableRawPointer {
    /// The next free object in an intrusive list.
    @inline(__always) var nextFree: UnsafeMutableRawPointer? {
        get { load(as: UnsafeMutableRawPointer?.self) }
        nonmutating set { storeBytes(of: newValue, as: UnsafeMutableRawPointer?.self) }
    }
}

/// A singly linked LIFO list of free objects with its length.
struct FreeList {
    var head: ObjectPointer? = nil
    var length: UInt32 = 0

    @inline(__always) var isEmpty: Bool { head == nil }

    @inline(__always) mutating func push(_ object: ObjectPointer) {
        object.nextFree = head
        head = object
        length &+= 1
    }

    @inline(__always) mutating func pop() -> ObjectPointer? {
        guard let object = head else { return nil }
        head = object.nextFree
        length &-= 1
        return object
    }

    /// Detaches up to `count` objects from the front as a NULL-terminated chain.
    mutating func popChain(_ count: UInt32) -> (head: ObjectPointer?, count: UInt32) {
        guard let first = head, count > 0 else { return (nil, 0) }
        var last = first
        var taken: UInt32 = 1
        while taken < count, let next = last.nextFree {
            last = next
            taken &+= 1
        }
        head = last.nextFree
        last.nextFree = nil
        length &-= taken
        return (first, taken)
    }

    /// Prepends a NULL-terminated chain of `count` objects.
    mutating func pushChain(_ chain: ObjectPointer, count: UInt32) {
        var last = chain
        while let next = last.nextFree { last = next }
        last.nextFree = head
        head = chain
        length &+= count
    }
}
