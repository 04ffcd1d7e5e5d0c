import TDNSCore
import TDNSCrypto
import TDNSWire

/// Severity of a log line handed to the host.
public enum KRSLogLevel: Int, Sendable { case error = 0, warning = 1, info = 2, debug = 3 }

/// What processing a distribution came to: the status report of PROTOCOL §10.6 that goes
/// back to the KDC in the confirmation NOTIFY, and whether the keys were installed.
public struct DistributionResult: Sendable {
    public enum ReportKind: UInt8, Sendable {
        /// EDNS CHUNK option content type 1: KeyStatusReport.
        case keyStatus = 1
        /// Content type 3: ComponentStatusReport.
        case componentStatus = 3
    }

    public enum Outcome: Equatable, Sendable {
        /// Every operation applied: keys installed, retired or removed, components stored.
        case applied
        /// The keys were not installed (they are all in `failed_keys`): the server tool's
        /// message, or `storage: <reason>` when key_dir could not be written. Nothing changed.
        case notInstalled(reason: String)
    }

    public var reportKind: ReportKind
    /// `{"successful_keys":[{"zone_name":…,"key_id":…}],"failed_keys":[…]}` (empty lists
    /// omitted, as Go's omitempty does), or the component report.
    var report: JSONValue
    public var outcome: Outcome
    /// Whether a KDC signature bound the distribution: a Format 2 (JWT) manifest verified
    /// with `kdc_signing_pubkey` (contract §2). A JWS around the ciphertext alone does not.
    public var signed: Bool
    /// Number of keys installed, retired or removed.
    public var keysChanged: Int
    /// Of those, the keys installed.
    public var keysInstalled: Int = 0
    /// The distribution's backend (the manifest's `crypto`), when the receiver got that far.
    public var backend: CryptoBackend? = nil
    /// Opened with a key from before a re-enrollment (`previous_*`), not the current one.
    public var openedWithPreviousKey = false

    /// The report as sent.
    public var reportJSON: String { report.serializedString() }

    /// Whether the report is `{}` (a key payload without operations): then no confirmation
    /// is sent.
    var reportIsEmpty: Bool {
        guard case .object(let members) = report else { return false }
        return members.isEmpty
    }
}

/// The Key Receiver Service's receive step for one node (PROTOCOL §6, §9, §10, §13, §19): from
/// a distribution whose manifest it authenticated to installed keys and a status report —
/// verify (replay, freshness, chunk hash), decrypt, validate every operation, then hand them
/// all at once to the key store.
///
/// Either the whole distribution is accepted and every key in it is installed, or it is
/// refused with a specific error and nothing changes (key directory and replay record alike).
public final class KeyReceiver: Sendable {
    public let settings: KRSSettings
    let clock: WallClock
    let state: StateStore
    let store: any KeyStore
    let log: @Sendable (KRSLogLevel, String) -> Void
    let keyChanged: @Sendable (KeyStoreChange) -> Void

    /// Largest number of CHUNK records one distribution may consist of (§2.5: ≤ 65535 data
    /// chunks plus the manifest).
    public static let maxRecords = 65536
    /// Longest `error` text per failed key in a confirmation.
    static let maxReportedError = 160

    /// - Parameters:
    ///   - clock: overrides the `now=` setting and the system clock.
    ///   - log: receives log lines (never key material).
    ///   - keyChanged: told about every key file installed or removed, after the fact.
    ///   - stop: the node's stop token: a server tool still running when it is stopped is
    ///     killed, and nothing is kept.
    public init(
        settings: KRSSettings, clock: WallClock? = nil,
        log: @escaping @Sendable (KRSLogLevel, String) -> Void = { _, _ in },
        keyChanged: @escaping @Sendable (KeyStoreChange) -> Void = { _ in },
        stop: StopToken? = nil
    ) throws(TDNSError) {
        self.settings = settings
        self.clock = clock ?? settings.clock
        self.log = log
        self.keyChanged = keyChanged
        // Created 0700 when missing, tightened when group/other may enter (contract §4).
        var notes = try PrivateDirectory.prepare(settings.stateDirectory, setting: "state_dir")
        if settings.keyStore != .none {
            notes += try PrivateDirectory.prepare(settings.keyDirectory ?? "", setting: "key_dir")
        }
        for (level, note) in notes { log(level, note) }
        state = try StateStore(directory: settings.stateDirectory)
        store = try makeKeyStore(settings, command: ServerCommand(timeout: settings.server.commandTimeout, stop: stop))
    }

    /// Processes the CHUNK RDATAs of one distribution (manifest and data chunks, any order):
    /// parses them once into ``DistributionRecords`` and processes those.
    public func process(distributionID: String, records: [[UInt8]]) throws(TDNSError) -> DistributionResult {
        let parsed: DistributionRecords
        do {
            parsed = try DistributionRecords(distributionID: distributionID, rdata: records, maxSize: settings.maxDistributionSize)
        } catch {
            recordRefusal(distributionID: distributionID, error)
            throw error
        }
        return try process(parsed)
    }

    /// Processes a host's records: authenticates their manifest as the fetcher does
    /// (``authenticateManifest(_:for:)``), then ``process(_:)-(ReceivedDistribution)``.
    public func process(_ records: DistributionRecords) throws(TDNSError) -> DistributionResult {
        try audited(records.id.text) { () throws(TDNSError) -> DistributionResult in
            let manifest = try authenticateManifest(records.manifestRecord, for: records.id)
            return try receive(ReceivedDistribution(id: records.id, manifest: manifest, dataChunks: records.dataChunks))
        }
    }

    /// Authenticates a host's records' manifest (``authenticateManifest(_:for:)``), audited
    /// when refused: the first half of ``process(_:)-(DistributionRecords)``.
    public func authenticated(_ records: DistributionRecords) throws(TDNSError) -> ReceivedDistribution {
        try audited(records.id.text) { () throws(TDNSError) -> ReceivedDistribution in
            ReceivedDistribution(id: records.id, manifest: try authenticateManifest(records.manifestRecord, for: records.id),
                                 dataChunks: records.dataChunks)
        }
    }

    /// Processes one distribution whose manifest was authenticated: checks replay and (again:
    /// time went by since) freshness, reassembles, decrypts, validates every operation and
    /// applies them all at once (PROTOCOL §6, §9, §10, §13, §19). A refusal is logged and
    /// audited.
    public func process(_ distribution: ReceivedDistribution) throws(TDNSError) -> DistributionResult {
        try audited(distribution.id.text) { () throws(TDNSError) in try receive(distribution) }
    }

    /// Logs and audits a distribution refused before the receiver saw it: its records did not
    /// parse at the C boundary (`krs_process_distribution`), or its fetch failed.
    public func recordRefusal(distributionID: String, _ error: TDNSError) {
        let id = String(distributionID.lowercasedASCII().prefix(16))
        log(.warning, "distribution \(id) refused: \(error.reason)")
        auditRefusal(id, error)
    }

    /// Audits a refusal (without a log line). Best effort: if the state directory itself is
    /// failing, the refusal still reaches the caller through the error.
    func auditRefusal(_ id: String, _ error: TDNSError) {
        try? state.audit([
            ("time", .integer(clock.now)), ("distribution_id", .string(String(id.prefix(16)))),
            ("result", .string("refused")), ("code", .string(error.code.name)), ("reason", .string(error.reason)),
        ])
    }

    private func audited<R>(_ id: String, _ body: () throws(TDNSError) -> R) throws(TDNSError) -> R {
        do {
            return try body()
        } catch {
            recordRefusal(distributionID: id, error)
            throw error
        }
    }

    /// Authenticates a manifest record and checks that it is this node's, for this
    /// distribution, fresh, of an accepted content, and small enough — everything that can be
    /// known before a data chunk is fetched (contract §2):
    ///
    /// - with `require_signature=yes` only a Format 2 (JWT) manifest is accepted; a Format 1
    ///   (HMAC) manifest is refused as `.unsigned` before anything else, whatever its
    ///   ciphertext carries;
    /// - a Format 2 manifest must verify with `kdc_signing_pubkey`, name this node
    ///   (`receiver_id`, or `node_id`) and this `distribution_id`, be fresh (`iat` within
    ///   `distribution_ttl` ± `max_skew`, `exp` not passed), and carry `chunk_hash` when it is
    ///   chunked;
    /// - chunk_count × chunk_size (65535 when absent) must fit `max_distribution_size`.
    ///
    /// The fetcher calls it with the manifest answer, ``process(_:)-(DistributionRecords)``
    /// with a host's. Not audited here: the caller's refusal is.
    func authenticateManifest(_ record: CHUNKRecord, for id: DistributionID) throws(TDNSError) -> Manifest {
        let nodeID = try enrolledNode()
        guard record.sequence == 0 else { throw .malformed("the manifest record has sequence \(record.sequence), not 0") }
        if record.format == CHUNKRecord.formatJSON && settings.requireSignature {
            throw .unsigned("distribution is not bound by a KDC signature (Format 1 HMAC manifest) and require_signature=yes")
        }
        var hmacKeys: [[UInt8]] = []
        if let k = settings.hpkeKey { hmacKeys.append(k.publicKey.rawRepresentation) }
        if let k = settings.joseKey { hmacKeys.append(k.publicKey.xCoordinate) }
        // The keys from before a re-enrollment, while they are kept (contract item 5).
        let previous = settings.previousKeys(at: clock.now)
        if let k = previous.hpke { hmacKeys.append(k.publicKey.rawRepresentation) }
        if let k = previous.jose { hmacKeys.append(k.publicKey.xCoordinate) }
        let manifest = try Manifest.decode(record, hmacKeys: hmacKeys, kdcKey: settings.kdcSigningKey)
        guard manifest.distributionID.lowercasedASCII() == id.text else {
            throw .wrongNode("manifest is for distribution \(manifest.distributionID.prefix(16)), not \(id)")
        }
        guard let receiver = manifest.receiverID else { throw .malformed("manifest names no node_id / receiver_id") }
        guard receiver.lowercasedASCII() == nodeID.description else {
            throw .wrongNode("distribution is for node \(receiver.prefix(64)), this node is \(nodeID)")
        }
        try manifest.checkFreshness(now: clock.now, skew: settings.maxSkew)
        guard manifest.contentKind != nil else {
            throw .policy("content type \"\(manifest.content.prefix(32))\" is not accepted")
        }
        if manifest.isBound && manifest.chunkCount > 0 && manifest.chunkHash == nil {
            throw .authentication("chunked distribution without a chunk_hash in its JWT manifest: its data chunks would not be bound")
        }
        guard manifest.largestPayload <= settings.maxDistributionSize else {
            throw .tooBig("manifest announces \(manifest.chunkCount) chunks of up to \(manifest.chunkSize ?? Manifest.maxChunkData) bytes, more than max_distribution_size (\(settings.maxDistributionSize) bytes)")
        }
        return manifest
    }

    private func enrolledNode() throws(TDNSError) -> DNSName {
        guard let nodeID = settings.nodeID, settings.isEnrolled else {
            throw .config("this node is not enrolled: node_id, control_zone and a node key are needed (krs_enroll, or set them)")
        }
        return nodeID
    }

    /// Verify, decrypt, validate, install: the body of ``process(_:)-(ReceivedDistribution)``.
    private func receive(_ distribution: ReceivedDistribution) throws(TDNSError) -> DistributionResult {
        let id = distribution.id
        let nodeID = try enrolledNode()
        let manifest = distribution.manifest
        try manifest.checkFreshness(now: clock.now, skew: settings.maxSkew)
        let now = clock.now

        return try state.locked { () throws(TDNSError) -> DistributionResult in
            // 1. Replay: an ID this node has processed before is refused.
            if try state.wasProcessed(node: nodeID, distributionID: id) {
                throw .replay("distribution \(id) was already processed")
            }

            // 2. The transport blob: inline, or reassembled from the data chunks.
            let blob: [UInt8]
            if manifest.chunkCount == 0 {
                guard let inline = manifest.inlinePayload, !inline.isEmpty else {
                    throw .malformed("chunk_count is 0 and the manifest has no payload")
                }
                guard distribution.dataChunks.isEmpty else { throw .malformed("inline payload, but data chunks were given too") }
                blob = inline
            } else {
                guard manifest.inlinePayload == nil else { throw .malformed("both an inline payload and chunk_count > 0") }
                blob = try Reassembly.assemble(distribution.dataChunks, chunkCount: manifest.chunkCount,
                                               maxSize: settings.maxDistributionSize, chunkSize: manifest.chunkSize)
            }
            if let hash = manifest.chunkHash, Digests.sha256(blob) != hash {
                throw .authentication("chunk_hash of the JWT manifest does not match the payload")
            }

            // 3. A distribution for a backend this node has no key for (a JOSE-only node given
            //    an HPKE distribution, or the reverse): a final answer to the KDC, in the
            //    confirmation, never tried again (contract item 4).
            let previous = settings.previousKeys(at: now)
            let hpkeKeys = [settings.hpkeKey, previous.hpke].compactMap { $0 }
            let joseKeys = [settings.joseKey, previous.jose].compactMap { $0 }
            if let backend = manifest.crypto.backend, backend == .hpke ? hpkeKeys.isEmpty : joseKeys.isEmpty {
                // Enrolled: the node has a key for the other backend.
                let mine: CryptoBackend = backend == .hpke ? .jose : .hpke
                return try backendMismatch(id, node: nodeID, mine: mine, received: backend, now: now, signed: manifest.isBound)
            }

            // 4. Decrypt. Only a Format 2 manifest binds the distribution; a JWS around the
            //    ciphertext is verified when present but binds nothing (contract §2).
            let decryption = Decryption(hpkeKeys: hpkeKeys, joseKeys: joseKeys, kdcSigningKey: settings.kdcSigningKey,
                                        hasCurrentHPKE: settings.hpkeKey != nil, hasCurrentJOSE: settings.joseKey != nil)
            var decrypted = try decryption.decrypt(blob: blob, crypto: manifest.crypto)
            defer { zeroize(&decrypted.plaintext) }
            let signed = manifest.isBound
            if !signed {
                // authenticateManifest refused Format 1 already when signatures are required.
                guard !settings.requireSignature else {
                    throw .unsigned("distribution is not bound by a KDC signature (Format 1 HMAC manifest) and require_signature=yes")
                }
                let inner = decrypted.signatureVerified ? "; its JWS verified but covers only the ciphertext, not the distribution ID, node or time" : ""
                log(.warning, "distribution \(id) accepted without a KDC signature binding it (Format 1 HMAC manifest\(inner)); legacy, require_signature=no")
            }
            if decrypted.doubledEncapsulatedKey {
                let note = "hpke payload carried its encapsulated key twice (Go KDC); opened the rest"
                log(.warning, "distribution \(id): \(note)")
                try auditLine(id, now: now, result: "accepted", extra: [("note", .string(note))])
            }

            if decrypted.openedWithPreviousKey {
                log(.info, "distribution \(id) opened with the key from before the re-enrollment")
            }

            // 5. Validate every operation, then apply them all at once.
            var result = try apply(decrypted.plaintext, manifest: manifest, id: id, node: nodeID, now: now, signed: signed)
            result.backend = manifest.crypto.backend
            result.openedWithPreviousKey = decrypted.openedWithPreviousKey
            return result
        }
    }

    /// The operations of a decrypted payload, applied (under the state lock).
    private func apply(
        _ plaintext: [UInt8], manifest: Manifest, id: DistributionID, node nodeID: DNSName, now: Int64, signed: Bool
    ) throws(TDNSError) -> DistributionResult {
        if manifest.contentKind == .nodeOperations {
            let components = try Content.components(plaintext)
            try state.storeComponents(components)
            try state.recordProcessed(node: nodeID, distributionID: id, at: now)
            try auditLine(id, now: now, result: "components", extra: [("count", .integer(components.count))])
            let report = JSONValue.object([
                ("successful_components", .array(components.map { .object([("component_id", .string($0))]) }))
            ])
            return DistributionResult(reportKind: .componentStatus, report: report, outcome: .applied, signed: signed, keysChanged: 0)
        }
        return try install(try Content.operations(plaintext), id: id, node: nodeID, now: now,
                           retireAfter: manifest.retireTime, signed: signed)
    }

    /// The report of a distribution for a backend this node has no key for (contract item 4):
    /// one `failed_keys` entry (the manifest names no keys: zone `""`, key `*`) with
    /// `backend mismatch: <node's> node received an <distribution's> distribution`. The ID
    /// enters the replay record and the audit log: the answer is final.
    private func backendMismatch(
        _ id: DistributionID, node: DNSName, mine: CryptoBackend, received: CryptoBackend, now: Int64, signed: Bool
    ) throws(TDNSError) -> DistributionResult {
        let reason = "backend mismatch: \(mine.rawValue) node received an \(received.rawValue) distribution"
        try state.recordProcessed(node: node, distributionID: id, at: now)
        try auditLine(id, now: now, result: "backend-mismatch", extra: [("reason", .string(reason))])
        log(.error, "distribution \(id) refused: \(reason)")
        let entry = JSONValue.object([("zone_name", .string("")), ("key_id", .string("*")), ("error", .string(reason))])
        var result = DistributionResult(reportKind: .keyStatus, report: .object([("failed_keys", .array([entry]))]),
                                        outcome: .notInstalled(reason: reason), signed: signed, keysChanged: 0)
        result.backend = received
        return result
    }

    /// The store step: hands the operations to the key store, all or nothing, and reports
    /// per key (PROTOCOL §10.3, §10.6). Called with the state lock held.
    private func install(
        _ operations: [Operation], id: DistributionID, node: DNSName, now: Int64, retireAfter: Int64?, signed: Bool
    ) throws(TDNSError) -> DistributionResult {
        var plan = KeyPlan()
        var successful: [JSONValue] = []  // payload order
        var installedZone: [String?] = []  // for each of `successful`: the zone of an install
        var keyEntries: [JSONValue] = []
        var pings: [JSONValue] = []
        for op in operations {
            switch op {
            case .install(let key):
                plan.install.append(key)
                let entry = JSONValue.object([("zone_name", .string(key.zone)), ("key_id", .string(key.keyID))])
                keyEntries.append(entry)
                successful.append(entry)
                installedZone.append(key.zone)
            case .delete(let zone, let keyID, let tag):
                plan.delete.append((zone, tag))
                let entry = JSONValue.object([("zone_name", .string(zone)), ("key_id", .string(keyID))])
                keyEntries.append(entry)
                successful.append(entry)
                installedZone.append(nil)
            case .ping(let index):
                let entry = JSONValue.object([("zone_name", .string("ping")), ("key_id", .string("op-\(index)"))])
                pings.append(entry)
                successful.append(entry)
                installedZone.append(nil)
            }
        }
        let outcome: KeyStoreOutcome
        do throws(TDNSError) {
            outcome = try store.apply(plan, now: now, retireAfter: retireAfter)
        } catch where error.code == .storage {
            // key_dir full or unwritable: nothing was installed (the store writes temporary
            // files first and renames only when all are written). Reported like a server
            // refusal, so that the KDC learns which keys failed and why (contract §4).
            outcome = KeyStoreOutcome(changes: [], serverFailure: "storage: \(error.reason)")
        }
        for note in outcome.notes { log(.info, note) }
        try state.recordProcessed(node: node, distributionID: id, at: now)
        if let failure = outcome.serverFailure {
            // Files put back, server on its previous keys: the KDC hears which keys failed.
            log(.error, "distribution \(id): the keys were not installed, previous keys kept: \(failure)")
            try auditLine(id, now: now, result: "install-failed", extra: [("reason", .string(failure))])
            // The tool's message, short: the report travels in one EDNS option over UDP.
            let reason = String(failure.prefix(Self.maxReportedError))
            let failed = keyEntries.map { entry -> JSONValue in
                guard case .object(var members) = entry else { return entry }
                members.append(("error", .string(reason)))
                return .object(members)
            }
            var report: [(String, JSONValue)] = []
            if !pings.isEmpty { report.append(("successful_keys", .array(pings))) }
            if !failed.isEmpty { report.append(("failed_keys", .array(failed))) }
            return DistributionResult(reportKind: .keyStatus, report: .object(report), outcome: .notInstalled(reason: failure),
                                      signed: signed, keysChanged: 0)
        }
        let changes = outcome.changes
        for c in changes {
            var extra: [(String, JSONValue)] = [("zone", .string(c.zone)), ("key_tag", .integer(Int(c.keyTag)))]
            if let alg = c.algorithm { extra.append(("algorithm", .integer(Int(alg)))) }
            try auditLine(id, now: now, result: c.kind.rawValue, extra: extra)
            log(.info, "distribution \(id): \(c.kind.rawValue) key \(c.keyTag) for \(c.zone)")
            keyChanged(c)
        }
        if changes.isEmpty {
            try auditLine(id, now: now, result: "accepted", extra: [("operations", .integer(operations.count))])
        }
        // Keys installed into a zone the server cannot sign yet (Knot without an active KSK
        // and ZSK) stay installed, but go to `failed_keys` with the reason: §10.6 has no
        // "installed, not signing", and a KDC that took them as confirmed would consider
        // the key in use (a KSK ready for its DS) while nothing is signed with it.
        var confirmedKeys: [JSONValue] = []
        var notSigning: [JSONValue] = []
        for (entry, zone) in zip(successful, installedZone) {
            guard let zone, let why = outcome.cannotSign.first(where: { $0.zone == zone }),
                  case .object(var members) = entry else {
                confirmedKeys.append(entry)
                continue
            }
            members.append(("error", .string(String(why.reason.prefix(Self.maxReportedError)))))
            notSigning.append(.object(members))
        }
        for why in outcome.cannotSign {
            log(.warning, "distribution \(id): \(why.reason); reported to the KDC in failed_keys")
            try auditLine(id, now: now, result: "not-signing", extra: [("zone", .string(why.zone)), ("reason", .string(why.reason))])
        }
        var members: [(String, JSONValue)] = []
        if !confirmedKeys.isEmpty { members.append(("successful_keys", .array(confirmedKeys))) }
        if !notSigning.isEmpty { members.append(("failed_keys", .array(notSigning))) }
        let report = JSONValue.object(members)
        return DistributionResult(reportKind: .keyStatus, report: report, outcome: .applied, signed: signed,
                                  keysChanged: changes.count, keysInstalled: changes.count { $0.kind == .installed })
    }

    /// NSD only: signs the zone again with its current keys and reloads it — signatures
    /// expire, and an operator who edits the unsigned zone needs it signed. `zones` nil: every
    /// zone that has keys and an unsigned zone file. Returns what was run, one line each.
    public func resignNSDZones(_ zones: [String]? = nil) throws(TDNSError) -> [String] {
        guard let nsd = store as? NSDKeyStore else { throw .config("key_store: re-signing needs key_store=nsd") }
        var names: [String] = []
        for zone in zones ?? [] {
            guard DomainName.isValidFQDN(zone), zone != "." else { throw .config("\(zone.prefix(64)): not a zone name with a trailing dot") }
            names.append(zone.lowercasedASCII())
        }
        return try state.locked { () throws(TDNSError) -> [String] in
            var notes: [String] = []
            for zone in zones == nil ? nsd.zonesWithKeys() : names {
                notes += try nsd.resign(zone)
            }
            return notes
        }
    }

    /// The key store's housekeeping at start (under the state lock): what an install killed
    /// half-way left behind, files of keys deleted long ago, NSD's served files, Knot zones
    /// whose signing a `knotc reload` turned off again; what was done goes to the log.
    public func housekeeping() {
        let now = clock.now
        let notes = (try? state.locked { () throws(TDNSError) -> [String] in store.housekeeping(now: now) }) ?? []
        for note in notes { log(.info, note) }
    }

    private func auditLine(_ id: DistributionID, now: Int64, result: String, extra: [(String, JSONValue)]) throws(TDNSError) {
        try state.audit([("time", .integer(now)), ("distribution_id", .string(id.text)), ("result", .string(result))] + extra)
    }
}
