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

    /// A comma-separated list of backends (`hpke,jose`), in the order given, without repeats;
    /// nil when a member is not a backend or the list is empty.
    public static func list(_ text: String) -> [KDCCrypto]? {
        var out: [KDCCrypto] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let c = KDCCrypto(rawValue: String(part.filter { $0 != " " }).lowercased()) else { return nil }
            if !out.contains(c) { out.append(c) }
        }
        return out.isEmpty ? nil : out
    }
}

/// The backend policy (seed "Feature Flags and Configuration"): which backends new
/// enrollments, `node add` and `node set` may use, and which one a node with keys for several
/// backends receives with unless it stated a preference. Removing a backend from `supported`
/// is the seed's rollback: no new enrollments for it, but nodes already using it keep
/// receiving with it.
public struct KDCPolicy: Codable, Sendable, Equatable {
    public var defaultCrypto: KDCCrypto
    /// Kept in `KDCCrypto.allCases` order.
    public var supportedCrypto: [KDCCrypto]

    /// What a KDC did before policies existed: HPKE first, both backends accepted.
    public static let initial = KDCPolicy(defaultCrypto: .hpke, supportedCrypto: [.hpke, .jose])

    public init(defaultCrypto: KDCCrypto, supportedCrypto: [KDCCrypto]) {
        self.defaultCrypto = defaultCrypto
        self.supportedCrypto = KDCCrypto.allCases.filter { supportedCrypto.contains($0) }
    }

    public func supports(_ c: KDCCrypto) -> Bool { supportedCrypto.contains(c) }

    /// `hpke, jose` for messages.
    public var supportedText: String { supportedCrypto.map(\.rawValue).joined(separator: ", ") }

    enum CodingKeys: String, CodingKey { case defaultCrypto = "default_crypto", supportedCrypto = "supported_crypto" }
}

/// Why a node receives with the backend it does (`KDCNode.cryptoSource`).
public enum KDCCryptoSource: String, Codable, Sendable {
    /// The node holds keys for several backends and follows the policy's default: a later
    /// `policy --default-crypto` moves it when it has a key for the new default.
    case policyDefault = "default"
    /// The node asked for it in its enrollment request (`preferred_crypto`, PROTOCOL §19).
    case preferred
    /// The enrollment package was for this backend only (`enroll generate --crypto`).
    case package
    /// Chosen by the operator (`node add --crypto`, `node set --crypto`).
    case operatorChoice = "operator"
    /// The only backend the node has a (supported) key for.
    case onlyKey = "only-key"

    /// Whether a change of the policy's default moves the node.
    public var followsDefault: Bool { self == .policyDefault || self == .onlyKey }
}

/// What a node announced it can read, in its enrollment request (`capabilities`, PROTOCOL §19).
public enum KDCCapability {
    /// The node verifies KDC ES256 signatures: the JWT manifest (Format 2, PROTOCOL §9.3)
    /// with `kdc_signing_pubkey`, comparing the bound fields.
    public static let jwsES256 = "jws-es256"
    /// The node SIG(0)-signs its confirmations with its enrolled Ed25519 key (and verifies the
    /// KDC's SIG(0) on NOTIFYs when it holds the KDC's SIG(0) key).
    public static let sig0 = "sig0"
}

/// The HPKE ciphertext layout of a legacy node's distributions (PROTOCOL §6, §21).
public enum KDCHPKELayout: String, Codable, Sendable, CaseIterable {
    /// `E ‖ E ‖ AEAD` with no `metadata.crypto`: what a Go KRS with `use_crypto_v2: false`
    /// reads (it drops the first 32 bytes) — `krs-cli enroll` writes that for HPKE-only nodes.
    case v1
    /// `E ‖ AEAD` with `metadata.crypto`.
    case v2
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
    /// Send exactly the Go KDC's format: Format 1 HMAC manifests, no signature, unsigned
    /// NOTIFYs. Decided at enrollment (legacy unless the node announced `jws-es256`, or forced
    /// by `enroll generate --legacy`), changed by `node set`.
    public var legacy: Bool
    /// The HPKE layout of legacy distributions; non-legacy nodes always get v2.
    public var hpkeLayout: KDCHPKELayout
    /// What the node announced in its enrollment request (PROTOCOL §19); [] when nothing
    /// (a Go KRS, a hand-added node).
    public var capabilities: [String]
    /// "manual" (`node add`) or "enrolled".
    public var source: String
    public var registeredAt: Int64
    /// Why `crypto` is what it is; nil in states written before policies (treated as
    /// `operator`: such a node is never moved by a policy change).
    public var cryptoSource: KDCCryptoSource?
    /// `preferred_crypto` of its enrollment request (PROTOCOL §19), when it named a backend.
    public var preferredCrypto: KDCCrypto?
    /// `supported_crypto` of its enrollment request (PROTOCOL §19), as announced.
    public var supportedCrypto: [String]?
    /// When the node last replaced its keys by re-enrollment.
    public var reenrolledAt: Int64?
    /// When `node remove` retired it: it has no keys any more, gets nothing, and its
    /// distributions and tokens are gone; the record stays so that `node list`/`show` and
    /// `status` still say what happened. `node add` or a new enrollment registers it afresh.
    public var removedAt: Int64?

    /// A node as `node add` or enrollment registers it; `hpkeLayout` and `capabilities`
    /// default to what a node that announced nothing gets (v2, []).
    public init(
        id: String, crypto: KDCCrypto, hpkePublicKey: String?, josePublicKey: String?, notifyAddress: String?,
        sig0PublicKey: String?, legacy: Bool, hpkeLayout: KDCHPKELayout = .v2, capabilities: [String] = [],
        source: String, registeredAt: Int64, cryptoSource: KDCCryptoSource? = nil
    ) {
        self.id = id
        self.crypto = crypto
        self.hpkePublicKey = hpkePublicKey
        self.josePublicKey = josePublicKey
        self.notifyAddress = notifyAddress
        self.sig0PublicKey = sig0PublicKey
        self.legacy = legacy
        self.hpkeLayout = hpkeLayout
        self.capabilities = capabilities
        self.source = source
        self.registeredAt = registeredAt
        self.cryptoSource = cryptoSource
    }

    /// Retired by `node remove`.
    public var isRemoved: Bool { removedAt != nil }

    /// The backends the node has a public key for, in `KDCCrypto.allCases` order.
    public var backendsWithKeys: [KDCCrypto] {
        KDCCrypto.allCases.filter { hasKey(for: $0) }
    }

    public func hasKey(for c: KDCCrypto) -> Bool {
        switch c {
        case .hpke: return hpkePublicKey != nil
        case .jose: return josePublicKey != nil
        }
    }

    /// Whether the node announced `capability`.
    public func announced(_ capability: String) -> Bool { capabilities.contains(capability) }

    /// The HPKE layout its distributions use: the stored one for legacy nodes, v2 otherwise.
    public var effectiveHPKELayout: KDCHPKELayout { legacy ? hpkeLayout : .v2 }

    /// Whether the KDC's NOTIFYs to the node carry its SIG(0): for non-legacy nodes, and for a
    /// node that announced `sig0` (it verifies NOTIFYs once it holds the KDC's SIG(0) key, and
    /// may refuse unsigned ones even after `node set --legacy`). A Go KRS gets the Go KDC's
    /// unsigned NOTIFY.
    public var receivesSignedNOTIFYs: Bool { !legacy || announced(KDCCapability.sig0) }

    /// Whether an unsigned confirmation must be refused: the node has a SIG(0) key here and
    /// said it signs its confirmations (PROTOCOL §19). Nodes that never sign (a Go KRS) keep
    /// the Go rule: identified by the source IP of their notify address (§10.6).
    public var requiresSignedConfirmations: Bool { sig0PublicKey != nil && announced(KDCCapability.sig0) }

    enum CodingKeys: String, CodingKey {
        case id = "node_id", crypto, hpkePublicKey = "hpke_pubkey", josePublicKey = "jose_pubkey"
        case notifyAddress = "notify_address", sig0PublicKey = "sig0_pubkey", legacy, hpkeLayout = "hpke_layout"
        case capabilities, source, registeredAt = "registered_at"
        case cryptoSource = "crypto_source", preferredCrypto = "preferred_crypto", supportedCrypto = "supported_crypto"
        case reenrolledAt = "reenrolled_at", removedAt = "removed_at"
    }

    /// States written before capabilities existed have no `hpke_layout` (= v2) and no
    /// `capabilities` (= []).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        crypto = try c.decode(KDCCrypto.self, forKey: .crypto)
        hpkePublicKey = try c.decodeIfPresent(String.self, forKey: .hpkePublicKey)
        josePublicKey = try c.decodeIfPresent(String.self, forKey: .josePublicKey)
        notifyAddress = try c.decodeIfPresent(String.self, forKey: .notifyAddress)
        sig0PublicKey = try c.decodeIfPresent(String.self, forKey: .sig0PublicKey)
        legacy = try c.decode(Bool.self, forKey: .legacy)
        hpkeLayout = try c.decodeIfPresent(KDCHPKELayout.self, forKey: .hpkeLayout) ?? .v2
        capabilities = try c.decodeIfPresent([String].self, forKey: .capabilities) ?? []
        source = try c.decode(String.self, forKey: .source)
        registeredAt = try c.decode(Int64.self, forKey: .registeredAt)
        cryptoSource = try c.decodeIfPresent(KDCCryptoSource.self, forKey: .cryptoSource)
        preferredCrypto = try c.decodeIfPresent(KDCCrypto.self, forKey: .preferredCrypto)
        supportedCrypto = try c.decodeIfPresent([String].self, forKey: .supportedCrypto)
        reenrolledAt = try c.decodeIfPresent(Int64.self, forKey: .reenrolledAt)
        removedAt = try c.decodeIfPresent(Int64.self, forKey: .removedAt)
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
    /// `enroll generate --legacy`: the node gets the Go format whatever it announces.
    public var legacy: Bool?
    /// Generated for a node that was registered at the time: using it replaces the node's keys
    /// (re-enrollment); until then the node keeps working with its old ones.
    public var reenroll: Bool?
    /// `node remove`: the token can no longer be used.
    public var revokedAt: Int64?
    /// "seed" for `enroll generate --format seed`; nil for the Go format (PROTOCOL §11.2).
    public var format: String?

    /// generated → activated → used, or expired, or revoked.
    public func state(now: Int64) -> String {
        if usedAt != nil { return "used" }
        if revokedAt != nil { return "revoked" }
        guard activatedAt != nil, let expiresAt else { return now <= validUntil ? "generated" : "expired" }
        return now <= expiresAt ? "activated" : "expired"
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", tokenHash = "token_sha256", crypto, notifyAddress = "notify_address"
        case createdAt = "created_at", activatedAt = "activated_at", expiresAt = "expires_at", usedAt = "used_at"
        case validUntil = "valid_until", packageFile = "package_file", legacy, reenroll, revokedAt = "revoked_at", format
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
    /// Created; no NOTIFY answered NOERROR yet.
    case pending
    /// The node answered a NOTIFY with NOERROR (it has queued the ID). CHUNK queries never
    /// change the state: anyone can send one.
    case notified
    /// The node's confirmation NOTIFY reported success (PROTOCOL §10.6).
    case confirmed
    /// The node reported failure (`failed_keys`), or the deadline passed unconfirmed.
    case failed
}

/// A DNSSEC key a distribution carries (one `roll_key`/`delete_key` entry, PROTOCOL §10.2).
public struct KDCKeyRef: Codable, Sendable, Equatable {
    public var zone: String
    public var keyTag: UInt16
    /// "KSK", "ZSK" or "CSK".
    public var keyType: String

    public init(zone: String, keyTag: UInt16, keyType: String) {
        self.zone = zone
        self.keyTag = keyTag
        self.keyType = keyType
    }

    /// Whether a `failed_keys` entry of a confirmation names this key (PROTOCOL §10.6: zone
    /// name, key tag in decimal).
    public func matches(_ f: KDCFailedKey) -> Bool {
        f.zoneName.lowercased() == zone && f.keyID == String(keyTag)
    }

    enum CodingKeys: String, CodingKey { case zone, keyTag = "key_tag", keyType = "key_type" }
}

/// One distribution for one node (Go `distribution_records` for one node and distribution ID).
public struct KDCDistribution: Codable, Sendable, Equatable {
    /// Lowercase hex (`fmt %x` of the counter, PROTOCOL §1).
    public var id: String
    public var nodeID: String
    /// roll_key, delete_key or ping.
    public var operation: String
    /// The zone, when every key of the distribution is of one zone.
    public var zone: String?
    /// The key tag, when the distribution carries exactly one key (what `key_tag` always was
    /// before distributions carried several keys).
    public var keyTag: UInt16?
    /// Every key the distribution carries, in payload order; [] for a ping. States written
    /// before distributions carried several keys have only `zone`/`key_tag`; ``KDCState``
    /// fills this in from them.
    public var keys: [KDCKeyRef]
    public var crypto: KDCCrypto
    /// Signed for the node: a Format 2 JWT manifest by the KDC signing key that binds the
    /// distribution ID, the node, the time and the payload hash (PROTOCOL §9.3, §19). False:
    /// the Go format (Format 1, HMAC keyed with the node's public key, §9.2).
    public var signed: Bool
    /// The HPKE layout of the ciphertext (HPKE distributions only).
    public var hpkeLayout: KDCHPKELayout?
    /// `metadata.content` (PROTOCOL §10.1).
    public var content: String
    /// Manifest `timestamp` (Format 1) or `iat` (Format 2).
    public var createdAt: Int64
    /// created_at + distribution_ttl: after it the node refuses the manifest as stale, so the
    /// KDC stops NOTIFYing and serving it and, unconfirmed, marks it failed.
    public var deadline: Int64
    /// Number of data chunks; 0 when the payload is inline.
    public var chunkCount: Int
    /// File with the prepared CHUNK RDATAs, relative to the state directory.
    public var recordsFile: String
    public var state: KDCDistributionState
    /// Why it failed, as the node reported it or as NOTIFY sending ended.
    public var reason: String?
    public var notifyAttempts: Int
    public var lastNotifyAt: Int64?
    /// How the last NOTIFY was answered: "NOERROR", "REFUSED", … or "no answer".
    public var lastNotifyResult: String?
    public var notifiedAt: Int64?
    public var confirmedAt: Int64?
    /// Keys the node reported in `failed_keys` (PROTOCOL §10.6).
    public var failedKeys: [KDCFailedKey]?
    /// How the confirming node was identified: "sig0" or "address".
    public var confirmedBy: String?
    /// Creation time in milliseconds (the start of the confirmation latency); nil in states
    /// written before metrics existed.
    public var createdAtMs: Int64?
    /// Milliseconds from creation to the node's confirmation.
    public var latencyMs: Int64?
    /// Taken back by the KDC before the node confirmed it (`node remove`, or the node
    /// re-enrolled with new keys): failed with a reason that starts `withdrawn:`, never
    /// served again, and a late confirmation does not revive it.
    public var withdrawn: Bool?
    /// The distribution this one was made again from (re-enrollment), and the one made again
    /// from this one.
    public var remadeFrom: String?
    public var remadeAs: String?

    /// A new distribution as `distribute` records it: no NOTIFY sent yet, `deadline` =
    /// `createdAt` + distribution_ttl.
    public init(
        id: String, nodeID: String, operation: String, keys: [KDCKeyRef], crypto: KDCCrypto,
        signed: Bool, hpkeLayout: KDCHPKELayout?, content: String, createdAt: Int64, deadline: Int64,
        chunkCount: Int, recordsFile: String, state: KDCDistributionState = .pending, createdAtMs: Int64? = nil
    ) {
        self.id = id
        self.nodeID = nodeID
        self.operation = operation
        self.keys = keys
        let zones = Set(keys.map(\.zone))
        self.zone = zones.count == 1 ? keys.first?.zone : nil
        self.keyTag = keys.count == 1 ? keys.first?.keyTag : nil
        self.createdAtMs = createdAtMs
        self.crypto = crypto
        self.signed = signed
        self.hpkeLayout = hpkeLayout
        self.content = content
        self.createdAt = createdAt
        self.deadline = deadline
        self.chunkCount = chunkCount
        self.recordsFile = recordsFile
        self.state = state
        self.notifyAttempts = 0
    }

    /// Not yet confirmed or failed.
    public var isLive: Bool { state == .pending || state == .notified }

    /// Live and before its deadline: NOTIFYed, and its CHUNKs served (PROTOCOL §2.7 plus §19).
    public func isServable(now: Int64) -> Bool { isLive && now < deadline }

    /// Failed because the deadline passed (not because the node reported failed keys, nor
    /// withdrawn): a late confirmation still moves it to confirmed.
    public var failedUnconfirmed: Bool { state == .failed && confirmedAt == nil && failedKeys == nil && withdrawn != true }

    /// For metrics: live, confirmed, failed or withdrawn.
    enum Outcome { case live, confirmed, failed, withdrawn }
    var outcome: Outcome {
        switch state {
        case .pending, .notified: return .live
        case .confirmed: return .confirmed
        case .failed: return withdrawn == true ? .withdrawn : .failed
        }
    }

    /// Whether the node reported the whole distribution failed (a `failed_keys` entry with
    /// key_id `*`, e.g. "cannot decrypt: no key for backend hpke").
    public var failedAsAWhole: Bool { failedKeys?.contains(where: \.failsWholeDistribution) == true }

    /// The state of each key: the distribution's, except that a failed distribution with
    /// `failed_keys` failed only those keys (the others were confirmed).
    public func keyState(_ k: KDCKeyRef) -> String {
        guard state == .failed, let failedKeys, !failedAsAWhole else { return state.rawValue }
        return failedKeys.contains { k.matches($0) } ? "failed" : "confirmed"
    }

    enum CodingKeys: String, CodingKey {
        case id = "distribution_id", nodeID = "node_id", operation, zone, keyTag = "key_tag", keys, crypto, signed
        case hpkeLayout = "hpke_layout", content, createdAt = "created_at", deadline
        case chunkCount = "chunk_count", recordsFile = "records_file", state, reason
        case notifyAttempts = "notify_attempts", lastNotifyAt = "last_notify_at", lastNotifyResult = "last_notify_result"
        case notifiedAt = "notified_at", confirmedAt = "confirmed_at", failedKeys = "failed_keys", confirmedBy = "confirmed_by"
        case createdAtMs = "created_at_ms", latencyMs = "confirmation_latency_ms", withdrawn
        case remadeFrom = "remade_from", remadeAs = "remade_as"
    }

    /// States written before deadlines existed have none: 0 here, filled in by ``KDCState``
    /// from `created_at` + the configured `distribution_ttl`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        nodeID = try c.decode(String.self, forKey: .nodeID)
        operation = try c.decode(String.self, forKey: .operation)
        let zone = try c.decodeIfPresent(String.self, forKey: .zone)
        let keyTag = try c.decodeIfPresent(UInt16.self, forKey: .keyTag)
        self.zone = zone
        self.keyTag = keyTag
        // Written before several keys: the one key (its type is not known any more).
        var legacyKeys: [KDCKeyRef] = []
        if let zone, let keyTag { legacyKeys = [KDCKeyRef(zone: zone, keyTag: keyTag, keyType: "")] }
        keys = try c.decodeIfPresent([KDCKeyRef].self, forKey: .keys) ?? legacyKeys
        crypto = try c.decode(KDCCrypto.self, forKey: .crypto)
        signed = try c.decode(Bool.self, forKey: .signed)
        hpkeLayout = try c.decodeIfPresent(KDCHPKELayout.self, forKey: .hpkeLayout)
        content = try c.decode(String.self, forKey: .content)
        createdAt = try c.decode(Int64.self, forKey: .createdAt)
        deadline = try c.decodeIfPresent(Int64.self, forKey: .deadline) ?? 0
        chunkCount = try c.decode(Int.self, forKey: .chunkCount)
        recordsFile = try c.decode(String.self, forKey: .recordsFile)
        state = try c.decode(KDCDistributionState.self, forKey: .state)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        notifyAttempts = try c.decode(Int.self, forKey: .notifyAttempts)
        lastNotifyAt = try c.decodeIfPresent(Int64.self, forKey: .lastNotifyAt)
        lastNotifyResult = try c.decodeIfPresent(String.self, forKey: .lastNotifyResult)
        notifiedAt = try c.decodeIfPresent(Int64.self, forKey: .notifiedAt)
        confirmedAt = try c.decodeIfPresent(Int64.self, forKey: .confirmedAt)
        failedKeys = try c.decodeIfPresent([KDCFailedKey].self, forKey: .failedKeys)
        confirmedBy = try c.decodeIfPresent(String.self, forKey: .confirmedBy)
        createdAtMs = try c.decodeIfPresent(Int64.self, forKey: .createdAtMs)
        latencyMs = try c.decodeIfPresent(Int64.self, forKey: .latencyMs)
        withdrawn = try c.decodeIfPresent(Bool.self, forKey: .withdrawn)
        remadeFrom = try c.decodeIfPresent(String.self, forKey: .remadeFrom)
        remadeAs = try c.decodeIfPresent(String.self, forKey: .remadeAs)
    }
}

public struct KDCFailedKey: Codable, Sendable, Equatable {
    public var zoneName: String
    public var keyID: String
    public var error: String

    /// `key_id` of a `failed_keys` entry that fails the whole distribution (PROTOCOL §19
    /// addition; its `zone_name` is ""): what a node reports when it could not open the
    /// distribution at all, e.g. `{"zone_name":"","key_id":"*","error":"backend mismatch:
    /// jose node received an hpke distribution"}`.
    public static let wildcard = "*"

    /// How the error of a wrong-backend report starts (issue 13): `backend mismatch: jose
    /// node received an hpke distribution`.
    public static let backendMismatch = "backend mismatch:"

    /// A `*` entry, or a backend mismatch: the node could not use the distribution at all.
    public var failsWholeDistribution: Bool { keyID == Self.wildcard || error.hasPrefix(Self.backendMismatch) }

    public init(zoneName: String, keyID: String, error: String) {
        self.zoneName = zoneName
        self.keyID = keyID
        self.error = error
    }

    enum CodingKeys: String, CodingKey { case zoneName = "zone_name", keyID = "key_id", error }
}

/// The whole state document.
public struct KDCState: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int
    public var config: KDCConfig
    /// Last distribution ID handed out (Go `distribution_id_sequence`); 0 before the first.
    public var lastDistributionID: Int64
    /// The backend policy; states written before policies get ``KDCPolicy/initial``.
    public var policy: KDCPolicy
    public var nodes: [KDCNode]
    public var enrollments: [KDCEnrollment]
    public var zones: [KDCZone]
    public var keys: [KDCKey]
    public var distributions: [KDCDistribution]
    /// Per-backend counters (seed "Monitoring and Observability"); kept up to date by
    /// ``add(_:)`` and ``replace(_:with:)``, so no command has to scan the distributions.
    public var metrics: KDCMetrics

    public init(config: KDCConfig) {
        version = Self.currentVersion
        self.config = config
        lastDistributionID = 0
        policy = .initial
        nodes = []
        enrollments = []
        zones = []
        keys = []
        distributions = []
        metrics = KDCMetrics()
    }

    /// The node record, removed ones included.
    public func node(_ id: String) -> KDCNode? { nodes.first { $0.id == id } }
    /// The node, unless it is not registered or was removed.
    public func activeNode(_ id: String) -> KDCNode? { nodes.first { $0.id == id && !$0.isRemoved } }
    public func distribution(_ id: String) -> KDCDistribution? { distributions.first { $0.id == id } }

    /// The next distribution ID as the Go KDC makes it (PROTOCOL §1, [NM] `GetNextDistributionID`):
    /// the first is the current Unix time, each later one the previous plus one; `%x`.
    public mutating func nextDistributionID(now: Int64) -> String {
        lastDistributionID = lastDistributionID == 0 ? now : lastDistributionID + 1
        return String(lastDistributionID, radix: 16)
    }

    /// Records a new distribution (counted as sent for its backend).
    public mutating func add(_ d: KDCDistribution) {
        distributions.append(d)
        metrics.counted(d.crypto) { $0.sent += 1 }
        metrics.transition(from: .live, to: d.outcome, of: d)
    }

    /// Replaces distribution `i`, moving the per-backend counters with its outcome (a late
    /// confirmation moves one from failed to confirmed) and recording its confirmation latency.
    public mutating func replace(_ i: Int, with d: KDCDistribution) {
        let old = distributions[i]
        distributions[i] = d
        metrics.transition(from: old.outcome, to: d.outcome, of: d)
    }

    /// Takes back live distribution `i` before the node confirmed it: failed, `withdrawn`,
    /// with `reason` (which starts "withdrawn: "). It is not served or NOTIFYed any more.
    public mutating func withdraw(_ i: Int, reason: String) {
        var d = distributions[i]
        d.state = .failed
        d.withdrawn = true
        d.reason = "withdrawn: \(reason)"
        replace(i, with: d)
    }

    enum CodingKeys: String, CodingKey {
        case version, config, lastDistributionID = "last_distribution_id", policy, nodes, enrollments, zones, keys, distributions
        case metrics
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        config = try c.decode(KDCConfig.self, forKey: .config)
        lastDistributionID = try c.decode(Int64.self, forKey: .lastDistributionID)
        policy = try c.decodeIfPresent(KDCPolicy.self, forKey: .policy) ?? .initial
        nodes = try c.decode([KDCNode].self, forKey: .nodes)
        enrollments = try c.decode([KDCEnrollment].self, forKey: .enrollments)
        zones = try c.decode([KDCZone].self, forKey: .zones)
        keys = try c.decode([KDCKey].self, forKey: .keys)
        distributions = try c.decode([KDCDistribution].self, forKey: .distributions)
        // Distributions stored before deadlines existed: the manifest's freshness, as now.
        for i in distributions.indices where distributions[i].deadline == 0 {
            distributions[i].deadline = distributions[i].createdAt + config.distributionTTL
        }
        // States written before metrics: counted once from what they hold.
        if let stored = try c.decodeIfPresent(KDCMetrics.self, forKey: .metrics) {
            metrics = stored
        } else {
            metrics = KDCMetrics()
            for n in nodes where n.source == "enrolled" { metrics.counted(n.crypto) { $0.enrollments += 1 } }
            for d in distributions {
                metrics.counted(d.crypto) { $0.sent += 1 }
                metrics.transition(from: .live, to: d.outcome, of: d)
            }
        }
    }
}
