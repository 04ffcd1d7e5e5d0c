// A strict, bounded JSON parser and a compact serializer over bytes (RFC 8259).
//
// Strict means: exactly one JSON text, optionally surrounded by the four RFC 8259 whitespace
// characters and nothing else; UTF-8 only (no BOM, no overlong forms, no encoded surrogates);
// duplicate object member names are an error (RFC 8259 §4 leaves them undefined, and a parser
// differential with the C library that later reads the same text is how JOSE checks get
// bypassed); strings must not contain raw control characters; `\u` escapes must pair
// surrogates. Bounded means: the input size is checked before the first byte is looked at and
// the nesting depth is limited while parsing; the parser is iterative, so the depth limit
// bounds memory, not the machine stack.

/// A parsed JSON value. Numbers keep their literal text, objects keep their member order.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// The number exactly as written (RFC 8259 §6 grammar); see ``int64Value``.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in input order. Parsed objects never hold two members with the same name.
    case object([(String, JSONValue)])
}

// MARK: - limits and entry points

extension JSONValue {
    /// Default nesting limit for ``parse(_:maxDepth:maxSize:)``.
    public static let defaultMaxDepth = 32
    /// Default input size limit for ``parse(_:maxDepth:maxSize:)``: 1 MiB.
    public static let defaultMaxSize = 1 << 20

    /// Parses one JSON text.
    ///
    /// - Parameters:
    ///   - bytes: UTF-8 JSON text.
    ///   - maxDepth: the deepest nesting of arrays and objects allowed; the top-level container
    ///     counts as depth 1.
    ///   - maxSize: the largest input accepted; checked before parsing.
    /// - Throws: `.tooBig` when `bytes` exceeds `maxSize`, `.malformed` for anything that is not
    ///   a single well-formed JSON text within `maxDepth`.
    public static func parse(
        _ bytes: [UInt8],
        maxDepth: Int = defaultMaxDepth,
        maxSize: Int = defaultMaxSize
    ) throws(TDNSError) -> JSONValue {
        guard bytes.count <= maxSize else {
            throw .tooBig("JSON text of \(bytes.count) bytes exceeds the limit of \(maxSize)")
        }
        return try bytes.withUnsafeBufferPointer { (buf) throws(TDNSError) -> JSONValue in
            var parser = JSONParser(input: buf, maxDepth: max(0, maxDepth))
            return try parser.parseDocument()
        }
    }

    /// Parses one JSON text held in a slice; see ``parse(_:maxDepth:maxSize:)``.
    public static func parse(
        _ bytes: ArraySlice<UInt8>,
        maxDepth: Int = defaultMaxDepth,
        maxSize: Int = defaultMaxSize
    ) throws(TDNSError) -> JSONValue {
        guard bytes.count <= maxSize else {
            throw .tooBig("JSON text of \(bytes.count) bytes exceeds the limit of \(maxSize)")
        }
        return try bytes.withUnsafeBufferPointer { (buf) throws(TDNSError) -> JSONValue in
            var parser = JSONParser(input: buf, maxDepth: max(0, maxDepth))
            return try parser.parseDocument()
        }
    }
}

// MARK: - accessors

extension JSONValue {
    /// The member named `key` of an object (names compared byte for byte), else nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for (name, value) in members where name.utf8.elementsEqual(key.utf8) {
            return value
        }
        return nil
    }

    /// The element at `index` of an array, else nil (also when out of range).
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// Whether an object has a member named `key`.
    public func hasMember(_ key: String) -> Bool { self[key] != nil }

    /// The member names of an object in order, else nil.
    public var keys: [String]? {
        guard case .object(let members) = self else { return nil }
        return members.map { $0.0 }
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [(String, JSONValue)]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The literal text of a number, else nil.
    public var numberText: String? {
        if case .number(let n) = self { return n }
        return nil
    }

    /// The value of a number written as an integer (no fraction, no exponent) that fits in
    /// `Int64`; nil otherwise. `1.0`, `1e3` and `9223372036854775808` give nil: nothing is
    /// rounded or truncated.
    public var int64Value: Int64? {
        guard case .number(let text) = self else { return nil }
        return parseExactInteger(text, as: Int64.self)
    }

    /// As ``int64Value`` for `UInt64`; negative numbers (also `-0`) give nil.
    public var uint64Value: UInt64? {
        guard case .number(let text) = self, text.utf8.first != UInt8(ascii: "-") else { return nil }
        return parseExactInteger(text, as: UInt64.self)
    }

    /// As ``int64Value`` for `Int`.
    public var intValue: Int? {
        guard let v = int64Value else { return nil }
        return Int(exactly: v)
    }

    /// The number as the nearest `Double`; nil for non-numbers and for literals out of range.
    public var doubleValue: Double? {
        guard case .number(let text) = self, let d = Double(text), d.isFinite else { return nil }
        return d
    }
}

private func parseExactInteger<T: FixedWidthInteger>(_ text: String, as: T.Type) -> T? {
    // Only the integer form of the RFC 8259 grammar; the parser guarantees the rest of it.
    guard !text.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) else {
        return nil
    }
    return T(text, radix: 10)
}

// MARK: - equality

extension JSONValue: Equatable {
    /// Structural equality: same kinds, numbers with the same literal text, strings and member
    /// names with the same UTF-8 bytes, objects with the same members in the same order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (x, y) in zip(a, b) where !(x.0.utf8.elementsEqual(y.0.utf8) && x.1 == y.1) {
                return false
            }
            return true
        default: return false
        }
    }
}

// MARK: - serializer

extension JSONValue {
    /// Compact JSON (no whitespace), members in their stored order, numbers as their literal
    /// text. Strings escape `"`, `\` and control characters (`\b \f \n \r \t`, others as
    /// `\u00xx`), as Go's `encoding/json` does; with `escapeHTML` also `<`, `>`, `&`, U+2028 and
    /// U+2029 as `\u003c`… (Go's default `json.Marshal`). Everything else is written as UTF-8.
    ///
    /// A `.number` is written verbatim: build numbers with ``integer(_:)`` or from parsed text.
    public func serialized(escapeHTML: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        JSONValue.write(self, into: &out, escapeHTML: escapeHTML)
        return out
    }

    /// ``serialized(escapeHTML:)`` as a string.
    public func serializedString(escapeHTML: Bool = false) -> String {
        String(decoding: serialized(escapeHTML: escapeHTML), as: UTF8.self)
    }

    /// A number value for an integer.
    public static func integer(_ value: some BinaryInteger) -> JSONValue {
        .number(String(value))
    }

    private static func write(_ value: JSONValue, into out: inout [UInt8], escapeHTML: Bool) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let text): out.append(contentsOf: text.utf8)
        case .string(let s): writeString(s, into: &out, escapeHTML: escapeHTML)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, e) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(e, into: &out, escapeHTML: escapeHTML)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, (name, v)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(name, into: &out, escapeHTML: escapeHTML)
                out.append(UInt8(ascii: ":"))
                write(v, into: &out, escapeHTML: escapeHTML)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ s: String, into out: inout [UInt8], escapeHTML: Bool) {
        out.append(UInt8(ascii: "\""))
        var bytes = s.utf8.makeIterator()
        while let c = bytes.next() {
            switch c {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 0x0F)])
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"):
                if escapeHTML {
                    out.append(contentsOf: Array("\\u00".utf8))
                    out.append(hex[Int(c >> 4)])
                    out.append(hex[Int(c & 0x0F)])
                } else {
                    out.append(c)
                }
            case 0xE2:
                // U+2028 / U+2029 are E2 80 A8 / E2 80 A9.
                guard let c1 = bytes.next() else { out.append(c); break }
                guard let c2 = bytes.next() else { out.append(contentsOf: [c, c1]); break }
                if escapeHTML, c1 == 0x80, c2 == 0xA8 || c2 == 0xA9 {
                    out.append(contentsOf: Array((c2 == 0xA8 ? "\\u2028" : "\\u2029").utf8))
                } else {
                    out.append(contentsOf: [c, c1, c2])
                }
            default:
                out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - parser

/// Iterative recursive-descent parser over a byte buffer. Containers under construction live on
/// an explicit stack bounded by `maxDepth`.
private struct JSONParser {
    let input: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var pos = 0

    /// Open containers are reference types so that appending to them never copies the
    /// elements gathered so far.
    private final class ArrayFrame {
        var elements: [JSONValue] = []
    }

    private final class ObjectFrame {
        var members: [(String, JSONValue)] = []
        /// Member names as UTF-8 bytes: Swift `String` equality is canonical equivalence, but
        /// duplicates are judged the way a C JSON library compares names, byte for byte.
        var names: Set<[UInt8]> = []
        var pendingName = ""
    }

    private enum Frame {
        case array(ArrayFrame)
        case object(ObjectFrame)
    }

    init(input: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.input = input
        self.maxDepth = maxDepth
    }

    mutating func parseDocument() throws(TDNSError) -> JSONValue {
        if input.count >= 3, input[0] == 0xEF, input[1] == 0xBB, input[2] == 0xBF {
            throw .malformed("JSON: byte order mark")
        }
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard pos == input.count else { throw .malformed("JSON: trailing data at offset \(pos)") }
        return value
    }

    private mutating func skipWhitespace() {
        while pos < input.count {
            switch input[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private func fail(_ what: String) -> TDNSError {
        .malformed("JSON: \(what) at offset \(pos)")
    }

    private mutating func parseValue() throws(TDNSError) -> JSONValue {
        var stack: [Frame] = []
        while true {
            // Parse the start of one value; a non-empty container pushes a frame and the loop
            // continues with its first element.
            skipWhitespace()
            guard pos < input.count else { throw fail("unexpected end of input") }
            var completed: JSONValue
            switch input[pos] {
            case UInt8(ascii: "{"):
                guard stack.count < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
                pos += 1
                skipWhitespace()
                if pos < input.count, input[pos] == UInt8(ascii: "}") {
                    pos += 1
                    completed = .object([])
                } else {
                    let frame = ObjectFrame()
                    let name = try parseMemberName()
                    frame.names.insert(name.bytes)
                    frame.pendingName = name.string
                    stack.append(.object(frame))
                    continue
                }
            case UInt8(ascii: "["):
                guard stack.count < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
                pos += 1
                skipWhitespace()
                if pos < input.count, input[pos] == UInt8(ascii: "]") {
                    pos += 1
                    completed = .array([])
                } else {
                    stack.append(.array(ArrayFrame()))
                    continue
                }
            case UInt8(ascii: "\""):
                completed = .string(try parseString().string)
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                completed = .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                completed = .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                completed = .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                completed = .number(try parseNumber())
            default:
                throw fail("unexpected character")
            }

            // Attach the completed value to the innermost open container, closing every
            // container that ends right after it.
            attach: while true {
                guard let top = stack.last else { return completed }
                skipWhitespace()
                guard pos < input.count else { throw fail("unexpected end of input") }
                let c = input[pos]
                switch top {
                case .array(let frame):
                    frame.elements.append(completed)
                    if c == UInt8(ascii: ",") {
                        pos += 1
                        break attach
                    } else if c == UInt8(ascii: "]") {
                        pos += 1
                        completed = .array(frame.elements)
                        frame.elements = []
                        stack.removeLast()
                    } else {
                        throw fail("expected ',' or ']'")
                    }
                case .object(let frame):
                    frame.members.append((frame.pendingName, completed))
                    if c == UInt8(ascii: ",") {
                        pos += 1
                        skipWhitespace()
                        let name = try parseMemberName()
                        guard frame.names.insert(name.bytes).inserted else {
                            throw .malformed("JSON: duplicate member name at offset \(pos)")
                        }
                        frame.pendingName = name.string
                        break attach
                    } else if c == UInt8(ascii: "}") {
                        pos += 1
                        completed = .object(frame.members)
                        frame.members = []
                        stack.removeLast()
                    } else {
                        throw fail("expected ',' or '}'")
                    }
                }
            }
        }
    }

    /// A member name and the ':' after it.
    private mutating func parseMemberName() throws(TDNSError) -> (string: String, bytes: [UInt8]) {
        guard pos < input.count, input[pos] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
        let name = try parseString()
        skipWhitespace()
        guard pos < input.count, input[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
        pos += 1
        return name
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(TDNSError) {
        let count = literal.utf8CodeUnitCount
        guard input.count - pos >= count else { throw fail("invalid literal") }
        let lit = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        for i in 0..<count where input[pos + i] != lit[i] {
            throw fail("invalid literal")
        }
        pos += count
    }

    private mutating func parseNumber() throws(TDNSError) -> String {
        let start = pos
        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        if input[pos] == UInt8(ascii: "-") { pos += 1 }
        guard pos < input.count, isDigit(input[pos]) else { throw fail("invalid number") }
        if input[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < input.count, isDigit(input[pos]) { throw fail("leading zero in number") }
        } else {
            while pos < input.count, isDigit(input[pos]) { pos += 1 }
        }
        if pos < input.count, input[pos] == UInt8(ascii: ".") {
            pos += 1
            guard pos < input.count, isDigit(input[pos]) else { throw fail("invalid fraction") }
            while pos < input.count, isDigit(input[pos]) { pos += 1 }
        }
        if pos < input.count, input[pos] == UInt8(ascii: "e") || input[pos] == UInt8(ascii: "E") {
            pos += 1
            if pos < input.count, input[pos] == UInt8(ascii: "+") || input[pos] == UInt8(ascii: "-") { pos += 1 }
            guard pos < input.count, isDigit(input[pos]) else { throw fail("invalid exponent") }
            while pos < input.count, isDigit(input[pos]) { pos += 1 }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: input[start..<pos]), as: UTF8.self)
    }

    /// A string starting at the opening quote; returns the unescaped text and its UTF-8 bytes.
    private mutating func parseString() throws(TDNSError) -> (string: String, bytes: [UInt8]) {
        pos += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard pos < input.count else { throw fail("unterminated string") }
            let c = input[pos]
            switch c {
            case UInt8(ascii: "\""):
                pos += 1
                // `out` is valid UTF-8 by construction, so decoding repairs nothing.
                return (String(decoding: out, as: UTF8.self), out)
            case UInt8(ascii: "\\"):
                pos += 1
                guard pos < input.count else { throw fail("unterminated escape") }
                let e = input[pos]
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = UInt32(try parseHex4())
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        guard input.count - pos >= 6, input[pos] == UInt8(ascii: "\\"), input[pos + 1] == UInt8(ascii: "u") else {
                            throw fail("lone high surrogate")
                        }
                        pos += 2
                        let low = UInt32(try parseHex4())
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw fail("high surrogate without low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw fail("lone low surrogate")
                    }
                    appendUTF8(scalar, to: &out)
                default:
                    throw fail("invalid escape")
                }
            case 0x00..<0x20:
                throw fail("control character in string")
            case 0x20..<0x80:
                out.append(c)
                pos += 1
            default:
                let n = try validUTF8SequenceLength(at: pos)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: input[pos..<(pos + n)]))
                pos += n
            }
        }
    }

    private mutating func parseHex4() throws(TDNSError) -> UInt16 {
        guard input.count - pos >= 4 else { throw fail("short \\u escape") }
        var v: UInt16 = 0
        for _ in 0..<4 {
            let c = input[pos]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | UInt16(d)
            pos += 1
        }
        return v
    }

    /// Length of the well-formed UTF-8 sequence (Unicode Table 3-7) that starts with a non-ASCII
    /// byte at `at`; throws for anything else.
    private func validUTF8SequenceLength(at i: Int) throws(TDNSError) -> Int {
        let b0 = input[i]
        func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
            i + k < input.count && input[i + k] >= lo && input[i + k] <= hi
        }
        switch b0 {
        case 0xC2...0xDF:
            if cont(1) { return 2 }
        case 0xE0:
            if cont(1, 0xA0, 0xBF), cont(2) { return 3 }
        case 0xE1...0xEC, 0xEE...0xEF:
            if cont(1), cont(2) { return 3 }
        case 0xED:
            if cont(1, 0x80, 0x9F), cont(2) { return 3 }  // no UTF-16 surrogates
        case 0xF0:
            if cont(1, 0x90, 0xBF), cont(2), cont(3) { return 4 }
        case 0xF1...0xF3:
            if cont(1), cont(2), cont(3) { return 4 }
        case 0xF4:
            if cont(1, 0x80, 0x8F), cont(2), cont(3) { return 4 }  // up to U+10FFFF
        default:
            break
        }
        throw .malformed("JSON: invalid UTF-8 at offset \(i)")
    }
}

private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        out.append(UInt8(truncatingIfNeeded: scalar))
    case 0x80..<0x800:
        out.append(UInt8(truncatingIfNeeded: 0xC0 | scalar >> 6))
        out.append(UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F))
    case 0x800..<0x10000:
        out.append(UInt8(truncatingIfNeeded: 0xE0 | scalar >> 12))
        out.append(UInt8(truncatingIfNeeded: 0x80 | scalar >> 6 & 0x3F))
        out.append(UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F))
    default:
        out.append(UInt8(truncatingIfNeeded: 0xF0 | scalar >> 18))
        out.append(UInt8(truncatingIfNeeded: 0x80 | scalar >> 12 & 0x3F))
        out.append(UInt8(truncatingIfNeeded: 0x80 | scalar >> 6 & 0x3F))
        out.append(UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F))
    }
}
