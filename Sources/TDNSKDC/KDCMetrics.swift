import TDNSCore

/// Counters of one backend (seed "Monitoring and Observability").
public struct KDCBackendCounters: Codable, Sendable, Equatable {
    /// Successful enrollments whose node then received with this backend (re-enrollments
    /// included).
    public var enrollments = 0
    /// Of those, re-enrollments (a registered node replaced its keys).
    public var reenrollments = 0
    /// Distributions made for a node using this backend (published and NOTIFYed).
    public var sent = 0
    /// Of those, confirmed by the node (all keys installed).
    public var confirmed = 0
    /// Of those, failed: keys reported failed by the node, or not confirmed by the deadline.
    /// A late confirmation moves one back to `confirmed`.
    public var failed = 0
    /// Of those, withdrawn by the KDC (`node remove`, re-enrollment) before a confirmation.
    public var withdrawn = 0
    /// Milliseconds from creation to confirmation of the last ``KDCMetrics/latencySamples``
    /// confirmed distributions, oldest first.
    public var latencyMs: [Int64] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case enrollments, reenrollments, sent, confirmed, failed, withdrawn, latencyMs = "latency_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enrollments = try c.decodeIfPresent(Int.self, forKey: .enrollments) ?? 0
        reenrollments = try c.decodeIfPresent(Int.self, forKey: .reenrollments) ?? 0
        sent = try c.decodeIfPresent(Int.self, forKey: .sent) ?? 0
        confirmed = try c.decodeIfPresent(Int.self, forKey: .confirmed) ?? 0
        failed = try c.decodeIfPresent(Int.self, forKey: .failed) ?? 0
        withdrawn = try c.decodeIfPresent(Int.self, forKey: .withdrawn) ?? 0
        latencyMs = try c.decodeIfPresent([Int64].self, forKey: .latencyMs) ?? []
    }

    /// Live (not yet confirmed, failed or withdrawn).
    public var live: Int { max(0, sent - confirmed - failed - withdrawn) }
}

/// Per-backend counters, kept in the state and updated in O(1) with every change (the state
/// is rewritten on every change anyway; these add a bounded amount to it).
public struct KDCMetrics: Codable, Sendable, Equatable {
    /// Latency samples kept per backend: enough for a stable p95, bounded so that the state
    /// does not grow with the number of distributions.
    public static let latencySamples = 1024

    public var backends: [String: KDCBackendCounters] = [:]

    public init() {}

    public subscript(_ c: KDCCrypto) -> KDCBackendCounters { backends[c.rawValue] ?? KDCBackendCounters() }

    mutating func counted(_ c: KDCCrypto, _ change: (inout KDCBackendCounters) -> Void) {
        var counters = self[c]
        change(&counters)
        backends[c.rawValue] = counters
    }

    /// One distribution moved from `old` to `new` outcome.
    mutating func transition(from old: KDCDistribution.Outcome, to new: KDCDistribution.Outcome, of d: KDCDistribution) {
        guard old != new else { return }
        counted(d.crypto) { c in
            switch old {
            case .live: break
            case .confirmed: c.confirmed -= 1
            case .failed: c.failed -= 1
            case .withdrawn: c.withdrawn -= 1
            }
            switch new {
            case .live: break
            case .confirmed:
                c.confirmed += 1
                if let l = d.latencyMs {
                    c.latencyMs.append(max(0, l))
                    if c.latencyMs.count > Self.latencySamples { c.latencyMs.removeFirst(c.latencyMs.count - Self.latencySamples) }
                }
            case .failed: c.failed += 1
            case .withdrawn: c.withdrawn += 1
            }
        }
    }

    /// Nearest-rank percentile (`p` in 1…100) of `samples`; nil when there are none.
    public static func percentile(_ samples: [Int64], _ p: Int) -> Int64? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        let rank = (p * sorted.count + 99) / 100  // ceil(p/100 · n)
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }

    /// `status --json` → `metrics`: per backend the enrollment and distribution counters and
    /// the confirmation latency (median and p95 over the last samples, milliseconds).
    public func json() -> JSONValue {
        func perBackend(_ body: (KDCBackendCounters) -> JSONValue) -> JSONValue {
            .object(KDCCrypto.allCases.map { ($0.rawValue, body(self[$0])) })
        }
        return .object([
            ("enrollments", perBackend { .integer($0.enrollments) }),
            ("reenrollments", perBackend { .integer($0.reenrollments) }),
            ("distributions", perBackend { c in
                .object([
                    ("sent", .integer(c.sent)), ("confirmed", .integer(c.confirmed)), ("failed", .integer(c.failed)),
                    ("withdrawn", .integer(c.withdrawn)), ("live", .integer(c.live)),
                ])
            }),
            ("confirmation_latency_ms", perBackend { c in
                .object([
                    ("samples", .integer(c.latencyMs.count)),
                    ("median", Self.percentile(c.latencyMs, 50).map { .integer($0) } ?? .null),
                    ("p95", Self.percentile(c.latencyMs, 95).map { .integer($0) } ?? .null),
                ])
            }),
        ])
    }

    /// For people: one line per backend.
    public func lines() -> [String] {
        KDCCrypto.allCases.map { b in
            let c = self[b]
            let median = Self.percentile(c.latencyMs, 50).map { "\($0) ms" } ?? "-"
            let p95 = Self.percentile(c.latencyMs, 95).map { "\($0) ms" } ?? "-"
            return "  \(b.rawValue): enrollments \(c.enrollments) (re-enrollments \(c.reenrollments)), distributions sent \(c.sent), confirmed \(c.confirmed), failed \(c.failed), withdrawn \(c.withdrawn), live \(c.live); confirmation latency median \(median), p95 \(p95)"
        }
    }
}
