import TDNSCore

/// Builders and recognisers for the messages the KDC and KRS exchange (PROTOCOL §2.6, §5,
/// §10.6, §11.4–§11.5). Every builder returns a ``DNSMessage``; serialize it (and, for the
/// enrollment UPDATE, sign it with ``SIG0``) to send.
public enum TDNSMessages {
    /// UDP payload size of the OPT on CHUNK queries and on NOTIFYs carrying a CHUNK option
    /// (PROTOCOL §4.1, §5.1 step 3, §10.6).
    public static let chunkQueryUDPSize: UInt16 = 4096
    /// UDP payload size of the OPT on the enrollment UPDATE (PROTOCOL §11.4).
    public static let enrollmentUDPSize: UInt16 = 1232
    /// First label of the enrollment CHUNK owner `_enroll.<control zone>` (PROTOCOL §11.4).
    public static let enrollmentLabel = "_enroll"
    /// TTL of the enrollment CHUNK RR (PROTOCOL §11.4, §13).
    public static let enrollmentTTL: UInt32 = 300

    // MARK: - names (PROTOCOL §1, §2.6, §5.1)

    /// True when Go's `strconv.ParseUint(label, 10, 16)` succeeds: ASCII digits whose value is
    /// at most 65535 (leading zeros allowed). The KDC reads such a first label as a chunk index.
    static func parsesAsIndex(_ label: [UInt8]) -> Bool {
        guard !label.isEmpty, label.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        let significant = label.drop(while: { $0 == 0x30 })
        guard significant.count <= 5 else { return false }
        let value: UInt32? = significant.isEmpty ? 0 : parseDecimal(significant)
        return (value ?? UInt32.max) <= 65535
    }

    /// The query name of a CHUNK (PROTOCOL §2.6): `<nodeid-labels>.<distid>.<controlzone>` for
    /// the manifest (sequence 0), `<i>.<nodeid-labels>.<distid>.<controlzone>` for data chunk i.
    ///
    /// For the manifest the bare name is used unless the node ID's first label would be read
    /// by the KDC as a chunk index (all digits, ≤ 65535); then `0.` is prepended, which the KDC
    /// also maps to the manifest (PROTOCOL §2.6 recommendation).
    ///
    /// - Throws: `.malformed` for an empty node ID or a name over 255 octets.
    public static func chunkQueryName(
        sequence: UInt16, nodeID: DNSName, distributionID: DistributionID, controlZone: DNSName
    ) throws(TDNSError) -> DNSName {
        guard let first = nodeID.labels.first else { throw .malformed("node ID is the root") }
        var name = try nodeID.appending(controlZone.prepending(label: distributionID.text))
        if sequence != 0 || parsesAsIndex(first) {
            name = try name.prepending(label: String(sequence))
        }
        return name
    }

    /// A CHUNK query name taken apart as the KDC does (PROTOCOL §2.6, [Z] `handleCHUNKQuery`).
    public struct ChunkQueryName: Hashable, Sendable {
        /// The index label, nil for the bare manifest name (the KDC treats nil and 0 alike).
        public var index: UInt16?
        /// The node ID (absolute).
        public var nodeID: DNSName
        public var distributionID: DistributionID
    }

    /// Parses a CHUNK query name: the control-zone suffix must match; a first label that
    /// parses as a 16-bit decimal is the index; the last label before the control zone is the
    /// distribution ID (4–16 hex); the labels in between, with a root, are the node ID.
    public static func parseChunkQueryName(_ qname: DNSName, controlZone: DNSName) throws(TDNSError) -> ChunkQueryName {
        guard var rel = qname.labels(relativeTo: controlZone) else {
            throw .malformed("CHUNK query name \(qname) is not under the control zone \(controlZone)")
        }
        var index: UInt16? = nil
        if let first = rel.first, parsesAsIndex(first) {
            let significant = first.drop(while: { $0 == 0x30 })
            index = significant.isEmpty ? 0 : parseDecimal(significant)
            rel.removeFirst()
        }
        guard let last = rel.last, rel.count >= 2 else {
            throw .malformed("CHUNK query name \(qname) has no node ID and distribution ID")
        }
        guard let distributionID = DistributionID(label: last) else {
            throw .malformed("CHUNK query name \(qname): \"\(DistributionID.shown(String(decoding: last, as: UTF8.self)))\" is not a distribution ID")
        }
        return ChunkQueryName(index: index, nodeID: try DNSName(labels: Array(rel.dropLast())), distributionID: distributionID)
    }

    /// `<distid>.<controlzone>`, the QNAME of both NOTIFYs (PROTOCOL §5.1 step 1, §10.6).
    public static func notifyName(distributionID: DistributionID, controlZone: DNSName) throws(TDNSError) -> DNSName {
        try controlZone.prepending(label: distributionID.text)
    }

    /// The distribution ID of a NOTIFY: the last label before the control zone (PROTOCOL §5.1
    /// step 2). Stricter than the Go KRS, which takes any label: it must also be a distribution
    /// ID the KDC would accept in the follow-up query (``DistributionID``).
    ///
    /// - Throws: `.malformed` when `qname` is not strictly below `controlZone` or the label is
    ///   not 4–16 hex characters.
    public static func distributionID(fromNotifyName qname: DNSName, controlZone: DNSName) throws(TDNSError) -> DistributionID {
        guard let rel = qname.labels(relativeTo: controlZone), let last = rel.last else {
            throw .malformed("NOTIFY name \(qname) is not below the control zone \(controlZone)")
        }
        guard let id = DistributionID(label: last) else {
            throw .malformed("NOTIFY name \(qname): \"\(DistributionID.shown(String(decoding: last, as: UTF8.self)))\" is not a distribution ID")
        }
        return id
    }

    /// `_enroll.<controlzone>` (PROTOCOL §11.4).
    public static func enrollmentOwner(controlZone: DNSName) throws(TDNSError) -> DNSName {
        try controlZone.prepending(label: enrollmentLabel)
    }

    // MARK: - builders

    /// A CHUNK query (PROTOCOL §5.1 step 3): opcode QUERY, RD=0, one question
    /// `name IN <chunkType>`, OPT with UDP size 4096 and DO=1.
    ///
    /// `chunkType` has no default: the KDC's build decides it (65288, or 65015 for the Go KDC
    /// of PROTOCOL §21), and a wrong guess is answered with an error, so every caller passes
    /// its configured type.
    public static func chunkQuery(id: UInt16, name: DNSName, chunkType: RRType) -> DNSMessage {
        DNSMessage(
            id: id, opcode: .query, flags: DNSHeaderFlags(),
            questions: [Question(name: name, type: chunkType, rrClass: .in)],
            edns: EDNS(udpPayloadSize: chunkQueryUDPSize, dnssecOK: true))
    }

    /// A NOTIFY for a distribution (PROTOCOL §5.1 step 1 KDC → KRS, §10.6 confirmation
    /// KRS → KDC): opcode NOTIFY, AA=1, QNAME `<distid>.<controlzone>`, QTYPE = the CHUNK code,
    /// class IN. With `chunkOption` (the confirmation report) it carries an OPT with UDP size
    /// 4096, DO=1 and that option (PROTOCOL §4.1); without, no EDNS (as the KDC sends it).
    /// `chunkType` is the configured CHUNK code (no default, see ``chunkQuery(id:name:chunkType:)``).
    public static func notify(
        id: UInt16, distributionID: DistributionID, controlZone: DNSName, chunkType: RRType,
        chunkOption: ChunkOption? = nil
    ) throws(TDNSError) -> DNSMessage {
        var m = DNSMessage(
            id: id, opcode: .notify, flags: DNSHeaderFlags(aa: true),
            questions: [Question(name: try notifyName(distributionID: distributionID, controlZone: controlZone), type: chunkType, rrClass: .in)])
        if let chunkOption {
            m.edns = EDNS(udpPayloadSize: chunkQueryUDPSize, dnssecOK: true, options: [try chunkOption.ednsOption()])
        }
        return m
    }

    /// The answer to a NOTIFY as the Go KRS and KDC send it (miekg `SetReply` + AA): same ID
    /// and opcode, QR=1, AA=1, the request's first question, `rcode`, nothing else (RFC 1996
    /// §4.7; PROTOCOL §5.1 step 2, §10.6). RD and CD are copied only for opcode QUERY, as
    /// `SetReply` does.
    public static func notifyResponse(to request: DNSMessage, rcode: RCode = .noError) -> DNSMessage {
        var flags = DNSHeaderFlags(qr: true, aa: true)
        if request.opcode == .query {
            flags.rd = request.flags.rd
            flags.cd = request.flags.cd
        }
        return DNSMessage(
            id: request.id, opcode: request.opcode, flags: flags, rcode: rcode,
            questions: Array(request.questions.prefix(1)))
    }

    /// The enrollment UPDATE, unsigned (PROTOCOL §11.4): opcode UPDATE, zone section
    /// `<controlzone> SOA IN`, update section = one CHUNK RR `_enroll.<controlzone>` IN TTL 300
    /// holding `chunk`, OPT with UDP size 1232 and DO=1. Sign it with ``SIG0/sign(message:sig:signer:)``.
    ///
    /// `chunk` should be Format 1, no HMAC, Sequence 0, Total 0, Data = the encrypted request
    /// (PROTOCOL §11.4); ``enrollmentChunk(ciphertext:)`` builds that. `chunkType` is the
    /// node's configured CHUNK code: a Go KDC built with 65015 answers FORMERR to 65288
    /// (PROTOCOL §21), so there is no default.
    public static func enrollmentUpdate(
        id: UInt16, controlZone: DNSName, chunk: CHUNKRecord, chunkType: RRType
    ) throws(TDNSError) -> DNSMessage {
        let rr = ResourceRecord(
            name: try enrollmentOwner(controlZone: controlZone), type: chunkType, rrClass: .in,
            ttl: enrollmentTTL, rdata: try chunk.rdata())
        return DNSMessage(
            id: id, opcode: .update, flags: DNSHeaderFlags(),
            questions: [Question(name: controlZone, type: .soa, rrClass: .in)],
            authority: [rr],
            edns: EDNS(udpPayloadSize: enrollmentUDPSize, dnssecOK: true))
    }

    /// The enrollment CHUNK: Format 1, no HMAC, Sequence 0, Total 0, Data = `ciphertext`
    /// (PROTOCOL §11.4). `.malformed` for an empty, `.tooBig` for an over-long ciphertext.
    public static func enrollmentChunk(ciphertext: [UInt8]) throws(TDNSError) -> CHUNKRecord {
        guard !ciphertext.isEmpty else { throw .malformed("enrollment request: empty ciphertext") }
        let chunk = CHUNKRecord(format: CHUNKRecord.formatJSON, hmac: [], sequence: 0, total: 0, data: ciphertext)
        _ = try chunk.rdata()
        return chunk
    }

    // MARK: - recognisers

    /// Whether `response` answers `request`: QR=1, same ID, same opcode, and (if the response
    /// has one) the same first question, names compared case-insensitively.
    public static func isResponse(_ response: DNSMessage, to request: DNSMessage) -> Bool {
        guard response.flags.qr, response.id == request.id, response.opcode == request.opcode else { return false }
        guard response.questions.count <= 1 else { return false }
        if let q = response.questions.first {
            guard let r = request.questions.first, q == r else { return false }
        }
        return true
    }

    /// A received NOTIFY, as the KRS handler sees it (PROTOCOL §5.1 step 2, §10.6).
    public struct Notify: Sendable {
        /// The single question.
        public var question: Question
        /// The distribution ID when the QNAME is below the control zone and its last label
        /// there is a valid distribution ID; nil otherwise (the KRS still answers NOERROR).
        public var distributionID: DistributionID?
        /// The CHUNK option, when the NOTIFY has one (confirmations do, PROTOCOL §10.6).
        public var chunkOption: ChunkOption?
    }

    /// Recognises a NOTIFY request: opcode NOTIFY, QR=0, exactly one question of class IN. Any
    /// QTYPE is accepted, as the Go KRS does (PROTOCOL §5.1 step 2).
    ///
    /// - Throws: `.malformed` when it is not such a NOTIFY or its CHUNK option is malformed.
    public static func parseNotify(_ message: DNSMessage, controlZone: DNSName) throws(TDNSError) -> Notify {
        guard message.opcode == .notify else { throw .malformed("not a NOTIFY: opcode \(message.opcode)") }
        guard !message.flags.qr else { throw .malformed("NOTIFY: QR is set (a response, not a request)") }
        guard message.questions.count == 1, let q = message.questions.first else {
            throw .malformed("NOTIFY: \(message.questions.count) questions, exactly 1 required")
        }
        guard q.rrClass == .in else { throw .malformed("NOTIFY: class \(q.rrClass), not IN") }
        let id = try? distributionID(fromNotifyName: q.name, controlZone: controlZone)
        return Notify(question: q, distributionID: id, chunkOption: try message.edns?.chunkOption())
    }

    /// The CHUNK record of an answer to `query` (PROTOCOL §2.7, §5.1 steps 3 and 5).
    ///
    /// Returns nil when the RCODE is not NOERROR (NXDOMAIN, SERVFAIL and FORMERR are normal —
    /// the KDC NOTIFYs nodes that are not recipients, PROTOCOL §13 — and the caller drops the
    /// distribution). Check ``DNSHeaderFlags/tc`` first: a truncated answer must be retried over TCP.
    ///
    /// - Throws: `.malformed` when `response` does not answer `query` or the answer section does
    ///   not hold exactly one record of an accepted CHUNK type, class IN, owned by the QNAME,
    ///   or that record's RDATA does not decode.
    public static func chunkAnswer(
        _ response: DNSMessage, to query: DNSMessage, acceptedTypes: [RRType] = [.chunk, .chunkLegacy]
    ) throws(TDNSError) -> CHUNKRecord? {
        guard isResponse(response, to: query), let q = query.questions.first, response.questions.count == 1 else {
            throw .malformed("CHUNK answer does not match the query (ID, opcode or question)")
        }
        guard response.rcode == .noError else { return nil }
        let matching = response.answers.filter { acceptedTypes.contains($0.type) }
        guard matching.count == 1, let rr = matching.first else {
            throw .malformed("CHUNK answer holds \(matching.count) CHUNK records, exactly 1 required")
        }
        guard rr.name == q.name else { throw .malformed("CHUNK answer owner \(rr.name) is not the QNAME \(q.name)") }
        guard rr.rrClass == .in else { throw .malformed("CHUNK answer class \(rr.rrClass), not IN") }
        return try CHUNKRecord(rdata: rr.rdata)
    }

    /// The KDC's answer to the enrollment UPDATE (PROTOCOL §11.5).
    public struct EnrollmentResponse: Sendable {
        /// NOERROR on success; FORMERR, REFUSED, SERVFAIL on errors.
        public var rcode: RCode
        /// `Data[1...]` of the CHUNK option (content type 2): encrypted confirmation, or
        /// plaintext JSON on some errors.
        public var content: [UInt8]
    }

    /// Recognises the enrollment response: answers `request`, carries EDNS with exactly one
    /// CHUNK option whose content type is 2 (enrollment confirmation).
    public static func parseEnrollmentResponse(_ response: DNSMessage, to request: DNSMessage) throws(TDNSError) -> EnrollmentResponse {
        guard isResponse(response, to: request) else { throw .malformed("enrollment response does not match the UPDATE") }
        guard let option = try response.edns?.chunkOption() else {
            throw .malformed("enrollment response has no CHUNK EDNS(0) option")
        }
        let (type, content) = try option.contentParts()
        guard type == .enrollmentConfirmation else {
            throw .malformed("enrollment response content type \(type.rawValue), expected 2")
        }
        return EnrollmentResponse(rcode: response.rcode, content: content)
    }

    /// What the KDC checks in an enrollment UPDATE (PROTOCOL §11.4), for tests and for a KDC:
    /// opcode UPDATE, zone = `controlZone` SOA IN, exactly one RR in the update section, of an
    /// accepted CHUNK type (both codes by default: a KDC accepts either whatever its own
    /// `chunk_type`, §21), owner `_enroll.<controlZone>`, Sequence 0, no HMAC, Total 0,
    /// non-empty Data. Returns that CHUNK.
    ///
    /// - Throws: `.malformed` naming what is wrong; a record of another type is reported with
    ///   numbers: `UPDATE record is TYPE1 (1), not CHUNK (65288 or 65015)`.
    public static func parseEnrollmentUpdate(
        _ message: DNSMessage, controlZone: DNSName, acceptedTypes: [RRType] = [.chunk, .chunkLegacy]
    ) throws(TDNSError) -> CHUNKRecord {
        guard message.opcode == .update, !message.flags.qr else { throw .malformed("not an UPDATE request") }
        guard message.questions.count == 1, let zone = message.questions.first,
            zone.name == controlZone, zone.type == .soa, zone.rrClass == .in
        else { throw .malformed("UPDATE zone section is not \(controlZone) SOA IN") }
        guard message.updates.count == 1, let rr = message.updates.first else {
            throw .malformed("UPDATE has \(message.updates.count) records in the update section, exactly 1 required")
        }
        guard acceptedTypes.contains(rr.type) else {
            // Numbers, not mnemonics: both CHUNK codes would print as "CHUNK"/"TYPE65015".
            let wanted = acceptedTypes.map { String($0.rawValue) }.joined(separator: " or ")
            throw .malformed("UPDATE record is TYPE\(rr.type.rawValue) (\(rr.type.rawValue)), not CHUNK (\(wanted))")
        }
        guard rr.name == (try enrollmentOwner(controlZone: controlZone)) else {
            throw .malformed("UPDATE record owner \(rr.name) is not _enroll.\(controlZone)")
        }
        let chunk = try CHUNKRecord(rdata: rr.rdata)
        guard chunk.sequence == 0, chunk.hmac.isEmpty, chunk.total == 0, !chunk.data.isEmpty else {
            throw .malformed("enrollment CHUNK must have Sequence 0, Total 0, no HMAC and data")
        }
        return chunk
    }
}
