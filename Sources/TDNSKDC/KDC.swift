#if canImport(Glibc)
import Glibc
#endif
import CryptoExtras
import TDNSCore
import TDNSCrypto
import TDNSWire
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a command produced: a JSON document for `--json`, and lines for people.
public struct KDCReport: Sendable {
    public var json: JSONValue
    public var lines: [String]
    /// Said to the operator on standard error whatever the output format (the command still
    /// succeeded).
    public var warnings: [String]

    public init(json: JSONValue, lines: [String], warnings: [String] = []) {
        self.json = json
        self.lines = lines
        self.warnings = warnings
    }
}

/// The reference KDC's operations on its state directory; the `tdns-kdc` commands are thin
/// wrappers around these. Every mutation is a read-modify-write of `kdc.json` under its lock
/// (KDCStore), so commands and a running `serve` never lose each other's changes.
public struct KDC: Sendable {
    public let store: KDCStore
    public let clock: WallClock
    public let log: KDCLog

    public init(stateDirectory: String, clock: WallClock = .system, log: KDCLog = .standardError()) {
        self.store = KDCStore(directory: POSIXFile.absolute(stateDirectory))
        self.clock = clock
        self.log = log
    }

    /// Something that changed the KDC's nodes, enrollments, policy or distributions: logged,
    /// and appended to the state directory's event log (``KDCEventLog``), because the
    /// commands that make most of these changes run outside `serve` and their standard error
    /// is gone when they exit.
    public func event(_ message: String, level: KDCLog.Level = .info) {
        switch level {
        case .info: log.info(message)
        case .warning: log.warning(message)
        case .refused: log.refused(message)
        case .error: log.error(message)
        }
        KDCEventLog(directory: store.directory).append(level: level, message, at: clock.now)
    }

    // MARK: - init

    /// `init`: the state directory, the KDC's four long-term keys, the first state.
    public func initialize(
        controlZone: String, listen: String, chunkType: UInt16 = RRType.chunk.rawValue,
        distributionTTL: Int64 = 300, enrollmentWindow: Int64 = 300,
        chunkSize: Int = DistributionBuilder.defaultChunkSize, retireTime: Int64? = nil
    ) throws(TDNSError) -> KDCReport {
        let zone = try KDCInput.fqdn(controlZone, what: "control zone")
        let address = try KDCInput.address(listen, what: "listen address")
        guard [RRType.chunk.rawValue, RRType.chunkLegacy.rawValue].contains(chunkType) else {
            throw .config("CHUNK type \(chunkType) is neither 65288 nor 65015")
        }
        guard (1...65535).contains(chunkSize) else { throw .config("chunk size \(chunkSize) is outside 1…65535") }
        guard !store.exists else { throw .config("\(store.directory) already holds a KDC (\(KDCStore.stateFile) exists)") }
        try POSIXFile.makeDirectory(store.directory, mode: 0o700)
        try POSIXFile.makeDirectory(store.path("keys"), mode: 0o700)
        try POSIXFile.makeDirectory(store.path("distributions"), mode: 0o700)
        let keys = try KDCKeys.generate()
        try keys.write(to: store, controlZone: try DNSName(zone))
        let config = KDCConfig(
            controlZone: zone, listen: address, chunkType: chunkType, distributionTTL: distributionTTL,
            retireTime: retireTime, chunkSize: chunkSize, enrollmentWindow: enrollmentWindow)
        try store.create(KDCState(config: config))
        log.info("initialized KDC for control zone \(zone) at \(address) in \(store.directory)")
        return KDCReport(
            json: .object([
                ("state", .string(store.directory)),
                ("control_zone", .string(zone)),
                ("listen", .string(address)),
                ("chunk_type", .integer(chunkType)),
                ("kdc_hpke_pubkey", .string(keys.hpke.publicKey.hex)),
                ("kdc_jose_pubkey", .string(keys.jose.publicKey.jwkJSON())),
                ("kdc_signing_pubkey", .string(keys.signing.publicKey.jwkJSON())),
                ("kdc_sig0_pubkey", .string(keys.sig0KeyLine(controlZone: try DNSName(zone)))),
            ]),
            lines: [
                "KDC initialized in \(store.directory)",
                "control zone \(zone), listening on \(address), CHUNK type \(chunkType)",
                "HPKE public key \(keys.hpke.publicKey.hex)",
            ])
    }

    public func loadKeys() throws(TDNSError) -> KDCKeys { try KDCKeys.load(from: store) }

    // MARK: - nodes

    /// `node add`: a node with pre-provisioned public keys. `legacy`: the Go format (Format 1
    /// HMAC manifests, unsigned NOTIFYs), in `hpkeLayout` (v1 exists only for Go KRSs, so it is
    /// refused without `legacy`); otherwise signed distributions (JWT manifest, PROTOCOL §9.3).
    /// `crypto` must be a backend the policy supports. A removed node's ID can be added again.
    public func addNode(
        id: String, crypto: KDCCrypto, hpkePublicKey: String?, josePublicKey: String?, notify: String?, legacy: Bool,
        hpkeLayout: KDCHPKELayout? = nil
    ) throws(TDNSError) -> KDCReport {
        let nodeID = try KDCInput.fqdn(id, what: "node ID")
        if hpkeLayout != nil && !legacy {
            throw .config("--hpke-layout needs --legacy: the v1/v2 choice exists only for Go KRSs")
        }
        let hpke = try hpkePublicKey.map { (h) throws(TDNSError) -> String in
            let hex = try KDCInput.hexKey(h, what: "--hpke-pubkey")
            do throws(TDNSError) { _ = try HPKEPublicKey(text: Array(hex.utf8)) } catch { throw .config("--hpke-pubkey: \(error.reason)") }
            return hex
        }
        let jose = try josePublicKey.map { (j) throws(TDNSError) -> String in
            do throws(TDNSError) { return try JOSEPublicKey(jwk: Array(j.utf8)).jwkJSON() } catch { throw .config("--jose-pubkey: \(error.reason)") }
        }
        switch crypto {
        case .hpke where hpke == nil: throw .config("--crypto hpke needs --hpke-pubkey")
        case .jose where jose == nil: throw .config("--crypto jose needs --jose-pubkey")
        default: break
        }
        if hpkeLayout == .v1 && crypto != .hpke {
            throw .config("--hpke-layout v1 needs --crypto hpke: the node's distributions are \(crypto.rawValue)")
        }
        let address = try notify.map { (a) throws(TDNSError) in try KDCInput.address(a, what: "--notify") }
        let node = KDCNode(
            id: nodeID, crypto: crypto, hpkePublicKey: hpke, josePublicKey: jose, notifyAddress: address,
            sig0PublicKey: nil, legacy: legacy, hpkeLayout: hpkeLayout ?? .v2, source: "manual", registeredAt: clock.now,
            cryptoSource: .operatorChoice)
        try store.update { (state) throws(TDNSError) in
            try Self.requireSupported(crypto, state.policy, for: "node add")
            if let existing = state.node(nodeID), !existing.isRemoved { throw .config("node \(nodeID) is already registered") }
            state.nodes.removeAll { $0.id == nodeID }
            state.nodes.append(node)
        }
        event("node \(nodeID) added (\(Self.formatText(node)))")
        return KDCReport(
            json: Self.nodeJSON(node),
            lines: ["node \(nodeID) added: \(Self.formatText(node))\(address.map { ", notify \($0)" } ?? "")"])
    }

    /// Refuses `crypto` when the policy does not support it (exit 2 at the command line).
    static func requireSupported(_ crypto: KDCCrypto, _ policy: KDCPolicy, for what: String) throws(TDNSError) {
        guard policy.supports(crypto) else {
            throw .config("\(what): backend \(crypto.rawValue) is not supported by this KDC's policy (supported: \(policy.supportedText); see `tdns-kdc policy`)")
        }
    }

    /// How distributions to `node` look, for people.
    static func formatText(_ node: KDCNode) -> String {
        let layout = node.crypto == .hpke ? " \(node.effectiveHPKELayout.rawValue)" : ""
        return node.legacy
            ? "\(node.crypto.rawValue)\(layout), legacy (Go format: HMAC-only, unsigned NOTIFYs)"
            : "\(node.crypto.rawValue), signed distributions (JWT manifest)"
    }

    /// `node set NODE [--crypto B] [--legacy|--signed] [--hpke-layout v1|v2]`: changes how later
    /// distributions to the node are made. `--crypto B` switches the backend of a node that
    /// has a key for B (dual enrollment, seed "Path 3") and that the policy supports; the node
    /// then stays on it whatever the policy's default (`crypto_source` operator).
    /// `--signed` for a node that never announced `jws-es256` is allowed with a warning (a Go
    /// KRS cannot read it); v1 only for legacy HPKE nodes. Distributions already made keep
    /// their format and backend.
    public func setNode(id: String, legacy: Bool?, hpkeLayout: KDCHPKELayout?, crypto: KDCCrypto? = nil) throws(TDNSError) -> KDCReport {
        let nodeID = try KDCInput.fqdn(id, what: "node ID")
        guard legacy != nil || hpkeLayout != nil || crypto != nil else {
            throw .config("node set needs --crypto, --legacy, --signed or --hpke-layout")
        }
        let (node, previous) = try store.update { (state) throws(TDNSError) -> (KDCNode, KDCCrypto) in
            guard let i = state.nodes.firstIndex(where: { $0.id == nodeID }) else {
                throw .config("node \(nodeID) is not registered")
            }
            var n = state.nodes[i]
            guard !n.isRemoved else { throw .config("node \(nodeID) was removed; `node add` or enroll it again") }
            let previous = n.crypto
            if let crypto {
                try Self.requireSupported(crypto, state.policy, for: "node set")
                guard n.hasKey(for: crypto) else {
                    let have = n.backendsWithKeys.map(\.rawValue).joined(separator: ", ")
                    throw .config("node \(nodeID) has no \(crypto.rawValue) key (keys on file: \(have.isEmpty ? "none" : have)); re-enroll it with `enroll generate \(nodeID) --crypto \(crypto.rawValue)`")
                }
                n.crypto = crypto
                n.cryptoSource = .operatorChoice
            }
            let willBeLegacy = legacy ?? n.legacy
            if let hpkeLayout {
                guard willBeLegacy else {
                    throw .config("--hpke-layout needs a legacy node (--legacy): the v1/v2 choice exists only for Go KRSs")
                }
                guard n.hpkePublicKey != nil || hpkeLayout == .v2 else {
                    throw .config("--hpke-layout v1: node \(nodeID) has no HPKE key")
                }
                n.hpkeLayout = hpkeLayout
            }
            n.legacy = willBeLegacy
            // A signed node's distributions are v2; a later --legacy states its layout again or
            // gets v2.
            if !willBeLegacy { n.hpkeLayout = .v2 }
            state.nodes[i] = n
            return (n, previous)
        }
        var warnings: [String] = []
        if !node.legacy && !node.announced(KDCCapability.jwsES256) {
            warnings.append("node \(nodeID) never announced \(KDCCapability.jwsES256): a Go KRS cannot read signed distributions (JWT manifest)")
        }
        if node.legacy && node.announced(KDCCapability.jwsES256) {
            warnings.append("node \(nodeID) announced \(KDCCapability.jwsES256): with require_signature=yes it refuses the Go format (HMAC-only manifests)")
        }
        if crypto != nil && previous != node.crypto {
            event("Node \(nodeID) switched from backend \(previous.rawValue) to backend: \(node.crypto.rawValue) (node set)")
        }
        event("node \(nodeID) set to \(Self.formatText(node))")
        return KDCReport(json: Self.nodeJSON(node), lines: ["node \(nodeID): \(Self.formatText(node))"], warnings: warnings)
    }

    // MARK: - enrollment (PROTOCOL §11.1–§11.2, §19)

    /// The file format of an enrollment package.
    public enum PackageFormat: String, Sendable, CaseIterable {
        /// PROTOCOL §11.2 (what the Go KRS and `tdns-krs enroll` read) plus the §19 members.
        case go
        /// The design document's version "2.0" package (seed "Enrollment Flow
        /// Generalization", PROTOCOL §19): `version`, `crypto`, `auth_token`,
        /// `kdc_encryption_key` (a JWK object for jose, base64 of the 32-byte X25519 key for
        /// hpke), `kdc_signing_key` (the JWK of the KDC's ES256 signing key; absent for a
        /// legacy package), `kdc_address`, `kdc_port`, `control_zone`, `valid_until`,
        /// `capabilities`, and `reenroll` for a re-enrollment. No node ID (the node takes it
        /// from `--node-id` / `node_id=`) and no KDC SIG(0) key.
        case seed
    }

    /// `enroll generate`: a token and the package file (mode 0600).
    ///
    /// Without `crypto` the package offers every backend the policy supports (its
    /// `capabilities`, and the KDC keys of those backends) and names the policy's default
    /// (`default_crypto`, a §19 member; in the seed format the package's `crypto`); with
    /// `crypto` only that backend, which the policy must support. For a node that is
    /// registered, the package is a re-enrollment: when the node enrolls with it, its public
    /// keys are replaced in one step (the node keeps working with its old keys until then, and
    /// if the re-enrollment fails or expires).
    ///
    /// `legacy`: the node gets the Go format whatever its request announces. Such a package
    /// carries no `kdc_signing_pubkey` and (Go format) no `kdc_sig0_pubkey`: a node holding
    /// them would require signatures this KDC will not make for it.
    public func generateEnrollment(
        nodeID id: String, out: String, crypto: KDCCrypto?, notify: String?, validFor: Int64 = 7 * 86_400,
        legacy: Bool = false, format: PackageFormat = .go
    ) throws(TDNSError) -> KDCReport {
        let nodeID = try KDCInput.fqdn(id, what: "node ID")
        let address = try notify.map { (a) throws(TDNSError) in try KDCInput.address(a, what: "--notify") }
        guard validFor > 0 else { throw .config("--valid-for must be positive") }
        let keys = try loadKeys()
        let state = try store.load()
        let policy = state.policy
        if let crypto { try Self.requireSupported(crypto, policy, for: "enroll generate") }
        let zone = try DNSName(state.config.controlZone)
        var token = Self.randomBytes(32)
        defer { zeroize(&token) }
        let tokenHex = Hex.encode(token)
        let now = clock.now
        let validUntil = now + validFor
        let backends: [KDCCrypto] = crypto.map { [$0] } ?? policy.supportedCrypto
        let preferred = crypto ?? policy.defaultCrypto
        let enrolled = state.activeNode(nodeID)

        var members: [(String, JSONValue)]
        switch format {
        case .go:
            members = [
                ("token", .string(tokenHex)),
                ("node_id", .string(nodeID)),
                ("kdc_hpke_pubkey", .string(backends.contains(.hpke) ? keys.hpke.publicKey.hex : "")),
                ("kdc_jose_pubkey", .string(backends.contains(.jose) ? Base64.encode(Array(keys.jose.publicKey.jwkJSON().utf8)) : "")),
                ("kdc_enrollment_address", .string(state.config.listen)),
                ("control_zone", .string(state.config.controlZone)),
            ]
            if !legacy {
                let signingJWK = try JSONValue.parse(Array(keys.signing.publicKey.jwkJSON().utf8))
                members += [
                    ("kdc_signing_pubkey", signingJWK),
                    ("kdc_sig0_pubkey", .string(keys.sig0KeyLine(controlZone: zone))),
                ]
            }
            members += [
                ("valid_until", .string(RFC3339.format(validUntil))),
                ("version", .string("2.0")),
                ("capabilities", .array(backends.map { .string($0.rawValue) })),
                // PROTOCOL §19 (issue 13): what the node may make keys for, and the policy's
                // default when the operator did not fix one backend. A Go KRS ignores both.
                ("supported_crypto", .array(backends.map { .string($0.rawValue) })),
            ]
            if crypto == nil { members.append(("default_crypto", .string(preferred.rawValue))) }
            if enrolled != nil { members.append(("reenroll", .bool(true))) }
        case .seed:
            guard let (host, port) = KDCInput.splitAddress(state.config.listen) else {
                throw .config("the KDC's listen address \(state.config.listen) is not IP:port")
            }
            let encryptionKey: JSONValue = preferred == .jose
                ? try JSONValue.parse(Array(keys.jose.publicKey.jwkJSON().utf8))
                : .string(Base64.encode(keys.hpke.publicKey.rawRepresentation))
            members = [
                ("version", .string("2.0")),
                ("crypto", .string(preferred.rawValue)),
                ("auth_token", .string(tokenHex)),
                ("kdc_encryption_key", encryptionKey),
            ]
            // The KDC's ES256 key (JWK object) that signs the node's distributions; left out
            // for a legacy node, which gets HMAC-only distributions it must not refuse. The
            // KDC's SIG(0) key has no place in this format (the node then does not require
            // signed NOTIFYs unless configured with it).
            if !legacy {
                members.append(("kdc_signing_key", try JSONValue.parse(Array(keys.signing.publicKey.jwkJSON().utf8))))
            }
            members += [
                ("kdc_address", .string(host)),
                ("kdc_port", .integer(port)),
                ("control_zone", .string(state.config.controlZone)),
                ("valid_until", .string(RFC3339.format(validUntil))),
                ("capabilities", .array(backends.map { .string($0.rawValue) })),
            ]
            if enrolled != nil { members.append(("reenroll", .bool(true))) }
        }
        var json = JSONValue.object(members).serialized(escapeHTML: true)
        defer { zeroize(&json) }
        var file = Base64.encodeBytes(json) + [0x0A]
        defer { zeroize(&file) }
        let path = POSIXFile.absolute(out)
        try POSIXFile.writeAtomically(path, bytes: file, mode: 0o600)

        let enrollment = KDCEnrollment(
            nodeID: nodeID, tokenHash: Hex.encode(Digests.sha256(Array(tokenHex.utf8))), crypto: crypto,
            notifyAddress: address, createdAt: now, activatedAt: nil, expiresAt: nil, usedAt: nil, validUntil: validUntil,
            packageFile: path, legacy: legacy ? true : nil, reenroll: enrolled != nil ? true : nil,
            format: format == .seed ? "seed" : nil)
        try store.update { (state) throws(TDNSError) in
            // Checked again under the lock: the policy may have changed meanwhile.
            if let crypto { try Self.requireSupported(crypto, state.policy, for: "enroll generate") }
            // A new package replaces the node's earlier unused ones.
            state.enrollments.removeAll { $0.nodeID == nodeID && $0.usedAt == nil && $0.revokedAt == nil }
            state.enrollments.append(enrollment)
        }
        let offered = backends.map(\.rawValue).joined(separator: ", ")
        let what = enrolled != nil ? "re-enrollment package" : "enrollment package"
        var lines = ["\(what) for \(nodeID) written to \(path) (\(format == .seed ? "seed format, " : "")backends offered: \(offered); default: \(preferred.rawValue))"]
        if let enrolled {
            lines.append("\(nodeID) is enrolled (receiving with \(enrolled.crypto.rawValue)); when it enrolls with this package its keys are replaced, until then it keeps its old ones")
        }
        lines.append("activate it with: tdns-kdc enroll activate \(nodeID)")
        event("\(what) for \(nodeID) written to \(path) (backends offered: \(offered); default: \(preferred.rawValue)\(legacy ? "; legacy" : "")) (not active until `enroll activate`)")
        return KDCReport(
            json: .object([
                ("node_id", .string(nodeID)), ("package", .string(path)), ("state", .string("generated")),
                ("valid_until", .string(RFC3339.format(validUntil))),
                ("capabilities", .array(backends.map { .string($0.rawValue) })),
                ("default_crypto", .string(preferred.rawValue)),
                ("legacy", .bool(legacy)), ("reenroll", .bool(enrolled != nil)), ("format", .string(format.rawValue)),
            ]),
            lines: lines)
    }

    /// `enroll activate`: the node's latest unused token becomes valid for `window` seconds
    /// (PROTOCOL §11.1), never beyond the package's `valid_until`.
    public func activateEnrollment(nodeID id: String, window: Int64?) throws(TDNSError) -> KDCReport {
        let nodeID = try KDCInput.fqdn(id, what: "node ID")
        let now = clock.now
        let enrollment = try store.update { (state) throws(TDNSError) -> KDCEnrollment in
            let w = window ?? state.config.enrollmentWindow
            guard w > 0 else { throw .config("--window must be positive") }
            guard let i = state.enrollments.lastIndex(where: { $0.nodeID == nodeID && $0.usedAt == nil && $0.revokedAt == nil }) else {
                throw .config("no unused enrollment for \(nodeID); run `enroll generate` first")
            }
            var e = state.enrollments[i]
            guard now <= e.validUntil else { throw .config("the enrollment package of \(nodeID) expired; generate a new one") }
            e.activatedAt = now
            e.expiresAt = min(now + w, e.validUntil)
            state.enrollments[i] = e
            return e
        }
        let expires = enrollment.expiresAt ?? now
        log.info("enrollment of \(enrollment.nodeID) active until \(RFC3339.format(expires))")
        return KDCReport(
            json: .object([
                ("node_id", .string(nodeID)), ("state", .string("activated")),
                ("activated_at", .string(RFC3339.format(now))), ("expires_at", .string(RFC3339.format(expires))),
            ]),
            lines: ["enrollment of \(nodeID) active until \(RFC3339.format(expires))"])
    }

    // MARK: - zones and DNSSEC keys

    public func addZone(_ name: String) throws(TDNSError) -> KDCReport {
        let zone = try KDCInput.fqdn(name, what: "zone")
        let now = clock.now
        try store.update { (state) throws(TDNSError) in
            guard !state.zones.contains(where: { $0.name == zone }) else { throw .config("zone \(zone) already exists") }
            state.zones.append(KDCZone(name: zone, addedAt: now))
        }
        log.info("zone \(zone) added")
        return KDCReport(json: .object([("zone", .string(zone))]), lines: ["zone \(zone) added"])
    }

    /// `key generate`: algorithms 13, 14, 15 (swift-crypto) and 8 (RSA 2048, as the Go KDC
    /// generates it; [Z] keygen.go).
    public func generateKey(zone name: String, algorithm: UInt8, keyType: String) throws(TDNSError) -> KDCReport {
        let zone = try KDCInput.fqdn(name, what: "zone")
        let (type, flags) = try Self.keyType(keyType)
        let alg = DNSSECAlgorithm(rawValue: algorithm)
        let key: DNSSECPrivateKey
        switch alg {
        case .ecdsap256sha256, .ecdsap384sha384, .ed25519:
            key = try DNSSECPrivateKey.generate(algorithm: alg)
        case .rsasha256:
            do {
                var der = Array(try _RSA.Signing.PrivateKey(keySize: .bits2048).pkcs8DERRepresentation)
                defer { zeroize(&der) }
                key = try DNSSECPrivateKey(pkcs8DER: der, algorithm: alg)
            } catch let error as TDNSError {
                throw error
            } catch {
                throw .internalFailure("RSA key generation failed")
            }
        default:
            throw .config("--algorithm \(algorithm) is not one of 13, 15, 8, 14")
        }
        return try addKey(key, zone: zone, type: type, flags: flags, source: "generated")
    }

    /// `key import`: a BIND `.private` file. The key type comes from `keyType`, else from the
    /// flags of the `.key` file beside it, else ZSK.
    public func importKey(zone name: String, file: String, keyType: String?) throws(TDNSError) -> KDCReport {
        let zone = try KDCInput.fqdn(name, what: "zone")
        var text: [UInt8]
        do {
            text = try POSIXFile.read(file, limit: 65536)
        } catch {
            throw .config("cannot read \(file): \(error.reason)")
        }
        defer { zeroize(&text) }
        let key: DNSSECPrivateKey
        do {
            key = try DNSSECPrivateKey(bindPrivateKey: text)
        } catch {
            throw .config("\(file): \(error.reason)")
        }
        var type = "ZSK"
        var flags: UInt16 = 256
        let keyFile = file.hasSuffix(".private") ? String(file.dropLast(".private".count)) + ".key" : ""
        if let keyType {
            (type, flags) = try Self.keyType(keyType)
        } else if !keyFile.isEmpty, POSIXFile.exists(keyFile) {
            let lines = String(decoding: try POSIXFile.read(keyFile, limit: 65536), as: UTF8.self).split(separator: "\n")
            if let rr = lines.first(where: { !$0.hasPrefix(";") && !$0.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) }) {
                // dnssec-keygen writes `owner IN DNSKEY …` without a TTL.
                let rrLine: ResourceRecord
                let record: DNSKEYRecord
                do throws(TDNSError) {
                    rrLine = try ResourceRecord(presentation: String(rr), defaultTTL: 3600)
                    guard rrLine.type == .dnskey else { throw TDNSError.malformed("not a DNSKEY record") }
                    record = try DNSKEYRecord(rdata: rrLine.rdata)
                } catch {
                    throw .config("\(keyFile): \(error.reason)")
                }
                guard record.publicKey == key.dnskeyPublicKey, record.algorithm == key.algorithm.rawValue else {
                    throw .config("\(keyFile) holds another key than \(file)")
                }
                guard rrLine.name.canonical.description == zone else {
                    throw .config("\(keyFile) is for \(rrLine.name), not \(zone)")
                }
                flags = record.flags
                type = flags & 1 == 1 ? "KSK" : "ZSK"
            }
        }
        return try addKey(key, zone: zone, type: type, flags: flags, source: "imported")
    }

    private func addKey(_ key: DNSSECPrivateKey, zone: String, type: String, flags: UInt16, source: String) throws(TDNSError) -> KDCReport {
        let tag = key.keyTag(flags: flags)
        let alg = key.algorithm.rawValue
        let owner = try DNSName(zone)
        let dnskey = DNSKEYRecord(flags: flags, algorithm: alg, publicKey: key.dnskeyPublicKey).presentationLine(owner: owner, ttl: 3600)
        let relative = "keys/K\(zone)+\(Self.pad(Int(alg), 3))+\(Self.pad(Int(tag), 5)).pem"
        let entry = KDCKey(
            zone: zone, keyTag: tag, algorithm: alg, keyType: type, flags: flags, dnskey: dnskey,
            privateKeyFile: relative, source: source, createdAt: clock.now)
        try store.update { (state) throws(TDNSError) in
            guard state.zones.contains(where: { $0.name == zone }) else {
                throw .config("zone \(zone) does not exist; add it with `zone add \(zone)`")
            }
            guard !state.keys.contains(where: { $0.zone == zone && $0.keyTag == tag }) else {
                throw .config("zone \(zone) already has a key with tag \(tag)")
            }
            var pem = key.pkcs8PEM()
            defer { zeroize(&pem) }
            try store.writeSecret(relative, pem)
            state.keys.append(entry)
        }
        log.info("\(source) \(type) \(tag) (algorithm \(alg)) for \(zone)")
        return KDCReport(json: Self.keyJSON(entry), lines: ["\(source) \(type) for \(zone): key tag \(tag), algorithm \(alg)", dnskey])
    }

    static func keyType(_ text: String) throws(TDNSError) -> (String, UInt16) {
        switch text.lowercased() {
        case "ksk": return ("KSK", 257)
        case "zsk": return ("ZSK", 256)
        case "csk": return ("CSK", 257)
        default: throw .config("key type \"\(text.prefix(16))\" is not ksk, zsk or csk")
        }
    }

    // MARK: - distributions

    /// Which nodes a `distribute` targets.
    public enum Target: Sendable {
        case node(String)
        case all
    }

    /// `distribute`: one distribution per targeted node, prepared now (so the manifest
    /// timestamp is the creation time and every answer is the same), stored `pending`. A
    /// running `serve` picks them up and sends the NOTIFYs.
    ///
    /// What it carries (PROTOCOL §10.2): `--zone Z --key TAG` that key; `--zone Z` every key
    /// of Z (KSK and ZSK, in one distribution); `allZones` every key of every zone, in one
    /// distribution per node; a ping nothing but the ping. delete_key names one key: it
    /// needs `--key` when the zone has several (deleting all of a zone's keys at once is never
    /// what an operator means by leaving the option out). The manifest counts are true:
    /// `zone_count` distinct zones, `key_count` keys, `operation_count` entries (§9.1, §9.3).
    public func distribute(
        target: Target, zone zoneName: String?, keyTag: UInt16?, operation: KDCOperation, chunkSize: Int?,
        allZones: Bool = false
    ) throws(TDNSError) -> KDCReport {
        let zone = try zoneName.map { (z) throws(TDNSError) in try KDCInput.fqdn(z, what: "zone") }
        if allZones && zone != nil { throw .config("give --zone ZONE or --all-zones, not both") }
        if allZones && keyTag != nil { throw .config("--key TAG needs --zone ZONE, not --all-zones") }
        if keyTag != nil && zone == nil && operation != .ping { throw .config("--key TAG needs --zone ZONE") }
        if operation == .ping && (allZones || keyTag != nil) { throw .config("ping carries no keys: leave out --zone, --key and --all-zones") }
        if operation != .ping && zone == nil && !allZones {
            throw .config("--zone ZONE (or --all-zones) is required for \(operation.rawValue)")
        }
        if operation == .deleteKey && allZones { throw .config("delete_key needs --zone ZONE --key TAG: --all-zones would delete every key") }
        let targetID = try { () throws(TDNSError) -> String? in
            if case .node(let id) = target { return try KDCInput.fqdn(id, what: "node ID") }
            return nil
        }()
        let keys = try loadKeys()
        let now = clock.now
        let nowMs = clock.nowMilliseconds
        var warnings: [String] = []
        let created = try store.update { (state) throws(TDNSError) -> [KDCDistribution] in
            let size = chunkSize ?? state.config.chunkSize
            guard (1...65535).contains(size) else { throw .config("--chunk-size \(size) is outside 1…65535") }
            let nodes: [KDCNode]
            if let targetID {
                guard let n = state.node(targetID) else { throw .config("node \(targetID) is not registered") }
                guard !n.isRemoved else { throw .config("node \(targetID) was removed") }
                nodes = [n]
            } else {
                nodes = state.nodes.filter { !$0.isRemoved }
                guard !nodes.isEmpty else { throw .config("no nodes are registered") }
            }
            var selected: [KDCKey] = []
            if operation != .ping {
                if let zone {
                    guard state.zones.contains(where: { $0.name == zone }) else { throw .config("zone \(zone) does not exist") }
                    selected = state.keys.filter { $0.zone == zone && (keyTag == nil || $0.keyTag == keyTag) }
                    if let keyTag, selected.isEmpty { throw .config("zone \(zone) has no key with tag \(keyTag)") }
                    if selected.isEmpty { throw .config("zone \(zone) has no keys; `key generate` or `key import` one") }
                    if operation == .deleteKey && selected.count > 1 {
                        throw .config("zone \(zone) has \(selected.count) keys; name the one to delete with --key TAG")
                    }
                } else {
                    selected = state.keys
                    if selected.isEmpty { throw .config("no zone has keys; `key generate` or `key import` one") }
                }
                selected = Self.payloadOrder(selected, zones: state.zones)
            }
            warnings = Self.goKRSWarnings(selected, nodes: nodes, operation: operation)
            var pems: [String: [UInt8]] = [:]
            defer { for k in Array(pems.keys) { zeroize(&pems[k, default: []]) } }
            if operation == .rollKey {
                for key in selected where pems[key.privateKeyFile] == nil {
                    pems[key.privateKeyFile] = try store.read(key.privateKeyFile, limit: 65536)
                }
            }
            var made: [KDCDistribution] = []
            made.reserveCapacity(nodes.count)
            for node in nodes {
                let d = try makeDistribution(
                    &state, for: node, operation: operation, keys: selected, pems: pems, now: now, nowMs: nowMs,
                    chunkSize: size, kdcKeys: keys)
                made.append(d)
            }
            return made
        }
        for d in created { logCreated(d) }
        return KDCReport(
            json: .object([("distributions", .array(created.map(Self.distributionJSON)))]),
            lines: created.map { "\($0.id) \($0.nodeID) \($0.operation)\(Self.keysText($0)) \($0.crypto.rawValue) \($0.chunkCount == 0 ? "inline" : "\($0.chunkCount) chunks")" },
            warnings: warnings)
    }

    /// The log lines of a new distribution: the seed's shape, then the details.
    func logCreated(_ d: KDCDistribution) {
        event("Distribution \(d.id) created for \(d.nodeID) using \(d.crypto.rawValue)")
        log.info("distribution \(d.id) for \(d.nodeID): \(d.operation)\(Self.keysText(d)) (\(d.crypto.rawValue)\(d.hpkeLayout.map { " \($0.rawValue)" } ?? ""), \(d.signed ? "signed JWT manifest" : "Go format, HMAC-only"), \(d.chunkCount == 0 ? "inline" : "\(d.chunkCount) chunks"), deadline \(RFC3339.format(d.deadline)))")
    }

    /// ` 12345` for one key, ` 2 keys (example.com. 12345 KSK, 23456 ZSK)` for several.
    static func keysText(_ d: KDCDistribution) -> String {
        if d.keys.isEmpty { return "" }
        if d.keys.count == 1, let k = d.keys.first { return " \(k.keyTag)" }
        let zones = Set(d.keys.map(\.zone)).count
        return " \(d.keys.count) keys in \(zones) zone\(zones == 1 ? "" : "s")"
    }

    /// Entries in the order a Go KRS handles best (PROTOCOL §10.3): zone by zone (in the order
    /// they were added), KSK/CSK before ZSK, oldest key first — a Go KRS keeps the last
    /// roll_key of each kind per zone active, so the newest one is last.
    static func payloadOrder(_ keys: [KDCKey], zones: [KDCZone]) -> [KDCKey] {
        var zoneRank: [String: Int] = [:]
        for (i, z) in zones.enumerated() { zoneRank[z.name] = i }
        return keys.sorted { a, b in
            let za = zoneRank[a.zone] ?? Int.max, zb = zoneRank[b.zone] ?? Int.max
            if za != zb { return za < zb }
            if a.zone != b.zone { return a.zone < b.zone }
            let ka = a.flags & 1, kb = b.flags & 1
            if ka != kb { return ka > kb }
            if a.createdAt != b.createdAt { return a.createdAt < b.createdAt }
            return a.keyTag < b.keyTag
        }
    }

    /// A Go KRS keeps one active KSK and one ZSK per zone: of several roll_key entries of one
    /// kind for one zone only the last stays in use there (PROTOCOL §10.3). Said once per
    /// distribute when a legacy node is among the targets.
    static func goKRSWarnings(_ keys: [KDCKey], nodes: [KDCNode], operation: KDCOperation) -> [String] {
        guard operation == .rollKey, nodes.contains(where: \.legacy) else { return [] }
        var groups: [String: [KDCKey]] = [:]
        var order: [String] = []
        for k in keys {
            let g = "\(k.zone) \(k.flags & 1 == 1 ? "KSK" : "ZSK")"
            if groups[g] == nil { order.append(g) }
            groups[g, default: []].append(k)
        }
        return order.compactMap { g in
            guard let list = groups[g], list.count > 1, let last = list.last else { return nil }
            return "\(g)s: \(list.count) keys; a legacy node (Go KRS) keeps only the last one (\(last.keyTag)) in use (PROTOCOL §10.3)"
        }
    }

    /// Builds one distribution of `keys` (or a ping) for `node`, writes its records and adds
    /// it to `state` (counted as sent). Called under the state lock: by `distribute`, and by
    /// re-enrollment to make a node's live distributions again for its new keys.
    func makeDistribution(
        _ state: inout KDCState, for node: KDCNode, operation: KDCOperation, keys selected: [KDCKey],
        pems: [String: [UInt8]], now: Int64, nowMs: Int64, chunkSize size: Int, kdcKeys: KDCKeys
    ) throws(TDNSError) -> KDCDistribution {
        let recipient = try Self.recipient(node)
        let id = state.nextDistributionID(now: now)
        var entries: [JSONValue] = []
        switch operation {
        case .rollKey:
            for key in selected {
                guard let pem = pems[key.privateKeyFile] else { throw .internalFailure("roll_key without the private key of \(key.keyTag)") }
                entries.append(DistributionEntries.rollKey(
                    zone: key.zone, keyTag: key.keyTag, keyType: key.keyType, algorithm: key.algorithm,
                    flags: key.flags, dnskey: key.dnskey, privateKeyPEM: pem))
            }
        case .deleteKey:
            for key in selected {
                entries.append(DistributionEntries.deleteKey(zone: key.zone, keyTag: key.keyTag, crypto: node.crypto, reason: "deleted by the KDC operator"))
            }
        case .ping:
            entries = [DistributionEntries.ping(nonce: Self.randomBytes(32), timestamp: now, crypto: node.crypto)]
        }
        guard !entries.isEmpty else { throw .internalFailure("a distribution without entries") }
        let layout: KDCHPKELayout? = node.crypto == .hpke ? node.effectiveHPKELayout : nil
        let prepared = try DistributionBuilder.build(DistributionBuilder.Request(
            distributionID: id, recipient: recipient, content: operation.content, entries: entries,
            zoneCount: Set(selected.map(\.zone)).count, keyCount: selected.count, timestamp: now,
            ttl: state.config.distributionTTL, retireTime: state.config.retireTime, chunkSize: size,
            signer: node.legacy ? nil : kdcKeys.signing, issuer: state.config.controlZone,
            hpkeLayout: layout ?? .v2))
        let file = try store.writeRecords(distributionID: id, nodeID: node.id, records: prepared.records)
        let d = KDCDistribution(
            id: id, nodeID: node.id, operation: operation.rawValue,
            keys: selected.map { KDCKeyRef(zone: $0.zone, keyTag: $0.keyTag, keyType: $0.keyType) }, crypto: node.crypto,
            signed: !node.legacy, hpkeLayout: layout, content: operation.content, createdAt: now,
            deadline: now + state.config.distributionTTL, chunkCount: prepared.chunkCount, recordsFile: file, createdAtMs: nowMs)
        state.add(d)
        return d
    }

    /// The recipient keys of a node, parsed.
    static func recipient(_ node: KDCNode) throws(TDNSError) -> DistributionBuilder.Recipient {
        let hpke = try node.hpkePublicKey.map { (h) throws(TDNSError) in try HPKEPublicKey(text: Array(h.utf8)) }
        let jose = try node.josePublicKey.map { (j) throws(TDNSError) in try JOSEPublicKey(jwk: Array(j.utf8)) }
        return DistributionBuilder.Recipient(nodeID: node.id, crypto: node.crypto, hpke: hpke, jose: jose)
    }

    // MARK: - status

    public func status(node id: String?) throws(TDNSError) -> KDCReport {
        let nodeID = try id.map { (n) throws(TDNSError) in try KDCInput.fqdn(n, what: "node ID") }
        let state = try store.load()
        let now = clock.now
        if let nodeID, state.node(nodeID) == nil, !state.enrollments.contains(where: { $0.nodeID == nodeID }) {
            throw .config("node \(nodeID) is not known")
        }
        let nodes = state.nodes.filter { nodeID == nil || $0.id == nodeID }
        let enrollments = state.enrollments.filter { nodeID == nil || $0.nodeID == nodeID }
        let dists = state.distributions.filter { nodeID == nil || $0.nodeID == nodeID }
        let latest = Self.latestEnrollments(state.enrollments)
        var lines = ["control zone \(state.config.controlZone), listening on \(state.config.listen)"]
        lines.append("policy: default \(state.policy.defaultCrypto.rawValue), supported \(state.policy.supportedText)")
        lines.append("nodes: \(nodes.count)")
        for n in nodes {
            let layout = n.legacy && n.crypto == .hpke ? " \(n.hpkeLayout.rawValue)" : ""
            if n.isRemoved {
                lines.append("  \(n.id) removed \(n.removedAt.map(RFC3339.format) ?? "")")
            } else {
                lines.append("  \(n.id) \(n.crypto.rawValue) \(n.source)\(n.legacy ? " legacy\(layout)" : " signed") notify \(n.notifyAddress ?? "-")")
            }
        }
        lines.append("enrollments: \(enrollments.count)")
        for e in enrollments {
            lines.append("  \(e.nodeID) \(e.state(now: now))\(e.reenroll == true ? " (re-enrollment)" : "")\(e.expiresAt.map { " until \(RFC3339.format($0))" } ?? "")")
        }
        lines.append("distributions: \(dists.count)")
        for d in dists {
            let due = d.isLive ? " until \(RFC3339.format(d.deadline))" : ""
            lines.append("  \(d.id) \(d.nodeID) \(d.operation)\(Self.keysText(d)) \(d.crypto.rawValue) \(d.state.rawValue)\(due)\(d.reason.map { " (\($0))" } ?? "")")
        }
        lines.append("metrics:")
        lines += state.metrics.lines()
        return KDCReport(
            json: .object([
                ("control_zone", .string(state.config.controlZone)),
                ("listen", .string(state.config.listen)),
                ("policy", Self.policyJSON(state.policy)),
                ("nodes", .array(nodes.map { n in
                    var j = Self.nodeJSON(n)
                    if case .object(var m) = j, let e = latest[n.id] {
                        m.append(("enrollment", .string(e.state(now: now))))
                        j = .object(m)
                    }
                    return j
                })),
                ("enrollments", .array(enrollments.map { Self.enrollmentJSON($0, now: now) })),
                ("zones", .array(state.zones.map { .string($0.name) })),
                ("keys", .array(state.keys.map(Self.keyJSON))),
                ("distributions", .array(dists.map(Self.distributionJSON))),
                ("metrics", state.metrics.json()),
            ]),
            lines: lines)
    }

    /// The latest enrollment of each node (one pass).
    static func latestEnrollments(_ all: [KDCEnrollment]) -> [String: KDCEnrollment] {
        var out: [String: KDCEnrollment] = [:]
        for e in all { out[e.nodeID] = e }
        return out
    }

    // MARK: - JSON views

    static func policyJSON(_ p: KDCPolicy) -> JSONValue {
        .object([
            ("default_crypto", .string(p.defaultCrypto.rawValue)),
            ("supported_crypto", .array(p.supportedCrypto.map { .string($0.rawValue) })),
        ])
    }

    static func enrollmentJSON(_ e: KDCEnrollment, now: Int64) -> JSONValue {
        var m: [(String, JSONValue)] = [("node_id", .string(e.nodeID)), ("state", .string(e.state(now: now))),
                                         ("created_at", .string(RFC3339.format(e.createdAt)))]
        if let c = e.crypto { m.append(("crypto", .string(c.rawValue))) }
        if e.reenroll == true { m.append(("reenroll", .bool(true))) }
        if let f = e.format { m.append(("format", .string(f))) }
        if let a = e.activatedAt { m.append(("activated_at", .string(RFC3339.format(a)))) }
        if let x = e.expiresAt { m.append(("expires_at", .string(RFC3339.format(x)))) }
        if let u = e.usedAt { m.append(("used_at", .string(RFC3339.format(u)))) }
        if let r = e.revokedAt { m.append(("revoked_at", .string(RFC3339.format(r)))) }
        return .object(m)
    }

    static func nodeJSON(_ n: KDCNode) -> JSONValue {
        var m: [(String, JSONValue)] = [
            ("node_id", .string(n.id)), ("state", .string(n.isRemoved ? "removed" : "active")),
            ("crypto", .string(n.crypto.rawValue)), ("crypto_source", .string((n.cryptoSource ?? .operatorChoice).rawValue)),
            ("keys_on_file", .array(n.backendsWithKeys.map { .string($0.rawValue) } + (n.sig0PublicKey != nil ? [.string("sig0")] : []))),
            ("legacy", .bool(n.legacy)),
            ("hpke_layout", .string(n.hpkeLayout.rawValue)), ("capabilities", .array(n.capabilities.map { .string($0) })),
            ("source", .string(n.source)), ("registered_at", .string(RFC3339.format(n.registeredAt))),
        ]
        if let p = n.preferredCrypto { m.append(("preferred_crypto", .string(p.rawValue))) }
        if let s = n.supportedCrypto { m.append(("supported_crypto", .array(s.map { .string($0) }))) }
        if let r = n.reenrolledAt { m.append(("reenrolled_at", .string(RFC3339.format(r)))) }
        if let r = n.removedAt { m.append(("removed_at", .string(RFC3339.format(r)))) }
        if let a = n.notifyAddress { m.append(("notify_address", .string(a))) }
        if let h = n.hpkePublicKey { m.append(("hpke_pubkey", .string(h))) }
        if let j = n.josePublicKey { m.append(("jose_pubkey", .string(j))) }
        if let s = n.sig0PublicKey { m.append(("sig0_pubkey", .string(s))) }
        return .object(m)
    }

    static func keyJSON(_ k: KDCKey) -> JSONValue {
        .object([
            ("zone", .string(k.zone)), ("key_tag", .integer(k.keyTag)), ("algorithm", .integer(k.algorithm)),
            ("key_type", .string(k.keyType)), ("flags", .integer(k.flags)), ("dnskey", .string(k.dnskey)),
            ("source", .string(k.source)),
        ])
    }

    /// A distribution for `--json`. `zone` when all its keys are of one zone, `key_tag` when it
    /// carries exactly one key (as before distributions carried several), and always `keys`
    /// (each with its own state: a failed distribution failed only the keys the node listed)
    /// with `key_count` and `zone_count`.
    static func distributionJSON(_ d: KDCDistribution) -> JSONValue {
        var m: [(String, JSONValue)] = [
            ("distribution_id", .string(d.id)), ("node_id", .string(d.nodeID)), ("operation", .string(d.operation)),
        ]
        if let z = d.zone { m.append(("zone", .string(z))) }
        if let t = d.keyTag { m.append(("key_tag", .integer(t))) }
        m += [
            ("key_count", .integer(d.keys.count)), ("zone_count", .integer(Set(d.keys.map(\.zone)).count)),
            ("keys", .array(d.keys.map { k in
                var km: [(String, JSONValue)] = [("zone", .string(k.zone)), ("key_tag", .integer(k.keyTag))]
                if !k.keyType.isEmpty { km.append(("key_type", .string(k.keyType))) }
                km.append(("state", .string(d.keyState(k))))
                return .object(km)
            })),
            ("crypto", .string(d.crypto.rawValue)), ("signed", .bool(d.signed)),
        ]
        if let l = d.hpkeLayout { m.append(("hpke_layout", .string(l.rawValue))) }
        m += [
            ("content", .string(d.content)), ("chunk_count", .integer(d.chunkCount)), ("state", .string(d.state.rawValue)),
            ("created_at", .string(RFC3339.format(d.createdAt))), ("deadline", .string(RFC3339.format(d.deadline))),
            ("notify_attempts", .integer(d.notifyAttempts)),
        ]
        if let t = d.lastNotifyAt { m.append(("last_notify_at", .string(RFC3339.format(t)))) }
        if let r = d.lastNotifyResult { m.append(("last_notify_result", .string(r))) }
        if let r = d.reason { m.append(("reason", .string(r))) }
        if d.withdrawn == true { m.append(("withdrawn", .bool(true))) }
        if let t = d.notifiedAt { m.append(("notified_at", .string(RFC3339.format(t)))) }
        if let t = d.confirmedAt { m.append(("confirmed_at", .string(RFC3339.format(t)))) }
        if let l = d.latencyMs { m.append(("confirmation_latency_ms", .integer(l))) }
        if let by = d.confirmedBy { m.append(("confirmed_by", .string(by))) }
        if let f = d.failedKeys {
            m.append(("failed_keys", .array(f.map { .object([("zone_name", .string($0.zoneName)), ("key_id", .string($0.keyID)), ("error", .string($0.error))]) })))
        }
        if let r = d.remadeFrom { m.append(("remade_from", .string(r))) }
        if let r = d.remadeAs { m.append(("remade_as", .string(r))) }
        return .object(m)
    }

    // MARK: - helpers

    static func randomBytes(_ n: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<n).map { _ in UInt8.random(in: .min ... .max, using: &g) }
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}
