// Strict base64 codecs over bytes. JOSE uses base64url without padding (RFC 7515 §2, RFC 4648 §5);
// the transport blob and Go's []byte JSON fields use standard base64 with padding (RFC 4648 §4,
// PROTOCOL §6). Both decoders accept exactly one encoding per byte string: no whitespace, no
// line breaks, no foreign alphabet, and no non-zero bits in the unused tail of the last character
// (RFC 4648 §3.5), so that two different texts never decode to the same bytes.

/// Base64url without padding (RFC 4648 §5, as JOSE requires in RFC 7515 §2).
public enum Base64URL {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let decodeTable: [UInt8] = makeDecodeTable(alphabet)

    /// Encodes bytes as base64url text without padding.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: encodeBytes(bytes), as: UTF8.self)
    }

    /// Encodes bytes as the ASCII bytes of base64url text without padding.
    public static func encodeBytes(_ bytes: some Collection<UInt8>) -> [UInt8] {
        base64Encode(bytes, alphabet: alphabet, pad: false)
    }

    /// Decodes base64url text without padding. Throws `.malformed` for `=`, characters outside
    /// the URL-safe alphabet, an impossible length, or non-zero trailing bits.
    public static func decode(_ text: some Collection<UInt8>) throws(TDNSError) -> [UInt8] {
        try base64Decode(text, table: decodeTable, padded: false)
    }

    /// Decodes base64url text given as a string, with the same rules.
    public static func decode(_ text: String) throws(TDNSError) -> [UInt8] {
        try decode(Array(text.utf8))
    }

    /// Checks `text` exactly as ``decode(_:)`` would and returns the decoded length, without
    /// allocating the decoded bytes (used to validate a large JWE ciphertext segment).
    package static func validatedDecodedLength(_ text: some Collection<UInt8>) throws(TDNSError) -> Int {
        try base64Validate(text, table: decodeTable, padded: false)
    }
}

/// Standard base64 with padding (RFC 4648 §4), as Go's `encoding/base64.StdEncoding` writes it.
public enum Base64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let decodeTable: [UInt8] = makeDecodeTable(alphabet)

    /// Encodes bytes as padded standard base64 text.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: encodeBytes(bytes), as: UTF8.self)
    }

    /// Encodes bytes as the ASCII bytes of padded standard base64 text.
    public static func encodeBytes(_ bytes: some Collection<UInt8>) -> [UInt8] {
        base64Encode(bytes, alphabet: alphabet, pad: true)
    }

    /// Decodes padded standard base64. Throws `.malformed` unless the length is a multiple of 4,
    /// padding (at most two `=`) appears only at the end, every other character is in the
    /// standard alphabet, and the unused trailing bits are zero.
    public static func decode(_ text: some Collection<UInt8>) throws(TDNSError) -> [UInt8] {
        try base64Decode(text, table: decodeTable, padded: true)
    }

    /// Decodes padded standard base64 given as a string.
    public static func decode(_ text: String) throws(TDNSError) -> [UInt8] {
        try decode(Array(text.utf8))
    }
}

// MARK: - shared implementation

private let invalidSextet: UInt8 = 0xFF

private func makeDecodeTable(_ alphabet: [UInt8]) -> [UInt8] {
    var table = [UInt8](repeating: invalidSextet, count: 256)
    for (value, char) in alphabet.enumerated() {
        table[Int(char)] = UInt8(truncatingIfNeeded: value)
    }
    return table
}

private func base64Encode(_ input: some Collection<UInt8>, alphabet: [UInt8], pad: Bool) -> [UInt8] {
    let bytes = Array(input)
    let n = bytes.count
    let full = n / 3
    let rest = n % 3
    let outCount: Int
    if pad {
        outCount = (full + (rest == 0 ? 0 : 1)) * 4
    } else {
        outCount = full * 4 + (rest == 0 ? 0 : rest + 1)
    }
    var out = [UInt8]()
    out.reserveCapacity(outCount)
    bytes.withUnsafeBufferPointer { src in
        alphabet.withUnsafeBufferPointer { abc in
            var i = 0
            while i + 3 <= n {
                let v = UInt32(src[i]) << 16 | UInt32(src[i + 1]) << 8 | UInt32(src[i + 2])
                out.append(abc[Int(v >> 18 & 0x3F)])
                out.append(abc[Int(v >> 12 & 0x3F)])
                out.append(abc[Int(v >> 6 & 0x3F)])
                out.append(abc[Int(v & 0x3F)])
                i += 3
            }
            if rest == 1 {
                let v = UInt32(src[i]) << 16
                out.append(abc[Int(v >> 18 & 0x3F)])
                out.append(abc[Int(v >> 12 & 0x3F)])
                if pad { out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "=")) }
            } else if rest == 2 {
                let v = UInt32(src[i]) << 16 | UInt32(src[i + 1]) << 8
                out.append(abc[Int(v >> 18 & 0x3F)])
                out.append(abc[Int(v >> 12 & 0x3F)])
                out.append(abc[Int(v >> 6 & 0x3F)])
                if pad { out.append(UInt8(ascii: "=")) }
            }
        }
    }
    return out
}

/// The length of the data part (padding removed) and the decoded length, after checking the
/// length and the placement of padding.
private func base64Shape(_ text: UnsafeBufferPointer<UInt8>, padded: Bool) throws(TDNSError) -> (dataCount: Int, decodedCount: Int) {
    var dataCount = text.count
    if padded {
        guard text.count % 4 == 0 else { throw .malformed("base64: length is not a multiple of 4") }
        if dataCount > 0, text[dataCount - 1] == UInt8(ascii: "=") { dataCount -= 1 }
        if dataCount > 0, text[dataCount - 1] == UInt8(ascii: "=") { dataCount -= 1 }
    }
    let rest = dataCount % 4
    guard rest != 1 else { throw .malformed("base64: impossible length") }
    let decodedCount = dataCount / 4 * 3 + (rest == 0 ? 0 : rest - 1)
    return (dataCount, decodedCount)
}

/// Validates every character and the trailing bits; returns the decoded length.
private func base64Validate(_ input: some Collection<UInt8>, table: [UInt8], padded: Bool) throws(TDNSError) -> Int {
    let run: (UnsafeBufferPointer<UInt8>) throws(TDNSError) -> Int = { (text) throws(TDNSError) -> Int in
        let shape = try base64Shape(text, padded: padded)
        try table.withUnsafeBufferPointer { (tab) throws(TDNSError) -> Void in
            for i in 0..<shape.dataCount where tab[Int(text[i])] == invalidSextet {
                throw .malformed("base64: invalid character")
            }
            try checkTrailingBits(text, dataCount: shape.dataCount, table: tab)
        }
        return shape.decodedCount
    }
    return try withContiguousBytes(input, run)
}

private func checkTrailingBits(_ text: UnsafeBufferPointer<UInt8>, dataCount: Int, table: UnsafeBufferPointer<UInt8>) throws(TDNSError) {
    switch dataCount % 4 {
    case 2:
        guard table[Int(text[dataCount - 1])] & 0x0F == 0 else { throw .malformed("base64: non-canonical trailing bits") }
    case 3:
        guard table[Int(text[dataCount - 1])] & 0x03 == 0 else { throw .malformed("base64: non-canonical trailing bits") }
    default:
        break
    }
}

private func base64Decode(_ input: some Collection<UInt8>, table: [UInt8], padded: Bool) throws(TDNSError) -> [UInt8] {
    let run: (UnsafeBufferPointer<UInt8>) throws(TDNSError) -> [UInt8] = { (text) throws(TDNSError) -> [UInt8] in
        let shape = try base64Shape(text, padded: padded)
        return try table.withUnsafeBufferPointer { (tab) throws(TDNSError) -> [UInt8] in
            try checkTrailingBits(text, dataCount: shape.dataCount, table: tab)
            var bad = false
            let out = [UInt8](unsafeUninitializedCapacity: shape.decodedCount) { buf, initialized in
                var o = 0
                var i = 0
                let fullEnd = shape.dataCount - shape.dataCount % 4
                while i < fullEnd {
                    let a = tab[Int(text[i])], b = tab[Int(text[i + 1])]
                    let c = tab[Int(text[i + 2])], d = tab[Int(text[i + 3])]
                    if (a | b | c | d) & 0xC0 != 0 { bad = true; break }
                    let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    buf[o] = UInt8(truncatingIfNeeded: v >> 16)
                    buf[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                    buf[o + 2] = UInt8(truncatingIfNeeded: v)
                    o += 3
                    i += 4
                }
                if !bad {
                    switch shape.dataCount % 4 {
                    case 2:
                        let a = tab[Int(text[i])], b = tab[Int(text[i + 1])]
                        if (a | b) & 0xC0 != 0 { bad = true; break }
                        buf[o] = a << 2 | b >> 4
                        o += 1
                    case 3:
                        let a = tab[Int(text[i])], b = tab[Int(text[i + 1])], c = tab[Int(text[i + 2])]
                        if (a | b | c) & 0xC0 != 0 { bad = true; break }
                        buf[o] = a << 2 | b >> 4
                        buf[o + 1] = b << 4 | c >> 2
                        o += 2
                    default:
                        break
                    }
                }
                if bad {
                    // Leave nothing half-decoded behind: the caller may be decoding a secret.
                    for k in 0..<o { buf[k] = 0 }
                    initialized = 0
                } else {
                    initialized = o
                }
            }
            guard !bad else { throw .malformed("base64: invalid character") }
            return out
        }
    }
    return try withContiguousBytes(input, run)
}

/// Runs `body` over contiguous storage of `input`, copying only when the collection has none.
private func withContiguousBytes<R>(
    _ input: some Collection<UInt8>,
    _ body: (UnsafeBufferPointer<UInt8>) throws(TDNSError) -> R
) throws(TDNSError) -> R {
    // withContiguousStorageIfAvailable does not forward typed throws; carry the error out by hand.
    var failure: TDNSError? = nil
    let direct: R?? = input.withContiguousStorageIfAvailable { buf -> R? in
        do throws(TDNSError) { return try body(buf) } catch { failure = error; return nil }
    }
    if let failure { throw failure }
    if let direct, let value = direct { return value }
    let copy = Array(input)
    return try copy.withUnsafeBufferPointer { (buf) throws(TDNSError) -> R in try body(buf) }
}
