import TDNSCore
import TDNSCrypto
import TDNSWire

/// A distribution's manifest (the CHUNK record with sequence 0), authenticated and decoded.
///
/// Format 1 (PROTOCOL §9.1): JSON, protected by HMAC-SHA256 keyed with this node's own public
/// key (§9.2) — which detects corruption but proves nothing about the sender.
/// Format 2 (§9.3): a JWT (compact JWS, ES256) signed by the KDC, verified with the KDC signing
/// key from enrollment (§19).
struct Manifest: Sendable {
    /// What the payload holds (`content`, PROTOCOL §10.1): keys or node components.
    enum Content: String, Sendable {
        case keyOperations = "key_operations"
        case mgmtOperations = "mgmt_operations"
        case mixedOperations = "mixed_operations"
        case nodeOperations = "node_operations"
    }

    /// How the payload is encrypted (`crypto`, PROTOCOL §6, §21).
    enum Crypto: Equatable, Sendable {
        /// No `crypto`: the v1 HPKE layout, `E ‖ E ‖ AEAD`.
        case hpkeV1
        case hpke
        case jose
        /// Anything else, refused when the payload is decrypted.
        case unknown(String)

        /// The backend (`hpke` for both HPKE layouts); nil for an unknown `crypto`.
        var backend: CryptoBackend? {
            switch self {
            case .hpkeV1, .hpke: return .hpke
            case .jose: return .jose
            case .unknown: return nil
            }
        }

        init(_ text: String?) {
            switch text {
            case nil: self = .hpkeV1
            case "hpke"?: self = .hpke
            case "jose"?: self = .jose
            case let other?: self = .unknown(other)
            }
        }
    }

    enum Authenticity: Sendable {
        /// HMAC keyed with our public key: integrity only.
        case hmac
        /// JWT signed by the KDC's signing key.
        case kdcSignature
    }

    var authenticity: Authenticity
    var chunkCount: Int
    var chunkSize: Int?
    var distributionID: String
    var receiverID: String?
    /// As the manifest names it; ``contentKind`` is nil for a content this node does not take.
    var content: String
    var crypto: Crypto
    /// Format 1: `metadata.timestamp`; Format 2: `iat`.
    var issuedAt: Int64
    /// Format 2 only.
    var expiresAt: Int64?
    /// Seconds; from `distribution_ttl`, default 5 minutes (§13).
    var ttl: Int64
    /// `retire_time`: how long a retired key stays published (PROTOCOL §9.1, §10.3), seconds.
    var retireTime: Int64? = nil
    /// The inline transport blob B (ASCII base64 of the ciphertext), when chunk_count is 0.
    var inlinePayload: [UInt8]?
    /// Format 2 `chunk_hash`: SHA-256 of B.
    var chunkHash: [UInt8]?

    /// Whether the KDC's signature binds this distribution: a Format 2 manifest verified with
    /// the KDC signing key (contract §2). A Format 1 manifest never does, whatever its
    /// ciphertext carries: its HMAC is keyed with the node's public key.
    var isBound: Bool { authenticity == .kdcSignature }

    var contentKind: Content? { Content(rawValue: content) }

    static let defaultTTL: Int64 = 300
    /// The manifest JSON is small; anything larger than a CHUNK record can hold is refused.
    static let maxJSON = 65535

    /// Authenticates and decodes the manifest record.
    ///
    /// - Parameters:
    ///   - hmacKeys: this node's public keys in HMAC form (HPKE public key, JOSE x-coordinate).
    ///   - kdcKey: the KDC signing key, needed for Format 2.
    static func decode(
        _ record: CHUNKRecord, hmacKeys: [[UInt8]], kdcKey: JOSEPublicKey?
    ) throws(TDNSError) -> Manifest {
        switch record.format {
        case 1:
            guard record.hmac.count == 32 else {
                throw .authentication("manifest HMAC is \(record.hmac.count) bytes, not 32")
            }
            let signed = [record.format] + record.data
            guard hmacKeys.contains(where: { Digests.hmacSHA256IsValid(record.hmac, key: $0, data: signed) }) else {
                throw .authentication("manifest HMAC does not verify with this node's keys")
            }
            return try fromJSON(record.data)
        case 2:
            guard let kdcKey else {
                throw .authentication("JWT manifest, but no kdc_signing_pubkey is configured to verify it")
            }
            let claims: [UInt8]
            do {
                claims = try JWS.verify(record.data, with: kdcKey)
            } catch where error.code == .cryptoFailure {
                throw .authentication("JWT manifest signature does not verify with the KDC signing key")
            }
            return try fromJWT(claims)
        default:
            throw .malformed("manifest format \(record.format) is neither 1 (JSON) nor 2 (JWT)")
        }
    }

    /// Format 1 (PROTOCOL §9.1).
    static func fromJSON(_ data: [UInt8]) throws(TDNSError) -> Manifest {
        let json = try JSONValue.parse(data, maxDepth: 8, maxSize: maxJSON)
        guard case .object = json else { throw .malformed("manifest is not a JSON object") }
        guard let meta = json["metadata"], case .object = meta else { throw .malformed("manifest has no metadata object") }
        let chunkCount = try uint16(json, "chunk_count", required: true) ?? 0
        let chunkSize = try uint16(json, "chunk_size", required: false)
        var payload: [UInt8]? = nil
        if let p = json["payload"] {
            guard let text = p.stringValue else { throw .malformed("manifest payload is not a string") }
            // A Go []byte: standard base64 of B (so B arrives base64'd twice, PROTOCOL §6).
            do {
                payload = try Base64.decode(text)
            } catch {
                throw .malformed("manifest payload is not valid base64")
            }
        }
        guard let timestamp = meta["timestamp"]?.int64Value else {
            throw .malformed("manifest metadata has no integer timestamp")
        }
        return Manifest(
            authenticity: .hmac,
            chunkCount: chunkCount,
            chunkSize: chunkSize,
            distributionID: try string(meta, "distribution_id"),
            receiverID: meta["node_id"]?.stringValue ?? meta["receiver_id"]?.stringValue,
            content: try string(meta, "content"),
            crypto: Crypto(try optionalString(meta, "crypto")),
            issuedAt: timestamp,
            expiresAt: nil,
            ttl: try ttl(meta),
            retireTime: try retireTime(meta),
            inlinePayload: payload,
            chunkHash: nil)
    }

    /// Format 2 claims (PROTOCOL §9.3).
    static func fromJWT(_ claims: [UInt8]) throws(TDNSError) -> Manifest {
        let json = try JSONValue.parse(claims, maxDepth: 8, maxSize: JWS.maxPayload)
        guard case .object = json else { throw .malformed("JWT claims are not a JSON object") }
        guard let iat = json["iat"]?.int64Value else { throw .malformed("JWT manifest has no iat") }
        guard let exp = json["exp"]?.int64Value else { throw .malformed("JWT manifest has no exp") }
        var payload: [UInt8]? = nil
        if let p = json["payload"] {
            guard let text = p.stringValue else { throw .malformed("JWT payload claim is not a string") }
            do { payload = try Base64.decode(text) } catch { throw .malformed("JWT payload claim is not valid base64") }
        }
        var hash: [UInt8]? = nil
        if let h = json["chunk_hash"] {
            guard var text = h.stringValue else { throw .malformed("chunk_hash is not a string") }
            if text.hasPrefix("sha256:") { text.removeFirst(7) }
            guard let bytes = Hex.decode(Array(text.utf8)), bytes.count == 32 else {
                throw .malformed("chunk_hash is not a SHA-256 in hex")
            }
            hash = bytes
        }
        return Manifest(
            authenticity: .kdcSignature,
            chunkCount: try uint16(json, "chunk_count", required: true) ?? 0,
            chunkSize: try uint16(json, "chunk_size", required: false),
            distributionID: try string(json, "distribution_id"),
            receiverID: json["receiver_id"]?.stringValue ?? json["node_id"]?.stringValue,
            content: try string(json, "content"),
            crypto: Crypto(try optionalString(json, "crypto")),
            issuedAt: iat,
            expiresAt: exp,
            ttl: try ttl(json),
            retireTime: try retireTime(json),
            inlinePayload: payload,
            chunkHash: hash)
    }

    /// The most bytes the data chunks can hold: chunk_count × chunk_size (65535, the
    /// largest CHUNK Data, when chunk_size is absent). Compared with max_distribution_size
    /// before any data chunk is requested.
    var largestPayload: Int { chunkCount * (chunkSize ?? Self.maxChunkData) }

    /// The largest Data of one CHUNK record (PROTOCOL §2.5).
    static let maxChunkData = 65535

    /// Freshness (PROTOCOL §13 plus the skew of §19): not from the future, not older than its
    /// TTL, and for a JWT within iat…exp — each with `skew` seconds of tolerance.
    func checkFreshness(now: Int64, skew: Int64) throws(TDNSError) {
        if issuedAt > now &+ skew {
            throw .stale("manifest timestamp is \(issuedAt - now) s in the future (skew allows \(skew) s)")
        }
        let age = now &- issuedAt
        if age > ttl &+ skew {
            throw .stale("manifest is \(age) s old, distribution_ttl is \(ttl) s (+\(skew) s skew)")
        }
        if let expiresAt, now > expiresAt &+ skew {
            throw .stale("JWT manifest expired \(now - expiresAt) s ago")
        }
    }

    /// The longest `distribution_ttl` or `retire_time` taken: 100 years.
    static let maxDuration: Int64 = 100 * 365 * 86_400

    private static func ttl(_ object: JSONValue) throws(TDNSError) -> Int64 {
        try duration(object, "distribution_ttl") ?? defaultTTL
    }

    private static func retireTime(_ object: JSONValue) throws(TDNSError) -> Int64? {
        let seconds = try duration(object, "retire_time")
        return seconds.flatMap { $0 > 0 ? $0 : nil }
    }

    /// A Go duration member (PROTOCOL §9.1), 0…100 years.
    private static func duration(_ object: JSONValue, _ key: String) throws(TDNSError) -> Int64? {
        guard let v = object[key] else { return nil }
        guard let text = v.stringValue else { throw .malformed("\(key) is not a string") }
        do {
            return try GoDuration.seconds(text, in: 0...maxDuration)
        } catch {
            throw .malformed("\(key): \(error.reason)")
        }
    }

    private static func uint16(_ object: JSONValue, _ key: String, required: Bool) throws(TDNSError) -> Int? {
        guard let v = object[key] else {
            if required { throw .malformed("manifest lacks \(key)") }
            return nil
        }
        guard let n = v.int64Value, n >= 0, n <= 65535 else { throw .malformed("\(key) is not a 16-bit count") }
        return Int(n)
    }

    private static func string(_ object: JSONValue, _ key: String) throws(TDNSError) -> String {
        guard let s = object[key]?.stringValue, !s.isEmpty else { throw .malformed("manifest lacks \(key)") }
        return s
    }

    private static func optionalString(_ object: JSONValue, _ key: String) throws(TDNSError) -> String? {
        guard let v = object[key] else { return nil }
        guard let s = v.stringValue else { throw .malformed("\(key) is not a string") }
        return s
    }
}
