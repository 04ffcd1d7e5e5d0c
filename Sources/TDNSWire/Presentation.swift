import TDNSCore

// Presentation (zone-file) text helpers shared by the record types (RFC 1035 §5.1, RFC 3597 §5).
// Only the single-line subset is supported: no parentheses, no `$` directives, no comments, and
// the only quoted token is the empty string `""` that CHUNK uses for "no HMAC" (PROTOCOL §2.3).
// Presentation form is for logs, files and debugging; the wire form is authoritative.

// MARK: - small text helpers

/// ASCII-only uppercase (no locale, no Foundation).
func asciiUppercased(_ text: some StringProtocol) -> String {
    String(decoding: text.utf8.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }, as: UTF8.self)
}

/// ASCII lowercase of one byte.
@inline(__always)
func asciiLower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b + 0x20 : b }

/// Parses an unsigned decimal number: one or more ASCII digits (leading zeros allowed, at most
/// 20 digits), no sign, no whitespace; nil on anything else or on overflow of `T`.
func parseDecimal<T: FixedWidthInteger & UnsignedInteger>(_ digits: some Collection<UInt8>) -> T? {
    guard !digits.isEmpty, digits.count <= 20 else { return nil }
    var value: T = 0
    for c in digits {
        guard c >= 0x30, c <= 0x39 else { return nil }
        let (m, o1) = value.multipliedReportingOverflow(by: 10)
        let (s, o2) = m.addingReportingOverflow(T(c - 0x30))
        guard !o1, !o2 else { return nil }
        value = s
    }
    return value
}

func parseDecimal<T: FixedWidthInteger & UnsignedInteger>(_ text: some StringProtocol) -> T? {
    parseDecimal(Array(text.utf8))
}

// MARK: - tokenizer

/// One line of presentation text split into whitespace-separated tokens.
///
/// A backslash escapes the following byte, so `\ ` stays inside its token (RFC 1035 §5.1).
/// One trailing line break is tolerated; any other CR, LF or control character except TAB is
/// `.malformed`.
struct PresentationTokens {
    let bytes: [UInt8]
    let tokens: [Range<Int>]

    /// Texts longer than this are refused before tokenizing (a CHUNK with 65535 bytes of data
    /// prints as ~87 KiB of base64).
    static let maxLength = 200_000

    init(_ text: String) throws(TDNSError) {
        var b = Array(text.utf8)
        guard b.count <= Self.maxLength else { throw .tooBig("presentation text of \(b.count) bytes") }
        if b.last == 0x0A { b.removeLast() }
        if b.last == 0x0D { b.removeLast() }
        var tokens: [Range<Int>] = []
        var i = 0
        var start: Int? = nil
        while i < b.count {
            let c = b[i]
            if c == 0x0A || c == 0x0D || (c < 0x20 && c != 0x09) || c == 0x7F {
                throw .malformed("presentation text: control character 0x\(Hex.encode([c])) at offset \(i)")
            }
            if c == 0x20 || c == 0x09 {
                if let s = start { tokens.append(s..<i); start = nil }
                i += 1
                continue
            }
            if start == nil { start = i }
            if c == 0x5C {  // backslash: the next byte belongs to this token, whatever it is
                i += 1
                guard i < b.count else { throw .malformed("presentation text: dangling backslash") }
                let n = b[i]
                if n == 0x0A || n == 0x0D || (n < 0x20 && n != 0x09) || n == 0x7F {
                    throw .malformed("presentation text: control character after backslash")
                }
            }
            i += 1
        }
        if let s = start { tokens.append(s..<b.count) }
        self.bytes = b
        self.tokens = tokens
    }

    var count: Int { tokens.count }

    func token(_ i: Int) -> ArraySlice<UInt8> { bytes[tokens[i]] }

    func string(_ i: Int) -> String { String(decoding: bytes[tokens[i]], as: UTF8.self) }

    /// The raw text from the start of token `i` to the end of the last token.
    func rest(from i: Int) -> ArraySlice<UInt8> {
        guard i < tokens.count, let last = tokens.last else { return [] }
        return bytes[tokens[i].lowerBound..<last.upperBound]
    }

    /// Tokens `i...` joined without separators (base64 and hex fields may be split by blanks).
    func joined(from i: Int) -> [UInt8] {
        var out: [UInt8] = []
        var k = i
        while k < tokens.count {
            out.append(contentsOf: bytes[tokens[k]])
            k += 1
        }
        return out
    }
}

// MARK: - RFC 3597 generic RDATA

/// The RFC 3597 §5 generic RDATA presentation `\# <length> <hex>`, usable for any type.
public enum GenericRData {
    /// `\# <length> <hex>`: lowercase hex in one token; `\# 0` for empty RDATA.
    public static func presentation(_ rdata: [UInt8]) -> String {
        rdata.isEmpty ? "\\# 0" : "\\# \(rdata.count) \(Hex.encode(rdata))"
    }

    /// True when `text` (RDATA presentation) starts with the `\#` token.
    public static func isGeneric(_ text: String) -> Bool {
        guard let line = try? PresentationTokens(text), line.count > 0 else { return false }
        return line.token(0).elementsEqual("\\#".utf8)
    }

    /// Parses `\# <length> <hex…>`; the hex may be split into several tokens (either case) and
    /// must decode to exactly `<length>` bytes (RFC 3597 §5).
    public static func parse(_ text: String) throws(TDNSError) -> [UInt8] {
        try parse(PresentationTokens(text), from: 0)
    }

    static func parse(_ line: PresentationTokens, from first: Int) throws(TDNSError) -> [UInt8] {
        guard line.count > first + 1, line.token(first).elementsEqual("\\#".utf8) else {
            throw .malformed("generic RDATA must be `\\# <length> <hex>`")
        }
        guard let length: UInt16 = parseDecimal(line.token(first + 1)) else {
            throw .malformed("generic RDATA: length is not a number 0…65535")
        }
        let hex = line.joined(from: first + 2)
        guard let rdata = Hex.decode(hex) else { throw .malformed("generic RDATA: data is not hex") }
        guard rdata.count == Int(length) else {
            throw .malformed("generic RDATA: \(rdata.count) bytes of hex, length says \(length)")
        }
        return rdata
    }
}
