// swiftprog: an ordinary Swift program — classes, arrays, dictionaries,
// strings — whose every allocation goes through the Swift runtime to the
// process's malloc (so, under LD_PRELOAD, to the allocator being measured).
// Finished search trees are handed to another thread, which releases them:
// class instances freed by a thread that did not allocate them.
import Glibc
import MallocLabCSupport

final class TreeNode {
    let key: String
    var count: Int
    var left: TreeNode?
    var right: TreeNode?
    init(key: String, count: Int) {
        self.key = key
        self.count = count
    }
}

struct SearchTree {
    var root: TreeNode?
    private(set) var size = 0

    mutating func insert(_ key: String, _ count: Int) {
        guard var node = root else {
            root = TreeNode(key: key, count: count)
            size = 1
            return
        }
        while true {
            if key == node.key { node.count += count; return }
            if key < node.key {
                if let l = node.left { node = l } else { node.left = TreeNode(key: key, count: count); size += 1; return }
            } else {
                if let r = node.right { node = r } else { node.right = TreeNode(key: key, count: count); size += 1; return }
            }
        }
    }

    /// In-order keys and counts (iterative: deep trees must not overflow the stack).
    func inOrder() -> [(String, Int)] {
        var out: [(String, Int)] = []
        out.reserveCapacity(size)
        var stack: [TreeNode] = []
        var cur = root
        while cur != nil || !stack.isEmpty {
            while let c = cur { stack.append(c); cur = c.left }
            let n = stack.removeLast()
            out.append((n.key, n.count))
            cur = n.right
        }
        return out
    }
}

/// Releases a tree without deep recursion in deinit.
func dismantle(_ tree: TreeNode?) {
    var stack: [TreeNode] = []
    if let t = tree { stack.append(t) }
    while let n = stack.popLast() {
        if let l = n.left { stack.append(l); n.left = nil }
        if let r = n.right { stack.append(r); n.right = nil }
    }
}

/// A holder for a tree passed between threads through an atomic mailbox word.
final class TreeBox {
    var root: TreeNode?
    init(_ root: TreeNode?) { self.root = root }
    deinit { dismantle(root) }
}

struct Record {
    var name: String
    var scores: [Int]
}

let syllables = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "xe", "yo", "za", "bri", "cho", "dra", "flu"]

func fnv(_ h: inout UInt64, _ s: String) {
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01B3
    }
}

func fnv(_ h: inout UInt64, _ v: Int) {
    h ^= UInt64(bitPattern: Int64(v))
    h = h &* 0x100_0000_01B3
}

/// One iteration of the program; returns a checksum and the finished tree.
/// Stops the process if any of its own checks fail.
func swiftProgramIteration(seed: UInt64) -> (UInt64, TreeNode?) {
    var rng = Rng(seed: seed)
    // A vocabulary of made-up words (half of them too long for small-string
    // storage, so they live on the heap).
    var vocabulary: [String] = []
    for _ in 0..<1500 {
        var word = ""
        for _ in 0..<(2 + Int(rng.next() % 9)) { word += syllables[Int(rng.next() % UInt64(syllables.count))] }
        vocabulary.append(word)
    }
    // Text: the words joined, growing one string.
    let wordCount = 12_000
    var text = ""
    for i in 0..<wordCount {
        if i > 0 { text += " " }
        text += vocabulary[Int(rng.next() % UInt64(vocabulary.count))]
    }
    // Split it back and count.
    let words = text.split(separator: " ")
    if words.count != wordCount { fail("swiftprog: split found the wrong number of words", UInt64(words.count), UInt64(wordCount)) }
    var counts: [String: Int] = [:]
    for w in words { counts[String(w), default: 0] += 1 }
    if counts.values.reduce(0, +) != wordCount { fail("swiftprog: word counts do not add up", UInt64(counts.values.reduce(0, +))) }
    // A class-based search tree of the counts.
    var tree = SearchTree()
    for (k, v) in counts { tree.insert(k, v) }
    let ordered = tree.inOrder()
    if ordered.count != counts.count { fail("swiftprog: tree size differs from the dictionary", UInt64(ordered.count), UInt64(counts.count)) }
    for i in 0..<ordered.count {
        if i > 0 && !(ordered[i - 1].0 < ordered[i].0) { fail("swiftprog: tree is not ordered", UInt64(i)) }
        if counts[ordered[i].0] != ordered[i].1 { fail("swiftprog: tree count differs from the dictionary", UInt64(i)) }
    }
    // Records with arrays, sorted, serialised and parsed back.
    var records = counts.map { (k, v) in
        Record(name: k.uppercased() + "#" + String(v), scores: (0..<(v % 7 + 1)).map { $0 * v })
    }
    records.sort { $0.name < $1.name }
    var serialized: [String] = []
    serialized.reserveCapacity(records.count)
    for r in records { serialized.append(r.name + ":" + r.scores.map(String.init).joined(separator: ",")) }
    let blob = serialized.joined(separator: ";")
    var parsed: [Record] = []
    for part in blob.split(separator: ";") {
        let fields = part.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let scores = fields.count > 1 ? fields[1].split(separator: ",").map { Int($0) ?? -1 } : []
        parsed.append(Record(name: String(fields[0]), scores: scores))
    }
    if parsed.count != records.count { fail("swiftprog: round trip changed the record count", UInt64(parsed.count)) }
    for i in 0..<parsed.count where parsed[i].name != records[i].name || parsed[i].scores != records[i].scores {
        fail("swiftprog: round trip changed a record", UInt64(i))
    }
    // Checksum over ordered data (independent of hashing seeds).
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for (k, v) in ordered { fnv(&h, k); fnv(&h, v) }
    for r in records { fnv(&h, r.name); for s in r.scores { fnv(&h, s) } }
    return (h, tree.root)
}

struct SwiftProgShared {
    /// One mailbox word per thread (an Unmanaged<TreeBox> or 0).
    var mailboxes: UnsafeMutablePointer<UInt64>
    /// Each thread's combined checksum.
    var checksums: UnsafeMutablePointer<UInt64>
    var seed: UInt64
}

private let swiftProgBody: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    let w = raw.assumingMemoryBound(to: Worker.self)
    let sh = w.pointee.shared.unsafelyUnwrapped.assumingMemoryBound(to: SwiftProgShared.self).pointee
    let n = w.pointee.threads
    var combined: UInt64 = 0
    for iteration in 0..<w.pointee.target {
        // Same seeds on every thread: all threads must agree on the result.
        let (sum, root) = swiftProgramIteration(seed: sh.seed &+ UInt64(iteration) &* 0x9E37_79B9)
        combined = (combined ^ sum) &* 0x100_0000_01B3
        // Hand the tree to the next thread; release whatever was waiting here.
        let box = Unmanaged.passRetained(TreeBox(root)).toOpaque()
        let previous = lab_exchange(sh.mailboxes + ((w.pointee.index + 1) % n) * 16, UInt64(UInt(bitPattern: box)))
        if previous != 0 {
            Unmanaged<TreeBox>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(previous)).unsafelyUnwrapped).release()
        }
    }
    sh.checksums[w.pointee.index] = combined
    w.pointee.ops = UInt64(w.pointee.target)
}

func runSwiftProgram(_ h: Harness) {
    let total = scaled(24, h.options.scale)
    let per = max(1, total / h.threads)
    let sh = prealloc(1, of: SwiftProgShared.self)
    sh.initialize(to: SwiftProgShared(mailboxes: prealloc(h.threads * 16, of: UInt64.self),
                                      checksums: prealloc(h.threads, of: UInt64.self), seed: h.options.seed))
    h.configure(body: swiftProgBody, shared: UnsafeMutableRawPointer(sh), target: { _ in per }, expectedCalls: { _ in 0 })
    h.markBaseline()
    h.runTimed()
    for i in 1..<max(h.threads, 1) where sh.pointee.checksums[i] != sh.pointee.checksums[0] {
        fail("swiftprog: threads computed different checksums", sh.pointee.checksums[0], sh.pointee.checksums[i])
    }
    for i in 0..<h.threads {
        let word = sh.pointee.mailboxes[i * 16]
        if word != 0 { Unmanaged<TreeBox>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(word)).unsafelyUnwrapped).release() }
    }
    h.note("checksum_low32", Double(sh.pointee.checksums[0] & 0xFFFF_FFFF))
}
