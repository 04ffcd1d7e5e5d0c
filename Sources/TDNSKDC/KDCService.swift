import Synchronization
import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

/// The KDC's DNS service as a pure function of the request bytes, the peer's address and the
/// transport (the socket layer only moves bytes): CHUNK queries (PROTOCOL §2.6–§2.7),
/// confirmation NOTIFYs (§10.6) and enrollment UPDATEs (§11.4–§11.5).
///
/// Reads come from a snapshot of `kdc.json` that is reloaded whenever the file changes (the
/// CLI writes it while `serve` runs); prepared CHUNK records are read once per distribution and
/// cached (they never change). Every state change is a locked read-modify-write of the store.
/// Requests that are refused change nothing and leave one log line.
public final class KDCService: Sendable {
    public enum Transport: Sendable { case udp, tcp }

    public let kdc: KDC
    let keys: KDCKeys
    let controlZone: DNSName
    let chunkType: RRType
    /// CHUNK answer TTL (PROTOCOL §2.7, §13).
    static let answerTTL: UInt32 = 300
    /// Largest record set cached in memory per distribution is the whole distribution; this
    /// bounds how many distributions stay cached.
    static let maxCachedDistributions = 256
    /// Bounds on the enrollment request's `capabilities` (PROTOCOL §19): what is stored per node.
    static let maxCapabilities = 16
    static let maxCapabilityLength = 32

    struct Snapshot {
        var state: KDCState
        var fileID: [Int]
        var records: [String: [[UInt8]]] = [:]
    }

    private let snapshot: Mutex<Snapshot>

    public init(kdc: KDC) throws(TDNSError) {
        self.kdc = kdc
        self.keys = try kdc.loadKeys()
        let state = try kdc.store.load()
        self.controlZone = try DNSName(state.config.controlZone)
        self.chunkType = RRType(state.config.chunkType)
        self.snapshot = Mutex(Snapshot(state: state, fileID: Self.fileID(kdc.store.statePath)))
    }

    var log: KDCLog { kdc.log }
    var now: Int64 { kdc.clock.now }

    // MARK: - entry point

    /// Answers one DNS message; nil means "send nothing" (a response, or fewer than 12 bytes).
    public func handle(request: [UInt8], peerHost: String?, transport: Transport) -> [UInt8]? {
        let message: DNSMessage
        do {
            message = try DNSMessage(wireEncoded: request)
        } catch {
            log.refused("unparseable message from \(peerHost ?? "?"): \(error.reason)")
            return Self.formErrFromHeader(request)
        }
        guard !message.flags.qr else { return nil }
        let response: DNSMessage
        switch message.opcode {
        case .query: response = handleQuery(message, peer: peerHost)
        case .notify: response = handleNotify(message, peer: peerHost)
        case .update: response = handleUpdate(message, peer: peerHost)
        default:
            log.refused("opcode \(message.opcode) from \(peerHost ?? "?") not implemented")
            response = reply(to: message, rcode: .notImp)
        }
        return encode(response, for: message, transport: transport)
    }

    // MARK: - CHUNK queries (PROTOCOL §2.6–§2.7)

    func handleQuery(_ m: DNSMessage, peer: String?) -> DNSMessage {
        guard m.questions.count == 1, let q = m.questions.first else {
            log.refused("query from \(peer ?? "?") with \(m.questions.count) questions")
            return reply(to: m, rcode: .formErr)
        }
        guard q.name.isSubdomain(of: controlZone) else {
            log.refused("query for \(q.name) from \(peer ?? "?"): not in the control zone")
            return reply(to: m, rcode: .refused, aa: false)
        }
        guard q.type == chunkType, q.rrClass == .in else {
            // Not a CHUNK query: the control zone has no other data here (NODATA).
            return reply(to: m, rcode: .noError)
        }
        let name: TDNSMessages.ChunkQueryName
        do {
            name = try TDNSMessages.parseChunkQueryName(q.name, controlZone: controlZone)
        } catch {
            log.refused("CHUNK query \(q.name) from \(peer ?? "?"): \(error.reason)")
            return reply(to: m, rcode: .formErr)
        }
        let nodeID = name.nodeID.canonical.description
        let index = Int(name.index ?? 0)
        let lookup = withSnapshot { (s) -> (KDCNode?, KDCDistribution?) in
            (s.state.node(nodeID), s.state.distribution(name.distributionID.text))
        }
        guard let queried = lookup.0, !queried.isRemoved else {
            log.refused("CHUNK query \(q.name) from \(peer ?? "?"): \(lookup.0 == nil ? "unknown" : "removed") node \(nodeID)")
            return reply(to: m, rcode: .nxDomain)
        }
        guard let dist = lookup.1 else {
            log.refused("CHUNK query \(q.name) from \(peer ?? "?"): no distribution \(name.distributionID)")
            return reply(to: m, rcode: .nxDomain)
        }
        // Only live distributions before their deadline are served (to anyone: the content is
        // encrypted to the node). Finished ones are gone, so an on-path attacker cannot
        // harvest old distributions to replay.
        let t = now
        guard dist.isServable(now: t) else {
            forget(dist.id)
            let why = dist.isLive ? "past its deadline \(RFC3339.format(dist.deadline))" : dist.state.rawValue
            log.refused("CHUNK query \(q.name) from \(peer ?? "?"): distribution \(dist.id) is \(why)")
            return reply(to: m, rcode: .nxDomain)
        }
        guard dist.nodeID == nodeID else {
            log.refused("CHUNK query \(q.name) from \(peer ?? "?"): distribution \(dist.id) is for another node")
            return reply(to: m, rcode: .servFail)
        }
        let records: [[UInt8]]
        do {
            records = try self.records(of: dist)
        } catch {
            log.error("distribution \(dist.id): records unreadable: \(error.reason)")
            return reply(to: m, rcode: .servFail)
        }
        guard index < records.count else {
            log.refused("CHUNK query \(q.name) from \(peer ?? "?"): chunk \(index) out of range (\(records.count - 1) data chunks)")
            return reply(to: m, rcode: .nxDomain)
        }
        // No state change here: anyone can send a CHUNK query, so a fetch proves nothing about
        // the node (only a NOERROR answer to our NOTIFY moves pending → notified).
        let rr = ResourceRecord(name: q.name, type: chunkType, rrClass: .in, ttl: Self.answerTTL, rdata: records[index])
        return reply(to: m, rcode: .noError, answers: [rr])
    }

    func records(of dist: KDCDistribution) throws(TDNSError) -> [[UInt8]] {
        if let cached = snapshot.withLock({ $0.records[dist.id] }) { return cached }
        let loaded = try kdc.store.readRecords(dist.recordsFile)
        snapshot.withLock { s in
            if s.records.count >= Self.maxCachedDistributions { s.records.removeAll() }
            s.records[dist.id] = loaded
        }
        return loaded
    }

    /// Drops a distribution's records from the cache (it is finished or past its deadline).
    func forget(_ id: String) {
        snapshot.withLock { _ = $0.records.removeValue(forKey: id) }
    }

    /// Whether the records of `id` are cached (tests).
    func isCached(_ id: String) -> Bool { snapshot.withLock { $0.records[id] != nil } }

    // MARK: - confirmation NOTIFY (PROTOCOL §10.6)

    func handleNotify(_ m: DNSMessage, peer: String?) -> DNSMessage {
        let notify: TDNSMessages.Notify
        do {
            notify = try TDNSMessages.parseNotify(m, controlZone: controlZone)
        } catch {
            log.refused("NOTIFY from \(peer ?? "?"): \(error.reason)")
            return TDNSMessages.notifyResponse(to: m, rcode: .formErr)
        }
        guard notify.question.name.isSubdomain(of: controlZone) else {
            log.refused("NOTIFY for \(notify.question.name) from \(peer ?? "?"): not in the control zone")
            return TDNSMessages.notifyResponse(to: m, rcode: .notAuth)
        }
        guard notify.question.type == chunkType else {
            // The Go KDC acknowledges NOTIFYs of other types and ignores them.
            log.info("NOTIFY \(notify.question) from \(peer ?? "?") ignored: not the CHUNK type")
            return TDNSMessages.notifyResponse(to: m)
        }
        guard let id = notify.distributionID?.text else {
            log.refused("NOTIFY \(notify.question.name) from \(peer ?? "?"): no distribution ID")
            return TDNSMessages.notifyResponse(to: m, rcode: .formErr)
        }
        let lookup = withSnapshot { (s) -> (KDCDistribution?, KDCNode?) in
            let d = s.state.distribution(id)
            return (d, d.flatMap { s.state.node($0.nodeID) })
        }
        guard let dist = lookup.0, let node = lookup.1 else {
            log.refused("confirmation for unknown distribution \(id) from \(peer ?? "?")")
            return TDNSMessages.notifyResponse(to: m, rcode: .refused)
        }
        guard !node.isRemoved else {
            log.refused("confirmation of \(id) from \(peer ?? "?") refused: node \(node.id) was removed")
            return TDNSMessages.notifyResponse(to: m, rcode: .refused)
        }

        // Who sent it: a SIG(0) by the node's enrolled key; else the node's address (as Go
        // does) — but not for a node that said it signs its confirmations and has a SIG(0) key
        // here: an unsigned confirmation from its IP could be anyone's spoofed UDP packet.
        let identifiedBy: String
        do throws(TDNSError) {
            if try SIG0.extract(from: m) != nil {
                guard let keyText = node.sig0PublicKey else {
                    throw TDNSError.authentication("signed, but node \(node.id) has no SIG(0) key at the KDC")
                }
                let key = try KEYRecord.parsePresentationLine(keyText).record
                try SIG0Signatures.verify(m, key: key, now: now)
                identifiedBy = "sig0"
            } else {
                guard !node.requiresSignedConfirmations else {
                    throw TDNSError.authentication("unsigned, but node \(node.id) announced \(KDCCapability.sig0) and has a SIG(0) key at the KDC")
                }
                guard let peer, let expected = node.notifyAddress.flatMap({ try? SocketAddress($0).host }),
                      (try? SocketAddress(host: peer, port: 53).host) == expected
                else {
                    throw TDNSError.authentication("unsigned, and the source \(peer ?? "?") is not the notify address of \(node.id)")
                }
                identifiedBy = "address"
            }
        } catch {
            log.refused("confirmation of \(id) from \(peer ?? "?") refused: \(error.reason)")
            return TDNSMessages.notifyResponse(to: m, rcode: .refused)
        }

        var failed: [KDCFailedKey] = []
        if let option = notify.chunkOption {
            do {
                failed = try Self.failedKeys(option)
            } catch {
                log.refused("confirmation of \(id) from \(peer ?? "?"): \(error.reason)")
                return TDNSMessages.notifyResponse(to: m, rcode: .formErr)
            }
        }
        let relevant = Self.relevantFailures(failed, of: dist)
        let t = now
        let tMs = kdc.clock.nowMilliseconds
        let recorded: KDCDistribution?
        do {
            recorded = try kdc.store.update { (state) throws(TDNSError) -> KDCDistribution? in
                guard let i = state.distributions.firstIndex(where: { $0.id == id }) else { return nil }
                var d = state.distributions[i]
                // A late confirmation still turns failed(deadline) into confirmed; a withdrawn
                // distribution stays withdrawn.
                guard d.isLive || d.failedUnconfirmed else { return nil }
                d.confirmedAt = t
                d.confirmedBy = identifiedBy
                if d.notifiedAt == nil { d.notifiedAt = t }
                if relevant.isEmpty {
                    d.state = .confirmed
                    d.reason = nil
                    if let created = d.createdAtMs { d.latencyMs = max(0, tMs - created) }
                } else {
                    d.state = .failed
                    d.failedKeys = relevant
                    d.reason = Self.failureReason(relevant, of: d)
                }
                state.replace(i, with: d)
                return d
            }
        } catch {
            log.error("distribution \(id): cannot record the confirmation: \(error.reason)")
            return TDNSMessages.notifyResponse(to: m, rcode: .servFail)
        }
        reload()
        forget(id)
        if let d = recorded {
            if d.state == .confirmed {
                kdc.event("Distribution \(id) confirmed by \(node.id) (backend: \(d.crypto.rawValue), latency: \(d.latencyMs.map { "\($0)ms" } ?? "unknown"), identified by \(identifiedBy))")
            } else {
                kdc.event("Distribution \(id) failed for \(node.id) (backend: \(d.crypto.rawValue)): \(d.reason ?? "failed_keys")", level: .warning)
            }
        } else {
            log.info("distribution \(id): confirmation from \(node.id) (identified by \(identifiedBy)) ignored: already \(dist.state.rawValue)")
        }
        return TDNSMessages.notifyResponse(to: m)
    }

    /// Which `failed_keys` of a confirmation count (PROTOCOL §10.6): as the Go KDC, only for
    /// key operations and only the keys of this distribution — except the §19 additions
    /// that fail the whole distribution whatever its content: an entry with key_id `*` (and
    /// zone_name ""), which a node sends when it could not open the distribution at all, and
    /// entries whose error is a backend mismatch (`backend mismatch: jose node received an
    /// hpke distribution`, issue 13), one per key the node could tell. A Go KDC matches no
    /// key `*` and is not misled about any real key.
    static func relevantFailures(_ failed: [KDCFailedKey], of dist: KDCDistribution) -> [KDCFailedKey] {
        let whole = failed.filter(\.failsWholeDistribution)
        if let first = whole.first {
            var named: [KDCFailedKey] = []
            for f in whole where dist.keys.contains(where: { $0.matches(f) }) && !named.contains(f) { named.append(f) }
            return named.isEmpty ? [first] : named
        }
        guard dist.content == "key_operations" else { return [] }
        var out: [KDCFailedKey] = []
        for f in failed where dist.keys.contains(where: { $0.matches(f) }) && !out.contains(f) { out.append(f) }
        return out
    }

    /// `example.com. 12345: disk full` for one key (as before); `2 of 3 keys failed: …; …` for
    /// several; for a whole-distribution failure the node's words alone (`backend mismatch:
    /// jose node received an hpke distribution`), as `status` and `node show` show it.
    static func failureReason(_ relevant: [KDCFailedKey], of d: KDCDistribution) -> String {
        if let whole = relevant.first(where: \.failsWholeDistribution) {
            return whole.error.isEmpty ? "the node could not process the distribution" : whole.error
        }
        let list = relevant.map { "\($0.zoneName) \($0.keyID): \($0.error)" }.joined(separator: "; ")
        return d.keys.count > 1 ? "\(relevant.count) of \(d.keys.count) keys failed: \(list)" : list
    }

    /// The `failed_keys` of a key status report (content type 1; type 3 has none for keys).
    static func failedKeys(_ option: ChunkOption) throws(TDNSError) -> [KDCFailedKey] {
        let (type, content) = try option.contentParts()
        guard type == .keyStatusReport || type == .componentStatusReport else {
            throw .malformed("CHUNK option content type \(type.rawValue) is not a status report")
        }
        let json = try JSONValue.parse(content, maxDepth: 4, maxSize: 65536)
        guard case .object = json else { throw .malformed("status report is not a JSON object") }
        guard type == .keyStatusReport else { return [] }
        var out: [KDCFailedKey] = []
        if let list = json["failed_keys"] {
            guard let items = list.arrayValue else { throw .malformed("failed_keys is not an array") }
            for item in items {
                guard let zone = item["zone_name"]?.stringValue, let key = item["key_id"]?.stringValue else {
                    throw .malformed("failed_keys entry lacks zone_name or key_id")
                }
                out.append(KDCFailedKey(zoneName: zone, keyID: key, error: Self.shortText(item["error"]?.stringValue ?? "")))
            }
        }
        if let list = json["successful_keys"], list.arrayValue == nil, !list.isNull {
            throw .malformed("successful_keys is not an array")
        }
        return out
    }

    /// Longest text kept from a node's report (it goes into the state and the log).
    static let maxReportedText = 256

    /// The node's text, one line, at most ``maxReportedText`` characters.
    static func shortText(_ s: String) -> String {
        String(s.prefix(maxReportedText).map { $0.isASCII && ($0.asciiValue ?? 0) < 0x20 ? " " : $0 })
    }

    // MARK: - state snapshot

    func withSnapshot<R>(_ body: (Snapshot) -> R) -> R {
        let id = Self.fileID(kdc.store.statePath)
        let stale = snapshot.withLock { $0.fileID != id }
        if stale { reload() }
        return snapshot.withLock { body($0) }
    }

    /// Re-reads `kdc.json` (after our own writes, or when another process changed it).
    func reload() {
        let id = Self.fileID(kdc.store.statePath)
        do {
            let state = try kdc.store.load()
            snapshot.withLock { s in
                s.state = state
                s.fileID = id
            }
        } catch {
            log.error("cannot reload the state: \(error.reason)")
        }
    }

    /// The current state (reloaded if the file changed).
    public func currentState() -> KDCState { withSnapshot { $0.state } }

    static func fileID(_ path: String) -> [Int] {
        guard let (s, ns) = POSIXFile.modificationTime(path) else { return [] }
        return [s, ns, POSIXFile.inode(path)]
    }

    // MARK: - responses

    /// miekg `SetReply` (+ AA for the KDC's own answers): ID, opcode, first question; RD and CD
    /// copied for QUERY.
    func reply(to m: DNSMessage, rcode: RCode, answers: [ResourceRecord] = [], aa: Bool = true) -> DNSMessage {
        var flags = DNSHeaderFlags(qr: true, aa: aa)
        if m.opcode == .query {
            flags.rd = m.flags.rd
            flags.cd = m.flags.cd
        }
        var r = DNSMessage(id: m.id, opcode: m.opcode, flags: flags, rcode: rcode, questions: Array(m.questions.prefix(1)), answers: answers)
        if let e = m.edns {
            r.edns = EDNS(udpPayloadSize: TDNSMessages.chunkQueryUDPSize, dnssecOK: e.dnssecOK)
        }
        return r
    }

    /// Serializes; over UDP an answer larger than the client's limit is sent truncated (TC=1).
    func encode(_ r: DNSMessage, for request: DNSMessage, transport: Transport) -> [UInt8]? {
        var bytes: [UInt8]
        do {
            bytes = try r.serialize()
        } catch {
            log.error("cannot serialize a response: \(error.reason)")
            var fallback = reply(to: request, rcode: .servFail)
            fallback.edns = nil
            return try? fallback.serialize()
        }
        if transport == .udp {
            let limit = max(512, Int(request.edns?.udpPayloadSize ?? 512))
            if bytes.count > limit {
                var t = r
                t.answers = []
                t.authority = []
                t.additional = []
                t.flags.tc = true
                bytes = (try? t.serialize()) ?? []
            }
        }
        return bytes.isEmpty ? nil : bytes
    }

    /// FORMERR for bytes that do not parse: the header's ID and opcode, QR=1, nothing else.
    static func formErrFromHeader(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= DNSMessage.headerSize, bytes[2] & 0x80 == 0 else { return nil }
        let opcodeBits = bytes[2] & 0x78
        return [bytes[0], bytes[1], 0x80 | opcodeBits, RCode.formErr.headerBits, 0, 0, 0, 0, 0, 0, 0, 0]
    }
}
