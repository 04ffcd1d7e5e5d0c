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
    /// `state_dir/krs.conf` as the current steps read it (mtime, inode): a change — a
    /// re-enrollment by `tdns-krs enroll --reenroll` beside the running node — is read before
    /// the next distribution (contract item 5).
    private let settingsStamp = Mutex<FileStamp?>(nil)
    /// Serializes the node's own rewrites of krs.conf (retiring the previous keys).
    private let settingsWrite = Mutex(())

    struct FileStamp: Equatable, Sendable {
        var seconds: Int
        var nanoseconds: Int
        var inode: Int

        init?(_ path: String) {
            guard let (s, ns) = POSIXFile.modificationTime(path) else { return nil }
            seconds = s
            nanoseconds = ns
            inode = POSIXFile.inode(path)
        }
    }

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
        // The krs.conf the settings were just read from (a change in the moment between is
        // missed until the next one: the file is only rewritten by enrollment and retirement).
        settingsStamp.withLock { $0 = FileStamp(Self.settingsFile(settings)) }
        steps = Mutex(try Self.steps(settings, clock: clock, log: log, keyChanged: keyChanged, stop: stopToken, activity: activity))
    }

    static func settingsFile(_ settings: KRSSettings) -> String { "\(settings.stateDirectory)/\(KRSSettings.enrollmentFile)" }

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
    ///
    /// A node enrolled already (its `krs.conf` names it and a key) is re-enrolled only with
    /// `reenroll` (contract item 5): the new keys are written beside the old ones, and only the
    /// KDC's acknowledgement switches `krs.conf` to them, keeping the old ones as `previous_*`
    /// until the first distribution made with the new keys is processed (or 7 days). A failed
    /// re-enrollment changes nothing.
    /// - Parameters:
    ///   - notifyAddress: overrides `notify_listen`; one of the two is required.
    ///   - nodeID: the node's ID for a seed-format package (it names none); else `node_id=`.
    public func enroll(
        package text: [UInt8], notifyAddress: String? = nil, nodeID: String? = nil, reenroll: Bool = false
    ) throws(TDNSError) -> String {
        let settings = self.settings
        let conf = Self.settingsFile(settings)
        let enrolled = settings.isEnrolled && POSIXFile.exists(conf)
        if enrolled && !reenroll, let node = settings.nodeID {
            throw .config("already enrolled as \(node); use --reenroll")
        }
        if reenroll && !enrolled {
            throw .config("not enrolled: there is nothing to re-enroll (enroll without --reenroll)")
        }
        var package = try EnrollmentPackage(fileContents: text, nodeID: nodeID ?? settings.nodeID?.description)
        if package.kdcSIG0Key == nil, let key = settings.kdcSIG0Key, let zone = try? DNSName(package.controlZone) {
            // kdc_sig0_pubkey= given at enrollment: kept in krs.conf like a package's key.
            package.kdcSIG0Key = key.presentationLine(owner: zone)
        } else if package.kdcSIG0Key == nil && package.format == .seed {
            log(.warning, "the seed-format package carries no KDC SIG(0) key: NOTIFYs will not be verified (require_notify_signature=no); give kdc_sig0_pubkey= to verify them")
        }
        guard let notify = notifyAddress ?? settings.notifyListen?.description else {
            throw .config("notify_listen: required for enrollment (the address the KDC sends NOTIFYs to)")
        }
        // Settings given now that describe the node's setup, not its identity, are kept too.
        // The last value of each (later settings win), once.
        var seen = Set<String>()
        var kept = Array(settings.arguments.reversed().filter { arg in
            guard let key = KRSSettings.setupSettings.first(where: { arg.hasPrefix($0 + "=") }) else { return false }
            return seen.insert(key).inserted
        }.reversed())
        var reenrollment: Enrollment.Reenrollment? = nil
        var oldFiles: [String] = []
        if reenroll {
            let old = try KRSSettings.readFile(conf)
            // The old krs.conf's setup, unless given again now.
            kept = old.filter { KRSSettings.setupSettings.contains($0.0) && !seen.contains($0.0) }.map { "\($0.0)=\($0.1)" } + kept
            let previous = old.compactMap { (k, v) -> String? in
                k == "hpke_private_key" || k == "jose_private_key" ? "previous_\(k)=\(v)" : nil
            }
            // Keys of an earlier re-enrollment and the old SIG(0) key: of no use once the KDC
            // holds the new keys.
            oldFiles = old.filter { ["previous_hpke_private_key", "previous_jose_private_key", "sig0_private_key"].contains($0.0) }.map(\.1)
            let suffix = Hex.encode((0..<4).map { _ in UInt8.random(in: 0...255) })
            reenrollment = Enrollment.Reenrollment(suffix: suffix, previousLines: previous, now: now)
        }
        let outcome = try Enrollment.run(
            package: package, notifyAddress: notify, chunkType: settings.chunkType,
            stateDirectory: settings.stateDirectory, now: now, keepSettings: kept,
            supported: settings.supportedCrypto, preferred: settings.preferredCrypto, reenrollment: reenrollment, log: log)
        if reenroll {
            removeOwnKeyFiles(oldFiles, keeping: outcome.settingsLines)
            log(.info, "re-enrolled as \(outcome.nodeID): the new keys are in use; the previous ones open distributions made for them until the first made with the new keys is processed (at most 7 days)")
        }
        try reloadSettings()
        return outcome.nodeID
    }

    /// Removes key files the node wrote into its state directory that no line of krs.conf
    /// names any more (never a file elsewhere: an operator's).
    private func removeOwnKeyFiles(_ files: [String], keeping lines: [String]) {
        let dir = settings.stateDirectory
        for file in Set(files) where file.hasPrefix(dir + "/") && !file.contains("/../") && file.hasSuffix(".privatekey") {
            guard !lines.contains(where: { $0.hasSuffix("=" + file) }) else { continue }
            try? POSIXFile.remove(file)
        }
    }

    /// Builds the steps again from the settings' arguments and krs.conf as it is now.
    private func reloadSettings() throws(TDNSError) {
        let arguments = settings.arguments
        let path = Self.settingsFile(settings)
        let stamp = FileStamp(path)
        let fresh = try Self.steps(KRSSettings(arguments: arguments), clock: clock, log: log, keyChanged: keyChanged,
                                   stop: stopToken, activity: activity)
        steps.withLock { $0 = fresh }
        settingsStamp.withLock { $0 = stamp }
    }

    /// Before each distribution: krs.conf read again when it changed (a re-enrollment beside
    /// the running node), and the previous keys retired once `previous_keys_until` passed.
    /// A krs.conf that does not read keeps the current settings, with a warning.
    func refreshSettings() {
        let settings = self.settings
        let stamp = FileStamp(Self.settingsFile(settings))
        if stamp != settingsStamp.withLock({ $0 }), !settings.arguments.isEmpty {
            do {
                try reloadSettings()
                log(.info, "\(KRSSettings.enrollmentFile) changed: settings read again")
            } catch {
                settingsStamp.withLock { $0 = stamp }
                log(.warning, "\(KRSSettings.enrollmentFile) changed but does not read, the current settings stay: \(error.reason)")
            }
        }
        let current = self.settings
        if current.hasPreviousKeys, let until = current.previousKeysUntil, now >= until {
            retirePreviousKeys(because: "they were kept for 7 days")
        }
    }

    /// Drops the `previous_*` keys from krs.conf and removes their files (contract item 5).
    func retirePreviousKeys(because reason: String) {
        let path = Self.settingsFile(settings)
        settingsWrite.withLock { _ in
            do throws(TDNSError) {
                let text = try POSIXFile.read(path, limit: KRSSettings.maxConfigFile)
                var removed: [String] = []
                var kept: [String] = []
                for line in String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
                    let trimmed = String(line).trimmingWhitespace()
                    if trimmed.hasPrefix("previous_") {
                        if let eq = trimmed.firstIndex(of: "="), trimmed.hasPrefix("previous_hpke") || trimmed.hasPrefix("previous_jose") {
                            removed.append(String(trimmed[trimmed.index(after: eq)...]).trimmingWhitespace())
                        }
                        continue
                    }
                    kept.append(String(line))
                }
                guard text.count > 0 else { return }
                try POSIXFile.writeAtomically(path, bytes: Array(kept.joined(separator: "\n").utf8), mode: 0o600)
                removeOwnKeyFiles(removed, keeping: kept)
                try reloadSettings()
                log(.info, "the keys from before the re-enrollment are retired: \(reason)")
            } catch {
                log(.warning, "the keys from before the re-enrollment could not be retired: \(error.reason)")
            }
        }
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
        refreshSettings()
        let steps = current
        let started = MonotonicClock.now()
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
            result = try receive(distribution, with: steps, started: started)
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

    /// The receive and store steps of one authenticated distribution, counted by backend and
    /// timed (contract items 6 and 7); the first distribution the new keys open after a
    /// re-enrollment retires the previous keys.
    func receive(_ distribution: ReceivedDistribution, with steps: Steps, started: Double) throws(TDNSError) -> DistributionResult {
        let backend = distribution.manifest.crypto.backend
        func elapsed() -> Int { max(0, Int(((MonotonicClock.now() - started) * 1000).rounded())) }
        let result: DistributionResult
        do throws(TDNSError) {
            result = try steps.receiver.process(distribution)
        } catch {
            if let backend { activity.record(backend: backend, success: false, milliseconds: elapsed()) }
            throw error
        }
        let milliseconds = elapsed()
        let applied = result.outcome == .applied
        if let backend { activity.record(backend: backend, success: applied, milliseconds: milliseconds) }
        if applied {
            log(.info, "Distribution \(distribution.id) processed successfully (backend: \(backend?.rawValue ?? "unknown"), duration: \(milliseconds)ms)")
            if steps.settings.hasPreviousKeys && !result.openedWithPreviousKey {
                retirePreviousKeys(because: "distribution \(distribution.id) was made with the new keys")
            }
        }
        return result
    }

    /// Processes a host's CHUNK records (`krs_process_distribution`): the manifest
    /// authenticated, then ``receive(_:with:started:)``, as for a fetched distribution.
    public func process(_ records: DistributionRecords) throws(TDNSError) -> DistributionResult {
        refreshSettings()
        let steps = current
        let started = MonotonicClock.now()
        let distribution = try steps.receiver.authenticated(records)
        return try receive(distribution, with: steps, started: started)
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
