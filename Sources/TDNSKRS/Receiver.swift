import TDNSCore
import TDNSCrypto
import TDNSWire

/// Severity of a log line handed to the host.
public enum KRSLogLevel: Int, Sendable { case error = 0, warning = 1, info = 2, debug = 3 }

/// The outcome of a processed distribution: the status report of PROTOCOL §10.6 that goes
/// back to the KDC in the confirmation NOTIFY.
public struct DistributionResult: Sendable {
    public enum ReportKind: UInt8, Sendable {
        /// EDNS CHUNK option content type 1: KeyStatusReport.
        case keyStatus = 1
        /// Content type 3: ComponentStatusReport.
        case componentStatus = 3
    }
    public var reportKind: ReportKind
    /// `{"successful_keys":[{"zone_name":…,"key_id":…}],"failed_keys":[…]}` (empty lists
    /// omitted, as Go's omitempty does), or the component report.
    public var reportJSON: String
    /// Whether the distribution carried a KDC signature that verified.
    public var signed: Bool
    /// Number of keys installed, retired or removed.
    public var keysChanged: Int
    /// Of those, the keys installed.
    public var keysInstalled: Int = 0
    /// Why the server did not take the keys (they are in `failed_keys`); nil on success.
    public var serverFailure: String? = nil
}

/// The Key Receiver Service's processing pipeline for one node: from the CHUNK records of a
/// distribution to installed keys and a status report (PROTOCOL §6, §9, §10, §13, §19).
///
/// Either the whole distribution is accepted and every key in it is installed, or it is
/// refused with a specific error and nothing changes (key directory and replay record alike).
public final class KeyReceiver: Sendable {
    public let settings: KRSSettings
    let clock: KRSClock
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
    public init(
        settings: KRSSettings, clock: KRSClock? = nil,
        log: @escaping @Sendable (KRSLogLevel, String) -> Void = { _, _ in },
        keyChanged: @escaping @Sendable (KeyStoreChange) -> Void = { _ in },
        stop: StopSignal? = nil
    ) throws(TDNSError) {
        self.settings = settings
        self.clock = clock ?? settings.fixedNow.map(KRSClock.fixed) ?? .system
        self.log = log
        self.keyChanged = keyChanged
        state = try StateStore(directory: settings.stateDirectory)
        let tools = settings.server
        let keyDirectory = settings.keyDirectory ?? ""
        let command = ServerCommand(timeout: tools.commandTimeout, stop: stop)
        switch settings.keyStore {
        case .bind:
            store = try BINDKeyStore(directory: keyDirectory, rndc: tools.rndc, rndcConf: tools.rndcConf, command: command)
        case .knot:
            store = try KnotKeyStore(directory: keyDirectory, keymgr: tools.keymgr, knotc: tools.knotc,
                                     knotConf: tools.knotConf, knotSocket: tools.knotSocket, command: command)
        case .nsd:
            store = try NSDKeyStore(directory: keyDirectory, signer: tools.signer, zoneDirectory: tools.zoneDirectory ?? "",
                                    signedDirectory: tools.signedDirectory ?? "", nsdControl: tools.nsdControl,
                                    nsdConf: tools.nsdConf, command: command)
        case .none:
            store = NoKeyStore()
        }
    }

    /// Processes the CHUNK RDATAs of one distribution (manifest and data chunks, any order).
    public func process(distributionID rawID: String, records: [[UInt8]]) throws(TDNSError) -> DistributionResult {
        let distributionID = rawID.lowercasedASCII()
        do {
            return try processUnaudited(distributionID: distributionID, records: records)
        } catch {
            log(.warning, "distribution \(distributionID.prefix(16)) refused: \(error.reason)")
            // Best effort: if the state directory itself is failing, the refusal still reaches
            // the caller through the error.
            try? state.audit([
                ("time", .integer(clock.now)), ("distribution_id", .string(String(distributionID.prefix(16)))),
                ("result", .string("refused")), ("code", .string("\(error.code)")), ("reason", .string(error.reason)),
            ])
            throw error
        }
    }

    private func processUnaudited(distributionID: String, records: [[UInt8]]) throws(TDNSError) -> DistributionResult {
        guard let nodeID = settings.nodeID, settings.isEnrolled else {
            throw .config("this node is not enrolled: node_id, control_zone and a node key are needed (krs_enroll, or set them)")
        }
        guard (1...16).contains(distributionID.utf8.count), distributionID.utf8.allSatisfy(Self.isHex) else {
            throw .malformed("distribution ID must be 1–16 hex characters")
        }
        guard !records.isEmpty else { throw .malformed("no CHUNK records given") }
        guard records.count <= Self.maxRecords else { throw .tooBig("more than \(Self.maxRecords) CHUNK records") }

        // 1. Parse every record; separate the manifest (sequence 0) from the data chunks.
        var manifestRecord: CHUNKRecord? = nil
        var dataChunks: [CHUNKRecord] = []
        var totalBytes = 0
        for (i, rdata) in records.enumerated() {
            totalBytes += rdata.count
            guard totalBytes <= settings.maxDistributionSize + records.count * 64 else {
                throw .tooBig("distribution exceeds max_distribution_size (\(settings.maxDistributionSize) bytes)")
            }
            let chunk: CHUNKRecord
            do {
                chunk = try CHUNKRecord(rdata: rdata)
            } catch {
                throw .malformed("CHUNK record \(i): \(error.reason)")
            }
            if chunk.sequence == 0 {
                if let existing = manifestRecord, existing != chunk { throw .malformed("two different manifests (sequence 0)") }
                manifestRecord = chunk
            } else {
                dataChunks.append(chunk)
            }
        }
        guard let manifestRecord else { throw .malformed("no manifest (CHUNK sequence 0) among the records") }

        // 2. Authenticate the manifest and check it is ours, for this distribution, and fresh.
        var hmacKeys: [[UInt8]] = []
        if let k = settings.hpkeKey { hmacKeys.append(k.publicKey.rawRepresentation) }
        if let k = settings.joseKey { hmacKeys.append(k.publicKey.xCoordinate) }
        let manifest = try Manifest.decode(manifestRecord, hmacKeys: hmacKeys, kdcKey: settings.kdcSigningKey)
        guard manifest.distributionID.lowercasedASCII() == distributionID else {
            throw .wrongNode("manifest is for distribution \(manifest.distributionID.prefix(16)), not \(distributionID)")
        }
        guard let receiver = manifest.receiverID else { throw .malformed("manifest names no node_id / receiver_id") }
        guard receiver.lowercasedASCII() == nodeID else {
            throw .wrongNode("distribution is for node \(receiver.prefix(64)), this node is \(nodeID)")
        }
        let now = clock.now
        try manifest.checkFreshness(now: now, skew: settings.maxSkew)
        let isNodeOperations = manifest.content == "node_operations"
        guard isNodeOperations || Content.keyOperationTypes.contains(manifest.content) else {
            throw .policy("content type \"\(manifest.content.prefix(32))\" is not accepted")
        }

        return try state.locked { () throws(TDNSError) -> DistributionResult in
            // 3. Replay: an ID this node has processed before is refused.
            if try state.wasProcessed(node: nodeID, distributionID: distributionID) {
                throw .replay("distribution \(distributionID) was already processed")
            }

            // 4. The transport blob: inline, or reassembled from the data chunks.
            let blob: [UInt8]
            if manifest.chunkCount == 0 {
                guard let inline = manifest.inlinePayload, !inline.isEmpty else {
                    throw .malformed("chunk_count is 0 and the manifest has no payload")
                }
                guard dataChunks.isEmpty else { throw .malformed("inline payload, but data chunks were given too") }
                blob = inline
            } else {
                guard manifest.inlinePayload == nil else { throw .malformed("both an inline payload and chunk_count > 0") }
                blob = try Reassembly.assemble(dataChunks, chunkCount: manifest.chunkCount, maxSize: settings.maxDistributionSize)
            }
            if let hash = manifest.chunkHash, Digests.sha256(blob) != hash {
                throw .authentication("chunk_hash of the JWT manifest does not match the payload")
            }

            // 5. Decrypt, and apply the signature policy (§19).
            let decryption = Decryption(hpkeKey: settings.hpkeKey, joseKey: settings.joseKey, kdcSigningKey: settings.kdcSigningKey)
            var decrypted = try decryption.decrypt(blob: blob, crypto: manifest.crypto)
            defer { zeroize(&decrypted.plaintext) }
            let signed = decrypted.signatureVerified || manifest.authenticity == .kdcSignature
            if !signed {
                guard !settings.requireSignature else {
                    throw .unsigned("distribution is not signed by the KDC (HMAC only) and require_signature=yes")
                }
                log(.warning, "distribution \(distributionID) accepted without a KDC signature (legacy, require_signature=no)")
            }

            // 6. Validate every operation, then apply them all at once.
            if isNodeOperations {
                let components = try Content.components(decrypted.plaintext)
                try state.storeComponents(components)
                try state.recordProcessed(node: nodeID, distributionID: distributionID, at: now)
                try auditLine(distributionID, now: now, result: "components", extra: [("count", .integer(components.count))])
                let report = JSONValue.object([
                    ("successful_components", .array(components.map { .object([("component_id", .string($0))]) }))
                ])
                return DistributionResult(reportKind: .componentStatus, reportJSON: report.serializedString(), signed: signed, keysChanged: 0)
            }

            let operations = try Content.operations(decrypted.plaintext)
            var plan = KeyPlan()
            var successful: [JSONValue] = []  // payload order
            var keyEntries: [JSONValue] = []
            var pings: [JSONValue] = []
            for op in operations {
                switch op {
                case .install(let key):
                    plan.install.append(key)
                    keyEntries.append(.object([("zone_name", .string(key.zone)), ("key_id", .string(key.keyID))]))
                    successful.append(keyEntries.last!)
                case .delete(let zone, let keyID, let tag):
                    plan.delete.append((zone, tag))
                    keyEntries.append(.object([("zone_name", .string(zone)), ("key_id", .string(keyID))]))
                    successful.append(keyEntries.last!)
                case .ping(let index):
                    pings.append(.object([("zone_name", .string("ping")), ("key_id", .string("op-\(index)"))]))
                    successful.append(pings.last!)
                }
            }
            let outcome = try store.apply(plan, now: now, retireAfter: manifest.retireTime)
            for note in outcome.notes { log(.info, note) }
            try state.recordProcessed(node: nodeID, distributionID: distributionID, at: now)
            if let failure = outcome.serverFailure {
                // Files put back, server on its previous keys: the KDC hears which keys failed.
                log(.error, "distribution \(distributionID): the server did not take the keys, previous keys kept: \(failure)")
                try auditLine(distributionID, now: now, result: "install-failed", extra: [("reason", .string(failure))])
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
                return DistributionResult(reportKind: .keyStatus, reportJSON: JSONValue.object(report).serializedString(),
                                          signed: signed, keysChanged: 0, serverFailure: failure)
            }
            let changes = outcome.changes
            for c in changes {
                var extra: [(String, JSONValue)] = [("zone", .string(c.zone)), ("key_tag", .integer(Int(c.keyTag)))]
                if let alg = c.algorithm { extra.append(("algorithm", .integer(Int(alg)))) }
                try auditLine(distributionID, now: now, result: c.kind.rawValue, extra: extra)
                log(.info, "distribution \(distributionID): \(c.kind.rawValue) key \(c.keyTag) for \(c.zone)")
                keyChanged(c)
            }
            if changes.isEmpty {
                try auditLine(distributionID, now: now, result: "accepted", extra: [("operations", .integer(operations.count))])
            }
            let report: JSONValue = successful.isEmpty ? .object([]) : .object([("successful_keys", .array(successful))])
            return DistributionResult(reportKind: .keyStatus, reportJSON: report.serializedString(), signed: signed,
                                      keysChanged: changes.count, keysInstalled: changes.count { $0.kind == .installed })
        }
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
    /// half-way left behind, files of keys deleted long ago, NSD's served files.
    public func housekeeping() {
        let now = clock.now
        try? state.locked { () throws(TDNSError) in store.housekeeping(now: now) }
    }

    /// Audits a distribution refused before it reached ``process`` (e.g. its fetch failed).
    func auditRefusal(_ id: String, _ error: TDNSError) {
        try? state.audit([
            ("time", .integer(clock.now)), ("distribution_id", .string(String(id.prefix(16)))),
            ("result", .string("refused")), ("code", .string("\(error.code)")), ("reason", .string(error.reason)),
        ])
    }

    private func auditLine(_ id: String, now: Int64, result: String, extra: [(String, JSONValue)]) throws(TDNSError) {
        try state.audit([("time", .integer(now)), ("distribution_id", .string(id)), ("result", .string(result))] + extra)
    }

    private static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)
    }
}
