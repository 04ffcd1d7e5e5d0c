import Foundation
import TDNSCore
import TDNSTestSupport
import Testing

@testable import TDNSWire

private let cz = try! DNSName("kdc.example.")
private let node = try! DNSName("krs1.example.")

/// The project venv's python when it has dnspython (Tests/interop uses the same venv).
private let dnspython: URL? = {
    let python = VectorFiles.directory.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".venv/bin/python")
    guard FileManager.default.isExecutableFile(atPath: python.path) else { return nil }
    return (try? runPython(python, "import dns.message; print('ok')", input: "")) == "ok\n" ? python : nil
}()

private func runPython(_ python: URL, _ script: String, input: String) throws -> String {
    let p = Process()
    p.executableURL = python
    p.arguments = ["-c", script]
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    p.standardInput = stdin
    p.standardOutput = stdout
    p.standardError = stderr
    try p.run()
    stdin.fileHandleForWriting.write(Data(input.utf8))
    try stdin.fileHandleForWriting.close()
    let out = stdout.fileHandleForReading.readDataToEndOfFile()
    let err = stderr.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw VectorError("python failed: \(String(decoding: err, as: UTF8.self))")
    }
    return String(decoding: out, as: UTF8.self)
}

/// dnspython's view of a wire message, as JSON.
private let describeScript = #"""
import sys, json, dns.message, dns.opcode, dns.rcode, dns.flags, dns.rdatatype
wire = bytes.fromhex(sys.stdin.read().strip())
m = dns.message.from_wire(wire)
def rrsets(section):
    out = []
    for rrset in section:
        for rd in rrset:
            out.append({"name": rrset.name.to_text(), "type": int(rrset.rdtype), "class": int(rrset.rdclass),
                        "ttl": rrset.ttl, "rdata": rd.to_wire().hex()})
    return out
d = {
    "id": m.id, "opcode": int(dns.opcode.from_flags(m.flags)), "rcode": int(m.rcode()),
    "qr": bool(m.flags & dns.flags.QR), "aa": bool(m.flags & dns.flags.AA), "rd": bool(m.flags & dns.flags.RD),
    "question": [{"name": r.name.to_text(), "type": int(r.rdtype), "class": int(r.rdclass)} for r in m.sections[0]],
    "answer": rrsets(m.sections[1]), "authority": rrsets(m.sections[2]), "additional": rrsets(m.sections[3]),
    "edns": m.edns, "payload": m.payload if m.edns >= 0 else None,
    "do": bool(m.ednsflags & dns.flags.DO) if m.edns >= 0 else None,
    "options": [{"code": int(o.otype), "data": o.to_wire().hex()} for o in m.options],
}
print(json.dumps(d))
"""#

private func describe(_ wire: [UInt8]) throws -> [String: Any]? {
    guard let python = dnspython else { return nil }
    let out = try runPython(python, describeScript, input: Hex.encode(wire))
    return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
}

@Suite("KDC/KRS messages")
struct TDNSMessagesTests {
    @Test func chunkQueryNames() throws {
        #expect(try TDNSMessages.chunkQueryName(sequence: 0, nodeID: node, distributionID: try distID("6a2f00c2"), controlZone: cz).description
            == "krs1.example.6a2f00c2.kdc.example.")
        #expect(try TDNSMessages.chunkQueryName(sequence: 12, nodeID: node, distributionID: try distID("6a2f00c2"), controlZone: cz).description
            == "12.krs1.example.6a2f00c2.kdc.example.")
        // Numeric first node label: the manifest gets an explicit 0 (PROTOCOL §2.6).
        let numeric = try DNSName("42.example.")
        #expect(try TDNSMessages.chunkQueryName(sequence: 0, nodeID: numeric, distributionID: try distID("6a2f00c2"), controlZone: cz).description
            == "0.42.example.6a2f00c2.kdc.example.")
        #expect(try TDNSMessages.chunkQueryName(sequence: 0, nodeID: try DNSName("123456.example."), distributionID: try distID("abcd"), controlZone: cz).description
            == "123456.example.abcd.kdc.example.")
        let parsed = try TDNSMessages.parseChunkQueryName(try DNSName("0.42.example.6A2F00C2.kdc.example."), controlZone: cz)
        #expect(parsed.index == 0 && parsed.nodeID == numeric && parsed.distributionID.text == "6a2f00c2")
        // An invalid ID cannot be given: DistributionID refuses it (DistributionIDTests).
        expectCode(.malformed) { _ = try TDNSMessages.chunkQueryName(sequence: 0, nodeID: .root, distributionID: try distID("abcd"), controlZone: cz) }
        for bad in ["krs1.example.6a2f00c2.other.", "6a2f00c2.kdc.example.", "1.6a2f00c2.kdc.example.", "krs1.example.zz.kdc.example."] {
            expectCode(.malformed, "\(bad)") { _ = try TDNSMessages.parseChunkQueryName(try DNSName(bad), controlZone: cz) }
        }
    }

    @Test func notifyDistributionID() throws {
        #expect(try TDNSMessages.distributionID(fromNotifyName: try DNSName("6A2FE001.KDC.example."), controlZone: cz).text == "6a2fe001")
        #expect(try TDNSMessages.distributionID(fromNotifyName: try DNSName("x.6a2fe001.kdc.example."), controlZone: cz).text == "6a2fe001")
        for bad in ["kdc.example.", "6a2fe001.other.", "nothex.kdc.example.", "abc.kdc.example."] {
            expectCode(.malformed, "\(bad)") { _ = try TDNSMessages.distributionID(fromNotifyName: try DNSName(bad), controlZone: cz) }
        }
    }

    @Test func chunkQueryAndAnswer() throws {
        let qname = try TDNSMessages.chunkQueryName(sequence: 1, nodeID: node, distributionID: try distID("6a2f00c2"), controlZone: cz)
        let query = TDNSMessages.chunkQuery(id: 77, name: qname, chunkType: .chunk)
        let wire = try query.serialize()
        let p = try DNSMessage(wireEncoded: wire)
        #expect(p.opcode == .query && !p.flags.rd && !p.flags.qr)
        #expect(p.questions == [Question(name: qname, type: .chunk, rrClass: .in)])
        #expect(p.edns == EDNS(udpPayloadSize: 4096, dnssecOK: true))

        let chunk = CHUNKRecord(sequence: 1, total: 1, data: Array("blob".utf8))
        var answer = DNSMessage(
            id: 77, opcode: .query, flags: DNSHeaderFlags(qr: true, aa: true), questions: query.questions,
            answers: [ResourceRecord(name: qname, type: .chunk, ttl: 300, rdata: try chunk.rdata())])
        #expect(try TDNSMessages.chunkAnswer(try DNSMessage(wireEncoded: try answer.serialize()), to: query) == chunk)
        answer.answers[0].type = .chunkLegacy
        #expect(try TDNSMessages.chunkAnswer(answer, to: query) == chunk)
        answer.rcode = .nxDomain
        #expect(try TDNSMessages.chunkAnswer(answer, to: query) == nil)
        answer.rcode = .noError
        answer.id = 78
        expectCode(.malformed, "wrong id") { _ = try TDNSMessages.chunkAnswer(answer, to: query) }
        answer.id = 77
        answer.answers[0].name = cz
        expectCode(.malformed, "wrong owner") { _ = try TDNSMessages.chunkAnswer(answer, to: query) }
        answer.answers = []
        expectCode(.malformed, "empty answer") { _ = try TDNSMessages.chunkAnswer(answer, to: query) }
    }

    @Test func notifyAndResponse() throws {
        let plain = try TDNSMessages.notify(id: 9, distributionID: try distID("6a2fe001"), controlZone: cz, chunkType: .chunk)
        let p = try DNSMessage(wireEncoded: try plain.serialize())
        #expect(p.opcode == .notify && p.flags.aa && !p.flags.qr && p.edns == nil)
        #expect(p.questions == [Question(name: try DNSName("6a2fe001.kdc.example."), type: .chunk, rrClass: .in)])
        let seen = try TDNSMessages.parseNotify(p, controlZone: cz)
        #expect(seen.distributionID?.text == "6a2fe001" && seen.chunkOption == nil)

        let report = ChunkOption(contentType: .keyStatusReport, content: Array(#"{"successful_keys":[{"zone_name":"ping","key_id":"op-0"}]}"#.utf8))
        let confirm = try TDNSMessages.notify(id: 10, distributionID: try distID("6a2fe001"), controlZone: cz, chunkType: .chunkLegacy, chunkOption: report)
        let c = try DNSMessage(wireEncoded: try confirm.serialize())
        #expect(c.questions[0].type == .chunkLegacy)
        #expect(c.edns?.udpPayloadSize == 4096 && c.edns?.dnssecOK == true)
        #expect(try TDNSMessages.parseNotify(c, controlZone: cz).chunkOption == report)

        // Any QTYPE is accepted; a foreign QNAME gives no distribution ID.
        var soa = p
        soa.questions[0] = Question(name: try DNSName("example.com."), type: .soa)
        #expect(try TDNSMessages.parseNotify(soa, controlZone: cz).distributionID == nil)

        let response = TDNSMessages.notifyResponse(to: p)
        let r = try DNSMessage(wireEncoded: try response.serialize())
        #expect(r.id == 9 && r.flags.qr && r.flags.aa && r.opcode == .notify && r.rcode == .noError)
        #expect(r.questions == p.questions && r.answers.isEmpty && r.edns == nil)
        #expect(TDNSMessages.isResponse(r, to: p))
        expectCode(.malformed, "response is not a request") { _ = try TDNSMessages.parseNotify(r, controlZone: cz) }
        expectCode(.malformed, "query is not a NOTIFY") {
            _ = try TDNSMessages.parseNotify(TDNSMessages.chunkQuery(id: 1, name: cz, chunkType: .chunk), controlZone: cz)
        }
    }

    @Test func enrollmentUpdateAndResponse() throws {
        let chunk = try TDNSMessages.enrollmentChunk(ciphertext: [1, 2, 3])
        #expect(chunk.format == 1 && chunk.hmac.isEmpty && chunk.sequence == 0 && chunk.total == 0)
        expectCode(.malformed) { _ = try TDNSMessages.enrollmentChunk(ciphertext: []) }
        expectCode(.tooBig) { _ = try TDNSMessages.enrollmentChunk(ciphertext: [UInt8](repeating: 0, count: 65535)) }
        let update = try TDNSMessages.enrollmentUpdate(id: 5, controlZone: cz, chunk: chunk, chunkType: .chunk)
        let u = try DNSMessage(wireEncoded: try update.serialize())
        #expect(u.opcode == .update)
        #expect(u.questions == [Question(name: cz, type: .soa, rrClass: .in)])
        #expect(u.updates.count == 1 && u.updates[0].name.description == "_enroll.kdc.example." && u.updates[0].ttl == 300)
        #expect(u.updates[0].type == .chunk && u.updates[0].rrClass == .in)
        #expect(u.edns == EDNS(udpPayloadSize: 1232, dnssecOK: true))
        #expect(try TDNSMessages.parseEnrollmentUpdate(u, controlZone: cz) == chunk)

        let confirmation = ChunkOption(contentType: .enrollmentConfirmation, content: [0xEE, 0xFF])
        var response = DNSMessage(
            id: 5, opcode: .update, flags: DNSHeaderFlags(qr: true), rcode: .refused, questions: u.questions,
            edns: EDNS(udpPayloadSize: 1232, options: [try confirmation.ednsOption()]))
        let parsed = try TDNSMessages.parseEnrollmentResponse(try DNSMessage(wireEncoded: try response.serialize()), to: update)
        #expect(parsed.rcode == .refused && parsed.content == [0xEE, 0xFF])
        response.edns = EDNS(options: [try ChunkOption(contentType: .keyStatusReport, content: []).ednsOption()])
        expectCode(.malformed, "wrong content type") { _ = try TDNSMessages.parseEnrollmentResponse(response, to: update) }
        response.edns = nil
        expectCode(.malformed, "no option") { _ = try TDNSMessages.parseEnrollmentResponse(response, to: update) }
    }

    // MARK: - dnspython

    @Test func dnspythonReadsNotifyAndUpdate() throws {
        guard dnspython != nil else {
            print("SKIP dnspythonReadsNotifyAndUpdate: no .venv with dnspython at the repository root (make venv)")
            return
        }
        let report = ChunkOption(contentType: .keyStatusReport, content: Array("{}".utf8))
        let notify = try TDNSMessages.notify(id: 4321, distributionID: try distID("6a2fe001"), controlZone: cz, chunkType: .chunk, chunkOption: report)
        let n = try #require(try describe(try notify.serialize()))
        #expect(n["id"] as? Int == 4321)
        #expect(n["opcode"] as? Int == 4)
        #expect(n["aa"] as? Bool == true && n["qr"] as? Bool == false && n["rd"] as? Bool == false)
        let nq = try #require((n["question"] as? [[String: Any]])?.first)
        #expect(nq["name"] as? String == "6a2fe001.kdc.example." && nq["type"] as? Int == 65288 && nq["class"] as? Int == 1)
        #expect(n["edns"] as? Int == 0 && n["payload"] as? Int == 4096 && n["do"] as? Bool == true)
        let opt = try #require((n["options"] as? [[String: Any]])?.first)
        #expect(opt["code"] as? Int == 65004)
        #expect(opt["data"] as? String == Hex.encode(try report.optionData()))

        let update = try TDNSMessages.enrollmentUpdate(
            id: 999, controlZone: cz, chunk: try TDNSMessages.enrollmentChunk(ciphertext: Array("sealed".utf8)), chunkType: .chunk)
        let u = try #require(try describe(try update.serialize()))
        #expect(u["opcode"] as? Int == 5 && u["id"] as? Int == 999)
        let zone = try #require((u["question"] as? [[String: Any]])?.first)
        #expect(zone["name"] as? String == "kdc.example." && zone["type"] as? Int == 6 && zone["class"] as? Int == 1)
        let up = try #require((u["authority"] as? [[String: Any]])?.first)
        #expect(up["name"] as? String == "_enroll.kdc.example." && up["type"] as? Int == 65288)
        #expect(up["class"] as? Int == 1 && up["ttl"] as? Int == 300)
        #expect(up["rdata"] as? String == Hex.encode(try CHUNKRecord(sequence: 0, total: 0, data: Array("sealed".utf8)).rdata()))
        #expect(u["payload"] as? Int == 1232 && u["do"] as? Bool == true)

        // dnspython reads a class-ANY record in an UPDATE as an RRset deletion (RFC 2136 §2.5.2)
        // and so cannot parse any SIG(0)-signed UPDATE; check the SIG(0) RR on a signed NOTIFY
        // (the libtdnskrs confirmation, PROTOCOL §19) instead.
        let sig = SIGRecord.sig0(algorithm: 15, keyTag: 777, signerName: cz, inception: 1_767_225_540, expiration: 1_767_225_900)
        let signed = try SIG0.append(signature: [UInt8](repeating: 1, count: 64), sig: sig, to: try notify.serialize())
        let s = try #require(try describe(signed))
        let additional = try #require(s["additional"] as? [[String: Any]])
        #expect(additional.count == 1)
        let sigRR = try #require(additional.first)
        #expect(sigRR["type"] as? Int == 24 && sigRR["class"] as? Int == 255 && sigRR["ttl"] as? Int == 0 && sigRR["name"] as? String == ".")
        var full = sig
        full.signature = [UInt8](repeating: 1, count: 64)
        #expect(sigRR["rdata"] as? String == Hex.encode(full.rdata()))
        #expect(s["payload"] as? Int == 4096 && (s["options"] as? [[String: Any]])?.count == 1)
    }

    @Test func dnspythonMessagesParseHere() throws {
        guard let python = dnspython else {
            print("SKIP dnspythonMessagesParseHere: no .venv with dnspython at the repository root (make venv)")
            return
        }
        // dnspython compresses names; its NOTIFY and a CHUNK answer must parse here.
        let script = ##"""
        import dns.message, dns.opcode, dns.flags, dns.rrset, dns.rdata, dns.rdataclass, dns.name, dns.edns
        q = dns.message.make_query("6a2fe001.kdc.example.", 65288)
        q.flags = dns.flags.AA; q.set_opcode(dns.opcode.NOTIFY); q.id = 321
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text("6a2fe001.kdc.example.", 300, "IN", "TYPE65288", r"\# 10 01000000010001000161"))
        r.use_edns(0, dns.flags.DO, 4096, options=[dns.edns.GenericOption(65004, bytes.fromhex("0100000003017b7d"))])
        print(q.to_wire().hex()); print(r.to_wire().hex())
        """##
        let lines = try runPython(python, script, input: "").split(separator: "\n").map(String.init)
        let notify = try DNSMessage(wireEncoded: try hexBytes(lines[0]))
        let n = try TDNSMessages.parseNotify(notify, controlZone: cz)
        #expect(n.distributionID?.text == "6a2fe001" && n.question.type == .chunk && notify.flags.aa && notify.id == 321)
        let responseWire = try hexBytes(lines[1])
        let response = try DNSMessage(wireEncoded: responseWire)
        #expect(TDNSMessages.isResponse(response, to: notify))
        #expect(try CHUNKRecord(rdata: response.answers[0].rdata) == CHUNKRecord(sequence: 1, total: 1, data: [0x61]))
        #expect(response.answers[0].name == n.question.name)
        #expect(try response.edns?.chunkOption()?.contentType == .keyStatusReport)
        // dnspython compressed the answer owner: the received bytes are shorter than ours.
        #expect(responseWire.count < (try response.serialize()).count)
    }
}
