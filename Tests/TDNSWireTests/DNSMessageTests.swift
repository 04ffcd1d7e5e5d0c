import TDNSCore
import TDNSTestSupport
import Testing

@testable import TDNSWire

/// A response with every section filled, EDNS with two options and an extended RCODE.
func sampleMessage() throws -> DNSMessage {
    let qname = try DNSName("krs1.example.6a2f00c2.kdc.example.")
    let chunk = CHUNKRecord(format: 1, hmac: [1, 2, 3], sequence: 0, total: 2, data: Array("{\"a\":1}".utf8))
    return DNSMessage(
        id: 0xBEEF, opcode: .query,
        flags: DNSHeaderFlags(qr: true, aa: true, tc: false, rd: false, ra: true, z: false, ad: true, cd: true),
        rcode: .badCookie,
        questions: [Question(name: qname, type: .chunk, rrClass: .in)],
        answers: [ResourceRecord(name: qname, type: .chunk, rrClass: .in, ttl: 300, rdata: try chunk.rdata())],
        authority: [ResourceRecord(name: try DNSName("kdc.example."), type: .ns, rrClass: .in, ttl: 3600, rdata: try DNSName("ns.kdc.example.").wireEncoded)],
        additional: [ResourceRecord(name: try DNSName("ns.kdc.example."), type: .a, rrClass: .in, ttl: 60, rdata: [192, 0, 2, 1])],
        edns: EDNS(udpPayloadSize: 4096, dnssecOK: true, options: [
            EDNSOption(code: .cookie, data: Array(repeating: 7, count: 8)),
            try ChunkOption(contentType: .keyStatusReport, content: Array("{}".utf8)).ednsOption(),
        ]))
}

/// Header with the given counts followed by `body`.
func rawMessage(qd: UInt16 = 0, an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0, flags: UInt16 = 0, _ body: [UInt8]) -> [UInt8] {
    var w = WireWriter()
    w.writeUInt16(0x1234)
    w.writeUInt16(flags)
    w.writeUInt16(qd)
    w.writeUInt16(an)
    w.writeUInt16(ns)
    w.writeUInt16(ar)
    w.writeBytes(body)
    return w.bytes
}

/// Wire bytes of an OPT RR.
func optRR(udp: UInt16 = 1232, ttl: UInt32 = 0, rdata: [UInt8] = []) -> [UInt8] {
    var w = WireWriter()
    w.writeUInt8(0)
    w.writeUInt16(41)
    w.writeUInt16(udp)
    w.writeUInt32(ttl)
    try? w.writeLengthPrefixed16(rdata, "rdata")
    return w.bytes
}

@Suite("DNS messages")
struct DNSMessageTests {
    @Test func roundTrip() throws {
        let m = try sampleMessage()
        let wire = try m.serialize()
        let p = try DNSMessage(wireEncoded: wire)
        #expect(p.id == 0xBEEF)
        #expect(p.flags == m.flags)
        #expect(p.opcode == .query)
        #expect(p.rcode == .badCookie)
        #expect(p.questions == m.questions)
        #expect(p.answers == m.answers)
        #expect(p.authority == m.authority)
        #expect(p.additional == m.additional)
        #expect(p.edns?.udpPayloadSize == 4096)
        #expect(p.edns?.dnssecOK == true)
        #expect(p.edns?.version == 0)
        #expect(p.edns?.extendedRCode == 1)  // 23 >> 4
        #expect(p.edns?.options == m.edns?.options)
        #expect(try p.serialize() == wire)
        // Received bytes and locations.
        let rx = try #require(p.received)
        #expect(rx.bytes == wire)
        #expect(rx.questions.count == 1 && rx.answers.count == 1 && rx.authority.count == 1 && rx.additional.count == 2)
        #expect(rx.additional.last?.type == .opt)
        #expect(rx.additional.last?.range.upperBound == wire.count)
        #expect(Array(wire[rx.answers[0].rdataRange]) == m.answers[0].rdata)
        // Header bits exactly where RFC 1035 §4.1.1 puts them: QR AA RA AD CD, opcode 0, RCODE low bits 7.
        #expect(wire[2] == 0x84 && wire[3] == 0xB7)
    }

    @Test func opcodesAndFlags() throws {
        for op in [Opcode.query, .notify, .update, .status, try #require(Opcode(rawValue: 15))] {
            for f in [DNSHeaderFlags(), DNSHeaderFlags(qr: true, z: true), DNSHeaderFlags(tc: true, rd: true)] {
                let m = DNSMessage(id: 1, opcode: op, flags: f, rcode: .notAuth)
                let p = try DNSMessage(wireEncoded: try m.serialize())
                #expect(p.opcode == op && p.flags == f && p.rcode == .notAuth)
            }
        }
        #expect(Opcode(rawValue: 16) == nil)
        #expect(RCode(rawValue: 4096) == nil)
        #expect(Opcode.notify.description == "NOTIFY")
        #expect(try #require(Opcode(rawValue: 9)).description == "OPCODE9")
        #expect(RCode.notAuth.description == "NOTAUTH")
        #expect(RCode.refused.description == "REFUSED")
        expectCode(.malformed, "extended RCODE without EDNS") {
            _ = try DNSMessage(id: 1, rcode: .badVers).serialize()
        }
    }

    @Test func truncatedAtEveryLengthIsMalformed() throws {
        let wire = try sampleMessage().serialize()
        for n in 0..<wire.count {
            expectCode(.malformed, "prefix \(n)") { _ = try DNSMessage(wireEncoded: Array(wire.prefix(n))) }
        }
    }

    @Test func everySingleByteCorruptionIsHandled() throws {
        // Not a correctness check of the result: only that nothing traps and errors are typed.
        let wire = try sampleMessage().serialize()
        for i in 0..<wire.count {
            for v: UInt8 in [0x00, 0x3F, 0xC0, 0xFF] {
                var bad = wire
                bad[i] = v
                do {
                    let m = try DNSMessage(wireEncoded: bad)
                    _ = try? m.serialize()
                } catch {
                    #expect(error.code == .malformed || error.code == .tooBig)
                }
            }
        }
    }

    @Test func countsMustMatch() throws {
        let q = try DNSName("a.example.").wireEncoded + [0, 1, 0, 1]
        #expect(try DNSMessage(wireEncoded: rawMessage(qd: 1, q)).questions.count == 1)
        expectCode(.malformed, "QDCOUNT too high") { _ = try DNSMessage(wireEncoded: rawMessage(qd: 2, q), limits: .init(maxQuestions: 4)) }
        expectCode(.malformed, "QDCOUNT too low = trailing bytes") { _ = try DNSMessage(wireEncoded: rawMessage(qd: 0, q)) }
        expectCode(.malformed, "ANCOUNT promises a record") { _ = try DNSMessage(wireEncoded: rawMessage(qd: 1, an: 1, q)) }
        expectCode(.malformed, "trailing byte") { _ = try DNSMessage(wireEncoded: rawMessage(qd: 1, q + [0])) }
        expectCode(.malformed, "impossible counts") { _ = try DNSMessage(wireEncoded: rawMessage(qd: 1, an: 65535, q)) }
        expectCode(.malformed, "short header") { _ = try DNSMessage(wireEncoded: [0, 1, 2]) }
    }

    @Test func limits() throws {
        let q = try DNSName("a.").wireEncoded + [0, 1, 0, 1]
        expectCode(.tooBig, "two questions by default") { _ = try DNSMessage(wireEncoded: rawMessage(qd: 2, q + q)) }
        #expect(try DNSMessage(wireEncoded: rawMessage(qd: 2, q + q), limits: .init(maxQuestions: 2)).questions.count == 2)
        let rr = try DNSName("a.").wireEncoded + [0, 1, 0, 1, 0, 0, 0, 0, 0, 0]
        let many = (0..<65).flatMap { _ in rr }
        expectCode(.tooBig, "65 records") { _ = try DNSMessage(wireEncoded: rawMessage(an: 65, many)) }
        #expect(try DNSMessage(wireEncoded: rawMessage(an: 65, many), limits: .init(maxRecords: 65)).answers.count == 65)
        expectCode(.tooBig, "over 65535 bytes") { _ = try DNSMessage(wireEncoded: [UInt8](repeating: 0, count: 65536)) }
        // Serializing more than 65535 bytes.
        let huge = ResourceRecord(name: .root, type: .txt, ttl: 0, rdata: [UInt8](repeating: 0, count: 40000))
        expectCode(.tooBig, "serialize > 65535") { _ = try DNSMessage(id: 1, answers: [huge, huge]).serialize() }
        let tooLong = ResourceRecord(name: .root, type: .txt, ttl: 0, rdata: [UInt8](repeating: 0, count: 65536))
        expectCode(.tooBig, "RDATA > 65535") { _ = try DNSMessage(id: 1, answers: [tooLong]).serialize() }
    }

    @Test func optRules() throws {
        // One OPT is fine.
        let one = try DNSMessage(wireEncoded: rawMessage(ar: 1, optRR(udp: 1232, ttl: 0x0000_8000)))
        #expect(one.edns?.udpPayloadSize == 1232 && one.edns?.dnssecOK == true && one.additional.isEmpty)
        // Two OPTs.
        expectCode(.malformed, "two OPT") { _ = try DNSMessage(wireEncoded: rawMessage(ar: 2, optRR() + optRR())) }
        // OPT in answer or authority.
        expectCode(.malformed, "OPT in answer") { _ = try DNSMessage(wireEncoded: rawMessage(an: 1, optRR())) }
        expectCode(.malformed, "OPT in authority") { _ = try DNSMessage(wireEncoded: rawMessage(ns: 1, optRR())) }
        // OPT owner not root.
        let badOwner = [1, 0x61, 0] + Array(optRR().dropFirst())
        expectCode(.malformed, "OPT owner") { _ = try DNSMessage(wireEncoded: rawMessage(ar: 1, badOwner)) }
        // Option running past RDATA, or a dangling byte.
        expectCode(.malformed, "option too long") { _ = try DNSMessage(wireEncoded: rawMessage(ar: 1, optRR(rdata: [0xFD, 0xEC, 0, 5, 1]))) }
        expectCode(.malformed, "dangling option byte") { _ = try DNSMessage(wireEncoded: rawMessage(ar: 1, optRR(rdata: [0, 10, 0, 0, 1]))) }
        // Extended RCODE, version and unknown flags survive.
        let ext = try DNSMessage(wireEncoded: rawMessage(ar: 1, flags: 0x8006, optRR(ttl: 0x0101_8001)))
        #expect(ext.rcode.rawValue == 0x16)  // (1 << 4) | 6
        #expect(ext.edns?.version == 1 && ext.edns?.zFlags == 1 && ext.edns?.dnssecOK == true)
        #expect(try ext.serialize() == rawMessage(ar: 1, flags: 0x8006, optRR(ttl: 0x0101_8001)))
    }

    @Test func optGoesBeforeTrailingSIG() throws {
        let sig = ResourceRecord(name: .root, type: .sig, rrClass: .any, ttl: 0, rdata: [0, 0])
        let a = ResourceRecord(name: .root, type: .a, ttl: 0, rdata: [1, 2, 3, 4])
        let m = DNSMessage(id: 7, additional: [a, sig], edns: EDNS())
        let p = try DNSMessage(wireEncoded: try m.serialize())
        #expect(p.received?.additional.map(\.type) == [.a, .opt, .sig])
        #expect(p.additional == [a, sig])
    }

    @Test func compressedMessageFromOutside() throws {
        // Question name at 12, answer owner compressed to it.
        let q = try DNSName("krs1.example.6a2f00c2.kdc.example.").wireEncoded + [0xFF, 0x08, 0, 1]
        let rdata = try CHUNKRecord(sequence: 1, total: 1, data: [1, 2]).rdata()
        var rr: [UInt8] = [0xC0, 12, 0xFF, 0x08, 0, 1, 0, 0, 1, 44]
        rr += [UInt8(rdata.count >> 8), UInt8(rdata.count & 0xFF)] + rdata
        let wire = rawMessage(qd: 1, an: 1, flags: 0x8400, q + rr)
        let m = try DNSMessage(wireEncoded: wire)
        #expect(m.answers[0].name == m.questions[0].name)
        #expect(m.answers[0].ttl == 300)
        #expect(try CHUNKRecord(rdata: m.answers[0].rdata).data == [1, 2])
        // Re-serialization is uncompressed, so it differs from what was received.
        #expect(try m.serialize() != wire)
        #expect(m.received?.bytes == wire)
        #expect(m.received?.answers[0].range == (12 + q.count)..<wire.count)
    }

    @Test func codePointsArePrintable() {
        #expect(RRType.chunk.description == "CHUNK")
        #expect(RRType.chunkLegacy.description == "TYPE65015")
        #expect(RRType(12345).description == "TYPE12345")
        #expect(RRType(presentation: "chunk") == .chunk)
        #expect(RRType(presentation: "TYPE65015") == .chunkLegacy)
        #expect(RRType(presentation: "TYPE65536") == nil)
        #expect(RRType(presentation: "TYPE") == nil)
        #expect(RRType(presentation: "DNSKEY") == .dnskey)
        #expect(RRType.key.rawValue == 25 && RRType.sig.rawValue == 24 && RRType.opt.rawValue == 41 && RRType.any.rawValue == 255)
        #expect(RRClass(presentation: "IN") == .in)
        #expect(RRClass(presentation: "CLASS255") == .any)
        #expect(RRClass(4242).description == "CLASS4242")
        #expect(RRClass.none.rawValue == 254)
        #expect(EDNSOptionCode.chunk.rawValue == 65004)
        #expect(EDNSOptionCode.chunk.description == "CHUNK")
        #expect(EDNSOptionCode(999).description == "OPTION999")
    }
}
