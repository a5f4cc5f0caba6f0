// The allocators the lab compares, and where it finds them on this machine.
import Foundation
import MallocLabShared

public struct AllocatorSpec: Codable, Equatable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable { case swiftmalloc, glibc, peer }

    /// The name in results and on the command line: swiftmalloc-percpu,
    /// swiftmalloc-thread, swiftmalloc-arenas, swiftmalloc-global, glibc,
    /// jemalloc, mimalloc, tcmalloc.
    public var id: String
    public var kind: Kind
    /// The library to preload; nil for glibc (nothing preloaded).
    public var library: String?
    /// SwiftMalloc's front end (SWIFTMALLOC_FRONTEND), nil for the others.
    public var frontend: String?
    /// The Debian package that provides a peer.
    public var debianPackage: String?
    public var available: Bool
    /// Where it was found, or why it is missing.
    public var note: String

    public init(id: String, kind: Kind, library: String?, frontend: String?, debianPackage: String?, available: Bool, note: String) {
        self.id = id
        self.kind = kind
        self.library = library
        self.frontend = frontend
        self.debianPackage = debianPackage
        self.available = available
        self.note = note
    }

    /// Environment a workload process runs with (on top of a clean one).
    public var environment: [String: String] {
        var env: [String: String] = [:]
        if let library { env["LD_PRELOAD"] = library }
        if let frontend { env["SWIFTMALLOC_FRONTEND"] = frontend }
        return env
    }

    /// A substring the workload's reported malloc provider must contain.
    public var expectedProvider: String {
        if let library { return URL(fileURLWithPath: library).lastPathComponent }
        return "libc.so"
    }
}

/// A peer allocator the lab knows how to find and install.
public struct PeerAllocator: Sendable {
    public var id: String
    public var debianPackage: String
    public var sonames: [String]

    public static let all: [PeerAllocator] = [
        PeerAllocator(id: "jemalloc", debianPackage: "libjemalloc2", sonames: ["libjemalloc.so.2"]),
        PeerAllocator(id: "mimalloc", debianPackage: "libmimalloc2.0", sonames: ["libmimalloc.so.2", "libmimalloc.so.2.0"]),
        PeerAllocator(id: "tcmalloc", debianPackage: "libtcmalloc-minimal4", sonames: ["libtcmalloc_minimal.so.4"]),
    ]
}

public enum AllocatorDiscovery {
    /// Library folders searched for the peers, multiarch first.
    public static var searchDirectories: [String] {
        #if arch(x86_64)
        let triple = "x86_64-linux-gnu"
        #elseif arch(arm64)
        let triple = "aarch64-linux-gnu"
        #else
        let triple = "unknown-linux-gnu"
        #endif
        return ["/usr/lib/\(triple)", "/lib/\(triple)", "/usr/lib64", "/usr/lib", "/usr/local/lib", "/lib64", "/lib"]
    }

    /// The first existing file among the peer's sonames in the search
    /// folders; an environment override MALLOC_LAB_<ID>=PATH wins.
    public static func locate(_ peer: PeerAllocator, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let path = environment["MALLOC_LAB_\(peer.id.uppercased())"], !path.isEmpty {
            return FileManager.default.fileExists(atPath: path) ? path : nil
        }
        for dir in searchDirectories {
            for name in peer.sonames {
                let path = "\(dir)/\(name)"
                if FileManager.default.fileExists(atPath: path) { return path }
            }
        }
        return nil
    }

    /// Every allocator the lab knows, with availability on this machine.
    public static func all(swiftMallocLibrary: String) -> [AllocatorSpec] {
        var out: [AllocatorSpec] = []
        let libExists = FileManager.default.fileExists(atPath: swiftMallocLibrary)
        for fe in FrontEnds.all {
            out.append(AllocatorSpec(
                id: "swiftmalloc-\(fe)", kind: .swiftmalloc, library: swiftMallocLibrary, frontend: fe,
                debianPackage: nil, available: libExists,
                note: libExists ? swiftMallocLibrary : "missing: \(swiftMallocLibrary) (build it with `swift build -c release` in the package root)"))
        }
        out.append(AllocatorSpec(id: "glibc", kind: .glibc, library: nil, frontend: nil, debianPackage: nil,
                                 available: true, note: "the C library's malloc (nothing preloaded)"))
        for peer in PeerAllocator.all {
            let path = locate(peer)
            out.append(AllocatorSpec(
                id: peer.id, kind: .peer, library: path, frontend: nil, debianPackage: peer.debianPackage,
                available: path != nil,
                note: path ?? "not installed (Debian package \(peer.debianPackage); `malloc-lab setup` installs it)"))
        }
        return out
    }

    /// Resolves a selection like "swiftmalloc,glibc,jemalloc" or
    /// "swiftmalloc-percpu,tcmalloc" or "all" against the known allocators.
    /// "swiftmalloc" means all four front ends; "peers" all three peers.
    /// Unknown names throw; names that are known but missing are returned
    /// with `available == false` so the caller can say so.
    public static func select(_ selection: [String], from known: [AllocatorSpec]) throws -> [AllocatorSpec] {
        var out: [AllocatorSpec] = []
        func add(_ a: AllocatorSpec) { if !out.contains(a) { out.append(a) } }
        for raw in selection.flatMap({ $0.split(separator: ",") }).map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !raw.isEmpty {
            switch raw {
            case "all": known.forEach(add)
            case "available": known.filter(\.available).forEach(add)
            case "swiftmalloc": known.filter { $0.kind == .swiftmalloc }.forEach(add)
            case "peers": known.filter { $0.kind == .peer }.forEach(add)
            default:
                guard let a = known.first(where: { $0.id == raw }) else {
                    throw LabError.usage("unknown allocator '\(raw)'; known: \(known.map(\.id).joined(separator: ", ")), or swiftmalloc, peers, all")
                }
                add(a)
            }
        }
        return out
    }
}

/// Errors with a message for the person at the terminal.
public enum LabError: Error, CustomStringConvertible, Equatable {
    case usage(String)
    case missing(String)
    case io(String)

    public var description: String {
        switch self {
        case .usage(let m), .missing(let m), .io(let m): return m
        }
    }
}
