import TDNSCore

/// A fully qualified domain name as a list of labels (RFC 1035 §3.1), most specific first.
///
/// The root name has no labels. Labels are raw bytes (RFC 2181 §11): any octet is allowed, and
/// presentation text escapes what is not printable. Every instance satisfies the RFC 1035
/// §2.3.4 limits: labels of 1…63 octets and a wire length of at most 255 octets.
///
/// Comparison (`==`, `hashValue`) is ASCII case-insensitive, as DNS names compare
/// (RFC 4343 §3); ``isIdentical(to:)`` compares byte for byte.
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// Largest wire length of a name, including the root label (RFC 1035 §2.3.4).
    public static let maxWireLength = 255
    /// Largest label (RFC 1035 §2.3.4).
    public static let maxLabelLength = 63
    /// Size of the message header; compression pointers below it are rejected (RFC 1035 §4.1.1).
    static let headerSize = 12

    /// The labels, most specific first; empty for the root.
    public let labels: [[UInt8]]

    /// The root name `.`.
    public static let root = DNSName(checked: [])

    private init(checked labels: [[UInt8]]) { self.labels = labels }

    /// A name from raw labels (most specific first).
    ///
    /// - Throws: `.malformed` for an empty label, a label over 63 octets, or a name over 255
    ///   octets on the wire.
    public init(labels: [[UInt8]]) throws(TDNSError) {
        var length = 1
        for label in labels {
            guard !label.isEmpty else { throw .malformed("DNS name: empty label") }
            guard label.count <= Self.maxLabelLength else {
                throw .malformed("DNS name: label of \(label.count) octets exceeds 63")
            }
            length += 1 + label.count
        }
        guard length <= Self.maxWireLength else {
            throw .malformed("DNS name: \(length) octets on the wire exceeds 255")
        }
        self.labels = labels
    }

    // MARK: properties

    /// True for `.`.
    public var isRoot: Bool { labels.isEmpty }

    /// Number of labels, not counting the root.
    public var labelCount: Int { labels.count }

    /// Octets this name takes on the wire, uncompressed (RFC 1035 §3.1).
    public var wireLength: Int { labels.reduce(1) { $0 + 1 + $1.count } }

    /// The uncompressed wire form.
    public var wireEncoded: [UInt8] {
        var w = WireWriter(capacity: wireLength)
        serialize(into: &w)
        return w.bytes
    }

    /// The name with its labels in ASCII lowercase: the canonical form of RFC 4034 §6.2.
    public var canonical: DNSName {
        DNSName(checked: labels.map { $0.map(asciiLower) })
    }

    /// The name one label up, or nil for the root.
    public var parent: DNSName? {
        labels.isEmpty ? nil : DNSName(checked: Array(labels.dropFirst()))
    }

    /// The `index`-th label (0 = leftmost), or nil when out of range.
    public func label(_ index: Int) -> [UInt8]? {
        labels.indices.contains(index) ? labels[index] : nil
    }

    /// The `index`-th label in presentation form (escaped), or nil when out of range.
    public func labelText(_ index: Int) -> String? {
        guard let l = label(index) else { return nil }
        var out: [UInt8] = []
        Self.appendEscaped(l, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: comparison

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        guard lhs.labels.count == rhs.labels.count else { return false }
        for (a, b) in zip(lhs.labels, rhs.labels) where !labelEqual(a, b) {
            return false
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(labels.count)
        for label in labels {
            hasher.combine(label.count)
            for b in label { hasher.combine(asciiLower(b)) }
        }
    }

    /// Byte-for-byte equality (case-sensitive).
    public func isIdentical(to other: DNSName) -> Bool { labels == other.labels }

    static func labelEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where asciiLower(x) != asciiLower(y) {
            return false
        }
        return true
    }

    /// True when `self` equals `other` or lies below it (case-insensitive). Every name is a
    /// subdomain of the root.
    public func isSubdomain(of other: DNSName) -> Bool {
        guard labels.count >= other.labels.count else { return false }
        let offset = labels.count - other.labels.count
        for i in 0..<other.labels.count where !Self.labelEqual(labels[offset + i], other.labels[i]) {
            return false
        }
        return true
    }

    /// The labels left of `suffix` when `self` is a subdomain of it (empty when equal), else nil.
    public func labels(relativeTo suffix: DNSName) -> [[UInt8]]? {
        guard isSubdomain(of: suffix) else { return nil }
        return Array(labels.prefix(labels.count - suffix.labels.count))
    }

    // MARK: building

    /// `label.self`: this name with one more label on the left.
    public func prepending(label: [UInt8]) throws(TDNSError) -> DNSName {
        try DNSName(labels: [label] + labels)
    }

    /// `label.self`, with the label given as its raw octets in UTF-8 (no escapes are
    /// interpreted: `"a.b"` is one label containing a dot). Used for `<seq>` and `<distid>`
    /// labels (PROTOCOL §2.6).
    public func prepending(label: String) throws(TDNSError) -> DNSName {
        try prepending(label: Array(label.utf8))
    }

    /// `labels.self`: this name with several labels on the left (most specific first).
    public func prepending(labels more: [[UInt8]]) throws(TDNSError) -> DNSName {
        try DNSName(labels: more + labels)
    }

    /// This name's labels followed by `suffix`: `self` is read as relative, so
    /// `edge1.example.net.` appending `kdc.example.com.` is `edge1.example.net.kdc.example.com.`.
    public func appending(_ suffix: DNSName) throws(TDNSError) -> DNSName {
        try DNSName(labels: labels + suffix.labels)
    }

    // MARK: wire

    /// Appends the uncompressed wire form.
    public func serialize(into writer: inout WireWriter) {
        for label in labels {
            writer.writeUInt8(UInt8(truncatingIfNeeded: label.count))  // 1…63, checked on creation
            writer.writeBytes(label)
        }
        writer.writeUInt8(0)
    }

    /// Reads a name at the reader's position (RFC 1035 §3.1, §4.1.4).
    ///
    /// With `allowCompression`, pointers are followed within ``WireReader/bytes`` (the whole
    /// message) under strict rules: every pointer must point strictly before the start of the
    /// name segment that contains it, and never into the 12-byte header. Therefore forward
    /// pointers, pointers into the current name, and loops are all rejected, and following
    /// pointers always terminates. Extended label types (0x40, 0x80) are rejected. The reader
    /// advances past the name as it appears at its position (up to and including the first
    /// pointer).
    ///
    /// Without `allowCompression` (RDATA of types defined after RFC 1035, RFC 3597 §4), a
    /// pointer is `.malformed`.
    public init(wireEncoded reader: inout WireReader, allowCompression: Bool) throws(TDNSError) {
        let buf = reader.bytes
        var pos = reader.position
        var limit = reader.end  // where the current segment must end
        var segmentStart = reader.position  // pointers must target below this
        var resume: Int? = nil
        var labels: [[UInt8]] = []
        var length = 1
        while true {
            guard pos < limit else { throw .malformed("DNS name: truncated at offset \(pos)") }
            let b = buf[pos]
            switch b & 0xC0 {
            case 0x00:
                if b == 0 {
                    pos += 1
                    reader.position = resume ?? pos
                    self.labels = labels
                    return
                }
                let n = Int(b)
                guard n <= limit - pos - 1 else { throw .malformed("DNS name: label runs past the end at offset \(pos)") }
                length += 1 + n
                guard length <= Self.maxWireLength else { throw .malformed("DNS name: longer than 255 octets") }
                labels.append(Array(buf[(pos + 1)..<(pos + 1 + n)]))
                pos += 1 + n
            case 0xC0:
                guard allowCompression else { throw .malformed("DNS name: compression pointer where none is allowed") }
                guard pos + 1 < limit else { throw .malformed("DNS name: truncated pointer at offset \(pos)") }
                let target = Int(b & 0x3F) << 8 | Int(buf[pos + 1])
                guard target < segmentStart else {
                    throw .malformed("DNS name: pointer at offset \(pos) to \(target) is a forward pointer, a loop or points into the name itself")
                }
                guard target >= Self.headerSize else {
                    throw .malformed("DNS name: pointer at offset \(pos) into the message header")
                }
                if resume == nil { resume = pos + 2 }
                limit = segmentStart
                segmentStart = target
                pos = target
            default:
                throw .malformed("DNS name: unsupported label type 0x\(Hex.encode([b & 0xC0])) at offset \(pos)")
            }
        }
    }

    /// Parses a complete uncompressed wire name; trailing bytes are an error.
    public init(wireEncoded bytes: [UInt8]) throws(TDNSError) {
        var r = WireReader(bytes)
        try self.init(wireEncoded: &r, allowCompression: false)
        try r.expectEnd("DNS name")
    }

    // MARK: presentation

    /// Parses presentation text (RFC 1035 §5.1): labels separated by `.`, `\X` for a literal
    /// character X and `\DDD` for the octet with decimal value DDD (exactly three digits, ≤ 255).
    ///
    /// An absolute name ends with an unescaped `.`; `.` alone is the root. A name without the
    /// trailing dot is relative and needs `origin`, which is appended; `@` alone means `origin`.
    /// Without an origin a relative name is `.malformed` — the KDC/KRS configuration always
    /// writes FQDNs (PROTOCOL §1).
    ///
    /// Unescaped whitespace, control characters, non-ASCII octets and the zone-file
    /// metacharacters `"`, `(`, `)`, `;` are rejected; empty labels (`a..b`, `.a`) too.
    public init(_ text: String, origin: DNSName? = nil) throws(TDNSError) {
        try self.init(presentation: Array(text.utf8), origin: origin)
    }

    init(presentation b: some Collection<UInt8>, origin: DNSName?) throws(TDNSError) {
        let t = Array(b)
        guard !t.isEmpty else { throw .malformed("DNS name: empty text") }
        guard t.count <= 4 * Self.maxWireLength else { throw .malformed("DNS name: text too long") }
        if t == [0x40] {  // "@"
            guard let origin else { throw .malformed("DNS name: `@` without an origin") }
            self = origin
            return
        }
        if t == [0x2E] {  // "."
            self = .root
            return
        }
        var labels: [[UInt8]] = []
        var current: [UInt8] = []
        var absolute = false
        var i = 0
        while i < t.count {
            let c = t[i]
            absolute = false
            if c == 0x2E {  // unescaped dot ends a label
                guard !current.isEmpty else { throw .malformed("DNS name: empty label in \"\(Self.printable(t))\"") }
                labels.append(current)
                current = []
                absolute = true
                i += 1
                continue
            }
            if c == 0x5C {  // backslash
                guard i + 1 < t.count else { throw .malformed("DNS name: dangling backslash") }
                let d = t[i + 1]
                if d >= 0x30 && d <= 0x39 {
                    guard i + 3 < t.count else {
                        throw .malformed("DNS name: \\DDD escape needs three digits")
                    }
                    guard let v: UInt16 = parseDecimal(t[(i + 1)...(i + 3)]), v <= 255 else {
                        throw .malformed("DNS name: bad \\DDD escape")
                    }
                    current.append(UInt8(truncatingIfNeeded: v))
                    i += 4
                } else {
                    guard d >= 0x20, d < 0x7F else { throw .malformed("DNS name: escaped control or non-ASCII octet") }
                    current.append(d)
                    i += 2
                }
            } else {
                guard c > 0x20, c < 0x7F, c != 0x22, c != 0x28, c != 0x29, c != 0x3B else {
                    throw .malformed("DNS name: character 0x\(Hex.encode([c])) must be escaped")
                }
                current.append(c)
                i += 1
            }
            guard current.count <= Self.maxLabelLength else { throw .malformed("DNS name: label longer than 63 octets") }
        }
        if !current.isEmpty { labels.append(current) }
        if absolute {
            self = try DNSName(labels: labels)
        } else {
            guard let origin else {
                throw .malformed("DNS name: \"\(Self.printable(t))\" is relative (no trailing dot) and no origin was given")
            }
            self = try DNSName(labels: labels + origin.labels)
        }
    }

    /// Presentation text with the trailing dot, escaping as RFC 1035 §5.1 allows: `\X` for the
    /// metacharacters `. \ " ( ) ; @ $`, `\DDD` for octets outside 0x21…0x7E.
    public var description: String {
        guard !labels.isEmpty else { return "." }
        var out: [UInt8] = []
        for label in labels {
            Self.appendEscaped(label, to: &out)
            out.append(0x2E)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Same as ``description``.
    public var presentation: String { description }

    static func appendEscaped(_ label: [UInt8], to out: inout [UInt8]) {
        for b in label {
            switch b {
            case 0x2E, 0x5C, 0x22, 0x28, 0x29, 0x3B, 0x40, 0x24:
                out.append(0x5C)
                out.append(b)
            case 0x21...0x7E:
                out.append(b)
            default:
                out.append(0x5C)
                out.append(0x30 + b / 100)
                out.append(0x30 + (b / 10) % 10)
                out.append(0x30 + b % 10)
            }
        }
    }

    private static func printable(_ t: [UInt8]) -> String {
        String(decoding: t.prefix(80).map { $0 >= 0x20 && $0 < 0x7F ? $0 : 0x3F }, as: UTF8.self)
    }
}
