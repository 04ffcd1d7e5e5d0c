import TDNSCore
import TDNSCrypto

// Harnesses for the compact JOSE serializations. The strict pre-parse runs inside
// `JWS.verify` / `JWE.decrypt` before cjose sees the input, so the public calls reach it.
// Documented errors: `.malformed`, `.tooBig`, `.policy`, `.cryptoFailure`.

private let joseErrors: [TDNSError.Code] = [.malformed, .tooBig, .policy, .cryptoFailure]

/// Checks shared by both: every segment that is strict base64url is canonical, and a header
/// that is a JSON text round-trips.
private func checkSegments(_ data: [UInt8], what: String) throws(InvariantViolation) {
    let segments = data.split(separator: UInt8(ascii: "."), maxSplits: 5, omittingEmptySubsequences: false)
    for (i, segment) in segments.enumerated() where segment.count <= 4 * CryptoLimits.maxJOSEHeader {
        try base64URLCanonical(segment, what: "\(what) segment \(i)")
    }
    if let first = segments.first, first.count <= 2 * CryptoLimits.maxJOSEHeader,
        let header = try? Base64URL.decode(first),
        let json = try? JSONValue.parse(header, maxDepth: 4, maxSize: CryptoLimits.maxJOSEHeader)
    {
        try jsonRoundTrip(json, maxDepth: 4, what: "\(what) header")
    }
}

enum JWSHarness {
    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        let keys = try FuzzKeys.get()
        try checkSegments(data, what: "JWS")
        let payload: [UInt8]
        do {
            payload = try JWS.verify(data, with: keys.kdcSigner.publicKey)
        } catch {
            try expectRejection(error, joseErrors, "JWS.verify")
            return
        }
        FuzzDebug.note("JWS verified, payload \(payload.count) bytes")
        // What verified is a three-segment JWS whose middle segment is the payload.
        let segments = data.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        try invariant(segments.count == 3, "a JWS with \(segments.count) segments verified")
        try invariant((try? Base64URL.decode(segments[1])) == payload, "verified payload is not the payload segment")
        // Another key must not verify it.
        do {
            _ = try JWS.verify(data, with: keys.joseRecipient.publicKey)
            throw InvariantViolation(message: "JWS verified with a key that did not sign it")
        } catch let error as TDNSError {
            try invariant(error.code == .cryptoFailure, "JWS.verify with the wrong key threw \(error.code), not cryptoFailure")
        } catch let v as InvariantViolation {
            throw v
        } catch {}
        // Round trip: sign the payload again, verify, same payload.
        let resigned = try mustSucceed("JWS.sign of a verified payload") { () throws(TDNSError) in
            try JWS.sign(payload, with: keys.kdcSigner)
        }
        let again = try mustSucceed("JWS.verify of JWS.sign output") { () throws(TDNSError) in
            try JWS.verify(resigned, with: keys.kdcSigner.publicKey)
        }
        try invariant(again == payload, "payload changed in a sign/verify round trip")
    }
}

enum JWEHarness {
    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        let keys = try FuzzKeys.get()
        try checkSegments(data, what: "JWE")
        var plaintext: [UInt8]
        do {
            plaintext = try JWE.decrypt(data, with: keys.joseRecipient)
        } catch {
            try expectRejection(error, joseErrors, "JWE.decrypt")
            return
        }
        defer { zeroize(&plaintext) }
        FuzzDebug.note("JWE decrypted, plaintext \(plaintext.count) bytes")
        let segments = data.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        try invariant(segments.count == 5, "a JWE with \(segments.count) segments decrypted")
        try invariant(segments[1].isEmpty, "an ECDH-ES JWE with an encrypted key decrypted")
        try invariant((try? Base64URL.decode(segments[3]))?.count == plaintext.count, "GCM plaintext length differs from the ciphertext length")
        // Another key must not decrypt it.
        do {
            _ = try JWE.decrypt(data, with: keys.kdcSigner)
            throw InvariantViolation(message: "JWE decrypted with a key it was not made for")
        } catch let error as TDNSError {
            try invariant(error.code == .cryptoFailure, "JWE.decrypt with the wrong key threw \(error.code), not cryptoFailure")
        } catch let v as InvariantViolation {
            throw v
        } catch {}
        // Round trip: encrypt the plaintext again, decrypt, same plaintext.
        let pt = plaintext
        let reencrypted = try mustSucceed("JWE.encrypt of a decrypted plaintext") { () throws(TDNSError) in
            try JWE.encrypt(pt, to: keys.joseRecipient.publicKey)
        }
        var again = try mustSucceed("JWE.decrypt of JWE.encrypt output") { () throws(TDNSError) in
            try JWE.decrypt(reencrypted, with: keys.joseRecipient)
        }
        defer { zeroize(&again) }
        try invariant(again == plaintext, "plaintext changed in an encrypt/decrypt round trip")
    }
}
