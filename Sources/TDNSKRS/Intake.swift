#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore
import TDNSCrypto
import TDNSWire

/// One line of `state_dir/pending`: an announced distribution not handled yet.
struct PendingLine: Sendable, Equatable {
    var id: DistributionID
    /// Unix seconds of the first NOTIFY for it.
    var firstSeen: Int64
    /// Fetches that failed so far.
    var attempts: Int
}

/// `state_dir/pending` (contract §4): one line `<id> <first_seen_unix> <attempts>` per
/// distribution announced and not handled yet. Every change is a read-modify-write under an
/// exclusive `flock` on `state_dir/pending.lock` — taken by every thread of every node (and
/// process) that uses the state directory — and the new file replaces the old one atomically
/// (temporary file, fsync, rename).
struct PendingStore: Sendable {
    let directory: String
    var path: String { "\(directory)/pending" }
    var lockPath: String { "\(directory)/pending.lock" }
    /// Far above 256 lines of 40 bytes: a file written before the bounds existed is still read.
    static let maxFile = 16 * 1024 * 1024

    /// Applies `change` to the file's entries under the lock; writes only when they changed.
    /// Returns the entries as written.
    @discardableResult
    func update(now: Int64, _ change: (inout [PendingLine]) -> Void) throws(TDNSError) -> [PendingLine] {
        try POSIXFile.locked(lockPath) { () throws(TDNSError) -> [PendingLine] in
            let before = try read(now: now)
            var after = before
            change(&after)
            if after != before {
                let text = after.map { "\($0.id) \($0.firstSeen) \($0.attempts)\n" }.joined()
                try POSIXFile.writeAtomically(path, bytes: Array(text.utf8), mode: 0o600)
            }
            return after
        }
    }

    /// The entries in file order. Lines that are not `<id> <unix> <attempts>` with a valid
    /// distribution ID are ignored; a bare `<id>` (the format before these bounds) counts as
    /// first seen `now`. Duplicates keep their first line. Call with the lock held.
    func read(now: Int64) throws(TDNSError) -> [PendingLine] {
        guard POSIXFile.exists(path) else { return [] }
        let text = try POSIXFile.read(path, limit: Self.maxFile)
        var lines: [PendingLine] = []
        var seen = Set<DistributionID>()
        for raw in text.split(separator: UInt8(ascii: "\n")) {
            let fields = raw.split(separator: UInt8(ascii: " "))
            guard let first = fields.first, let id = DistributionID(String(decoding: first, as: UTF8.self)),
                  !seen.contains(id) else { continue }
            let line: PendingLine
            switch fields.count {
            case 1:
                line = PendingLine(id: id, firstSeen: now, attempts: 0)
            case 3:
                guard let t = Int64(String(decoding: fields[1], as: UTF8.self)), t >= 0,
                      let n = Int(String(decoding: fields[2], as: UTF8.self)), n >= 0 else { continue }
                line = PendingLine(id: id, firstSeen: t, attempts: min(n, 1 << 20))
            default:
                continue
            }
            seen.insert(id)
            lines.append(line)
        }
        return lines
    }
}

/// The NOTIFY intake of a node (contract §4, PROTOCOL §5.1 step 2): the NOTIFY answers, a
/// bounded queue of announced distributions with a per-source share, persisted in
/// ``PendingStore`` before a NOTIFY is answered NOERROR, and a retry timer for fetches that
/// failed.
///
/// Every change happens under one lock (the queue's mutex, and inside it the pending file's
/// flock), so the listener threads, a host's `krs_handle_notify` callers and the worker never
/// interleave a read-modify-write.
final class NotifyIntake: Sendable {
    /// At most this many distributions wait at once.
    static let maxQueued = 256
    /// At most this many of them announced by one source (IP address) and not fetched yet.
    static let maxPerSource = 16
    /// A distribution is dropped when it could not be fetched this long after its first NOTIFY.
    static let maxAge: Int64 = 86_400
    /// A confirmed distribution NOTIFYed again is answered without queueing; this many kept.
    static let recentlyDoneKept = 256

    /// Seconds before the next attempt after `failures` failed ones: 5, 10, 20, 40, 80, 160,
    /// then 300 (contract §4).
    static func retryDelay(afterFailures failures: Int) -> Double {
        guard failures >= 1 else { return 0 }
        return failures >= 7 ? 300 : min(300, 5 * Double(1 << (failures - 1)))
    }

    /// The source of NOTIFYs a host hands to `krs_handle_notify`: the C signature carries no
    /// peer address (the Knot module passes only the message), so they all share one source.
    static let hostSource = "host"

    struct Entry: Sendable {
        var line: PendingLine
        /// The NOTIFY's source; "" for entries read from the pending file.
        var source: String
        /// Monotonic seconds from which it may be fetched.
        var due: Double
        var inFlight = false
    }

    enum Offer: Equatable, Sendable {
        /// New, recorded in the pending file: answer NOERROR.
        case queued
        /// Already queued or being fetched (a waiting retry is moved to now): NOERROR.
        case duplicate
        /// Confirmed to the KDC before: NOERROR, nothing fetched.
        case alreadyDone
        /// 256 distributions wait already: REFUSED (the KDC retries).
        case queueFull
        /// This source has 16 waiting: REFUSED.
        case sourceFull
        /// The pending file could not be written: REFUSED (nothing was promised).
        case notRecorded(String)
    }

    private struct State {
        var entries: [Entry] = []
        var recentlyDone: [DistributionID] = []
    }

    private let state = Mutex(State())
    let store: PendingStore
    private let monotonic: @Sendable () -> Double
    /// Counters of NOTIFYs received, ignored and refused.
    let activity: NodeActivity
    private let log: @Sendable (KRSLogLevel, String) -> Void
    /// Refused NOTIFYs are logged at most this often (a flood must not flood the host's log).
    private let refusalLog = Mutex(RateLimit(perSecond: 10))

    init(
        directory: String, activity: NodeActivity = NodeActivity(),
        log: @escaping @Sendable (KRSLogLevel, String) -> Void = { _, _ in },
        monotonic: @escaping @Sendable () -> Double = MonotonicClock.now
    ) {
        store = PendingStore(directory: directory)
        self.activity = activity
        self.log = log
        self.monotonic = monotonic
    }

    var count: Int { state.withLock { $0.entries.count } }
    var ids: [DistributionID] { state.withLock { $0.entries.map(\.line.id) } }
    func contains(_ id: DistributionID) -> Bool { state.withLock { s in s.entries.contains { $0.line.id == id } } }

    /// A NOTIFY announced `id` from `source` at wall-clock `now`.
    func offer(_ id: DistributionID, source: String, now: Int64) -> Offer {
        let mono = monotonic()
        return state.withLock { s -> Offer in
            if let i = s.entries.firstIndex(where: { $0.line.id == id }) {
                // A new NOTIFY for a distribution waiting for its retry: try at once.
                if !s.entries[i].inFlight { s.entries[i].due = min(s.entries[i].due, mono) }
                return .duplicate
            }
            if s.recentlyDone.contains(id) { return .alreadyDone }
            guard s.entries.count < Self.maxQueued else { return .queueFull }
            guard s.entries.count(where: { $0.source == source }) < Self.maxPerSource else { return .sourceFull }
            let line = PendingLine(id: id, firstSeen: now, attempts: 0)
            do throws(TDNSError) {
                // Recorded before the NOERROR that tells the KDC it need not NOTIFY again.
                try store.update(now: now) { lines in
                    if !lines.contains(where: { $0.id == id }) { lines.append(line) }
                }
            } catch {
                return .notRecorded(error.reason)
            }
            s.entries.append(Entry(line: line, source: source, due: mono))
            return .queued
        }
    }

    /// The next distribution due, marked in flight; nil when none is.
    func next() -> PendingLine? {
        let mono = monotonic()
        return state.withLock { s -> PendingLine? in
            var best: Int? = nil
            for (i, e) in s.entries.enumerated() where !e.inFlight && e.due <= mono {
                if let b = best, s.entries[b].due <= e.due { continue }
                best = i
            }
            guard let best else { return nil }
            s.entries[best].inFlight = true
            return s.entries[best].line
        }
    }

    /// Handled (installed and confirmed, refused, or not for this node): forgotten, in memory
    /// and in the pending file. `remember`ed ones (confirmed, or another node's: a Go KDC
    /// NOTIFYs every node) are answered without a fetch if NOTIFYed again.
    func finish(_ id: DistributionID, remember: Bool, now: Int64) throws(TDNSError) {
        try state.withLock { (s) throws(TDNSError) in
            s.entries.removeAll { $0.line.id == id }
            if remember {
                s.recentlyDone.removeAll { $0 == id }
                s.recentlyDone.append(id)
                if s.recentlyDone.count > Self.recentlyDoneKept { s.recentlyDone.removeFirst() }
            }
            try store.update(now: now) { lines in lines.removeAll { $0.id == id } }
        }
    }

    enum Retry: Equatable, Sendable {
        /// Tried again after this many seconds.
        case scheduled(Double)
        /// Its first NOTIFY is more than 24 hours old: forgotten.
        case dropped
        /// Not queued (any more): a `krs_fetch` caller handled it meanwhile.
        case notQueued
    }

    /// The fetch (or the confirmation) failed: scheduled again after the backoff, or dropped
    /// when its first NOTIFY is more than 24 hours old.
    func retry(_ id: DistributionID, now: Int64) throws(TDNSError) -> Retry {
        let mono = monotonic()
        return try state.withLock { (s) throws(TDNSError) -> Retry in
            guard let i = s.entries.firstIndex(where: { $0.line.id == id }) else { return .notQueued }
            s.entries[i].line.attempts += 1
            s.entries[i].inFlight = false
            let line = s.entries[i].line
            if now - line.firstSeen > Self.maxAge {
                s.entries.remove(at: i)
                try store.update(now: now) { lines in lines.removeAll { $0.id == id } }
                return .dropped
            }
            let delay = Self.retryDelay(afterFailures: line.attempts)
            s.entries[i].due = mono + delay
            try store.update(now: now) { lines in
                if let j = lines.firstIndex(where: { $0.id == id }) { lines[j].attempts = line.attempts } else { lines.append(line) }
            }
            return .scheduled(delay)
        }
    }

    /// Not handled because the node stops: kept (memory and file) for the next start.
    func release(_ id: DistributionID) {
        state.withLock { s in
            if let i = s.entries.firstIndex(where: { $0.line.id == id }) { s.entries[i].inFlight = false }
        }
    }

    /// Forgets every queued distribution, in memory only (the fuzzing harness starts each
    /// input from an empty queue).
    func clear() {
        state.withLock { $0 = State() }
    }

    /// Drops a distribution from memory only (a `krs_fetch` caller handled it itself).
    func forget(_ id: DistributionID) {
        state.withLock { s in s.entries.removeAll { $0.line.id == id && !$0.inFlight } }
    }

    /// What the pending file says, merged into the queue: at start, and now and then while
    /// idle (another instance sharing the state directory — a host reloading — may have
    /// accepted NOTIFYs). Entries older than 24 hours, and beyond the 256 newest, are dropped
    /// from the file. Returns the IDs dropped, with the reason, for the audit log.
    func load(now: Int64) throws(TDNSError) -> [(id: DistributionID, reason: String)] {
        let mono = monotonic()
        return try state.withLock { (s) throws(TDNSError) -> [(id: DistributionID, reason: String)] in
            var dropped: [(id: DistributionID, reason: String)] = []
            let kept = try store.update(now: now) { lines in
                var fresh: [PendingLine] = []
                for l in lines {
                    if now - l.firstSeen > Self.maxAge {
                        dropped.append((l.id, "announced more than 24 h ago (\(l.attempts) failed fetches)"))
                    } else {
                        fresh.append(l)
                    }
                }
                if fresh.count > Self.maxQueued {
                    // The newest are kept: the KDC gives up on old distributions first.
                    let order = fresh.enumerated().sorted { a, b in
                        a.element.firstSeen != b.element.firstSeen ? a.element.firstSeen > b.element.firstSeen : a.offset > b.offset
                    }
                    let keep = Set(order.prefix(Self.maxQueued).map(\.offset))
                    for (i, l) in fresh.enumerated() where !keep.contains(i) {
                        dropped.append((l.id, "more than \(Self.maxQueued) distributions pending"))
                    }
                    fresh = fresh.enumerated().filter { keep.contains($0.offset) }.map(\.element)
                }
                lines = fresh
            }
            for l in kept where !s.entries.contains(where: { $0.line.id == l.id }) && !s.recentlyDone.contains(l.id) {
                guard s.entries.count < Self.maxQueued else { break }
                s.entries.append(Entry(line: l, source: "", due: mono))
            }
            return dropped
        }
    }
}

extension NotifyIntake {
    /// Answers a NOTIFY at once (PROTOCOL §5.1 step 2, contract §4) and queues the
    /// distribution it announces, checked against `settings` (the control zone, the KDC's
    /// SIG(0) key). Returns the response to send, or nil for a message that gets no answer
    /// (not a DNS message, or a response).
    ///
    /// - REFUSED: not a NOTIFY; this node is not enrolled; the QNAME is not
    ///   `<distribution-id>.<control zone>`; a SIG(0) by `kdc_sig0_pubkey` is required and
    ///   missing or invalid; the queue (256) or the source's share (16) is full; the pending
    ///   file cannot be written. Nothing is queued.
    /// - FORMERR: a NOTIFY without exactly one question of class IN, or a malformed CHUNK option.
    /// - NOERROR: queued and recorded in `state_dir/pending` before this answer; or already
    ///   queued, being fetched or handled.
    func answer(_ request: [UInt8], source: String, settings: KRSSettings, now: Int64) -> [UInt8]? {
        guard let message = try? DNSMessage(wireEncoded: request), !message.flags.qr else { return nil }
        func answer(_ rcode: RCode) -> [UInt8]? { try? TDNSMessages.notifyResponse(to: message, rcode: rcode).serialize() }
        func refuse(_ why: String) -> [UInt8]? {
            activity.count { $0.notifiesRefused += 1 }
            logRefusal("NOTIFY from \(source) refused: \(why)")
            return answer(.refused)
        }
        activity.count { $0.notifies += 1 }
        guard message.opcode == .notify else { return refuse("opcode \(message.opcode), not NOTIFY") }
        guard let zone = settings.controlZone else { return refuse("this node is not enrolled (no control zone)") }
        let notify: TDNSMessages.Notify
        do {
            notify = try TDNSMessages.parseNotify(message, controlZone: zone)
        } catch {
            activity.count { $0.notifiesRefused += 1 }
            return answer(.formErr)
        }
        guard let id = notify.distributionID else {
            return refuse("\(notify.question.name) is not <distribution-id>.\(zone)")
        }
        if settings.requireNotifySignature {
            do throws(TDNSError) {
                try Self.verifySignature(message, controlZone: zone, settings: settings, now: now)
            } catch {
                return refuse("distribution \(id): \(error.reason) (require_notify_signature=yes)")
            }
        }
        // The NOTIFY is only a trigger: what it announces is authenticated when fetched (§19).
        switch offer(id, source: source, now: now) {
        case .queued:
            return answer(.noError)
        case .duplicate, .alreadyDone:
            activity.count { $0.notifiesIgnored += 1 }
            return answer(.noError)
        case .queueFull:
            return refuse("distribution \(id): \(Self.maxQueued) distributions are waiting already")
        case .sourceFull:
            return refuse("distribution \(id): \(Self.maxPerSource) distributions from \(source) are waiting already")
        case .notRecorded(let reason):
            log(.error, "distribution \(id): cannot record the NOTIFY in state_dir/pending: \(reason)")
            return refuse("distribution \(id): not recorded")
        }
    }

    /// The KDC's SIG(0) on a NOTIFY: by `kdc_sig0_pubkey`, signer name = the control zone,
    /// within its validity window ± max_skew.
    private static func verifySignature(_ message: DNSMessage, controlZone: DNSName, settings: KRSSettings, now: Int64) throws(TDNSError) {
        guard let key = settings.kdcSIG0Key else { throw .config("no kdc_sig0_pubkey to verify the NOTIFY with") }
        guard let found = try SIG0.extract(from: message) else { throw .authentication("the NOTIFY carries no SIG(0)") }
        guard found.sig.signerName == controlZone else {
            throw .authentication("the NOTIFY's SIG(0) names signer \(found.sig.signerName), not the control zone \(controlZone)")
        }
        try SIG0Signatures.verify(message, key: key, now: now, skew: settings.maxSkew)
    }

    /// Logs a refused NOTIFY, at most ``RateLimit/perSecond`` lines a second plus one line
    /// counting what was left out.
    private func logRefusal(_ message: String) {
        let second = Int64(monotonic())
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
