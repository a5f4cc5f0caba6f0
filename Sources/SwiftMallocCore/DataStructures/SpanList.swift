// An intrusive doubly linked list of spans (through Span.next / Span.prev).
// Used by the page heap's free lists and the central lists' partial spans.

struct SpanList {
    var head: SpanRef? = nil
    var count: Int = 0

    mutating func pushFront(_ span: SpanRef) {
        span.prev = nil
        span.next = head
        if let h = head { h.prev = span }
        head = span
        count += 1
    }

    mutating func remove(_ span: SpanRef) {
        if let p = span.prev { p.next = span.next } else { head = span.next }
        if let n = span.next { n.prev = span.prev }
        span.next = nil
        span.prev = nil
        count -= 1
    }
}
