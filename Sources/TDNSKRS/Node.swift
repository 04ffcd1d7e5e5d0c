import Synchronization
import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

/// A Key Receiver Service node on the network (PROTOCOL §5, §10.6, §11), along its data flow:
/// intake (NOTIFY answers, the bounded queue, `state_dir/pending`: Intake.swift), fetch (the
/// manifest authenticated before the data chunks: Fetch.swift), receive (``KeyReceiver``),
/// store (the key stores), confirm (Confirmation.swift) and status (here). The C API's
/// `krs_*` lifecycle functions and `tdns-krs` are thin layers over this class.
///
/// Threads: `start()` opens the listener (its own threads, see TDNSTransport) and one worker
/// that handles queued distributions one at a time; `stop()` closes and joins all of them.
public final class KRSNode: Sendable {
    private let arguments: [String]
    private let clock: KRSClock?
    let log: @Sendable (KRSLogLevel, String) -> Void
    private let keyChanged: @Sendable (KeyStoreChange) -> Void
    let core: Mutex<Core>
    private let running = Mutex<Running?>(nil)
    /// Also seen by the key store: a server tool still running when the node stops is killed.
    let stopping = StopSignal()
    /// Cancels every network wait of this node when it stops; replaced on start.
    let cancellation = Mutex(CancellationFlag())
    /// The pipelined connection a fetch is using, closed by stop() to end the fetch at once.
    let activeClient = Mutex<PipelinedTCPClient?>(nil)
    /// Announced distributions: the bounded queue and `state_dir/pending`.
    let intake: NotifyIntake
    /// Refused NOTIFYs are logged at most this often (a flood must not flood the host's log).
    private let refusalLog = Mutex(RateLimit(perSecond: 10))

    /// Everything that changes after enrollment.
    struct Core: Sendable {
        var receiver: KeyReceiver
        var recent: [DistributionRecord] = []
        var counters = Counters()
    }

    private struct Running: @unchecked Sendable {
        /// nil with `notify_listen=none`: the host hands NOTIFYs to ``handleNotify(_:)``.
        let server: DNSServer?
        let worker: JoinableThread
    }

    /// How handling one distribution ended (the `result` of the status's distributions).
    enum Outcome: String, Sendable {
        case installed
        case installFailed = "install failed"
        case refused
        case fetchFailed = "fetch failed"
        case notForUs = "not for us"
        /// The node stopped while the server was told; processed again at the next start.
        case interrupted
        /// In the replay record and confirmed: nothing fetched.
        case alreadyProcessed = "already processed"
    }

    struct DistributionRecord: Sendable {
        var id: String
        var time: Int64
        var outcome: Outcome
        var detail: String
        var keysChanged: Int
        var keysInstalled = 0
        var confirmed: Bool

        /// A fetch that failed, or keys installed (or refused by the server) whose report the
        /// KDC has not acknowledged: tried again on the retry timer.
        var needsRetry: Bool {
            switch outcome {
            case .fetchFailed: return true
            case .installed, .installFailed: return !confirmed
            case .refused, .notForUs, .interrupted, .alreadyProcessed: return false
            }
        }
    }

    struct Counters: Sendable {
        var notifies = 0
        /// NOTIFYs for a distribution already queued, in flight or done.
        var notifiesIgnored = 0
        var notifiesRefused = 0
        var fetches = 0
        var fetchFailures = 0
        var installed = 0
        var refused = 0
        var confirmations = 0
        var confirmationFailures = 0
        var pendingDropped = 0
    }

    static let recentKept = 32
    /// Larger confirmations go over TCP (RFC 9715's safe EDNS buffer size).
    static let maxUDPConfirmation = 1232
    /// How often an idle worker merges what other instances wrote into `state_dir/pending`.
    static let pendingResync = 30.0

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
        intake = NotifyIntake(directory: receiver.settings.stateDirectory)
        core = Mutex(Core(receiver: receiver))
    }

    public var settings: KRSSettings { core.withLock { $0.receiver.settings } }
    public var receiver: KeyReceiver { core.withLock { $0.receiver } }
    var now: Int64 { receiver.clock.now }

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
            package: package, notifyAddress: notify, chunkType: RRType(rawValue: current.chunkRRType),
            stateDirectory: current.stateDirectory, now: now, keepSettings: kept, log: log)
        let receiver = try KeyReceiver(settings: KRSSettings(arguments: arguments), clock: clock, log: log,
                                       keyChanged: keyChanged, stop: stopping)
        core.withLock { $0.receiver = receiver }
        return outcome.nodeID
    }

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
            loadPending()
            var server: DNSServer? = nil
            if let address {
                let s = try DNSServer(listen: address, udp: true, tcp: true, reusePort: true) { [weak self] request, peer, _ in
                    self?.handleNotify(request, source: peer.host)
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

    /// Merges `state_dir/pending` into the queue; what is older than 24 hours or beyond the
    /// 256 newest is dropped with an audit line (contract §4).
    func loadPending() {
        let time = now
        do {
            let dropped = try intake.load(now: time)
            guard !dropped.isEmpty else { return }
            core.withLock { $0.counters.pendingDropped += dropped.count }
            log(.warning, "pending: \(dropped.count) announced distribution(s) dropped (older than 24 h, or beyond \(NotifyIntake.maxQueued))")
            for d in dropped {
                try? receiver.state.audit([
                    ("time", .integer(time)), ("distribution_id", .string(d.id)), ("result", .string("dropped")),
                    ("reason", .string("pending: \(d.reason)")),
                ])
            }
        } catch {
            log(.warning, "pending: \(error.reason)")
        }
    }

    private func workLoop() {
        receiver.housekeeping()
        var lastSync = NotifyIntake.monotonicNow()
        while !isStopping {
            guard let line = intake.next() else {
                if NotifyIntake.monotonicNow() - lastSync > Self.pendingResync {
                    loadPending()
                    lastSync = NotifyIntake.monotonicNow()
                }
                interruptibleSleep(0.05) { isStopping }
                continue
            }
            settle(line.id, handle(line.id))
        }
    }

    /// What the queue does after a distribution was handled: forget it, try again later, or
    /// (stopping) keep it for the next start.
    func settle(_ id: String, _ handled: Handled) {
        let record = handled.record
        let time = now
        do {
            switch record.outcome {
            case .interrupted:
                intake.release(id)
            case _ where record.needsRetry:
                switch try intake.retry(id, now: time) {
                case .scheduled(let delay):
                    log(.info, "distribution \(id): tried again in \(Int(delay)) s")
                case .notQueued:
                    break
                case .dropped:
                    let reason = "not handled within 24 h of its first NOTIFY; last: \(record.outcome.rawValue): \(record.detail)"
                    log(.warning, "distribution \(id) dropped: \(reason)")
                    core.withLock { $0.counters.pendingDropped += 1 }
                    try? receiver.state.audit([
                        ("time", .integer(time)), ("distribution_id", .string(id)), ("result", .string("dropped")),
                        ("reason", .string(reason)),
                    ])
                }
            default:
                try intake.finish(id, remember: record.confirmed || record.outcome == .notForUs, now: time)
            }
        } catch {
            log(.warning, "pending: \(error.reason)")
        }
    }

    // MARK: - handling one distribution

    /// The outcome of handling one distribution, for the queue, the status and krs_fetch.
    struct Handled: Sendable {
        var record: DistributionRecord
        var result: DistributionResult?
        var error: TDNSError?
    }

    /// Fetches, processes and confirms one distribution, synchronously (`krs_fetch`, tools).
    @discardableResult
    public func fetchAndConfirm(_ rawID: String) throws(TDNSError) -> DistributionResult {
        let id = rawID.lowercasedASCII()
        let handled = handle(id)
        // Done one way or the other: the queue and the pending file follow. (Failures stay as
        // they were: a queued one keeps its place and its retry timer.)
        if !handled.record.needsRetry && handled.record.outcome != .interrupted && intake.ids.contains(id) {
            try? intake.finish(id, remember: handled.record.confirmed || handled.record.outcome == .notForUs, now: now)
        }
        if let error = handled.error { throw error }
        guard let result = handled.result else { throw .internalFailure("distribution \(id): no result") }
        return result
    }

    /// Handles one distribution: resends a confirmation the KDC never acknowledged, skips one
    /// processed before, or fetches (manifest authenticated first), processes and confirms.
    func handle(_ rawID: String) -> Handled {
        let id = rawID.lowercasedASCII()
        var handled = Handled(record: DistributionRecord(id: id, time: now, outcome: .refused, detail: "", keysChanged: 0, confirmed: false))
        defer {
            let r = handled.record
            core.withLock { c in
                c.recent.append(r)
                if c.recent.count > Self.recentKept { c.recent.removeFirst(c.recent.count - Self.recentKept) }
                switch r.outcome {
                case .installed: c.counters.installed += r.keysInstalled
                case .fetchFailed: c.counters.fetchFailures += 1; c.counters.refused += 1
                case .refused, .installFailed: c.counters.refused += 1
                case .notForUs, .interrupted, .alreadyProcessed: break
                }
            }
        }
        // 1. Installed before, but the KDC never heard of it (crash, KDC down): confirm again
        //    instead of fetching what the replay record would refuse.
        if let unconfirmed = try? unconfirmedStore.load(id) {
            let confirmed = confirm(id, unconfirmed)
            if confirmed { try? unconfirmedStore.remove(id) }
            handled.record.outcome = unconfirmed.serverFailure == nil ? .installed : .installFailed
            handled.record.detail = "confirmation resent"
            handled.record.confirmed = confirmed
            handled.result = unconfirmed
            return handled
        }
        // 2. Processed and confirmed before: a repeated NOTIFY fetches nothing.
        if let node = settings.nodeID, (try? receiver.state.wasProcessed(node: node, distributionID: id)) == true {
            handled.record.outcome = .alreadyProcessed
            handled.record.confirmed = true
            handled.error = .replay("distribution \(id) was already processed")
            return handled
        }
        core.withLock { $0.counters.fetches += 1 }
        // 3. Fetch: the manifest is authenticated before any data chunk is asked for.
        let distribution: ReceivedDistribution
        do {
            switch try fetchDistribution(id) {
            case .fetched(let d):
                distribution = d
            case .notForUs(let reason):
                log(.debug, "distribution \(id) is not for this node: \(reason)")
                handled.record.outcome = .notForUs
                handled.record.detail = reason
                handled.error = .wrongNode(reason)
                return handled
            case .refused(let error):
                log(.warning, "distribution \(id) refused: \(error.reason)")
                receiver.auditRefusal(id, error)
                handled.record.detail = "\(error.code): \(error.reason)"
                handled.error = error
                return handled
            }
        } catch {
            handled.record.outcome = isStopping ? .interrupted : .fetchFailed
            handled.record.detail = error.reason
            handled.error = error
            log(.warning, "distribution \(id): fetch failed: \(error.reason)")
            receiver.auditRefusal(id, error)
            return handled
        }
        // 4. Receive: verify, decrypt, validate, install (all or nothing).
        let result: DistributionResult
        do {
            result = try receiver.process(distribution)
        } catch {
            handled.record.detail = "\(error.code): \(error.reason)"
            // Stopped while the server was being told: nothing was kept or recorded, and the
            // pending record brings the distribution back at the next start.
            if isStopping { handled.record.outcome = .interrupted }
            handled.error = error
            return handled
        }
        handled.result = result
        handled.record.outcome = result.serverFailure == nil ? .installed : .installFailed
        handled.record.detail = result.serverFailure ?? ""
        handled.record.keysChanged = result.keysChanged
        handled.record.keysInstalled = result.keysInstalled
        // 5. Confirm. The report is kept until the KDC acknowledges it, so that it survives a crash.
        try? unconfirmedStore.save(id, result)
        handled.record.confirmed = confirm(id, result)
        if handled.record.confirmed { try? unconfirmedStore.remove(id) }
        return handled
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
            ("require_notify_signature", .bool(settings.requireNotifySignature)),
            ("pending", .array(intake.ids.map { .string($0) })),
            ("distributions", .array(recent.reversed().map { r in
                .object([("id", .string(r.id)), ("time", .integer(r.time)), ("result", .string(r.outcome.rawValue)),
                         ("detail", .string(r.detail)), ("keys_changed", .integer(r.keysChanged)), ("confirmed", .bool(r.confirmed))])
            })),
            ("keys", .array(keys)),
            // The audit log outlives the process: this is what a separate `status` can show.
            ("audit", .array(receiver.state.recentAudit(Self.recentKept))),
            ("counters", .object([
                ("notifies", .integer(counters.notifies)), ("notifies_ignored", .integer(counters.notifiesIgnored)),
                ("notifies_refused", .integer(counters.notifiesRefused)),
                ("fetches", .integer(counters.fetches)), ("fetch_failures", .integer(counters.fetchFailures)),
                ("keys_installed", .integer(counters.installed)),
                ("refused", .integer(counters.refused)), ("confirmations", .integer(counters.confirmations)),
                ("confirmation_failures", .integer(counters.confirmationFailures)),
                ("pending_dropped", .integer(counters.pendingDropped)),
            ])),
        ])
        return status.serializedString()
    }

    /// Logs a refused NOTIFY, at most ``RateLimit/perSecond`` lines a second plus one line
    /// counting what was left out.
    func logRefusal(_ message: String) {
        let second = Int64(NotifyIntake.monotonicNow())
        let (allowed, suppressed) = refusalLog.withLock { $0.admit(second: second) }
        if suppressed > 0 { log(.warning, "\(suppressed) refused NOTIFYs not logged in the last second") }
        if allowed { log(.info, message) }
    }
}

/// At most `perSecond` events a second pass; the rest are counted and reported once.
struct RateLimit: Sendable {
    let perSecond: Int
    var second: Int64 = 0
    var count = 0
    var suppressed = 0

    init(perSecond: Int) { self.perSecond = perSecond }

    /// Whether this event may be logged, and how many were left out in the previous second
    /// (reported once, when a new second begins).
    mutating func admit(second now: Int64) -> (Bool, Int) {
        var report = 0
        if now != second {
            report = suppressed
            second = now
            count = 0
            suppressed = 0
        }
        count += 1
        if count > perSecond {
            suppressed += 1
            return (false, report)
        }
        return (true, report)
    }
}
