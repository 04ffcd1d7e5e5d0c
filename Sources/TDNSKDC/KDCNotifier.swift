#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import TDNSCore
import TDNSCrypto
import TDNSWire

/// Sends the distribution NOTIFYs of `serve` (PROTOCOL §5.1 step 1) until each distribution is
/// confirmed or its deadline passes, so that nothing is silently lost.
///
/// The Go KDC sends one NOTIFY per active node, to every node whether it is a recipient or
/// not, once, over UDP. Here: one NOTIFY per live distribution, only to its node, over UDP
/// with a 2 s timeout, repeated 1, 2, 4, 8, 16, 30, 30, … s after attempt n — while it is
/// `pending` (no NOERROR yet) **and** while it is `notified` (the node queued the ID but has
/// not confirmed: its queue may have lost it, its fetch may have failed) — until it is
/// confirmed or its deadline (created_at + distribution_ttl, after which the node would refuse
/// the manifest as stale) passes; then it is `failed` with the reason
/// `not confirmed by the deadline (N NOTIFYs, last: <result>)`.
///
/// Only a NOERROR answer moves `pending → notified`; REFUSED (a node whose queue is full, or
/// one that checks the KDC's SIG(0)) or no answer is retried. NOTIFYs carry a SIG(0) by the
/// KDC's key (PROTOCOL §19) for non-legacy nodes and for nodes that announced `sig0` (which may
/// refuse an unsigned NOTIFY even when set to legacy); a Go KRS gets Go's unsigned NOTIFY.
public struct KDCNotifier: Sendable {
    /// Sends one request to `address` (`IP:port`) and returns the response bytes, or nil on
    /// timeout or network error. Blocks for at most its timeout.
    public typealias Sender = @Sendable (_ request: [UInt8], _ address: String) -> [UInt8]?

    public let service: KDCService
    public let send: Sender
    /// Upper bound of the pause between two NOTIFYs of one distribution, seconds.
    public static let maxBackoff: Int64 = 30

    public init(service: KDCService, send: @escaping Sender) {
        self.service = service
        self.send = send
    }

    /// Seconds to wait after attempt `n` (1-based) before attempt n + 1: 1, 2, 4, 8, 16, 30, 30, ….
    public static func backoff(afterAttempt n: Int) -> Int64 {
        min(maxBackoff, Int64(1) << Int64(max(0, min(n - 1, 20))))
    }

    /// The distributions due for a NOTIFY at `now`: live, before their deadline, with a notify
    /// address, and the backoff after their last attempt elapsed.
    public func due(now: Int64) -> [(KDCDistribution, String)] {
        let state = service.currentState()
        var out: [(KDCDistribution, String)] = []
        for d in state.distributions where d.isServable(now: now) {
            guard let node = state.node(d.nodeID), !node.isRemoved, let address = node.notifyAddress else { continue }
            if let last = d.lastNotifyAt, now < last + Self.backoff(afterAttempt: d.notifyAttempts) { continue }
            out.append((d, address))
        }
        return out
    }

    /// Marks every live distribution whose deadline has passed as failed. Returns their IDs.
    @discardableResult
    public func failOverdue(now: Int64) -> [String] {
        let overdue = service.currentState().distributions.filter { $0.isLive && now >= $0.deadline }
        guard !overdue.isEmpty else { return [] }
        let failed: [KDCDistribution]
        do {
            failed = try service.kdc.store.update { (state) throws(TDNSError) -> [KDCDistribution] in
                var out: [KDCDistribution] = []
                for i in state.distributions.indices where state.distributions[i].isLive && now >= state.distributions[i].deadline {
                    var d = state.distributions[i]
                    d.state = .failed
                    d.reason = Self.deadlineReason(d)
                    state.replace(i, with: d)
                    out.append(d)
                }
                return out
            }
        } catch {
            service.log.error("cannot record distributions past their deadline: \(error.reason)")
            return []
        }
        service.reload()
        for d in failed {
            service.forget(d.id)
            service.kdc.event("Distribution \(d.id) failed for \(d.nodeID) (backend: \(d.crypto.rawValue)): \(d.reason ?? "failed")", level: .warning)
        }
        return failed.map(\.id)
    }

    /// `not confirmed by the deadline (N NOTIFYs, last: <result>)`.
    static func deadlineReason(_ d: KDCDistribution) -> String {
        "not confirmed by the deadline (\(d.notifyAttempts) NOTIFY\(d.notifyAttempts == 1 ? "" : "s"), last: \(d.lastNotifyResult ?? "none sent"))"
    }

    /// One round: distributions past their deadline fail; the due NOTIFYs are sent in parallel
    /// (as many at once as there are CPUs) and their results recorded. Returns the number sent.
    @discardableResult
    public func runOnce() -> Int {
        let now = service.now
        failOverdue(now: now)
        let due = due(now: now)
        guard !due.isEmpty else { return 0 }
        DispatchQueue.concurrentPerform(iterations: due.count) { i in
            notify(due[i].0, address: due[i].1, at: now)
        }
        return due.count
    }

    /// Runs rounds every `intervalMilliseconds` until `shouldStop` says so.
    public func run(intervalMilliseconds: UInt32 = 250, shouldStop: @Sendable () -> Bool) {
        while !shouldStop() {
            runOnce()
            usleep(intervalMilliseconds * 1000)
        }
    }

    func notify(_ d: KDCDistribution, address: String, at now: Int64) {
        // Record the attempt first, so that a crash or a slow peer never causes a burst.
        let attempt: Int
        do {
            let recorded = try service.kdc.store.update { (state) throws(TDNSError) -> Int? in
                guard let i = state.distributions.firstIndex(where: { $0.id == d.id }),
                      state.distributions[i].isServable(now: now)
                else { return nil }
                state.distributions[i].notifyAttempts += 1
                state.distributions[i].lastNotifyAt = now
                return state.distributions[i].notifyAttempts
            }
            guard let recorded else { return }  // confirmed or failed meanwhile
            attempt = recorded
        } catch {
            service.log.error("distribution \(d.id): cannot record a NOTIFY attempt: \(error.reason)")
            return
        }
        let request: [UInt8]
        let message: DNSMessage
        do {
            let signs = service.currentState().node(d.nodeID)?.receivesSignedNOTIFYs ?? false
            message = try TDNSMessages.notify(
                id: UInt16.random(in: .min ... .max), distributionID: try DistributionID(validating: d.id), controlZone: service.controlZone,
                chunkType: service.chunkType)
            request = signs
                ? try SIG0Signatures.sign(message, with: service.keys.sig0, signerName: service.controlZone, now: now)
                : try message.serialize()
        } catch {
            service.log.error("distribution \(d.id): cannot build the NOTIFY: \(error.reason)")
            return
        }
        service.log.info("NOTIFY for \(d.id) to \(d.nodeID) at \(address) (attempt \(attempt), \(d.state.rawValue), deadline \(RFC3339.format(d.deadline)))")
        let result = Self.result(of: send(request, address), for: message)
        if result != "NOERROR" {
            service.log.warning("NOTIFY for \(d.id) to \(address): \(result); next in \(Self.backoff(afterAttempt: attempt)) s")
        }
        var becameNotified = false
        do {
            becameNotified = try service.kdc.store.update { (state) throws(TDNSError) -> Bool in
                guard let i = state.distributions.firstIndex(where: { $0.id == d.id }) else { return false }
                state.distributions[i].lastNotifyResult = result
                // Only the node's NOERROR says it has the ID; REFUSED or silence is not an
                // acknowledgement.
                guard result == "NOERROR", state.distributions[i].state == .pending else { return false }
                state.distributions[i].state = .notified
                state.distributions[i].notifiedAt = now
                return true
            }
        } catch {
            service.log.error("distribution \(d.id): cannot record the NOTIFY result: \(error.reason)")
        }
        service.reload()
        if becameNotified { service.log.info("distribution \(d.id): notified (NOTIFY acknowledged)") }
    }

    /// What became of a NOTIFY: the RCODE's name when `answer` answers `request`, else
    /// "no answer" or "malformed answer".
    static func result(of answer: [UInt8]?, for request: DNSMessage) -> String {
        guard let answer else { return "no answer" }
        guard let r = try? DNSMessage(wireEncoded: answer), TDNSMessages.isResponse(r, to: request) else {
            return "malformed answer"
        }
        return "\(r.rcode)"
    }
}
