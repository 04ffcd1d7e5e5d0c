import TDNSCore
import TDNSCrypto
import TDNSWire

/// The operations a distribution carries (PROTOCOL §10.2).
public enum KDCOperation: String, Sendable, CaseIterable {
    case rollKey = "roll_key"
    case deleteKey = "delete_key"
    case ping

    /// `metadata.content` of a distribution holding only this operation (PROTOCOL §10.1, Go
    /// `determineContentType`).
    public var content: String { self == .ping ? "mgmt_operations" : "key_operations" }
}

/// The plaintext entries of a distribution, member for member as Go's `json.Marshal` writes
/// `tnm.DistributionEntry` (PROTOCOL §10.2: operation, zone_name, key_id, key_type, algorithm,
/// flags, public_key, private_key, metadata; empty members omitted; `metadata` is a Go map, so
/// its keys are sorted).
public enum DistributionEntries {
    /// roll_key as the KDC's "distribute key" path builds it: no metadata.
    /// `privateKeyPEM` is the PKCS#8 PEM text; the entry carries its base64.
    public static func rollKey(
        zone: String, keyTag: UInt16, keyType: String, algorithm: UInt8, flags: UInt16,
        dnskey: String, privateKeyPEM: [UInt8]
    ) -> JSONValue {
        .object([
            ("operation", .string(KDCOperation.rollKey.rawValue)),
            ("zone_name", .string(zone)),
            ("key_id", .string(String(keyTag))),
            ("key_type", .string(keyType)),
            ("algorithm", .integer(algorithm)),
            ("flags", .integer(flags)),
            ("public_key", .string(dnskey)),
            ("private_key", .string(Base64.encode(privateKeyPEM))),
        ])
    }

    /// delete_key with the metadata of Go `CreateDeleteKeyOperation`:
    /// `{"crypto":…,"pending_confirmation":true,"reason":…}`.
    public static func deleteKey(zone: String, keyTag: UInt16, crypto: KDCCrypto, reason: String) -> JSONValue {
        .object([
            ("operation", .string(KDCOperation.deleteKey.rawValue)),
            ("zone_name", .string(zone)),
            ("key_id", .string(String(keyTag))),
            ("metadata", .object([
                ("crypto", .string(crypto.rawValue)),
                ("pending_confirmation", .bool(true)),
                ("reason", .string(reason)),
            ])),
        ])
    }

    /// ping with the metadata of Go `CreatePingOperation`: a random 32-byte nonce in hex, an
    /// RFC 3339 timestamp and the backend (PROTOCOL §10.4).
    public static func ping(nonce: [UInt8], timestamp: Int64, crypto: KDCCrypto) -> JSONValue {
        .object([
            ("operation", .string(KDCOperation.ping.rawValue)),
            ("metadata", .object([
                ("crypto", .string(crypto.rawValue)),
                ("nonce", .string(Hex.encode(nonce))),
                ("timestamp", .string(RFC3339.format(timestamp))),
            ])),
        ])
    }
}

/// Builds the CHUNK records of one distribution for one node.
///
/// Every distribution: encrypt the entries JSON to the node's backend (HPKE v2 `enc ‖ ct ‖ tag`,
/// HPKE v1 `enc ‖ enc ‖ ct ‖ tag`, or a compact JWE; PROTOCOL §6–§8), base64 it into the
/// transport blob B, place B inline in the manifest or split it into data chunks (§2.5).
///
/// - Legacy nodes (no `signer`): exactly the Go KDC's `prepareChunksForNodeV2` — a Format 1
///   JSON manifest protected by HMAC-SHA256 keyed with the node's *public* key (§9.1–§9.2), so
///   it detects corruption but anyone can forge it.
/// - Nodes that verify KDC signatures (`signer` set): a Format 2 manifest (§9.3) — a compact
///   JWS (ES256, the KDC signing key) over JWT claims that bind the distribution ID, the
///   receiving node, `iat`/`exp`, the counts and `chunk_hash` (SHA-256 of B) — and no inner
///   JWS around the ciphertext.
public enum DistributionBuilder {
    /// Go `ShouldIncludePayloadInline`: B at most 500 bytes …
    public static let inlinePayloadThreshold = 500
    /// … and 150 + estimated manifest RDATA < 1200.
    public static let inlineMaxTotal = 1200
    public static let inlineDNSOverhead = 150
    /// Format ‖ HMACLen ‖ HMAC(32) ‖ Sequence ‖ Total ‖ DataLength (Go `EstimateManifestSize`).
    public static let manifestOverhead = 41
    /// Format ‖ HMACLen ‖ Sequence ‖ Total ‖ DataLength: a Format 2 manifest has no HMAC.
    public static let jwtManifestOverhead = 9
    /// PROTOCOL §2.5.
    public static let defaultChunkSize = 60000
    /// JWT `sub` of a distribution manifest (PROTOCOL §9.3).
    public static let jwtSubject = "distribution"

    /// Who a distribution is for.
    public struct Recipient: Sendable {
        public var nodeID: String
        public var crypto: KDCCrypto
        public var hpke: HPKEPublicKey?
        public var jose: JOSEPublicKey?

        public init(nodeID: String, crypto: KDCCrypto, hpke: HPKEPublicKey?, jose: JOSEPublicKey?) {
            self.nodeID = nodeID
            self.crypto = crypto
            self.hpke = hpke
            self.jose = jose
        }

        /// PROTOCOL §9.2: the X25519 public key, or the P-256 x-coordinate (32 bytes).
        func hmacKey() throws(TDNSError) -> [UInt8] {
            switch crypto {
            case .hpke:
                guard let hpke else { throw .config("node \(nodeID) has no HPKE public key") }
                return hpke.rawRepresentation
            case .jose:
                guard let jose else { throw .config("node \(nodeID) has no JOSE public key") }
                return jose.xCoordinate
            }
        }
    }

    public struct Request: Sendable {
        public var distributionID: String
        public var recipient: Recipient
        public var content: String
        /// The entries array (serialized with Go's escaping before encryption).
        public var entries: [JSONValue]
        public var zoneCount: Int
        public var keyCount: Int
        /// Manifest `timestamp` (Format 1) / `iat` (Format 2).
        public var timestamp: Int64
        /// `distribution_ttl` in seconds (written when > 0; Format 2 `exp` = iat + it).
        public var ttl: Int64
        /// `retire_time` in seconds (written when set and > 0).
        public var retireTime: Int64?
        public var chunkSize: Int
        /// When set, the manifest is a Format 2 JWT signed with this key (PROTOCOL §9.3);
        /// otherwise the Go Format 1 HMAC manifest.
        public var signer: JOSEPrivateKey?
        /// JWT `iss`: the control zone.
        public var issuer: String
        /// HPKE ciphertext layout; v1 only for legacy (unsigned) distributions.
        public var hpkeLayout: KDCHPKELayout

        public init(
            distributionID: String, recipient: Recipient, content: String, entries: [JSONValue],
            zoneCount: Int, keyCount: Int, timestamp: Int64, ttl: Int64, retireTime: Int64? = nil,
            chunkSize: Int = DistributionBuilder.defaultChunkSize, signer: JOSEPrivateKey? = nil,
            issuer: String = "", hpkeLayout: KDCHPKELayout = .v2
        ) {
            self.distributionID = distributionID
            self.recipient = recipient
            self.content = content
            self.entries = entries
            self.zoneCount = zoneCount
            self.keyCount = keyCount
            self.timestamp = timestamp
            self.ttl = ttl
            self.retireTime = retireTime
            self.chunkSize = chunkSize
            self.signer = signer
            self.issuer = issuer
            self.hpkeLayout = hpkeLayout
        }
    }

    public struct Prepared: Sendable {
        /// RDATAs: the manifest (sequence 0), then data chunks 1…N.
        public var records: [[UInt8]]
        /// N; 0 when the payload is inline.
        public var chunkCount: Int
        /// The transport blob B (ASCII base64 of the ciphertext).
        public var blob: [UInt8]
    }

    public static func build(_ r: Request) throws(TDNSError) -> Prepared {
        guard (1...65535).contains(r.chunkSize) else {
            throw .config("chunk size \(r.chunkSize) is outside 1…65535")
        }
        guard DistributionID(r.distributionID) != nil else {
            throw .internalFailure("distribution ID \(r.distributionID) is not 4–16 hex characters")
        }
        let v1 = r.recipient.crypto == .hpke && r.hpkeLayout == .v1
        if r.signer != nil && r.issuer.isEmpty {
            throw .internalFailure("a JWT manifest needs its issuer (the control zone)")
        }
        if v1 && r.signer != nil {
            // v1 exists only for Go KRSs, which read no signatures; a signed v1 would be a mistake.
            throw .internalFailure("the v1 HPKE layout is for legacy (unsigned) distributions only")
        }
        var plaintext = JSONValue.array(r.entries).serialized(escapeHTML: true)
        defer { zeroize(&plaintext) }
        let ciphertext: [UInt8]
        switch r.recipient.crypto {
        case .hpke:
            guard let key = r.recipient.hpke else { throw .config("node \(r.recipient.nodeID) has no HPKE public key") }
            let sealed = try HPKECipher.seal(plaintext, to: key)
            // v1 (Go `use_crypto_v2: false`): the encapsulated key once more in front (PROTOCOL §21).
            ciphertext = v1 ? Array(sealed.prefix(HPKECipher.encLength)) + sealed : sealed
        case .jose:
            guard let key = r.recipient.jose else { throw .config("node \(r.recipient.nodeID) has no JOSE public key") }
            ciphertext = try JWE.encrypt(plaintext, to: key)
        }
        let blob = Base64.encodeBytes(ciphertext)
        if let signer = r.signer {
            return try buildSigned(r, blob: blob, signer: signer)
        }

        let meta = metadata(
            content: r.content, distributionID: r.distributionID, nodeID: r.recipient.nodeID,
            crypto: v1 ? nil : r.recipient.crypto, timestamp: r.timestamp, ttl: r.ttl, retireTime: r.retireTime,
            zoneCount: r.zoneCount, keyCount: r.keyCount, operationCount: r.entries.count)

        var records: [[UInt8]] = []
        let chunkCount: Int
        let manifestJSON: [UInt8]
        if shouldInline(blob: blob, metadata: meta) {
            chunkCount = 0
            manifestJSON = manifestData(chunkCount: 0, chunkSize: 0, metadata: meta, payload: blob)
        } else {
            records = try dataChunks(blob, size: r.chunkSize)
            chunkCount = records.count
            manifestJSON = manifestData(chunkCount: chunkCount, chunkSize: r.chunkSize, metadata: meta, payload: nil)
        }
        // v1 and JOSE: the HMAC key follows the backend (§9.2); v1 is HPKE, so its key is the HPKE key.
        let manifest = manifestRecord(
            data: manifestJSON, hmacKey: try r.recipient.hmacKey(), total: UInt16(truncatingIfNeeded: chunkCount))
        records.insert(try manifest.rdata(), at: 0)
        return Prepared(records: records, chunkCount: chunkCount, blob: blob)
    }

    /// Format 2: the JWT manifest (PROTOCOL §9.3). Inline iff len(B) ≤ 500 and
    /// 150 + 9 + len(JWS with the payload) < 1200 — the Go rule with this format's overhead.
    static func buildSigned(_ r: Request, blob: [UInt8], signer: JOSEPrivateKey) throws(TDNSError) -> Prepared {
        let hash = "sha256:" + Hex.encode(Digests.sha256(blob))
        func claims(chunkCount: Int, chunkSize: Int?, payload: [UInt8]?) -> [UInt8] {
            jwtClaims(
                issuer: r.issuer, content: r.content, distributionID: r.distributionID, receiverID: r.recipient.nodeID,
                crypto: r.recipient.crypto, issuedAt: r.timestamp, ttl: r.ttl, retireTime: r.retireTime,
                chunkCount: chunkCount, chunkSize: chunkSize, chunkHash: hash, payload: payload,
                zoneCount: r.zoneCount, keyCount: r.keyCount, operationCount: r.entries.count
            ).serialized(escapeHTML: true)
        }
        if blob.count <= inlinePayloadThreshold {
            let jws = try JWS.sign(claims(chunkCount: 0, chunkSize: nil, payload: blob), with: signer)
            if inlineDNSOverhead + jwtManifestOverhead + jws.count < inlineMaxTotal {
                let manifest = CHUNKRecord(format: CHUNKRecord.formatJWT, hmac: [], sequence: 0, total: 0, data: jws)
                return Prepared(records: [try manifest.rdata()], chunkCount: 0, blob: blob)
            }
        }
        var records = try dataChunks(blob, size: r.chunkSize)
        let jws = try JWS.sign(claims(chunkCount: records.count, chunkSize: r.chunkSize, payload: nil), with: signer)
        let manifest = CHUNKRecord(
            format: CHUNKRecord.formatJWT, hmac: [], sequence: 0, total: UInt16(truncatingIfNeeded: records.count), data: jws)
        records.insert(try manifest.rdata(), at: 0)
        return Prepared(records: records, chunkCount: records.count - 1, blob: blob)
    }

    /// Data chunks 1…N of B: Format 1 (the Go KDC copies the manifest's format byte, 1), no
    /// HMAC, Total = N (PROTOCOL §2.4).
    static func dataChunks(_ blob: [UInt8], size: Int) throws(TDNSError) -> [[UInt8]] {
        let pieces = split(blob, size: size)
        guard pieces.count <= 65535 else { throw .tooBig("distribution needs \(pieces.count) chunks, at most 65535") }
        var records: [[UInt8]] = []
        records.reserveCapacity(pieces.count)
        for (i, piece) in pieces.enumerated() {
            let chunk = CHUNKRecord(
                format: CHUNKRecord.formatJSON, hmac: [], sequence: UInt16(truncatingIfNeeded: i + 1),
                total: UInt16(truncatingIfNeeded: pieces.count), data: piece)
            records.append(try chunk.rdata())
        }
        return records
    }

    /// The JWT claims of a Format 2 manifest (PROTOCOL §9.3), members in Go's map order
    /// (byte-wise sorted keys): `iss`, `sub` "distribution", `iat`, `exp` = iat +
    /// distribution_ttl, `distribution_id`, `receiver_id`, `content`, `crypto`, `chunk_count`,
    /// `chunk_size` (chunked only), `chunk_hash` ("sha256:" + hex of SHA-256(B), always),
    /// `payload` (single base64 of B, inline only), the counts of key/mgmt/mixed content,
    /// `distribution_ttl` and `retire_time` as Go durations.
    public static func jwtClaims(
        issuer: String, content: String, distributionID: String, receiverID: String, crypto: KDCCrypto,
        issuedAt: Int64, ttl: Int64, retireTime: Int64?, chunkCount: Int, chunkSize: Int?, chunkHash: String,
        payload: [UInt8]?, zoneCount: Int, keyCount: Int, operationCount: Int
    ) -> JSONValue {
        let lifetime = ttl > 0 ? ttl : 300
        var m: [(String, JSONValue)] = [
            ("iss", .string(issuer)),
            ("sub", .string(jwtSubject)),
            ("iat", .integer(issuedAt)),
            ("exp", .integer(issuedAt + lifetime)),
            ("distribution_id", .string(distributionID)),
            ("receiver_id", .string(receiverID)),
            ("content", .string(content)),
            ("crypto", .string(crypto.rawValue)),
            ("chunk_count", .integer(chunkCount)),
            ("chunk_hash", .string(chunkHash)),
            ("distribution_ttl", .string(GoDuration.format(seconds: lifetime))),
        ]
        if let chunkSize, chunkCount > 0 { m.append(("chunk_size", .integer(chunkSize))) }
        if let payload, !payload.isEmpty { m.append(("payload", .string(Base64.encode(payload)))) }
        if ["key_operations", "mgmt_operations", "mixed_operations"].contains(content) {
            m += [("zone_count", .integer(zoneCount)), ("key_count", .integer(keyCount)), ("operation_count", .integer(operationCount))]
        }
        if let retireTime, retireTime > 0 { m.append(("retire_time", .string(GoDuration.format(seconds: retireTime)))) }
        return .object(sortedMembers(m))
    }

    /// The manifest `metadata` map as Go marshals it: keys sorted (PROTOCOL §9.1; Go
    /// `buildManifestMetadata` + `CreateManifestMetadata`). `crypto` nil: the v1 layout, which
    /// the Go KDC announces by leaving `crypto` out.
    public static func metadata(
        content: String, distributionID: String, nodeID: String, crypto: KDCCrypto?, timestamp: Int64,
        ttl: Int64, retireTime: Int64?, zoneCount: Int, keyCount: Int, operationCount: Int
    ) -> [(String, JSONValue)] {
        var m: [(String, JSONValue)] = [
            ("content", .string(content)),
            ("distribution_id", .string(distributionID)),
            ("node_id", .string(nodeID)),
            ("timestamp", .integer(timestamp)),
        ]
        if let crypto { m.append(("crypto", .string(crypto.rawValue))) }
        if ["key_operations", "mgmt_operations", "mixed_operations"].contains(content) {
            m += [("zone_count", .integer(zoneCount)), ("key_count", .integer(keyCount)), ("operation_count", .integer(operationCount))]
        }
        if let retireTime, retireTime > 0 { m.append(("retire_time", .string(GoDuration.format(seconds: retireTime)))) }
        if ttl > 0 { m.append(("distribution_ttl", .string(GoDuration.format(seconds: ttl)))) }
        return sortedMembers(m)
    }

    /// Go's `json.Marshal(ManifestData)`: `chunk_count` always, `chunk_size` when non-zero,
    /// `metadata` when non-empty, `payload` (a `[]byte`, so base64 of B) when non-empty; HTML
    /// characters escaped.
    public static func manifestData(
        chunkCount: Int, chunkSize: Int, metadata: [(String, JSONValue)], payload: [UInt8]?
    ) -> [UInt8] {
        var members: [(String, JSONValue)] = [("chunk_count", .integer(chunkCount))]
        if chunkSize != 0 { members.append(("chunk_size", .integer(chunkSize))) }
        if !metadata.isEmpty { members.append(("metadata", .object(metadata))) }
        if let payload, !payload.isEmpty { members.append(("payload", .string(Base64.encode(payload)))) }
        return JSONValue.object(members).serialized(escapeHTML: true)
    }

    /// PROTOCOL §2.5: inline iff len(B) ≤ 500 and 150 + (41 + len(manifest JSON with the
    /// payload and chunk_count 0)) < 1200.
    public static func shouldInline(blob: [UInt8], metadata: [(String, JSONValue)]) -> Bool {
        let estimate = manifestOverhead + manifestData(chunkCount: 0, chunkSize: 0, metadata: metadata, payload: blob).count
        return blob.count <= inlinePayloadThreshold && inlineDNSOverhead + estimate < inlineMaxTotal
    }

    /// Format 1, HMAC-SHA256(key, 0x01 ‖ data), Sequence 0, Total = chunk count (PROTOCOL §2.4, §9.2).
    public static func manifestRecord(data: [UInt8], hmacKey: [UInt8], total: UInt16) -> CHUNKRecord {
        let hmac = Digests.hmacSHA256(key: hmacKey, data: [CHUNKRecord.formatJSON] + data)
        return CHUNKRecord(format: CHUNKRecord.formatJSON, hmac: hmac, sequence: 0, total: total, data: data)
    }

    /// PROTOCOL §2.5 split rule: N = ceil(L / S), chunk i = bytes [(i-1)·S, min(i·S, L)).
    public static func split(_ blob: [UInt8], size: Int) -> [[UInt8]] {
        stride(from: 0, to: blob.count, by: size).map { Array(blob[$0..<min($0 + size, blob.count)]) }
    }

    /// Object members in Go's map order (byte-wise ascending keys).
    static func sortedMembers(_ m: [(String, JSONValue)]) -> [(String, JSONValue)] {
        m.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
    }
}
