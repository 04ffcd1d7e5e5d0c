import TDNSCore

/// The single-bit header flags (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD/CD).
public struct DNSHeaderFlags: Hashable, Sendable {
    /// QR: this is a response.
    public var qr: Bool
    /// AA: authoritative answer (set on NOTIFY requests too, RFC 1996 §3.7, PROTOCOL §5.1).
    public var aa: Bool
    /// TC: truncated; the KRS retries over TCP (PROTOCOL §5.1 step 5).
    public var tc: Bool
    /// RD: recursion desired (0 on CHUNK queries, PROTOCOL §5.1 step 3).
    public var rd: Bool
    /// RA: recursion available.
    public var ra: Bool
    /// Z: reserved, must be zero; kept so that it round-trips.
    public var z: Bool
    /// AD: authentic data (RFC 4035 §3.2.3).
    public var ad: Bool
    /// CD: checking disabled (RFC 4035 §3.2.2).
    public var cd: Bool

    /// Flags; all clear by default.
    public init(
        qr: Bool = false, aa: Bool = false, tc: Bool = false, rd: Bool = false,
        ra: Bool = false, z: Bool = false, ad: Bool = false, cd: Bool = false
    ) {
        self.qr = qr
        self.aa = aa
        self.tc = tc
        self.rd = rd
        self.ra = ra
        self.z = z
        self.ad = ad
        self.cd = cd
    }

    init(word: UInt16) {
        qr = word & 0x8000 != 0
        aa = word & 0x0400 != 0
        tc = word & 0x0200 != 0
        rd = word & 0x0100 != 0
        ra = word & 0x0080 != 0
        z = word & 0x0040 != 0
        ad = word & 0x0020 != 0
        cd = word & 0x0010 != 0
    }

    var word: UInt16 {
        (qr ? 0x8000 : 0) | (aa ? 0x0400 : 0) | (tc ? 0x0200 : 0) | (rd ? 0x0100 : 0)
            | (ra ? 0x0080 : 0) | (z ? 0x0040 : 0) | (ad ? 0x0020 : 0) | (cd ? 0x0010 : 0)
    }
}

/// Where one record sits in the received bytes.
public struct RecordLocation: Hashable, Sendable {
    /// The whole RR: owner through RDATA.
    public let range: Range<Int>
    /// The RDATA alone.
    public let rdataRange: Range<Int>
    /// TYPE as received.
    public let type: RRType
    /// CLASS as received.
    public let rrClass: RRClass
    /// TTL as received.
    public let ttl: UInt32
}

/// The bytes a message was parsed from and where each part sat in them, so that signatures are
/// checked over what was received and never over a re-serialization (STYLE rule 9).
public struct ReceivedWire: Sendable {
    /// Exactly the bytes given to ``DNSMessage/init(wireEncoded:limits:)``.
    public let bytes: [UInt8]
    /// One range per question, in order.
    public let questions: [Range<Int>]
    /// One location per answer RR, in order.
    public let answers: [RecordLocation]
    /// One location per authority (UPDATE: update section) RR, in order.
    public let authority: [RecordLocation]
    /// One location per additional RR in wire order, **including** the OPT record (so this has
    /// ARCOUNT entries, while ``DNSMessage/additional`` omits the OPT).
    public let additional: [RecordLocation]
}

/// A DNS message (RFC 1035 §4.1) with EDNS(0) decoded (RFC 6891).
///
/// Parsing is strict and bounded: at most 65535 bytes, the section counts must match the
/// content exactly, no trailing bytes, at most one OPT and only in the additional section, and
/// the number of questions and records is limited by ``Limits``. The parsed message keeps the
/// received bytes and record offsets in ``received`` (for SIG(0), ``SIG0``).
///
/// Serialization writes names uncompressed. The OPT record is written after the other
/// additional records but before a trailing run of SIG/TSIG records, which must stay last
/// (RFC 2931 §3, RFC 8945 §5.1).
public struct DNSMessage: Sendable {
    /// Limits applied while parsing.
    public struct Limits: Hashable, Sendable {
        /// Largest QDCOUNT accepted. Every KDC/KRS message has exactly one question.
        public var maxQuestions: Int
        /// Largest ANCOUNT + NSCOUNT + ARCOUNT accepted.
        public var maxRecords: Int

        /// Limits; the defaults fit every KDC/KRS message.
        public init(maxQuestions: Int = 1, maxRecords: Int = 64) {
            self.maxQuestions = maxQuestions
            self.maxRecords = maxRecords
        }

        /// One question, 64 records.
        public static let `default` = Limits()
    }

    /// Largest message (the TCP length prefix, RFC 1035 §4.2.2).
    public static let maxSize = 65535
    /// Header size (RFC 1035 §4.1.1).
    public static let headerSize = 12

    /// Message ID (RFC 1035 §4.1.1); a response carries the request's.
    public var id: UInt16
    /// QR, AA, TC, RD, RA, Z, AD, CD.
    public var flags: DNSHeaderFlags
    /// QUERY, NOTIFY, UPDATE, …
    public var opcode: Opcode
    /// The full 12-bit RCODE: the header's 4 bits plus the OPT record's 8 (RFC 6891 §6.1.3).
    /// A value above 15 can only be serialized with ``edns`` set.
    public var rcode: RCode
    /// Question section (UPDATE: zone section, RFC 2136 §2.3).
    public var questions: [Question]
    /// Answer section (UPDATE: prerequisite section, RFC 2136 §2.4).
    public var answers: [ResourceRecord]
    /// Authority section (UPDATE: update section, RFC 2136 §2.5).
    public var authority: [ResourceRecord]
    /// Additional section without the OPT record (that one is ``edns``).
    public var additional: [ResourceRecord]
    /// EDNS(0) from the OPT record, nil when the message has none.
    public var edns: EDNS?
    /// The received bytes and record locations; set only by parsing. Mutating the message does
    /// not change it: it always describes what was received (verify signatures over it, never
    /// over ``serialize()``, STYLE rule 9).
    public private(set) var received: ReceivedWire?

    /// A message to serialize; ``received`` is nil.
    public init(
        id: UInt16, opcode: Opcode = .query, flags: DNSHeaderFlags = DNSHeaderFlags(), rcode: RCode = .noError,
        questions: [Question] = [], answers: [ResourceRecord] = [], authority: [ResourceRecord] = [],
        additional: [ResourceRecord] = [], edns: EDNS? = nil
    ) {
        self.id = id
        self.opcode = opcode
        self.flags = flags
        self.rcode = rcode
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
        self.edns = edns
        self.received = nil
    }

    /// UPDATE's name for ``authority`` (RFC 2136 §2.5).
    public var updates: [ResourceRecord] {
        get { authority }
        set { authority = newValue }
    }

    // MARK: parse

    /// Parses a complete message.
    ///
    /// - Throws: `.tooBig` for more than 65535 bytes or counts over `limits`; `.malformed` for
    ///   anything else that is wrong (truncation, count mismatch, trailing bytes, bad names,
    ///   OPT misuse).
    public init(wireEncoded bytes: [UInt8], limits: Limits = .default) throws(TDNSError) {
        guard bytes.count <= Self.maxSize else { throw .tooBig("DNS message of \(bytes.count) bytes exceeds 65535") }
        guard bytes.count >= Self.headerSize else {
            throw .malformed("DNS message of \(bytes.count) bytes is shorter than the 12-byte header")
        }
        var r = WireReader(bytes)
        let id = try r.readUInt16("ID")
        let word = try r.readUInt16("flags")
        let qd = Int(try r.readUInt16("QDCOUNT"))
        let an = Int(try r.readUInt16("ANCOUNT"))
        let ns = Int(try r.readUInt16("NSCOUNT"))
        let ar = Int(try r.readUInt16("ARCOUNT"))
        // Each question takes at least 5 bytes, each RR at least 11: refuse impossible counts
        // before allocating anything.
        guard qd * 5 + (an + ns + ar) * 11 <= r.remaining else {
            throw .malformed("DNS message: counts \(qd)/\(an)/\(ns)/\(ar) need more than the \(r.remaining) bytes after the header")
        }
        guard qd <= limits.maxQuestions else { throw .tooBig("DNS message: \(qd) questions, limit \(limits.maxQuestions)") }
        guard an + ns + ar <= limits.maxRecords else {
            throw .tooBig("DNS message: \(an + ns + ar) records, limit \(limits.maxRecords)")
        }

        var questions: [Question] = []
        var questionRanges: [Range<Int>] = []
        for _ in 0..<qd {
            let start = r.position
            questions.append(try Question(wireEncoded: &r))
            questionRanges.append(start..<r.position)
        }
        func section(_ count: Int, _ name: String) throws(TDNSError) -> ([ResourceRecord], [RecordLocation]) {
            var records: [ResourceRecord] = []
            var locations: [RecordLocation] = []
            for _ in 0..<count {
                let start = r.position
                let rr = try ResourceRecord(wireEncoded: &r)
                let end = r.position
                locations.append(RecordLocation(
                    range: start..<end, rdataRange: (end - rr.rdata.count)..<end,
                    type: rr.type, rrClass: rr.rrClass, ttl: rr.ttl))
                records.append(rr)
            }
            return (records, locations)
        }
        let (answers, answerLocations) = try section(an, "answer")
        let (authority, authorityLocations) = try section(ns, "authority")
        let (additionalAll, additionalLocations) = try section(ar, "additional")
        try r.expectEnd("DNS message")

        guard !answers.contains(where: { $0.type == .opt }), !authority.contains(where: { $0.type == .opt }) else {
            throw .malformed("DNS message: OPT record outside the additional section")
        }
        var edns: EDNS? = nil
        var additional: [ResourceRecord] = []
        for rr in additionalAll {
            if rr.type == .opt {
                guard edns == nil else { throw .malformed("DNS message: more than one OPT record") }
                edns = try EDNS(optRecord: rr)
            } else {
                additional.append(rr)
            }
        }

        self.id = id
        self.flags = DNSHeaderFlags(word: word)
        self.opcode = Opcode(bits: UInt8(truncatingIfNeeded: word >> 11))
        self.rcode = RCode(bits: UInt16(edns?.extendedRCode ?? 0) << 4 | word & 0x000F)
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
        self.edns = edns
        self.received = ReceivedWire(
            bytes: bytes, questions: questionRanges, answers: answerLocations,
            authority: authorityLocations, additional: additionalLocations)
    }

    // MARK: serialize

    /// The wire form, names uncompressed.
    ///
    /// - Throws: `.tooBig` when the message would exceed 65535 bytes or a section 65535 entries;
    ///   `.malformed` for an RCODE above 15 without EDNS.
    public func serialize() throws(TDNSError) -> [UInt8] {
        guard rcode.rawValue <= 15 || edns != nil else {
            throw .malformed("DNS message: RCODE \(rcode) needs an OPT record")
        }
        var trailingStart = additional.count
        while trailingStart > 0, [RRType.sig, .tsig].contains(additional[trailingStart - 1].type) {
            trailingStart -= 1
        }
        let opt = try edns?.optRecord(extendedRCode: rcode.extendedBits)
        guard let qd = UInt16(exactly: questions.count), let an = UInt16(exactly: answers.count),
            let ns = UInt16(exactly: authority.count), let ar = UInt16(exactly: additional.count + (opt == nil ? 0 : 1))
        else { throw .tooBig("DNS message: a section has more than 65535 entries") }

        var w = WireWriter()
        w.writeUInt16(id)
        w.writeUInt16(flags.word | UInt16(opcode.rawValue & 0x0F) << 11 | UInt16(rcode.headerBits))
        w.writeUInt16(qd)
        w.writeUInt16(an)
        w.writeUInt16(ns)
        w.writeUInt16(ar)
        for q in questions { q.serialize(into: &w) }
        for rr in answers { try rr.serialize(into: &w) }
        for rr in authority { try rr.serialize(into: &w) }
        for rr in additional[..<trailingStart] { try rr.serialize(into: &w) }
        if let opt { try opt.serialize(into: &w) }
        for rr in additional[trailingStart...] { try rr.serialize(into: &w) }
        guard w.count <= Self.maxSize else { throw .tooBig("DNS message of \(w.count) bytes exceeds 65535") }
        return w.bytes
    }
}
