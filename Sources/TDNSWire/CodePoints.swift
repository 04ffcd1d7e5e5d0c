import TDNSCore

// Open code points (STYLE rule 8): every registry value is a struct wrapping the number, with
// `static let` names for the values we know. Unknown values parse, compare and round-trip.

// MARK: - RRType

/// A resource record TYPE (RFC 1035 §3.2.2, IANA "Resource Record (RR) TYPEs").
public struct RRType: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The 16-bit code.
    public let rawValue: UInt16

    /// Any 16-bit value is valid.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Same as ``init(rawValue:)``.
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// A, RFC 1035 §3.4.1.
    public static let a = RRType(1)
    /// NS, RFC 1035 §3.3.11.
    public static let ns = RRType(2)
    /// CNAME, RFC 1035 §3.3.1.
    public static let cname = RRType(5)
    /// SOA, RFC 1035 §3.3.13; also the zone-section type of an UPDATE (RFC 2136 §2.3).
    public static let soa = RRType(6)
    /// PTR, RFC 1035 §3.3.12.
    public static let ptr = RRType(12)
    /// MX, RFC 1035 §3.3.9.
    public static let mx = RRType(15)
    /// TXT, RFC 1035 §3.3.14.
    public static let txt = RRType(16)
    /// SIG, RFC 2535 §4.1; as SIG(0) it signs a whole message (RFC 2931 §3, PROTOCOL §12).
    public static let sig = RRType(24)
    /// KEY, RFC 2535 §3.1; holds the KRS's SIG(0) public key (PROTOCOL §11.3, §12).
    public static let key = RRType(25)
    /// AAAA, RFC 3596 §2.1.
    public static let aaaa = RRType(28)
    /// SRV, RFC 2782.
    public static let srv = RRType(33)
    /// OPT, the EDNS(0) pseudo-record (RFC 6891 §6.1).
    public static let opt = RRType(41)
    /// DS, RFC 4034 §5.
    public static let ds = RRType(43)
    /// RRSIG, RFC 4034 §3.
    public static let rrsig = RRType(46)
    /// NSEC, RFC 4034 §4.
    public static let nsec = RRType(47)
    /// DNSKEY, RFC 4034 §2; distributed keys travel as DNSKEY presentation text (PROTOCOL §10.2).
    public static let dnskey = RRType(48)
    /// NSEC3, RFC 5155 §3.
    public static let nsec3 = RRType(50)
    /// NSEC3PARAM, RFC 5155 §4.
    public static let nsec3param = RRType(51)
    /// CDS, RFC 7344 §3.1.
    public static let cds = RRType(59)
    /// CDNSKEY, RFC 7344 §3.2.
    public static let cdnskey = RRType(60)
    /// TKEY, RFC 2930.
    public static let tkey = RRType(249)
    /// TSIG, RFC 8945.
    public static let tsig = RRType(250)
    /// IXFR, RFC 1995.
    public static let ixfr = RRType(251)
    /// AXFR, RFC 5936.
    public static let axfr = RRType(252)
    /// ANY / "*", RFC 1035 §3.2.3 (QTYPE only).
    public static let any = RRType(255)
    /// CHUNK as current tdns defines it: 65288 = 0xFF08, RFC 6895 private use
    /// (PROTOCOL §2.1; tdns `v2/core/rr_defs.go` since 2026-03-11).
    public static let chunk = RRType(65288)
    /// CHUNK as the KDC/KRS of Jan–Mar 2026 were built: 65015 = 0xFDF7 (PROTOCOL §2.1, era E2).
    /// Printed as `TYPE65015`, since `CHUNK` names ``chunk``.
    public static let chunkLegacy = RRType(65015)
    /// JSONMANIFEST/JSONCHUNK of current tdns core (65289, PROTOCOL §3); not used by the KDC/KRS.
    public static let jsonChunk = RRType(65289)
    /// JWK, tdns agent key discovery (65324 = 0xFF2C, PROTOCOL §3); not used by the KDC/KRS.
    public static let jwk = RRType(65324)

    private static let names: [(UInt16, String)] = [
        (1, "A"), (2, "NS"), (5, "CNAME"), (6, "SOA"), (12, "PTR"), (15, "MX"), (16, "TXT"),
        (24, "SIG"), (25, "KEY"), (28, "AAAA"), (33, "SRV"), (41, "OPT"), (43, "DS"),
        (46, "RRSIG"), (47, "NSEC"), (48, "DNSKEY"), (50, "NSEC3"), (51, "NSEC3PARAM"),
        (59, "CDS"), (60, "CDNSKEY"), (249, "TKEY"), (250, "TSIG"), (251, "IXFR"), (252, "AXFR"),
        (255, "ANY"), (65288, "CHUNK"), (65324, "JWK"),
    ]

    /// The registered mnemonic, or nil for a type this library has no name for.
    public var mnemonic: String? {
        Self.names.first(where: { $0.0 == rawValue })?.1
    }

    /// The mnemonic, else the RFC 3597 §5 form `TYPE<n>`.
    public var description: String { mnemonic ?? "TYPE\(rawValue)" }

    /// Parses a mnemonic (case-insensitive) or `TYPE<n>` (RFC 3597 §5); nil otherwise.
    public init?(presentation text: some StringProtocol) {
        let upper = asciiUppercased(text)
        if let hit = Self.names.first(where: { $0.1 == upper }) {
            self.init(hit.0)
            return
        }
        guard upper.hasPrefix("TYPE"), let n: UInt16 = parseDecimal(upper.utf8.dropFirst(4)) else { return nil }
        self.init(n)
    }

    public static func < (lhs: RRType, rhs: RRType) -> Bool { lhs.rawValue < rhs.rawValue }
}

// MARK: - RRClass

/// A resource record CLASS (RFC 1035 §3.2.4, RFC 2136 §2.4 for NONE/ANY in UPDATE).
public struct RRClass: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 16-bit code.
    public let rawValue: UInt16

    /// Any 16-bit value is valid.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Same as ``init(rawValue:)``.
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// IN, the Internet (RFC 1035 §3.2.4). Every KDC/KRS record is class IN (PROTOCOL §2.7, §11.4).
    public static let `in` = RRClass(1)
    /// CH, Chaos (RFC 1035 §3.2.4).
    public static let ch = RRClass(3)
    /// HS, Hesiod (RFC 1035 §3.2.4).
    public static let hs = RRClass(4)
    /// NONE (RFC 2136 §2.4: "delete an RR from an RRset").
    public static let none = RRClass(254)
    /// ANY / "*" (RFC 1035 §3.2.5); the class of a SIG(0) record (RFC 2931 §3).
    public static let any = RRClass(255)

    private static let names: [(UInt16, String)] = [(1, "IN"), (3, "CH"), (4, "HS"), (254, "NONE"), (255, "ANY")]

    /// The mnemonic, or nil.
    public var mnemonic: String? { Self.names.first(where: { $0.0 == rawValue })?.1 }

    /// The mnemonic, else `CLASS<n>` (RFC 3597 §5).
    public var description: String { mnemonic ?? "CLASS\(rawValue)" }

    /// Parses a mnemonic (case-insensitive) or `CLASS<n>`; nil otherwise.
    public init?(presentation text: some StringProtocol) {
        let upper = asciiUppercased(text)
        if let hit = Self.names.first(where: { $0.1 == upper }) {
            self.init(hit.0)
            return
        }
        guard upper.hasPrefix("CLASS"), let n: UInt16 = parseDecimal(upper.utf8.dropFirst(5)) else { return nil }
        self.init(n)
    }
}

// MARK: - Opcode

/// A header OPCODE, 4 bits (RFC 1035 §4.1.1, IANA "DNS OpCodes").
public struct Opcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// Always 0…15.
    public let rawValue: UInt8

    /// nil when `rawValue` does not fit the 4-bit field.
    public init?(rawValue: UInt8) {
        guard rawValue <= 15 else { return nil }
        self.rawValue = rawValue
    }

    init(bits: UInt8) { rawValue = bits & 0x0F }

    /// QUERY, RFC 1035 §4.1.1.
    public static let query = Opcode(bits: 0)
    /// IQUERY (obsolete), RFC 3425.
    public static let iquery = Opcode(bits: 1)
    /// STATUS, RFC 1035 §4.1.1.
    public static let status = Opcode(bits: 2)
    /// NOTIFY, RFC 1996 §3.1; the distribution trigger and the confirmation (PROTOCOL §5.1, §10.6).
    public static let notify = Opcode(bits: 4)
    /// UPDATE, RFC 2136 §2.2; carries the enrollment request (PROTOCOL §11.4).
    public static let update = Opcode(bits: 5)
    /// DSO, RFC 8490.
    public static let dso = Opcode(bits: 6)

    private static let names: [(UInt8, String)] = [(0, "QUERY"), (1, "IQUERY"), (2, "STATUS"), (4, "NOTIFY"), (5, "UPDATE"), (6, "DSO")]

    /// The mnemonic, else `OPCODE<n>`.
    public var description: String { Self.names.first(where: { $0.0 == rawValue })?.1 ?? "OPCODE\(rawValue)" }
}

// MARK: - RCode

/// A response code, 12 bits: 4 in the header plus 8 in the OPT record (RFC 6891 §6.1.3;
/// IANA "DNS RCODEs").
public struct RCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// Always 0…4095.
    public let rawValue: UInt16

    /// nil when `rawValue` exceeds 12 bits.
    public init?(rawValue: UInt16) {
        guard rawValue <= 0x0FFF else { return nil }
        self.rawValue = rawValue
    }

    init(bits: UInt16) { rawValue = bits & 0x0FFF }

    /// The 4 bits that go into the header.
    public var headerBits: UInt8 { UInt8(truncatingIfNeeded: rawValue & 0x0F) }
    /// The 8 bits that go into the OPT record's EXTENDED-RCODE (RFC 6891 §6.1.3).
    public var extendedBits: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 4) }

    /// NOERROR, RFC 1035 §4.1.1.
    public static let noError = RCode(bits: 0)
    /// FORMERR, RFC 1035 §4.1.1.
    public static let formErr = RCode(bits: 1)
    /// SERVFAIL, RFC 1035 §4.1.1.
    public static let servFail = RCode(bits: 2)
    /// NXDOMAIN, RFC 1035 §4.1.1.
    public static let nxDomain = RCode(bits: 3)
    /// NOTIMP, RFC 1035 §4.1.1.
    public static let notImp = RCode(bits: 4)
    /// REFUSED, RFC 1035 §4.1.1.
    public static let refused = RCode(bits: 5)
    /// YXDOMAIN, RFC 2136 §2.2.
    public static let yxDomain = RCode(bits: 6)
    /// YXRRSET, RFC 2136 §2.2.
    public static let yxRRSet = RCode(bits: 7)
    /// NXRRSET, RFC 2136 §2.2.
    public static let nxRRSet = RCode(bits: 8)
    /// NOTAUTH, RFC 2136 §2.2 / RFC 8945 §5.3.2.
    public static let notAuth = RCode(bits: 9)
    /// NOTZONE, RFC 2136 §2.2.
    public static let notZone = RCode(bits: 10)
    /// DSOTYPENI, RFC 8490.
    public static let dsoTypeNI = RCode(bits: 11)
    /// BADVERS, RFC 6891 §9 (needs EDNS).
    public static let badVers = RCode(bits: 16)
    /// BADKEY, RFC 8945.
    public static let badKey = RCode(bits: 17)
    /// BADTIME, RFC 8945.
    public static let badTime = RCode(bits: 18)
    /// BADMODE, RFC 2930.
    public static let badMode = RCode(bits: 19)
    /// BADNAME, RFC 2930.
    public static let badName = RCode(bits: 20)
    /// BADALG, RFC 2930.
    public static let badAlg = RCode(bits: 21)
    /// BADTRUNC, RFC 8945.
    public static let badTrunc = RCode(bits: 22)
    /// BADCOOKIE, RFC 7873.
    public static let badCookie = RCode(bits: 23)

    private static let names: [(UInt16, String)] = [
        (0, "NOERROR"), (1, "FORMERR"), (2, "SERVFAIL"), (3, "NXDOMAIN"), (4, "NOTIMP"), (5, "REFUSED"),
        (6, "YXDOMAIN"), (7, "YXRRSET"), (8, "NXRRSET"), (9, "NOTAUTH"), (10, "NOTZONE"), (11, "DSOTYPENI"),
        (16, "BADVERS"), (17, "BADKEY"), (18, "BADTIME"), (19, "BADMODE"), (20, "BADNAME"), (21, "BADALG"),
        (22, "BADTRUNC"), (23, "BADCOOKIE"),
    ]

    /// The mnemonic, else `RCODE<n>`.
    public var description: String { Self.names.first(where: { $0.0 == rawValue })?.1 ?? "RCODE\(rawValue)" }
}

// MARK: - EDNSOptionCode

/// An EDNS(0) option code (RFC 6891 §6.1.2, IANA "DNS EDNS0 Option Codes").
public struct EDNSOptionCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 16-bit code.
    public let rawValue: UInt16

    /// Any 16-bit value is valid.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Same as ``init(rawValue:)``.
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// NSID, RFC 5001.
    public static let nsid = EDNSOptionCode(3)
    /// Client subnet, RFC 7871.
    public static let clientSubnet = EDNSOptionCode(8)
    /// COOKIE, RFC 7873.
    public static let cookie = EDNSOptionCode(10)
    /// edns-tcp-keepalive, RFC 7828.
    public static let tcpKeepalive = EDNSOptionCode(11)
    /// Padding, RFC 7830.
    public static let padding = EDNSOptionCode(12)
    /// Extended DNS error, RFC 8914.
    public static let extendedError = EDNSOptionCode(15)
    /// Report-Channel, RFC 9567.
    public static let reportChannel = EDNSOptionCode(18)
    /// tdns OOTS (65001, PROTOCOL §4); unused by the KDC/KRS.
    public static let oots = EDNSOptionCode(65001)
    /// tdns KEYSTATE (65002, PROTOCOL §4); unused by the KDC/KRS.
    public static let keyState = EDNSOptionCode(65002)
    /// tdns REPORT (65003, PROTOCOL §4); unused by the KDC/KRS.
    public static let report = EDNSOptionCode(65003)
    /// tdns CHUNK option (65004 = 0xFDEC, PROTOCOL §4.1): confirmations KRS → KDC and the
    /// enrollment response KDC → KRS. See ``ChunkOption``.
    public static let chunk = EDNSOptionCode(65004)
    /// tdns CHUNK query endpoint (65005, PROTOCOL §4); agents only.
    public static let chunkQueryEndpoint = EDNSOptionCode(65005)
    /// tdns HPKE ephemeral key (65010, PROTOCOL §4); defined, never used.
    public static let hpkeEphemeralKey = EDNSOptionCode(65010)

    private static let names: [(UInt16, String)] = [
        (3, "NSID"), (8, "CLIENT-SUBNET"), (10, "COOKIE"), (11, "TCP-KEEPALIVE"), (12, "PADDING"),
        (15, "EDE"), (18, "REPORT-CHANNEL"), (65001, "OOTS"), (65002, "KEYSTATE"), (65003, "REPORT"),
        (65004, "CHUNK"), (65005, "CHUNK-QUERY-ENDPOINT"), (65010, "HPKE-EPHEMERAL-KEY"),
    ]

    /// The name, else `OPTION<n>`.
    public var description: String { Self.names.first(where: { $0.0 == rawValue })?.1 ?? "OPTION\(rawValue)" }
}
