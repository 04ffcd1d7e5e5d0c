import Foundation
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKRS

/// A distribution ID from a literal the test knows to be valid.
func distID(_ text: String) throws -> DistributionID { try DistributionID(validating: text) }

extension DistributionResult {
    /// Why the keys were not installed, or nil when they were.
    var failureReason: String? {
        if case .notInstalled(let reason) = outcome { return reason }
        return nil
    }
}

/// Builds distributions the way the Go KDC does (PROTOCOL §2, §6, §9, §10), with knobs to
/// break each step, and a receiver environment in temporary directories.
struct TestKDC {
    var nodeID = "krs1.example."
    var controlZone = "kdc.example."
    let nodeHPKE = HPKEPrivateKey.generate()
    let nodeJOSE: JOSEPrivateKey
    let kdcSigner: JOSEPrivateKey
    var now: Int64 = 1_800_000_000
    /// Encrypt to these public keys instead of ``nodeHPKE``/``nodeJOSE`` (a node whose keys
    /// were made by its own enrollment).
    var hpkeRecipient: HPKEPublicKey? = nil
    var joseRecipient: JOSEPublicKey? = nil

    init() throws {
        nodeJOSE = try JOSEPrivateKey.generate()
        kdcSigner = try JOSEPrivateKey.generate()
    }

    // MARK: payload entries

    struct DNSSECKey {
        var zone: String
        var key: DNSSECPrivateKey
        var flags: UInt16
        var tag: UInt16 { dnssecKeyTag(flags: flags, protocol: 3, algorithm: key.algorithm.rawValue, publicKey: key.dnskeyPublicKey) }
        var dnskeyLine: String {
            "\(zone)\t3600\tIN\tDNSKEY\t\(flags) 3 \(key.algorithm.rawValue) \(Base64.encode(key.dnskeyPublicKey))"
        }
    }

    static func newKey(zone: String = "example.com.", algorithm: DNSSECAlgorithm = .ecdsap256sha256, ksk: Bool = false) throws -> DNSSECKey {
        DNSSECKey(zone: zone, key: try DNSSECPrivateKey.generate(algorithm: algorithm), flags: ksk ? 257 : 256)
    }

    static func rollKey(_ k: DNSSECKey, keyID: String? = nil, keyType: String? = nil, zone: String? = nil,
                        dnskeyLine: String? = nil, privatePEM: [UInt8]? = nil, algorithm: Int? = nil) -> JSONValue {
        .object([
            ("operation", .string("roll_key")),
            ("zone_name", .string(zone ?? k.zone)),
            ("key_id", .string(keyID ?? String(k.tag))),
            ("key_type", .string(keyType ?? (k.flags == 257 ? "KSK" : "ZSK"))),
            ("algorithm", .integer(algorithm ?? Int(k.key.algorithm.rawValue))),
            ("flags", .integer(Int(k.flags))),
            ("public_key", .string(dnskeyLine ?? k.dnskeyLine)),
            ("private_key", .string(Base64.encode(privatePEM ?? k.key.pkcs8PEM()))),
        ])
    }

    static func deleteKey(zone: String, tag: UInt16) -> JSONValue {
        .object([("operation", .string("delete_key")), ("zone_name", .string(zone)), ("key_id", .string(String(tag)))])
    }

    static func ping() -> JSONValue {
        .object([("operation", .string("ping")), ("metadata", .object([("nonce", .string(String(repeating: "ab", count: 32)))]))])
    }

    // MARK: distributions

    enum Crypto: String { case hpke, jose, v1 }

    struct Options {
        var crypto: Crypto = .hpke
        var content = "key_operations"
        var timestamp: Int64? = nil
        var ttl = "5m0s"
        var retireTime: String? = nil
        var nodeIDInManifest: String? = nil
        var manifestDistributionID: String? = nil
        /// nil: inline when small (≤ 500 bytes of B), else chunks of this size.
        var chunkSize = 60000
        var forceChunked = false
        var signJWS = false
        var jwsSigner: JOSEPrivateKey? = nil
        var jwtManifest = false
        var jwtExpires: Int64? = nil
        /// Applied to the ciphertext C before base64.
        var mutateCiphertext: ((inout [UInt8]) -> Void)? = nil
        /// Applied to the transport blob B.
        var mutateBlob: ((inout [UInt8]) -> Void)? = nil
        /// Applied to the manifest JSON object members before serialization.
        var mutateManifest: ((inout [(String, JSONValue)]) -> Void)? = nil
        var hmacKey: [UInt8]? = nil
    }

    func encrypt(_ plaintext: [UInt8], _ o: Options) throws -> [UInt8] {
        switch o.crypto {
        case .hpke: return try HPKECipher.seal(plaintext, to: hpkeRecipient ?? nodeHPKE.publicKey)
        case .v1:
            let ct = try HPKECipher.seal(plaintext, to: hpkeRecipient ?? nodeHPKE.publicKey)
            return Array(ct.prefix(32)) + ct
        case .jose: return try JWE.encrypt(plaintext, to: joseRecipient ?? nodeJOSE.publicKey)
        }
    }

    /// The CHUNK RDATAs of a distribution of `plaintext`.
    func distribution(_ id: String, plaintext: [UInt8], _ o: Options = Options()) throws -> [[UInt8]] {
        var ciphertext = try encrypt(plaintext, o)
        if o.signJWS { ciphertext = try JWS.sign(ciphertext, with: o.jwsSigner ?? kdcSigner) }
        o.mutateCiphertext?(&ciphertext)
        var blob = Array(Base64.encode(ciphertext).utf8)
        o.mutateBlob?(&blob)
        let inline = !o.forceChunked && blob.count <= 500
        var chunks: [[UInt8]] = []
        if !inline {
            let pieces = stride(from: 0, to: blob.count, by: o.chunkSize).map { Array(blob[$0..<min($0 + o.chunkSize, blob.count)]) }
            for (i, piece) in pieces.enumerated() {
                chunks.append(try CHUNKRecord(format: 1, hmac: [], sequence: UInt16(i + 1), total: UInt16(pieces.count), data: piece).rdata())
            }
        }
        let crypto: String? = o.crypto == .v1 ? nil : o.crypto.rawValue
        let chunkCount = inline ? 0 : chunks.count
        let manifestRecord: CHUNKRecord
        if o.jwtManifest {
            var claims: [(String, JSONValue)] = [
                ("iss", .string(controlZone)), ("sub", .string("distribution")),
                ("iat", .integer(o.timestamp ?? now)), ("exp", .integer(o.jwtExpires ?? ((o.timestamp ?? now) + 86400))),
                ("distribution_id", .string(o.manifestDistributionID ?? id)),
                ("receiver_id", .string(o.nodeIDInManifest ?? nodeID)),
                ("content", .string(o.content)),
            ]
            if let crypto { claims.append(("crypto", .string(crypto))) }
            claims.append(("chunk_count", .integer(chunkCount)))
            if !inline { claims.append(("chunk_size", .integer(o.chunkSize))) }
            claims.append(("chunk_hash", .string("sha256:" + Hex.encode(Digests.sha256(blob)))))
            if inline { claims.append(("payload", .string(Base64.encode(blob)))) }
            claims.append(("distribution_ttl", .string(o.ttl)))
            o.mutateManifest?(&claims)
            let jws = try JWS.sign(JSONValue.object(claims).serialized(), with: o.jwsSigner ?? kdcSigner)
            manifestRecord = CHUNKRecord(format: 2, hmac: [], sequence: 0, total: UInt16(chunkCount), data: jws)
        } else {
            var metadata: [(String, JSONValue)] = [("content", .string(o.content))]
            if let crypto { metadata.append(("crypto", .string(crypto))) }
            metadata += [
                ("distribution_id", .string(o.manifestDistributionID ?? id)),
                ("distribution_ttl", .string(o.ttl)),
                ("node_id", .string(o.nodeIDInManifest ?? nodeID)),
                ("timestamp", .integer(o.timestamp ?? now)),
            ]
            if let r = o.retireTime { metadata.append(("retire_time", .string(r))) }
            var members: [(String, JSONValue)] = [("chunk_count", .integer(chunkCount))]
            if !inline { members.append(("chunk_size", .integer(o.chunkSize))) }
            members.append(("metadata", .object(metadata)))
            if inline { members.append(("payload", .string(Base64.encode(blob)))) }
            o.mutateManifest?(&members)
            let data = JSONValue.object(members).serialized()
            let key = o.hmacKey ?? (o.crypto == .jose ? nodeJOSE.publicKey.xCoordinate : nodeHPKE.publicKey.rawRepresentation)
            let hmac = Digests.hmacSHA256(key: key, data: [1] + data)
            manifestRecord = CHUNKRecord(format: 1, hmac: hmac, sequence: 0, total: UInt16(chunkCount), data: data)
        }
        return [try manifestRecord.rdata()] + chunks
    }

    func distribution(_ id: String, entries: [JSONValue], _ o: Options = Options()) throws -> [[UInt8]] {
        try distribution(id, plaintext: JSONValue.array(entries).serialized(), o)
    }
}

/// A receiver in temporary directories.
final class ReceiverEnv {
    let root: String
    let stateDir: String
    let keyDir: String
    let kdc: TestKDC

    init(_ kdc: TestKDC) throws {
        self.kdc = kdc
        root = NSTemporaryDirectory() + "tdnskrs-test-" + UUID().uuidString
        stateDir = root + "/state"
        keyDir = root + "/keys"
        try FileManager.default.createDirectory(atPath: keyDir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func arguments(_ extra: [String] = []) -> [String] {
        [
            "node_id=\(kdc.nodeID)", "control_zone=\(kdc.controlZone)", "state_dir=\(stateDir)", "key_dir=\(keyDir)",
            "hpke_private_key=\(kdc.nodeHPKE.hex)", "jose_private_key=\(kdc.nodeJOSE.jwkJSON())",
            "kdc_signing_pubkey=\(kdc.kdcSigner.publicKey.jwkJSON())", "require_signature=no", "now=\(kdc.now + 5)",
        ] + extra
    }

    func receiver(_ extra: [String] = []) throws -> KeyReceiver {
        try KeyReceiver(settings: KRSSettings(arguments: arguments(extra)))
    }

    /// Names and contents of every file under the key and state directories, except the
    /// append-only audit log and the lock file.
    func snapshot() -> [String: Data] {
        var out: [String: Data] = [:]
        for dir in [keyDir, stateDir] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name != "audit.log" && name != "lock" {
                out[dir + "/" + name] = FileManager.default.contents(atPath: dir + "/" + name) ?? Data()
            }
        }
        return out
    }

    func keyFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: keyDir)) ?? []).sorted()
    }
}
