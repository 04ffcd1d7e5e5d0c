import TDNSCore

/// RDATA of the tdns CHUNK record (PROTOCOL §2.2; tdns `v2/core/rr_chunk.go`):
///
///     Format(1) ‖ HMACLen(2) ‖ HMAC[HMACLen] ‖ Sequence(2) ‖ Total(2) ‖ DataLength(2) ‖ Data[DataLength]
///
/// all integers big-endian. Sequence 0 is the manifest (JSON, or a JWT for Format 2), 1…N are
/// data chunks (PROTOCOL §2.4). The same RDATA is used under both type codes (``RRType/chunk``
/// and ``RRType/chunkLegacy``).
///
/// Decoding is stricter than Go's `Unpack`: the RDATA must be exactly
/// `9 + HMACLen + DataLength` bytes (PROTOCOL §2.2 "Decoder notes").
public struct CHUNKRecord: Hashable, Sendable {
    /// Format 1, `JSON` (PROTOCOL §2.2).
    public static let formatJSON: UInt8 = 1
    /// Format 2, `JWT` (PROTOCOL §2.2, §9.3).
    public static let formatJWT: UInt8 = 2
    /// Smallest RDATA: no HMAC, no data.
    public static let minimumLength = 9

    /// 1 = JSON, 2 = JWT; other values are kept and printed as `FORMAT<n>`.
    public var format: UInt8
    /// HMAC-SHA256 (32 bytes) on manifests, empty on data chunks (PROTOCOL §2.4).
    public var hmac: [UInt8]
    /// 0 = manifest, 1…N = data chunk.
    public var sequence: UInt16
    /// Number of data chunks (0 in early KDC manifests, PROTOCOL §2.4).
    public var total: UInt16
    /// Manifest JSON/JWT, or a slice of the transport blob.
    public var data: [UInt8]

    /// A record from its fields; limits are checked when it is serialized (``rdata()``).
    public init(format: UInt8 = CHUNKRecord.formatJSON, hmac: [UInt8] = [], sequence: UInt16, total: UInt16, data: [UInt8]) {
        self.format = format
        self.hmac = hmac
        self.sequence = sequence
        self.total = total
        self.data = data
    }

    /// True for sequence 0 (PROTOCOL §2.4: identify the manifest by Sequence, not by Total).
    public var isManifest: Bool { sequence == 0 }

    // MARK: wire

    /// Decodes RDATA; every byte must be accounted for.
    public init(rdata: [UInt8]) throws(TDNSError) {
        var r = WireReader(rdata)
        try self.init(wireEncoded: &r)
        try r.expectEnd("CHUNK RDATA")
    }

    /// Decodes one CHUNK RDATA from the reader (which should be the RDATA window).
    public init(wireEncoded r: inout WireReader) throws(TDNSError) {
        guard r.remaining >= Self.minimumLength else {
            throw .malformed("CHUNK RDATA: \(r.remaining) bytes, at least 9 needed")
        }
        format = try r.readUInt8("CHUNK format")
        let hmacLength = Int(try r.readUInt16("CHUNK HMAC length"))
        guard hmacLength <= r.remaining - 6 else {
            throw .malformed("CHUNK RDATA: HMAC length \(hmacLength) exceeds the \(r.remaining - 6) bytes available")
        }
        hmac = try r.readBytes(hmacLength, "CHUNK HMAC")
        sequence = try r.readUInt16("CHUNK sequence")
        total = try r.readUInt16("CHUNK total")
        let dataLength = Int(try r.readUInt16("CHUNK data length"))
        guard dataLength <= r.remaining else {
            throw .malformed("CHUNK RDATA: data length \(dataLength) exceeds the \(r.remaining) bytes available")
        }
        data = try r.readBytes(dataLength, "CHUNK data")
    }

    /// The RDATA. `.tooBig` when HMAC or Data exceed 65535 bytes or the whole RDATA would not
    /// fit RDLENGTH (65535).
    public func rdata() throws(TDNSError) -> [UInt8] {
        var w = WireWriter(capacity: Self.minimumLength + hmac.count + data.count)
        try serialize(into: &w)
        return w.bytes
    }

    /// Appends the RDATA (see ``rdata()``).
    public func serialize(into w: inout WireWriter) throws(TDNSError) {
        let length = Self.minimumLength + hmac.count + data.count
        guard length <= 65535 else { throw .tooBig("CHUNK RDATA of \(length) bytes exceeds 65535") }
        w.writeUInt8(format)
        try w.writeLengthPrefixed16(hmac, "CHUNK HMAC")
        w.writeUInt16(sequence)
        w.writeUInt16(total)
        try w.writeLengthPrefixed16(data, "CHUNK data")
    }

    // MARK: presentation

    /// `JSON`, `JWT` or `FORMAT<n>` (PROTOCOL §2.3).
    public static func formatMnemonic(_ format: UInt8) -> String {
        switch format {
        case formatJSON: "JSON"
        case formatJWT: "JWT"
        default: "FORMAT\(format)"
        }
    }

    /// RDATA presentation `<sequence> <total> <format> <hmac-hex or ""> <data>` as tdns prints
    /// it (PROTOCOL §2.3, Go `CHUNK.String`): data chunks (sequence > 0) show Data as padded
    /// standard base64; the manifest (sequence 0) shows Data verbatim when it starts with `{`
    /// or `[` (JSON), and also verbatim when it is not valid base64 (a JWT, as Go prints it).
    ///
    /// Where Go's text would lose information (manifest Data that is binary, base64-decodable,
    /// empty, or would not read back identically — e.g. contains a line break), this prints the
    /// RFC 3597 generic form ``GenericRData`` instead, so that the output always parses back
    /// with ``init(presentation:)`` to the same record.
    public var presentation: String {
        if let candidate = tdnsPresentation(), let back = try? CHUNKRecord(presentation: candidate), back == self {
            return candidate
        }
        return GenericRData.presentation((try? rdata()) ?? [])
    }

    private func tdnsPresentation() -> String? {
        let hmacText = hmac.isEmpty ? "\"\"" : Hex.encode(hmac)
        let dataText: String
        if sequence != 0 {
            dataText = Base64.encode(data)
        } else if let first = data.first, first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            dataText = String(decoding: data, as: UTF8.self)
        } else if !data.isEmpty, !Self.goWouldDecodeBase64(data) {
            dataText = String(decoding: data, as: UTF8.self)
        } else {
            return nil
        }
        return "\(sequence) \(total) \(Self.formatMnemonic(format)) \(hmacText) \(dataText)"
    }

    /// Whether Go's `base64.StdEncoding.DecodeString(strings.TrimSpace(s))` would succeed on a
    /// non-empty text (padding required, trailing bits not checked).
    static func goWouldDecodeBase64(_ text: [UInt8]) -> Bool {
        var t = ArraySlice(text)
        while let f = t.first, f == 0x20 || f == 0x09 || f == 0x0A || f == 0x0D || f == 0x0B || f == 0x0C { t = t.dropFirst() }
        while let l = t.last, l == 0x20 || l == 0x09 || l == 0x0A || l == 0x0D || l == 0x0B || l == 0x0C { t = t.dropLast() }
        // Go skips CR and LF inside the text.
        let chars = t.filter { $0 != 0x0A && $0 != 0x0D }
        guard !chars.isEmpty, chars.count % 4 == 0 else { return false }
        var padding = 0
        for (i, c) in chars.enumerated() {
            let isAlphabet = (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2B || c == 0x2F
            if c == 0x3D {
                guard i >= chars.count - 2 else { return false }
                padding += 1
            } else if !isAlphabet || padding > 0 {
                return false
            }
        }
        return true
    }

    /// Parses RDATA presentation: the tdns form of ``presentation`` or the RFC 3597 generic
    /// form `\# <len> <hex>`.
    ///
    /// tdns form: `<sequence> <total> <format> <hmac> <data…>` with `format` one of `JSON`,
    /// `JWT`, `FORMAT<n>`; `hmac` lowercase or uppercase hex, or `""`. For sequence 0 the data
    /// is the rest of the line taken verbatim (so JSON may contain blanks); otherwise it is
    /// strict padded standard base64, possibly split by blanks. Go's parser also takes any
    /// sequence-0 text verbatim (PROTOCOL §2.3 says it must start with `{`/`[`, the code does not
    /// check), so a JWT manifest round-trips here.
    public init(presentation text: String) throws(TDNSError) {
        try self.init(presentation: PresentationTokens(text), from: 0)
    }

    init(presentation line: PresentationTokens, from i: Int) throws(TDNSError) {
        if i < line.count, line.token(i).elementsEqual("\\#".utf8) {
            try self.init(rdata: GenericRData.parse(line, from: i))
            return
        }
        guard line.count >= i + 5 else {
            throw .malformed("CHUNK text: needs <sequence> <total> <format> <hmac> <data>")
        }
        guard let sequence: UInt16 = parseDecimal(line.token(i)) else { throw .malformed("CHUNK text: bad sequence") }
        guard let total: UInt16 = parseDecimal(line.token(i + 1)) else { throw .malformed("CHUNK text: bad total") }
        let formatToken = line.token(i + 2)
        let format: UInt8
        if formatToken.elementsEqual("JSON".utf8) {
            format = Self.formatJSON
        } else if formatToken.elementsEqual("JWT".utf8) {
            format = Self.formatJWT
        } else if formatToken.starts(with: "FORMAT".utf8), let n: UInt8 = parseDecimal(formatToken.dropFirst(6)) {
            format = n
        } else {
            throw .malformed("CHUNK text: format must be JSON, JWT or FORMAT<n>")
        }
        let hmacToken = line.token(i + 3)
        var hmac: [UInt8] = []
        if !hmacToken.elementsEqual("\"\"".utf8) {
            guard let h = Hex.decode(hmacToken), !h.isEmpty else { throw .malformed("CHUNK text: HMAC is neither hex nor \"\"") }
            hmac = h
        }
        let data: [UInt8]
        if sequence == 0 {
            data = Array(line.rest(from: i + 4))
        } else {
            do {
                data = try Base64.decode(line.joined(from: i + 4))
            } catch {
                throw .malformed("CHUNK text: data of a data chunk is not base64")
            }
        }
        self.init(format: format, hmac: hmac, sequence: sequence, total: total, data: data)
        _ = try rdata()  // size limits
    }
}
