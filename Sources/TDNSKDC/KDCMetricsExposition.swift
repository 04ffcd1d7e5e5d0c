import TDNSCore

/// Prometheus metrics of the KDC (`tdns-kdc serve --metrics IP:PORT`): the `metrics` of
/// `status --json` (``KDCMetrics/json()``) and the node count, from the serving process's
/// state at the moment of the scrape.
///
/// Counters that only grow are `_total` counters; the outcome of the distributions sent is a
/// gauge by outcome, because a late confirmation moves one from `failed` to `confirmed`.
public enum KDCMetricsExposition {
    public static func render(_ state: KDCState) -> String {
        let m = state.metrics
        let backends = KDCCrypto.allCases
        func perBackend(_ value: (KDCBackendCounters) -> Double) -> [PrometheusFamily.Sample] {
            backends.map { .init([("backend", $0.rawValue)], value(m[$0])) }
        }
        var outcomes: [PrometheusFamily.Sample] = []
        for b in backends {
            let c = m[b]
            for (name, n) in [("live", c.live), ("confirmed", c.confirmed), ("failed", c.failed), ("withdrawn", c.withdrawn)] {
                outcomes.append(.init([("backend", b.rawValue), ("outcome", name)], Double(n)))
            }
        }
        var latency: [PrometheusFamily.Sample] = []
        for b in backends {
            let samples = m[b].latencyMs
            for (q, p) in [("0.5", 50), ("0.95", 95)] {
                if let v = KDCMetrics.percentile(samples, p) {
                    latency.append(.init([("backend", b.rawValue), ("quantile", q)], Double(v) / 1000))
                }
            }
        }
        let active = state.nodes.filter { !$0.isRemoved }.count
        return PrometheusText.render([
            PrometheusFamily("tdns_kdc_build_info", .gauge, help: "Always 1; the tdns-kdc release in the label.",
                             [.init([("version", TDNSBuild.version)], 1)]),
            PrometheusFamily("tdns_kdc_nodes", .gauge, help: "Registered nodes by state.",
                             [.init([("state", "active")], Double(active)),
                              .init([("state", "removed")], Double(state.nodes.count - active))]),
            PrometheusFamily("tdns_kdc_enrollments_total", .counter,
                             help: "Successful enrollments by the backend the node then receives with (re-enrollments included).",
                             perBackend { Double($0.enrollments) }),
            PrometheusFamily("tdns_kdc_reenrollments_total", .counter, help: "Re-enrollments: a registered node replaced its keys.",
                             perBackend { Double($0.reenrollments) }),
            PrometheusFamily("tdns_kdc_distributions_sent_total", .counter,
                             help: "Distributions made for a node using this backend (published and NOTIFYed).",
                             perBackend { Double($0.sent) }),
            PrometheusFamily("tdns_kdc_distributions", .gauge,
                             help: "Distributions sent, by outcome: live (waiting), confirmed, failed (reported failed or past the deadline), withdrawn.",
                             outcomes),
            PrometheusFamily("tdns_kdc_confirmation_latency_samples", .gauge,
                             help: "Confirmed distributions the latency quantiles are taken over (the most recent, at most 1024).",
                             perBackend { Double($0.latencyMs.count) }),
            PrometheusFamily("tdns_kdc_confirmation_latency_seconds", .gauge,
                             help: "Seconds from creation to confirmation of a distribution, nearest-rank quantile over the samples.",
                             latency),
        ])
    }
}
