// malloc-lab profile: run a program under the allocation histogram and
// suggest size classes for it, written as a configuration file.
import ArgumentParser
import Foundation
import MallocLabCore

public struct Profile: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Profile a program's allocation sizes and suggest size classes for it.",
        discussion: """
            Runs the program once with SwiftMalloc preloaded and SWIFTMALLOC_HISTOGRAM set, prints the requests per \
            size bucket, the internal waste of the built-in classes, and the least wasteful layout of at most \
            --max-classes classes in which no class wastes more than --max-waste percent; writes that layout as a \
            SWIFTMALLOC_CONFIG file. Example: malloc-lab profile -o py.toml -- python3 script.py
            """)

    @Option(name: .long, help: "The most classes the layout may have (1 to 127).")
    public var maxClasses: Int = 64

    @Option(name: .long, help: ArgumentHelp("The most internal waste any class may have, in percent.", valueName: "pct"))
    public var maxWaste: Double = 10

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The configuration file to write.", valueName: "file"))
    public var output: String = "size-classes.toml"

    @Option(name: .long, help: ArgumentHelp("How to write the classes: tables ([[class]]) or shorthand (classes = [...]).", valueName: "style"))
    public var style: String = SizeClassConfigFile.Style.tables.rawValue

    @OptionGroup public var lib: LibraryOptions

    @OptionGroup public var program: ProgramArguments

    public init() {}

    public func validate() throws {
        if !(1...SizeClassLayout.maxClassCount).contains(maxClasses) {
            throw ValidationError("--max-classes must be from 1 to \(SizeClassLayout.maxClassCount)")
        }
        if !(maxWaste > 0 && maxWaste < 100) { throw ValidationError("--max-waste is a percentage above 0 and below 100") }
        if SizeClassConfigFile.Style(rawValue: style) == nil {
            throw ValidationError("--style is one of \(SizeClassConfigFile.Style.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    public func run() throws {
        let run = try program.program(library: lib)
        stderrLine("profiling: \(run.command.joined(separator: " "))")
        let histogram = try Profiler.profile(run)
        let suggestion = try SizeClassOptimizer(maxClasses: maxClasses, maxWaste: maxWaste / 100).suggest(for: histogram)
        let builtIn = WasteModel.evaluate(.builtIn, over: histogram)
        print(ProfileReport.text(histogram: histogram, builtIn: builtIn, suggestion: suggestion))
        let header = SizeClassConfigFile.header(command: commandLineText(), date: isoNow(), suggestion: suggestion, builtIn: builtIn)
        let text = try SizeClassConfigFile.render(suggestion.layout, style: SizeClassConfigFile.Style(rawValue: style)!, header: header)
        let url = URL(fileURLWithPath: output)
        do { try text.write(to: url, atomically: true, encoding: .utf8) } catch {
            throw LabError.io("cannot write \(url.path): \(error.localizedDescription)")
        }
        print("\nWrote \(url.path): run with SWIFTMALLOC_CONFIG=\(url.path), or compare with `malloc-lab tune --config \(output) -- \(program.command.joined(separator: " "))`")
        if !suggestion.meetsWasteLimit { throw ExitCode(3) }
    }
}
