import Foundation
import Synchronization
import Testing
import TDNSCore
import TDNSCrypto
import TDNSWire

@testable import TDNSKDC

private func parse(_ bytes: [UInt8]?) throws -> DNSMessage {
    try DNSMessage(wireEncoded: try require2(bytes))
}

@Suite("KDC DNS service: CHUNK queries (PROTOCOL §2.6–§2.7)")
struct ChunkQueryTests {
    @Test("manifest and data chunk answers: NOERROR, AA, one CHUNK RR, owner = QNAME, TTL 300")
    func answers() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let records = try env.records(d)
        #expect(records.count == 2)
        let service = try KDCService(kdc: env.kdc)
        for (i, name) in ["krs1.example.\(d.id).kdc.example.", "1.krs1.example.\(d.id).kdc.example.", "0.krs1.example.\(d.id).kdc.example."].enumerated() {
            let r = try parse(service.handle(request: try chunkQuery(name), peerHost: "127.0.0.1", transport: .tcp))
            #expect(r.rcode == .noError && r.flags.aa && r.flags.qr && r.id == 7)
            #expect(r.answers.count == 1)
            let rr = try require2(r.answers.first)
            #expect(rr.name == (try DNSName(name)) && rr.ttl == 300 && rr.type == .chunk && rr.rrClass == .in)
            #expect(rr.rdata == records[i == 1 ? 1 : 0])
        }
        // The manifest fetch moved the distribution to "notified".
        #expect(try env.kdc.store.load().distribution(d.id)?.state == .notified)
    }

    @Test("errors: FORMERR for malformed names, NXDOMAIN for unknown node / distribution / index, SERVFAIL for another node's")
    func errors() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let before = env.stateBytes
        let cases: [(String, RCode, String)] = [
            ("krs1.example.zzzz.kdc.example.", .formErr, "is not a distribution ID"),
            ("\(d.id).kdc.example.", .formErr, "no node ID"),
            ("nobody.example.\(d.id).kdc.example.", .nxDomain, "unknown node"),
            ("krs1.example.0badcafe.kdc.example.", .nxDomain, "no distribution"),
            ("9.krs1.example.\(d.id).kdc.example.", .nxDomain, "out of range"),
            ("krs2.example.\(d.id).kdc.example.", .servFail, "for another node"),
        ]
        for (name, rcode, logText) in cases {
            let r = try parse(service.handle(request: try chunkQuery(name), peerHost: "127.0.0.1", transport: .udp))
            #expect(r.rcode == rcode, "\(name)")
            #expect(r.answers.isEmpty)
            #expect(env.logs.has(.refused, containing: logText), "\(name): \(logText)")
        }
        #expect(env.stateBytes == before, "refused queries change nothing")
        // Not in the control zone: REFUSED; garbage: FORMERR from the header; too short: nothing.
        let outside = try parse(service.handle(request: try chunkQuery("krs1.example.\(d.id).other."), peerHost: nil, transport: .udp))
        #expect(outside.rcode == .refused)
        let garbage = try parse(service.handle(request: [0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff], peerHost: nil, transport: .udp))
        #expect(garbage.rcode == .formErr && garbage.id == 0x1234)
        #expect(service.handle(request: [1, 2, 3], peerHost: nil, transport: .udp) == nil)
    }

    @Test("over UDP an answer larger than the client's buffer is truncated (TC)")
    func truncation() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        var q = TDNSMessages.chunkQuery(id: 9, name: try DNSName("1.krs1.example.\(d.id).kdc.example."), chunkType: .chunk)
        q.edns = nil
        let r = try parse(service.handle(request: try q.serialize(), peerHost: "127.0.0.1", transport: .udp))
        #expect(r.flags.tc && r.answers.isEmpty)
        let t = try parse(service.handle(request: try q.serialize(), peerHost: "127.0.0.1", transport: .tcp))
        #expect(!t.flags.tc && t.answers.count == 1)
    }
}

@Suite("KDC DNS service: confirmation NOTIFY (PROTOCOL §10.6)")
struct ConfirmationTests {
    func confirmation(_ id: String, failed: [(String, String, String)] = [], ok: [(String, String)] = []) throws -> DNSMessage {
        var report: [(String, JSONValue)] = []
        if !ok.isEmpty { report.append(("successful_keys", .array(ok.map { .object([("zone_name", .string($0.0)), ("key_id", .string($0.1))]) }))) }
        if !failed.isEmpty {
            report.append(("failed_keys", .array(failed.map { .object([("zone_name", .string($0.0)), ("key_id", .string($0.1)), ("error", .string($0.2))]) })))
        }
        let option = ChunkOption(contentType: .keyStatusReport, content: JSONValue.object(report).serialized())
        return try TDNSMessages.notify(id: 11, distributionID: id, controlZone: try DNSName("kdc.example."), chunkType: .chunk, chunkOption: option)
    }

    @Test("confirmed when sent from the node's notify address; refused (state unchanged) from elsewhere")
    func byAddress() throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let message = try confirmation(d.id, ok: [("example.com.", String(key.keyTag))]).serialize()
        let before = env.stateBytes
        let refused = try parse(service.handle(request: message, peerHost: "127.0.0.9", transport: .udp))
        #expect(refused.rcode == .refused)
        #expect(env.stateBytes == before)
        #expect(env.logs.has(.refused, containing: "not the notify address"))
        let r = try parse(service.handle(request: message, peerHost: "127.0.0.1", transport: .udp))
        #expect(r.rcode == .noError && r.flags.aa && r.opcode == .notify)
        let after = try require2(try env.kdc.store.load().distribution(d.id))
        #expect(after.state == .confirmed && after.confirmedBy == "address")
    }

    @Test("failed with the node's reason when failed_keys lists the key")
    func failedKeys() throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let message = try confirmation(d.id, failed: [("example.com.", String(key.keyTag), "key directory not writable")]).serialize()
        let r = try parse(service.handle(request: message, peerHost: "127.0.0.1", transport: .udp))
        #expect(r.rcode == .noError)
        let after = try require2(try env.kdc.store.load().distribution(d.id))
        #expect(after.state == .failed)
        #expect(after.reason?.contains("key directory not writable") == true)
    }

    @Test("a SIG(0) by the node's enrolled key identifies it; a SIG(0) by another key is refused")
    func bySIG0() throws {
        let env = try KDCEnv()
        try env.populate(legacy: false)
        let sig0 = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        let keyLine = KEYRecord(algorithm: 15, publicKey: sig0.dnskeyPublicKey).presentationLine(owner: try DNSName("krs1.example."))
        try env.kdc.store.update { (state) throws(TDNSError) in
            if let i = state.nodes.firstIndex(where: { $0.id == "krs1.example." }) { state.nodes[i].sig0PublicKey = keyLine }
        }
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let zone = try DNSName("kdc.example.")
        let wrong = try SIG0Signatures.sign(try confirmation(d.id), with: try DNSSECPrivateKey.generate(algorithm: .ed25519), signerName: zone, now: env.clock.now)
        #expect(try parse(service.handle(request: wrong, peerHost: "127.0.0.1", transport: .udp)).rcode == .refused)
        #expect(try env.kdc.store.load().distribution(d.id)?.state == .pending)
        let right = try SIG0Signatures.sign(try confirmation(d.id), with: sig0, signerName: zone, now: env.clock.now)
        // From any address: the signature identifies the node.
        #expect(try parse(service.handle(request: right, peerHost: "192.0.2.1", transport: .udp)).rcode == .noError)
        let after = try require2(try env.kdc.store.load().distribution(d.id))
        #expect(after.state == .confirmed && after.confirmedBy == "sig0")
    }

    @Test("NOTIFY of another type is acknowledged and ignored; unknown distribution is refused")
    func otherNotifies() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let soa = try TDNSMessages.notify(id: 3, distributionID: d.id, controlZone: try DNSName("kdc.example."), chunkType: .soa).serialize()
        #expect(try parse(service.handle(request: soa, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        #expect(try env.kdc.store.load().distribution(d.id)?.state == .pending)
        let unknown = try confirmation("0badcafe").serialize()
        #expect(try parse(service.handle(request: unknown, peerHost: "127.0.0.1", transport: .udp)).rcode == .refused)
    }
}

@Suite("KDC DNS service: enrollment UPDATE (PROTOCOL §11.4–§11.5)")
struct EnrollmentTests {
    struct Client {
        let nodeID = "krs9.example."
        let hpke = HPKEPrivateKey.generate()
        let sig0: DNSSECPrivateKey
        init() throws { sig0 = try DNSSECPrivateKey.generate(algorithm: .ed25519) }

        func update(token: String, kdcKey: HPKEPublicKey, now: Int64, timestamp: Int64? = nil, signWith: DNSSECPrivateKey? = nil, id: UInt16 = 42) throws -> (DNSMessage, [UInt8]) {
            let keyLine = KEYRecord(algorithm: 15, publicKey: sig0.dnskeyPublicKey).presentationLine(owner: try DNSName(nodeID))
            let request = JSONValue.object([
                ("auth_token", .string(token)), ("hpke_pubkey", .string(hpke.publicKey.hex)),
                ("notify_address", .string("127.0.0.1:15399")), ("sig0_pubkey", .string(keyLine)),
                ("timestamp", .string(KDCTime.rfc3339(timestamp ?? now))),
            ]).serialized()
            let chunk = try TDNSMessages.enrollmentChunk(ciphertext: try HPKECipher.seal(request, to: kdcKey))
            let m = try TDNSMessages.enrollmentUpdate(id: id, controlZone: try DNSName("kdc.example."), chunk: chunk, chunkType: .chunk)
            return (m, try SIG0Signatures.sign(m, with: signWith ?? sig0, signerName: try DNSName("kdc.example."), now: now))
        }
    }

    func token(_ env: KDCEnv) throws -> String {
        let text = try String(contentsOfFile: env.root + "/krs9.enroll", encoding: .utf8)
        let json = try JSONValue.parse(try Base64.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        return try require2(json["token"]?.stringValue)
    }

    @Test("the package carries the §11.2 fields in Go's order plus the §19 fields")
    func package() throws {
        let env = try KDCEnv()
        _ = try env.kdc.generateEnrollment(nodeID: "krs9.example.", out: env.root + "/krs9.enroll", crypto: nil, notify: nil)
        let text = try String(contentsOfFile: env.root + "/krs9.enroll", encoding: .utf8)
        #expect(text.hasSuffix("\n") && !text.contains("#"))
        let json = try JSONValue.parse(try Base64.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(json.keys == ["token", "node_id", "kdc_hpke_pubkey", "kdc_jose_pubkey", "kdc_enrollment_address", "control_zone",
                              "kdc_signing_pubkey", "kdc_sig0_pubkey", "valid_until", "version", "capabilities"])
        let keys = try env.kdc.loadKeys()
        #expect(json["kdc_hpke_pubkey"]?.stringValue == keys.hpke.publicKey.hex)
        #expect(try Base64.decode(try require2(json["kdc_jose_pubkey"]?.stringValue)) == Array(keys.jose.publicKey.jwkJSON().utf8))
        #expect(json["kdc_enrollment_address"]?.stringValue == "127.0.0.1:15353")
        #expect(json["kdc_signing_pubkey"]?["alg"]?.stringValue == "ES256")
        let attrs = try FileManager.default.attributesOfItem(atPath: env.root + "/krs9.enroll")
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        #expect(try token(env).utf8.count == 64)
    }

    @Test("a valid token is accepted once (HPKE Auth confirmation), refused the second time, and refused after its window")
    func onceAndWindow() throws {
        let env = try KDCEnv()
        _ = try env.kdc.generateEnrollment(nodeID: "krs9.example.", out: env.root + "/krs9.enroll", crypto: nil, notify: nil)
        let service = try KDCService(kdc: env.kdc)
        let kdcKeys = try env.kdc.loadKeys()
        let client = try Client()
        let tok = try token(env)

        // Not yet activated.
        var (m, wire) = try client.update(token: tok, kdcKey: kdcKeys.hpke.publicKey, now: env.clock.now)
        var r = try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp))
        #expect(r.rcode == .refused)

        _ = try env.kdc.activateEnrollment(nodeID: "krs9.example.", window: 300)
        (m, wire) = try client.update(token: tok, kdcKey: kdcKeys.hpke.publicKey, now: env.clock.now)
        r = try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp))
        #expect(r.rcode == .noError)
        let response = try TDNSMessages.parseEnrollmentResponse(r, to: m)
        let confirmation = try JSONValue.parse(try HPKECipher.openAuth(response.content, with: client.hpke, from: kdcKeys.hpke.publicKey))
        #expect(confirmation.keys == ["node_id", "status", "kdc_hpke_pubkey", "timestamp"])
        #expect(confirmation["status"]?.stringValue == "success" && confirmation["node_id"]?.stringValue == "krs9.example.")
        let node = try require2(try env.kdc.store.load().node("krs9.example."))
        #expect(node.hpkePublicKey == client.hpke.publicKey.hex && node.notifyAddress == "127.0.0.1:15399" && node.source == "enrolled")
        #expect(node.sig0PublicKey != nil && !node.legacy)

        // Reused: refused, encrypted to the node's key, state unchanged.
        let before = env.stateBytes
        (m, wire) = try client.update(token: tok, kdcKey: kdcKeys.hpke.publicKey, now: env.clock.now, id: 43)
        r = try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp))
        #expect(r.rcode == .refused)
        let err = try JSONValue.parse(try HPKECipher.openAuth(try TDNSMessages.parseEnrollmentResponse(r, to: m).content, with: client.hpke, from: kdcKeys.hpke.publicKey))
        #expect(err["status"]?.stringValue == "error" && err["error_message"]?.stringValue?.contains("already used") == true)
        #expect(env.stateBytes == before)

        // A new token, activated for 60 s, used after 61 s: refused.
        _ = try env.kdc.generateEnrollment(nodeID: "krs9.example.", out: env.root + "/krs9.enroll", crypto: nil, notify: nil)
        _ = try env.kdc.activateEnrollment(nodeID: "krs9.example.", window: 60)
        env.clock.advance(61)
        let before2 = env.stateBytes
        (m, wire) = try client.update(token: try token(env), kdcKey: kdcKeys.hpke.publicKey, now: env.clock.now)
        r = try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp))
        #expect(r.rcode == .refused)
        #expect(env.stateBytes == before2)
        #expect(env.logs.has(.refused, containing: "token expired"))
    }

    @Test("refusals: bad token, stale timestamp, SIG(0) by another key, unsigned, garbage ciphertext — state unchanged")
    func refusals() throws {
        let env = try KDCEnv()
        _ = try env.kdc.generateEnrollment(nodeID: "krs9.example.", out: env.root + "/krs9.enroll", crypto: nil, notify: nil)
        _ = try env.kdc.activateEnrollment(nodeID: "krs9.example.", window: 300)
        let service = try KDCService(kdc: env.kdc)
        let kdcKey = try env.kdc.loadKeys().hpke.publicKey
        let client = try Client()
        let tok = try token(env)
        let now = env.clock.now
        let before = env.stateBytes
        let cases: [(String, [UInt8], RCode)] = [
            ("bad token", try client.update(token: String(repeating: "0", count: 64), kdcKey: kdcKey, now: now).1, .refused),
            ("timestamp 10 min old", try client.update(token: tok, kdcKey: kdcKey, now: now, timestamp: now - 600).1, .refused),
            ("SIG(0) by another key", try client.update(token: tok, kdcKey: kdcKey, now: now, signWith: try DNSSECPrivateKey.generate(algorithm: .ed25519)).1, .refused),
            ("unsigned", try client.update(token: tok, kdcKey: kdcKey, now: now).0.serialize(), .refused),
            ("not for our key", try client.update(token: tok, kdcKey: HPKEPrivateKey.generate().publicKey, now: now).1, .formErr),
        ]
        for (name, wire, rcode) in cases {
            let r = try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp))
            #expect(r.rcode == rcode, "\(name)")
            #expect(r.edns?.options.first?.code == .chunk, "\(name): CHUNK option present")
        }
        #expect(env.stateBytes == before)
        #expect(env.logs.all.filter { $0.hasPrefix("refused: enrollment") }.count == cases.count)
        // And the valid one still works afterwards.
        let ok = try parse(service.handle(request: try client.update(token: tok, kdcKey: kdcKey, now: now).1, peerHost: "127.0.0.1", transport: .udp))
        #expect(ok.rcode == .noError)
    }

    @Test("UPDATE for another zone: NOTAUTH")
    func otherZone() throws {
        let env = try KDCEnv()
        let service = try KDCService(kdc: env.kdc)
        let chunk = try TDNSMessages.enrollmentChunk(ciphertext: [1, 2, 3])
        let m = try TDNSMessages.enrollmentUpdate(id: 5, controlZone: try DNSName("other.example."), chunk: chunk, chunkType: .chunk)
        #expect(try parse(service.handle(request: try m.serialize(), peerHost: "127.0.0.1", transport: .udp)).rcode == .notAuth)
    }
}

@Suite("KDC NOTIFY sending and zone export")
struct NotifierTests {
    @Test("NOTIFYs: signed for non-legacy nodes, retried with backoff, acknowledged → notified")
    func notifier() throws {
        let env = try KDCEnv()
        try env.populate(legacy: false)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let sent = LogCapture()
        let answer = TestFlag()
        let notifier = KDCNotifier(service: service) { request, address in
            sent.log.info(address)
            guard answer.isSet, let m = try? DNSMessage(wireEncoded: request) else { return nil }
            #expect((try? SIG0.extract(from: m)) != nil)
            return try? TDNSMessages.notifyResponse(to: m).serialize()
        }
        #expect(notifier.runOnce() == 1)
        #expect(notifier.runOnce() == 0, "backoff: not again within 1 s")
        env.clock.advance(1)
        #expect(notifier.runOnce() == 1)
        #expect(try env.kdc.store.load().distribution(d.id)?.notifyAttempts == 2)
        answer.set()
        env.clock.advance(2)
        #expect(notifier.runOnce() == 1)
        #expect(try env.kdc.store.load().distribution(d.id)?.state == .notified)
        #expect(sent.all.allSatisfy { $0.hasSuffix("127.0.0.1:15354") })
    }

    @Test("unanswered NOTIFYs end in failed after 5 attempts")
    func exhausted() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let notifier = KDCNotifier(service: service) { _, _ in nil }
        for _ in 0..<5 {
            notifier.runOnce()
            env.clock.advance(16)
        }
        let after = try require2(try env.kdc.store.load().distribution(d.id))
        #expect(after.state == .failed && after.notifyAttempts == 5)
        #expect(after.reason == "no answer to 5 NOTIFYs")
    }

    @Test("export-zone: SOA, NS, and every CHUNK record, generic form parses back to the same RDATA")
    func exportZone() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let records = try env.records(d)
        let text = try env.kdc.exportZone(generic: true)
        let lines = text.split(separator: "\n").filter { $0.contains("TYPE65288") }
        #expect(lines.count == records.count)
        for (line, rdata) in zip(lines, records) {
            let rr = try ResourceRecord(presentation: String(line))
            #expect(rr.rdata == rdata && rr.ttl == 300)
        }
        #expect(text.contains("\tSOA\t") && text.contains("\tNS\t"))
        let plain = try env.kdc.exportZone(generic: false)
        #expect(plain.contains("\tCHUNK\t0 1 JSON "))
    }
}

final class TestFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
