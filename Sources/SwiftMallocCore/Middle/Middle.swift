// The middle's interface to the front ends: batches in, batches out.
//
// A front end asks for `count` objects of a class and gets a chain; it hands
// back chains. Whole batches go through the transfer cache; anything else
// (a partial batch, a full transfer cache) goes to the central list.

enum Middle {
    /// Up to `count` objects of `sizeClass` as a NULL-terminated chain.
    static func fetch(_ sizeClass: Int, count: UInt32) -> (head: ObjectPointer?, count: UInt32) {
        let heap = Heap.shared
        Scavenger.count(count)
        let transfer = heap.pointee.transfer + sizeClass
        if count == transfer.pointee.batchSize, let chain = transfer.pointee.removeBatch() {
            return (chain, count)
        }
        return heap.pointee.central[sizeClass].removeRange(count)
    }

    /// Takes back a NULL-terminated chain of `count` objects of `sizeClass`.
    static func release(_ sizeClass: Int, chain: ObjectPointer, count: UInt32) {
        let heap = Heap.shared
        Scavenger.count(count)
        let transfer = heap.pointee.transfer + sizeClass
        if count == transfer.pointee.batchSize && transfer.pointee.insertBatch(chain) { return }
        heap.pointee.central[sizeClass].insertRange(chain)
    }

    /// Empties every transfer cache into the central lists, so that spans
    /// whose objects are all free go back to the page heap (for trimming).
    static func drainTransferCaches() {
        let heap = Heap.shared
        for sizeClass in 1..<heap.pointee.sizeClasses.count {
            let (chain, _) = heap.pointee.transfer[sizeClass].removeAll()
            if let chain { heap.pointee.central[sizeClass].insertRange(chain) }
        }
    }
}
