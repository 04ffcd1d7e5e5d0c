import Synchronization
import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

/// A Key Receiver Service node on the network (PROTOCOL §5, §10.6, §11): the lifecycle of the
/// steps a distribution goes through, and the wiring between them —
///
/// 1. intake: the NOTIFY answer, the bounded queue and `state_dir/pending` (``NotifyIntake``,
///    Intake.swift);
/// 2. fetch: the manifest, authenticated before the data chunks are asked for (``Fetcher``,
///    Fetch.swift), giving a ``ReceivedDistribution``;
/// 3. receive: verify, decrypt, validate (``KeyReceiver``, Receive.swift);
/// 4. store: the key store of the server (Store/);
/// 5. confirm: the report to the KDC (``Confirmer``, Confirm.swift);
/// 6. status (Status.swift).
///
/// The C API's `krs_*` lifecycle functions and `tdns-krs` are thin layers over this class.
/// Threads: `start()` opens the listener (its own threads, see TDNSTransport) and one worker
/// that handles queued distributions one at a time; `stop()` stops and joins all of them.
public final class KRSNode: Sendable {
    let log: @Sendable (KRSLogLevel, String) -> Void
    private let keyChanged: @Sendable (KeyStoreChange) -> Void
    /// Overrides the settings' clock (the C API's host clock).
    private let clock: WallClock?
    /// The node's one stop token: set by ``stop()`` — it ends the worker's loop, every network
    /// wait, the sleeps between attempts and a server tool still running — and cleared by
    /// ``start()``.
    let stopToken = StopToken()
    /// What the node did: the status's distributions and counters.
    let activity = NodeActivity()
    /// Announced distributions: the NOTIFY answers, the queue and `state_dir/pending`.
    let intake: NotifyIntake
    private let steps: Mutex<Steps>
    private let running = Mutex<Running?>(nil)

    /// What one set of settings builds: replaced as a whole when enrollment writes new ones.
    struct Steps: Sendable {
        let settings: KRSSettings
        let receiver: KeyReceiver
        /// nil until the node knows its KDC (`kdc_address`, `node_id`, `control_zone`).
        let fetcher: Fetcher?
        let confirmer: Confirmer?
        let unconfirmed: UnconfirmedStore
    }

    private struct Running: Sendable {
        /// nil with `notify_listen=none`: the host hands NOTIFYs to ``handleNotify(_:)``.
        let server: DNSServer?
        let worker: JoinableThread
        /// nil without `metrics_listen` (Metrics.swift).
        let metrics: HTTPMetricsServer?
    }

    /// How often an idle worker merges what other instances wrote into `state_dir/pending`.
    static let pendingResync = 30.0

    /// A node from settings parsed once (`krs_init`): keys are read, names and addresses
    /// parsed there, and used as they are from then on.
    ///
    /// - Parameters:
    ///   - clock: overrides the `now=` setting and the system clock.
    ///   - log: receives log lines (never key material).
    ///   - keyChanged: told about every key file installed or removed, after the fact.
    public init(
        settings: KRSSettings, clock: WallClock? = nil,
        log: @escaping @Sendable (KRSLogLevel, String) -> Void = { _, _ in },
        keyChanged: @escaping @Sendable (KeyStoreChange) -> Void = { _ in }
    ) throws(TDNSError) {
        self.clock = clock
        self.log = log
        self.keyChanged = keyChanged
        intake = NotifyIntake(directory: settings.stateDirectory, activity: activity, log: log)
        steps = Mutex(try Self.steps(settings, clock: clock, log: log, keyChanged: keyChanged, stop: stopToken, activity: activity))
    }

    /// A node from `key=value` settings (see ``KRSSettings``).
    public convenience init(
        arguments: [String], clock: WallClock? = nil,
        log: @escaping @Sendable (KRSLogLevel, String) -> Void = { _, _ in },
        keyChanged: @escaping @Sendable (KeyStoreChange) -> Void = { _ in }
    ) throws(TDNSError) {
        try self.init(settings: KRSSettings(arguments: arguments), clock: clock, log: log, keyChanged: keyChanged)
    }

    private static func steps(
        _ settings: KRSSettings, clock: WallClock?, log: @escaping @Sendable (KRSLogLevel, String) -> Void,
        keyChanged: @escaping @Sendable (KeyStoreChange) -> Void, stop: StopToken, activity: NodeActivity
    ) throws(TDNSError) -> Steps {
        Steps(
            settings: settings,
            receiver: try KeyReceiver(settings: settings, clock: clock, log: log, keyChanged: keyChanged, stop: stop),
            fetcher: Fetcher(settings: settings, stop: stop),
            confirmer: Confirmer(settings: settings, stop: stop, activity: activity, log: log),
            unconfirmed: UnconfirmedStore(directory: settings.stateDirectory))
    }

    private var current: Steps { steps.withLock { $0 } }
    public var settings: KRSSettings { current.settings }
    public var receiver: KeyReceiver { current.receiver }
    var now: Int64 { current.receiver.clock.now }

    // MARK: - enrollment

    /// Enrolls with the KDC named in the package and reads the settings again, with the
    /// `krs.conf` it wrote.
    /// - Parameter notifyAddress: overrides `notify_listen`; one of the two is required.
    public func enroll(package text: [UInt8], notifyAddress: String? = nil) throws(TDNSError) -> String {
        let package = try EnrollmentPackage(fileContents: text)
        let settings = self.settings
        guard let notify = notifyAddress ?? settings.notifyListen?.description else {
            throw .config("notify_listen: required for enrollment (the address the KDC sends NOTIFYs to)")
        }
        // Settings given now that describe the node's setup, not its identity, are kept too.
        // The last value of each (later settings win), once.
        var seen = Set<String>()
        let kept = Array(settings.arguments.reversed().filter { arg in
            guard let key = KRSSettings.setupSettings.first(where: { arg.hasPrefix($0 + "=") }) else { return false }
            return seen.insert(key).inserted
        }.reversed())
        let outcome = try Enrollment.run(
            package: package, notifyAddress: notify, chunkType: settings.chunkType,
            stateDirectory: settings.stateDirectory, now: now, keepSettings: kept, log: log)
        let enrolled = try Self.steps(KRSSettings(arguments: settings.arguments), clock: clock, log: log, keyChanged: keyChanged,
                                      stop: stopToken, activity: activity)
        steps.withLock { $0 = enrolled }
        return outcome.nodeID
    }

    // MARK: - start / stop

    public func start() throws(TDNSError) {
        let settings = self.settings
        guard settings.isEnrolled else { throw .config("not enrolled: nothing to listen for") }
        try running.withLock { (current) throws(TDNSError) in
            guard current == nil else { return }
            stopToken.reset()
            // Distributions announced before a crash or stop: fetched (or, if installed,
            // confirmed) again. (The key store's housekeeping runs on the worker: it takes the
            // state lock, which an instance this host is about to unload may hold — knotd and
            // named load the new instance first, in the thread the old one may be waiting for.)
            loadPending()
            var server: DNSServer? = nil
            if let address = settings.notifyListen {
                let s = try DNSServer(listen: address, udp: true, tcp: true, reusePort: true) { [weak self] request, peer, _ in
                    self?.handleNotify(request, source: peer.host)
                }
                try s.start()
                server = s
            }
            let metrics: HTTPMetricsServer?
            do throws(TDNSError) {
                metrics = try startMetrics(settings)
            } catch {
                server?.stop()
                throw error
            }
            let worker: JoinableThread
            do throws(TDNSError) {
                worker = try JoinableThread { [weak self] in self?.workLoop() }
            } catch {
                metrics?.stop()
                server?.stop()
                throw error
            }
            current = Running(server: server, worker: worker, metrics: metrics)
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
        stopToken.stop()
        current.metrics?.stop()
        current.server?.stop()
        current.worker.join()
        log(.info, "stopped")
    }

    private var isRunning: (running: Bool, listening: Bool) { running.withLock { ($0 != nil, $0?.server != nil) } }

    // MARK: - the intake

    /// Answers a NOTIFY a host received (`krs_handle_notify`). The C signature carries no peer
    /// address, so every such NOTIFY counts against one source's share
    /// (``NotifyIntake/hostSource``).
    public func handleNotify(_ request: [UInt8]) -> [UInt8]? {
        handleNotify(request, source: NotifyIntake.hostSource)
    }

    /// Answers a NOTIFY from `source` (``NotifyIntake/answer(_:source:settings:now:)``).
    func handleNotify(_ request: [UInt8], source: String) -> [UInt8]? {
        intake.answer(request, source: source, settings: settings, now: now)
    }

    /// Empties the NOTIFY queue in memory: for the fuzzing harness, which feeds one node
    /// millions of NOTIFYs and checks each answer on its own.
    package func resetNotifyQueue() {
        intake.clear()
    }

    /// Merges `state_dir/pending` into the queue; what is older than 24 hours or beyond the
    /// 256 newest is dropped with an audit line (contract §4).
    func loadPending() {
        let time = now
        do {
            let dropped = try intake.load(now: time)
            guard !dropped.isEmpty else { return }
            activity.count { $0.pendingDropped += dropped.count }
            log(.warning, "pending: \(dropped.count) announced distribution(s) dropped (older than 24 h, or beyond \(NotifyIntake.maxQueued))")
            for d in dropped { auditDropped(d.id, reason: "pending: \(d.reason)", time: time) }
        } catch {
            log(.warning, "pending: \(error.reason)")
        }
    }

    private func auditDropped(_ id: DistributionID, reason: String, time: Int64) {
        try? receiver.state.audit([
            ("time", .integer(time)), ("distribution_id", .string(id.text)), ("result", .string("dropped")),
            ("reason", .string(reason)),
        ])
    }

    private func workLoop() {
        receiver.housekeeping()
        var lastSync = MonotonicClock.now()
        while !stopToken.isStopped {
            guard let line = intake.next() else {
                if MonotonicClock.now() - lastSync > Self.pendingResync {
                    loadPending()
                    lastSync = MonotonicClock.now()
                }
                stopToken.sleep(0.05)
                continue
            }
            settle(line.id, handle(line.id))
        }
    }

    /// What the queue does after a distribution was handled: forget it, try again later, or
    /// (stopping) keep it for the next start.
    func settle(_ id: DistributionID, _ handled: Handled) {
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
                    activity.count { $0.pendingDropped += 1 }
                    auditDropped(id, reason: reason, time: time)
                }
            default:
                try intake.finish(id, remember: record.isSettled, now: time)
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
    ///
    /// - Throws: `.malformed` for an ID that is not 4–16 hex characters of even length; else
    ///   what handling it ended with.
    @discardableResult
    public func fetchAndConfirm(_ text: String) throws(TDNSError) -> DistributionResult {
        let id = try DistributionID(validating: text)
        let handled = handle(id)
        // Done one way or the other: the queue and the pending file follow. (Failures stay as
        // they were: a queued one keeps its place and its retry timer.)
        if !handled.record.needsRetry && handled.record.outcome != .interrupted && intake.contains(id) {
            try? intake.finish(id, remember: handled.record.isSettled, now: now)
        }
        if let error = handled.error { throw error }
        guard let result = handled.result else { throw .internalFailure("distribution \(id): no result") }
        return result
    }

    /// Handles one distribution, step by step: resends a confirmation the KDC never
    /// acknowledged, skips one processed before, or fetches (manifest authenticated first),
    /// receives (verify, decrypt, validate, store) and confirms.
    func handle(_ id: DistributionID) -> Handled {
        let steps = current
        var handled = Handled(record: DistributionRecord(id: id, time: now, outcome: .refused))
        defer { activity.record(handled.record) }
        // 1. Installed before, but the KDC never heard of it (crash, KDC down): confirm again
        //    instead of fetching what the replay record would refuse.
        if let unconfirmed = try? steps.unconfirmed.load(id) {
            handled.record.outcome = DistributionOutcome(unconfirmed)
            handled.record.detail = "confirmation resent"
            handled.record.confirmed = confirm(id, unconfirmed, with: steps)
            handled.result = unconfirmed
            return handled
        }
        // 2. Processed and confirmed before: a repeated NOTIFY fetches nothing.
        if let node = steps.settings.nodeID, (try? steps.receiver.state.wasProcessed(node: node, distributionID: id)) == true {
            handled.record.outcome = .alreadyProcessed
            handled.record.confirmed = true
            handled.error = .replay("distribution \(id) was already processed")
            return handled
        }
        // 3. Fetch: the manifest is authenticated before any data chunk is asked for.
        activity.count { $0.fetches += 1 }
        let distribution: ReceivedDistribution
        do throws(TDNSError) {
            guard let fetcher = steps.fetcher else { throw TDNSError.config("kdc_address, node_id and control_zone are needed to fetch") }
            switch try fetcher.fetch(id, for: steps.receiver) {
            case .fetched(let d):
                distribution = d
            case .notForUs(let reason):
                log(.debug, "distribution \(id) is not for this node: \(reason)")
                handled.record.outcome = .notForUs
                handled.record.detail = reason
                handled.error = .wrongNode(reason)
                return handled
            case .refused(let error):
                steps.receiver.recordRefusal(distributionID: id.text, error)
                handled.record.detail = "\(error.code): \(error.reason)"
                handled.error = error
                return handled
            }
        } catch {
            handled.record.outcome = stopToken.isStopped ? .interrupted : .fetchFailed
            handled.record.detail = error.reason
            handled.error = error
            log(.warning, "distribution \(id): fetch failed: \(error.reason)")
            steps.receiver.auditRefusal(id.text, error)
            return handled
        }
        // 4. Receive and store: verify, decrypt, validate, install (all or nothing).
        let result: DistributionResult
        do throws(TDNSError) {
            result = try steps.receiver.process(distribution)
        } catch {
            handled.record.detail = "\(error.code): \(error.reason)"
            // Stopped while the server was being told: nothing was kept or recorded, and the
            // pending record brings the distribution back at the next start.
            if stopToken.isStopped { handled.record.outcome = .interrupted }
            handled.error = error
            return handled
        }
        handled.result = result
        handled.record.outcome = DistributionOutcome(result)
        if case .notInstalled(let reason) = result.outcome { handled.record.detail = reason }
        handled.record.keysChanged = result.keysChanged
        handled.record.keysInstalled = result.keysInstalled
        // 5. Confirm. The report is kept until the KDC acknowledges it, so that it survives a crash.
        try? steps.unconfirmed.save(id, result)
        handled.record.confirmed = confirm(id, result, with: steps)
        return handled
    }

    /// Confirms, and forgets the kept report once the KDC acknowledged it.
    private func confirm(_ id: DistributionID, _ result: DistributionResult, with steps: Steps) -> Bool {
        guard let confirmer = steps.confirmer, confirmer.confirm(id, result, now: now) else { return false }
        try? steps.unconfirmed.remove(id)
        return true
    }

    // MARK: - status

    /// Node, enrollment, KDC address, listener, last distributions, installed keys, counters.
    public func statusJSON() -> String {
        let steps = current
        let (running, listening) = isRunning
        return NodeStatus(
            settings: steps.settings, running: running, listening: listening, pending: intake.ids, activity: activity,
            audit: steps.receiver.state.recentAudit(NodeActivity.recentKept), now: now
        ).json
    }
}
