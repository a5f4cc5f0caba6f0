// The global front end, the baseline: no cache, one lock in front of the
// middle, so every allocation and free goes to the central lists.

enum GlobalFrontEnd: FrontEndStrategy {
    static func allocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                             _ sizeClass: Int) -> ObjectPointer? {
        let middle = heap.pointee.middle
        heap.pointee.globalLock.lock()
        let object = middle.fetch(sizeClass, count: 1).head
        heap.pointee.globalLock.unlock()
        state.pointee.middleObjects &+= 1
        guard let object else { return nil }
        ThreadState.countAllocation(state, sizeClass, miss: true)
        return object
    }

    static func deallocateSlow(_ heap: UnsafeMutablePointer<Heap>, _ state: UnsafeMutablePointer<ThreadState>,
                               _ object: ObjectPointer, _ sizeClass: Int) {
        object.nextFree = nil
        let middle = heap.pointee.middle
        heap.pointee.globalLock.lock()
        middle.release(sizeClass, chain: object, count: 1)
        heap.pointee.globalLock.unlock()
        state.pointee.middleObjects &+= 1
    }

    static func flush(_ heap: UnsafeMutablePointer<Heap>) {}
}
