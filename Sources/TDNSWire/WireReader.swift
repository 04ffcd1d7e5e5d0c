import TDNSCore

/// A bounded, big-endian reader over received DNS bytes (RFC 1035 §2.3.2, §4.1).
///
/// The reader keeps the whole buffer (so that compressed names can follow pointers to absolute
/// offsets, RFC 1035 §4.1.4) and a window `[position, end)` it may read from. Every read is
/// bounds-checked and throws `.malformed` instead of trapping; ``subReader(length:)`` hands out a
/// window of exactly `length` bytes that the caller must consume completely
/// (``expectEnd(_:)``), in the style of swift-asn1 and NSD.
public struct WireReader: Sendable {
    /// The whole buffer. Offsets (``position``, ``end``, compression pointers) index into it.
    public let bytes: [UInt8]
    /// The offset of the next byte to read.
    public internal(set) var position: Int
    /// One past the last byte this reader may read.
    public let end: Int

    /// A reader over all of `bytes`.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.position = 0
        self.end = bytes.count
    }

    /// A reader over `bytes[range]`; the range is clamped to the buffer.
    public init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        let lower = min(max(0, range.lowerBound), bytes.count)
        let upper = min(max(lower, range.upperBound), bytes.count)
        self.position = lower
        self.end = upper
    }

    /// Bytes left in this reader's window.
    public var remaining: Int { end - position }

    /// True when the window is fully consumed.
    public var isAtEnd: Bool { position >= end }

    private func need(_ count: Int, _ what: String) throws(TDNSError) {
        guard count >= 0, count <= end - position else {
            throw .malformed("\(what): needs \(count) bytes at offset \(position), \(max(0, end - position)) left")
        }
    }

    /// The next byte, without consuming it.
    public func peekUInt8(_ what: String = "byte") throws(TDNSError) -> UInt8 {
        try need(1, what)
        return bytes[position]
    }

    /// Reads one byte.
    public mutating func readUInt8(_ what: String = "u8") throws(TDNSError) -> UInt8 {
        try need(1, what)
        defer { position += 1 }
        return bytes[position]
    }

    /// Reads a big-endian 16-bit integer.
    public mutating func readUInt16(_ what: String = "u16") throws(TDNSError) -> UInt16 {
        try need(2, what)
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    /// Reads a big-endian 32-bit integer.
    public mutating func readUInt32(_ what: String = "u32") throws(TDNSError) -> UInt32 {
        try need(4, what)
        defer { position += 4 }
        return UInt32(bytes[position]) << 24 | UInt32(bytes[position + 1]) << 16
            | UInt32(bytes[position + 2]) << 8 | UInt32(bytes[position + 3])
    }

    /// Reads `count` bytes into a new array.
    public mutating func readBytes(_ count: Int, _ what: String = "bytes") throws(TDNSError) -> [UInt8] {
        try need(count, what)
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// Reads `count` bytes as a slice of ``bytes`` (indices are absolute offsets).
    public mutating func readSlice(_ count: Int, _ what: String = "bytes") throws(TDNSError) -> ArraySlice<UInt8> {
        try need(count, what)
        defer { position += count }
        return bytes[position..<position + count]
    }

    /// Reads everything left in the window.
    public mutating func readRemaining() -> [UInt8] {
        guard position < end else { return [] }
        defer { position = end }
        return Array(bytes[position..<end])
    }

    /// Skips `count` bytes.
    public mutating func skip(_ count: Int, _ what: String = "bytes") throws(TDNSError) {
        try need(count, what)
        position += count
    }

    /// Returns a reader over the next `length` bytes and advances this reader past them.
    ///
    /// The sub-reader shares ``bytes`` (so compression pointers still resolve) but can read only
    /// its own window; call ``expectEnd(_:)`` on it when done so that a length field that
    /// promised more than was used is an error.
    public mutating func subReader(length: Int, _ what: String = "length-delimited field") throws(TDNSError) -> WireReader {
        try need(length, what)
        let sub = WireReader(bytes, range: position..<position + length)
        position += length
        return sub
    }

    /// Runs `body` on a sub-reader of exactly `length` bytes and requires it to consume all of
    /// them (swift-asn1's "must consume exactly" rule).
    public mutating func withSubReader<T>(
        length: Int, _ what: String, _ body: (inout WireReader) throws(TDNSError) -> T
    ) throws(TDNSError) -> T {
        var sub = try subReader(length: length, what)
        let value = try body(&sub)
        try sub.expectEnd(what)
        return value
    }

    /// Throws `.malformed` unless the window is fully consumed: trailing bytes are an error.
    public func expectEnd(_ what: String = "field") throws(TDNSError) {
        guard position == end else {
            throw .malformed("\(what): \(end - position) trailing bytes at offset \(position)")
        }
    }
}
