// A Swift program that adopts SwiftMalloc as its process allocator simply by
// depending on the library: no LD_PRELOAD. Every class instance, array,
// dictionary and string below is allocated by SwiftMalloc, which the
// counters printed at the end (and SWIFTMALLOC_STATS_FILE) show.
import SwiftMallocAPI

final class Node {
    var value: Int
    var children: [Node] = []
    init(_ value: Int) { self.value = value }
}

func buildTree(depth: Int, value: inout Int) -> Node {
    let node = Node(value)
    value += 1
    if depth > 0 {
        for _ in 0..<3 { node.children.append(buildTree(depth: depth - 1, value: &value)) }
    }
    return node
}

func sum(_ node: Node) -> Int { node.children.reduce(node.value) { $0 + sum($1) } }

let before = Malloc.statistics
var counter = 0
let tree = buildTree(depth: 7, value: &counter)
var words: [String: Int] = [:]
for i in 0..<20_000 { words["word-\(i % 5_000)", default: 0] += i }
let joined = (0..<2_000).map { "item \($0)" }.joined(separator: ",")

// Memory by hand, through the Swift API.
let block = Malloc.allocate(byteCount: 1 << 16, alignment: 4096)!
precondition(Int(bitPattern: block) % 4096 == 0)
precondition(Malloc.usableSize(of: block) >= 1 << 16)
Malloc.deallocate(block)

let after = Malloc.statistics
let expectedSum = (counter - 1) * counter / 2
precondition(sum(tree) == expectedSum, "tree sum")
precondition(words.count == 5_000 && joined.count > 10_000)
print("front end: \(Malloc.frontEnd)")
print("nodes: \(counter), words: \(words.count), joined: \(joined.count) characters")
print("allocations served by SwiftMalloc: \(after.allocations - before.allocations)")
print("in use now: \(after.in_use_bytes) bytes in \(after.mapped_bytes) mapped")
