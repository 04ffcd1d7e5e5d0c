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
            sig0PublicKey: nil, legacy: legacy, hpkeLayout: hpkeLayout ?? .v2, source: "manual", registeredAt: clock.now)
        try store.update { (state) throws(TDNSError) in
            guard state.node(nodeID) == nil else { throw .config("node \(nodeID) is already registered") }
            state.nodes.append(node)
        }
        log.info("node \(nodeID) added (\(Self.formatText(node)))")
        return KDCReport(
            json: Self.nodeJSON(node),
            lines: ["node \(nodeID) added: \(Self.formatText(node))\(address.map { ", notify \($0)" } ?? "")"])
    }

    /// How distributions to `node` look, for people.
    static func formatText(_ node: KDCNode) -> String {
        let layout = node.crypto == .hpke ? " \(node.effectiveHPKELayout.rawValue)" : ""
        return node.legacy
            ? "\(node.crypto.rawValue)\(layout), legacy (Go format: HMAC-only, unsigned NOTIFYs)"
            : "\(node.crypto.rawValue), signed distributions (JWT manifest)"
    }

    /// `node set NODE --legacy|--signed [--hpke-layout v1|v2]`: changes how later
    /// distributions to the node are made. `--signed` for a node that never announced
    /// `jws-es256` is allowed with a warning (a Go KRS cannot read it); v1 only for legacy
    /// HPKE nodes. Distributions already made keep their format.
    public func setNode(id: String, legacy: Bool?, hpkeLayout: KDCHPKELayout?) throws(TDNSError) -> KDCReport {
        let nodeID = try KDCInput.fqdn(id, what: "node ID")
        guard legacy != nil || hpkeLayout != nil else {
            throw .config("node set needs --legacy, --signed or --hpke-layout")
        }
        let node = try store.update { (state) throws(TDNSError) -> KDCNode in
            guard let i = state.nodes.firstIndex(where: { $0.id == nodeID }) else {
                throw .config("node \(nodeID) is not registered")
            }
            var n = state.nodes[i]
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
            return n
        }
        var warnings: [String] = []
        if !node.legacy && !node.announced(KDCCapability.jwsES256) {
            warnings.append("node \(nodeID) never announced \(KDCCapability.jwsES256): a Go KRS cannot read signed distributions (JWT manifest)")
        }
        if node.legacy && node.announced(KDCCapability.jwsES256) {
            warnings.append("node \(nodeID) announced \(KDCCapability.jwsES256): with require_signature=yes it refuses the Go format (HMAC-only manifests)")
        }
        log.info("node \(nodeID) set to \(Self.formatText(node))")
        return KDCReport(json: Self.nodeJSON(node), lines: ["node \(nodeID): \(Self.formatText(node))"], warnings: warnings)
    }

    // MARK: - enrollment (PROTOCOL §11.1–§11.2, §19)

    /// `enroll generate`: a token and the package file (mode 0600).
    ///
    /// `legacy`: the node gets the Go format whatever its request announces. Such a package
    /// carries no `kdc_signing_pubkey` and no `kdc_sig0_pubkey`: a node holding them would
    /// require signatures this KDC will not make for it.
    public func generateEnrollment(
        nodeID id: String, out: String, crypto: KDCCrypto?, notify: String?, validFor: Int64 = 7 * 86_400,
        legacy: Bool = false
    ) throws(TDNSError) -> KDCReport {
        let nodeID = try KDCInput.fqdn(id, what: "node ID")
        let address = try notify.map { (a) throws(TDNSError) in try KDCInput.address(a, what: "--notify") }
        guard validFor > 0 else { throw .config("--valid-for must be positive") }
        let keys = try loadKeys()
        let state = try store.load()
        let zone = try DNSName(state.config.controlZone)
        var token = Self.randomBytes(32)
        defer { zeroize(&token) }
        let tokenHex = Hex.encode(token)
        let now = clock.now
        let validUntil = now + validFor
        let backends: [KDCCrypto] = crypto.map { [$0] } ?? [.hpke, .jose]

        var members: [(String, JSONValue)] = [
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
        ]
        var json = JSONValue.object(members).serialized(escapeHTML: true)
        defer { zeroize(&json) }
        var file = Base64.encodeBytes(json) + [0x0A]
        defer { zeroize(&file) }
        let path = POSIXFile.absolute(out)
        try POSIXFile.writeAtomically(path, bytes: file, mode: 0o600)

        let enrollment = KDCEnrollment(
            nodeID: nodeID, tokenHash: Hex.encode(Digests.sha256(Array(tokenHex.utf8))), crypto: crypto,
            notifyAddress: address, createdAt: now, activatedAt: nil, expiresAt: nil, usedAt: nil, validUntil: validUntil,
            packageFile: path, legacy: legacy ? true : nil)
        try store.update { (state) throws(TDNSError) in
            // A new package replaces the node's earlier unused ones.
            state.enrollments.removeAll { $0.nodeID == nodeID && $0.usedAt == nil }
            state.enrollments.append(enrollment)
        }
        log.info("enrollment package for \(nodeID) written to \(path)\(legacy ? " (legacy)" : "") (not active until `enroll activate`)")
        return KDCReport(
            json: .object([
                ("node_id", .string(nodeID)), ("package", .string(path)), ("state", .string("generated")),
                ("valid_until", .string(RFC3339.format(validUntil))),
                ("capabilities", .array(backends.map { .string($0.rawValue) })),
                ("legacy", .bool(legacy)),
            ]),
            lines: ["enrollment package for \(nodeID) written to \(path)", "activate it with: tdns-kdc enroll activate \(nodeID)"])
    }

    /// `enroll activate`: the node's latest unused token becomes valid for `window` seconds
    /// (PROTOCOL §11.1), never beyond the package's `valid_until`.
    public func activateEnrollment(nodeID id: String, window: Int64?) throws(TDNSError) -> KDCReport {
        let nodeID = try KDCInput.fqdn(id, what: "node ID")
        let now = clock.now
        let enrollment = try store.update { (state) throws(TDNSError) -> KDCEnrollment in
            let w = window ?? state.config.enrollmentWindow
            guard w > 0 else { throw .config("--window must be positive") }
            guard let i = state.enrollments.lastIndex(where: { $0.nodeID == nodeID && $0.usedAt == nil }) else {
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
    public func distribute(
        target: Target, zone zoneName: String?, keyTag: UInt16?, operation: KDCOperation, chunkSize: Int?
    ) throws(TDNSError) -> KDCReport {
        let zone = try zoneName.map { (z) throws(TDNSError) in try KDCInput.fqdn(z, what: "zone") }
        if operation != .ping && zone == nil { throw .config("--zone is required for \(operation.rawValue)") }
        let targetID = try { () throws(TDNSError) -> String? in
            if case .node(let id) = target { return try KDCInput.fqdn(id, what: "node ID") }
            return nil
        }()
        let keys = try loadKeys()
        let now = clock.now
        let created = try store.update { (state) throws(TDNSError) -> [KDCDistribution] in
            let size = chunkSize ?? state.config.chunkSize
            guard (1...65535).contains(size) else { throw .config("--chunk-size \(size) is outside 1…65535") }
            let nodes: [KDCNode]
            if let targetID {
                guard let n = state.node(targetID) else { throw .config("node \(targetID) is not registered") }
                nodes = [n]
            } else {
                nodes = state.nodes
                guard !nodes.isEmpty else { throw .config("no nodes are registered") }
            }
            var key: KDCKey? = nil
            if operation != .ping, let zone {
                guard state.zones.contains(where: { $0.name == zone }) else { throw .config("zone \(zone) does not exist") }
                let candidates = state.keys.filter { $0.zone == zone && (keyTag == nil || $0.keyTag == keyTag) }
                if let keyTag, candidates.isEmpty { throw .config("zone \(zone) has no key with tag \(keyTag)") }
                guard candidates.count == 1, let only = candidates.first else {
                    throw .config(candidates.isEmpty ? "zone \(zone) has no keys; `key generate` or `key import` one"
                        : "zone \(zone) has \(candidates.count) keys; choose one with --key TAG")
                }
                key = only
            }
            var pem: [UInt8] = []
            defer { zeroize(&pem) }
            if operation == .rollKey, let key {
                pem = try store.read(key.privateKeyFile, limit: 65536)
            }
            var made: [KDCDistribution] = []
            for node in nodes {
                let recipient = try Self.recipient(node)
                let id = state.nextDistributionID(now: now)
                let entry: JSONValue
                switch operation {
                case .rollKey:
                    guard let key else { throw .internalFailure("roll_key without a key") }
                    entry = DistributionEntries.rollKey(
                        zone: key.zone, keyTag: key.keyTag, keyType: key.keyType, algorithm: key.algorithm,
                        flags: key.flags, dnskey: key.dnskey, privateKeyPEM: pem)
                case .deleteKey:
                    guard let key else { throw .internalFailure("delete_key without a key") }
                    entry = DistributionEntries.deleteKey(zone: key.zone, keyTag: key.keyTag, crypto: node.crypto, reason: "deleted by the KDC operator")
                case .ping:
                    entry = DistributionEntries.ping(nonce: Self.randomBytes(32), timestamp: now, crypto: node.crypto)
                }
                let layout: KDCHPKELayout? = node.crypto == .hpke ? node.effectiveHPKELayout : nil
                let prepared = try DistributionBuilder.build(DistributionBuilder.Request(
                    distributionID: id, recipient: recipient, content: operation.content, entries: [entry],
                    zoneCount: operation == .ping ? 0 : 1, keyCount: operation == .ping ? 0 : 1, timestamp: now,
                    ttl: state.config.distributionTTL, retireTime: state.config.retireTime, chunkSize: size,
                    signer: node.legacy ? nil : keys.signing, issuer: state.config.controlZone,
                    hpkeLayout: layout ?? .v2))
                let file = try store.writeRecords(distributionID: id, nodeID: node.id, records: prepared.records)
                let d = KDCDistribution(
                    id: id, nodeID: node.id, operation: operation.rawValue, zone: operation == .ping ? nil : key?.zone,
                    keyTag: operation == .ping ? nil : key?.keyTag, crypto: node.crypto, signed: !node.legacy,
                    hpkeLayout: layout, content: operation.content, createdAt: now,
                    deadline: now + state.config.distributionTTL, chunkCount: prepared.chunkCount, recordsFile: file)
                state.distributions.append(d)
                made.append(d)
            }
            return made
        }
        for d in created {
            log.info("distribution \(d.id) for \(d.nodeID): \(d.operation)\(d.keyTag.map { " key \($0)" } ?? "") (\(d.crypto.rawValue)\(d.hpkeLayout.map { " \($0.rawValue)" } ?? ""), \(d.signed ? "signed JWT manifest" : "Go format, HMAC-only"), \(d.chunkCount == 0 ? "inline" : "\(d.chunkCount) chunks"), deadline \(RFC3339.format(d.deadline)))")
        }
        return KDCReport(
            json: .object([("distributions", .array(created.map(Self.distributionJSON)))]),
            lines: created.map { "\($0.id) \($0.nodeID) \($0.operation)\($0.keyTag.map { " \($0)" } ?? "") \($0.chunkCount == 0 ? "inline" : "\($0.chunkCount) chunks")" })
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
        var lines = ["control zone \(state.config.controlZone), listening on \(state.config.listen)"]
        lines.append("nodes: \(nodes.count)")
        for n in nodes {
            let layout = n.legacy && n.crypto == .hpke ? " \(n.hpkeLayout.rawValue)" : ""
            lines.append("  \(n.id) \(n.crypto.rawValue) \(n.source)\(n.legacy ? " legacy\(layout)" : " signed") notify \(n.notifyAddress ?? "-")")
        }
        lines.append("enrollments: \(enrollments.count)")
        for e in enrollments {
            lines.append("  \(e.nodeID) \(e.state(now: now))\(e.expiresAt.map { " until \(RFC3339.format($0))" } ?? "")")
        }
        lines.append("distributions: \(dists.count)")
        for d in dists {
            let due = d.isLive ? " until \(RFC3339.format(d.deadline))" : ""
            lines.append("  \(d.id) \(d.nodeID) \(d.operation)\(d.keyTag.map { " \($0)" } ?? "") \(d.state.rawValue)\(due)\(d.reason.map { " (\($0))" } ?? "")")
        }
        return KDCReport(
            json: .object([
                ("control_zone", .string(state.config.controlZone)),
                ("listen", .string(state.config.listen)),
                ("nodes", .array(nodes.map { n in
                    var j = Self.nodeJSON(n)
                    if case .object(var m) = j, let e = state.enrollments.last(where: { $0.nodeID == n.id }) {
                        m.append(("enrollment", .string(e.state(now: now))))
                        j = .object(m)
                    }
                    return j
                })),
                ("enrollments", .array(enrollments.map { e in
                    var m: [(String, JSONValue)] = [("node_id", .string(e.nodeID)), ("state", .string(e.state(now: now))),
                                                     ("created_at", .string(RFC3339.format(e.createdAt)))]
                    if let a = e.activatedAt { m.append(("activated_at", .string(RFC3339.format(a)))) }
                    if let x = e.expiresAt { m.append(("expires_at", .string(RFC3339.format(x)))) }
                    if let u = e.usedAt { m.append(("used_at", .string(RFC3339.format(u)))) }
                    return .object(m)
                })),
                ("zones", .array(state.zones.map { .string($0.name) })),
                ("keys", .array(state.keys.map(Self.keyJSON))),
                ("distributions", .array(dists.map(Self.distributionJSON))),
            ]),
            lines: lines)
    }

    // MARK: - JSON views

    static func nodeJSON(_ n: KDCNode) -> JSONValue {
        var m: [(String, JSONValue)] = [
            ("node_id", .string(n.id)), ("crypto", .string(n.crypto.rawValue)), ("legacy", .bool(n.legacy)),
            ("hpke_layout", .string(n.hpkeLayout.rawValue)), ("capabilities", .array(n.capabilities.map { .string($0) })),
            ("source", .string(n.source)), ("registered_at", .string(RFC3339.format(n.registeredAt))),
        ]
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

    static func distributionJSON(_ d: KDCDistribution) -> JSONValue {
        var m: [(String, JSONValue)] = [
            ("distribution_id", .string(d.id)), ("node_id", .string(d.nodeID)), ("operation", .string(d.operation)),
        ]
        if let z = d.zone { m.append(("zone", .string(z))) }
        if let t = d.keyTag { m.append(("key_tag", .integer(t))) }
        m += [
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
        if let t = d.notifiedAt { m.append(("notified_at", .string(RFC3339.format(t)))) }
        if let t = d.confirmedAt { m.append(("confirmed_at", .string(RFC3339.format(t)))) }
        if let by = d.confirmedBy { m.append(("confirmed_by", .string(by))) }
        if let f = d.failedKeys {
            m.append(("failed_keys", .array(f.map { .object([("zone_name", .string($0.zoneName)), ("key_id", .string($0.keyID)), ("error", .string($0.error))]) })))
        }
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
