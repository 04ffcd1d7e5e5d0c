import Synchronization
import TDNSCore
import TDNSWire

/// How handling one distribution ended: the `result` of the status's distributions, and what
/// the queue does next (``needsRetry``).
enum DistributionOutcome: String, Sendable {
    case installed
    case installFailed = "install failed"
    case refused
    case fetchFailed = "fetch failed"
    case notForUs = "not for us"
    /// The node stopped while fetching or while the server was told; handled again at the
    /// next start.
    case interrupted
    /// In the replay record and confirmed: nothing fetched.
    case alreadyProcessed = "already processed"

    /// The outcome of keys a receiver processed.
    init(_ result: DistributionResult) {
        switch result.outcome {
        case .applied: self = .installed
        case .notInstalled: self = .installFailed
        }
    }
}

/// One distribution the node handled, as the status shows it.
struct DistributionRecord: Sendable {
    var id: DistributionID
    var time: Int64
    var outcome: DistributionOutcome
    var detail: String = ""
    var keysChanged = 0
    var keysInstalled = 0
    var confirmed = false

    /// A fetch that failed, or keys installed (or refused by the server) whose report the
    /// KDC has not acknowledged: tried again on the retry timer.
    var needsRetry: Bool {
        switch outcome {
        case .fetchFailed: return true
        case .installed, .installFailed: return !confirmed
        case .refused, .notForUs, .interrupted, .alreadyProcessed: return false
        }
    }

    /// Confirmed to the KDC, or another node's: a NOTIFY for it again fetches nothing.
    var isSettled: Bool { confirmed || outcome == .notForUs }
}

/// What the node counts; the status's `counters`.
struct NodeCounters: Sendable {
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

    var json: JSONValue {
        .object([
            ("notifies", .integer(notifies)), ("notifies_ignored", .integer(notifiesIgnored)),
            ("notifies_refused", .integer(notifiesRefused)),
            ("fetches", .integer(fetches)), ("fetch_failures", .integer(fetchFailures)),
            ("keys_installed", .integer(installed)),
            ("refused", .integer(refused)), ("confirmations", .integer(confirmations)),
            ("confirmation_failures", .integer(confirmationFailures)),
            ("pending_dropped", .integer(pendingDropped)),
        ])
    }
}

/// Distributions by backend (the status's `backends`, contract item 7): processed (applied),
/// failed (refused or not installed once the manifest named the backend), and how long
/// processing took — from the start of the fetch (or of `krs_process_distribution`) until the
/// keys were installed — over the last ``kept`` of them.
struct BackendCounters: Sendable {
    var processed = 0
    var failed = 0
    /// Milliseconds, newest last.
    var durations: [Int] = []
    static let kept = 1024

    mutating func add(success: Bool, milliseconds: Int) {
        if success { processed += 1 } else { failed += 1 }
        durations.append(milliseconds)
        if durations.count > Self.kept { durations.removeFirst(durations.count - Self.kept) }
    }

    /// Nearest-rank percentile of the kept durations; 0 when there are none.
    func percentile(_ p: Int) -> Int {
        guard !durations.isEmpty else { return 0 }
        let sorted = durations.sorted()
        let rank = (p * sorted.count + 99) / 100
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }

    var json: JSONValue {
        .object([
            ("processed", .integer(processed)), ("failed", .integer(failed)),
            ("processing_ms", .object([("median", .integer(percentile(50))), ("p95", .integer(percentile(95)))])),
        ])
    }
}

/// The node's memory of what it did since it started — the last distributions and the
/// counters — shared by the intake, the fetch and confirmation steps and the status.
final class NodeActivity: Sendable {
    /// Distributions kept for the status.
    static let recentKept = 32

    private struct State {
        var recent: [DistributionRecord] = []
        var counters = NodeCounters()
        var backends: [CryptoBackend: BackendCounters] = [:]
    }
    private let state = Mutex(State())

    func count(_ change: (inout NodeCounters) -> Void) {
        state.withLock { change(&$0.counters) }
    }

    /// Keeps the record and counts its outcome.
    func record(_ r: DistributionRecord) {
        state.withLock { s in
            s.recent.append(r)
            if s.recent.count > Self.recentKept { s.recent.removeFirst(s.recent.count - Self.recentKept) }
            switch r.outcome {
            case .installed: s.counters.installed += r.keysInstalled
            case .fetchFailed: s.counters.fetchFailures += 1; s.counters.refused += 1
            case .refused, .installFailed: s.counters.refused += 1
            case .notForUs, .interrupted, .alreadyProcessed: break
            }
        }
    }

    /// Counts one distribution whose backend is known.
    func record(backend: CryptoBackend, success: Bool, milliseconds: Int) {
        state.withLock { $0.backends[backend, default: BackendCounters()].add(success: success, milliseconds: milliseconds) }
    }

    var snapshot: (recent: [DistributionRecord], counters: NodeCounters) {
        state.withLock { ($0.recent, $0.counters) }
    }

    /// `{"hpke": {...}, "jose": {...}}`, both always present.
    var backendsJSON: JSONValue {
        let backends = state.withLock { $0.backends }
        return .object(CryptoBackend.allCases.map { ($0.rawValue, (backends[$0] ?? BackendCounters()).json) })
    }
}

/// The status document (`krs_status_json`, `tdns-krs status`): node, enrollment, KDC address,
/// listener, last distributions, installed keys, recent audit records, counters. Its keys are
/// an interface: hosts and operators read them.
struct NodeStatus {
    var settings: KRSSettings
    var running: Bool
    var listening: Bool
    var pending: [DistributionID]
    var activity: NodeActivity
    var audit: [JSONValue]
    var now: Int64

    var json: String {
        let (recent, counters) = activity.snapshot
        func opt(_ s: (some CustomStringConvertible)?) -> JSONValue { s.map { .string($0.description) } ?? .null }
        let status: JSONValue = .object([
            ("node_id", opt(settings.nodeID)), ("control_zone", opt(settings.controlZone)),
            ("enrolled", .bool(settings.isEnrolled)), ("kdc_address", opt(settings.kdcAddress)),
            ("notify_listen", opt(settings.notifyListen)), ("listening", .bool(listening)), ("running", .bool(running)),
            ("require_signature", .bool(settings.requireSignature)),
            ("require_notify_signature", .bool(settings.requireNotifySignature)),
            // The backends this node has keys for, and until when the keys from before a
            // re-enrollment are kept (contract item 5).
            ("crypto", .array(settings.keyBackends.map { .string($0.rawValue) })),
            ("previous_keys_until", settings.hasPreviousKeys ? settings.previousKeysUntil.map { .integer($0) } ?? .null : .null),
            ("pending", .array(pending.map { .string($0.text) })),
            ("distributions", .array(recent.reversed().map { r in
                .object([("id", .string(r.id.text)), ("time", .integer(r.time)), ("result", .string(r.outcome.rawValue)),
                         ("detail", .string(r.detail)), ("keys_changed", .integer(r.keysChanged)), ("confirmed", .bool(r.confirmed))])
            })),
            ("keys", .array(keys)),
            // The audit log outlives the process: this is what a separate `status` can show.
            ("audit", .array(audit)),
            ("counters", counters.json),
            ("backends", activity.backendsJSON),
        ])
        return status.serializedString()
    }

    /// The key pairs in key_dir, but deleted ones whose files BIND still needs for a while.
    private var keys: [JSONValue] {
        guard let dir = settings.keyDirectory, let files = try? KeyFileDirectory(directory: dir) else { return [] }
        var keys: [JSONValue] = []
        for k in files.allKeys() {
            if let d = k.delete, d <= now { continue }
            let state = k.inactive.map { $0 <= now } == true ? "retired" : "active"
            keys.append(.object([("zone", .string(k.zone)), ("key_tag", .integer(Int(k.keyTag))),
                                 ("algorithm", .integer(Int(k.algorithm))), ("ksk", .bool(k.isKSK)), ("state", .string(state))]))
        }
        return keys
    }
}
