// The KDC's state: what the Go KDC keeps in its SQL tables (nodes, bootstrap_tokens, zones,
// dnssec_keys, distribution_records, distribution_confirmations, distribution_id_sequence;
// PROTOCOL §1, §10.3, §11.1), kept here as one JSON document (`kdc.json`) that every command
// re-reads under a lock and replaces atomically (see KDCStore). Private keys are never in it:
// they live in separate files of mode 0600 that the state names.

/// Settings fixed by `init`.
public struct KDCConfig: Codable, Sendable, Equatable {
    /// Control zone, FQDN with trailing dot, lowercase (PROTOCOL §1).
    public var controlZone: String
    /// `IP:port` the DNS service listens on; also the `kdc_enrollment_address` of packages
    /// (PROTOCOL §11.2).
    public var listen: String
    /// CHUNK type code: 65288 (current tdns) or 65015 (KDC builds of Jan–Mar 2026), PROTOCOL §2.1.
    public var chunkType: UInt16
    /// `distribution_ttl` written into manifests (PROTOCOL §9.1, §13), seconds; default 5 m.
    public var distributionTTL: Int64
    /// `retire_time` written into manifests when set (PROTOCOL §9.1), seconds.
    public var retireTime: Int64?
    /// Default data chunk size (PROTOCOL §2.5); `distribute --chunk-size` overrides it.
    public var chunkSize: Int
    /// Default enrollment window (activation + window; request timestamp ± window), PROTOCOL §11.1, §13.
    public var enrollmentWindow: Int64

    enum CodingKeys: String, CodingKey {
        case controlZone = "control_zone", listen, chunkType = "chunk_type", distributionTTL = "distribution_ttl"
        case retireTime = "retire_time", chunkSize = "chunk_size", enrollmentWindow = "enrollment_window"
    }
}

/// The crypto backends (PROTOCOL §7, §8).
public enum KDCCrypto: String, Codable, Sendable, CaseIterable {
    case hpke, jose
}

/// A registered edge node (Go `nodes` table).
public struct KDCNode: Codable, Sendable, Equatable {
    /// FQDN with trailing dot, lowercase.
    public var id: String
    /// The backend distributions to this node use.
    public var crypto: KDCCrypto
    /// 64 lowercase hex (X25519), when the node has an HPKE key.
    public var hpkePublicKey: String?
    /// Public JWK JSON, when the node has a JOSE key.
    public var josePublicKey: String?
    /// `IP:port` for NOTIFYs; its IP identifies unsigned confirmations (PROTOCOL §10.6).
    public var notifyAddress: String?
    /// KEY RR text of the node's SIG(0) key (PROTOCOL §11.3), from enrollment.
    public var sig0PublicKey: String?
    /// Send exactly the Go KDC's HMAC-only distributions and unsigned NOTIFYs.
    public var legacy: Bool
    /// "manual" (`node add`) or "enrolled".
    public var source: String
    public var registeredAt: Int64

    enum CodingKeys: String, CodingKey {
        case id = "node_id", crypto, hpkePublicKey = "hpke_pubkey", josePublicKey = "jose_pubkey"
        case notifyAddress = "notify_address", sig0PublicKey = "sig0_pubkey", legacy, source
        case registeredAt = "registered_at"
    }
}

/// A one-time enrollment token (Go `bootstrap_tokens`, PROTOCOL §11.1). The token itself is
/// not kept: only its SHA-256, so a copy of the state cannot enroll anybody.
public struct KDCEnrollment: Codable, Sendable, Equatable {
    public var nodeID: String
    /// Lowercase hex SHA-256 of the 64-hex token text.
    public var tokenHash: String
    public var crypto: KDCCrypto?
    public var notifyAddress: String?
    public var createdAt: Int64
    public var activatedAt: Int64?
    public var expiresAt: Int64?
    public var usedAt: Int64?
    /// The package's `valid_until`: no activation and no use after it (PROTOCOL §19).
    public var validUntil: Int64
    /// Where the package was written.
    public var packageFile: String

    /// generated → activated → used, or expired.
    public func state(now: Int64) -> String {
        if usedAt != nil { return "used" }
        guard activatedAt != nil, let expiresAt else { return now <= validUntil ? "generated" : "expired" }
        return now <= expiresAt ? "activated" : "expired"
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", tokenHash = "token_sha256", crypto, notifyAddress = "notify_address"
        case createdAt = "created_at", activatedAt = "activated_at", expiresAt = "expires_at", usedAt = "used_at"
        case validUntil = "valid_until", packageFile = "package_file"
    }
}

public struct KDCZone: Codable, Sendable, Equatable {
    public var name: String
    public var addedAt: Int64

    enum CodingKeys: String, CodingKey { case name, addedAt = "added_at" }
}

/// A DNSSEC key held by the KDC (Go `dnssec_keys`).
public struct KDCKey: Codable, Sendable, Equatable {
    public var zone: String
    public var keyTag: UInt16
    public var algorithm: UInt8
    /// "KSK", "ZSK" or "CSK" (PROTOCOL §10.2 `key_type`).
    public var keyType: String
    /// 256 for ZSK, 257 for KSK and CSK.
    public var flags: UInt16
    /// The DNSKEY RR in miekg presentation (`zone.\t3600\tIN\tDNSKEY\t257 3 13 …`), the
    /// `public_key` of roll_key entries.
    public var dnskey: String
    /// PKCS#8 PEM file, relative to the state directory, mode 0600.
    public var privateKeyFile: String
    /// "generated" or "imported".
    public var source: String
    public var createdAt: Int64

    enum CodingKeys: String, CodingKey {
        case zone, keyTag = "key_tag", algorithm, keyType = "key_type", flags, dnskey
        case privateKeyFile = "private_key_file", source, createdAt = "created_at"
    }
}

/// Delivery state of one distribution to its node.
public enum KDCDistributionState: String, Codable, Sendable {
    /// Created; NOTIFYs not yet answered and the manifest not yet fetched.
    case pending
    /// The node answered the NOTIFY or fetched the manifest.
    case notified
    /// The node's confirmation NOTIFY reported success (PROTOCOL §10.6).
    case confirmed
    /// The node reported failure (`failed_keys`), or NOTIFY attempts ran out.
    case failed
}

/// One distribution for one node (Go `distribution_records` for one node and distribution ID).
public struct KDCDistribution: Codable, Sendable, Equatable {
    /// Lowercase hex (`fmt %x` of the counter, PROTOCOL §1).
    public var id: String
    public var nodeID: String
    /// roll_key, delete_key or ping.
    public var operation: String
    public var zone: String?
    public var keyTag: UInt16?
    public var crypto: KDCCrypto
    /// Ciphertext wrapped in the KDC's ES256 JWS (PROTOCOL §19).
    public var signed: Bool
    /// `metadata.content` (PROTOCOL §10.1).
    public var content: String
    /// Manifest `timestamp`.
    public var createdAt: Int64
    /// Number of data chunks; 0 when the payload is inline.
    public var chunkCount: Int
    /// File with the prepared CHUNK RDATAs, relative to the state directory.
    public var recordsFile: String
    public var state: KDCDistributionState
    /// Why it failed, as the node reported it or as NOTIFY sending ended.
    public var reason: String?
    public var notifyAttempts: Int
    public var lastNotifyAt: Int64?
    public var notifiedAt: Int64?
    public var confirmedAt: Int64?
    /// Keys the node reported in `failed_keys` (PROTOCOL §10.6).
    public var failedKeys: [KDCFailedKey]?
    /// How the confirming node was identified: "sig0" or "address".
    public var confirmedBy: String?

    /// Not yet confirmed or failed.
    public var isLive: Bool { state == .pending || state == .notified }

    enum CodingKeys: String, CodingKey {
        case id = "distribution_id", nodeID = "node_id", operation, zone, keyTag = "key_tag", crypto, signed, content
        case createdAt = "created_at", chunkCount = "chunk_count", recordsFile = "records_file", state, reason
        case notifyAttempts = "notify_attempts", lastNotifyAt = "last_notify_at", notifiedAt = "notified_at"
        case confirmedAt = "confirmed_at", failedKeys = "failed_keys", confirmedBy = "confirmed_by"
    }
}

public struct KDCFailedKey: Codable, Sendable, Equatable {
    public var zoneName: String
    public var keyID: String
    public var error: String

    enum CodingKeys: String, CodingKey { case zoneName = "zone_name", keyID = "key_id", error }
}

/// The whole state document.
public struct KDCState: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int
    public var config: KDCConfig
    /// Last distribution ID handed out (Go `distribution_id_sequence`); 0 before the first.
    public var lastDistributionID: Int64
    public var nodes: [KDCNode]
    public var enrollments: [KDCEnrollment]
    public var zones: [KDCZone]
    public var keys: [KDCKey]
    public var distributions: [KDCDistribution]

    public init(config: KDCConfig) {
        version = Self.currentVersion
        self.config = config
        lastDistributionID = 0
        nodes = []
        enrollments = []
        zones = []
        keys = []
        distributions = []
    }

    public func node(_ id: String) -> KDCNode? { nodes.first { $0.id == id } }
    public func distribution(_ id: String) -> KDCDistribution? { distributions.first { $0.id == id } }

    /// The next distribution ID as the Go KDC makes it (PROTOCOL §1, [NM] `GetNextDistributionID`):
    /// the first is the current Unix time, each later one the previous plus one; `%x`.
    public mutating func nextDistributionID(now: Int64) -> String {
        lastDistributionID = lastDistributionID == 0 ? now : lastDistributionID + 1
        return String(lastDistributionID, radix: 16)
    }

    enum CodingKeys: String, CodingKey {
        case version, config, lastDistributionID = "last_distribution_id", nodes, enrollments, zones, keys, distributions
    }
}
