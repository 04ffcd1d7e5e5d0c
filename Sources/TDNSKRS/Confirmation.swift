import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

extension KRSNode {
    var unconfirmedStore: UnconfirmedStore { UnconfirmedStore(directory: settings.stateDirectory) }

    /// Sends the status report to the KDC (PROTOCOL §10.6), SIG(0)-signed with the node key
    /// (§19), from the notify address's IP, in the configured CHUNK type, retried until
    /// acknowledged. Returns whether it was.
    func confirm(_ id: String, _ result: DistributionResult) -> Bool {
        let settings = self.settings
        guard result.reportJSON != "{}", let kdcText = settings.kdcAddress, let zoneText = settings.controlZone,
              let kdc = try? SocketAddress(kdcText), let zone = try? DNSName(zoneText) else { return false }
        let source = settings.notifyListen.flatMap { try? SocketAddress($0) }.flatMap { try? SocketAddress(host: $0.host, port: 0) }
        do {
            let option = ChunkOption(
                contentType: result.reportKind == .keyStatus ? .keyStatusReport : .componentStatusReport,
                content: Array(result.reportJSON.utf8))
            let notify = try TDNSMessages.notify(
                id: UInt16.random(in: 1...UInt16.max), distributionID: id, controlZone: zone,
                chunkType: RRType(rawValue: settings.chunkRRType), chunkOption: option)
            let wire: [UInt8]
            if let key = settings.sig0Key, let node = settings.nodeID {
                wire = try SIG0Signatures.sign(notify, with: key, signerName: try DNSName(node), now: now)
            } else {
                wire = try notify.serialize()
            }
            let cancel = cancellation.withLock { $0 }
            for attempt in 1...Self.attempts where !isStopping {
                // UDP as the Go KRS sends it; TCP for a report too large for one unfragmented
                // datagram (many failed keys) and for the last attempt (UDP may be filtered).
                let transport: DNSTransportKind = wire.count > Self.maxUDPConfirmation || attempt == Self.attempts ? .tcp : .udp
                if let answer = try? DNSMessage(wireEncoded: try DNSClient.exchange(
                    wire, server: kdc, over: transport, timeout: Self.exchangeTimeout, source: source, cancellation: cancel)),
                   TDNSMessages.isResponse(answer, to: notify) {
                    if answer.rcode == .noError {
                        core.withLock { $0.counters.confirmations += 1 }
                        log(.info, "distribution \(id) confirmed to the KDC")
                        return true
                    }
                    // The KDC heard it and said no: sent again on the retry timer, not now.
                    log(.warning, "distribution \(id): the KDC answered the confirmation with \(answer.rcode)")
                    break
                }
                if attempt < Self.attempts { interruptibleSleep(Double(1 << (attempt - 1))) { isStopping } }
            }
        } catch {
            log(.warning, "distribution \(id): confirmation not sent: \(error.reason)")
        }
        core.withLock { $0.counters.confirmationFailures += 1 }
        return false
    }
}

/// Status reports of installed distributions the KDC has not acknowledged yet
/// (`state_dir/unconfirmed/<id>.json`): resent after a restart or a repeated NOTIFY.
struct UnconfirmedStore {
    let directory: String
    var folder: String { "\(directory)/unconfirmed" }

    func save(_ id: String, _ result: DistributionResult) throws(TDNSError) {
        try POSIXFile.makeDirectory(folder, mode: 0o700)
        let json = JSONValue.object([
            ("kind", .integer(Int(result.reportKind.rawValue))), ("report", .string(result.reportJSON)),
            ("signed", .bool(result.signed)), ("keys_changed", .integer(result.keysChanged)),
        ] + (result.serverFailure.map { [("server_failure", JSONValue.string($0))] } ?? []))
        try POSIXFile.writeAtomically("\(folder)/\(id).json", bytes: json.serialized(), mode: 0o600)
    }

    func load(_ id: String) throws(TDNSError) -> DistributionResult {
        // IDs also come from krs_fetch callers: only hex ever becomes part of a path.
        guard (1...16).contains(id.utf8.count), id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
              POSIXFile.exists("\(folder)/\(id).json") else { throw .storage("no unconfirmed report for \(id)") }
        let json = try JSONValue.parse(try POSIXFile.read("\(folder)/\(id).json", limit: 1 << 20))
        guard let kindValue = json["kind"]?.int64Value, let kindByte = UInt8(exactly: kindValue),
              let kind = DistributionResult.ReportKind(rawValue: kindByte), let report = json["report"]?.stringValue else {
            throw .malformed("unconfirmed report for \(id) is damaged")
        }
        return DistributionResult(
            reportKind: kind, reportJSON: report, signed: json["signed"]?.boolValue ?? false,
            keysChanged: Int(json["keys_changed"]?.int64Value ?? 0), serverFailure: json["server_failure"]?.stringValue)
    }

    func remove(_ id: String) throws(TDNSError) {
        try POSIXFile.remove("\(folder)/\(id).json")
    }
}
