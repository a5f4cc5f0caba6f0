// An intrusive doubly linked list of spans (through Span.next / Span.prev).
// Used by the page heap's free lists and the central lists' partial spans.

struct SpanList {
    var head: UnsafeMutablePointer<Span>? = nil
    var count: Int = 0

    @inline(__always) var isEmpty: Bool { head == nil }

    mutating func pushFront(_ span: UnsafeMutablePointer<Span>) {
        span.pointee.prev = nil
        span.pointee.next = head
        if let h = head { h.pointee.prev = span }
        head = span
        count += 1
    }

    mutating func remove(_ span: UnsafeMutablePointer<Span>) {
        if let p = span.pointee.prev { p.pointee.next = span.pointee.next } else { head = span.pointee.next }
        if let n = span.pointee.next { n.pointee.prev = span.pointee.prev }
        span.pointee.next = nil
        span.pointee.prev = nil
        count -= 1
    }
}
