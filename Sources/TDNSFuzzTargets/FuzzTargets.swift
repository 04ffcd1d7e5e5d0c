#if canImport(Glibc)
import Glibc
#endif
import TDNSCore

// libFuzzer harness bodies (STYLE "a fuzz harness per parser, its crash corpus replayed by a
// unit test"). The same code runs in three places: the instrumented `tdns-fuzz` binary
// (`make fuzz`), the plain `tdns-fuzz TARGET FILE…` replayer, and TDNSFuzzTests, which replays
// Tests/Fuzz/corpus and Tests/Fuzz/crashes on every `swift test`.
//
// Every harness does two things with its input:
// 1. Hands it to the library's parser and requires the parser to either succeed or throw one
//    of the error codes it documents (a trap anywhere is a crash libFuzzer reports by itself).
// 2. Where the API allows, re-serializes what was parsed and parses that again: the result
//    must be equal, and serializing it again must give the same bytes. A broken invariant is an
//    `InvariantViolation`; `run(_:)` turns it into `abort()` — here, never in library code.

/// One fuzzed input format.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A whole DNS message (`DNSMessage(wireEncoded:)`), with SIG(0), EDNS, the KDC/KRS
    /// recognisers and the presentation form of every record.
    case dnsMessage = "dns-message"
    /// CHUNK RDATA (`CHUNKRecord(rdata:)`) and CHUNK presentation text.
    case chunkRData = "chunk-rdata"
    /// One OPT pseudo-RR in wire form (`EDNS(optRecord:)`) and its options, the CHUNK option
    /// (`ChunkOption(optionData:)`) in particular.
    case ednsOptions = "edns-options"
    /// The JSON text of a manifest, as Format 1 (HMAC) and as Format 2 (JWT claims) through
    /// the public `KeyReceiver.process` pipeline; plus the strict JSON parser's round trip.
    case jsonManifest = "json-manifest"
    /// A compact JWS (`JWS.verify`).
    case jws = "jws"
    /// A compact JWE (`JWE.decrypt`).
    case jwe = "jwe"
    /// What the key-file writer consumes: PKCS#8 PEM or DER → `DNSSECPrivateKey` →
    /// `bindPrivateKeyFile`, and DNSKEY/KEY presentation lines.
    case keyFile = "key-file"
    /// A DNS message to the KDC, normally a CHUNK query: `TDNSMessages.parseChunkQueryName`
    /// and `KDCService.handle` over UDP and TCP (KDCHarnesses.swift).
    case kdcChunkQuery = "kdc-chunk-query"
    /// A DNS message to the KDC, normally an enrollment UPDATE: `parseEnrollmentUpdate` and
    /// `KDCService.handle`.
    case kdcEnrollUpdate = "kdc-enroll-update"
    /// A confirmation NOTIFY to the KDC through `KDCService.handle`, and the same bytes as the
    /// status-report JSON of a SIG(0)-signed confirmation.
    case kdcConfirmation = "kdc-confirmation"

    /// Runs the harness on one input; on a broken invariant prints it and calls `abort()`, so
    /// that libFuzzer records the input as a crash.
    public func run(_ data: [UInt8]) {
        if let message = violation(data) {
            FuzzOutput.standardError("tdns-fuzz \(rawValue): INVARIANT BROKEN: \(message)\n")
            abort()
        }
    }

    /// Runs the harness on one input and returns the broken invariant, or nil. (A trap inside
    /// the library still crashes the process, as it would in a host server.)
    public func violation(_ data: [UInt8]) -> String? {
        do {
            switch self {
            case .dnsMessage: try DNSMessageHarness.run(data)
            case .chunkRData: try CHUNKHarness.run(data)
            case .ednsOptions: try EDNSHarness.run(data)
            case .jsonManifest: try ManifestHarness.run(data)
            case .jws: try JWSHarness.run(data)
            case .jwe: try JWEHarness.run(data)
            case .keyFile: try KeyFileHarness.run(data)
            case .kdcChunkQuery: try KDCChunkQueryHarness.run(data)
            case .kdcEnrollUpdate: try KDCEnrollHarness.run(data)
            case .kdcConfirmation: try KDCConfirmationHarness.run(data)
            }
            return nil
        } catch {
            return error.message
        }
    }
}

// MARK: - invariant helpers

/// A broken invariant: a bug in the library (or in the harness).
struct InvariantViolation: Error {
    let message: String
}

/// Fails the harness unless `condition` holds.
func invariant(_ condition: Bool, _ message: @autoclosure () -> String) throws(InvariantViolation) {
    if !condition { throw InvariantViolation(message: message()) }
}

/// A rejection must carry one of the codes the API documents for it (STYLE rule 12): anything
/// else — `.internalFailure` from a parser, say — is a finding.
func expectRejection(_ error: TDNSError, _ allowed: [TDNSError.Code], _ what: String) throws(InvariantViolation) {
    FuzzDebug.note("\(what): \(error.code): \(error.reason)")
    guard allowed.contains(error.code) else {
        throw InvariantViolation(message: "\(what) threw \(error.code) (allowed: \(allowed)): \(error.reason)")
    }
}

/// For `do` blocks that mix library calls and invariant checks: an `InvariantViolation` passes
/// through, a `TDNSError` must carry an allowed code, anything else is a violation.
func rejection(_ error: any Error, _ allowed: [TDNSError.Code], _ what: String) throws(InvariantViolation) {
    if let violation = error as? InvariantViolation { throw violation }
    guard let error = error as? TDNSError else {
        throw InvariantViolation(message: "\(what) threw a foreign error: \(error)")
    }
    try expectRejection(error, allowed, what)
}

/// Runs `body`; a thrown `TDNSError` is a violation (the step cannot fail on this input).
func mustSucceed<T>(_ what: String, _ body: () throws(TDNSError) -> T) throws(InvariantViolation) -> T {
    do {
        return try body()
    } catch {
        throw InvariantViolation(message: "\(what) failed: \(error.code): \(error.reason)")
    }
}

/// Short hex for messages (inputs can be large).
func hexPrefix(_ bytes: some Collection<UInt8>, _ limit: Int = 48) -> String {
    Hex.encode(bytes.prefix(limit)) + (bytes.count > limit ? "…(\(bytes.count) bytes)" : "")
}

/// JSON round trip (RFC 8259 text → value → compact text → value): the reparsed value is equal
/// and the compact text is a fixed point, with and without HTML escaping.
func jsonRoundTrip(_ value: JSONValue, maxDepth: Int, what: String) throws(InvariantViolation) {
    for escapeHTML in [false, true] {
        let text = value.serialized(escapeHTML: escapeHTML)
        let again = try mustSucceed("\(what): reparse of serialized JSON \(hexPrefix(text))") { () throws(TDNSError) in
            try JSONValue.parse(text, maxDepth: maxDepth, maxSize: max(JSONValue.defaultMaxSize, text.count))
        }
        try invariant(again == value, "\(what): JSON changed in a serialize/parse round trip (escapeHTML \(escapeHTML))")
        try invariant(again.serialized(escapeHTML: escapeHTML) == text, "\(what): JSON serialization is not a fixed point")
    }
}

/// Strict base64url: whatever decodes must re-encode to the same text (one text per byte string).
func base64URLCanonical(_ segment: some Collection<UInt8>, what: String) throws(InvariantViolation) {
    guard let decoded = try? Base64URL.decode(segment) else { return }
    try invariant(Base64URL.encodeBytes(decoded).elementsEqual(segment), "\(what): base64url segment decodes but is not canonical")
}

/// Strict padded base64, same property.
func base64Canonical(_ text: some Collection<UInt8>, what: String) throws(InvariantViolation) {
    guard let decoded = try? Base64.decode(text) else { return }
    try invariant(Base64.encodeBytes(decoded).elementsEqual(text), "\(what): base64 text decodes but is not canonical")
}
