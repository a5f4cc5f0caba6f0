// Where things are: the package root, the SwiftMalloc library, and the
// workload executable (built next to malloc-lab).
import Foundation

public enum LabPaths {
    /// This executable's real path (/proc/self/exe).
    public static var executable: URL {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: p)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    }

    /// The folder malloc-lab was built into (.build-lab/release, ...).
    public static var buildDirectory: URL { executable.deletingLastPathComponent() }

    /// The package root: the nearest folder above this executable, or above
    /// the current directory, that holds Package.swift and Experiments/;
    /// else the root this source file was compiled in.
    public static var packageRoot: URL {
        for start in [buildDirectory, URL(fileURLWithPath: FileManager.default.currentDirectoryPath)] {
            var dir = start.standardizedFileURL
            while dir.path != "/" {
                if isPackageRoot(dir) { return dir }
                dir = dir.deletingLastPathComponent()
            }
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // MallocLabCore
            .deletingLastPathComponent()  // Experiments
            .deletingLastPathComponent()
    }

    /// The nearest folder above `path` that holds a Package.swift (the
    /// package a library was built from), or nil.
    public static func enclosingPackage(of path: String) -> URL? {
        var dir = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    static func isPackageRoot(_ dir: URL) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path)
            && fm.fileExists(atPath: dir.appendingPathComponent("Experiments").path)
    }

    /// $SWIFTMALLOC_LIB, else <package root>/.build/release/libSwiftMalloc.so.
    public static var defaultLibrary: String {
        if let explicit = ProcessInfo.processInfo.environment["SWIFTMALLOC_LIB"], !explicit.isEmpty {
            return URL(fileURLWithPath: explicit, relativeTo: packageRoot).standardizedFileURL.path
        }
        return packageRoot.appendingPathComponent(".build/release/libSwiftMalloc.so").path
    }

    /// malloc-lab-workload next to this executable ($MALLOC_LAB_WORKLOAD wins).
    public static var workloadExecutable: String {
        if let explicit = ProcessInfo.processInfo.environment["MALLOC_LAB_WORKLOAD"], !explicit.isEmpty {
            return explicit
        }
        return buildDirectory.appendingPathComponent("malloc-lab-workload").path
    }

    /// malloc-lab-micro next to this executable ($MALLOC_LAB_MICRO wins).
    public static var microExecutable: String {
        if let explicit = ProcessInfo.processInfo.environment["MALLOC_LAB_MICRO"], !explicit.isEmpty {
            return explicit
        }
        return buildDirectory.appendingPathComponent("malloc-lab-micro").path
    }

    /// How to build the library, for messages.
    public static var libraryBuildHint: String {
        "build it with `swift build -c release` in \(packageRoot.path) (or point --library / SWIFTMALLOC_LIB at a built libSwiftMalloc.so)"
    }
}
