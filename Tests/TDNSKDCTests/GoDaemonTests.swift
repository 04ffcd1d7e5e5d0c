import Foundation
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKDC

/// The deployed Go KRS (dzm 72bfa72, CHUNK 65015) against our KDC, from the wire captures in
/// Tests/Vectors/go-daemons (provenance: README.kdc.md there): our KDC, holding the Go KDC's
/// HPKE and JOSE keys, the package's token and a clock at the capture time, must accept the
/// enrollment UPDATE `krs-cli enroll` sent and answer the way the Go KDC answered.
@Suite("Go daemons: the Go KRS's enrollment UPDATE at our KDC")
struct GoDaemonEnrollmentTests {
    /// The three captured nodes and what our KDC must decide for them (contract §1).
    static let nodes: [(exchange: String, node: String, crypto: KDCCrypto, layout: KDCHPKELayout)] = [
        ("hpke", "gvhpke.example.", .hpke, .v1),
        ("both", "gvboth.example.", .hpke, .v2),
        ("jose", "gvjose.example.", .jose, .v2),
    ]

    /// 2026-12-04T02:44:12Z, the time of the captured requests and answers.
    static let captureTime: Int64 = 1_796_352_252

    struct Fixture {
        let exchange: [String: Any]
        let kdcKeys: [String: Any]
        let token: String
    }

    static func fixture(_ name: String, node: String) throws -> Fixture {
        let file = try VectorFiles.load("go-daemons/enrollment-exchange.json")
        let exchange = try file.object("exchanges").object(name)
        #expect((file["chunk_rrtype"] as? Int) == 65015)
        // The token as the package carries it (§11.2: comment lines, then base64 of the JSON).
        let text = try String(contentsOf: VectorFiles.directory.appendingPathComponent("go-daemons/enroll/\(node)enroll"), encoding: .utf8)
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }.joined()
        let package = try JSONValue.parse(try Base64.decode(body))
        return Fixture(
            exchange: exchange, kdcKeys: try VectorFiles.load("go-daemons/kdc-keys.json"),
            token: try require2(package["token"]?.stringValue))
    }

    /// A KDC at the capture time holding the Go KDC's keys, with an activated enrollment for
    /// `node` whose token is the package's (only its hash is stored, as for our own tokens).
    static func goKDC(_ f: Fixture, node: String, crypto: KDCCrypto, chunkType: UInt16) throws -> (KDCEnv, KDCService) {
        let env = try KDCEnv(chunkType: chunkType, start: captureTime, listen: "127.0.20.1:17360")
        // Go's HPKE key file verbatim (comment lines, then hex); the JOSE key as a JWK.
        try env.kdc.store.writeSecret("keys/kdc.hpke.privatekey", Array(try f.kdcKeys.string("hpke_private_key_file").utf8))
        let jwk = try JSONSerialization.data(withJSONObject: try f.kdcKeys.object("jose_private_jwk"), options: [.sortedKeys])
        try env.kdc.store.writeSecret("keys/kdc.jose.privatekey", Array(jwk))
        let keys = try env.kdc.loadKeys()
        #expect(keys.hpke.publicKey.hex == (try f.kdcKeys.string("hpke_public_key_hex")))
        _ = try env.kdc.generateEnrollment(nodeID: node, out: env.root + "/\(node)enroll", crypto: crypto == .jose ? .jose : nil, notify: nil)
        let hash = Hex.encode(Digests.sha256(Array(f.token.utf8)))
        try env.kdc.store.update { (state) throws(TDNSError) in
            if let i = state.enrollments.lastIndex(where: { $0.nodeID == node }) { state.enrollments[i].tokenHash = hash }
        }
        _ = try env.kdc.activateEnrollment(nodeID: node, window: 3600)
        return (env, try KDCService(kdc: env.kdc))
    }

    @Test("the captured SIG(0) (owner \".\", class ANY, TTL 0, signer = control zone) verifies with our SIG(0) code",
          arguments: ["hpke", "jose", "both"])
    func capturedSIG0(name: String) throws {
        let file = try VectorFiles.load("go-daemons/enrollment-exchange.json")
        let exchange = try file.object("exchanges").object(name)
        let update = try DNSMessage(wireEncoded: try hexBytes(try exchange.string("update_hex")))
        let found = try require2(try SIG0.extract(from: update))
        #expect(found.location.rrClass == .any && found.location.ttl == 0)
        #expect(found.sig.signerName == (try DNSName("kdc.example.")))
        let keyText = try require2(try exchange.object("request_plaintext_json")["sig0_pubkey"] as? String)
        let key = try KEYRecord.parsePresentationLine(keyText).record
        try SIG0Signatures.verify(update, key: key, now: Self.captureTime, skew: 0)
        // A flipped bit in the signed part breaks it.
        var bytes = try hexBytes(try exchange.string("update_hex"))
        bytes[40] ^= 1
        let tampered = try DNSMessage(wireEncoded: bytes)
        #expect(throws: TDNSError.self) { try SIG0Signatures.verify(tampered, key: key, now: Self.captureTime, skew: 0) }
    }

    @Test("accepted (NOERROR), answered like the Go KDC, node recorded legacy with the Go KRS's HPKE layout",
          arguments: [(0, RRType.chunkLegacy.rawValue), (1, RRType.chunkLegacy.rawValue), (2, RRType.chunkLegacy.rawValue),
                      (0, RRType.chunk.rawValue), (2, RRType.chunk.rawValue)])
    func enrollment(index: Int, chunkType: UInt16) throws {
        let (name, node, crypto, layout) = Self.nodes[index]
        let f = try Self.fixture(name, node: node)
        let (env, service) = try Self.goKDC(f, node: node, crypto: crypto, chunkType: chunkType)
        let request = try hexBytes(try f.exchange.string("update_hex"))
        let update = try DNSMessage(wireEncoded: request)
        #expect(update.updates.first?.type == .chunkLegacy, "the Go KRS's RR is CHUNK 65015")
        let peer = try require2((try f.exchange.object("request_plaintext_json")["notify_address"] as? String)?.split(separator: ":").first)
        let ours = try parse(service.handle(request: request, peerHost: String(peer), transport: .udp))
        let go = try DNSMessage(wireEncoded: try hexBytes(try f.exchange.string("response_hex")))

        // The shape of the Go KDC's answer: header, question, EDNS, one CHUNK option of content type 2.
        #expect(ours.rcode == .noError && go.rcode == .noError)
        #expect(ours.id == go.id && ours.opcode == go.opcode && ours.flags == go.flags)
        #expect(ours.questions == go.questions && ours.answers.isEmpty && ours.authority.isEmpty)
        #expect(ours.edns?.udpPayloadSize == go.edns?.udpPayloadSize && ours.edns?.dnssecOK == go.edns?.dnssecOK)
        #expect(ours.edns?.options.map(\.code) == go.edns?.options.map(\.code))
        let ourAnswer = try TDNSMessages.parseEnrollmentResponse(ours, to: update)
        let goAnswer = try TDNSMessages.parseEnrollmentResponse(go, to: update)
        let ourOption = try require2(try ours.edns?.chunkOption())
        let goOption = try require2(try go.edns?.chunkOption())
        #expect(ourOption.format == goOption.format && ourOption.hmac == goOption.hmac)

        // Encrypted as the Go KDC does: HPKE Auth from the KDC key to a node with an HPKE key,
        // else a JWE; opened with the node's key from the capture, the same JSON.
        let keys = try f.exchange.object("node_keys")
        let plaintext: [UInt8]
        let goPlaintext: [UInt8]
        if let hex = keys["hpke_private_key_hex"] as? String {
            let nodeKey = try HPKEPrivateKey(rawRepresentation: try hexBytes(hex))
            let kdcPublic = try HPKEPublicKey(text: Array(try f.kdcKeys.string("hpke_public_key_hex").utf8))
            plaintext = try HPKECipher.openAuth(ourAnswer.content, with: nodeKey, from: kdcPublic)
            goPlaintext = try HPKECipher.openAuth(goAnswer.content, with: nodeKey, from: kdcPublic)
        } else {
            let jwk = try JSONSerialization.data(withJSONObject: try keys.object("jose_private_jwk"), options: [.sortedKeys])
            let nodeKey = try JOSEPrivateKey(jwk: Array(jwk))
            #expect(ourAnswer.content.filter { $0 == UInt8(ascii: ".") }.count == 4, "compact JWE")
            plaintext = try JWE.decrypt(ourAnswer.content, with: nodeKey)
            goPlaintext = try JWE.decrypt(goAnswer.content, with: nodeKey)
        }
        #expect(goPlaintext == Array(try f.exchange.string("response_plaintext").utf8))
        let json = try JSONValue.parse(plaintext)
        #expect(json.keys == (try JSONValue.parse(goPlaintext)).keys)
        #expect(String(decoding: plaintext, as: UTF8.self) == (try f.exchange.string("response_plaintext")), "member for member")

        // What our KDC recorded: a Go KRS announces nothing, so legacy; v1 exactly for the HPKE-only node.
        let stored = try require2(try env.kdc.store.load().node(node))
        #expect(stored.legacy && stored.capabilities.isEmpty && stored.source == "enrolled")
        #expect(stored.crypto == crypto && stored.hpkeLayout == layout)
        #expect(stored.notifyAddress == (try f.exchange.object("request_plaintext_json")["notify_address"] as? String))
        #expect(stored.sig0PublicKey != nil && !stored.requiresSignedConfirmations, "a Go KRS never signs confirmations")
        #expect(try env.kdc.store.load().enrollments.last?.usedAt == Self.captureTime)
    }

    @Test("what our KDC then sends those nodes: the Go format — v1 decoded as the Go KRS does, never a JWS",
          arguments: [0, 1, 2])
    func distributionsToGoNodes(index: Int) throws {
        let (name, node, crypto, layout) = Self.nodes[index]
        let f = try Self.fixture(name, node: node)
        let (env, service) = try Self.goKDC(f, node: node, crypto: crypto, chunkType: RRType.chunkLegacy.rawValue)
        let request = try hexBytes(try f.exchange.string("update_hex"))
        #expect(try parse(service.handle(request: request, peerHost: "127.0.20.21", transport: .udp)).rcode == .noError)
        _ = try env.kdc.addZone("example.com.")
        let key = try JSONValue.parse(try env.kdc.generateKey(zone: "example.com.", algorithm: 13, keyType: "zsk").json.serialized())
        let d = try env.distribute(node)
        #expect(!d.signed && d.hpkeLayout == (crypto == .hpke ? layout : nil))
        let records = try env.records(d)
        let manifest = try CHUNKRecord(rdata: records[0])
        #expect(manifest.format == 1 && manifest.hmac.count == 32)
        let keys = try f.exchange.object("node_keys")
        let meta = try require2(try JSONValue.parse(manifest.data)["metadata"])
        #expect(meta["node_id"]?.stringValue == node && meta["distribution_id"]?.stringValue == d.id)
        var blob: [UInt8] = []
        for r in records.dropFirst() { blob += try CHUNKRecord(rdata: r).data }
        let c = try Base64.decode(blob)
        // A compact JWS is base64url text with two dots; HPKE ciphertext is binary and holds
        // two 0x2E bytes by chance about one time in four, so the dots alone do not tell.
        let isCompactJWS = c.filter { $0 == UInt8(ascii: ".") }.count == 2
            && c.allSatisfy { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0)
                || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }
        #expect(!isCompactJWS, "no JWS for a node that did not announce jws-es256")
        let plaintext: [UInt8]
        switch (crypto, layout) {
        case (.hpke, .v1):
            // The Go KRS with use_crypto_v2: false: HMAC keyed with its X25519 key, drop 32 bytes, open.
            #expect(meta["crypto"] == nil)
            #expect(manifest.hmac == Digests.hmacSHA256(key: try hexBytes(try keys.string("hpke_public_key_hex")), data: [1] + manifest.data))
            let nodeKey = try HPKEPrivateKey(rawRepresentation: try hexBytes(try keys.string("hpke_private_key_hex")))
            plaintext = try HPKECipher.open(Array(c.dropFirst(32)), with: nodeKey)
        case (.hpke, .v2):
            #expect(meta["crypto"]?.stringValue == "hpke")
            let nodeKey = try HPKEPrivateKey(rawRepresentation: try hexBytes(try keys.string("hpke_private_key_hex")))
            plaintext = try HPKECipher.open(c, with: nodeKey)
        case (.jose, _):
            #expect(meta["crypto"]?.stringValue == "jose")
            #expect(manifest.hmac == Digests.hmacSHA256(key: try hexBytes(try keys.string("jose_x_coordinate_hex")), data: [1] + manifest.data))
            let jwk = try JSONSerialization.data(withJSONObject: try keys.object("jose_private_jwk"), options: [.sortedKeys])
            plaintext = try JWE.decrypt(c, with: try JOSEPrivateKey(jwk: Array(jwk)))
        }
        #expect(try JSONValue.parse(plaintext)[0]?["key_id"]?.stringValue == key["key_tag"]?.int64Value.map { String($0) })
    }
}
