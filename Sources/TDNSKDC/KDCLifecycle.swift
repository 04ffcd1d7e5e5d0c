import TDNSCore

// The migration commands (issue 13; seed "Migration and Compatibility"): the backend policy,
// and the life of a node — list, show, switch (`node set --crypto`, in KDC.swift), remove.

extension KDC {
    // MARK: - policy

    /// `policy [--default-crypto B] [--supported-crypto LIST]`: shows the policy, or changes it.
    ///
    /// The default must be one of the supported backends. Changing the default moves every
    /// node that follows it (`crypto_source` default or only-key) and has a key for the new
    /// default; nodes that stated a preference, were enrolled with a one-backend package or
    /// were set by the operator stay. Removing a backend from the supported ones is the seed's
    /// rollback: no enrollment, `node add` or `node set` for it any more, but the nodes that use
    /// it keep receiving with it (they are listed in a warning).
    public func policy(defaultCrypto: KDCCrypto?, supportedCrypto: [KDCCrypto]?) throws(TDNSError) -> KDCReport {
        if supportedCrypto?.isEmpty == true { throw .config("--supported-crypto needs at least one backend") }
        guard defaultCrypto != nil || supportedCrypto != nil else {
            let state = try store.load()
            return KDCReport(json: Self.policyJSON(state.policy), lines: Self.policyLines(state.policy))
        }
        let (old, new, moved, stillUsing) = try store.update {
            (state) throws(TDNSError) -> (KDCPolicy, KDCPolicy, [(String, KDCCrypto)], [String]) in
            let old = state.policy
            let supported = supportedCrypto ?? old.supportedCrypto
            let def = defaultCrypto ?? old.defaultCrypto
            guard supported.contains(def) else {
                throw .config(defaultCrypto == nil
                    ? "the default backend \(def.rawValue) would not be supported; give --default-crypto too (one of \(supported.map(\.rawValue).joined(separator: ", ")))"
                    : "--default-crypto \(def.rawValue) is not among the supported backends (\(supported.map(\.rawValue).joined(separator: ", ")))")
            }
            let new = KDCPolicy(defaultCrypto: def, supportedCrypto: supported)
            state.policy = new
            var moved: [(String, KDCCrypto)] = []
            if new.defaultCrypto != old.defaultCrypto {
                for i in state.nodes.indices {
                    let n = state.nodes[i]
                    guard !n.isRemoved, n.cryptoSource?.followsDefault == true, n.crypto != def, n.hasKey(for: def) else { continue }
                    moved.append((n.id, n.crypto))
                    state.nodes[i].crypto = def
                    state.nodes[i].cryptoSource = .policyDefault
                }
            }
            let stillUsing = state.nodes.filter { !$0.isRemoved && !new.supports($0.crypto) }.map(\.id)
            return (old, new, moved, stillUsing)
        }
        var lines = Self.policyLines(new)
        var warnings: [String] = []
        if old != new {
            event("policy changed: default \(old.defaultCrypto.rawValue) → \(new.defaultCrypto.rawValue), supported \(old.supportedText) → \(new.supportedText)")
        }
        for (id, from) in moved {
            event("Node \(id) switched from backend \(from.rawValue) to backend: \(new.defaultCrypto.rawValue) (policy default)")
        }
        if !moved.isEmpty {
            lines.append("\(moved.count) node\(moved.count == 1 ? "" : "s") that follow the default now receive with \(new.defaultCrypto.rawValue)")
        }
        if !stillUsing.isEmpty {
            let unsupported = KDCCrypto.allCases.filter { !new.supports($0) }.map(\.rawValue).joined(separator: ", ")
            let shown = stillUsing.prefix(5).joined(separator: ", ") + (stillUsing.count > 5 ? ", …" : "")
            warnings.append("\(stillUsing.count) node\(stillUsing.count == 1 ? "" : "s") still receive with \(unsupported) and keep doing so (\(shown)); move a node with keys for both with `node set NODE --crypto \(new.defaultCrypto.rawValue)`, re-enroll the others")
        }
        var json = Self.policyJSON(new)
        if case .object(var m) = json {
            m.append(("moved_nodes", .array(moved.map { .string($0.0) })))
            m.append(("nodes_on_unsupported_backends", .integer(stillUsing.count)))
            json = .object(m)
        }
        return KDCReport(json: json, lines: lines, warnings: warnings)
    }

    static func policyLines(_ p: KDCPolicy) -> [String] {
        ["default crypto: \(p.defaultCrypto.rawValue)", "supported crypto: \(p.supportedText)"]
    }

    // MARK: - node list / show / remove

    /// `node list`: every node record, removed ones included (state `removed`), with its
    /// backend, the keys on file, its latest enrollment and its latest distribution. One pass
    /// over the enrollments and the distributions.
    public func listNodes() throws(TDNSError) -> KDCReport {
        let state = try store.load()
        let now = clock.now
        let latest = Self.latestEnrollments(state.enrollments)
        var lastDist: [String: KDCDistribution] = [:]
        for d in state.distributions { lastDist[d.nodeID] = d }
        var lines: [String] = []
        var list: [JSONValue] = []
        for n in state.nodes {
            let keys = n.backendsWithKeys.map(\.rawValue) + (n.sig0PublicKey != nil ? ["sig0"] : [])
            let enrollment = latest[n.id].map { $0.state(now: now) + ($0.reenroll == true ? " (re-enrollment)" : "") }
            let last = lastDist[n.id]
            if n.isRemoved {
                lines.append("\(n.id) removed \(n.removedAt.map(RFC3339.format) ?? "")")
            } else {
                lines.append("\(n.id) \(n.crypto.rawValue) (\((n.cryptoSource ?? .operatorChoice).rawValue)) keys \(keys.isEmpty ? "-" : keys.joined(separator: ",")) \(n.legacy ? "legacy" : "signed") enrollment \(enrollment ?? "-") last \(last.map { "\($0.id) \($0.state.rawValue)" } ?? "-")")
            }
            var m: [(String, JSONValue)] = [
                ("node_id", .string(n.id)), ("state", .string(n.isRemoved ? "removed" : "active")),
                ("crypto", .string(n.crypto.rawValue)), ("crypto_source", .string((n.cryptoSource ?? .operatorChoice).rawValue)),
                ("keys_on_file", .array(keys.map { .string($0) })), ("legacy", .bool(n.legacy)), ("source", .string(n.source)),
            ]
            if let e = latest[n.id] { m.append(("enrollment", .string(e.state(now: now)))) }
            if let a = n.notifyAddress { m.append(("notify_address", .string(a))) }
            if let last { m.append(("last_distribution", .object([("distribution_id", .string(last.id)), ("state", .string(last.state.rawValue))]))) }
            if let r = n.removedAt { m.append(("removed_at", .string(RFC3339.format(r)))) }
            list.append(.object(m))
        }
        if lines.isEmpty { lines = ["no nodes"] }
        return KDCReport(json: .object([("nodes", .array(list))]), lines: lines)
    }

    /// How many of a node's latest distributions `node show` lists.
    public static let shownDistributions = 10

    /// `node show NODE`: the backend in use and why, which backend keys are on file, the
    /// enrollment state (latest token, re-enrollment pending), the node's counts per
    /// distribution state and its last ``shownDistributions`` distributions with their states.
    public func showNode(id: String) throws(TDNSError) -> KDCReport {
        let nodeID = try KDCInput.fqdn(id, what: "node ID")
        let state = try store.load()
        let now = clock.now
        guard let n = state.node(nodeID) else { throw .config("node \(nodeID) is not registered") }
        let enrollments = state.enrollments.filter { $0.nodeID == nodeID }
        let dists = state.distributions.filter { $0.nodeID == nodeID }
        let recent = Array(dists.suffix(Self.shownDistributions).reversed())
        var counts: [KDCDistributionState: Int] = [:]
        var withdrawn = 0
        for d in dists {
            counts[d.state, default: 0] += 1
            if d.withdrawn == true { withdrawn += 1 }
        }
        var json = Self.nodeJSON(n)
        if case .object(var m) = json {
            if let e = enrollments.last { m.append(("enrollment", Self.enrollmentJSON(e, now: now))) }
            m.append(("distribution_counts", .object([
                ("pending", .integer(counts[.pending] ?? 0)), ("notified", .integer(counts[.notified] ?? 0)),
                ("confirmed", .integer(counts[.confirmed] ?? 0)), ("failed", .integer(counts[.failed] ?? 0)),
                ("withdrawn", .integer(withdrawn)),
            ])))
            m.append(("distributions", .array(recent.map(Self.distributionJSON))))
            json = .object(m)
        }
        let keys = n.backendsWithKeys.map(\.rawValue) + (n.sig0PublicKey != nil ? ["sig0"] : [])
        var lines = ["node \(n.id)"]
        if let r = n.removedAt {
            lines.append("  removed at \(RFC3339.format(r)): no keys, no distributions, no tokens")
        } else {
            lines.append("  backend in use: \(n.crypto.rawValue) (\(Self.sourceText(n)))")
            lines.append("  keys on file: \(keys.isEmpty ? "none" : keys.joined(separator: ", "))")
            lines.append("  format: \(Self.formatText(n))")
            lines.append("  notify: \(n.notifyAddress ?? "-")")
        }
        lines.append("  registered \(RFC3339.format(n.registeredAt)) (\(n.source))\(n.reenrolledAt.map { ", re-enrolled \(RFC3339.format($0))" } ?? "")")
        if let e = enrollments.last {
            lines.append("  enrollment: \(e.state(now: now))\(e.reenroll == true ? " (re-enrollment)" : "")\(e.crypto.map { ", \($0.rawValue) only" } ?? "")\(e.expiresAt.map { ", until \(RFC3339.format($0))" } ?? "")")
        } else {
            lines.append("  enrollment: none")
        }
        lines.append("  distributions: \(dists.count) (confirmed \(counts[.confirmed] ?? 0), failed \(counts[.failed] ?? 0) of which withdrawn \(withdrawn), live \((counts[.pending] ?? 0) + (counts[.notified] ?? 0)))")
        for d in recent {
            lines.append("    \(d.id) \(d.operation)\(Self.keysText(d)) \(d.crypto.rawValue) \(d.state.rawValue)\(d.reason.map { " (\($0))" } ?? "")")
        }
        return KDCReport(json: json, lines: lines)
    }

    static func sourceText(_ n: KDCNode) -> String {
        switch n.cryptoSource ?? .operatorChoice {
        case .policyDefault: return "the policy's default"
        case .preferred: return "the node's preference"
        case .package: return "its enrollment package offered only this backend"
        case .operatorChoice: return "set by the operator"
        case .onlyKey: return "its only key for a supported backend"
        }
    }

    /// `node remove NODE`: retires the node. Its live distributions are withdrawn (failed,
    /// reason "withdrawn: node removed": no longer served — NXDOMAIN — and no longer
    /// NOTIFYed), its unused enrollment tokens are revoked, and its public keys and notify
    /// address are dropped, so nothing is made for it any more and a confirmation naming it is
    /// refused. The record stays, marked removed (`node list`, `node show`, `status`), with its
    /// past distributions; every step is in the event log. `node add` or a new enrollment
    /// registers the ID afresh.
    public func removeNode(id: String) throws(TDNSError) -> KDCReport {
        let nodeID = try KDCInput.fqdn(id, what: "node ID")
        let now = clock.now
        let (withdrawn, revoked) = try store.update { (state) throws(TDNSError) -> ([String], Int) in
            guard let i = state.nodes.firstIndex(where: { $0.id == nodeID }) else {
                throw .config("node \(nodeID) is not registered")
            }
            guard !state.nodes[i].isRemoved else { throw .config("node \(nodeID) was already removed") }
            var withdrawn: [String] = []
            for j in state.distributions.indices where state.distributions[j].nodeID == nodeID && state.distributions[j].isLive {
                state.withdraw(j, reason: "node removed")
                withdrawn.append(state.distributions[j].id)
            }
            var revoked = 0
            for j in state.enrollments.indices
            where state.enrollments[j].nodeID == nodeID && state.enrollments[j].usedAt == nil && state.enrollments[j].revokedAt == nil {
                state.enrollments[j].revokedAt = now
                revoked += 1
            }
            var n = state.nodes[i]
            n.removedAt = now
            n.hpkePublicKey = nil
            n.josePublicKey = nil
            n.sig0PublicKey = nil
            n.notifyAddress = nil
            state.nodes[i] = n
            return (withdrawn, revoked)
        }
        for id in withdrawn { event("Distribution \(id) withdrawn for \(nodeID): node removed") }
        event("Node \(nodeID) removed: \(withdrawn.count) live distribution\(withdrawn.count == 1 ? "" : "s") withdrawn, \(revoked) enrollment token\(revoked == 1 ? "" : "s") revoked, public keys dropped; no more NOTIFYs")
        return KDCReport(
            json: .object([
                ("node_id", .string(nodeID)), ("state", .string("removed")), ("removed_at", .string(RFC3339.format(now))),
                ("withdrawn_distributions", .array(withdrawn.map { .string($0) })), ("revoked_tokens", .integer(revoked)),
            ]),
            lines: ["node \(nodeID) removed: \(withdrawn.count) live distribution\(withdrawn.count == 1 ? "" : "s") withdrawn\(withdrawn.isEmpty ? "" : " (\(withdrawn.joined(separator: ", ")))"), \(revoked) enrollment token\(revoked == 1 ? "" : "s") revoked"])
    }
}
