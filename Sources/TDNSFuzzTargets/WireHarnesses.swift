import TDNSCore
import TDNSKRS
import TDNSWire

// Harnesses for the TDNSWire parsers: whole messages, CHUNK RDATA, the OPT record. The wire
// parsers document `.malformed` and `.tooBig` as their only errors.

private let wireErrors: [TDNSError.Code] = [.malformed, .tooBig]

/// The control zone the recognisers are asked about (the vectors' zone, so seeds match).
let fuzzControlZone: DNSName = (try? DNSName("kdc.example.")) ?? .root

// MARK: - comparisons (byte for byte: DNSName's == ignores ASCII case)

func identical(_ a: Question, _ b: Question) -> Bool {
    a.name.isIdentical(to: b.name) && a.type == b.type && a.rrClass == b.rrClass
}

func identical(_ a: ResourceRecord, _ b: ResourceRecord) -> Bool {
    a.name.isIdentical(to: b.name) && a.type == b.type && a.rrClass == b.rrClass && a.ttl == b.ttl && a.rdata == b.rdata
}

func identical(_ a: [ResourceRecord], _ b: [ResourceRecord]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { identical($0, $1) }
}

// MARK: - DNS message

enum DNSMessageHarness {
    /// Looser than the defaults (one question, 64 records) so that more of the parser is
    /// reachable; the counts are still bounded.
    static let limits = DNSMessage.Limits(maxQuestions: 8, maxRecords: 256)

    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        try NotifyHandler.check(data)
        let message: DNSMessage
        do {
            message = try DNSMessage(wireEncoded: data, limits: limits)
        } catch {
            try expectRejection(error, wireErrors, "DNSMessage(wireEncoded:)")
            // The default limits may only be stricter.
            do {
                _ = try DNSMessage(wireEncoded: data)
                throw InvariantViolation(message: "default limits accept a message the looser limits refuse")
            } catch {
                try rejection(error, wireErrors, "DNSMessage(wireEncoded:) with default limits")
            }
            return
        }
        try checkReceived(message, data)
        try roundTrip(message)
        try checkSIG0(message, data)
        try checkRecognisers(message)
        for rr in message.answers + message.authority + message.additional {
            try RecordPresentation.check(rr)
        }
        for q in message.questions {
            try NamePresentation.check(q.name)
        }
    }

    /// `received` must describe exactly the bytes parsed.
    private static func checkReceived(_ m: DNSMessage, _ data: [UInt8]) throws(InvariantViolation) {
        guard let rx = m.received else { throw InvariantViolation(message: "parsed message has no `received`") }
        try invariant(rx.bytes == data, "received.bytes differ from the input")
        try invariant(rx.questions.count == m.questions.count, "received.questions count")
        try invariant(rx.answers.count == m.answers.count, "received.answers count")
        try invariant(rx.authority.count == m.authority.count, "received.authority count")
        try invariant(rx.additional.count == m.additional.count + (m.edns == nil ? 0 : 1), "received.additional count (OPT included)")
        let nonOPT = rx.additional.filter { $0.type != .opt }
        let sections: [([RecordLocation], [ResourceRecord])] = [(rx.answers, m.answers), (rx.authority, m.authority), (nonOPT, m.additional)]
        var previousEnd = DNSMessage.headerSize
        for r in rx.questions {
            try invariant(r.lowerBound == previousEnd, "question ranges are not contiguous")
            previousEnd = r.upperBound
        }
        for (locations, records) in sections {
            try invariant(locations.count == records.count, "record locations do not match records")
            for (loc, rr) in zip(locations, records) {
                try invariant(loc.range.lowerBound >= DNSMessage.headerSize && loc.range.upperBound <= data.count, "record range outside the message")
                try invariant(loc.rdataRange.upperBound == loc.range.upperBound && loc.rdataRange.lowerBound >= loc.range.lowerBound + 11,
                              "RDATA range not at the end of its record")
                try invariant(Array(data[loc.rdataRange]) == rr.rdata, "RDATA range does not hold the record's RDATA")
                try invariant(loc.type == rr.type && loc.rrClass == rr.rrClass && loc.ttl == rr.ttl, "record location header differs from the record")
            }
        }
        let all = rx.answers + rx.authority + rx.additional
        for loc in all {
            try invariant(loc.range.lowerBound == previousEnd, "record ranges are not contiguous")
            previousEnd = loc.range.upperBound
        }
        try invariant(previousEnd == data.count, "records do not end where the message ends")
    }

    /// serialize → parse gives the same message, and serializing that gives the same bytes.
    private static func roundTrip(_ m: DNSMessage) throws(InvariantViolation) {
        let wire: [UInt8]
        do {
            wire = try m.serialize()
        } catch {
            // Names are written uncompressed, so a message near 65535 bytes may not fit again.
            try expectRejection(error, [.tooBig], "serialize() of a parsed message")
            return
        }
        let again = try mustSucceed("reparse of serialize() \(hexPrefix(wire))") { () throws(TDNSError) in
            try DNSMessage(wireEncoded: wire, limits: limits)
        }
        try invariant(again.id == m.id, "ID changed in a round trip")
        try invariant(again.flags == m.flags, "flags changed in a round trip")
        try invariant(again.opcode == m.opcode, "opcode changed in a round trip")
        try invariant(again.rcode == m.rcode, "RCODE changed in a round trip: \(m.rcode) → \(again.rcode)")
        try invariant(again.questions.count == m.questions.count && zip(again.questions, m.questions).allSatisfy { identical($0, $1) },
                      "questions changed in a round trip")
        try invariant(identical(again.answers, m.answers), "answers changed in a round trip")
        try invariant(identical(again.authority, m.authority), "authority changed in a round trip")
        try invariant(identical(again.additional, m.additional), "additional changed in a round trip")
        try invariant(again.edns == m.edns, "EDNS changed in a round trip")
        let wire2 = try mustSucceed("second serialize()") { () throws(TDNSError) in try again.serialize() }
        try invariant(wire2 == wire, "serialization is not a fixed point")
    }

    /// SIG(0) extraction: never traps; what it extracts describes the received bytes.
    private static func checkSIG0(_ m: DNSMessage, _ data: [UInt8]) throws(InvariantViolation) {
        for recommended in [true, false] {
            let extracted: SIG0.Extracted?
            do {
                extracted = try SIG0.extract(from: m, requireRecommendedHeader: recommended)
            } catch {
                try expectRejection(error, [.malformed], "SIG0.extract")
                continue
            }
            guard let x = extracted else { continue }
            let loc = x.location
            try invariant(loc.range.upperBound == data.count, "SIG(0) is not at the end")
            try invariant(x.sig.isSIG0, "extracted SIG is not a SIG(0)")
            try invariant(x.sig.rdata() == Array(data[loc.rdataRange]), "SIG RDATA does not re-serialize to the received bytes")
            let prefix = x.sig.rdataWithoutSignature()
            try invariant(x.signedData.starts(with: prefix), "signed data does not start with the SIG RDATA")
            let unsigned = Array(x.signedData.dropFirst(prefix.count))
            try invariant(unsigned.count == loc.range.lowerBound, "signed message is not the bytes before the SIG")
            try invariant(unsigned[12...] == data[12..<loc.range.lowerBound], "signed message body differs from the received bytes")
            // Without its SIG the message is a well-formed message with ARCOUNT − 1.
            let stripped = try mustSucceed("parse of the message without its SIG(0)") { () throws(TDNSError) in
                try DNSMessage(wireEncoded: unsigned, limits: limits)
            }
            try invariant(identical(stripped.answers, m.answers) && identical(stripped.authority, m.authority), "stripping SIG(0) changed other sections")
            try invariant(identical(stripped.additional, Array(m.additional.dropLast())), "stripping SIG(0) changed the additional section")
            // Signing again with the same signature gives back the received bytes when the SIG
            // RR had the header SIG0.append writes (owner written as the root label).
            if recommended, data[loc.range.lowerBound] == 0 {
                var sig = x.sig
                sig.signature = []
                let rebuilt = try mustSucceed("SIG0.append") { () throws(TDNSError) in
                    try SIG0.append(signature: x.signature, sig: sig, to: unsigned)
                }
                try invariant(rebuilt == data, "SIG0.append does not rebuild the received message")
            }
        }
    }

    /// The KDC/KRS recognisers must not trap and throw only `.malformed`.
    private static func checkRecognisers(_ m: DNSMessage) throws(InvariantViolation) {
        do {
            if let option = try m.edns?.chunkOption() {
                let data = try mustSucceed("optionData()") { () throws(TDNSError) in try option.optionData() }
                try invariant(m.edns?.options(.chunk) == [data], "CHUNK option does not re-serialize to its data")
            }
        } catch {
            try rejection(error, [.malformed], "EDNS.chunkOption()")
        }
        do {
            let n = try TDNSMessages.parseNotify(m, controlZone: fuzzControlZone)
            if let id = n.distributionID {
                try invariant(DistributionID(id.text) == id, "NOTIFY distribution ID \(id) is not valid")
                let name = try mustSucceed("notifyName") { () throws(TDNSError) in
                    try TDNSMessages.notifyName(distributionID: id, controlZone: fuzzControlZone)
                }
                try invariant(n.question.name.labels(relativeTo: fuzzControlZone)?.last.map { $0.map(lower) } == name.labels.first,
                              "NOTIFY distribution ID does not round-trip through notifyName")
            }
        } catch {
            try rejection(error, [.malformed], "parseNotify")
        }
        do {
            _ = try TDNSMessages.parseEnrollmentUpdate(m, controlZone: fuzzControlZone)
        } catch {
            try expectRejection(error, [.malformed], "parseEnrollmentUpdate")
        }
        let request = DNSMessage(id: m.id, opcode: m.opcode, questions: Array(m.questions.prefix(1)))
        do {
            _ = try TDNSMessages.chunkAnswer(m, to: request)
        } catch {
            try expectRejection(error, [.malformed], "chunkAnswer")
        }
        do {
            _ = try TDNSMessages.parseEnrollmentResponse(m, to: request)
        } catch {
            try expectRejection(error, [.malformed], "parseEnrollmentResponse")
        }
        for q in m.questions {
            do {
                let parts = try TDNSMessages.parseChunkQueryName(q.name, controlZone: fuzzControlZone)
                // Building the name again from its parts gives a name equal to the query name
                // (modulo a `0.` index label, which the builder adds only when it must).
                let rebuilt = try mustSucceed("chunkQueryName") { () throws(TDNSError) in
                    try TDNSMessages.chunkQueryName(
                        sequence: parts.index ?? 0, nodeID: parts.nodeID, distributionID: parts.distributionID, controlZone: fuzzControlZone)
                }
                let reparsed = try mustSucceed("parseChunkQueryName of a built name") { () throws(TDNSError) in
                    try TDNSMessages.parseChunkQueryName(rebuilt, controlZone: fuzzControlZone)
                }
                try invariant((reparsed.index ?? 0) == (parts.index ?? 0) && reparsed.nodeID == parts.nodeID
                              && reparsed.distributionID == parts.distributionID,
                              "CHUNK query name does not round-trip: \(q.name) → \(rebuilt)")
            } catch {
                try rejection(error, [.malformed], "parseChunkQueryName")
            }
            do {
                _ = try TDNSMessages.distributionID(fromNotifyName: q.name, controlZone: fuzzControlZone)
            } catch {
                try expectRejection(error, [.malformed], "distributionID(fromNotifyName:)")
            }
        }
        _ = TDNSMessages.isResponse(m, to: request)
        _ = TDNSMessages.notifyResponse(to: m)
    }

    private static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b + 0x20 : b }
}

// MARK: - the KRS's NOTIFY entry point

/// `KRSNode.handleNotify`, what the C API's `krs_handle_notify` and the NOTIFY listener call
/// with every datagram: it answers every request (never a response) with the NOTIFY answer of
/// PROTOCOL §5.1 and contract §4 — NOERROR for `<distribution-id>.<control zone>`, FORMERR
/// for a malformed NOTIFY, REFUSED for other opcodes and other names. Each input starts
/// from an empty queue, so the queue's bounds never decide the answer here.
enum NotifyHandler {
    static let node: Result<KRSNode, TDNSError> = Result { () throws(TDNSError) -> KRSNode in
        try KRSNode(arguments: FuzzState.arguments(stateDirectory: try FuzzState.directory(), keys: try FuzzState.keys()))
    }

    static func check(_ data: [UInt8]) throws(InvariantViolation) {
        let node: KRSNode
        switch Self.node {
        case .success(let n): node = n
        case .failure(let e): throw InvariantViolation(message: "KRSNode for the NOTIFY check: \(e.code): \(e.reason)")
        }
        let response = node.handleNotify(data)
        node.resetNotifyQueue()
        if let dir = try? FuzzState.directory() { FuzzState.reset(dir) }
        guard let request = try? DNSMessage(wireEncoded: data), !request.flags.qr else {
            try invariant(response == nil, "handleNotify answered a message that is not a request")
            return
        }
        guard let response else { throw InvariantViolation(message: "handleNotify did not answer a request") }
        let answer = try mustSucceed("parse of the handleNotify answer") { () throws(TDNSError) in try DNSMessage(wireEncoded: response) }
        try invariant(answer.flags.qr && answer.flags.aa && answer.id == request.id && answer.opcode == request.opcode,
                      "handleNotify answer does not answer the request")
        try invariant(answer.questions.count == min(1, request.questions.count)
                      && zip(answer.questions, request.questions).allSatisfy { identical($0, $1) },
                      "handleNotify answer has another question")
        try invariant(answer.answers.isEmpty && answer.authority.isEmpty && answer.additional.isEmpty && answer.edns == nil,
                      "handleNotify answer carries records")
        let expected: RCode
        if request.opcode != .notify {
            expected = .refused
        } else if let notify = try? TDNSMessages.parseNotify(request, controlZone: fuzzControlZone) {
            expected = notify.distributionID == nil ? .refused : .noError
        } else {
            expected = .formErr
        }
        try invariant(answer.rcode == expected, "handleNotify answered \(answer.rcode), expected \(expected)")
    }
}

// MARK: - presentation

enum NamePresentation {
    /// A name's text parses back to the same labels, byte for byte; its wire form too.
    static func check(_ name: DNSName) throws(InvariantViolation) {
        let text = name.description
        let back = try mustSucceed("DNSName(\"\(text.prefix(80))\")") { () throws(TDNSError) in try DNSName(text) }
        try invariant(back.isIdentical(to: name), "name presentation does not round-trip: \(text.prefix(80))")
        let wire = name.wireEncoded
        try invariant(wire.count == name.wireLength, "wireLength differs from the wire form")
        let fromWire = try mustSucceed("DNSName(wireEncoded:)") { () throws(TDNSError) in try DNSName(wireEncoded: wire) }
        try invariant(fromWire.isIdentical(to: name), "name wire form does not round-trip")
        try invariant(name.canonical == name && name.canonical.hashValue == name.hashValue, "canonical form compares unequal")
    }
}

enum RecordPresentation {
    /// A record's presentation line parses back to the same record — for every type whose
    /// RDATA text has a parser (CHUNK, KEY, DNSKEY, and the RFC 3597 generic form). SIG text
    /// is for logs only and has no parser.
    static func check(_ rr: ResourceRecord) throws(InvariantViolation) {
        let rdataText = rr.rdataPresentation
        let line = rr.presentation
        try NamePresentation.check(rr.name)
        if rr.type == .sig && !GenericRData.isGeneric(rdataText) { return }
        let back = try mustSucceed("ResourceRecord(presentation: \"\(line.prefix(120))\")") { () throws(TDNSError) in
            try ResourceRecord(presentation: line)
        }
        try invariant(identical(back, rr), "record presentation does not round-trip: \(line.prefix(160))")
        try invariant(back.presentation == line, "record presentation is not a fixed point: \(line.prefix(160))")
    }
}

// MARK: - CHUNK RDATA

enum CHUNKHarness {
    static let owner: DNSName = (try? DNSName("krs1.example.6a2f00c2.kdc.example.")) ?? .root

    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        // Wire form.
        do {
            let record = try CHUNKRecord(rdata: data)
            try checkRecord(record, rdata: data)
            // The reader form consumes exactly the record and leaves what follows.
            var reader = WireReader(data + [0xA5, 0x5A], range: 0..<data.count + 2)
            let fromReader = try mustSucceed("CHUNKRecord(wireEncoded:)") { () throws(TDNSError) in try CHUNKRecord(wireEncoded: &reader) }
            try invariant(fromReader == record && reader.position == data.count, "CHUNKRecord(wireEncoded:) read a different extent")
        } catch {
            try rejection(error, wireErrors, "CHUNKRecord(rdata:)")
        }

        // Presentation text (PROTOCOL §2.3): whatever parses re-serializes and prints back.
        let text = String(decoding: data, as: UTF8.self)
        do {
            let record = try CHUNKRecord(presentation: text)
            let rdata = try mustSucceed("rdata() of a parsed CHUNK text") { () throws(TDNSError) in try record.rdata() }
            let fromWire = try mustSucceed("CHUNKRecord(rdata:) of a parsed CHUNK text") { () throws(TDNSError) in try CHUNKRecord(rdata: rdata) }
            try invariant(fromWire == record, "CHUNK text → RDATA → record changed the record")
            try checkRecord(record, rdata: rdata)
        } catch {
            try rejection(error, wireErrors, "CHUNKRecord(presentation:)")
        }
    }

    static func checkRecord(_ record: CHUNKRecord, rdata: [UInt8]) throws(InvariantViolation) {
        let again = try mustSucceed("rdata()") { () throws(TDNSError) in try record.rdata() }
        try invariant(again == rdata, "CHUNK RDATA does not re-serialize to the same bytes")
        try invariant(rdata.count == CHUNKRecord.minimumLength + record.hmac.count + record.data.count, "CHUNK length arithmetic")
        let text = record.presentation
        let back = try mustSucceed("CHUNKRecord(presentation: \"\(text.prefix(120))\")") { () throws(TDNSError) in
            try CHUNKRecord(presentation: text)
        }
        try invariant(back == record, "CHUNK presentation does not round-trip: \(text.prefix(160))")
        for type in [RRType.chunk, .chunkLegacy] {
            try RecordPresentation.check(ResourceRecord(name: owner, type: type, rrClass: .in, ttl: 300, rdata: rdata))
        }
    }
}

// MARK: - EDNS

enum EDNSHarness {
    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        // The input is one OPT RR: owner, TYPE 41, CLASS = UDP size, TTL = ext-RCODE/version/
        // flags, RDLENGTH, options.
        var reader = WireReader(data)
        let rr: ResourceRecord
        do {
            rr = try ResourceRecord(wireEncoded: &reader)
            try reader.expectEnd("OPT record")
        } catch {
            try expectRejection(error, wireErrors, "ResourceRecord(wireEncoded:)")
            return
        }
        let edns: EDNS
        do {
            edns = try EDNS(optRecord: rr)
        } catch {
            try expectRejection(error, wireErrors, "EDNS(optRecord:)")
            return
        }
        try invariant(edns.zFlags & 0x8000 == 0, "zFlags holds the DO bit")
        let opt = try mustSucceed("optRecord()") { () throws(TDNSError) in try edns.optRecord() }
        try invariant(identical(opt, rr), "OPT record does not round-trip")
        var w = WireWriter()
        try mustSucceed("serialize(into:)") { () throws(TDNSError) in try opt.serialize(into: &w) }
        try invariant(w.bytes == data, "OPT record does not re-serialize to the input bytes")
        let again = try mustSucceed("EDNS(optRecord:) of optRecord()") { () throws(TDNSError) in try EDNS(optRecord: opt) }
        try invariant(again == edns, "EDNS changed in a round trip")

        // Every option as a CHUNK option, whatever its code (the parser must hold on any data).
        for option in edns.options {
            try checkChunkOption(option.data)
        }
        do {
            if let chunk = try edns.chunkOption() {
                try invariant(edns.options(.chunk).count == 1, "chunkOption() with several CHUNK options")
                _ = chunk.contentType
            }
        } catch {
            try rejection(error, [.malformed], "EDNS.chunkOption()")
        }

        // setOption replaces every option of the code by one, in the first one's place, and
        // leaves the others alone.
        let replacement = EDNSOption(code: .chunk, data: [1, 0, 0, 0, 0])
        var replaced = edns
        replaced.setOption(replacement)
        try invariant(replaced.options(.chunk) == [replacement.data], "setOption left other CHUNK options")
        try invariant(replaced.options.filter { $0.code != .chunk } == edns.options.filter { $0.code != .chunk },
                      "setOption changed other options")
        if let first = edns.options.firstIndex(where: { $0.code == .chunk }) {
            try invariant(replaced.options.firstIndex(where: { $0.code == .chunk }) == first, "setOption moved the CHUNK option")
        }

        // Inside a message: the upper RCODE bits travel in the OPT TTL.
        guard let rcode = RCode(rawValue: UInt16(edns.extendedRCode) << 4 | 0x3) else {
            throw InvariantViolation(message: "RCode(rawValue:) refused a 12-bit value")
        }
        let message = DNSMessage(id: 0x4242, rcode: rcode, questions: [Question(name: fuzzControlZone, type: .soa)], edns: edns)
        do {
            let wire = try message.serialize()
            let parsed = try mustSucceed("parse of a message with this OPT") { () throws(TDNSError) in
                try DNSMessage(wireEncoded: wire, limits: DNSMessageHarness.limits)
            }
            try invariant(parsed.edns == edns && parsed.rcode == rcode, "EDNS or RCODE changed inside a message")
        } catch {
            try rejection(error, [.tooBig], "serialize() of a message with this OPT")
        }
    }

    static func checkChunkOption(_ data: [UInt8]) throws(InvariantViolation) {
        let option: ChunkOption
        do {
            option = try ChunkOption(optionData: data)
        } catch {
            try expectRejection(error, [.malformed], "ChunkOption(optionData:)")
            return
        }
        try invariant(option.hmac.count <= ChunkOption.maxHMACLength, "CHUNK option HMAC over 64 bytes accepted")
        let again = try mustSucceed("optionData()") { () throws(TDNSError) in try option.optionData() }
        try invariant(again == data, "CHUNK option does not re-serialize to the same bytes")
        let ednsOption = try mustSucceed("ednsOption()") { () throws(TDNSError) in try option.ednsOption() }
        try invariant(ednsOption.code == .chunk && ednsOption.data == data, "ednsOption() differs")
        do {
            let (type, content) = try option.contentParts()
            try invariant([type.rawValue] + content == option.data, "content type and content do not make up Data")
            let rebuilt = ChunkOption(contentType: type, content: content)
            try invariant(rebuilt.data == option.data, "ChunkOption(contentType:content:) differs")
        } catch let error as TDNSError {
            try invariant(option.data.isEmpty, "contentParts() failed on non-empty data: \(error.reason)")
        } catch let v as InvariantViolation {
            throw v
        } catch {}
    }
}
