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
                ("timestamp", .string(KDCTime.rfc3339(timestamp))),
            ])),
        ])
    }
}

/// Builds the CHUNK records of one distribution for one node exactly as the Go KDC's
/// `prepareChunksForNodeV2` does (PROTOCOL §2.4–§2.5, §6, §9): encrypt the entries JSON to the
/// node's backend, optionally wrap the ciphertext in the KDC's ES256 JWS (§8.3, §19), base64
/// it into the transport blob B, place B inline in the manifest or split it into data chunks,
/// and protect the manifest JSON with HMAC-SHA256 keyed with the node's public key (§9.2).
public enum DistributionBuilder {
    /// Go `ShouldIncludePayloadInline`: B at most 500 bytes …
    public static let inlinePayloadThreshold = 500
    /// … and 150 + estimated manifest RDATA < 1200.
    public static let inlineMaxTotal = 1200
    public static let inlineDNSOverhead = 150
    /// Format ‖ HMACLen ‖ HMAC(32) ‖ Sequence ‖ Total ‖ DataLength (Go `EstimateManifestSize`).
    public static let manifestOverhead = 41
    /// PROTOCOL §2.5.
    public static let defaultChunkSize = 60000

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
        /// Manifest `timestamp`.
        public var timestamp: Int64
        /// `distribution_ttl` in seconds (written when > 0).
        public var ttl: Int64
        /// `retire_time` in seconds (written when set and > 0).
        public var retireTime: Int64?
        public var chunkSize: Int
        /// When set, the ciphertext is wrapped in an ES256 JWS with this key.
        public var signer: JOSEPrivateKey?

        public init(
            distributionID: String, recipient: Recipient, content: String, entries: [JSONValue],
            zoneCount: Int, keyCount: Int, timestamp: Int64, ttl: Int64, retireTime: Int64? = nil,
            chunkSize: Int = DistributionBuilder.defaultChunkSize, signer: JOSEPrivateKey? = nil
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
        }
    }

    public struct Prepared: Sendable {
        /// RDATAs: the manifest (sequence 0), then data chunks 1…N.
        public var records: [[UInt8]]
        /// N; 0 when the payload is inline.
        public var chunkCount: Int
        /// The transport blob B (ASCII base64 of the ciphertext or JWS).
        public var blob: [UInt8]
    }

    public static func build(_ r: Request) throws(TDNSError) -> Prepared {
        guard (1...65535).contains(r.chunkSize) else {
            throw .config("chunk size \(r.chunkSize) is outside 1…65535")
        }
        guard TDNSMessages.isValidDistributionID(r.distributionID) else {
            throw .internalFailure("distribution ID \(r.distributionID) is not 4–16 hex characters")
        }
        var plaintext = JSONValue.array(r.entries).serialized(escapeHTML: true)
        defer { zeroize(&plaintext) }
        var ciphertext: [UInt8]
        switch r.recipient.crypto {
        case .hpke:
            guard let key = r.recipient.hpke else { throw .config("node \(r.recipient.nodeID) has no HPKE public key") }
            ciphertext = try HPKECipher.seal(plaintext, to: key)
        case .jose:
            guard let key = r.recipient.jose else { throw .config("node \(r.recipient.nodeID) has no JOSE public key") }
            ciphertext = try JWE.encrypt(plaintext, to: key)
        }
        if let signer = r.signer {
            ciphertext = try JWS.sign(ciphertext, with: signer)
        }
        let blob = Base64.encodeBytes(ciphertext)

        let meta = metadata(
            content: r.content, distributionID: r.distributionID, nodeID: r.recipient.nodeID,
            crypto: r.recipient.crypto, timestamp: r.timestamp, ttl: r.ttl, retireTime: r.retireTime,
            zoneCount: r.zoneCount, keyCount: r.keyCount, operationCount: r.entries.count)

        var records: [[UInt8]] = []
        let chunkCount: Int
        let manifestJSON: [UInt8]
        if shouldInline(blob: blob, metadata: meta) {
            chunkCount = 0
            manifestJSON = manifestData(chunkCount: 0, chunkSize: 0, metadata: meta, payload: blob)
        } else {
            let pieces = split(blob, size: r.chunkSize)
            guard pieces.count <= 65535 else { throw .tooBig("distribution needs \(pieces.count) chunks, at most 65535") }
            chunkCount = pieces.count
            for (i, piece) in pieces.enumerated() {
                let chunk = CHUNKRecord(
                    format: CHUNKRecord.formatJSON, hmac: [], sequence: UInt16(truncatingIfNeeded: i + 1),
                    total: UInt16(truncatingIfNeeded: chunkCount), data: piece)
                records.append(try chunk.rdata())
            }
            manifestJSON = manifestData(chunkCount: chunkCount, chunkSize: r.chunkSize, metadata: meta, payload: nil)
        }
        let manifest = manifestRecord(
            data: manifestJSON, hmacKey: try r.recipient.hmacKey(), total: UInt16(truncatingIfNeeded: chunkCount))
        records.insert(try manifest.rdata(), at: 0)
        return Prepared(records: records, chunkCount: chunkCount, blob: blob)
    }

    /// The manifest `metadata` map as Go marshals it: keys sorted (PROTOCOL §9.1; Go
    /// `buildManifestMetadata` + `CreateManifestMetadata`).
    public static func metadata(
        content: String, distributionID: String, nodeID: String, crypto: KDCCrypto, timestamp: Int64,
        ttl: Int64, retireTime: Int64?, zoneCount: Int, keyCount: Int, operationCount: Int
    ) -> [(String, JSONValue)] {
        var m: [(String, JSONValue)] = [
            ("content", .string(content)),
            ("distribution_id", .string(distributionID)),
            ("node_id", .string(nodeID)),
            ("timestamp", .integer(timestamp)),
            ("crypto", .string(crypto.rawValue)),
        ]
        if ["key_operations", "mgmt_operations", "mixed_operations"].contains(content) {
            m += [("zone_count", .integer(zoneCount)), ("key_count", .integer(keyCount)), ("operation_count", .integer(operationCount))]
        }
        if let retireTime, retireTime > 0 { m.append(("retire_time", .string(KDCTime.goDuration(retireTime)))) }
        if ttl > 0 { m.append(("distribution_ttl", .string(KDCTime.goDuration(ttl)))) }
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
