import TDNSCore

/// A question (RFC 1035 §4.1.2); in an UPDATE it is the zone section (RFC 2136 §2.3).
public struct Question: Hashable, Sendable, CustomStringConvertible {
    /// QNAME (UPDATE: the zone name).
    public var name: DNSName
    /// QTYPE (UPDATE: SOA).
    public var type: RRType
    /// QCLASS.
    public var rrClass: RRClass

    /// A question; class IN by default.
    public init(name: DNSName, type: RRType, rrClass: RRClass = .in) {
        self.name = name
        self.type = type
        self.rrClass = rrClass
    }

    /// Reads a question; the name may be compressed.
    public init(wireEncoded reader: inout WireReader) throws(TDNSError) {
        name = try DNSName(wireEncoded: &reader, allowCompression: true)
        type = RRType(try reader.readUInt16("QTYPE"))
        rrClass = RRClass(try reader.readUInt16("QCLASS"))
    }

    /// Appends the question (name uncompressed).
    public func serialize(into writer: inout WireWriter) {
        name.serialize(into: &writer)
        writer.writeUInt16(type.rawValue)
        writer.writeUInt16(rrClass.rawValue)
    }

    /// `name class type`, as dig prints a question.
    public var description: String { "\(name)\t\(rrClass)\t\(type)" }
}

/// A resource record (RFC 1035 §3.2.1, §4.1.3) with its RDATA kept as opaque bytes.
///
/// RDATA is stored exactly as received: decode it with the record types (``CHUNKRecord``,
/// ``KEYRecord``, ``SIGRecord``, ``DNSKEYRecord``) when the type says so. For the RFC 1035 types
/// whose RDATA may hold compressed names (NS, CNAME, SOA, PTR, MX, …; RFC 3597 §4) the received
/// bytes can contain pointers into the message; nothing the KDC/KRS exchanges uses those types
/// in RDATA.
public struct ResourceRecord: Hashable, Sendable {
    /// Owner name.
    public var name: DNSName
    /// TYPE.
    public var type: RRType
    /// CLASS (for OPT: the UDP payload size).
    public var rrClass: RRClass
    /// TTL (for OPT: extended RCODE, version, flags).
    public var ttl: UInt32
    /// RDATA as received or to be sent.
    public var rdata: [UInt8]

    /// A record; class IN by default.
    public init(name: DNSName, type: RRType, rrClass: RRClass = .in, ttl: UInt32, rdata: [UInt8]) {
        self.name = name
        self.type = type
        self.rrClass = rrClass
        self.ttl = ttl
        self.rdata = rdata
    }

    /// Reads one RR; the owner may be compressed, RDLENGTH must fit in the reader's window.
    public init(wireEncoded reader: inout WireReader) throws(TDNSError) {
        name = try DNSName(wireEncoded: &reader, allowCompression: true)
        type = RRType(try reader.readUInt16("TYPE"))
        rrClass = RRClass(try reader.readUInt16("CLASS"))
        ttl = try reader.readUInt32("TTL")
        let length = Int(try reader.readUInt16("RDLENGTH"))
        rdata = try reader.readBytes(length, "RDATA")
    }

    /// Appends the RR (owner uncompressed); `.tooBig` when the RDATA exceeds 65535 bytes.
    public func serialize(into writer: inout WireWriter) throws(TDNSError) {
        name.serialize(into: &writer)
        writer.writeUInt16(type.rawValue)
        writer.writeUInt16(rrClass.rawValue)
        writer.writeUInt32(ttl)
        try writer.writeLengthPrefixed16(rdata, "RDATA of \(type)")
    }

    /// The RDATA in presentation form: the type's own format for CHUNK (both codes), KEY,
    /// DNSKEY and SIG when the RDATA decodes, else the RFC 3597 generic form `\# <len> <hex>`.
    public var rdataPresentation: String {
        switch type {
        case .chunk, .chunkLegacy:
            if let r = try? CHUNKRecord(rdata: rdata) { return r.presentation }
        case .key:
            if let r = try? KEYRecord(rdata: rdata) { return r.presentation }
        case .dnskey:
            if let r = try? DNSKEYRecord(rdata: rdata) { return r.presentation }
        case .sig:
            if let r = try? SIGRecord(rdata: rdata) { return r.presentation }
        default:
            break
        }
        return GenericRData.presentation(rdata)
    }

    /// `owner<TAB>ttl<TAB>class<TAB>type<TAB>rdata`, the layout miekg/dns prints (and therefore
    /// the layout of the KDC's `dnskey_rr` and the KRS's `sig0_pubkey` texts, PROTOCOL §10.2, §11.3).
    public var presentation: String {
        "\(name)\t\(ttl)\t\(rrClass)\t\(type)\t\(rdataPresentation)"
    }

    /// Parses one presentation line `owner [ttl] [class] type rdata…` (TTL and class in either
    /// order, RFC 1035 §5.1). The owner must be present; a relative owner needs `origin`.
    ///
    /// RDATA is parsed for CHUNK (`CHUNK`, `TYPE65288`, `TYPE65015`), KEY, DNSKEY; every type
    /// also accepts the generic `\# <len> <hex>` form, which is the only form accepted for other
    /// types. A missing class means IN; a missing TTL uses `defaultTTL` or is `.malformed`.
    public init(presentation text: String, origin: DNSName? = nil, defaultTTL: UInt32? = nil) throws(TDNSError) {
        let line = try PresentationTokens(text)
        guard line.count >= 2 else { throw .malformed("RR text: needs at least an owner and a type") }
        name = try DNSName(presentation: line.token(0), origin: origin)
        var i = 1
        var ttl: UInt32? = nil
        var rrClass: RRClass? = nil
        var type: RRType? = nil
        while i < line.count, type == nil {
            let token = line.token(i)
            if ttl == nil, let t: UInt32 = parseDecimal(token) {
                ttl = t
            } else if rrClass == nil, let c = RRClass(presentation: String(decoding: token, as: UTF8.self)) {
                rrClass = c
            } else if let t = RRType(presentation: String(decoding: token, as: UTF8.self)) {
                type = t
            } else {
                throw .malformed("RR text: unexpected token \"\(String(decoding: token.prefix(40), as: UTF8.self))\"")
            }
            i += 1
        }
        guard let type else { throw .malformed("RR text: no type") }
        guard let ttl = ttl ?? defaultTTL else { throw .malformed("RR text: no TTL") }
        self.type = type
        self.ttl = ttl
        self.rrClass = rrClass ?? .in
        self.rdata = try Self.parseRData(type: type, line: line, from: i)
    }

    static func parseRData(type: RRType, line: PresentationTokens, from i: Int) throws(TDNSError) -> [UInt8] {
        if i < line.count, line.token(i).elementsEqual("\\#".utf8) {
            return try GenericRData.parse(line, from: i)
        }
        switch type {
        case .chunk, .chunkLegacy:
            return try CHUNKRecord(presentation: line, from: i).rdata()
        case .key:
            return try KEYRecord(presentation: line, from: i).rdata()
        case .dnskey:
            return try DNSKEYRecord(presentation: line, from: i).rdata()
        default:
            throw .malformed("RR text: RDATA of \(type) is only accepted in the generic `\\#` form")
        }
    }
}
