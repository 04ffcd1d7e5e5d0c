#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TDNSCore
import TDNSCrypto
import TDNSKRS
import TDNSWire

/// The manifest JSON (PROTOCOL §9.1, §9.3) through the public receiver pipeline.
///
/// `Manifest.fromJSON` / `fromJWT` are internal to TDNSKRS, so the harness goes through
/// `KeyReceiver.process`: it wraps the input in a manifest CHUNK record that passes the
/// authentication step — Format 1 with the HMAC computed over it with the node's key, and
/// Format 2 with the input as JWT claims signed by the KDC key — so every input reaches the
/// JSON parser and the manifest checks behind it. (With `Manifest.fromJSON`/`fromJWT` made
/// `package`, the same harness could call them directly, much faster.)
///
/// "now" is the input's own timestamp (`metadata.timestamp` or `iat`) plus 5 s, so the vector
/// manifests are fresh and their mutations reach the TTL and payload checks; `max_skew=0`.
/// The state directory is emptied after every call, so no run depends on an earlier one.
enum ManifestHarness {
    static let defaultNow: Int64 = 1_767_225_605

    /// The time the receiver's clock reports during the current call.
    private static let clockValue = Mutex<Int64>(defaultNow)

    struct Environment: Sendable {
        let receiver: KeyReceiver
        let stateDirectory: String
        let hmacKey: [UInt8]
        let kdcSigner: JOSEPrivateKey
    }

    static let environment: Result<Environment, TDNSError> = Result { () throws(TDNSError) -> Environment in
        let keys = try FuzzState.keys()
        let dir = try FuzzState.directory()
        let settings = try KRSSettings(arguments: FuzzState.arguments(stateDirectory: dir, keys: keys))
        let receiver = try KeyReceiver(settings: settings, clock: WallClock { clockValue.withLock { $0 } })
        return Environment(
            receiver: receiver, stateDirectory: dir, hmacKey: keys.hpkeRecipient.publicKey.rawRepresentation, kdcSigner: keys.kdcSigner)
    }

    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        let env: Environment
        switch environment {
        case .success(let e): env = e
        case .failure(let e): throw InvariantViolation(message: "manifest harness environment: \(e.code): \(e.reason)")
        }

        // The strict JSON parser with the manifest's limits, and its round trip.
        var json: JSONValue? = nil
        do {
            let value = try JSONValue.parse(data, maxDepth: 8, maxSize: 65535)
            try jsonRoundTrip(value, maxDepth: 8, what: "manifest JSON")
            json = value
        } catch {
            try rejection(error, [.malformed, .tooBig], "JSONValue.parse")
        }

        // Format 1: JSON + HMAC-SHA256 keyed with the node's HPKE public key.
        if data.count <= 65535 - CHUNKRecord.minimumLength - 32 {
            let hmac = Digests.hmacSHA256(key: env.hmacKey, data: [CHUNKRecord.formatJSON] + data)
            let rdata = try mustSucceed("CHUNK RDATA of a Format 1 manifest") { () throws(TDNSError) in
                try CHUNKRecord(format: CHUNKRecord.formatJSON, hmac: hmac, sequence: 0, total: 0, data: data).rdata()
            }
            let meta = json?["metadata"]
            try process(env, records: [rdata], id: distributionID(meta?["distribution_id"]), issuedAt: meta?["timestamp"]?.int64Value)
        }

        // Format 2: the input as the claims of a JWT signed by the KDC.
        if data.count <= JWS.maxPayload {
            let jws = try mustSucceed("JWS.sign of the claims") { () throws(TDNSError) in try JWS.sign(data, with: env.kdcSigner) }
            if jws.count <= 65535 - CHUNKRecord.minimumLength {
                let rdata = try mustSucceed("CHUNK RDATA of a JWT manifest") { () throws(TDNSError) in
                    try CHUNKRecord(format: CHUNKRecord.formatJWT, hmac: [], sequence: 0, total: 0, data: jws).rdata()
                }
                try process(env, records: [rdata], id: distributionID(json?["distribution_id"]), issuedAt: json?["iat"]?.int64Value)
            }
        }
    }

    /// Errors the pipeline may refuse a manifest with. Authentication failures of the manifest
    /// itself cannot happen (the harness authenticated it); `.storage`, `.config` and
    /// `.internalFailure` would be bugs or a broken environment.
    private static let allowed: [TDNSError.Code] = [
        .malformed, .tooBig, .policy, .authentication, .unsigned, .stale, .wrongNode, .wrongKeyType, .cryptoFailure, .keyMismatch,
    ]

    private static func process(_ env: Environment, records: [[UInt8]], id: String, issuedAt: Int64?) throws(InvariantViolation) {
        clockValue.withLock { $0 = (issuedAt ?? defaultNow) &+ 5 }
        defer { FuzzState.reset(env.stateDirectory) }
        do {
            let result = try env.receiver.process(distributionID: id, records: records)
            FuzzDebug.note("KeyReceiver.process accepted: \(result.reportJSON)")
        } catch {
            try expectRejection(error, allowed, "KeyReceiver.process")
            if error.code == .authentication {
                try invariant(!error.reason.hasPrefix("manifest HMAC") && !error.reason.hasPrefix("JWT manifest"),
                              "a manifest the harness authenticated was refused: \(error.reason)")
            }
        }
    }

    /// The manifest's distribution ID as given when it is a valid one (``DistributionID``'s
    /// rule, the one every caller meets), else a fixed valid one.
    private static func distributionID(_ value: JSONValue?) -> String {
        guard let text = value?.stringValue, DistributionID(text) != nil else { return "0000" }
        return text
    }
}
