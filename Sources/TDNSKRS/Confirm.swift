import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

/// The confirm step: sends the status report of a processed distribution to the KDC (PROTOCOL
/// §10.6), SIG(0)-signed with the node key (§19), from the notify address's IP, in the
/// configured CHUNK type, retried a few times until acknowledged.
struct Confirmer: Sendable {
    /// Larger confirmations go over TCP (RFC 9715's safe EDNS buffer size).
    static let maxUDPConfirmation = 1232

    let kdc: SocketAddress
    let controlZone: DNSName
    let chunkType: RRType
    /// The node's SIG(0) key and name; nil: unsigned (identified by the source address).
    let signer: (key: DNSSECPrivateKey, name: DNSName)?
    let source: SocketAddress?
    let stop: StopToken
    let activity: NodeActivity
    let log: @Sendable (KRSLogLevel, String) -> Void

    /// The confirmer of an enrolled node; nil without `kdc_address` or `control_zone`.
    init?(settings: KRSSettings, stop: StopToken, activity: NodeActivity, log: @escaping @Sendable (KRSLogLevel, String) -> Void) {
        guard let kdc = settings.kdcAddress, let zone = settings.controlZone else { return nil }
        self.kdc = kdc
        self.controlZone = zone
        self.chunkType = settings.chunkType
        if let key = settings.sig0Key, let node = settings.nodeID {
            signer = (key, node)
        } else {
            signer = nil
        }
        self.source = settings.confirmationSource
        self.stop = stop
        self.activity = activity
        self.log = log
    }

    /// Sends the report; returns whether the KDC acknowledged it (NOERROR). A report that
    /// lists nothing is not sent.
    func confirm(_ id: DistributionID, _ result: DistributionResult, now: Int64) -> Bool {
        guard !result.reportIsEmpty else { return false }
        do {
            let option = ChunkOption(
                contentType: result.reportKind == .keyStatus ? .keyStatusReport : .componentStatusReport,
                content: Array(result.reportJSON.utf8))
            let notify = try TDNSMessages.notify(
                id: UInt16.random(in: 1...UInt16.max), distributionID: id, controlZone: controlZone,
                chunkType: chunkType, chunkOption: option)
            let wire: [UInt8]
            if let signer {
                wire = try SIG0Signatures.sign(notify, with: signer.key, signerName: signer.name, now: now)
            } else {
                wire = try notify.serialize()
            }
            for attempt in 1...Fetcher.attempts where !stop.isStopped {
                // UDP as the Go KRS sends it; TCP for a report too large for one unfragmented
                // datagram (many failed keys) and for the last attempt (UDP may be filtered).
                let transport: DNSTransportKind = wire.count > Self.maxUDPConfirmation || attempt == Fetcher.attempts ? .tcp : .udp
                if let answer = try? DNSMessage(wireEncoded: try DNSClient.exchange(
                    wire, server: kdc, over: transport, timeout: Fetcher.exchangeTimeout, source: source, stop: stop)),
                   TDNSMessages.isResponse(answer, to: notify) {
                    if answer.rcode == .noError {
                        activity.count { $0.confirmations += 1 }
                        log(.info, "distribution \(id) confirmed to the KDC")
                        return true
                    }
                    // The KDC heard it and said no: sent again on the retry timer, not now.
                    log(.warning, "distribution \(id): the KDC answered the confirmation with \(answer.rcode)")
                    break
                }
                if attempt < Fetcher.attempts { stop.sleep(Double(1 << (attempt - 1))) }
            }
        } catch {
            log(.warning, "distribution \(id): confirmation not sent: \(error.reason)")
        }
        activity.count { $0.confirmationFailures += 1 }
        return false
    }
}

/// Status reports of installed distributions the KDC has not acknowledged yet
/// (`state_dir/unconfirmed/<id>.json`): resent after a restart or a repeated NOTIFY. Only a
/// ``DistributionID`` — hex — ever becomes part of a path.
struct UnconfirmedStore: Sendable {
    let directory: String
    var folder: String { "\(directory)/unconfirmed" }

    func path(_ id: DistributionID) -> String { "\(folder)/\(id).json" }

    func save(_ id: DistributionID, _ result: DistributionResult) throws(TDNSError) {
        try POSIXFile.makeDirectory(folder, mode: 0o700)
        var members: [(String, JSONValue)] = [
            ("kind", .integer(Int(result.reportKind.rawValue))), ("report", .string(result.reportJSON)),
            ("signed", .bool(result.signed)), ("keys_changed", .integer(result.keysChanged)),
        ]
        if case .notInstalled(let reason) = result.outcome { members.append(("server_failure", .string(reason))) }
        try POSIXFile.writeAtomically(path(id), bytes: JSONValue.object(members).serialized(), mode: 0o600)
    }

    func load(_ id: DistributionID) throws(TDNSError) -> DistributionResult {
        guard POSIXFile.exists(path(id)) else { throw .storage("no unconfirmed report for \(id)") }
        let json = try JSONValue.parse(try POSIXFile.read(path(id), limit: 1 << 20))
        guard let kindValue = json["kind"]?.int64Value, let kindByte = UInt8(exactly: kindValue),
              let kind = DistributionResult.ReportKind(rawValue: kindByte), let reportText = json["report"]?.stringValue,
              let report = try? JSONValue.parse(Array(reportText.utf8), maxDepth: 8, maxSize: 1 << 20) else {
            throw .malformed("unconfirmed report for \(id) is damaged")
        }
        let outcome: DistributionResult.Outcome = json["server_failure"]?.stringValue.map { .notInstalled(reason: $0) } ?? .applied
        return DistributionResult(
            reportKind: kind, report: report, outcome: outcome, signed: json["signed"]?.boolValue ?? false,
            keysChanged: Int(json["keys_changed"]?.int64Value ?? 0))
    }

    func remove(_ id: DistributionID) throws(TDNSError) {
        try POSIXFile.remove(path(id))
    }
}
