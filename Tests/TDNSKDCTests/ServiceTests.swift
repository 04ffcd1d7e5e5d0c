import Foundation
import Synchronization
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKDC

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
        // CHUNK queries change nothing: anyone can send one.
        #expect(try env.distribution(d.id).state == .pending)
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

    @Test("served only while live and before the deadline: NXDOMAIN (and dropped from the cache) once confirmed, failed or past it")
    func servingPolicy() throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: true)
        let service = try KDCService(kdc: env.kdc)
        func ask(_ d: KDCDistribution, _ index: Int = 0) throws -> RCode {
            try parse(service.handle(request: try chunkQuery("\(index == 0 ? "" : "\(index).")krs1.example.\(d.id).kdc.example."),
                                     peerHost: "192.0.2.7", transport: .tcp)).rcode
        }
        // Confirmed.
        let confirmed = try env.distribute("krs1.example.")
        #expect(try ask(confirmed) == .noError && service.isCached(confirmed.id))
        let ok = try ConfirmationTests.confirmation(confirmed.id, ok: [("example.com.", String(key.keyTag))]).serialize()
        #expect(try parse(service.handle(request: ok, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        #expect(try env.distribution(confirmed.id).state == .confirmed)
        #expect(!service.isCached(confirmed.id), "dropped from the cache")
        #expect(try ask(confirmed) == .nxDomain && ask(confirmed, 1) == .nxDomain)
        #expect(env.logs.has(.refused, containing: "distribution \(confirmed.id) is confirmed"))
        // Failed (the node reported it).
        let failed = try env.distribute("krs1.example.")
        let bad = try ConfirmationTests.confirmation(failed.id, failed: [("example.com.", String(key.keyTag), "disk full")]).serialize()
        #expect(try parse(service.handle(request: bad, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        #expect(try ask(failed) == .nxDomain)
        // Past its deadline, still pending (no notifier ran): not served, whatever the stored state says.
        let late = try env.distribute("krs1.example.")
        #expect(try ask(late) == .noError && service.isCached(late.id))
        env.clock.advance(299)
        #expect(try ask(late, 1) == .noError)
        env.clock.advance(1)
        #expect(try ask(late) == .nxDomain && ask(late, 1) == .nxDomain)
        #expect(!service.isCached(late.id))
        #expect(env.logs.has(.refused, containing: "past its deadline"))
        #expect(try env.distribution(late.id).state == .pending)
    }
}

@Suite("KDC DNS service: confirmation NOTIFY (PROTOCOL §10.6)")
struct ConfirmationTests {
    static func confirmation(_ id: String, failed: [(String, String, String)] = [], ok: [(String, String)] = []) throws -> DNSMessage {
        var report: [(String, JSONValue)] = []
        if !ok.isEmpty { report.append(("successful_keys", .array(ok.map { .object([("zone_name", .string($0.0)), ("key_id", .string($0.1))]) }))) }
        if !failed.isEmpty {
            report.append(("failed_keys", .array(failed.map { .object([("zone_name", .string($0.0)), ("key_id", .string($0.1)), ("error", .string($0.2))]) })))
        }
        let option = ChunkOption(contentType: .keyStatusReport, content: JSONValue.object(report).serialized())
        return try TDNSMessages.notify(id: 11, distributionID: try DistributionID(validating: id), controlZone: try DNSName("kdc.example."), chunkType: .chunk, chunkOption: option)
    }

    func confirmation(_ id: String, failed: [(String, String, String)] = [], ok: [(String, String)] = []) throws -> DNSMessage {
        try Self.confirmation(id, failed: failed, ok: ok)
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
        let sig0 = try env.enrollSIG0("krs1.example.", capabilities: [KDCCapability.jwsES256, KDCCapability.sig0])
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let zone = try DNSName("kdc.example.")
        let wrong = try SIG0Signatures.sign(try confirmation(d.id), with: try DNSSECPrivateKey.generate(algorithm: .ed25519), signerName: zone, now: env.clock.now)
        #expect(try parse(service.handle(request: wrong, peerHost: "127.0.0.1", transport: .udp)).rcode == .refused)
        #expect(try env.distribution(d.id).state == .pending)
        let right = try SIG0Signatures.sign(try confirmation(d.id), with: sig0, signerName: zone, now: env.clock.now)
        // From any address: the signature identifies the node.
        #expect(try parse(service.handle(request: right, peerHost: "192.0.2.1", transport: .udp)).rcode == .noError)
        let after = try env.distribution(d.id)
        #expect(after.state == .confirmed && after.confirmedBy == "sig0")
    }

    @Test("unsigned confirmation from the node's IP: refused for a node that announced sig0 (and has a key), accepted for one that did not",
          arguments: [true, false])
    func unsignedPerCapability(announcedSIG0: Bool) throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: !announcedSIG0)
        _ = try env.enrollSIG0("krs1.example.", capabilities: announcedSIG0 ? [KDCCapability.jwsES256, KDCCapability.sig0] : [])
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let before = env.stateBytes
        // Sprayed before any NOTIFY, from the node's own notify address.
        let message = try confirmation(d.id, ok: [("example.com.", String(key.keyTag))]).serialize()
        let r = try parse(service.handle(request: message, peerHost: "127.0.0.1", transport: .udp))
        if announcedSIG0 {
            #expect(r.rcode == .refused)
            #expect(env.stateBytes == before)
            #expect(env.logs.has(.refused, containing: "announced sig0"))
            #expect(try env.distribution(d.id).state == .pending)
        } else {
            // A Go KRS never signs: the Go rule (its notify address) identifies it.
            #expect(r.rcode == .noError)
            let after = try env.distribution(d.id)
            #expect(after.state == .confirmed && after.confirmedBy == "address")
        }
    }

    @Test("NOTIFY of another type is acknowledged and ignored; unknown distribution is refused")
    func otherNotifies() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let soa = try TDNSMessages.notify(id: 3, distributionID: try DistributionID(validating: d.id), controlZone: try DNSName("kdc.example."), chunkType: .soa, chunkOption: nil).serialize()
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
        let jose: JOSEPrivateKey
        let sig0: DNSSECPrivateKey
        init() throws {
            sig0 = try DNSSECPrivateKey.generate(algorithm: .ed25519)
            jose = try JOSEPrivateKey.generate()
        }

        /// The request our KRS sends (PROTOCOL §11.3 + §19 `capabilities`), HPKE-sealed to the KDC,
        /// in an UPDATE whose RR has `chunkType`, SIG(0)-signed by the enrolled key (or `signWith`).
        func update(
            token: String, kdcKey: HPKEPublicKey, now: Int64, timestamp: Int64? = nil, signWith: DNSSECPrivateKey? = nil,
            id: UInt16 = 42, capabilities: [String]? = [KDCCapability.jwsES256, KDCCapability.sig0], withJOSE: Bool = false,
            chunkType: RRType = .chunk
        ) throws -> (DNSMessage, [UInt8]) {
            let keyLine = KEYRecord(algorithm: 15, publicKey: sig0.dnskeyPublicKey).presentationLine(owner: try DNSName(nodeID))
            var members: [(String, JSONValue)] = [("auth_token", .string(token))]
            if let capabilities { members.append(("capabilities", .array(capabilities.map { .string($0) }))) }
            members.append(("hpke_pubkey", .string(hpke.publicKey.hex)))
            if withJOSE { members.append(("jose_pubkey", .string(jose.publicKey.jwkJSON()))) }
            members += [
                ("notify_address", .string("127.0.0.1:15399")), ("sig0_pubkey", .string(keyLine)),
                ("timestamp", .string(RFC3339.format(timestamp ?? now))),
            ]
            let request = JSONValue.object(members).serialized()
            let chunk = try TDNSMessages.enrollmentChunk(ciphertext: try HPKECipher.seal(request, to: kdcKey))
            let m = try TDNSMessages.enrollmentUpdate(id: id, controlZone: try DNSName("kdc.example."), chunk: chunk, chunkType: chunkType)
            return (m, try SIG0Signatures.sign(m, with: signWith ?? sig0, signerName: try DNSName("kdc.example."), now: now))
        }
    }

    /// A fresh KDC with an activated package for krs9.example. (`legacy` as `enroll generate --legacy`).
    func activated(chunkType: UInt16 = RRType.chunk.rawValue, legacy: Bool = false) throws -> (KDCEnv, KDCService, String) {
        let env = try KDCEnv(chunkType: chunkType)
        _ = try env.kdc.generateEnrollment(nodeID: "krs9.example.", out: env.root + "/krs9.enroll", crypto: nil, notify: nil, legacy: legacy)
        _ = try env.kdc.activateEnrollment(nodeID: "krs9.example.", window: 300)
        return (env, try KDCService(kdc: env.kdc), try token(env))
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
                              "kdc_signing_pubkey", "kdc_sig0_pubkey", "valid_until", "version", "capabilities",
                              "supported_crypto", "default_crypto"])
        #expect(json["supported_crypto"] == .array([.string("hpke"), .string("jose")]) && json["default_crypto"]?.stringValue == "hpke")
        #expect(json["reenroll"] == nil)
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
        #expect(node.sig0PublicKey != nil && !node.legacy && node.capabilities == ["jws-es256", "sig0"] && node.hpkeLayout == .v2)

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

    @Test("what the node announced decides: jws-es256 → signed; none → legacy, v1 without a JOSE key, v2 with one; --legacy forces it",
          arguments: [
            ([KDCCapability.jwsES256, KDCCapability.sig0], false, false, false, KDCHPKELayout.v2),
            ([], false, false, true, .v1),
            (nil, false, false, true, .v1),
            (nil, true, false, true, .v2),
            ([KDCCapability.sig0], false, false, true, .v1),
            ([KDCCapability.jwsES256, KDCCapability.sig0], false, true, true, .v2),
          ] as [([String]?, Bool, Bool, Bool, KDCHPKELayout)])
    func capabilitiesDecide(capabilities: [String]?, withJOSE: Bool, forceLegacy: Bool, legacy: Bool, layout: KDCHPKELayout) throws {
        let (env, service, tok) = try activated(legacy: forceLegacy)
        let client = try Client()
        let kdcKey = try env.kdc.loadKeys().hpke.publicKey
        let wire = try client.update(token: tok, kdcKey: kdcKey, now: env.clock.now, capabilities: capabilities, withJOSE: withJOSE).1
        #expect(try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        let node = try require2(try env.kdc.store.load().node("krs9.example."))
        #expect(node.legacy == legacy && node.hpkeLayout == layout && node.capabilities == (capabilities ?? []))
        #expect(node.crypto == .hpke && (node.josePublicKey != nil) == withJOSE)
        // And what it is then sent: JWT manifest only for a node that verifies it.
        _ = try env.kdc.addZone("example.com.")
        _ = try env.kdc.generateKey(zone: "example.com.", algorithm: 13, keyType: "zsk")
        let d = try env.distribute("krs9.example.")
        #expect(d.signed == !legacy && d.hpkeLayout == node.effectiveHPKELayout)
        let manifest = try CHUNKRecord(rdata: try env.records(d)[0])
        #expect(manifest.format == (legacy ? 1 : 2))
        let json = try env.kdc.status(node: nil).json
        let entry = try require2(json["nodes"]?.arrayValue?.first)
        #expect(entry["legacy"]?.boolValue == legacy && entry["hpke_layout"]?.stringValue == layout.rawValue)
        #expect(entry["capabilities"]?.arrayValue?.count == (capabilities ?? []).count)
    }

    @Test("a --legacy package carries no kdc_signing_pubkey or kdc_sig0_pubkey")
    func legacyPackage() throws {
        let (env, _, _) = try activated(legacy: true)
        let text = try String(contentsOfFile: env.root + "/krs9.enroll", encoding: .utf8)
        let json = try JSONValue.parse(try Base64.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(json.keys == ["token", "node_id", "kdc_hpke_pubkey", "kdc_jose_pubkey", "kdc_enrollment_address", "control_zone",
                              "valid_until", "version", "capabilities", "supported_crypto", "default_crypto"])
        #expect(try env.kdc.store.load().enrollments.last?.legacy == true)
    }

    @Test("malformed capabilities: FORMERR, nothing stored",
          arguments: [JSONValue.string("jws-es256"), .array([.integer(1)]), .array([.string("")]),
                      .array((0..<17).map { .string("c\($0)") }), .array([.string(String(repeating: "x", count: 33))])])
    func badCapabilities(value: JSONValue) throws {
        let (env, service, tok) = try activated()
        let client = try Client()
        let keyLine = KEYRecord(algorithm: 15, publicKey: client.sig0.dnskeyPublicKey).presentationLine(owner: try DNSName(client.nodeID))
        let request = JSONValue.object([
            ("auth_token", .string(tok)), ("capabilities", value), ("hpke_pubkey", .string(client.hpke.publicKey.hex)),
            ("sig0_pubkey", .string(keyLine)), ("timestamp", .string(RFC3339.format(env.clock.now))),
        ]).serialized()
        let chunk = try TDNSMessages.enrollmentChunk(ciphertext: try HPKECipher.seal(request, to: try env.kdc.loadKeys().hpke.publicKey))
        let m = try TDNSMessages.enrollmentUpdate(id: 1, controlZone: try DNSName("kdc.example."), chunk: chunk, chunkType: .chunk)
        let wire = try SIG0Signatures.sign(m, with: client.sig0, signerName: try DNSName("kdc.example."), now: env.clock.now)
        let before = env.stateBytes
        #expect(try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp)).rcode == .formErr)
        #expect(env.stateBytes == before)
        #expect(env.logs.has(.refused, containing: "capabilities"))
    }

    @Test("both CHUNK types are accepted for enrollment whatever the KDC's chunk_type",
          arguments: [(RRType.chunk.rawValue, RRType.chunkLegacy), (RRType.chunk.rawValue, .chunk),
                      (RRType.chunkLegacy.rawValue, .chunk), (RRType.chunkLegacy.rawValue, .chunkLegacy)])
    func bothChunkTypes(configured: UInt16, sent: RRType) throws {
        let (env, service, tok) = try activated(chunkType: configured)
        let client = try Client()
        let wire = try client.update(token: tok, kdcKey: try env.kdc.loadKeys().hpke.publicKey, now: env.clock.now, chunkType: sent).1
        let r = try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp))
        #expect(r.rcode == .noError)
        #expect(try env.kdc.store.load().node("krs9.example.") != nil)
    }

    @Test("an UPDATE whose record is not CHUNK: FORMERR naming the type numbers")
    func otherTypeRefused() throws {
        let (env, service, _) = try activated()
        let client = try Client()
        let chunk = try TDNSMessages.enrollmentChunk(ciphertext: [1, 2, 3])
        let m = try TDNSMessages.enrollmentUpdate(id: 9, controlZone: try DNSName("kdc.example."), chunk: chunk, chunkType: .a)
        let wire = try SIG0Signatures.sign(m, with: client.sig0, signerName: try DNSName("kdc.example."), now: env.clock.now)
        let r = try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp))
        #expect(r.rcode == .formErr)
        let content = try TDNSMessages.parseEnrollmentResponse(r, to: m).content
        let error = try JSONValue.parse(content)
        #expect(error["error_message"]?.stringValue == "UPDATE record is TYPE1 (1), not CHUNK (65288 or 65015)")
        #expect(env.logs.has(.refused, containing: "UPDATE record is TYPE1 (1), not CHUNK (65288 or 65015)"))
    }
}

@Suite("KDC NOTIFY sending and zone export")
struct NotifierTests {
    /// A notifier whose NOTIFYs are answered by `answer` (nil: no answer); every send is recorded
    /// with the clock time.
    final class Peer: Sendable {
        let sent = Mutex<[(Int64, DNSMessage, [UInt8])]>([])
        let rcode = Mutex<RCode?>(nil)
        let clock: TestClock
        init(clock: TestClock) { self.clock = clock }
        var times: [Int64] { sent.withLock { $0.map(\.0) } }
        func notifier(_ service: KDCService) -> KDCNotifier {
            KDCNotifier(service: service) { [self] request, _ in
                guard let m = try? DNSMessage(wireEncoded: request) else { return nil }
                sent.withLock { $0.append((clock.now, m, request)) }
                guard let rcode = rcode.withLock({ $0 }) else { return nil }
                return try? TDNSMessages.notifyResponse(to: m, rcode: rcode).serialize()
            }
        }
    }

    @Test("NOTIFY schedule with an injected clock: 0, 1, 3, 7, 15, 31, then every 30 s until the deadline; then failed with the reason")
    func scheduleAndDeadline() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let peer = Peer(clock: env.clock)
        let notifier = peer.notifier(service)
        let start = env.clock.now
        #expect(d.deadline == start + 300)
        for _ in 0..<300 {
            notifier.runOnce()
            env.clock.advance(1)
        }
        let offsets = peer.times.map { $0 - start }
        #expect(offsets == [0, 1, 3, 7, 15, 31, 61, 91, 121, 151, 181, 211, 241, 271])
        var after = try env.distribution(d.id)
        #expect(after.state == .pending && after.lastNotifyResult == "no answer" && after.notifyAttempts == 14)
        // The deadline (t = 300): failed, with the reason; no more NOTIFYs.
        notifier.runOnce()
        after = try env.distribution(d.id)
        #expect(after.state == .failed)
        #expect(after.reason == "not confirmed by the deadline (14 NOTIFYs, last: no answer)")
        env.clock.advance(60)
        #expect(notifier.runOnce() == 0)
        #expect(env.logs.has(.warning, containing: "not confirmed by the deadline"))
        // status --json reports the deadline and the NOTIFY bookkeeping.
        let json = try require2(try env.kdc.status(node: nil).json["distributions"]?.arrayValue?.first)
        #expect(json["deadline"]?.stringValue == RFC3339.format(start + 300))
        #expect(json["notify_attempts"]?.intValue == 14 && json["last_notify_result"]?.stringValue == "no answer")
        #expect(json["last_notify_at"]?.stringValue == RFC3339.format(start + 271))
        // A late confirmation still turns failed(deadline) into confirmed.
        let key = try require2(try env.kdc.store.load().keys.first)
        let ok = try ConfirmationTests.confirmation(d.id, ok: [("example.com.", String(key.keyTag))]).serialize()
        #expect(try parse(service.handle(request: ok, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        #expect(try env.distribution(d.id).state == .confirmed)
    }

    @Test("NOERROR → notified, and NOTIFYed again with backoff until confirmed; signed for non-legacy nodes")
    func notifiedIsRenotified() throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: false)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let peer = Peer(clock: env.clock)
        peer.rcode.withLock { $0 = .noError }
        let notifier = peer.notifier(service)
        #expect(notifier.runOnce() == 1)
        #expect(notifier.runOnce() == 0, "backoff: not again within 1 s")
        var after = try env.distribution(d.id)
        #expect(after.state == .notified && after.notifiedAt == env.clock.now && after.lastNotifyResult == "NOERROR")
        for _ in 0..<20 {
            env.clock.advance(1)
            notifier.runOnce()
        }
        #expect(peer.times.count == 5, "re-NOTIFYed at 1, 3, 7, 15 s while notified")
        #expect(peer.sent.withLock { $0.allSatisfy { (try? SIG0.extract(from: $0.1)) != nil } }, "every NOTIFY carries the KDC's SIG(0)")
        let sig0 = try env.kdc.loadKeys().sig0KeyRecord
        let first = try DNSMessage(wireEncoded: try require2(peer.sent.withLock { $0.first?.2 }))
        try SIG0Signatures.verify(first, key: sig0, now: env.clock.now)
        // Confirmed (by SIG(0)): no more NOTIFYs.
        let nodeSIG0 = try env.enrollSIG0("krs1.example.", capabilities: [KDCCapability.jwsES256, KDCCapability.sig0])
        let message = try ConfirmationTests.confirmation(d.id, ok: [("example.com.", String(key.keyTag))])
        let signed = try SIG0Signatures.sign(message, with: nodeSIG0, signerName: try DNSName(env.controlZone), now: env.clock.now)
        #expect(try parse(service.handle(request: signed, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        after = try env.distribution(d.id)
        #expect(after.state == .confirmed)
        env.clock.advance(120)
        #expect(notifier.runOnce() == 0)
        #expect(peer.times.count == 5)
    }

    @Test("a NOTIFY answered REFUSED is not an acknowledgement: still pending, result recorded, retried")
    func refusedIsNotAcknowledged() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let peer = Peer(clock: env.clock)
        peer.rcode.withLock { $0 = .refused }
        let notifier = peer.notifier(service)
        #expect(notifier.runOnce() == 1)
        var after = try env.distribution(d.id)
        #expect(after.state == .pending && after.lastNotifyResult == "REFUSED" && after.notifiedAt == nil)
        #expect(peer.sent.withLock { $0.allSatisfy { (try? SIG0.extract(from: $0.1)) == nil && $0.1.edns == nil } },
                "legacy: Go's unsigned NOTIFY without EDNS")
        env.clock.advance(1)
        peer.rcode.withLock { $0 = .noError }
        #expect(notifier.runOnce() == 1)
        after = try env.distribution(d.id)
        #expect(after.state == .notified && after.lastNotifyResult == "NOERROR" && after.notifyAttempts == 2)
    }

    @Test("a legacy node that announced sig0 still gets signed NOTIFYs (it may refuse unsigned ones); a Go KRS does not")
    func legacySIG0NodeGetsSignedNotify() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        _ = try env.enrollSIG0("krs1.example.", capabilities: [KDCCapability.jwsES256, KDCCapability.sig0])
        _ = try env.enrollSIG0("krs2.example.", capabilities: [])
        let d1 = try env.distribute("krs1.example.")
        let d2 = try env.distribute("krs2.example.")
        #expect(!d1.signed && !d2.signed)
        let service = try KDCService(kdc: env.kdc)
        let peer = Peer(clock: env.clock)
        #expect(peer.notifier(service).runOnce() == 2)
        let signedIDs = peer.sent.withLock { $0.filter { (try? SIG0.extract(from: $0.1)) != nil }.map { $0.1.questions.first?.name.description ?? "" } }
        #expect(signedIDs == ["\(d1.id).kdc.example."])
    }

    @Test("a CHUNK query before the first NOTIFY (anyone can guess the ID) does not suppress the NOTIFY")
    func earlyQueryDoesNotSuppress() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        for name in ["krs1.example.\(d.id).kdc.example.", "1.krs1.example.\(d.id).kdc.example."] {
            #expect(try parse(service.handle(request: try chunkQuery(name), peerHost: "192.0.2.66", transport: .udp)).rcode == .noError)
        }
        #expect(try env.distribution(d.id).state == .pending)
        let peer = Peer(clock: env.clock)
        #expect(peer.notifier(service).runOnce() == 1)
        #expect(peer.times.count == 1)
    }

    @Test("backoff: 1, 2, 4, 8, 16, 30, 30 … s")
    func backoff() {
        #expect((1...9).map { KDCNotifier.backoff(afterAttempt: $0) } == [1, 2, 4, 8, 16, 30, 30, 30, 30])
        #expect(KDCNotifier.backoff(afterAttempt: 10_000) == 30)
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

@Suite("KDC node commands: legacy, signed, HPKE layout")
struct NodeCommandTests {
    @Test("node add: --hpke-layout only with --legacy, v1 only for an HPKE node")
    func addLayout() throws {
        let env = try KDCEnv()
        let hpke = HPKEPrivateKey.generate().publicKey.hex
        let before = env.stateBytes
        expectCode(.config, "--hpke-layout without --legacy") {
            _ = try env.kdc.addNode(id: "a.example.", crypto: .hpke, hpkePublicKey: hpke, josePublicKey: nil, notify: nil, legacy: false, hpkeLayout: .v1)
        }
        expectCode(.config, "v2 without --legacy too") {
            _ = try env.kdc.addNode(id: "a.example.", crypto: .hpke, hpkePublicKey: hpke, josePublicKey: nil, notify: nil, legacy: false, hpkeLayout: .v2)
        }
        expectCode(.config, "v1 for a JOSE node") {
            _ = try env.kdc.addNode(id: "a.example.", crypto: .jose, hpkePublicKey: nil, josePublicKey: env.nodeJOSE.publicKey.jwkJSON(),
                                    notify: nil, legacy: true, hpkeLayout: .v1)
        }
        #expect(env.stateBytes == before)
        _ = try env.kdc.addNode(id: "a.example.", crypto: .hpke, hpkePublicKey: hpke, josePublicKey: nil, notify: nil, legacy: true, hpkeLayout: .v1)
        _ = try env.kdc.addNode(id: "b.example.", crypto: .hpke, hpkePublicKey: hpke, josePublicKey: nil, notify: nil, legacy: true)
        let state = try env.kdc.store.load()
        #expect(state.node("a.example.")?.hpkeLayout == .v1 && state.node("b.example.")?.hpkeLayout == .v2)
        #expect(state.node("a.example.")?.capabilities == [])
    }

    @Test("node set: --legacy / --signed / --hpke-layout; --signed warns for a node that never announced jws-es256")
    func set() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true, layout: .v1)
        var report = try env.kdc.setNode(id: "krs1.example.", legacy: false, hpkeLayout: nil)
        var node = try require2(try env.kdc.store.load().node("krs1.example."))
        #expect(!node.legacy && node.hpkeLayout == .v2)
        #expect(report.warnings.count == 1 && report.warnings[0].contains("never announced jws-es256"))
        #expect(try env.distribute("krs1.example.").signed)
        report = try env.kdc.setNode(id: "krs1.example.", legacy: true, hpkeLayout: .v1)
        node = try require2(try env.kdc.store.load().node("krs1.example."))
        #expect(node.legacy && node.hpkeLayout == .v1 && report.warnings.isEmpty)
        let d = try env.distribute("krs1.example.")
        #expect(!d.signed && d.hpkeLayout == .v1)
        // A node that announced jws-es256: --signed without a warning.
        try env.kdc.store.update { (state) throws(TDNSError) in
            if let i = state.nodes.firstIndex(where: { $0.id == "krs2.example." }) { state.nodes[i].capabilities = ["jws-es256"] }
        }
        #expect(try env.kdc.setNode(id: "krs2.example.", legacy: false, hpkeLayout: nil).warnings.isEmpty)
        // Refusals change nothing.
        let before = env.stateBytes
        expectCode(.config, "nothing to set") { _ = try env.kdc.setNode(id: "krs1.example.", legacy: nil, hpkeLayout: nil) }
        expectCode(.config, "layout for a signed node") { _ = try env.kdc.setNode(id: "krs1.example.", legacy: false, hpkeLayout: .v1) }
        expectCode(.config, "layout for a node that stays signed") { _ = try env.kdc.setNode(id: "krs2.example.", legacy: nil, hpkeLayout: .v2) }
        expectCode(.config, "v1 for a JOSE-only node") { _ = try env.kdc.setNode(id: "krs2.example.", legacy: true, hpkeLayout: .v1) }
        expectCode(.config, "unknown node") { _ = try env.kdc.setNode(id: "nobody.example.", legacy: true, hpkeLayout: nil) }
        #expect(env.stateBytes == before)
        // --legacy for a node that announced jws-es256: allowed, with a warning.
        report = try env.kdc.setNode(id: "krs2.example.", legacy: true, hpkeLayout: nil)
        #expect(report.warnings.count == 1 && report.warnings[0].contains("refuses the Go format"))
    }

    @Test("state written before capabilities and deadlines loads: hpke_layout v2, capabilities [], deadline = created_at + ttl")
    func oldState() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        let d = try env.distribute("krs1.example.")
        var text = String(decoding: env.stateBytes, as: UTF8.self)
        for member in ["\"hpke_layout\" : \"v2\",", "\"capabilities\" : [\n\n      ],", "\"deadline\" : \(d.deadline),"] {
            #expect(text.contains(member), "\(member)")
            text = text.replacingOccurrences(of: member, with: "")
        }
        try env.kdc.store.writeSecret("kdc.json", Array(text.utf8))
        let state = try env.kdc.store.load()
        #expect(state.node("krs1.example.")?.hpkeLayout == .v2 && state.node("krs1.example.")?.capabilities == [])
        #expect(state.distribution(d.id)?.deadline == d.createdAt + 300)
    }
}
