// The configuration file (SWIFTMALLOC_CONFIG=PATH): a small subset of TOML,
// read and parsed while the heap is being built, before anything has been
// allocated. So the parser is part of the core and follows its rules: it
// reads bytes through a pointer (the file is read with open/read into a
// scratch mapping), keeps what it finds in the Configuration it is given and
// in a caller's array of ClassSpec, and writes its one message into a
// TextBuffer. No String, no array, no allocation. docs/tuning.md describes
// the format; Sources/SwiftMallocCore/defaults.toml is the built-in
// configuration written in it.
//
// The subset: comments, blank lines, the tables [config] and [[class]],
// `key = value` with bare keys, decimal integers (with `_` between digits),
// basic strings without escapes other than \" and \\, and arrays of
// integers (`classes = [...]`, over several lines, trailing comma allowed).
// Anything else is a problem, reported with its line.
import SwiftMallocShims

/// The outcome of parsing a configuration file.
enum ConfigFileResult: Equatable {
    /// The file is good. `classCount`: how many classes it gave (nil: none,
    /// the built-in table stays).
    case parsed(classCount: Int?)
    /// The problem on `line`; its text is in the message buffer.
    case problem(line: Int)
}

struct ConfigFileParser {
    private let text: UnsafePointer<UInt8>
    private let end: Int
    private var position = 0
    private var line = 1
    private var message: TextBuffer
    private var problemLine = 0

    private enum Table { case top, config, sizeClass }
    private var table = Table.top
    /// The keys of [config] already set (one bit per `Knob`, bit 31 for
    /// `frontend`), and whether
    /// [config] was opened: a key or a table given twice is a problem.
    private var knobsSet: UInt32 = 0
    private var configOpened = false
    /// Keys set in the current [[class]] (bit 0 size, 1 pages, 2 batch_size).
    private var classKeysSet: UInt32 = 0
    private var classHeaderLine = 0

    private let classes: UnsafeMutablePointer<ClassSpec>
    private var classCount = 0
    private var classesGiven = false
    /// Where the classes were first given.
    private var classesLine = 0
    private var usedTables = false
    private var usedShorthand = false

    /// The classes the parser can hold: one more than a table may have, so
    /// that "too many" is reported at the class that is one too many.
    static let classCapacity = SizeClassTable.maxClasses

    /// Parses `count` bytes at `text` into `config` (the knobs the file sets)
    /// and `classes` (room for `classCapacity`); the problem, if any, goes
    /// into `message` (without the path and line).
    static func parse(_ text: UnsafePointer<UInt8>, count: Int, into config: inout Configuration,
                      classes: UnsafeMutablePointer<ClassSpec>, message: inout TextBuffer) -> ConfigFileResult {
        var parser = ConfigFileParser(text: text, end: count, message: message, classes: classes)
        let ok = parser.parseFile(&config)
        message = parser.message
        if !ok { return .problem(line: parser.problemLine) }
        return .parsed(classCount: parser.classesGiven ? parser.classCount : nil)
    }

    private init(text: UnsafePointer<UInt8>, end: Int, message: TextBuffer, classes: UnsafeMutablePointer<ClassSpec>) {
        self.text = text
        self.end = end
        self.message = message
        self.classes = classes
    }

    // MARK: the file

    private mutating func parseFile(_ config: inout Configuration) -> Bool {
        while true {
            skipSpaces()
            guard position < end else { break }
            let byte = text[position]
            if byte == ASCII.hash || byte == ASCII.newline || byte == ASCII.carriageReturn {
                guard endOfLine() else { return false }
            } else if byte == ASCII.leftBracket {
                guard tableHeader(), endOfLine() else { return false }
            } else if isKeyByte(byte) {
                guard keyValue(&config), endOfLine() else { return false }
            } else {
                return fail("expected a key, a [table] header or a comment")
            }
        }
        guard finishClass() else { return false }
        guard classesGiven else { return true }
        if let problem = SizeClassTable.validate(classes, count: classCount, spanPageSize: config.spanPageSize) {
            let at = problem.index < classCount ? problem.line(in: classes[problem.index]) : classesLine
            return fail(problem.message, line: at)
        }
        return true
    }

    /// `[config]` or `[[class]]`.
    private mutating func tableHeader() -> Bool {
        let headerLine = line
        position += 1
        let isArray = position < end && text[position] == ASCII.leftBracket
        if isArray { position += 1 }
        skipSpaces()
        let nameStart = position
        while position < end && isKeyByte(text[position]) { position += 1 }
        let name = nameStart..<position
        skipSpaces()
        guard expect(ASCII.rightBracket), !isArray || expect(ASCII.rightBracket) else {
            return fail("malformed table header")
        }
        guard finishClass() else { return false }
        if isArray {
            guard matches(name, "class") else { return failNaming("unknown array of tables [[", name, "]] (known: [[class]])") }
            if usedShorthand { return fail("size classes given twice: `classes = [...]` and [[class]] tables") }
            guard classCount < ConfigFileParser.classCapacity else {
                return fail("too many size classes (at most 127)")
            }
            usedTables = true
            if !classesGiven { classesLine = headerLine }
            classesGiven = true
            classes[classCount] = ClassSpec(line: headerLine)
            classCount += 1
            classKeysSet = 0
            classHeaderLine = headerLine
            table = .sizeClass
            return true
        }
        guard matches(name, "config") else { return failNaming("unknown table [", name, "] (known: [config], [[class]])") }
        if configOpened { return fail("table [config] defined twice") }
        configOpened = true
        table = .config
        return true
    }

    /// Ends the current [[class]] table (it must have given a size).
    private mutating func finishClass() -> Bool {
        guard table == .sizeClass else { return true }
        table = .top
        if classKeysSet & 1 == 0 { return fail("[[class]] without a size", line: classHeaderLine) }
        return true
    }

    /// `key = value`, in the current table.
    private mutating func keyValue(_ config: inout Configuration) -> Bool {
        let keyStart = position
        while position < end && isKeyByte(text[position]) { position += 1 }
        let key = keyStart..<position
        skipSpaces()
        guard expect(ASCII.equals) else { return fail("expected `=` after the key") }
        skipSpaces()
        if matches(key, "classes") && table != .sizeClass { return classList() }
        switch table {
        case .top:
            return failNaming("key `", key, "` outside a table (the settings go under [config])")
        case .config:
            let bit: UInt32
            let knob = Knob.named(self, key)
            if let knob { bit = 1 << knob.rawValue } else if matches(key, "frontend") { bit = 1 << 31 }
            else { return failNaming("unknown key `", key, "` in [config]") }
            if knobsSet & bit != 0 { return failNaming("key `", key, "` set twice") }
            knobsSet |= bit
            if let knob { return knob.set(&config, from: &self) }
            return frontEnd(&config)
        case .sizeClass:
            let bit: UInt32
            if matches(key, "size") { bit = 1 } else if matches(key, "pages") { bit = 2 }
            else if matches(key, "batch_size") { bit = 4 }
            else { return failNaming("unknown key `", key, "` in [[class]] (known: size, pages, batch_size)") }
            if classKeysSet & bit != 0 { return failNaming("key `", key, "` set twice") }
            classKeysSet |= bit
            let valueLine = line
            guard let value = integer() else { return false }
            let spec = classes + (classCount - 1)
            if bit == 1 {
                spec.pointee.size = value
                spec.pointee.line = valueLine
            } else if bit == 2 {
                spec.pointee.pages = value
                spec.pointee.pagesLine = valueLine
            } else {
                spec.pointee.batchSize = value
                spec.pointee.batchSizeLine = valueLine
            }
            return true
        }
    }

    /// `classes = [8, 16, ...]`: the shorthand, sizes only.
    private mutating func classList() -> Bool {
        if usedTables || usedShorthand { return fail("size classes given twice: `classes = [...]` and [[class]] tables") }
        usedShorthand = true
        classesGiven = true
        let openLine = line
        classesLine = line
        guard expect(ASCII.leftBracket) else { return fail("`classes` must be an array of integers: [8, 16, ...]") }
        while true {
            guard skipBlankAndComments() else { return fail("unterminated array (no `]`)", line: openLine) }
            if expect(ASCII.rightBracket) { return true }
            guard classCount < ConfigFileParser.classCapacity else { return fail("too many size classes (at most 127)") }
            let elementLine = line
            guard let size = integer() else { return false }
            classes[classCount] = ClassSpec(size: size, line: elementLine)
            classCount += 1
            guard skipBlankAndComments() else { return fail("unterminated array (no `]`)", line: openLine) }
            if expect(ASCII.rightBracket) { return true }
            guard expect(ASCII.comma) else { return fail("expected `,` or `]` in the array") }
        }
    }

    /// `frontend = "..."`.
    private mutating func frontEnd(_ config: inout Configuration) -> Bool {
        guard let range = string() else { return false }
        var raw: UInt8 = 0
        while let kind = FrontEndKind(rawValue: raw) {
            if matches(range, kind.name) {
                config.requestedFrontEnd = kind
                return true
            }
            raw += 1
        }
        return fail("frontend must be one of \"percpu\", \"thread\", \"arenas\", \"global\"")
    }

    // MARK: values

    /// A decimal integer, at least 0.
    mutating func integer() -> Int? {
        guard position < end else { failed("expected an integer"); return nil }
        var byte = text[position]
        if byte == ASCII.minus { failed("negative values are not allowed"); return nil }
        if byte == ASCII.plus { position += 1; byte = position < end ? text[position] : 0 }
        guard isDigit(byte) else {
            failed(byte == ASCII.quote ? "expected an integer, not a string" : "expected an integer")
            return nil
        }
        if byte == ASCII.zero && position + 1 < end && isDigit(text[position + 1]) {
            failed(ConfigFileParser.plainIntegers)
            return nil
        }
        var value = 0
        var previousWasDigit = false
        while position < end {
            let b = text[position]
            if isDigit(b) {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int(b - ASCII.zero))
                if o1 || o2 { failed("integer too large"); return nil }
                value = a
                previousWasDigit = true
            } else if b == ASCII.underscore {
                guard previousWasDigit, position + 1 < end, isDigit(text[position + 1]) else {
                    failed("`_` in an integer must stand between digits")
                    return nil
                }
                previousWasDigit = false
            } else {
                break
            }
            position += 1
        }
        if position < end && (text[position] == ASCII.dot || isLetter(text[position])) {
            failed(ConfigFileParser.plainIntegers)
            return nil
        }
        return value
    }

    private static let plainIntegers: StaticString =
        "only plain decimal integers are supported (no leading zeros, prefixes, fractions, exponents or suffixes)"

    /// A basic string ("..."): the range of its bytes (escapes are `\"` and
    /// `\\`, which only the names' comparison would see, and no name has).
    mutating func string() -> Range<Int>? {
        guard position < end, text[position] == ASCII.quote else {
            failed(position < end && text[position] == ASCII.apostrophe
                   ? "only basic strings (\"...\") are supported" : "expected a string (\"...\")")
            return nil
        }
        position += 1
        let start = position
        while position < end && text[position] != ASCII.quote {
            let b = text[position]
            if b == ASCII.newline { break }
            if b == ASCII.backslash {
                let next = position + 1 < end ? text[position + 1] : 0
                guard next == ASCII.quote || next == ASCII.backslash else {
                    failed("unsupported escape in a string (only \\\" and \\\\)")
                    return nil
                }
                position += 1
            }
            position += 1
        }
        guard position < end && text[position] == ASCII.quote else { failed("unterminated string"); return nil }
        let range = start..<position
        position += 1
        return range
    }

    // MARK: reading bytes

    private mutating func skipSpaces() {
        while position < end && (text[position] == ASCII.space || text[position] == ASCII.tab) { position += 1 }
    }

    /// After a header or value: spaces, an optional comment, then the end of
    /// the line or of the file.
    private mutating func endOfLine() -> Bool {
        skipSpaces()
        guard position < end else { return true }
        if text[position] == ASCII.hash {
            while position < end && text[position] != ASCII.newline { position += 1 }
            guard position < end else { return true }
        }
        if text[position] == ASCII.carriageReturn && position + 1 < end && text[position + 1] == ASCII.newline {
            position += 1
        }
        guard text[position] == ASCII.newline else { return fail("unexpected text at the end of the line") }
        position += 1
        line += 1
        return true
    }

    /// Inside an array: spaces, newlines and comments. False at the end of the file.
    private mutating func skipBlankAndComments() -> Bool {
        while position < end {
            let b = text[position]
            if b == ASCII.space || b == ASCII.tab || b == ASCII.carriageReturn {
                position += 1
            } else if b == ASCII.newline {
                position += 1
                line += 1
            } else if b == ASCII.hash {
                while position < end && text[position] != ASCII.newline { position += 1 }
            } else {
                return true
            }
        }
        return false
    }

    private mutating func expect(_ byte: UInt8) -> Bool {
        guard position < end && text[position] == byte else { return false }
        position += 1
        return true
    }

    func matches(_ range: Range<Int>, _ name: StaticString) -> Bool {
        guard range.count == name.utf8CodeUnitCount else { return false }
        let bytes = name.utf8Start
        var i = 0
        while i < range.count {
            if text[range.lowerBound + i] != bytes[i] { return false }
            i += 1
        }
        return true
    }

    private func isKeyByte(_ b: UInt8) -> Bool { isDigit(b) || isLetter(b) || b == ASCII.underscore || b == ASCII.minus }
    private func isDigit(_ b: UInt8) -> Bool { b >= ASCII.zero && b <= ASCII.zero + 9 }
    private func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= 97 && (b | 0x20) <= 122 }

    // MARK: problems

    /// Records the problem (the first one only) at the current line.
    mutating func failed(_ problem: StaticString) {
        _ = fail(problem)
    }

    @discardableResult
    private mutating func fail(_ problem: StaticString, line at: Int? = nil) -> Bool {
        if problemLine == 0 {
            problemLine = at ?? line
            message.append(problem)
        }
        return false
    }

    /// A problem naming a key or table from the file: `before`, the name, `after`.
    private mutating func failNaming(_ before: StaticString, _ name: Range<Int>, _ after: StaticString) -> Bool {
        if problemLine == 0 {
            problemLine = line
            message.append(before)
            for i in name { message.appendByte(text[i]) }
            message.append(after)
        }
        return false
    }

    /// A value outside its range: "`key` must be within low...high".
    mutating func failRange(_ key: StaticString, _ range: ClosedRange<Int>) -> Bool {
        if problemLine == 0 {
            problemLine = line
            message.append(key)
            message.append(" must be within ")
            message.append(UInt64(range.lowerBound))
            message.append("...")
            message.append(UInt64(range.upperBound))
        }
        return false
    }
}

/// The integer settings of [config] (`frontend`, a string, is the parser's
/// `frontEnd`).
extension Knob {
    fileprivate static func named(_ parser: ConfigFileParser, _ key: Range<Int>) -> Knob? {
        var found: Knob? = nil
        Knob.forEach { knob in
            if found == nil, let name = knob.fileKey, parser.matches(key, name) { found = knob }
        }
        return found
    }

    /// Reads the knob's value and stores it in `config`.
    fileprivate func set(_ config: inout Configuration, from parser: inout ConfigFileParser) -> Bool {
        guard let value = parser.integer() else { return false }
        guard range.contains(value) else { return parser.failRange(fileKey.unsafelyUnwrapped, range) }
        if self == .pageSize && value & (value - 1) != 0 {
            parser.failed("page_size must be a power of two")
            return false
        }
        store(value, in: &config)
        return true
    }
}

/// The bytes the parser looks for.
enum ASCII {
    static let tab: UInt8 = 9, newline: UInt8 = 10, carriageReturn: UInt8 = 13, space: UInt8 = 32
    static let quote: UInt8 = 34, hash: UInt8 = 35, apostrophe: UInt8 = 39, plus: UInt8 = 43
    static let comma: UInt8 = 44, minus: UInt8 = 45, dot: UInt8 = 46, zero: UInt8 = 48, equals: UInt8 = 61
    static let leftBracket: UInt8 = 91, backslash: UInt8 = 92, rightBracket: UInt8 = 93, underscore: UInt8 = 95
}
