import TDNSCore

/// An owner, TTL and class together with decoded RDATA: one parsed presentation line.
public struct RecordLine<Record: Hashable & Sendable>: Hashable, Sendable {
    /// Owner name.
    public var owner: DNSName
    /// TTL in seconds.
    public var ttl: UInt32
    /// Class (IN for everything the KDC/KRS writes).
    public var rrClass: RRClass
    /// The decoded RDATA.
    public var record: Record

    /// A line from its parts.
    public init(owner: DNSName, ttl: UInt32, rrClass: RRClass = .in, record: Record) {
        self.owner = owner
        self.ttl = ttl
        self.rrClass = rrClass
        self.record = record
    }
}

/// The RDATA layout DNSKEY (RFC 4034 §2.1) and KEY (RFC 2535 §3.1) share:
/// `flags(2) ‖ protocol(1) ‖ algorithm(1) ‖ public key`.
struct KeyRData: Hashable, Sendable {
    var flags: UInt16
    var proto: UInt8
    var algorithm: UInt8
    var publicKey: [UInt8]

    init(flags: UInt16, proto: UInt8, algorithm: UInt8, publicKey: [UInt8]) {
        self.flags = flags
        self.proto = proto
        self.algorithm = algorithm
        self.publicKey = publicKey
    }

    init(rdata: [UInt8], what: String) throws(TDNSError) {
        var r = WireReader(rdata)
        guard rdata.count >= 4 else { throw .malformed("\(what) RDATA: \(rdata.count) bytes, at least 4 needed") }
        flags = try r.readUInt16()
        proto = try r.readUInt8()
        algorithm = try r.readUInt8()
        publicKey = r.readRemaining()
    }

    var rdata: [UInt8] {
        var w = WireWriter(capacity: 4 + publicKey.count)
        w.writeUInt16(flags)
        w.writeUInt8(proto)
        w.writeUInt8(algorithm)
        w.writeBytes(publicKey)
        return w.bytes
    }

    /// RFC 4034 Appendix B (Appendix B.1 for algorithm 1); identical for KEY (RFC 2535 §4.1.6).
    var keyTag: UInt16 {
        if algorithm == 1 {
            let n = publicKey.count
            guard n >= 3 else { return 0 }
            return UInt16(publicKey[n - 3]) << 8 | UInt16(publicKey[n - 2])
        }
        // Sum the RDATA as big-endian 16-bit words, then fold the carry once. The public key
        // starts at RDATA offset 4, so its even indices are high octets. 64-bit wrapping adds
        // cannot trap, and 65535 octets cannot overflow 64 bits anyway.
        var ac: UInt64 = UInt64(flags) &+ (UInt64(proto) << 8) &+ UInt64(algorithm)
        for (i, b) in publicKey.enumerated() {
            ac &+= i & 1 == 0 ? UInt64(b) << 8 : UInt64(b)
        }
        ac &+= (ac >> 16) & 0xFFFF
        return UInt16(truncatingIfNeeded: ac)
    }

    /// An empty key (RDATA of exactly 4 octets, e.g. a KEY with the NOKEY flags) is printed in
    /// the RFC 3597 generic form: `<flags> <protocol> <algorithm>` with nothing after it would not
    /// read back (the parser requires the key field), `\# 4 <hex>` does.
    var presentation: String {
        publicKey.isEmpty ? GenericRData.presentation(rdata) : "\(flags) \(proto) \(algorithm) \(Base64.encode(publicKey))"
    }

    /// `<flags> <protocol> <algorithm> <base64…>`: numbers in decimal, the key as padded
    /// standard base64 that may be split by blanks (as BIND and the KDC write it).
    init(presentation t: PresentationTokens, from i: Int, what: String) throws(TDNSError) {
        guard t.count >= i + 4 else { throw .malformed("\(what) text: needs <flags> <protocol> <algorithm> <key>") }
        guard let flags: UInt16 = parseDecimal(t.token(i)) else { throw .malformed("\(what) text: bad flags") }
        guard let proto: UInt8 = parseDecimal(t.token(i + 1)) else { throw .malformed("\(what) text: bad protocol") }
        guard let algorithm: UInt8 = parseDecimal(t.token(i + 2)) else { throw .malformed("\(what) text: bad algorithm") }
        let key: [UInt8]
        do {
            key = try Base64.decode(t.joined(from: i + 3))
        } catch {
            throw .malformed("\(what) text: public key is not base64")
        }
        guard 4 + key.count <= 65535 else { throw .tooBig("\(what): public key too long") }
        self.init(flags: flags, proto: proto, algorithm: algorithm, publicKey: key)
    }

    static func parseLine(_ text: String, type: RRType, origin: DNSName?, what: String) throws(TDNSError) -> (DNSName, UInt32, RRClass, [UInt8]) {
        let rr = try ResourceRecord(presentation: text, origin: origin)
        guard rr.type == type else { throw .malformed("\(what) line: record type is \(rr.type), not \(type)") }
        return (rr.name, rr.ttl, rr.rrClass, rr.rdata)
    }
}

// MARK: - DNSKEY

/// DNSKEY RDATA (RFC 4034 §2.1): the public half of a zone key the KDC distributes
/// (PROTOCOL §10.2, where it travels as presentation text).
public struct DNSKEYRecord: Hashable, Sendable, CustomStringConvertible {
    /// Zone Key flag, bit 7 (RFC 4034 §2.1.1): 256.
    public static let zoneKeyFlag: UInt16 = 0x0100
    /// Secure Entry Point flag, bit 15 (RFC 4034 §2.1.1): KSKs have flags 257.
    public static let secureEntryPointFlag: UInt16 = 0x0001
    /// REVOKE flag, bit 8 (RFC 5011 §3).
    public static let revokeFlag: UInt16 = 0x0080
    /// The only valid protocol value (RFC 4034 §2.1.2).
    public static let protocolValue: UInt8 = 3

    /// 256 = zone key (ZSK), 257 = zone key + SEP (KSK) (RFC 4034 §2.1.1).
    public var flags: UInt16
    /// Must be 3 to be used (RFC 4034 §2.1.2); other values are kept, not rejected here.
    public var `protocol`: UInt8
    /// DNSSEC algorithm number (RFC 4034 §2.1.3; 13 = ECDSAP256SHA256, 15 = ED25519).
    public var algorithm: UInt8
    /// Algorithm-specific public key (RFC 4034 §2.1.4), e.g. 64 bytes x‖y for ECDSA P-256.
    public var publicKey: [UInt8]

    /// A DNSKEY from its fields.
    public init(flags: UInt16, protocol: UInt8 = DNSKEYRecord.protocolValue, algorithm: UInt8, publicKey: [UInt8]) {
        self.flags = flags
        self.protocol = `protocol`
        self.algorithm = algorithm
        self.publicKey = publicKey
    }

    private init(_ k: KeyRData) {
        self.init(flags: k.flags, protocol: k.proto, algorithm: k.algorithm, publicKey: k.publicKey)
    }

    private var core: KeyRData { KeyRData(flags: flags, proto: `protocol`, algorithm: algorithm, publicKey: publicKey) }

    /// Decodes RDATA (at least the 4 fixed bytes; the rest is the key).
    public init(rdata: [UInt8]) throws(TDNSError) {
        self.init(try KeyRData(rdata: rdata, what: "DNSKEY"))
    }

    /// The RDATA.
    public func rdata() -> [UInt8] { core.rdata }

    /// The key tag (RFC 4034 Appendix B).
    public var keyTag: UInt16 { core.keyTag }

    /// True when the SEP flag is set (a KSK by convention, RFC 4034 §2.1.1).
    public var isSecureEntryPoint: Bool { flags & Self.secureEntryPointFlag != 0 }

    /// True when the Zone Key flag is set.
    public var isZoneKey: Bool { flags & Self.zoneKeyFlag != 0 }

    /// RDATA presentation `<flags> <protocol> <algorithm> <base64>` (RFC 4034 §2.2).
    public var presentation: String { core.presentation }

    public var description: String { presentation }

    /// Parses RDATA presentation (see ``presentation``); the base64 key may be split by blanks.
    public init(presentation text: String) throws(TDNSError) {
        try self.init(presentation: PresentationTokens(text), from: 0)
    }

    init(presentation t: PresentationTokens, from i: Int) throws(TDNSError) {
        if i < t.count, t.token(i).elementsEqual("\\#".utf8) {
            try self.init(rdata: GenericRData.parse(t, from: i))
        } else {
            self.init(try KeyRData(presentation: t, from: i, what: "DNSKEY"))
        }
    }

    /// Parses a whole DNSKEY line as the KDC sends it (PROTOCOL §10.2, miekg `String()`):
    /// `example.com.\t3600\tIN\tDNSKEY\t257 3 13 <base64, possibly with blanks>`.
    ///
    /// Owner and TTL are required (a relative owner needs `origin`); TTL and class may come in
    /// either order; the class defaults to IN. The type must be DNSKEY.
    public static func parsePresentationLine(_ text: String, origin: DNSName? = nil) throws(TDNSError) -> RecordLine<DNSKEYRecord> {
        let (owner, ttl, rrClass, rdata) = try KeyRData.parseLine(text, type: .dnskey, origin: origin, what: "DNSKEY")
        return RecordLine(owner: owner, ttl: ttl, rrClass: rrClass, record: try DNSKEYRecord(rdata: rdata))
    }

    /// `owner<TAB>ttl<TAB>class<TAB>DNSKEY<TAB>rdata`, the miekg layout the KDC uses.
    public func presentationLine(owner: DNSName, ttl: UInt32, rrClass: RRClass = .in) -> String {
        "\(owner)\t\(ttl)\t\(rrClass)\tDNSKEY\t\(presentation)"
    }

    /// The record line of a BIND `K<zone>+<alg>+<tag>.key` file, without the `;` comment
    /// header dnssec-keygen writes above it: `owner ttl IN DNSKEY flags 3 alg base64`.
    public func keyFileLine(owner: DNSName, ttl: UInt32) -> String {
        "\(owner) \(ttl) IN DNSKEY \(presentation)"
    }
}

// MARK: - KEY

/// KEY RDATA (RFC 2535 §3.1, RFC 3445): the KRS's SIG(0) public key — flags 256, protocol 3,
/// algorithm 15 (Ed25519), owner = node ID (PROTOCOL §11.3, §12).
public struct KEYRecord: Hashable, Sendable, CustomStringConvertible {
    /// Flags the KRS's SIG(0) key carries (PROTOCOL §11.3: "KEY 256 3 15").
    public static let sig0Flags: UInt16 = 256
    /// DNSSEC protocol value (RFC 2535 §3.1.3, RFC 3445 §4).
    public static let protocolDNSSEC: UInt8 = 3

    /// KEY flags (RFC 2535 §3.1.2, RFC 3445): 256 for the KRS's SIG(0) key.
    public var flags: UInt16
    /// 3 = DNSSEC (RFC 3445 §4).
    public var `protocol`: UInt8
    /// DNSSEC algorithm number; 15 = Ed25519 (RFC 8080).
    public var algorithm: UInt8
    /// Algorithm-specific public key; 32 bytes for Ed25519 (RFC 8080 §3).
    public var publicKey: [UInt8]

    /// A KEY from its fields; defaults give the KRS's `KEY 256 3 <alg>`.
    public init(flags: UInt16 = KEYRecord.sig0Flags, protocol: UInt8 = KEYRecord.protocolDNSSEC, algorithm: UInt8, publicKey: [UInt8]) {
        self.flags = flags
        self.protocol = `protocol`
        self.algorithm = algorithm
        self.publicKey = publicKey
    }

    private init(_ k: KeyRData) {
        self.init(flags: k.flags, protocol: k.proto, algorithm: k.algorithm, publicKey: k.publicKey)
    }

    private var core: KeyRData { KeyRData(flags: flags, proto: `protocol`, algorithm: algorithm, publicKey: publicKey) }

    /// Decodes RDATA (at least the 4 fixed bytes).
    public init(rdata: [UInt8]) throws(TDNSError) {
        self.init(try KeyRData(rdata: rdata, what: "KEY"))
    }

    /// The RDATA.
    public func rdata() -> [UInt8] { core.rdata }

    /// Key tag, computed as for DNSKEY (RFC 2535 §4.1.6 / RFC 4034 Appendix B); this is the key
    /// tag a SIG(0) made with this key carries.
    public var keyTag: UInt16 { core.keyTag }

    /// `<flags> <protocol> <algorithm> <base64>`.
    public var presentation: String { core.presentation }

    public var description: String { presentation }

    /// Parses RDATA presentation; the base64 key may be split by blanks.
    public init(presentation text: String) throws(TDNSError) {
        try self.init(presentation: PresentationTokens(text), from: 0)
    }

    init(presentation t: PresentationTokens, from i: Int) throws(TDNSError) {
        if i < t.count, t.token(i).elementsEqual("\\#".utf8) {
            try self.init(rdata: GenericRData.parse(t, from: i))
        } else {
            self.init(try KeyRData(presentation: t, from: i, what: "KEY"))
        }
    }

    /// Parses a whole KEY line, e.g. the `sig0_pubkey` of an enrollment request
    /// (`edge1.example.net.\t3600\tIN\tKEY\t256 3 15 <b64>`, PROTOCOL §11.3).
    public static func parsePresentationLine(_ text: String, origin: DNSName? = nil) throws(TDNSError) -> RecordLine<KEYRecord> {
        let (owner, ttl, rrClass, rdata) = try KeyRData.parseLine(text, type: .key, origin: origin, what: "KEY")
        return RecordLine(owner: owner, ttl: ttl, rrClass: rrClass, record: try KEYRecord(rdata: rdata))
    }

    /// `owner<TAB>ttl<TAB>class<TAB>KEY<TAB>rdata` as miekg prints it — the `sig0_pubkey` text
    /// of the enrollment request (PROTOCOL §11.3: owner = node ID, TTL 3600, class IN).
    public func presentationLine(owner: DNSName, ttl: UInt32 = 3600, rrClass: RRClass = .in) -> String {
        "\(owner)\t\(ttl)\t\(rrClass)\tKEY\t\(presentation)"
    }
}

// MARK: - SIG

/// SIG RDATA (RFC 2535 §4.1, as used for SIG(0) by RFC 2931 §3):
///
///     type covered(2) ‖ algorithm(1) ‖ labels(1) ‖ original TTL(4) ‖ expiration(4) ‖
///     inception(4) ‖ key tag(2) ‖ signer's name ‖ signature
///
/// The signer's name must be uncompressed (RFC 2931 §3 / RFC 3597 §4: a name compressed against
/// a message cannot be decoded from the RDATA alone, and miekg/dns never compresses it).
public struct SIGRecord: Hashable, Sendable, CustomStringConvertible {
    /// Bytes before the signer's name.
    public static let fixedLength = 18

    /// 0 for SIG(0) (RFC 2931 §3).
    public var typeCovered: RRType
    /// DNSSEC algorithm number of the signing key.
    public var algorithm: UInt8
    /// Owner label count; 0 for SIG(0).
    public var labels: UInt8
    /// Original TTL; 0 for SIG(0).
    public var originalTTL: UInt32
    /// Seconds since the epoch, serial-number arithmetic (RFC 2535 §4.1.5).
    public var expiration: UInt32
    /// Seconds since the epoch; tdns uses now − 60 s − jitter (PROTOCOL §12).
    public var inception: UInt32
    /// Key tag of the KEY that verifies the signature.
    public var keyTag: UInt16
    /// For SIG(0), the name of the KEY that verifies the signature (RFC 2931 §3). The tdns KRS
    /// puts the **control zone** here, not the node ID (PROTOCOL §12).
    public var signerName: DNSName
    /// Empty while the SIG is being built (``SIG0``).
    public var signature: [UInt8]

    /// A SIG from its fields.
    public init(
        typeCovered: RRType, algorithm: UInt8, labels: UInt8, originalTTL: UInt32,
        expiration: UInt32, inception: UInt32, keyTag: UInt16, signerName: DNSName, signature: [UInt8] = []
    ) {
        self.typeCovered = typeCovered
        self.algorithm = algorithm
        self.labels = labels
        self.originalTTL = originalTTL
        self.expiration = expiration
        self.inception = inception
        self.keyTag = keyTag
        self.signerName = signerName
        self.signature = signature
    }

    /// A SIG(0) without signature: type covered 0, labels 0, original TTL 0 (RFC 2931 §3; miekg
    /// `SIG.Sign` zeroes exactly these).
    public static func sig0(
        algorithm: UInt8, keyTag: UInt16, signerName: DNSName, inception: UInt32, expiration: UInt32
    ) -> SIGRecord {
        SIGRecord(
            typeCovered: RRType(0), algorithm: algorithm, labels: 0, originalTTL: 0,
            expiration: expiration, inception: inception, keyTag: keyTag, signerName: signerName)
    }

    /// True when type covered is 0 (RFC 2931 §3).
    public var isSIG0: Bool { typeCovered.rawValue == 0 }

    /// Decodes RDATA; the signature is everything after the signer's name (may be empty).
    public init(rdata: [UInt8]) throws(TDNSError) {
        var r = WireReader(rdata)
        guard rdata.count >= Self.fixedLength + 1 else {
            throw .malformed("SIG RDATA: \(rdata.count) bytes, at least 19 needed")
        }
        typeCovered = RRType(try r.readUInt16())
        algorithm = try r.readUInt8()
        labels = try r.readUInt8()
        originalTTL = try r.readUInt32()
        expiration = try r.readUInt32()
        inception = try r.readUInt32()
        keyTag = try r.readUInt16()
        signerName = try DNSName(wireEncoded: &r, allowCompression: false)
        signature = r.readRemaining()
    }

    /// The RDATA without the signature field: what RFC 2931 §3 puts first in the signed data.
    public func rdataWithoutSignature() -> [UInt8] {
        var w = WireWriter(capacity: Self.fixedLength + signerName.wireLength)
        w.writeUInt16(typeCovered.rawValue)
        w.writeUInt8(algorithm)
        w.writeUInt8(labels)
        w.writeUInt32(originalTTL)
        w.writeUInt32(expiration)
        w.writeUInt32(inception)
        w.writeUInt16(keyTag)
        signerName.serialize(into: &w)
        return w.bytes
    }

    /// The full RDATA (fixed fields, signer's name, signature).
    public func rdata() -> [UInt8] { rdataWithoutSignature() + signature }

    /// RDATA presentation (RFC 2535 §7.2): `<type covered> <alg> <labels> <orig TTL>
    /// <expiration YYYYMMDDHHmmSS> <inception YYYYMMDDHHmmSS> <key tag> <signer> <base64>`.
    /// Type covered 0 prints as `TYPE0`. For logs only; there is no parser.
    public var presentation: String {
        "\(typeCovered) \(algorithm) \(labels) \(originalTTL) \(DNSTime.format(Int64(expiration))) \(DNSTime.format(Int64(inception))) \(keyTag) \(signerName) \(Base64.encode(signature))"
    }

    public var description: String { presentation }
}
