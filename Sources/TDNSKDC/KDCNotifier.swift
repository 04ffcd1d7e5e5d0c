#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import TDNSCore
import TDNSCrypto
import TDNSWire

/// Sends the distribution NOTIFYs of `serve` (PROTOCOL §5.1 step 1) with retry and backoff.
///
/// The Go KDC sends one NOTIFY per active node, to every node whether it is a recipient or
/// not, once, over UDP. Here: one NOTIFY per pending distribution, only to its node, over UDP
/// with a 2 s timeout, retried after 1, 2, 4 and 8 s (5 attempts); the distribution becomes
/// `notified` when the node answers NOERROR (or fetches the manifest, see KDCService) and
/// `failed` ("no answer to 5 NOTIFYs") when all attempts go unanswered. NOTIFYs to non-legacy
/// nodes carry a SIG(0) by the KDC's key (PROTOCOL §19); legacy nodes get Go's unsigned NOTIFY.
public struct KDCNotifier: Sendable {
    /// Sends one request to `address` (`IP:port`) and returns the response bytes, or nil on
    /// timeout or network error. Blocks for at most its timeout.
    public typealias Sender = @Sendable (_ request: [UInt8], _ address: String) -> [UInt8]?

    public let service: KDCService
    public let send: Sender
    public var maxAttempts = 5

    public init(service: KDCService, send: @escaping Sender) {
        self.service = service
        self.send = send
    }

    /// Seconds to wait after attempt `n` (1-based) before attempt n + 1: 1, 2, 4, 8, ….
    public static func backoff(afterAttempt n: Int) -> Int64 {
        Int64(1) << Int64(max(0, min(n - 1, 20)))
    }

    /// The distributions due for a NOTIFY now.
    public func due(now: Int64) -> [(KDCDistribution, String)] {
        let state = service.currentState()
        var out: [(KDCDistribution, String)] = []
        for d in state.distributions where d.state == .pending && d.notifyAttempts < maxAttempts {
            guard let address = state.node(d.nodeID)?.notifyAddress else { continue }
            if let last = d.lastNotifyAt, now < last + Self.backoff(afterAttempt: d.notifyAttempts) { continue }
            out.append((d, address))
        }
        return out
    }

    /// One round: the due NOTIFYs are sent in parallel (as many at once as there are CPUs);
    /// the results are recorded. Returns the number sent.
    @discardableResult
    public func runOnce() -> Int {
        let now = service.now
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
        let attempt = d.notifyAttempts + 1
        // Record the attempt first, so that a crash or a slow peer never causes a burst.
        do {
            try service.kdc.store.update { (state) throws(TDNSError) in
                guard let i = state.distributions.firstIndex(where: { $0.id == d.id }), state.distributions[i].state == .pending else { return }
                state.distributions[i].notifyAttempts = attempt
                state.distributions[i].lastNotifyAt = now
            }
        } catch {
            service.log.error("distribution \(d.id): cannot record a NOTIFY attempt: \(error.reason)")
            return
        }
        let request: [UInt8]
        let message: DNSMessage
        do {
            let legacy = service.currentState().node(d.nodeID)?.legacy ?? true
            message = try TDNSMessages.notify(
                id: UInt16.random(in: .min ... .max), distributionID: d.id, controlZone: service.controlZone,
                chunkType: service.chunkType)
            request = legacy
                ? try message.serialize()
                : try SIG0Signatures.sign(message, with: service.keys.sig0, signerName: service.controlZone, now: now)
        } catch {
            service.log.error("distribution \(d.id): cannot build the NOTIFY: \(error.reason)")
            return
        }
        service.log.info("NOTIFY for \(d.id) to \(d.nodeID) at \(address) (attempt \(attempt)/\(maxAttempts))")
        let answer = send(request, address)
        var acknowledged = false
        if let answer, let r = try? DNSMessage(wireEncoded: answer), TDNSMessages.isResponse(r, to: message) {
            if r.rcode == .noError {
                acknowledged = true
            } else {
                service.log.warning("NOTIFY for \(d.id) to \(address) answered \(r.rcode)")
            }
        }
        if acknowledged {
            service.markNotified(d.id, how: "NOTIFY acknowledged")
        } else if attempt >= maxAttempts {
            do {
                try service.kdc.store.update { (state) throws(TDNSError) in
                    guard let i = state.distributions.firstIndex(where: { $0.id == d.id }), state.distributions[i].state == .pending else { return }
                    state.distributions[i].state = .failed
                    state.distributions[i].reason = "no answer to \(maxAttempts) NOTIFYs"
                }
                service.reload()
                service.log.warning("distribution \(d.id): no answer to \(maxAttempts) NOTIFYs to \(address)")
            } catch {
                service.log.error("distribution \(d.id): cannot record the NOTIFY failure: \(error.reason)")
            }
        }
    }
}
