import TDNSCore

/// An append-only big-endian writer for DNS wire data (RFC 1035 §2.3.2).
///
/// Fixed-width writes cannot fail; length-prefixed writes check that the length fits its field
/// and throw `.tooBig` otherwise, so no narrowing conversion can trap.
public struct WireWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// An empty writer; `capacity` is only a hint.
    public init(capacity: Int = 512) {
        bytes = []
        bytes.reserveCapacity(max(0, min(capacity, 65535)))
    }

    /// Number of bytes written so far (the offset of the next byte).
    public var count: Int { bytes.count }

    /// Appends one byte.
    public mutating func writeUInt8(_ value: UInt8) {
        bytes.append(value)
    }

    /// Appends a big-endian 16-bit integer.
    public mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends a big-endian 32-bit integer.
    public mutating func writeUInt32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends raw bytes.
    public mutating func writeBytes(_ data: some Sequence<UInt8>) {
        bytes.append(contentsOf: data)
    }

    /// Appends a 16-bit length followed by `data`; `.tooBig` when `data` exceeds 65535 bytes.
    public mutating func writeLengthPrefixed16(_ data: [UInt8], _ what: String) throws(TDNSError) {
        guard let length = UInt16(exactly: data.count) else {
            throw .tooBig("\(what): \(data.count) bytes do not fit a 16-bit length")
        }
        writeUInt16(length)
        writeBytes(data)
    }

    /// Writes a 16-bit length placeholder, runs `body`, then patches in the number of bytes
    /// `body` wrote (`.tooBig` if more than 65535), as RDLENGTH and option lengths need.
    public mutating func writeLengthPrefixed16(
        _ what: String, _ body: (inout WireWriter) throws(TDNSError) -> Void
    ) throws(TDNSError) {
        let lengthOffset = bytes.count
        writeUInt16(0)
        try body(&self)
        let written = bytes.count - lengthOffset - 2
        guard let length = UInt16(exactly: written) else {
            throw .tooBig("\(what): \(written) bytes do not fit a 16-bit length")
        }
        try patchUInt16(at: lengthOffset, length)
    }

    /// Overwrites two already-written bytes at `offset` with a big-endian 16-bit integer.
    public mutating func patchUInt16(at offset: Int, _ value: UInt16) throws(TDNSError) {
        guard offset >= 0, offset <= bytes.count - 2 else {
            throw .internalFailure("patch offset \(offset) outside \(bytes.count) written bytes")
        }
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
}
