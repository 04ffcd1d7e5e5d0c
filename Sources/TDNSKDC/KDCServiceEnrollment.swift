import Synchronization
import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

// The enrollment UPDATE half of KDCService (PROTOCOL §11.4–§11.5, re-enrollment and the backend
// choice of §19): the request is decrypted, its token checked and the node registered in one write.

extension KDCService {
    // MARK: - enrollment UPDATE (PROTOCOL §11.4–§11.5)

    func handleUpdate(_ m: DNSMessage, peer: String?) -> DNSMessage {
        guard m.questions.count == 1, let zone = m.questions.first, zone.name == controlZone else {
            log.refused("UPDATE from \(peer ?? "?") for \(m.questions.first.map { "\($0.name)" } ?? "no zone"): not the control zone")
            return reply(to: m, rcode: .notAuth, aa: false)
        }
        let outcome = enroll(m, peer: peer)
        var r = reply(to: m, rcode: outcome.rcode, aa: false)
        let option = ChunkOption(contentType: .enrollmentConfirmation, content: outcome.content)
        if let opt = try? option.ednsOption() {
            r.edns = EDNS(udpPayloadSize: TDNSMessages.chunkQueryUDPSize, dnssecOK: true, options: [opt])
        }
        return r
    }

    struct EnrollOutcome {
        var rcode: RCode
        /// Encrypted confirmation, or plaintext JSON on some errors (PROTOCOL §11.5).
        var content: [UInt8]
    }

    func enroll(_ m: DNSMessage, peer: String?) -> EnrollOutcome {
        var nodeHPKE: HPKEPublicKey? = nil
        var nodeJOSE: JOSEPublicKey? = nil
        var nodeForError = ""
        func fail(_ rcode: RCode, _ why: String) -> EnrollOutcome {
            log.refused("enrollment from \(peer ?? "?")\(nodeForError.isEmpty ? "" : " for \(nodeForError)") refused (\(rcode)): \(why)")
            let json = confirmationJSON(nodeID: nodeForError, status: "error", error: why)
            // Encrypted when the node's HPKE key is known, else plaintext (as Go does).
            if let nodeHPKE, let sealed = try? HPKECipher.sealAuth(json, to: nodeHPKE, from: keys.hpke) {
                return EnrollOutcome(rcode: rcode, content: sealed)
            }
            return EnrollOutcome(rcode: rcode, content: json)
        }

        let chunk: CHUNKRecord
        do {
            // Both CHUNK codes, whatever ours is: a Go KRS built with 65015 enrolls with a KDC
            // configured for 65288 and vice versa (PROTOCOL §2.1, §21).
            chunk = try TDNSMessages.parseEnrollmentUpdate(m, controlZone: controlZone, acceptedTypes: [.chunk, .chunkLegacy])
        } catch {
            return fail(.formErr, error.reason)
        }
        // HPKE first, then JOSE (PROTOCOL §11.4).
        var plaintext: [UInt8]
        if let p = try? HPKECipher.open(chunk.data, with: keys.hpke) {
            plaintext = p
        } else if let p = try? JWE.decrypt(chunk.data, with: keys.jose) {
            plaintext = p
        } else {
            return fail(.formErr, "cannot decrypt the enrollment request (tried HPKE and JOSE)")
        }
        defer { zeroize(&plaintext) }
        let request: JSONValue
        do throws(TDNSError) {
            request = try JSONValue.parse(plaintext, maxDepth: 2, maxSize: 65536)
            guard case .object = request else { throw TDNSError.malformed("not a JSON object") }
        } catch {
            return fail(.formErr, "enrollment request is not a JSON object: \(error.reason)")
        }
        func field(_ name: String) -> String? { request[name]?.stringValue }
        for name in ["auth_token", "hpke_pubkey", "jose_pubkey", "notify_address", "preferred_crypto", "sig0_pubkey", "timestamp"] {
            if let v = request[name], v.stringValue == nil { return fail(.formErr, "\(name) is not a string") }
        }
        // PROTOCOL §19: what the node can read. Absent (a Go KRS) = nothing beyond the Go format.
        guard let capabilities = Self.shortList(request["capabilities"]) else {
            return fail(.formErr, "capabilities is not a list of at most \(Self.maxCapabilities) short printable strings")
        }
        // PROTOCOL §19 (issue 13): the backends the node's KRS supports and the one it prefers.
        // Absent (a Go KRS, an older KRS): no preference. Names of backends this KDC does not
        // know are kept as announced but never chosen.
        guard let nodeSupported = Self.shortList(request["supported_crypto"]) else {
            return fail(.formErr, "supported_crypto is not a list of at most \(Self.maxCapabilities) short printable strings")
        }
        let preferredText = field("preferred_crypto").map { Self.shortText($0).lowercased() }
        let preferred = preferredText.flatMap { KDCCrypto(rawValue: $0) }
        if let h = field("hpke_pubkey"), !h.isEmpty { nodeHPKE = try? HPKEPublicKey(text: Array(h.utf8)) }

        // Token (PROTOCOL §11.1): exists, activated, inside its window, unused, not revoked.
        let token = field("auth_token") ?? ""
        let tokenHash = Hex.encode(Digests.sha256(Array(token.utf8)))
        let t = now
        let (enrollment, policy, registered) = withSnapshot { s in
            let e = s.state.enrollments.first { $0.tokenHash == tokenHash }
            return (e, s.state.policy, e.flatMap { s.state.activeNode($0.nodeID) })
        }
        guard !token.isEmpty, let enrollment else { return fail(.refused, "enrollment token validation failed: unknown token") }
        guard enrollment.usedAt == nil else { return fail(.refused, "enrollment token validation failed: token already used") }
        guard enrollment.revokedAt == nil else { return fail(.refused, "enrollment token validation failed: token revoked (node removed)") }
        guard enrollment.activatedAt != nil, let expires = enrollment.expiresAt else {
            return fail(.refused, "enrollment token validation failed: token not activated")
        }
        guard t <= expires else { return fail(.refused, "enrollment token validation failed: token expired") }
        nodeForError = enrollment.nodeID
        // An enrolled node replaces its keys only with a re-enrollment token (issue 13): a
        // token generated before the node was registered another way does not do it.
        guard registered == nil || enrollment.reenroll == true else {
            return fail(.refused, "node \(enrollment.nodeID) is already enrolled and this is not a re-enrollment token; generate a new package with `enroll generate`")
        }

        let window = withSnapshot { $0.state.config.enrollmentWindow }
        guard let stamp = field("timestamp"), let ts = RFC3339.parse(stamp) else {
            return fail(.formErr, "invalid timestamp format")
        }
        guard abs(t - ts) <= window else {
            return fail(.refused, "enrollment request timestamp out of range (must be within \(GoDuration.format(seconds: window)))")
        }

        let hpkeText = field("hpke_pubkey") ?? ""
        let joseText = field("jose_pubkey") ?? ""
        guard !hpkeText.isEmpty || !joseText.isEmpty else {
            return fail(.formErr, "at least one crypto backend public key (hpke or jose) is required")
        }
        if !hpkeText.isEmpty {
            guard nodeHPKE != nil, hpkeText.utf8.count == 64 else { return fail(.formErr, "invalid HPKE public key (must be 32 bytes hex encoded)") }
        }
        if !joseText.isEmpty {
            do { nodeJOSE = try JOSEPublicKey(jwk: Array(joseText.utf8)) } catch {
                return fail(.formErr, "invalid JOSE public key: \(error.reason)")
            }
        }
        guard let sig0Text = field("sig0_pubkey"), !sig0Text.isEmpty else { return fail(.formErr, "SIG(0) public key is required") }
        let sig0Key: RecordLine<KEYRecord>
        do { sig0Key = try KEYRecord.parsePresentationLine(sig0Text) } catch {
            return fail(.formErr, "sig0_pubkey is not a KEY record: \(error.reason)")
        }
        guard sig0Key.owner.canonical.description == enrollment.nodeID else {
            return fail(.refused, "sig0_pubkey owner \(sig0Key.owner) is not the node ID \(enrollment.nodeID)")
        }
        // Not in the Go KDC: the UPDATE must be SIG(0)-signed by the key it enrolls — for a
        // re-enrollment too: the NEW key. The token is the authority (as in a first
        // enrollment); the old SIG(0) key is not asked for (see README, "Re-enrollment").
        do {
            try SIG0Signatures.verify(m, key: sig0Key.record, now: t, skew: window)
        } catch {
            return fail(.refused, "SIG(0) verification failed: \(error.reason)")
        }
        var notify = enrollment.notifyAddress
        if notify == nil, let requested = field("notify_address"), !requested.isEmpty {
            do { notify = try KDCInput.address(requested, what: "notify_address") } catch {
                return fail(.formErr, error.reason)
            }
        }
        if notify == nil { notify = registered?.notifyAddress }

        // The backend (seed "Multi-Backend Support Strategies", issue 13 policy).
        let available = KDCCrypto.allCases.filter { ($0 == .hpke && nodeHPKE != nil) || ($0 == .jose && nodeJOSE != nil) }
        let crypto: KDCCrypto
        let source: KDCCryptoSource
        switch Self.chooseBackend(available: available, package: enrollment.crypto, preferred: preferred, policy: policy) {
        case .chosen(let c, let s):
            (crypto, source) = (c, s)
        case .refused(let rcode, let why):
            return fail(rcode, why)
        }

        // PROTOCOL §19 / contract §1: signed distributions only for a node that verifies them;
        // the HPKE layout a Go KRS reads follows from what `krs-cli enroll` wrote: v1
        // (`use_crypto_v2: false`) exactly when it made no JOSE key.
        let verifiesSignatures = capabilities.contains(KDCCapability.jwsES256)
        let legacy = enrollment.legacy == true || !verifiesSignatures
        let layout: KDCHPKELayout = legacy && nodeHPKE != nil && joseText.isEmpty && !verifiesSignatures ? .v1 : .v2
        var node = KDCNode(
            id: enrollment.nodeID, crypto: crypto, hpkePublicKey: nodeHPKE?.hex, josePublicKey: nodeJOSE?.jwkJSON(),
            notifyAddress: notify, sig0PublicKey: sig0Key.record.presentationLine(owner: sig0Key.owner),
            legacy: legacy, hpkeLayout: layout, capabilities: capabilities, source: "enrolled", registeredAt: t,
            cryptoSource: source)
        node.preferredCrypto = preferred
        node.supportedCrypto = request["supported_crypto"] == nil ? nil : nodeSupported
        let kdcKeys = keys
        let nowMs = kdc.clock.nowMilliseconds
        let outcome: (previous: KDCNode?, remade: [(old: String, new: KDCDistribution?)])
        do {
            outcome = try kdc.store.update { (state) throws(TDNSError) -> (KDCNode?, [(old: String, new: KDCDistribution?)]) in
                // Checked again under the lock: a concurrent request may have used the token,
                // `node remove` may have revoked it.
                guard let i = state.enrollments.firstIndex(where: { $0.tokenHash == tokenHash }),
                      state.enrollments[i].usedAt == nil, state.enrollments[i].revokedAt == nil
                else { throw TDNSError.replay("token already used or revoked") }
                let previous = state.activeNode(node.id)
                if previous != nil && state.enrollments[i].reenroll != true {
                    throw TDNSError.policy("node \(node.id) is already enrolled and this is not a re-enrollment token")
                }
                state.enrollments[i].usedAt = t
                if let previous {
                    // Re-enrollment: the keys are replaced in one step; the record keeps its history.
                    node.registeredAt = previous.registeredAt
                    node.reenrolledAt = t
                }
                state.nodes.removeAll { $0.id == node.id }
                state.nodes.append(node)
                state.metrics.counted(node.crypto) { c in
                    c.enrollments += 1
                    if previous != nil { c.reenrollments += 1 }
                }
                guard previous != nil else { return (nil, []) }
                return (previous, try self.remakeLive(&state, for: node, now: t, nowMs: nowMs, kdcKeys: kdcKeys))
            }
        } catch where error.code == .replay {
            return fail(.refused, "enrollment token validation failed: token already used")
        } catch where error.code == .policy {
            return fail(.refused, error.reason)
        } catch {
            log.error("enrollment of \(node.id): cannot store the node: \(error.reason)")
            return fail(.servFail, "failed to add node to the KDC state")
        }
        reload()
        for (old, _) in outcome.remade { forget(old) }
        if let previous = outcome.previous {
            let before = previous.backendsWithKeys.map(\.rawValue).joined(separator: ",")
            let after = node.backendsWithKeys.map(\.rawValue).joined(separator: ",")
            kdc.event("Node \(node.id) re-enrolled with backend: \(node.crypto.rawValue) (was \(previous.crypto.rawValue); keys \(before) replaced by \(after), new SIG(0) key; \(outcome.remade.count) live distribution\(outcome.remade.count == 1 ? "" : "s") made again)")
        } else {
            kdc.event("Node \(node.id) enrolled with backend: \(node.crypto.rawValue)")
        }
        for (old, new) in outcome.remade {
            if let new {
                kdc.logCreated(new)
                kdc.event("Distribution \(old) withdrawn for \(node.id): made again for the new keys as \(new.id)")
            } else {
                kdc.event("Distribution \(old) withdrawn for \(node.id): its keys are gone, not made again", level: .warning)
            }
        }
        if preferredText != nil && preferred != node.crypto {
            log.info("node \(node.id) preferred \(preferredText ?? "") but receives with \(node.crypto.rawValue) (\(KDC.sourceText(node)))")
        }
        log.info("node \(node.id) enrolled (\(KDC.formatText(node)), capabilities [\(capabilities.joined(separator: ","))], notify \(notify ?? "-"))")

        var confirmation = confirmationJSON(nodeID: node.id, status: "success", error: nil)
        defer { zeroize(&confirmation) }
        do {
            if let nodeHPKE {
                return EnrollOutcome(rcode: .noError, content: try HPKECipher.sealAuth(confirmation, to: nodeHPKE, from: keys.hpke))
            } else if let nodeJOSE {
                return EnrollOutcome(rcode: .noError, content: try JWE.encrypt(confirmation, to: nodeJOSE))
            }
        } catch {
            log.error("enrollment of \(node.id): cannot encrypt the confirmation: \(error.reason)")
        }
        return EnrollOutcome(rcode: .servFail, content: [])
    }

    /// A list of short printable strings (`capabilities`, `supported_crypto`, PROTOCOL §19),
    /// without repeats; [] when absent; nil when malformed.
    static func shortList(_ value: JSONValue?) -> [String]? {
        guard let value else { return [] }
        guard let items = value.arrayValue, items.count <= maxCapabilities else { return nil }
        var out: [String] = []
        for item in items {
            guard let text = item.stringValue, (1...maxCapabilityLength).contains(text.utf8.count),
                  text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else { return nil }
            if !out.contains(text) { out.append(text) }
        }
        return out
    }

    enum BackendChoice: Equatable {
        case chosen(KDCCrypto, KDCCryptoSource)
        case refused(RCode, String)
    }

    /// The backend an enrolling node receives with: the package's one backend (`enroll
    /// generate --crypto`), else the node's `preferred_crypto`, else the policy's default,
    /// else its one key for a supported backend — always one the policy supports and the node
    /// has a key for. A node with keys only for backends the policy does not support (the
    /// rollback), or for a one-backend package without that key, is refused with the reason.
    static func chooseBackend(available: [KDCCrypto], package: KDCCrypto?, preferred: KDCCrypto?, policy: KDCPolicy) -> BackendChoice {
        if let package {
            guard policy.supports(package) else {
                return .refused(.refused, "backend \(package.rawValue) is not supported by this KDC (supported: \(policy.supportedText))")
            }
            guard available.contains(package) else {
                return .refused(.formErr, "the enrollment is for \(package == .hpke ? "HPKE" : "JOSE"), but the request has no \(package.rawValue)_pubkey")
            }
            return .chosen(package, .package)
        }
        let usable = available.filter(policy.supports)
        guard let first = usable.first else {
            let offered = available.map(\.rawValue).joined(separator: ", ")
            return .refused(.refused, "backend \(offered) is not supported by this KDC (supported: \(policy.supportedText))")
        }
        if let preferred, usable.contains(preferred) { return .chosen(preferred, .preferred) }
        if usable.contains(policy.defaultCrypto) { return .chosen(policy.defaultCrypto, .policyDefault) }
        return .chosen(first, .onlyKey)
    }

    /// Re-enrollment: every live distribution of the node (made for its old keys, which it
    /// is about to retire) is withdrawn and made again, same operation and keys, for its new
    /// keys and backend; a ping gets a new nonce. A distribution whose keys the KDC no longer
    /// holds is only withdrawn. Returns (old ID, new distribution or nil).
    func remakeLive(
        _ state: inout KDCState, for node: KDCNode, now: Int64, nowMs: Int64, kdcKeys: KDCKeys
    ) throws(TDNSError) -> [(old: String, new: KDCDistribution?)] {
        var out: [(old: String, new: KDCDistribution?)] = []
        let live = state.distributions.indices.filter { state.distributions[$0].nodeID == node.id && state.distributions[$0].isServable(now: now) }
        for i in live {
            let old = state.distributions[i]
            let operation = KDCOperation(rawValue: old.operation) ?? .ping
            var selected: [KDCKey] = []
            var missing = false
            for ref in old.keys {
                if let k = state.keys.first(where: { $0.zone == ref.zone && $0.keyTag == ref.keyTag }) { selected.append(k) } else { missing = true }
            }
            if missing || (operation != .ping && selected.isEmpty) {
                state.withdraw(i, reason: "node re-enrolled with new keys; the keys of this distribution are gone, not made again")
                out.append((old.id, nil))
                continue
            }
            var pems: [String: [UInt8]] = [:]
            defer { for k in Array(pems.keys) { zeroize(&pems[k, default: []]) } }
            if operation == .rollKey {
                for k in selected where pems[k.privateKeyFile] == nil { pems[k.privateKeyFile] = try kdc.store.read(k.privateKeyFile, limit: 65536) }
            }
            // The chunk size of the original is not kept; the KDC's default serves any size.
            let new = try kdc.makeDistribution(
                &state, for: node, operation: operation, keys: selected, pems: pems, now: now, nowMs: nowMs,
                chunkSize: state.config.chunkSize, kdcKeys: kdcKeys)
            guard let j = state.distributions.firstIndex(where: { $0.id == old.id }),
                  let k = state.distributions.lastIndex(where: { $0.id == new.id })
            else { throw .internalFailure("re-enrollment lost a distribution") }
            state.withdraw(j, reason: "node re-enrolled with new keys; made again as \(new.id)")
            // What `status` and `node show` say of it (contract §5).
            state.distributions[j].reason = "superseded by \(new.id)"
            state.distributions[j].remadeAs = new.id
            state.distributions[k].remadeFrom = old.id
            out.append((old.id, state.distributions[k]))
        }
        return out
    }

    /// Go `edns0.EnrollmentConfirmation`: node_id, status, kdc_hpke_pubkey, timestamp,
    /// error_message (omitted when empty), PROTOCOL §11.5.
    func confirmationJSON(nodeID: String, status: String, error: String?) -> [UInt8] {
        var members: [(String, JSONValue)] = [
            ("node_id", .string(nodeID)), ("status", .string(status)),
            ("kdc_hpke_pubkey", .string(status == "success" ? keys.hpke.publicKey.hex : "")),
            ("timestamp", .string(RFC3339.format(now))),
        ]
        if let error, !error.isEmpty { members.append(("error_message", .string(error))) }
        return JSONValue.object(members).serialized(escapeHTML: true)
    }
}
