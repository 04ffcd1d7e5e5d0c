import TDNSCore
import TDNSTransport

/// Prometheus metrics of a node (`metrics_listen`, `tdns-krs run --metrics`): the numbers of
/// ``KRSNode/statusJSON()`` at the moment of the scrape, so a scrape and `status --json` agree.
///
/// Built from the status document rather than from the node's internals, so that every
/// counter the status gains (`counters`, per-backend `backends`) is exported without a second
/// list to keep in step: each integer of `counters` is `tdnskrs_<name>_total`, each integer of
/// a backend's entry in `backends` is `tdnskrs_backend_<name>_total{backend="…"}`.
enum KRSMetrics {
    /// HELP texts of the known counters; a counter not listed gets a generic one.
    static let counterHelp: [String: String] = [
        "notifies": "NOTIFYs received.",
        "notifies_ignored": "NOTIFYs for a distribution already queued, in flight or done.",
        "notifies_refused": "NOTIFYs refused (bad signature, wrong zone, queue full).",
        "fetches": "Distributions fetched from the KDC.",
        "fetch_failures": "Distribution fetches that failed.",
        "keys_installed": "Keys installed into the server's key store.",
        "refused": "Distributions refused or not installed.",
        "confirmations": "Confirmations the KDC acknowledged.",
        "confirmation_failures": "Confirmations the KDC did not acknowledge.",
        "pending_dropped": "Announced distributions dropped from the pending queue (too old or too many).",
    ]

    /// Letters, digits and `_` only (status keys are snake_case already; anything else would
    /// make an invalid metric name).
    static func metricName(_ key: String) -> String {
        String(key.lowercased().unicodeScalars.map { c -> Character in
            (c >= "a" && c <= "z") || (c >= "0" && c <= "9") ? Character(c) : "_"
        })
    }

    static func integer(_ v: JSONValue?) -> Int64? { v?.int64Value }

    /// The exposition of one status document.
    static func render(status: JSONValue) -> String {
        var families: [PrometheusFamily] = [
            PrometheusFamily("tdnskrs_build_info", .gauge, help: "Always 1; the libtdnskrs release in the label.",
                             [.init([("version", TDNSBuild.version)], 1)]),
        ]
        func flag(_ key: String, _ name: String, _ help: String) {
            if let b = status[key]?.boolValue { families.append(PrometheusFamily(name, .gauge, help: help, value: b ? 1 : 0)) }
        }
        flag("enrolled", "tdnskrs_enrolled", "1 when the node is enrolled with a KDC.")
        flag("running", "tdnskrs_running", "1 while the node is started.")
        flag("listening", "tdnskrs_listening", "1 while the node listens for NOTIFYs itself (notify_listen).")
        if let a = status["pending"]?.arrayValue {
            families.append(PrometheusFamily("tdnskrs_pending_distributions", .gauge,
                                             help: "Announced distributions waiting to be fetched or confirmed.", value: Double(a.count)))
        }
        if let keys = status["keys"]?.arrayValue {
            var byState: [String: Int] = ["active": 0, "retired": 0]
            for k in keys { if let s = k["state"]?.stringValue { byState[s, default: 0] += 1 } }
            families.append(PrometheusFamily("tdnskrs_keys", .gauge, help: "DNSSEC keys in key_dir by state.",
                                             byState.keys.sorted().map { .init([("state", $0)], Double(byState[$0] ?? 0)) }))
        }
        if let counters = status["counters"]?.objectValue {
            for (key, value) in counters {
                guard let n = integer(value) else { continue }
                let name = metricName(key)
                families.append(PrometheusFamily("tdnskrs_\(name)_total", .counter,
                                                 help: counterHelp[key] ?? "status --json counters.\(key).", value: Double(n)))
            }
        }
        families += backendFamilies(status["backends"])
        return PrometheusText.render(families)
    }

    /// `backends` as an object (`{"hpke": {...}, "jose": {...}}`) or an array of objects
    /// naming their backend in `backend`, `crypto` or `name`: one family per integer field,
    /// one sample per backend.
    static func backendFamilies(_ backends: JSONValue?) -> [PrometheusFamily] {
        var entries: [(String, [(String, JSONValue)])] = []
        switch backends {
        case .object(let m)?:
            for (name, v) in m { if case .object(let fields) = v { entries.append((name, fields)) } }
        case .array(let a)?:
            for v in a {
                guard case .object(let fields) = v else { continue }
                let name = ["backend", "crypto", "name"].lazy.compactMap { k -> String? in
                    v[k]?.stringValue
                }.first
                if let name { entries.append((name, fields)) }
            }
        default:
            return []
        }
        var order: [String] = []
        var samples: [String: [PrometheusFamily.Sample]] = [:]
        for (backend, fields) in entries {
            for (key, value) in fields {
                guard let n = integer(value) else { continue }
                let name = metricName(key)
                if samples[name] == nil { order.append(name) }
                samples[name, default: []].append(.init([("backend", backend)], Double(n)))
            }
        }
        return order.map { name in
            PrometheusFamily("tdnskrs_backend_\(name)_total", .counter,
                             help: "status --json backends.<backend>.\(name).", samples[name] ?? [])
        }
    }
}

extension KRSNode {
    /// The exposition for one scrape.
    public func metricsText() -> String {
        guard let status = try? JSONValue.parse(Array(statusJSON().utf8)) else {
            return PrometheusText.render([])
        }
        return KRSMetrics.render(status: status)
    }

    /// Starts the metrics server of `metrics_listen`, or nothing when it is not set.
    func startMetrics(_ settings: KRSSettings) throws(TDNSError) -> HTTPMetricsServer? {
        guard let address = settings.metricsListen else { return nil }
        let server = try HTTPMetricsServer(listen: address) { [weak self] in self?.metricsText() ?? "" }
        try server.start()
        log(.info, "serving metrics on http://\(server.boundAddress)/metrics")
        return server
    }
}
