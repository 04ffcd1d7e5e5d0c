import Synchronization
import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

/// A Key Receiver Service node on the network (PROTOCOL §5, §10.6, §11): enrollment, the
/// NOTIFY listener, fetching over TCP with pipelining and retries, processing through
/// ``KeyReceiver``, and SIG(0)-signed confirmations. The C API's `krs_*` lifecycle functions
/// and `tdns-krs` are thin layers over this class.
///
/// Threads: `start()` opens the listener (its own threads, see TDNSTransport) and one worker
/// that fetches queued distributions one at a time; `stop()` closes and joins all of them.
public final class KRSNode: Sendable {
    private let arguments: [String]
    private let clock: KRSClock?
    private let log: @Sendable (KRSLogLevel, String) -> Void
    private let keyChanged: @Sendable (KeyStoreChange) -> Void
    private let core: Mutex<Core>
    private let running = Mutex<Running?>(nil)
    /// Also seen by the key store: a server tool still running when the node stops is killed.
    private let stopping = StopSignal()
    /// Cancels every network wait of this node when it stops; replaced on start.
    private let cancellation = Mutex(CancellationFlag())
    /// The pipelined connection a fetch is using, closed by stop() to end the fetch at once.
    private let activeClient = Mutex<PipelinedTCPClient?>(nil)

    /// Everything that changes after enrollment.
    private struct Core: Sendable {
        var receiver: KeyReceiver
        var queue: [String] = []
        var known: Set<String> = []
        var recent: [DistributionRecord] = []
        var counters = Counters()
    }

    private struct Running: @unchecked Sendable {
        /// nil with `notify_listen=none`: the host hands NOTIFYs to ``handleNotify(_:)``.
        let server: DNSServer?
        let worker: JoinableThread
    }

    struct DistributionRecord: Sendable {
        var id: String
        var time: Int64
        var result: String
        var detail: String
        var keysChanged: Int
        var keysInstalled = 0
        var confirmed: Bool
    }

    struct Counters: Sendable {
        var notifies = 0
        var notifiesIgnored = 0
        var fetches = 0
        var installed = 0
        var refused = 0
        var confirmations = 0
        var confirmationFailures = 0
    }

    /// How long one DNS exchange may take, and how often a failed fetch or confirmation is tried.
    static let exchangeTimeout = 5.0
    static let attempts = 3
    static let recentKept = 32
    /// Larger confirmations go over TCP (RFC 9715's safe EDNS buffer size).
    static let maxUDPConfirmation = 1232
    static let maxQueued = 256

    public init(
        arguments: [String], clock: KRSClock? = nil,
        log: @escaping @Sendable (KRSLogLevel, String) -> Void = { _, _ in },
        keyChanged: @escaping @Sendable (KeyStoreChange) -> Void = { _ in }
    ) throws(TDNSError) {
        self.arguments = arguments
        self.clock = clock
        self.log = log
        self.keyChanged = keyChanged
        let receiver = try KeyReceiver(settings: KRSSettings(arguments: arguments), clock: clock, log: log,
                                       keyChanged: keyChanged, stop: stopping)
        core = Mutex(Core(receiver: receiver))
    }

    public var settings: KRSSettings { core.withLock { $0.receiver.settings } }
    public var receiver: KeyReceiver { core.withLock { $0.receiver } }
    private var now: Int64 { receiver.clock.now }

    // MARK: - enrollment

    /// Enrolls with the KDC named in the package and reloads the settings it wrote.
    /// - Parameter notifyAddress: overrides `notify_listen`; one of the two is required.
    public func enroll(package text: [UInt8], notifyAddress: String? = nil) throws(TDNSError) -> String {
        let package = try EnrollmentPackage(fileContents: text)
        let current = settings
        guard let notify = notifyAddress ?? current.notifyListen else {
            throw .config("notify_listen: required for enrollment (the address the KDC sends NOTIFYs to)")
        }
        // Settings given now that describe the node's setup, not its identity, are kept too.
        // The last value of each (later settings win), once.
        var seen = Set<String>()
        let kept = Array(arguments.reversed().filter { arg in
            guard let key = KRSSettings.setupSettings.first(where: { arg.hasPrefix($0 + "=") }) else { return false }
            return seen.insert(key).inserted
        }.reversed())
        let outcome = try Enrollment.run(
            package: package, notifyAddress: notify, stateDirectory: current.stateDirectory, now: now,
            keepSettings: kept, log: log)
        let receiver = try KeyReceiver(settings: KRSSettings(arguments: arguments), clock: clock, log: log,
                                       keyChanged: keyChanged, stop: stopping)
        core.withLock { $0.receiver = receiver }
        return outcome.nodeID
    }

    // MARK: - NOTIFY

    /// Answers a NOTIFY at once and queues the distribution it announces (PROTOCOL §5.1
    /// step 2). Returns the response to send, or nil for a message that gets no answer.
    public func handleNotify(_ request: [UInt8]) -> [UInt8]? {
        guard let message = try? DNSMessage(wireEncoded: request), !message.flags.qr else { return nil }
        let settings = self.settings
        guard message.opcode == .notify, let zoneText = settings.controlZone, let zone = try? DNSName(zoneText) else {
            return try? TDNSMessages.notifyResponse(to: message, rcode: .refused).serialize()
        }
        guard let notify = try? TDNSMessages.parseNotify(message, controlZone: zone) else {
            return try? TDNSMessages.notifyResponse(to: message, rcode: .formErr).serialize()
        }
        // The NOTIFY is only a trigger: what it announces is authenticated when fetched (§19).
        if let id = notify.distributionID {
            enqueue(id)
        } else {
            core.withLock { $0.counters.notifiesIgnored += 1 }
        }
        return try? TDNSMessages.notifyResponse(to: message).serialize()
    }

    /// Queues a distribution unless it is queued, in flight or was handled already: the same
    /// NOTIFY a hundred times means one fetch.
    func enqueue(_ id: String) {
        let id = id.lowercasedASCII()
        let added: Bool = core.withLock { c in
            c.counters.notifies += 1
            guard !c.known.contains(id), c.queue.count < Self.maxQueued else {
                c.counters.notifiesIgnored += 1
                return false
            }
            c.known.insert(id)
            c.queue.append(id)
            return true
        }
        // Recorded before it is fetched, so that a node killed mid-installation processes the
        // distribution after a restart (installation itself is atomic).
        if added { try? pendingStore.add(id) }
    }

    private var pendingStore: PendingStore { PendingStore(directory: settings.stateDirectory) }

    // MARK: - start / stop

    public func start() throws(TDNSError) {
        let settings = self.settings
        guard settings.isEnrolled else { throw .config("not enrolled: nothing to listen for") }
        let address = try settings.notifyListen.map { (l) throws(TDNSError) in try SocketAddress(l) }
        try running.withLock { (current) throws(TDNSError) in
            guard current == nil else { return }
            stopping.set(false)
            cancellation.withLock { $0 = CancellationFlag() }
            // Distributions announced before a crash or stop: fetched (or, if installed,
            // confirmed) again. (The key store's housekeeping runs on the worker: it takes the
            // state lock, which an instance this host is about to unload may hold — knotd and
            // named load the new instance first, in the thread the old one may be waiting for.)
            for id in (try? pendingStore.load()) ?? [] {
                core.withLock { c in
                    if !c.known.contains(id) {
                        c.known.insert(id)
                        c.queue.append(id)
                    }
                }
            }
            var server: DNSServer? = nil
            if let address {
                let s = try DNSServer(listen: address, udp: true, tcp: true, reusePort: true) { [weak self] request, _, _ in
                    self?.handleNotify(request)
                }
                try s.start()
                server = s
            }
            let worker: JoinableThread
            do throws(TDNSError) {
                worker = try JoinableThread { [weak self] in self?.workLoop() }
            } catch {
                server?.stop()
                throw error
            }
            current = Running(server: server, worker: worker)
            if let server {
                log(.info, "listening for NOTIFYs on \(server.boundAddress)")
            } else {
                log(.info, "started; NOTIFYs come from the host (notify_listen=none)")
            }
        }
    }

    public func stop() {
        let current = running.withLock { r in
            defer { r = nil }
            return r
        }
        guard let current else { return }
        stopping.set(true)
        cancellation.withLock { $0.cancel() }
        activeClient.withLock { $0?.close() }
        current.server?.stop()
        current.worker.join()
        log(.info, "stopped")
    }

    var isStopping: Bool { stopping.isSet }

    private func workLoop() {
        receiver.housekeeping()
        while !isStopping {
            let next: String? = core.withLock { c in c.queue.isEmpty ? nil : c.queue.removeFirst() }
            guard let id = next else {
                interruptibleSleep(0.05) { isStopping }
                continue
            }
            _ = try? fetchAndConfirm(id)
        }
    }

    // MARK: - fetch

    /// Fetches, processes and confirms one distribution, synchronously.
    @discardableResult
    public func fetchAndConfirm(_ rawID: String) throws(TDNSError) -> DistributionResult {
        let id = rawID.lowercasedASCII()
        // Installed before, but the KDC never heard of it (crash, KDC down): confirm again
        // instead of fetching what the replay record would refuse.
        if let unconfirmed = try? unconfirmedStore.load(id) {
            let confirmed = confirm(id, unconfirmed)
            if confirmed {
                try? unconfirmedStore.remove(id)
                try? pendingStore.remove(id)
            }
            // `now` locks `core` itself (through the receiver): read it before taking the lock.
            let entry = DistributionRecord(id: id, time: now, result: "installed", detail: "confirmation resent",
                                           keysChanged: 0, confirmed: confirmed)
            core.withLock { c in
                c.recent.append(entry)
                if !confirmed { _ = c.known.remove(id) }
            }
            return unconfirmed
        }
        core.withLock { $0.counters.fetches += 1 }
        var record = DistributionRecord(id: id, time: now, result: "refused", detail: "", keysChanged: 0, confirmed: false)
        defer {
            let r = record
            if r.result == "fetch failed" || r.result == "interrupted" || (r.result == "installed" && !r.confirmed) {
                // Kept in the pending record for the next start; a new NOTIFY may retry now.
                core.withLock { _ = $0.known.remove(id) }
            } else {
                try? pendingStore.remove(id)
            }
            core.withLock { c in
                c.recent.append(r)
                if c.recent.count > Self.recentKept { c.recent.removeFirst(c.recent.count - Self.recentKept) }
                if r.result == "installed" { c.counters.installed += r.keysInstalled } else if r.result != "not for us" { c.counters.refused += 1 }
            }
        }
        let records: [[UInt8]]
        do {
            records = try fetchRecords(id)
        } catch {
            record.result = error.code == .wrongNode ? "not for us" : "fetch failed"
            record.detail = error.reason
            if error.code == .wrongNode {
                log(.debug, "distribution \(id) is not for this node")
            } else {
                log(.warning, "distribution \(id): fetch failed: \(error.reason)")
                receiver.auditRefusal(id, error)
            }
            throw error
        }
        let result: DistributionResult
        do {
            result = try receiver.process(distributionID: id, records: records)
        } catch {
            record.detail = "\(error.code): \(error.reason)"
            // Stopped while the server was being told: nothing was kept or recorded, and the
            // pending record brings the distribution back at the next start.
            if isStopping { record.result = "interrupted" }
            throw error
        }
        record.result = result.serverFailure == nil ? "installed" : "install failed"
        record.detail = result.serverFailure ?? ""
        record.keysChanged = result.keysChanged
        record.keysInstalled = result.keysInstalled
        // The report is kept until the KDC acknowledges it, so that it survives a crash.
        try? unconfirmedStore.save(id, result)
        record.confirmed = confirm(id, result)
        if record.confirmed { try? unconfirmedStore.remove(id) }
        return result
    }

    private var unconfirmedStore: UnconfirmedStore { UnconfirmedStore(directory: settings.stateDirectory) }

    /// The manifest and its data chunks, with bounded retries (PROTOCOL §5.1 steps 3–5).
    func fetchRecords(_ id: String) throws(TDNSError) -> [[UInt8]] {
        let settings = self.settings
        guard let nodeText = settings.nodeID, let zoneText = settings.controlZone, let kdcText = settings.kdcAddress else {
            throw .config("kdc_address, node_id and control_zone are needed to fetch")
        }
        let kdc = try SocketAddress(kdcText)
        let node = try DNSName(nodeText)
        let zone = try DNSName(zoneText)
        let type = RRType(rawValue: settings.chunkRRType)
        var lastError = TDNSError(.network, "no attempt made")
        for attempt in 1...Self.attempts {
            if isStopping { throw .network("stopping") }
            do throws(TDNSError) {
                let manifestName = try TDNSMessages.chunkQueryName(sequence: 0, nodeID: node, distributionID: id, controlZone: zone)
                let query = TDNSMessages.chunkQuery(id: UInt16.random(in: 1...UInt16.max), name: manifestName, chunkType: type)
                let cancel = cancellation.withLock { $0 }
                let answer = try DNSMessage(wireEncoded: try DNSClient.exchange(
                    try query.serialize(), server: kdc, over: .tcp, timeout: Self.exchangeTimeout, cancellation: cancel))
                guard let manifest = try TDNSMessages.chunkAnswer(answer, to: query) else {
                    // SERVFAIL / NXDOMAIN: the KDC NOTIFYs every node; this one is not for us (§13).
                    throw TDNSError.wrongNode("the KDC has no distribution \(id) for this node (\(answer.rcode))")
                }
                guard manifest.sequence == 0 else { throw TDNSError.malformed("the manifest answer has sequence \(manifest.sequence)") }
                let count = try Manifest.peekChunkCount(manifest)
                var records = [try manifest.rdata()]
                if count > 0 {
                    var queries: [DNSMessage] = []
                    var usedIDs = Set<UInt16>()
                    for seq in 1...count {
                        var qid = UInt16.random(in: 1...UInt16.max)
                        while usedIDs.contains(qid) { qid = UInt16.random(in: 1...UInt16.max) }
                        usedIDs.insert(qid)
                        let name = try TDNSMessages.chunkQueryName(sequence: UInt16(seq), nodeID: node, distributionID: id, controlZone: zone)
                        queries.append(TDNSMessages.chunkQuery(id: qid, name: name, chunkType: type))
                    }
                    let client = try PipelinedTCPClient(server: kdc, timeout: Self.exchangeTimeout, cancellation: cancel)
                    activeClient.withLock { $0 = client }
                    defer {
                        activeClient.withLock { $0 = nil }
                        client.close()
                    }
                    if isStopping { throw TDNSError.network("stopping") }
                    var wire: [[UInt8]] = []
                    for q in queries { wire.append(try q.serialize()) }
                    let answers = try client.exchange(wire)
                    for (q, a) in zip(queries, answers) {
                        guard let chunk = try TDNSMessages.chunkAnswer(try DNSMessage(wireEncoded: a), to: q) else {
                            throw TDNSError.dns("data chunk answered with an error")
                        }
                        records.append(try chunk.rdata())
                    }
                }
                return records
            } catch {
                lastError = error
                if error.code == .wrongNode || error.code == .malformed { throw error }
                if attempt < Self.attempts {
                    interruptibleSleep(Double(1 << (attempt - 1))) { isStopping }
                }
            }
        }
        throw lastError
    }

    // MARK: - confirmation

    /// Sends the status report to the KDC (PROTOCOL §10.6), SIG(0)-signed with the node key
    /// (§19), from the notify address's IP, retried until acknowledged. Returns whether it was.
    func confirm(_ id: String, _ result: DistributionResult) -> Bool {
        let settings = self.settings
        guard result.reportJSON != "{}", let kdcText = settings.kdcAddress, let zoneText = settings.controlZone,
              let kdc = try? SocketAddress(kdcText), let zone = try? DNSName(zoneText) else { return false }
        let source = settings.notifyListen.flatMap { try? SocketAddress($0) }.flatMap { try? SocketAddress(host: $0.host, port: 0) }
        do {
            let option = try ChunkOption(
                contentType: result.reportKind == .keyStatus ? .keyStatusReport : .componentStatusReport,
                content: Array(result.reportJSON.utf8))
            let notify = try TDNSMessages.notify(
                id: UInt16.random(in: 1...UInt16.max), distributionID: id, controlZone: zone,
                chunkType: RRType(rawValue: settings.chunkRRType), chunkOption: option)
            let wire: [UInt8]
            if let key = settings.sig0Key, let node = settings.nodeID {
                wire = try SIG0Signatures.sign(notify, with: key, signerName: try DNSName(node), now: now)
            } else {
                wire = try notify.serialize()
            }
            let cancel = cancellation.withLock { $0 }
            for attempt in 1...Self.attempts where !isStopping {
                // UDP as the Go KRS sends it; TCP for a report too large for one unfragmented
                // datagram (many failed keys) and for the last attempt (UDP may be filtered).
                let transport: DNSTransportKind = wire.count > Self.maxUDPConfirmation || attempt == Self.attempts ? .tcp : .udp
                if let answer = try? DNSMessage(wireEncoded: try DNSClient.exchange(
                    wire, server: kdc, over: transport, timeout: Self.exchangeTimeout, source: source, cancellation: cancel)),
                   TDNSMessages.isResponse(answer, to: notify) {
                    core.withLock { $0.counters.confirmations += 1 }
                    log(.info, "distribution \(id) confirmed to the KDC")
                    return true
                }
                if attempt < Self.attempts { interruptibleSleep(Double(1 << (attempt - 1))) { isStopping } }
            }
        } catch {
            log(.warning, "distribution \(id): confirmation not sent: \(error.reason)")
        }
        core.withLock { $0.counters.confirmationFailures += 1 }
        return false
    }

    // MARK: - status

    /// Node, enrollment, KDC address, listener, last distributions, installed keys, counters.
    public func statusJSON() -> String {
        let settings = self.settings
        let (recent, counters) = core.withLock { ($0.recent, $0.counters) }
        let (started, listening) = running.withLock { ($0 != nil, $0?.server != nil) }
        func opt(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        var keys: [JSONValue] = []
        if let dir = settings.keyDirectory, let files = try? KeyFileDirectory(directory: dir) {
            let time = now
            for k in files.allKeys() {
                // Deleted keys whose files BIND still needs for a while are not listed.
                if let d = k.delete, d <= time { continue }
                let state = k.inactive.map { $0 <= time } == true ? "retired" : "active"
                keys.append(.object([("zone", .string(k.zone)), ("key_tag", .integer(Int(k.keyTag))),
                                     ("algorithm", .integer(Int(k.algorithm))), ("ksk", .bool(k.isKSK)), ("state", .string(state))]))
            }
        }
        let status: JSONValue = .object([
            ("node_id", opt(settings.nodeID)), ("control_zone", opt(settings.controlZone)),
            ("enrolled", .bool(settings.isEnrolled)), ("kdc_address", opt(settings.kdcAddress)),
            ("notify_listen", opt(settings.notifyListen)), ("listening", .bool(listening)), ("running", .bool(started)),
            ("require_signature", .bool(settings.requireSignature)),
            ("distributions", .array(recent.reversed().map { r in
                .object([("id", .string(r.id)), ("time", .integer(r.time)), ("result", .string(r.result)),
                         ("detail", .string(r.detail)), ("keys_changed", .integer(r.keysChanged)), ("confirmed", .bool(r.confirmed))])
            })),
            ("keys", .array(keys)),
            // The audit log outlives the process: this is what a separate `status` can show.
            ("audit", .array(receiver.state.recentAudit(Self.recentKept))),
            ("counters", .object([
                ("notifies", .integer(counters.notifies)), ("notifies_ignored", .integer(counters.notifiesIgnored)),
                ("fetches", .integer(counters.fetches)), ("keys_installed", .integer(counters.installed)),
                ("refused", .integer(counters.refused)), ("confirmations", .integer(counters.confirmations)),
                ("confirmation_failures", .integer(counters.confirmationFailures)),
            ])),
        ])
        return status.serializedString()
    }
}

/// The distributions announced but not yet handled (`state_dir/pending`, one ID per line),
/// rewritten atomically on every change.
struct PendingStore {
    let directory: String
    var path: String { "\(directory)/pending" }

    func load() throws(TDNSError) -> [String] {
        guard POSIXFile.exists(path) else { return [] }
        let text = try POSIXFile.read(path, limit: 1 << 20)
        return text.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
            .filter { TDNSMessages.isValidDistributionID($0) }
    }

    func add(_ id: String) throws(TDNSError) {
        var ids = try load()
        guard !ids.contains(id) else { return }
        ids.append(id)
        try save(ids)
    }

    func remove(_ id: String) throws(TDNSError) {
        let ids = try load()
        guard ids.contains(id) else { return }
        try save(ids.filter { $0 != id })
    }

    private func save(_ ids: [String]) throws(TDNSError) {
        try POSIXFile.writeAtomically(path, bytes: Array(ids.map { $0 + "\n" }.joined().utf8), mode: 0o600)
    }
}

/// Status reports of installed distributions the KDC has not acknowledged yet
/// (`state_dir/unconfirmed/<id>.json`): resent after a restart or a repeated NOTIFY.
struct UnconfirmedStore {
    let directory: String
    var folder: String { "\(directory)/unconfirmed" }

    func save(_ id: String, _ result: DistributionResult) throws(TDNSError) {
        try POSIXFile.makeDirectory(folder, mode: 0o700)
        let json = JSONValue.object([
            ("kind", .integer(Int(result.reportKind.rawValue))), ("report", .string(result.reportJSON)),
            ("signed", .bool(result.signed)), ("keys_changed", .integer(result.keysChanged)),
        ])
        try POSIXFile.writeAtomically("\(folder)/\(id).json", bytes: json.serialized(), mode: 0o600)
    }

    func load(_ id: String) throws(TDNSError) -> DistributionResult {
        // IDs also come from krs_fetch callers: only hex ever becomes part of a path.
        guard (1...16).contains(id.utf8.count), id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
              POSIXFile.exists("\(folder)/\(id).json") else { throw .storage("no unconfirmed report for \(id)") }
        let json = try JSONValue.parse(try POSIXFile.read("\(folder)/\(id).json", limit: 1 << 20))
        guard let kindValue = json["kind"]?.int64Value, let kindByte = UInt8(exactly: kindValue),
              let kind = DistributionResult.ReportKind(rawValue: kindByte), let report = json["report"]?.stringValue else {
            throw .malformed("unconfirmed report for \(id) is damaged")
        }
        return DistributionResult(
            reportKind: kind, reportJSON: report, signed: json["signed"]?.boolValue ?? false,
            keysChanged: Int(json["keys_changed"]?.int64Value ?? 0))
    }

    func remove(_ id: String) throws(TDNSError) {
        try POSIXFile.remove("\(folder)/\(id).json")
    }
}
