import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKRS

/// The manifests the Go code made (vectors/manifest.json, chunk.json) authenticate and decode.
@Suite("Manifest vectors")
struct ManifestVectorTests {
    @Test("JSON manifest: HMAC verifies with the recipient's key, fields decode")
    func jsonManifest() throws {
        let example = try VectorFiles.load("manifest.json").object("json_manifest").object("example")
        let record = try CHUNKRecord(rdata: try hexBytes(example.object("chunk_record").string("rdata_hex")))
        let key = try hexBytes(example.string("hmac_key_hex"))
        let m = try Manifest.decode(record, hmacKeys: [key], kdcKey: nil)
        #expect(m.authenticity == .hmac)
        #expect(m.distributionID == "6a2f00d5")
        #expect(m.receiverID == "krs1.example.")
        #expect(m.content == "key_operations" && m.crypto == .hpke && m.chunkCount == 0 && m.ttl == 300)
        #expect(m.inlinePayload == Array("SGVsbG8=".utf8), "payload is base64 of the base64 text B")
        let wrong = #expect(throws: TDNSError.self) { try Manifest.decode(record, hmacKeys: [[UInt8](repeating: 1, count: 32)], kdcKey: nil) }
        #expect(wrong?.code == .authentication)
    }

    @Test("JWT manifest: ES256 verifies with the KDC key, claims decode, other keys fail")
    func jwtManifest() throws {
        let jwt = try VectorFiles.load("manifest.json").object("jwt_manifest")
        let entry = try #require(try jwt.objects("manifests").first)
        let record = try CHUNKRecord(rdata: try hexBytes(entry.object("chunk_record").string("rdata_hex")))
        let kdcKey = try JOSEPublicKey(jwk: Array(try entry.string("verify_key_jwk").utf8))
        let m = try Manifest.decode(record, hmacKeys: [], kdcKey: kdcKey)
        #expect(m.authenticity == .kdcSignature)
        #expect(m.distributionID == "6a2f00d1" && m.receiverID == "krs1.example." && m.crypto == .jose)
        #expect(m.issuedAt == 1_767_225_600 && m.expiresAt == 4_102_444_800)
        try m.checkFreshness(now: 1_767_225_660, skew: 60)
        let other = try JOSEPrivateKey.generate().publicKey
        let e = #expect(throws: TDNSError.self) { try Manifest.decode(record, hmacKeys: [], kdcKey: other) }
        #expect(e?.code == .authentication)
        let none = #expect(throws: TDNSError.self) { try Manifest.decode(record, hmacKeys: [], kdcKey: nil) }
        #expect(none?.code == .authentication)
    }

    @Test("chunked split (chunk.json): the manifest verifies and the chunks reassemble to the payload")
    func chunkSplit() throws {
        let file = try VectorFiles.load("chunk.json")
        let split = try file.object("split_small_chunk_size")
        let key = try hexBytes(file.object("hmac").string("key_hex"))
        let records = try split.objects("records").map { try CHUNKRecord(rdata: try hexBytes($0.string("rdata_hex"))) }
        let manifest = try Manifest.decode(try #require(records.first { $0.sequence == 0 }), hmacKeys: [key], kdcKey: nil)
        let blob = try Reassembly.assemble(records.filter { $0.sequence > 0 }.reversed(), chunkCount: manifest.chunkCount, maxSize: 1 << 20)
        #expect(blob == Array(try split.string("payload").utf8))
    }
}
