// Settings read once, from the environment, when the heap is built.
// Reading must not allocate: getenv and byte comparisons only.
import SwiftMallocShims

enum FrontEndKind: UInt8 {
    case percpu = 0
    case thread = 1
    case arenas = 2
    case global = 3

    var name: StaticString {
        switch self {
        case .percpu: return "percpu"
        case .thread: return "thread"
        case .arenas: return "arenas"
        case .global: return "global"
        }
    }

}

/// How the per-CPU front end numbers its slabs.
enum PerCPUIDMode: UInt8 {
    case cpu = 0     // rseq cpu_id: one slab per CPU
    case mmcid = 1   // rseq mm_cid: dense ids, as many slabs as CPUs in use

    var name: StaticString { self == .cpu ? "cpu" : "mmcid" }
}

struct Configuration {
    /// What the environment asked for, and what is used.
    var requestedFrontEnd: FrontEndKind? = nil
    var frontEnd: FrontEndKind = .percpu
    /// SWIFTMALLOC_PERCPU_ID (default mmcid where the kernel has it).
    var requestedIDMode: PerCPUIDMode = .mmcid
    var badIDModeValue: UnsafePointer<CChar>? = nil
    /// Per-CPU cache budget (SWIFTMALLOC_PERCPU_CACHE_BYTES).
    var perCPUCacheBytes: Int = 1536 << 10
    /// Filled in when rseq has been probed.
    var rseqAvailable = false
    /// Per-CPU misses between capacity rebalances (SWIFTMALLOC_PERCPU_REBALANCE; 0: never).
    var perCPURebalanceInterval: UInt64 = 1 << 16
    /// Freed large mappings kept for reuse, at most (SWIFTMALLOC_LARGE_CACHE_BYTES; 0: none).
    var largeCacheBytes: Int = 32 << 20
    /// Objects a thread moves through the middle between scavenger passes
    /// (SWIFTMALLOC_SCAVENGE_INTERVAL; 0: no scavenger).
    var scavengeInterval: UInt64 = 1 << 15
    /// SWIFTMALLOC_DEBUG=1: poison retired metadata and check for it.
    var debug = false
    /// SWIFTMALLOC_FRONTEND was set to something that is no front end.
    var badFrontEndValue: UnsafePointer<CChar>? = nil
    /// Byte budget of each thread's cache (SWIFTMALLOC_THREAD_CACHE_BYTES).
    var threadCacheBytes: Int = 2 << 20
    /// SWIFTMALLOC_STATS_FILE, or nil. Points into the environment: copied by
    /// `init` into metadata memory, since a program may change its environment.
    var statsPath: UnsafeMutablePointer<CChar>? = nil
    /// SWIFTMALLOC_HISTOGRAM, or nil (copied like `statsPath`): where the
    /// allocation histogram is written at exit; set, requests are recorded.
    var histogramPath: UnsafeMutablePointer<CChar>? = nil

    /// Reads the environment. The front end is settled by `settleFrontEnd`
    /// once rseq has been probed.
    static func fromEnvironment() -> Configuration {
        var config = Configuration()
        if let value = environment("SWIFTMALLOC_FRONTEND"), value.pointee != 0 {
            if let kind = parseFrontEnd(value) {
                config.requestedFrontEnd = kind
            } else {
                config.badFrontEndValue = value
            }
        }
        if let value = environment("SWIFTMALLOC_PERCPU_ID"), value.pointee != 0 {
            if equals(value, "cpu") { config.requestedIDMode = .cpu }
            else if equals(value, "mmcid") { config.requestedIDMode = .mmcid }
            else { config.badIDModeValue = value }
        }
        if let value = environment("SWIFTMALLOC_PERCPU_CACHE_BYTES"), let bytes = parseSize(value) {
            config.perCPUCacheBytes = max(64 << 10, min(bytes, 64 << 20))
        }
        if let value = environment("SWIFTMALLOC_DEBUG"), equals(value, "1") { config.debug = true }
        if let value = environment("SWIFTMALLOC_SCAVENGE_INTERVAL"), let n = parseSize(value) {
            config.scavengeInterval = UInt64(min(n, 1 << 50))
        }
        if let value = environment("SWIFTMALLOC_LARGE_CACHE_BYTES"), let bytes = parseSize(value) {
            config.largeCacheBytes = min(bytes, 1 << 40)
        }
        if let value = environment("SWIFTMALLOC_PERCPU_REBALANCE"), let n = parseSize(value) {
            config.perCPURebalanceInterval = UInt64(min(n, 1 << 40))
        }
        if let value = environment("SWIFTMALLOC_THREAD_CACHE_BYTES"), let bytes = parseSize(value) {
            config.threadCacheBytes = max(64 << 10, min(bytes, 1 << 30))
        }
        return config
    }

    /// Chooses the front end: the one asked for, percpu falling back to
    /// thread without rseq; by default percpu where rseq works, else thread.
    mutating func settleFrontEnd(rseqAvailable: Bool) {
        self.rseqAvailable = rseqAvailable
        let wanted = requestedFrontEnd ?? .percpu
        frontEnd = (wanted == .percpu && !rseqAvailable) ? .thread : wanted
    }

    /// Copies the paths of the files written at exit out of the environment
    /// (heap built, metadata available).
    mutating func captureOutputPaths(metadata: inout MetadataArena) {
        statsPath = Configuration.copiedPath("SWIFTMALLOC_STATS_FILE", metadata: &metadata)
        histogramPath = Configuration.copiedPath("SWIFTMALLOC_HISTOGRAM", metadata: &metadata)
    }

    /// A copy of the variable's value in metadata memory; nil when unset or empty.
    private static func copiedPath(_ name: StaticString, metadata: inout MetadataArena) -> UnsafeMutablePointer<CChar>? {
        guard let value = environment(name), value.pointee != 0 else { return nil }
        var length = 0
        while value[length] != 0 { length += 1 }
        let copy = metadata.allocateArray(of: CChar.self, count: length + 1)
        copy.update(from: value, count: length)
        copy[length] = 0
        return copy
    }

    /// An environment variable's value, at most 64 bytes of it.
    private func writeValue(_ value: UnsafePointer<CChar>) {
        var length = 0
        while value[length] != 0 && length < 64 { length += 1 }
        sm_write_stderr(value, length)
    }

    /// One line on stderr for a setting that could not be honoured.
    func reportProblems() {
        if let bad = badFrontEndValue {
            writeStderr("swiftmalloc: SWIFTMALLOC_FRONTEND=")
            writeValue(bad)
            writeStderr(" is not a front end (valid: percpu, thread, arenas, global); using ")
            writeStderr(frontEnd.name)
            writeStderr("\n")
        } else if requestedFrontEnd == .percpu && frontEnd != .percpu {
            writeStderr("swiftmalloc: SWIFTMALLOC_FRONTEND=percpu needs rseq, which is not available; using ")
            writeStderr(frontEnd.name)
            writeStderr("\n")
        }
        if let bad = badIDModeValue {
            writeStderr("swiftmalloc: SWIFTMALLOC_PERCPU_ID=")
            writeValue(bad)
            writeStderr(" is not an id mode (valid: cpu, mmcid); using mmcid where available\n")
        }
    }

    static func parseFrontEnd(_ value: UnsafePointer<CChar>) -> FrontEndKind? {
        if equals(value, "percpu") { return .percpu }
        if equals(value, "thread") { return .thread }
        if equals(value, "arenas") { return .arenas }
        if equals(value, "global") { return .global }
        return nil
    }

    /// A decimal byte count with an optional K/M/G suffix.
    static func parseSize(_ value: UnsafePointer<CChar>) -> Int? {
        var result = 0
        var i = 0
        var digits = 0
        while value[i] >= 48 && value[i] <= 57 {
            let (m, o1) = result.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(value[i]) - 48)
            if o1 || o2 { return nil }
            result = a
            i += 1
            digits += 1
        }
        if digits == 0 { return nil }
        var shift = 0
        switch value[i] {
        case 0: break
        case 75, 107: shift = 10; i += 1   // K k
        case 77, 109: shift = 20; i += 1   // M m
        case 71, 103: shift = 30; i += 1   // G g
        default: return nil
        }
        if value[i] != 0 { return nil }
        if shift > 0 && result > (Int.max >> shift) { return nil }
        return result << shift
    }

    /// getenv for a name written in the source. A `StaticString` passes
    /// its bytes in place; a `String` literal handed to a C `char *` would be
    /// converted through a heap buffer in unoptimised builds, calling malloc
    /// from inside the heap's own initialisation (a self-deadlock).
    static func environment(_ name: StaticString) -> UnsafePointer<CChar>? {
        sm_getenv(UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self))
    }

    static func equals(_ a: UnsafePointer<CChar>, _ b: StaticString) -> Bool {
        let bytes = b.utf8Start
        for i in 0..<b.utf8CodeUnitCount where UInt8(bitPattern: a[i]) != bytes[i] { return false }
        return a[b.utf8CodeUnitCount] == 0
    }
}

func writeStderr(_ message: StaticString) {
    message.withCString { sm_write_stderr($0, message.utf8CodeUnitCount) }
}
