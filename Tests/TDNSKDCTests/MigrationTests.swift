import Foundation
import Testing
import TDNSCore
import TDNSCrypto
import TDNSWire

@testable import TDNSKDC

// Issue 13 (seed "Migration and Compatibility"): the backend policy, the life of a node,
// re-enrollment, several keys in one distribution, the wrong-backend report, metrics and the
// event log — each checked against the KDC's state and what it serves, not its own words.

/// A node that enrolls as our KRS does (PROTOCOL §11.3 + §19): keys for the backends it has,
/// `preferred_crypto` when it states one, SIG(0)-signed by the key it enrolls.
struct MigrationClient {
    let nodeID: String
    let hpke: HPKEPrivateKey?
    let jose: JOSEPrivateKey?
    let sig0: DNSSECPrivateKey

    init(_ nodeID: String, hpke: Bool, jose: Bool) throws {
        self.nodeID = nodeID
        self.hpke = hpke ? HPKEPrivateKey.generate() : nil
        self.jose = jose ? try JOSEPrivateKey.generate() : nil
        sig0 = try DNSSECPrivateKey.generate(algorithm: .ed25519)
    }

    func update(token: String, kdcKey: HPKEPublicKey, now: Int64, preferred: String? = nil, signWith: DNSSECPrivateKey? = nil) throws -> [UInt8] {
        let keyLine = KEYRecord(algorithm: 15, publicKey: sig0.dnskeyPublicKey).presentationLine(owner: try DNSName(nodeID))
        var members: [(String, JSONValue)] = [
            ("auth_token", .string(token)),
            ("capabilities", .array([.string(KDCCapability.jwsES256), .string(KDCCapability.sig0)])),
        ]
        if let hpke { members.append(("hpke_pubkey", .string(hpke.publicKey.hex))) }
        if let jose { members.append(("jose_pubkey", .string(jose.publicKey.jwkJSON()))) }
        members += [("notify_address", .string("127.0.0.1:15399"))]
        if let preferred { members.append(("preferred_crypto", .string(preferred))) }
        members += [("sig0_pubkey", .string(keyLine)), ("timestamp", .string(RFC3339.format(now)))]
        let request = JSONValue.object(members).serialized()
        let chunk = try TDNSMessages.enrollmentChunk(ciphertext: try HPKECipher.seal(request, to: kdcKey))
        let m = try TDNSMessages.enrollmentUpdate(id: 42, controlZone: try DNSName("kdc.example."), chunk: chunk, chunkType: .chunk)
        return try SIG0Signatures.sign(m, with: signWith ?? sig0, signerName: try DNSName("kdc.example."), now: now)
    }
}

extension KDCEnv {
    /// `enroll generate` + `enroll activate`; the package's JSON.
    func package(_ node: String, crypto: KDCCrypto? = nil, format: KDC.PackageFormat = .go, activate: Bool = true) throws -> JSONValue {
        let path = root + "/\(node)enroll"
        _ = try kdc.generateEnrollment(nodeID: node, out: path, crypto: crypto, notify: nil, format: format)
        if activate { _ = try kdc.activateEnrollment(nodeID: node, window: 300) }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try JSONValue.parse(try Base64.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// Enrolls `client` with a fresh package; the UPDATE's RCODE.
    func enroll(_ client: MigrationClient, service: KDCService, crypto: KDCCrypto? = nil, preferred: String? = nil) throws -> RCode {
        let pkg = try package(client.nodeID, crypto: crypto)
        let wire = try client.update(token: try require2(pkg["token"]?.stringValue), kdcKey: try kdc.loadKeys().hpke.publicKey, now: clock.now, preferred: preferred)
        return try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp)).rcode
    }

    func node(_ id: String) throws -> KDCNode { try require2(try kdc.store.load().node(id)) }

    /// The plaintext entries of a signed distribution, opened with the node's key of its backend.
    func entries(_ d: KDCDistribution, hpke: HPKEPrivateKey? = nil, jose: JOSEPrivateKey? = nil) throws -> JSONValue {
        let records = try self.records(d)
        let manifest = try CHUNKRecord(rdata: records[0])
        let claims = try jwtClaims(manifest.data, key: try kdc.loadKeys().signing.publicKey)
        var blob: [UInt8] = []
        if d.chunkCount == 0 {
            blob = try Base64.decode(try require2(claims["payload"]?.stringValue))
        } else {
            for r in records.dropFirst() { blob += try CHUNKRecord(rdata: r).data }
        }
        let c = try Base64.decode(blob)
        switch d.crypto {
        case .hpke: return try JSONValue.parse(try HPKECipher.open(c, with: try require2(hpke)))
        case .jose: return try JSONValue.parse(try JWE.decrypt(c, with: try require2(jose)))
        }
    }

    func claims(_ d: KDCDistribution) throws -> JSONValue {
        try jwtClaims(try CHUNKRecord(rdata: try records(d)[0]).data, key: try kdc.loadKeys().signing.publicKey)
    }

    func ask(_ service: KDCService, _ name: String) throws -> RCode {
        try parse(service.handle(request: try chunkQuery(name), peerHost: "127.0.0.1", transport: .tcp)).rcode
    }
}

@Suite("Issue 13: backend policy")
struct PolicyTests {
    @Test("policy shows and changes; the default must be supported; removing jose refuses new JOSE registrations but keeps JOSE nodes served")
    func rollback() throws {
        let env = try KDCEnv()
        let shown = try env.kdc.policy(defaultCrypto: nil, supportedCrypto: nil)
        #expect(shown.json["default_crypto"]?.stringValue == "hpke")
        #expect(shown.json["supported_crypto"] == .array([.string("hpke"), .string("jose")]))
        #expect(throws: TDNSError.config("")) { try env.kdc.policy(defaultCrypto: .jose, supportedCrypto: [.hpke]) }
        #expect(throws: TDNSError.config("")) { try env.kdc.policy(defaultCrypto: nil, supportedCrypto: [.jose]) }
        #expect(try env.kdc.store.load().policy == .initial, "a refused change changes nothing")

        try env.populate(legacy: false)  // krs1 HPKE, krs2 JOSE
        let dual = try JOSEPrivateKey.generate()
        _ = try env.kdc.addNode(id: "dual.example.", crypto: .hpke, hpkePublicKey: env.otherHPKE.publicKey.hex,
                                josePublicKey: dual.publicKey.jwkJSON(), notify: nil, legacy: false)
        let r = try env.kdc.policy(defaultCrypto: nil, supportedCrypto: [.hpke])
        #expect(r.warnings.count == 1 && r.warnings[0].contains("krs2.example."))
        #expect(try env.kdc.status(node: nil).json["policy"]?["supported_crypto"] == .array([.string("hpke")]))
        #expect(throws: TDNSError.config("")) {
            try env.kdc.addNode(id: "j.example.", crypto: .jose, hpkePublicKey: nil, josePublicKey: dual.publicKey.jwkJSON(), notify: nil, legacy: false)
        }
        #expect(throws: TDNSError.config("")) {
            try env.kdc.generateEnrollment(nodeID: "j.example.", out: env.root + "/j", crypto: .jose, notify: nil)
        }
        #expect(throws: TDNSError.config("")) { try env.kdc.setNode(id: "dual.example.", legacy: nil, hpkeLayout: nil, crypto: .jose) }
        #expect(try env.node("dual.example.").crypto == .hpke)
        // The JOSE node keeps receiving with JOSE.
        let d = try env.distribute("krs2.example.")
        #expect(d.crypto == .jose)
        _ = try env.entries(d, jose: env.nodeJOSE)
        // A package without --crypto now offers HPKE only.
        let pkg = try env.package("new.example.")
        #expect(pkg["supported_crypto"] == .array([.string("hpke")]) && pkg["kdc_jose_pubkey"]?.stringValue == "")
    }

    @Test("the backend an enrolling node gets: its preference, else the policy default, else its one key; a JOSE-only node is refused after the rollback")
    func choice() throws {
        let env = try KDCEnv()
        let service = try KDCService(kdc: env.kdc)
        let both = try MigrationClient("both.example.", hpke: true, jose: true)
        #expect(try env.enroll(both, service: service) == .noError)
        #expect(try env.node("both.example.").crypto == .hpke && env.node("both.example.").cryptoSource == .policyDefault)
        let prefers = try MigrationClient("prefers.example.", hpke: true, jose: true)
        #expect(try env.enroll(prefers, service: service, preferred: "jose") == .noError)
        #expect(try env.node("prefers.example.").crypto == .jose && env.node("prefers.example.").preferredCrypto == .jose)
        let joseOnly = try MigrationClient("joseonly.example.", hpke: false, jose: true)
        #expect(try env.enroll(joseOnly, service: service, preferred: "hpke") == .noError)
        #expect(try env.node("joseonly.example.").crypto == .jose)
        // Default jose: a dual node without a preference now gets JOSE; `both` follows the default.
        _ = try env.kdc.policy(defaultCrypto: .jose, supportedCrypto: nil)
        #expect(try env.node("both.example.").crypto == .jose)
        let later = try MigrationClient("later.example.", hpke: true, jose: true)
        #expect(try env.enroll(later, service: service) == .noError)
        #expect(try env.node("later.example.").crypto == .jose)
        // Rollback: JOSE removed. A JOSE-only enrollment is refused and leaves no node.
        _ = try env.kdc.policy(defaultCrypto: .hpke, supportedCrypto: [.hpke])
        let refused = try MigrationClient("refused.example.", hpke: false, jose: true)
        #expect(try env.enroll(refused, service: service) == .refused)
        #expect(try env.kdc.store.load().node("refused.example.") == nil)
        #expect(env.logs.has(.refused, containing: "not supported"))
        // JOSE nodes stay JOSE (nodes that follow the default and have an HPKE key move back).
        #expect(try env.node("joseonly.example.").crypto == .jose && env.node("prefers.example.").crypto == .jose)
        #expect(try env.node("both.example.").crypto == .hpke)
        let m = try env.kdc.status(node: nil).json["metrics"]
        #expect(m?["enrollments"]?["hpke"]?.intValue == 1 && m?["enrollments"]?["jose"]?.intValue == 3)
    }
}

@Suite("Issue 13: node lifecycle")
struct NodeLifecycleTests {
    @Test("node list and node show: backend in use, keys on file, enrollment state, last distributions")
    func listAndShow() throws {
        let env = try KDCEnv()
        try env.populate(legacy: false)
        let d = try env.distribute("krs1.example.")
        let list = try require2(try env.kdc.listNodes().json["nodes"]?.arrayValue)
        #expect(list.compactMap { $0["node_id"]?.stringValue } == ["krs1.example.", "krs2.example."])
        #expect(list[0]["crypto"]?.stringValue == "hpke" && list[0]["keys_on_file"] == .array([.string("hpke")]))
        #expect(list[0]["last_distribution"]?["distribution_id"]?.stringValue == d.id)
        let show = try env.kdc.showNode(id: "krs1.example.")
        #expect(show.json["crypto"]?.stringValue == "hpke" && show.json["state"]?.stringValue == "active")
        #expect(show.json["distributions"]?.arrayValue?.first?["state"]?.stringValue == "pending")
        #expect(show.json["distribution_counts"]?["pending"]?.intValue == 1)
        #expect(show.lines.contains { $0.contains("backend in use: hpke") })
        #expect(throws: TDNSError.config("")) { try env.kdc.showNode(id: "nobody.example.") }
    }

    @Test("node set --crypto switches a node that has the key, refuses one that has not")
    func setCrypto() throws {
        let env = try KDCEnv()
        try env.populate(legacy: false)
        #expect(throws: TDNSError.config("")) { try env.kdc.setNode(id: "krs1.example.", legacy: nil, hpkeLayout: nil, crypto: .jose) }
        #expect(try env.node("krs1.example.").crypto == .hpke)
        _ = try env.kdc.addNode(id: "dual.example.", crypto: .hpke, hpkePublicKey: env.otherHPKE.publicKey.hex,
                                josePublicKey: env.nodeJOSE.publicKey.jwkJSON(), notify: nil, legacy: false)
        _ = try env.kdc.setNode(id: "dual.example.", legacy: nil, hpkeLayout: nil, crypto: .jose)
        #expect(try env.node("dual.example.").crypto == .jose)
        let d = try env.distribute("dual.example.")
        #expect(d.crypto == .jose)
        #expect(try env.entries(d, jose: env.nodeJOSE)[0]?["operation"]?.stringValue == "roll_key")
        #expect(KDCEventLog(directory: env.kdc.store.directory).lines().contains { $0.contains("Node dual.example. switched from backend hpke to backend: jose") })
    }

    @Test("node remove: live distributions gone (NXDOMAIN), tokens revoked, no NOTIFY, confirmations refused, history kept")
    func remove() throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: false)
        let service = try KDCService(kdc: env.kdc)
        let live = try env.distribute("krs1.example.")
        let other = try env.distribute("krs2.example.")
        #expect(try env.ask(service, "krs1.example.\(live.id).kdc.example.") == .noError)
        _ = try env.package("krs1.example.")
        var sent: [String] = []
        let notifier = KDCNotifier(service: service) { _, _ in nil }
        sent = notifier.due(now: env.clock.now).map(\.0.id)
        #expect(sent.contains(live.id))

        let r = try env.kdc.removeNode(id: "krs1.example.")
        #expect(r.json["withdrawn_distributions"] == .array([.string(live.id)]) && r.json["revoked_tokens"]?.intValue == 1)
        let after = try env.distribution(live.id)
        #expect(after.state == .failed && after.withdrawn == true && after.reason == "withdrawn: node removed")
        #expect(try env.ask(service, "krs1.example.\(live.id).kdc.example.") == .nxDomain)
        #expect(try env.ask(service, "1.krs1.example.\(live.id).kdc.example.") == .nxDomain)
        sent = notifier.due(now: env.clock.now).map(\.0.id)
        #expect(!sent.contains(live.id) && sent.contains(other.id), "no more NOTIFYs for it; the others go on")
        #expect(try env.kdc.store.load().enrollments.filter { $0.nodeID == "krs1.example." }.allSatisfy { $0.revokedAt != nil })
        let ok = try ConfirmationTests.confirmation(live.id, ok: [("example.com.", String(key.keyTag))]).serialize()
        #expect(try parse(service.handle(request: ok, peerHost: "127.0.0.1", transport: .udp)).rcode == .refused)
        #expect(try env.distribution(live.id).state == .failed)
        #expect(throws: TDNSError.config("")) { try env.kdc.distribute(target: .node("krs1.example."), zone: "example.com.", keyTag: nil, operation: .rollKey, chunkSize: nil) }
        #expect(throws: TDNSError.config("")) { try env.kdc.activateEnrollment(nodeID: "krs1.example.", window: 300) }
        // distribute --all skips it.
        _ = try env.kdc.distribute(target: .all, zone: "example.com.", keyTag: nil, operation: .rollKey, chunkSize: nil)
        #expect(try env.kdc.store.load().distributions.filter { $0.nodeID == "krs1.example." }.count == 1)
        let show = try env.kdc.showNode(id: "krs1.example.")
        #expect(show.json["state"]?.stringValue == "removed" && show.json["keys_on_file"] == .array([]))
        let log = KDCEventLog(directory: env.kdc.store.directory).lines()
        #expect(log.contains { $0.contains("Node krs1.example. removed: 1 live distribution withdrawn, 1 enrollment token revoked") })
        let withdrawnCount = try env.kdc.status(node: nil).json["metrics"]?["distributions"]?["hpke"]?["withdrawn"]?.intValue
        #expect(withdrawnCount == 1)
    }
}

@Suite("Issue 13: re-enrollment")
struct ReenrollmentTests {
    @Test("re-enrollment HPKE → JOSE replaces the keys in one step and makes live distributions again (old: superseded)")
    func replaces() throws {
        let env = try KDCEnv()
        _ = try env.kdc.addZone("example.com.")
        _ = try env.kdc.generateKey(zone: "example.com.", algorithm: 13, keyType: "ksk")
        let service = try KDCService(kdc: env.kdc)
        let first = try MigrationClient("mig.example.", hpke: true, jose: false)
        #expect(try env.enroll(first, service: service) == .noError)
        let old = try env.distribute("mig.example.")
        #expect(old.crypto == .hpke)
        let before = try env.node("mig.example.")

        // A first package for an enrolled node without the re-enrollment flag cannot exist:
        // generate for an enrolled node is a re-enrollment package.
        let pkg = try env.package("mig.example.", crypto: .jose)
        #expect(pkg["reenroll"]?.boolValue == true && pkg["supported_crypto"] == .array([.string("jose")]) && pkg["default_crypto"] == nil)
        let second = try MigrationClient("mig.example.", hpke: false, jose: true)
        env.clock.advance(2)
        let wire = try second.update(token: try require2(pkg["token"]?.stringValue), kdcKey: try env.kdc.loadKeys().hpke.publicKey, now: env.clock.now)
        #expect(try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)

        let after = try env.node("mig.example.")
        #expect(after.crypto == .jose && after.hpkePublicKey == nil && after.josePublicKey == second.jose?.publicKey.jwkJSON())
        #expect(after.sig0PublicKey != before.sig0PublicKey && after.registeredAt == before.registeredAt && after.reenrolledAt == env.clock.now)
        let state = try env.kdc.store.load()
        let superseded = try require2(state.distribution(old.id))
        let remade = try require2(state.distributions.last)
        #expect(remade.id != old.id && remade.crypto == .jose && remade.state == .pending && remade.remadeFrom == old.id)
        #expect(superseded.state == .failed && superseded.reason == "superseded by \(remade.id)" && superseded.remadeAs == remade.id)
        #expect(remade.keys == old.keys)
        #expect(try env.entries(remade, jose: second.jose)[0]?["key_id"]?.stringValue == String(try require2(old.keyTag)))
        #expect(try env.ask(service, "mig.example.\(old.id).kdc.example.") == .nxDomain)
        #expect(try env.ask(service, "mig.example.\(remade.id).kdc.example.") == .noError)
        #expect(try env.kdc.status(node: nil).lines.contains { $0.contains(old.id) && $0.contains("superseded by \(remade.id)") })
        let log = KDCEventLog(directory: env.kdc.store.directory).lines()
        #expect(log.contains { $0.hasSuffix("info: Node mig.example. enrolled with backend: hpke") })
        #expect(log.contains { $0.contains("Node mig.example. re-enrolled with backend: jose") })
        #expect(log.contains { $0.hasSuffix("info: Distribution \(remade.id) created for mig.example. using jose") })
        let m = try env.kdc.status(node: nil).json["metrics"]
        #expect(m?["enrollments"]?["hpke"]?.intValue == 1 && m?["enrollments"]?["jose"]?.intValue == 1)
        #expect(m?["reenrollments"]?["jose"]?.intValue == 1)
    }

    @Test("a failed or expired re-enrollment changes nothing; a first-enrollment token cannot replace an enrolled node's keys")
    func failedChangesNothing() throws {
        let env = try KDCEnv()
        _ = try env.kdc.addZone("example.com.")
        _ = try env.kdc.generateKey(zone: "example.com.", algorithm: 13, keyType: "zsk")
        let service = try KDCService(kdc: env.kdc)
        let first = try MigrationClient("keep.example.", hpke: true, jose: false)
        #expect(try env.enroll(first, service: service) == .noError)
        let live = try env.distribute("keep.example.")
        let nodeBefore = try env.node("keep.example.")

        // Bad SIG(0) (signed by another key): refused, nothing changed.
        let pkg = try env.package("keep.example.", crypto: .jose)
        let second = try MigrationClient("keep.example.", hpke: false, jose: true)
        let stranger = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        let kdcKey = try env.kdc.loadKeys().hpke.publicKey
        let forged = try second.update(token: try require2(pkg["token"]?.stringValue), kdcKey: kdcKey, now: env.clock.now, signWith: stranger)
        #expect(try parse(service.handle(request: forged, peerHost: "127.0.0.1", transport: .udp)).rcode == .refused)
        #expect(try env.node("keep.example.") == nodeBefore && env.distribution(live.id).state == .pending)
        #expect(try env.ask(service, "keep.example.\(live.id).kdc.example.") == .noError)
        // Expired: refused, nothing changed.
        env.clock.advance(301)
        let late = try second.update(token: try require2(pkg["token"]?.stringValue), kdcKey: kdcKey, now: env.clock.now)
        #expect(try parse(service.handle(request: late, peerHost: "127.0.0.1", transport: .udp)).rcode == .refused)
        #expect(try env.node("keep.example.") == nodeBefore && env.distribution(live.id).state == .pending)
        #expect(try env.kdc.store.load().enrollments.last?.state(now: env.clock.now) == "expired")

        // A token whose enrollment record is not a re-enrollment, for an enrolled node: refused.
        try env.kdc.store.update { (state) throws(TDNSError) in
            if let i = state.enrollments.indices.last {
                state.enrollments[i].reenroll = nil
                state.enrollments[i].activatedAt = env.clock.now
                state.enrollments[i].expiresAt = env.clock.now + 300
            }
        }
        let plain = try second.update(token: try require2(pkg["token"]?.stringValue), kdcKey: kdcKey, now: env.clock.now)
        #expect(try parse(service.handle(request: plain, peerHost: "127.0.0.1", transport: .udp)).rcode == .refused)
        #expect(try env.node("keep.example.") == nodeBefore)
        #expect(env.logs.has(.refused, containing: "not a re-enrollment token"))
    }
}

@Suite("Issue 13: several keys in one distribution")
struct MultiKeyTests {
    @Test("--zone without --key: KSK and ZSK in one distribution with true counts; --all-zones: every zone's keys; --key: one")
    func counts() throws {
        let env = try KDCEnv()
        try env.populate(legacy: false)  // example.com. KSK
        _ = try env.kdc.generateKey(zone: "example.com.", algorithm: 15, keyType: "zsk")
        _ = try env.kdc.addZone("example.org.")
        _ = try env.kdc.generateKey(zone: "example.org.", algorithm: 13, keyType: "csk")
        _ = try env.kdc.distribute(target: .node("krs1.example."), zone: "example.com.", keyTag: nil, operation: .rollKey, chunkSize: nil)
        let zone = try require2(try env.kdc.store.load().distributions.last)
        #expect(zone.keys.count == 2 && zone.keyTag == nil && zone.zone == "example.com.")
        let c = try env.claims(zone)
        #expect(c["key_count"]?.intValue == 2 && c["zone_count"]?.intValue == 1 && c["operation_count"]?.intValue == 2)
        let e = try env.entries(zone, hpke: env.nodeHPKE)
        #expect(e.arrayValue?.map { $0["key_type"]?.stringValue } == ["KSK", "ZSK"], "KSK first, as a Go KRS handles best")

        _ = try env.kdc.distribute(target: .all, zone: nil, keyTag: nil, operation: .rollKey, chunkSize: nil, allZones: true)
        let all = try env.kdc.store.load().distributions.suffix(2)
        #expect(all.count == 2 && all.allSatisfy { $0.keys.count == 3 && $0.zone == nil })
        for d in all {
            let claims = try env.claims(d)
            #expect(claims["key_count"]?.intValue == 3 && claims["zone_count"]?.intValue == 2 && claims["operation_count"]?.intValue == 3)
            let entries = try env.entries(d, hpke: env.nodeHPKE, jose: env.nodeJOSE)
            #expect(entries.arrayValue?.compactMap { $0["zone_name"]?.stringValue } == ["example.com.", "example.com.", "example.org."])
        }
        let one = try env.kdc.distribute(target: .node("krs1.example."), zone: "example.org.", keyTag: nil, operation: .rollKey, chunkSize: nil)
        #expect(one.json["distributions"]?.arrayValue?.first?["key_count"]?.intValue == 1)
        // delete_key of a zone with several keys needs --key; --all-zones with --zone is refused.
        #expect(throws: TDNSError.config("")) { try env.kdc.distribute(target: .all, zone: "example.com.", keyTag: nil, operation: .deleteKey, chunkSize: nil) }
        #expect(throws: TDNSError.config("")) { try env.kdc.distribute(target: .all, zone: "example.com.", keyTag: nil, operation: .rollKey, chunkSize: nil, allZones: true) }
    }

    @Test("a legacy (Go format) multi-key distribution: Format 1 manifest with true counts, entries the Go KRS reads one by one")
    func goFormat() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        _ = try env.kdc.generateKey(zone: "example.com.", algorithm: 13, keyType: "zsk")
        let d = try env.distribute("krs2.example.")
        #expect(d.keys.count == 2 && !d.signed)
        let manifest = try CHUNKRecord(rdata: try env.records(d)[0])
        let json = try JSONValue.parse(manifest.data)
        #expect(json["metadata"]?["key_count"]?.intValue == 2 && json["metadata"]?["zone_count"]?.intValue == 1)
        #expect(json["metadata"]?["operation_count"]?.intValue == 2)
        var blob: [UInt8] = []
        for r in try env.records(d).dropFirst() { blob += try CHUNKRecord(rdata: r).data }
        let entries = try JSONValue.parse(try JWE.decrypt(try Base64.decode(blob), with: env.nodeJOSE))
        #expect(entries.arrayValue?.count == 2 && entries.arrayValue?.allSatisfy { $0["operation"]?.stringValue == "roll_key" } == true)
    }

    @Test("a confirmation failing one of two keys fails the distribution with that key's reason; the other key is confirmed")
    func partialFailure() throws {
        let env = try KDCEnv()
        try env.populate(legacy: true)
        _ = try env.kdc.generateKey(zone: "example.com.", algorithm: 13, keyType: "zsk")
        let d = try env.distribute("krs1.example.")
        let service = try KDCService(kdc: env.kdc)
        let tags = d.keys.map { String($0.keyTag) }
        let report = try ConfirmationTests.confirmation(d.id, failed: [("example.com.", tags[1], "disk full")], ok: [("example.com.", tags[0])]).serialize()
        #expect(try parse(service.handle(request: report, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        let after = try env.distribution(d.id)
        #expect(after.state == .failed && after.reason == "1 of 2 keys failed: example.com. \(tags[1]): disk full")
        let keys = KDC.distributionJSON(after)["keys"]?.arrayValue
        #expect(keys?.map { $0["state"]?.stringValue } == ["confirmed", "failed"])
    }
}

@Suite("Issue 13: wrong backend, metrics, seed package")
struct BackendReportTests {
    @Test("a node's 'backend mismatch: …' report fails the distribution with exactly that reason (key entries or one '*' entry)")
    func mismatch() throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: true)
        let service = try KDCService(kdc: env.kdc)
        let reason = "backend mismatch: jose node received an hpke distribution"
        let a = try env.distribute("krs1.example.")
        let star = try ConfirmationTests.confirmation(a.id, failed: [("", "*", reason)]).serialize()
        #expect(try parse(service.handle(request: star, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        #expect(try env.distribution(a.id).state == .failed && env.distribution(a.id).reason == reason)
        let b = try env.distribute("krs1.example.")
        let perKey = try ConfirmationTests.confirmation(b.id, failed: [("example.com.", String(key.keyTag), reason)]).serialize()
        #expect(try parse(service.handle(request: perKey, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        #expect(try env.distribution(b.id).reason == reason)
        // A ping (mgmt_operations) too: the report fails it as a whole.
        let p = try env.distribute("krs1.example.", .ping)
        let pingReport = try ConfirmationTests.confirmation(p.id, failed: [("", "*", reason)]).serialize()
        #expect(try parse(service.handle(request: pingReport, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        #expect(try env.distribution(p.id).reason == reason)
        #expect(try env.kdc.showNode(id: "krs1.example.").lines.contains { $0.contains(a.id) && $0.contains(reason) })
        let m = try env.kdc.status(node: nil).json["metrics"]?["distributions"]?["hpke"]
        #expect(m?["sent"]?.intValue == 3 && m?["failed"]?.intValue == 3 && m?["confirmed"]?.intValue == 0)
    }

    @Test("metrics: enrollments, sent/confirmed/failed per backend, confirmation latency median and p95 in milliseconds")
    func metrics() throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: true)
        let service = try KDCService(kdc: env.kdc)
        var ids: [String] = []
        for _ in 0..<4 { ids.append(try env.distribute("krs1.example.").id) }
        let j = try env.distribute("krs2.example.")
        for (i, id) in ids.prefix(3).enumerated() {
            env.clock.advance(Int64(i + 1))
            let ok = try ConfirmationTests.confirmation(id, ok: [("example.com.", String(key.keyTag))]).serialize()
            #expect(try parse(service.handle(request: ok, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
        }
        let bad = try ConfirmationTests.confirmation(j.id, failed: [("example.com.", String(key.keyTag), "disk full")]).serialize()
        #expect(try parse(service.handle(request: bad, peerHost: "127.0.0.2", transport: .udp)).rcode == .noError)
        let m = try require2(try env.kdc.status(node: nil).json["metrics"])
        #expect(m["distributions"]?["hpke"]?["sent"]?.intValue == 4 && m["distributions"]?["hpke"]?["confirmed"]?.intValue == 3)
        #expect(m["distributions"]?["hpke"]?["failed"]?.intValue == 0 && m["distributions"]?["jose"]?["failed"]?.intValue == 1)
        #expect(m["distributions"]?["jose"]?["sent"]?.intValue == 1)
        // All created at t0 (the clock counts seconds: 0 ms past it); confirmed at t0+1, t0+3, t0+6 s.
        let latencies = try env.kdc.store.load().distributions.prefix(3).compactMap(\.latencyMs)
        #expect(latencies == [1000, 3000, 6000])
        let sorted = latencies.sorted()
        #expect(m["confirmation_latency_ms"]?["hpke"]?["median"]?.intValue.map(Int64.init) == sorted[1])
        #expect(m["confirmation_latency_ms"]?["hpke"]?["p95"]?.intValue.map(Int64.init) == sorted[2])
        #expect(m["confirmation_latency_ms"]?["jose"]?["median"] == .null)
        #expect(KDCMetrics.percentile([5, 1, 3, 2, 4], 50) == 3 && KDCMetrics.percentile([5, 1, 3, 2, 4], 95) == 5)
    }

    @Test("enroll generate --format seed: version 2.0, crypto, auth_token, kdc_encryption_key, kdc_signing_key (JWK), address, port, no node ID, no SIG(0) key")
    func seedPackage() throws {
        let env = try KDCEnv()
        let keys = try env.kdc.loadKeys()
        let hpke = try env.package("seed1.example.", format: .seed, activate: false)
        #expect(hpke.keys == ["version", "crypto", "auth_token", "kdc_encryption_key", "kdc_signing_key", "kdc_address", "kdc_port",
                              "control_zone", "valid_until", "capabilities"])
        #expect(hpke["version"]?.stringValue == "2.0" && hpke["crypto"]?.stringValue == "hpke")
        #expect(try Base64.decode(try require2(hpke["kdc_encryption_key"]?.stringValue)) == keys.hpke.publicKey.rawRepresentation)
        #expect(hpke["kdc_signing_key"]?["alg"]?.stringValue == "ES256" && hpke["kdc_signing_key"]?["crv"]?.stringValue == "P-256")
        #expect(hpke["kdc_address"]?.stringValue == "127.0.0.1" && hpke["kdc_port"]?.intValue == 15353)
        #expect(hpke["auth_token"]?.stringValue?.utf8.count == 64 && hpke["capabilities"] == .array([.string("hpke"), .string("jose")]))
        let jose = try env.package("seed2.example.", crypto: .jose, format: .seed, activate: false)
        #expect(jose["crypto"]?.stringValue == "jose" && jose["kdc_encryption_key"]?["kty"]?.stringValue == "EC")
        #expect(try JOSEPublicKey(jwk: Array(try require2(jose["kdc_encryption_key"]).serialized())).jwkJSON() == keys.jose.publicKey.jwkJSON())
        #expect(jose["capabilities"] == .array([.string("jose")]))
        // The token works like a Go-format one: the node enrolls with it.
        let service = try KDCService(kdc: env.kdc)
        _ = try env.kdc.activateEnrollment(nodeID: "seed1.example.", window: 300)
        let client = try MigrationClient("seed1.example.", hpke: true, jose: false)
        let wire = try client.update(token: try require2(hpke["auth_token"]?.stringValue), kdcKey: keys.hpke.publicKey, now: env.clock.now)
        #expect(try parse(service.handle(request: wire, peerHost: "127.0.0.1", transport: .udp)).rcode == .noError)
    }
}
