import TDNSCore

/// One EDNS(0) option: code and opaque data (RFC 6891 §6.1.2).
public struct EDNSOption: Hashable, Sendable {
    /// OPTION-CODE.
    public var code: EDNSOptionCode
    /// OPTION-DATA.
    public var data: [UInt8]

    /// An option from code and data.
    public init(code: EDNSOptionCode, data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// The EDNS(0) information of a message, decoded from its OPT pseudo-record (RFC 6891 §6.1).
///
/// OPT fields: owner `.`, TYPE 41, CLASS = requestor's UDP payload size, TTL =
/// EXTENDED-RCODE(8) ‖ VERSION(8) ‖ DO(1) ‖ Z(15), RDATA = options.
public struct EDNS: Hashable, Sendable {
    /// UDP payload size the sender can reassemble (RFC 6891 §6.2.3).
    public var udpPayloadSize: UInt16
    /// Upper 8 bits of the 12-bit RCODE (RFC 6891 §6.1.3). In a ``DNSMessage`` the message's
    /// ``DNSMessage/rcode`` is authoritative: parsing sets this to `rcode >> 4`, serializing
    /// writes `rcode >> 4` and ignores this field.
    public var extendedRCode: UInt8
    /// EDNS version; 0 is the only one defined (RFC 6891 §6.1.3).
    public var version: UInt8
    /// DO, "DNSSEC answer OK" (RFC 3225 §3).
    public var dnssecOK: Bool
    /// The remaining 15 Z flag bits, kept so that unknown flags round-trip (RFC 6891 §6.1.4).
    public var zFlags: UInt16
    /// Options in wire order.
    public var options: [EDNSOption]

    /// EDNS values; 1232 is the RFC 9715 / DNS Flag Day 2020 default payload size.
    public init(
        udpPayloadSize: UInt16 = 1232, dnssecOK: Bool = false, options: [EDNSOption] = [],
        version: UInt8 = 0, extendedRCode: UInt8 = 0, zFlags: UInt16 = 0
    ) {
        self.udpPayloadSize = udpPayloadSize
        self.extendedRCode = extendedRCode
        self.version = version
        self.dnssecOK = dnssecOK
        self.zFlags = zFlags & 0x7FFF
        self.options = options
    }

    /// Decodes an OPT record: owner must be the root (RFC 6891 §6.1.2), the options must fill
    /// the RDATA exactly.
    public init(optRecord rr: ResourceRecord) throws(TDNSError) {
        guard rr.type == .opt else { throw .malformed("EDNS: record is \(rr.type), not OPT") }
        guard rr.name.isRoot else { throw .malformed("EDNS: OPT owner is \(rr.name), not the root") }
        udpPayloadSize = rr.rrClass.rawValue
        extendedRCode = UInt8(truncatingIfNeeded: rr.ttl >> 24)
        version = UInt8(truncatingIfNeeded: rr.ttl >> 16)
        dnssecOK = rr.ttl & 0x8000 != 0
        zFlags = UInt16(truncatingIfNeeded: rr.ttl) & 0x7FFF
        var r = WireReader(rr.rdata)
        var options: [EDNSOption] = []
        while !r.isAtEnd {
            let code = EDNSOptionCode(try r.readUInt16("EDNS option code"))
            let length = Int(try r.readUInt16("EDNS option length"))
            options.append(EDNSOption(code: code, data: try r.readBytes(length, "EDNS option \(code) data")))
        }
        self.options = options
    }

    /// The OPT record; `extendedRCode` goes into the TTL as given.
    public func optRecord() throws(TDNSError) -> ResourceRecord {
        try optRecord(extendedRCode: extendedRCode)
    }

    func optRecord(extendedRCode ext: UInt8) throws(TDNSError) -> ResourceRecord {
        var w = WireWriter()
        for option in options {
            w.writeUInt16(option.code.rawValue)
            try w.writeLengthPrefixed16(option.data, "EDNS option \(option.code)")
        }
        let ttl = UInt32(ext) << 24 | UInt32(version) << 16 | (dnssecOK ? 0x8000 : 0) | UInt32(zFlags & 0x7FFF)
        return ResourceRecord(name: .root, type: .opt, rrClass: RRClass(udpPayloadSize), ttl: ttl, rdata: w.bytes)
    }

    /// The data of every option with `code`, in order.
    public func options(_ code: EDNSOptionCode) -> [[UInt8]] {
        options.filter { $0.code == code }.map(\.data)
    }

    /// Replaces every option with the same code by `option` (at the first one's place), or
    /// appends it — the "existing CHUNK option is replaced" rule of PROTOCOL §4.1.
    public mutating func setOption(_ option: EDNSOption) {
        if let first = options.firstIndex(where: { $0.code == option.code }) {
            options[first] = option
            var i = options.count - 1
            while i > first {
                if options[i].code == option.code { options.remove(at: i) }
                i -= 1
            }
        } else {
            options.append(option)
        }
    }

    /// The single CHUNK option (code 65004), nil when absent; `.malformed` when there are two
    /// or it does not decode (PROTOCOL §4.1).
    public func chunkOption() throws(TDNSError) -> ChunkOption? {
        let all = options(.chunk)
        guard all.count <= 1 else { throw .malformed("EDNS: \(all.count) CHUNK options") }
        guard let data = all.first else { return nil }
        return try ChunkOption(optionData: data)
    }
}

/// The tdns CHUNK EDNS(0) option, code 65004 (PROTOCOL §4.1):
/// `Format(1) ‖ HMACLen(2) ‖ HMAC ‖ DataLength(2) ‖ Data`, all big-endian, nothing after.
///
/// Between KDC and KRS, `Data[0]` is a ``ContentType`` byte and `Data[1...]` the content; the
/// option is sent with Format 1 and no HMAC.
public struct ChunkOption: Hashable, Sendable {
    /// The receiver in tdns rejects a longer HMAC (PROTOCOL §4.1, §13).
    public static let maxHMACLength = 64
    /// Format(1) + HMACLen(2) + DataLength(2).
    public static let minimumLength = 5

    /// What `Data[0]` announces (PROTOCOL §4.1 table).
    public struct ContentType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The `Data[0]` value.
        public let rawValue: UInt8
        /// Any byte value.
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// 1: key status report JSON, KRS → KDC in the confirmation NOTIFY (PROTOCOL §10.6).
        public static let keyStatusReport = ContentType(rawValue: 1)
        /// 2: enrollment confirmation, KDC → KRS in the UPDATE response (PROTOCOL §11.5).
        public static let enrollmentConfirmation = ContentType(rawValue: 2)
        /// 3: component status report JSON, KRS → KDC (PROTOCOL §10.6).
        public static let componentStatusReport = ContentType(rawValue: 3)
        public var description: String {
            switch rawValue {
            case 1: "key-status-report"
            case 2: "enrollment-confirmation"
            case 3: "component-status-report"
            default: "content-type-\(rawValue)"
            }
        }
    }

    /// 1 = JSON, 2 = JWT (as for CHUNK RDATA, PROTOCOL §2.2).
    public var format: UInt8
    /// 0…64 bytes; empty between KDC and KRS.
    public var hmac: [UInt8]
    /// Content type byte plus content, between KDC and KRS.
    public var data: [UInt8]

    /// An option from its fields; limits are checked by ``optionData()``.
    public init(format: UInt8 = CHUNKRecord.formatJSON, hmac: [UInt8] = [], data: [UInt8]) {
        self.format = format
        self.hmac = hmac
        self.data = data
    }

    /// Format 1, no HMAC, `Data = contentType ‖ content` — how the KRS builds its confirmation
    /// reports and the KDC its enrollment response (PROTOCOL §4.1).
    public init(contentType: ContentType, content: [UInt8]) {
        self.init(format: CHUNKRecord.formatJSON, hmac: [], data: [contentType.rawValue] + content)
    }

    /// Strict decode of the option data: HMACLen ≤ 64, both lengths within the data, nothing
    /// after Data.
    public init(optionData: [UInt8]) throws(TDNSError) {
        var r = WireReader(optionData)
        guard optionData.count >= Self.minimumLength else {
            throw .malformed("CHUNK option: \(optionData.count) bytes, at least 5 needed")
        }
        format = try r.readUInt8("CHUNK option format")
        let hmacLength = Int(try r.readUInt16("CHUNK option HMAC length"))
        guard hmacLength <= Self.maxHMACLength else {
            throw .malformed("CHUNK option: HMAC length \(hmacLength) exceeds 64")
        }
        hmac = try r.readBytes(hmacLength, "CHUNK option HMAC")
        let dataLength = Int(try r.readUInt16("CHUNK option data length"))
        data = try r.readBytes(dataLength, "CHUNK option data")
        try r.expectEnd("CHUNK option")
    }

    /// The option data; `.tooBig` for an HMAC over 64 bytes or an option over 65535 bytes.
    public func optionData() throws(TDNSError) -> [UInt8] {
        guard hmac.count <= Self.maxHMACLength else { throw .tooBig("CHUNK option: HMAC of \(hmac.count) bytes exceeds 64") }
        var w = WireWriter(capacity: Self.minimumLength + hmac.count + data.count)
        w.writeUInt8(format)
        try w.writeLengthPrefixed16(hmac, "CHUNK option HMAC")
        try w.writeLengthPrefixed16(data, "CHUNK option data")
        guard w.count <= 65535 else { throw .tooBig("CHUNK option of \(w.count) bytes") }
        return w.bytes
    }

    /// As an ``EDNSOption`` with code 65004.
    public func ednsOption() throws(TDNSError) -> EDNSOption {
        EDNSOption(code: .chunk, data: try optionData())
    }

    /// `Data[0]`, nil when Data is empty.
    public var contentType: ContentType? { data.first.map { ContentType(rawValue: $0) } }

    /// `Data[1...]` (empty when Data is empty).
    public var content: [UInt8] { Array(data.dropFirst()) }

    /// Content type and content; `.malformed` when Data is empty.
    public func contentParts() throws(TDNSError) -> (type: ContentType, content: [UInt8]) {
        guard let t = contentType else { throw .malformed("CHUNK option: empty data, no content type") }
        return (t, content)
    }
}
