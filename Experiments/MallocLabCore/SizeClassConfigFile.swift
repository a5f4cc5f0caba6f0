// Size-class layouts as SWIFTMALLOC_CONFIG files (TOML), written and read
// with TOMLKit.
import Foundation
import TOMLKit

public enum SizeClassConfigFile {
    /// How the classes are written: one `[[class]]` table each (`size`; the
    /// allocator computes pages and batch size), or the shorthand
    /// `classes = [...]`.
    public enum Style: String, CaseIterable, Sendable {
        case tables
        case shorthand
    }

    struct ClassEntry: Codable {
        var size: Int
    }

    struct TablesForm: Codable {
        var `class`: [ClassEntry]
    }

    struct ShorthandForm: Codable {
        var classes: [Int]
    }

    /// The file's text: `header` lines as TOML comments, then the classes.
    public static func render(_ layout: SizeClassLayout, style: Style, header: [String]) throws -> String {
        let encoder = TOMLEncoder()
        let body: String
        switch style {
        case .tables: body = try encoder.encode(TablesForm(class: layout.sizes.map { ClassEntry(size: $0) }))
        case .shorthand: body = try encoder.encode(ShorthandForm(classes: layout.sizes))
        }
        let comments = header.flatMap { $0.split(separator: "\n", omittingEmptySubsequences: false) }.map { "# \($0)" }
        return (comments + [""]).joined(separator: "\n") + body + (body.hasSuffix("\n") ? "" : "\n")
    }

    /// The comment header `malloc-lab profile` writes: how the file was made.
    public static func header(command: String, date: String, suggestion: SizeClassSuggestion,
                              builtIn: WasteBreakdown) -> [String] {
        let b = suggestion.breakdown
        var lines = [
            "SwiftMalloc size classes suggested by malloc-lab profile (use: SWIFTMALLOC_CONFIG=this-file).",
            "Command: \(command)",
            "Date: \(date)",
            "Internal waste, estimated from the histogram: built-in classes \(percent(builtIn.wasteFraction)) (\(builtIn.classes.count) classes used of \(SizeClassLayout.builtIn.sizes.count)), these \(percent(b.wasteFraction)) (\(suggestion.layout.sizes.count) classes).",
            "Limits: at most \(suggestion.maxClasses) classes, at most \(percent(suggestion.maxWaste)) waste over alignment per class"
                + (suggestion.meetsWasteLimit ? " (met)." : " (NOT met: no layout with that many classes meets it; this is the least wasteful one)."),
            "Requests above \(suggestion.layout.largest) bytes are large allocations" + WasteModel.largeRule(above: suggestion.layout.largest) + ".",
        ]
        if !suggestion.meetsWasteLimit {
            lines.append("Classes over the limit: " + suggestion.classesOverLimit.map { "\($0.size) (\(percent($0.wasteOverAlignment)))" }.joined(separator: ", "))
        }
        return lines
    }

    /// The class sizes of a configuration file in either form (the
    /// shorthand at the top level or in `[config]`). Throws when the file
    /// is not TOML or names no classes; checks the layout's rules.
    public static func classes(fromTOML text: String, source: String) throws -> SizeClassLayout {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch {
            throw LabError.io("\(source): not valid TOML (\(error))")
        }
        var sizes: [Int]?
        if let tables = table["class"]?.array {
            sizes = try tables.enumerated().map { index, value in
                guard let size = value.table?["size"]?.int else {
                    throw LabError.io("\(source): [[class]] number \(index + 1) has no integer `size`")
                }
                return size
            }
        }
        for shorthand in [table["classes"], table["config"]?.table?["classes"]] {
            guard let shorthand else { continue }
            if sizes != nil { throw LabError.io("\(source): the classes are given twice ([[class]] and `classes`)") }
            guard let array = shorthand.array else { throw LabError.io("\(source): `classes` is not an array") }
            sizes = try array.map { value in
                guard let size = value.int else { throw LabError.io("\(source): `classes` holds a value that is not an integer") }
                return size
            }
        }
        guard let sizes else { throw LabError.io("\(source): no size classes ([[class]] tables or `classes = [...]`)") }
        do { return try SizeClassLayout(sizes: sizes) } catch { throw LabError.io("\(source): \(error)") }
    }

    public static func load(_ url: URL) throws -> SizeClassLayout {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw LabError.io("cannot read \(url.path): \(error.localizedDescription)")
        }
        return try classes(fromTOML: text, source: url.path)
    }

    static func percent(_ fraction: Double) -> String { String(format: "%.2f%%", fraction * 100) }
}
