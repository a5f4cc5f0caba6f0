// Settings read once, when the heap is built: the built-in defaults, then
// the configuration file named by SWIFTMALLOC_CONFIG (ConfigFile.swift),
// then the environment variables, which override the file. Reading must
// not allocate: getenv, open/read into a scratch mapping, byte comparisons.
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
    /// Per-CPU cache budget (percpu_cache_size, SWIFTMALLOC_PERCPU_CACHE_BYTES).
    var perCPUCacheBytes: Int = 1536 << 10
    /// Filled in when rseq has been probed.
    var rseqAvailable = false
    /// Per-CPU misses between capacity rebalances (SWIFTMALLOC_PERCPU_REBALANCE; 0: never).
    var perCPURebalanceInterval: UInt64 = 1 << 16
    /// Freed large mappings kept for reuse, at most (large_cache_size,
    /// SWIFTMALLOC_LARGE_CACHE_BYTES; 0: none).
    var largeCacheBytes: Int = 32 << 20
    /// Objects a thread moves through the middle between scavenger passes
    /// (scavenge_interval, SWIFTMALLOC_SCAVENGE_INTERVAL; 0: no scavenger).
    var scavengeInterval: UInt64 = 1 << 15
    /// How long a multi-threaded process must make no slow-path call before
    /// the idle-release thread gives its free memory back, in milliseconds
    /// (idle_release_ms, SWIFTMALLOC_IDLE_RELEASE_MS; 0: no such thread).
    var idleReleaseMilliseconds: UInt64 = 1000
    /// How long free pages stay resident before a scavenger pass gives them
    /// back, in milliseconds (decay_ms, SWIFTMALLOC_DECAY_MS).
    var decayMilliseconds: UInt64 = 1000
    /// Batches each class's transfer cache parks, at most (max_transfer_slots,
    /// SWIFTMALLOC_MAX_TRANSFER_SLOTS).
    var maxTransferSlots: Int = TransferCache.defaultMaxSlots
    /// Shards of the transfer caches, each serving a group of CPUs
    /// (transfer_shards, SWIFTMALLOC_TRANSFER_SHARDS; 0: automatic, see
    /// Middle.shardCount).
    var transferShards: Int = 0
    /// The span page in bytes (page_size): spans are whole numbers of them.
    var spanPageSize: Int = Page.defaultSpanPageSize
    /// SWIFTMALLOC_DEBUG=1: poison retired metadata and check for it.
    var debug = false
    /// SWIFTMALLOC_FRONTEND was set to something that is no front end.
    var badFrontEndValue: UnsafePointer<CChar>? = nil
    /// Byte budget of each thread's cache (thread_cache_size, SWIFTMALLOC_THREAD_CACHE_BYTES).
    var threadCacheBytes: Int = 2 << 20
    /// SWIFTMALLOC_STATS_FILE, or nil. Points into the environment: copied by
    /// `init` into metadata memory, since a program may change its environment.
    var statsPath: UnsafeMutablePointer<CChar>? = nil
    /// SWIFTMALLOC_HISTOGRAM, or nil (copied like `statsPath`): where the
    /// allocation histogram is written at exit; set, requests are recorded.
    var histogramPath: UnsafeMutablePointer<CChar>? = nil
    /// The configuration file in use (a copy in metadata memory), or nil for
    /// the built-in configuration (no file, or a file with a problem).
    var filePath: UnsafeMutablePointer<CChar>? = nil
    /// The file's size classes (nil: the built-in table).
    var classes: UnsafeMutablePointer<ClassSpec>? = nil
    var classCount = 0
    /// The line to print for a file that could not be used, newline included.
    var fileProblem: UnsafeMutablePointer<UInt8>? = nil
    var fileProblemLength = 0

    /// A configuration file larger than this is not read.
    static let maxFileBytes = 64 << 10

    /// The configuration the heap starts with: the built-in defaults, the
    /// file named by SWIFTMALLOC_CONFIG, then the environment. The front end
    /// is settled by `settleFrontEnd` once rseq has been probed.
    static func load(metadata: inout MetadataArena) -> Configuration {
        var config = Configuration()
        if let path = environment("SWIFTMALLOC_CONFIG"), path.pointee != 0 {
            config.readFile(path, metadata: &metadata)
        }
        config.applyEnvironment()
        return config
    }

    /// Applies the configuration file at `path`. A file that cannot be read
    /// or has a problem changes nothing but `fileProblem`.
    mutating func readFile(_ path: UnsafePointer<CChar>, metadata: inout MetadataArena) {
        let pathCopy = Configuration.copy(path, metadata: &metadata)
        let messageBytes = 256
        let scratchBytes = Configuration.maxFileBytes + messageBytes
        guard let scratch = OSMemory.map(scratchBytes) else {
            return reportFile(pathCopy, line: 0, "cannot map memory to read it", metadata: &metadata)
        }
        defer { OSMemory.unmap(scratch, scratchBytes) }
        let bytes = scratch.assumingMemoryBound(to: UInt8.self)
        let count = sm_read_file(path, scratch.assumingMemoryBound(to: CChar.self), Configuration.maxFileBytes)
        var message = TextBuffer(base: bytes + Configuration.maxFileBytes, capacity: messageBytes)
        if count < 0 {
            if count == -Int64(EFBIG) {
                message.append("cannot read (larger than 65536 bytes)")
            } else {
                message.append("cannot read (")
                message.append(cString: sm_error_text(Int32(-count)))
                message.append(")")
            }
            return reportFile(pathCopy, line: 0, message, metadata: &metadata)
        }
        let classes = metadata.allocateArray(of: ClassSpec.self, count: ConfigFileParser.classCapacity)
        var parsed = self
        switch ConfigFileParser.parse(bytes, count: Int(count), into: &parsed, classes: classes, message: &message) {
        case .problem(let line):
            reportFile(pathCopy, line: line, message, metadata: &metadata)
        case .parsed(let classCount):
            self = parsed
            filePath = pathCopy
            if let classCount {
                self.classes = classes
                self.classCount = classCount
            }
        }
    }

    /// Keeps the line "swiftmalloc: config PATH:LINE: problem" for `reportProblems`.
    private mutating func reportFile(_ path: UnsafePointer<CChar>, line: Int, _ problem: TextBuffer,
                                     metadata: inout MetadataArena) {
        var length = 0
        while path[length] != 0 { length += 1 }
        let capacity = length + problem.count + 64
        var text = TextBuffer(base: metadata.allocateArray(of: UInt8.self, count: capacity), capacity: capacity)
        text.append("swiftmalloc: config ")
        text.append(cString: path)
        text.append(":")
        text.append(UInt64(line))
        text.append(": ")
        var i = 0
        while i < problem.count { text.appendByte(problem.base[i]); i += 1 }
        text.append("\n")
        fileProblem = text.base
        fileProblemLength = text.count
    }

    private mutating func reportFile(_ path: UnsafePointer<CChar>, line: Int, _ problem: StaticString,
                                     metadata: inout MetadataArena) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
            var text = TextBuffer(base: buffer.baseAddress.unsafelyUnwrapped, capacity: 64)
            text.append(problem)
            reportFile(path, line: line, text, metadata: &metadata)
        }
    }

    /// Applies the environment variables (over the file's settings).
    mutating func applyEnvironment() {
        if let value = Configuration.environment("SWIFTMALLOC_FRONTEND"), value.pointee != 0 {
            if let kind = Configuration.parseFrontEnd(value) {
                requestedFrontEnd = kind
            } else {
                badFrontEndValue = value
            }
        }
        if let value = Configuration.environment("SWIFTMALLOC_PERCPU_ID"), value.pointee != 0 {
            if Configuration.equals(value, "cpu") { requestedIDMode = .cpu }
            else if Configuration.equals(value, "mmcid") { requestedIDMode = .mmcid }
            else { badIDModeValue = value }
        }
        if let value = Configuration.environment("SWIFTMALLOC_DEBUG"), Configuration.equals(value, "1") { debug = true }
        // A value outside a knob's range is brought within it.
        Knob.forEach { knob in
            if let name = knob.environmentName, let value = Configuration.size(name) {
                knob.store(Configuration.clamp(value, knob.range), in: &self)
            }
        }
    }

    /// An environment variable holding a size (`parseSize`), if set and valid.
    private static func size(_ name: StaticString) -> Int? {
        guard let value = environment(name) else { return nil }
        return parseSize(value)
    }

    static func clamp(_ value: Int, _ range: ClosedRange<Int>) -> Int {
        max(range.lowerBound, min(value, range.upperBound))
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
        return copy(value, metadata: &metadata)
    }

    /// A copy of a C string in metadata memory.
    static func copy(_ value: UnsafePointer<CChar>, metadata: inout MetadataArena) -> UnsafeMutablePointer<CChar> {
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
        if let line = fileProblem {
            sm_write_stderr(UnsafeRawPointer(line).assumingMemoryBound(to: CChar.self), fileProblemLength)
        }
        if let bad = badFrontEndValue {
            writeStderr("swiftmalloc: SWIFTMALLOC_FRONTEND=")
            writeValue(bad)
            writeStderr(" is not a front end (valid: percpu, thread, arenas, global); using ")
            writeStderr(frontEnd.name)
            writeStderr("\n")
        } else if requestedFrontEnd == .percpu && frontEnd != .percpu {
            writeStderr("swiftmalloc: front end percpu (asked by SWIFTMALLOC_FRONTEND or the configuration file) needs rseq, which is not available; using ")
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

/// A numeric setting: its key in the configuration file's [config], its
/// environment variable, its valid values and the field it sets. The file
/// and the environment both go through this one table: a file's value
/// outside the range is a problem, an environment variable's is brought
/// within it.
enum Knob: UInt32 {
    case pageSize, threadCacheSize, perCPUCacheSize, maxTransferSlots, largeCacheSize, scavengeInterval, idleRelease
    case perCPURebalance, transferShards, decay

    /// Every knob, in declaration order.
    static func forEach(_ body: (Knob) -> Void) {
        var raw: UInt32 = 0
        while let knob = Knob(rawValue: raw) { body(knob); raw += 1 }
    }

    /// The key in [config]; nil: environment only.
    var fileKey: StaticString? {
        switch self {
        case .pageSize: return "page_size"
        case .threadCacheSize: return "thread_cache_size"
        case .perCPUCacheSize: return "percpu_cache_size"
        case .maxTransferSlots: return "max_transfer_slots"
        case .largeCacheSize: return "large_cache_size"
        case .scavengeInterval: return "scavenge_interval"
        case .idleRelease: return "idle_release_ms"
        case .perCPURebalance: return nil
        case .transferShards: return "transfer_shards"
        case .decay: return "decay_ms"
        }
    }

    /// The environment variable (a decimal count with an optional K/M/G
    /// suffix); nil: file only.
    var environmentName: StaticString? {
        switch self {
        case .pageSize: return nil
        case .threadCacheSize: return "SWIFTMALLOC_THREAD_CACHE_BYTES"
        case .perCPUCacheSize: return "SWIFTMALLOC_PERCPU_CACHE_BYTES"
        case .maxTransferSlots: return "SWIFTMALLOC_MAX_TRANSFER_SLOTS"
        case .largeCacheSize: return "SWIFTMALLOC_LARGE_CACHE_BYTES"
        case .scavengeInterval: return "SWIFTMALLOC_SCAVENGE_INTERVAL"
        case .idleRelease: return "SWIFTMALLOC_IDLE_RELEASE_MS"
        case .perCPURebalance: return "SWIFTMALLOC_PERCPU_REBALANCE"
        case .transferShards: return "SWIFTMALLOC_TRANSFER_SHARDS"
        case .decay: return "SWIFTMALLOC_DECAY_MS"
        }
    }

    var range: ClosedRange<Int> {
        switch self {
        case .pageSize: return Page.size...(1 << 20)
        case .threadCacheSize: return (64 << 10)...(1 << 30)
        case .perCPUCacheSize: return (64 << 10)...(64 << 20)
        case .maxTransferSlots: return 2...1024
        case .largeCacheSize: return 0...(1 << 40)
        case .scavengeInterval: return 0...(1 << 50)
        case .idleRelease: return 0...86_400_000
        case .perCPURebalance: return 0...(1 << 40)
        case .transferShards: return 0...64
        case .decay: return 0...86_400_000
        }
    }

    /// Sets the knob's field to `value` (within `range`).
    func store(_ value: Int, in config: inout Configuration) {
        switch self {
        case .pageSize: config.spanPageSize = value
        case .threadCacheSize: config.threadCacheBytes = value
        case .perCPUCacheSize: config.perCPUCacheBytes = value
        case .maxTransferSlots: config.maxTransferSlots = value
        case .largeCacheSize: config.largeCacheBytes = value
        case .scavengeInterval: config.scavengeInterval = UInt64(value)
        case .idleRelease: config.idleReleaseMilliseconds = UInt64(value)
        case .perCPURebalance: config.perCPURebalanceInterval = UInt64(value)
        case .transferShards: config.transferShards = value
        case .decay: config.decayMilliseconds = UInt64(value)
        }
    }
}
