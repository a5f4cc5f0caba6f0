// malloc-lab tune: run a program with the built-in size classes and with a
// configuration file, and compare waste, peak RSS and time.
import ArgumentParser
import Foundation
import MallocLabCore

public struct Tune: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Compare a program under the built-in size classes and under a configuration file.",
        discussion: """
            Runs the program --runs times with each (alternating; histogram off) for the median wall time and the \
            median peak RSS (the stats file's peak_resident_bytes), then once each with SWIFTMALLOC_HISTOGRAM on for \
            the internal waste (1 - requested / handed-out bytes). Example: malloc-lab tune --config py.toml -- python3 script.py
            """)

    @Option(name: .long, help: ArgumentHelp("The SWIFTMALLOC_CONFIG file to compare with the built-in classes.", valueName: "file"))
    public var config: String

    @Option(name: .long, help: "Timed runs per layout.")
    public var runs: Int = 5

    @OptionGroup public var lib: LibraryOptions

    @OptionGroup public var program: ProgramArguments

    public init() {}

    public func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
    }

    public func run() throws {
        let program = try self.program.program(library: lib)
        let machine = Tuner.machineFacts(library: program.library)
        let progress = ProgressLine(total: 2 * runs + 2)
        var done = 0
        let result = try Tuner.compare(program, config: URL(fileURLWithPath: config), runs: runs) { step in
            progress.update(done: done, failed: 0, current: step)
            done += 1
        }
        progress.finish("\(done) runs")
        print("\(program.command.joined(separator: " ")) · \(runs) timed run\(runs == 1 ? "" : "s") per layout + 1 with the histogram")
        print(result.table())
        print("\nMachine: \(machine.cpuModel), \(machine.logicalCpus) CPUs, \(machine.kernel), \(machine.glibc)")
        let mmCid = machine.mmCidAvailable.map { $0 ? ", mm_cid available" : ", no mm_cid" } ?? ""
        print("rseq: \(machine.rseqNote)\(mmCid)")
        print("Library: \(machine.libraryPath)\(machine.gitRevision.map { " (\($0))" } ?? "")"
              + ", load average \(machine.loadAverageStart.map { String(format: "%.2f", $0) } ?? "?") → \(MachineProbe.loadAverage().map { String(format: "%.2f", $0) } ?? "?")")
    }
}
