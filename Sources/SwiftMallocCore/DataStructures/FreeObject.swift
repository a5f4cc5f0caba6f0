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
