import Foundation
import Testing
import TDNSCore
import TDNSCrypto
import TDNSKRS
import TDNSTestSupport
import TDNSWire

@testable import TDNSKDC

@Suite("KDC distributions")
struct DistributionTests {
    /// The manifest layer against bytes the Go code produced (Tests/Vectors/distribution.json):
    /// the same metadata, payload and HMAC key give the same JSON and the same RDATA.
    @Test("manifest JSON, HMAC and CHUNK RDATA are byte-identical to the Go vector")
    func goManifestBytes() throws {
        let file = try VectorFiles.load("distribution.json")
        let dist = try require2(try file.objects("distributions").first)
        let record = try require2(try dist.objects("records").first)
        let manifest = try JSONValue.parse(Array(try record.string("data_text").utf8))
        let metadata = try require2(manifest["metadata"]?.objectValue)
        let blob = Array(try dist.string("transport_payload").utf8)
        let data = DistributionBuilder.manifestData(chunkCount: 0, chunkSize: 0, metadata: metadata, payload: blob)
        #expect(String(decoding: data, as: UTF8.self) == (try record.string("data_text")))
        let rr = DistributionBuilder.manifestRecord(data: data, hmacKey: try hexBytes(try dist.string("hmac_key_hex")), total: 0)
        #expect(Hex.encode(try rr.rdata()) == (try record.string("rdata_hex")))
        // Go's map order is byte order of the keys; our metadata builder sorts the same way.
        let sorted = DistributionBuilder.sortedMembers(metadata.reversed())
        #expect(sorted.map(\.0) == metadata.map(\.0))
    }

    @Test("metadata members and order as the Go KDC writes them")
    func metadataShape() {
        let m = DistributionBuilder.metadata(
            content: "key_operations", distributionID: "6978914f", nodeID: "edge1.example.net.", crypto: .hpke,
            timestamp: 1_769_509_199, ttl: 300, retireTime: 720 * 3600, zoneCount: 1, keyCount: 1, operationCount: 1)
        let text = JSONValue.object(m).serializedString()
        // PROTOCOL §9.1 example.
        #expect(text == #"{"content":"key_operations","crypto":"hpke","distribution_id":"6978914f","distribution_ttl":"5m0s","key_count":1,"node_id":"edge1.example.net.","operation_count":1,"retire_time":"720h0m0s","timestamp":1769509199,"zone_count":1}"#)
    }

    @Test("v1 metadata: no crypto member (PROTOCOL §6, §21)")
    func metadataV1() {
        let m = DistributionBuilder.metadata(
            content: "key_operations", distributionID: "c00000b0", nodeID: "gvhpke.example.", crypto: nil,
            timestamp: 1_796_352_329, ttl: 3600, retireTime: 720 * 3600, zoneCount: 1, keyCount: 2, operationCount: 2)
        let data = DistributionBuilder.manifestData(chunkCount: 1, chunkSize: 60000, metadata: m, payload: nil)
        // The captured Go manifest of distribution c00000b0 (go-daemons b-keyops-hpke-v1), byte for byte.
        #expect(String(decoding: data, as: UTF8.self) == #"{"chunk_count":1,"chunk_size":60000,"metadata":{"content":"key_operations","distribution_id":"c00000b0","distribution_ttl":"1h0m0s","key_count":2,"node_id":"gvhpke.example.","operation_count":2,"retire_time":"720h0m0s","timestamp":1796352329,"zone_count":1}}"#)
    }

    @Test("inline rule of PROTOCOL §2.5: ≤ 500 bytes of B and estimate < 1200")
    func inlineRule() {
        let meta = DistributionBuilder.metadata(
            content: "mgmt_operations", distributionID: "6978914f", nodeID: "n.example.", crypto: .hpke,
            timestamp: 1, ttl: 300, retireTime: nil, zoneCount: 0, keyCount: 0, operationCount: 1)
        #expect(DistributionBuilder.shouldInline(blob: [UInt8](repeating: 0x41, count: 300), metadata: meta))
        #expect(!DistributionBuilder.shouldInline(blob: [UInt8](repeating: 0x41, count: 501), metadata: meta))
        // 500 bytes of B: base64 makes 668, + metadata + 41 + 150 ≥ 1200 → chunked.
        let json = DistributionBuilder.manifestData(chunkCount: 0, chunkSize: 0, metadata: meta, payload: [UInt8](repeating: 0x41, count: 500))
        #expect(DistributionBuilder.shouldInline(blob: [UInt8](repeating: 0x41, count: 500), metadata: meta) == (150 + 41 + json.count < 1200))
        #expect(DistributionBuilder.split(Array(0..<10), size: 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
    }

    @Test("legacy HPKE and JOSE distributions: HMAC-only, decrypt with the node key, install through TDNSKRS",
          arguments: ["krs1.example.", "krs2.example."])
    func legacyThroughReceiver(node: String) throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: true)
        let d = try env.distribute(node)
        #expect(d.signed == false)
        let records = try env.records(d)
        let manifest = try CHUNKRecord(rdata: records[0])
        #expect(manifest.sequence == 0 && manifest.format == 1 && manifest.hmac.count == 32)
        let hmacKey = node == "krs1.example." ? env.nodeHPKE.publicKey.rawRepresentation : env.nodeJOSE.publicKey.xCoordinate
        #expect(manifest.hmac == Digests.hmacSHA256(key: hmacKey, data: [1] + manifest.data))
        let json = try JSONValue.parse(manifest.data)
        #expect(json["metadata"]?["node_id"]?.stringValue == node)
        #expect(json["metadata"]?["crypto"]?.stringValue == (node == "krs1.example." ? "hpke" : "jose"))
        #expect(json["metadata"]?["timestamp"]?.int64Value == env.clock.now)
        #expect(json["chunk_count"]?.intValue == records.count - 1)

        let result = try receiver(env, node: node, signed: false).process(distributionID: d.id, records: records)
        #expect(result.reportJSON == #"{"successful_keys":[{"zone_name":"example.com.","key_id":"\#(key.keyTag)"}]}"#)
        #expect(result.signed == false)
    }

    @Test("legacy HPKE v1: E ‖ E ‖ AEAD, no metadata.crypto, decoded as the Go KRS does (drop 32 bytes, open)")
    func legacyV1() throws {
        let env = try KDCEnv()
        let key = try env.populate(legacy: true, layout: .v1)
        let d = try env.distribute("krs1.example.")
        #expect(d.signed == false && d.hpkeLayout == .v1)
        let records = try env.records(d)
        let manifest = try CHUNKRecord(rdata: records[0])
        #expect(manifest.format == 1)
        #expect(manifest.hmac == Digests.hmacSHA256(key: env.nodeHPKE.publicKey.rawRepresentation, data: [1] + manifest.data))
        let json = try JSONValue.parse(manifest.data)
        let metadata = try require2(json["metadata"])
        #expect(metadata["crypto"] == nil, "v1 is announced by leaving crypto out")
        #expect(metadata.keys == ["content", "distribution_id", "distribution_ttl", "key_count", "node_id", "operation_count", "timestamp", "zone_count"])
        var blob: [UInt8] = []
        for r in records.dropFirst() { blob += try CHUNKRecord(rdata: r).data }
        let c = try Base64.decode(blob)
        #expect(c.count > 64 && Array(c[0..<32]) == Array(c[32..<64]), "the encapsulated key twice")
        let plaintext = try HPKECipher.open(Array(c.dropFirst(32)), with: env.nodeHPKE)
        #expect(try JSONValue.parse(plaintext)[0]?["key_id"]?.stringValue == String(key.keyTag))
        #expect(throws: TDNSError.self) { try HPKECipher.open(c, with: env.nodeHPKE) }
        // Our receiver reads v1 too (no crypto ⇒ v1).
        let result = try receiver(env, node: "krs1.example.", signed: false).process(distributionID: d.id, records: records)
        #expect(result.reportJSON.contains(String(key.keyTag)))
        #expect(Self.distributionJSONText(d).contains(#""hpke_layout":"v1""#))
    }

    @Test("signed distributions: Format 2 JWT manifest by the KDC signing key binding ID, node, time, counts and hash; no inner JWS",
          arguments: [("krs1.example.", KDCOperation.rollKey), ("krs2.example.", .rollKey), ("krs1.example.", .ping), ("krs2.example.", .ping)])
    func signedThroughReceiver(node: String, op: KDCOperation) throws {
        let env = try KDCEnv()
        _ = try env.populate(legacy: false)
        let d = try env.distribute(node, op, chunkSize: 300)
        #expect(d.signed)
        #expect(d.hpkeLayout == (node == "krs1.example." ? .v2 : nil))
        #expect(d.deadline == d.createdAt + 300)
        let records = try env.records(d)
        let manifest = try CHUNKRecord(rdata: records[0])
        #expect(manifest.format == CHUNKRecord.formatJWT && manifest.hmac.isEmpty && manifest.sequence == 0)
        #expect(Int(manifest.total) == d.chunkCount)
        let signing = try env.kdc.loadKeys().signing.publicKey
        let claims = try jwtClaims(manifest.data, key: signing)
        let header = try jwsHeader(manifest.data)
        #expect(header["alg"]?.stringValue == "ES256")
        let inline = d.chunkCount == 0
        var expectedKeys = ["chunk_count", "chunk_hash", "content", "crypto", "distribution_id", "distribution_ttl", "exp", "iat", "iss",
                            "key_count", "operation_count", "receiver_id", "sub", "zone_count"]
        expectedKeys.append(inline ? "payload" : "chunk_size")
        #expect(claims.keys == expectedKeys.sorted(), "members in Go's map order")
        #expect(claims["iss"]?.stringValue == env.controlZone && claims["sub"]?.stringValue == "distribution")
        #expect(claims["iat"]?.int64Value == d.createdAt && claims["exp"]?.int64Value == d.createdAt + 300)
        #expect(claims["distribution_id"]?.stringValue == d.id && claims["receiver_id"]?.stringValue == node)
        #expect(claims["crypto"]?.stringValue == (node == "krs1.example." ? "hpke" : "jose"))
        #expect(claims["content"]?.stringValue == d.content && claims["chunk_count"]?.intValue == d.chunkCount)
        #expect(claims["distribution_ttl"]?.stringValue == "5m0s")
        let blob: [UInt8]
        if inline {
            blob = try Base64.decode(try require2(claims["payload"]?.stringValue))
        } else {
            #expect(claims["chunk_size"]?.intValue == 300)
            var b: [UInt8] = []
            for r in records.dropFirst() { b += try CHUNKRecord(rdata: r).data }
            blob = b
        }
        #expect(claims["chunk_hash"]?.stringValue == "sha256:" + Hex.encode(Digests.sha256(blob)))
        // The ciphertext itself: HPKE v2 or a JWE, not wrapped in a JWS any more.
        let c = try Base64.decode(blob)
        if node == "krs1.example." {
            _ = try HPKECipher.open(c, with: env.nodeHPKE)
        } else {
            #expect(c.filter { $0 == UInt8(ascii: ".") }.count == 4)
            _ = try JWE.decrypt(c, with: env.nodeJOSE)
        }
        let result = try receiver(env, node: node, signed: true).process(distributionID: d.id, records: records)
        #expect(result.signed == true)
        // The same distribution with another signing key configured fails closed.
        let other = try JOSEPrivateKey.generate()
        let strict = try receiver(env, node: node, signed: true, signingKey: other.publicKey.jwkJSON(), fresh: true)
        #expect(throws: TDNSError.self) { try strict.process(distributionID: d.id, records: records) }
    }

    @Test("Format 2 inline rule: B ≤ 500 bytes and 150 + 9 + len(JWS with payload) < 1200; the payload claim is B")
    func signedInline() throws {
        let env = try KDCEnv()
        let signer = try env.kdc.loadKeys().signing
        let recipient = DistributionBuilder.Recipient(nodeID: "krs1.example.", crypto: .hpke, hpke: env.nodeHPKE.publicKey, jose: nil)
        func build(_ entries: [JSONValue]) throws -> DistributionBuilder.Prepared {
            try DistributionBuilder.build(DistributionBuilder.Request(
                distributionID: "6978914f", recipient: recipient, content: "mgmt_operations", entries: entries,
                zoneCount: 0, keyCount: 0, timestamp: 1000, ttl: 300, signer: signer, issuer: env.controlZone))
        }
        let small = try build([.object([("operation", .string("ping"))])])
        #expect(small.chunkCount == 0 && small.records.count == 1)
        let manifest = try CHUNKRecord(rdata: small.records[0])
        #expect(150 + 9 + manifest.data.count < 1200)
        let claims = try jwtClaims(manifest.data, key: signer.publicKey)
        #expect(try Base64.decode(try require2(claims["payload"]?.stringValue)) == small.blob)
        #expect(claims["chunk_size"] == nil && claims["chunk_count"]?.intValue == 0)
        #expect(try JSONValue.parse(try HPKECipher.open(try Base64.decode(small.blob), with: env.nodeHPKE))[0]?["operation"]?.stringValue == "ping")
        // A real ping: B fits the Go rule, the JWS with it does not → chunked.
        let ping = try build([DistributionEntries.ping(nonce: [UInt8](repeating: 1, count: 32), timestamp: 1000, crypto: .hpke)])
        let pingManifest = try CHUNKRecord(rdata: ping.records[0])
        #expect(ping.chunkCount == 1 && ping.blob.count <= 500)
        #expect(try jwtClaims(pingManifest.data, key: signer.publicKey)["payload"] == nil)
    }

    @Test("a JWT manifest re-labelled with another distribution ID or node no longer verifies")
    func jwtBindsFields() throws {
        let env = try KDCEnv()
        _ = try env.populate(legacy: false)
        let d = try env.distribute("krs1.example.")
        let manifest = try CHUNKRecord(rdata: try env.records(d)[0])
        let parts = manifest.data.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map(Array.init)
        let claims = String(decoding: try Base64URL.decode(parts[1]), as: UTF8.self)
        let signing = try env.kdc.loadKeys().signing.publicKey
        for (from, to) in [(d.id, "0badcafe"), ("krs1.example.", "krs2.example.")] {
            let forged = Array(Base64URL.encode(Array(claims.replacingOccurrences(of: from, with: to).utf8)).utf8)
            let jws = parts[0] + [UInt8(ascii: ".")] + forged + [UInt8(ascii: ".")] + parts[2]
            #expect(throws: TDNSError.self) { _ = try JWS.verify(jws, with: signing) }
        }
    }

    @Test("JWT claims builder: exp = iat + distribution_ttl, chunk_size only when chunked, payload only inline")
    func claimsShape() {
        let c = DistributionBuilder.jwtClaims(
            issuer: "kdc.example.", content: "node_operations", distributionID: "6978914f", receiverID: "n.example.",
            crypto: .jose, issuedAt: 100, ttl: 3600, retireTime: 720 * 3600, chunkCount: 0, chunkSize: 60000,
            chunkHash: "sha256:00", payload: [0x41], zoneCount: 1, keyCount: 1, operationCount: 1)
        #expect(c.serializedString() == #"{"chunk_count":0,"chunk_hash":"sha256:00","content":"node_operations","crypto":"jose","distribution_id":"6978914f","distribution_ttl":"1h0m0s","exp":3700,"iat":100,"iss":"kdc.example.","payload":"QQ==","receiver_id":"n.example.","retire_time":"720h0m0s","sub":"distribution"}"#)
    }

    @Test("every algorithm `key generate` offers (8, 13, 14, 15) installs through TDNSKRS", arguments: [UInt8(8), 13, 14, 15])
    func algorithms(algorithm: UInt8) throws {
        let env = try KDCEnv()
        _ = try env.kdc.addNode(id: "krs1.example.", crypto: .hpke, hpkePublicKey: env.nodeHPKE.publicKey.hex, josePublicKey: nil,
                                notify: nil, legacy: true)
        _ = try env.kdc.addZone("example.com.")
        _ = try env.kdc.generateKey(zone: "example.com.", algorithm: algorithm, keyType: "zsk")
        let key = try require2(try env.kdc.store.load().keys.first)
        #expect(key.algorithm == algorithm && key.flags == 256 && key.keyType == "ZSK")
        let d = try env.distribute("krs1.example.")
        let result = try receiver(env, node: "krs1.example.", signed: false).process(distributionID: d.id, records: try env.records(d))
        #expect(result.reportJSON == #"{"successful_keys":[{"zone_name":"example.com.","key_id":"\#(key.keyTag)"}]}"#)
    }

    @Test("ping and delete_key entries as Go writes them")
    func entries() throws {
        let ping = DistributionEntries.ping(nonce: [UInt8](repeating: 0xab, count: 32), timestamp: 1_769_509_199, crypto: .jose)
        #expect(ping.serializedString() == #"{"operation":"ping","metadata":{"crypto":"jose","nonce":"\#(String(repeating: "ab", count: 32))","timestamp":"2026-01-27T10:19:59Z"}}"#)
        let del = DistributionEntries.deleteKey(zone: "example.com.", keyTag: 4664, crypto: .hpke, reason: "r")
        #expect(del.serializedString() == #"{"operation":"delete_key","zone_name":"example.com.","key_id":"4664","metadata":{"crypto":"hpke","pending_confirmation":true,"reason":"r"}}"#)
        let env = try KDCEnv()
        _ = try env.populate(legacy: true)
        let p = try env.distribute("krs1.example.", .ping)
        #expect(p.content == "mgmt_operations" && p.chunkCount == 0)
        let result = try receiver(env, node: "krs1.example.", signed: false).process(distributionID: p.id, records: try env.records(p))
        #expect(result.reportJSON.contains(#""zone_name":"ping""#))
    }

    @Test("distribution IDs: first the Unix time in hex, then +1 (PROTOCOL §1)")
    func distributionIDs() throws {
        let env = try KDCEnv()
        _ = try env.populate(legacy: true)
        _ = try env.kdc.distribute(target: .all, zone: "example.com.", keyTag: nil, operation: .rollKey, chunkSize: nil)
        let ids = try env.kdc.store.load().distributions.map(\.id)
        #expect(ids == [String(env.clock.now, radix: 16), String(env.clock.now + 1, radix: 16)])
    }

    static func distributionJSONText(_ d: KDCDistribution) -> String { KDC.distributionJSON(d).serializedString() }

    func receiver(_ env: KDCEnv, node: String, signed: Bool, signingKey: String? = nil, fresh: Bool = false) throws -> KeyReceiver {
        let dir = env.root + "/krs-\(node)\(fresh ? "-2" : "")"
        try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
        var args = [
            "node_id=\(node)", "control_zone=\(env.controlZone)", "state_dir=\(dir)/state", "key_dir=\(dir)/keys",
            "now=\(env.clock.now + 5)",
        ]
        args.append(node == "krs1.example." ? "hpke_private_key=\(env.nodeHPKE.hex)" : "jose_private_key=\(env.nodeJOSE.jwkJSON())")
        if signed {
            let kdcKey = try env.kdc.loadKeys().signing.publicKey.jwkJSON()
            args.append("kdc_signing_pubkey=\(signingKey ?? kdcKey)")
            args.append("require_signature=yes")
        }
        return try KeyReceiver(settings: KRSSettings(arguments: args))
    }
}
