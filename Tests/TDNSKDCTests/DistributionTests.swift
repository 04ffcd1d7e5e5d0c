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

    @Test("signed distributions: the ciphertext is an ES256 JWS by the KDC signing key; TDNSKRS requires and verifies it",
          arguments: ["krs1.example.", "krs2.example."])
    func signedThroughReceiver(node: String) throws {
        let env = try KDCEnv()
        _ = try env.populate(legacy: false)
        let d = try env.distribute(node, chunkSize: 300)
        #expect(d.signed && d.chunkCount > 1)
        let records = try env.records(d)
        var blob: [UInt8] = []
        for r in records.dropFirst() { blob += try CHUNKRecord(rdata: r).data }
        let jws = try Base64.decode(blob)
        let payload = try JWS.verify(jws, with: try env.kdc.loadKeys().signing.publicKey)
        #expect(!payload.isEmpty)
        let result = try receiver(env, node: node, signed: true).process(distributionID: d.id, records: records)
        #expect(result.signed == true)
        // The same distribution with another signing key configured fails closed.
        let other = try JOSEPrivateKey.generate()
        let strict = try receiver(env, node: node, signed: true, signingKey: other.publicKey.jwkJSON(), fresh: true)
        #expect(throws: TDNSError.self) { try strict.process(distributionID: d.id, records: records) }
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

@Suite("KDC time texts")
struct TimeTests {
    @Test("RFC 3339 round trip and Go durations")
    func times() {
        #expect(KDCTime.rfc3339(0) == "1970-01-01T00:00:00Z")
        #expect(KDCTime.rfc3339(1_769_509_199) == "2026-01-27T10:19:59Z")
        #expect(KDCTime.parseRFC3339("2026-01-27T10:19:59Z") == 1_769_509_199)
        #expect(KDCTime.parseRFC3339("2026-01-27T11:19:59+01:00") == 1_769_509_199)
        #expect(KDCTime.parseRFC3339("2026-01-27T10:19:59.123456Z") == 1_769_509_199)
        #expect(KDCTime.parseRFC3339("2026-02-30T10:19:59Z") == nil)
        #expect(KDCTime.parseRFC3339("2026-01-27 10:19:59Z") == nil)
        #expect(KDCTime.goDuration(300) == "5m0s")
        #expect(KDCTime.goDuration(720 * 3600) == "720h0m0s")
        #expect(KDCTime.goDuration(45) == "45s")
        #expect(KDCTime.parseDuration("5m") == 300)
        #expect(KDCTime.parseDuration("1h30m") == 5400)
        #expect(KDCTime.parseDuration("7d") == 604_800)
        #expect(KDCTime.parseDuration("90") == 90)
        #expect(KDCTime.parseDuration("5x") == nil)
        #expect(KDCTime.parseDuration("0s") == nil)
    }
}
