// The JOSE backend (PROTOCOL §8): P-256 keys, ECDH-ES + A256GCM compact JWE, ES256 compact JWS.
//
// Receive path (PROTOCOL §19): every JWE or JWS is first taken apart by our own strict parser
// (size caps, segment count, strict base64url, strict JSON header, algorithm allow-list, exact
// IV/tag/signature lengths, ephemeral key on P-256). Only what passes is handed to cjose
// (JOSE_cjose.swift) for the cryptography.

import TDNSCore
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// MARK: - keys

/// An EC P-256 public key of the JOSE backend (PROTOCOL §8.1): a JWE recipient or a JWS
/// verification key.
public final class JOSEPublicKey: Sendable {
    let x: [UInt8]
    let y: [UInt8]
    let metadata: JWKMetadata
    let cjose: CJOSEKey

    /// Parses a public JWK (rules in PROTOCOL §8.1: `kty` "EC", `crv` "P-256", `x`/`y` of 32
    /// bytes on the curve, no `d`; optional `use` "enc"/"sig", `alg` "ECDH-ES"/"ES256", `kid`).
    ///
    /// - Throws: `.tooBig` over ``CryptoLimits/maxKeyText`` (checked before parsing);
    ///   `.wrongKeyType` for another key type or curve or a private JWK; `.policy` for another
    ///   `use`/`alg`; `.malformed` otherwise.
    public convenience init(jwk: [UInt8]) throws(TDNSError) {
        let value = try ECJWK.parseText(jwk)
        try self.init(ECJWK.parsePublic(value))
    }

    init(_ parsed: ECPublicJWK) throws(TDNSError) {
        x = parsed.x
        y = parsed.y
        metadata = parsed.metadata
        cjose = try CJOSEKey(x: parsed.x, y: parsed.y, d: nil)
    }

    /// The 32-byte big-endian x-coordinate: the HMAC key of a JOSE node's manifests
    /// (PROTOCOL §9.2).
    public var xCoordinate: [UInt8] { x }

    /// The public JWK in go-jose's member order, e.g.
    /// `{"use":"enc","kty":"EC","crv":"P-256","alg":"ECDH-ES","x":"…","y":"…"}`.
    public func jwkJSON() -> String {
        ECJWK.serialize(x: x, y: y, d: nil, metadata: metadata)
    }
}

/// An EC P-256 private key of the JOSE backend: decrypts JWEs and signs JWSs.
public final class JOSEPrivateKey: Sendable {
    let key: P256.KeyAgreement.PrivateKey
    let cjose: CJOSEKey
    /// The matching public key, derived once.
    public let publicKey: JOSEPublicKey

    /// Parses a private JWK: the public rules of ``JOSEPublicKey/init(jwk:)`` plus `d` of 32
    /// bytes that must yield `x` and `y`.
    ///
    /// - Throws: as ``JOSEPublicKey/init(jwk:)``; `.wrongKeyType` when `d` is missing,
    ///   `.malformed` when it has the wrong length, is out of range or does not match.
    public convenience init(jwk: [UInt8]) throws(TDNSError) {
        let value = try ECJWK.parseText(jwk)
        let parsed = try ECJWK.parsePrivate(value)
        try self.init(key: parsed.key, publicJWK: parsed.publicJWK)
    }

    init(key: P256.KeyAgreement.PrivateKey, publicJWK: ECPublicJWK) throws(TDNSError) {
        self.key = key
        self.publicKey = try JOSEPublicKey(publicJWK)
        cjose = try withPrivateScalar(key) { (d) throws(TDNSError) -> CJOSEKey in
            try CJOSEKey(x: publicJWK.x, y: publicJWK.y, d: d)
        }
    }

    /// A fresh key with the metadata of the Go backend's `GenerateKeypair`
    /// (`"use":"enc"`, `"alg":"ECDH-ES"`).
    public static func generate() throws(TDNSError) -> JOSEPrivateKey {
        let key = P256.KeyAgreement.PrivateKey()
        let point = Array(key.publicKey.x963Representation)
        guard point.count == 65 else { throw .internalFailure("unexpected P-256 public key encoding") }
        let x = Array(point[1...32])
        let y = Array(point[33...64])
        let pub = ECPublicJWK(key: key.publicKey, x: x, y: y, metadata: .generated)
        return try JOSEPrivateKey(key: key, publicJWK: pub)
    }

    /// The private JWK, `d` last: `{"use":"enc","kty":"EC","crv":"P-256","alg":"ECDH-ES",
    /// "x":"…","y":"…","d":"…"}`. The caller owns a secret.
    public func jwkJSON() -> String {
        withPrivateScalar(key) { d in
            ECJWK.serialize(x: publicKey.x, y: publicKey.y, d: d, metadata: publicKey.metadata)
        }
    }
}

/// Runs `body` with the 32-byte private scalar; both copies we make are cleared afterwards.
private func withPrivateScalar<R, E: Error>(
    _ key: P256.KeyAgreement.PrivateKey,
    _ body: ([UInt8]) throws(E) -> R
) throws(E) -> R {
    var data = key.rawRepresentation
    defer { data.resetBytes(in: data.startIndex..<data.endIndex) }
    var bytes = Array(data)
    defer { zeroize(&bytes) }
    return try body(bytes)
}

// MARK: - JWE

/// Which `alg`/`enc` values a JWE may carry. Production allows exactly ECDH-ES + A256GCM
/// (PROTOCOL §8.2, §19); the parameter exists so tests can run the same code path with
/// another content encryption (RFC 7518 Appendix C uses A128GCM).
struct JWEPolicy: Sendable {
    var algorithms: [String]
    var encryptions: [String]

    static let production = JWEPolicy(algorithms: ["ECDH-ES"], encryptions: ["A256GCM"])
}

/// Compact JWE with ECDH-ES key agreement and AES-GCM (RFC 7516, RFC 7518 §4.6), as the Go
/// backend writes it (PROTOCOL §8.2).
public enum JWE {
    /// Largest header nesting accepted (the header object and its `epk`, with room for
    /// object-valued metadata members).
    static let maxHeaderDepth = 4
    /// AES-GCM IV and tag lengths (RFC 7518 §5.3).
    static let ivLength = 12
    static let tagLength = 16

    /// Encrypts to `recipient`: protected header `alg` "ECDH-ES", `enc` "A256GCM" and the `epk`
    /// cjose generates; empty encrypted-key segment. Returns the ASCII compact serialization.
    ///
    /// Note: go-jose cannot decrypt an empty plaintext (PROTOCOL §20); this function encrypts
    /// one, so callers that talk to a Go peer must not send it.
    ///
    /// - Throws: `.tooBig` over ``CryptoLimits/maxPlaintext``; `.internalFailure` if cjose fails.
    public static func encrypt(_ plaintext: [UInt8], to recipient: JOSEPublicKey) throws(TDNSError) -> [UInt8] {
        guard plaintext.count <= CryptoLimits.maxPlaintext else {
            throw .tooBig("plaintext exceeds \(CryptoLimits.maxPlaintext) bytes")
        }
        return try CJOSE.jweEncrypt(plaintext, to: recipient.cjose)
    }

    /// Decrypts an ASCII compact JWE.
    ///
    /// Checks, in order, before cjose sees the input: size ≤ ``CryptoLimits/maxJWECompact``
    /// (`.tooBig`); five segments, each strict base64url (`.malformed`); header ≤
    /// ``CryptoLimits/maxJOSEHeader`` bytes (`.tooBig`) and a strict JSON object
    /// (`.malformed`); `alg` "ECDH-ES" and `enc` "A256GCM" (else `.policy`); no `crit`, no
    /// `zip` (`.policy`); empty encrypted key, 12-byte IV, 16-byte tag (`.malformed`); `apu`/
    /// `apv`, if present, strict base64url strings (`.malformed`); `epk` an EC P-256 public JWK
    /// (another type or curve: `.policy`; bad shape or lengths: `.malformed`; point not on
    /// the curve: `.cryptoFailure`); ciphertext ≤ ``CryptoLimits/maxPlaintext`` (`.tooBig`).
    /// Then cjose decrypts; a failed key agreement or tag check is `.cryptoFailure`.
    public static func decrypt(_ compact: [UInt8], with key: JOSEPrivateKey) throws(TDNSError) -> [UInt8] {
        try decrypt(compact, with: key, policy: .production)
    }

    static func decrypt(_ compact: [UInt8], with key: JOSEPrivateKey, policy: JWEPolicy) throws(TDNSError) -> [UInt8] {
        try preparse(compact, policy: policy)
        return try CJOSE.jweDecrypt(compact, with: key.cjose)
    }

    /// The strict pre-parse of ``decrypt(_:with:)``; returns the protected header.
    @discardableResult
    static func preparse(_ compact: [UInt8], policy: JWEPolicy) throws(TDNSError) -> JSONValue {
        guard compact.count <= CryptoLimits.maxJWECompact else {
            throw .tooBig("JWE of \(compact.count) bytes exceeds \(CryptoLimits.maxJWECompact)")
        }
        // maxSplits bounds the work on input made of dots.
        let segments = compact.split(separator: UInt8(ascii: "."), maxSplits: 5, omittingEmptySubsequences: false)
        guard segments.count == 5 else {
            throw .malformed("compact JWE must have 5 segments")
        }
        let header = try JOSEHeader.parse(segments[0], what: "JWE", maxDepth: maxHeaderDepth)
        let encryptedKey = try strictSegment(segments[1], what: "JWE encrypted key")
        let iv = try strictSegment(segments[2], what: "JWE IV")
        let ciphertextLength: Int
        do {
            ciphertextLength = try Base64URL.validatedDecodedLength(segments[3])
        } catch {
            throw .malformed("JWE ciphertext is not strict base64url")
        }
        let tag = try strictSegment(segments[4], what: "JWE tag")

        let alg = try JOSEHeader.requiredString(header, "alg", what: "JWE")
        guard policy.algorithms.contains(where: { $0.utf8.elementsEqual(alg.utf8) }) else {
            throw .policy("JWE alg not allowed")
        }
        let enc = try JOSEHeader.requiredString(header, "enc", what: "JWE")
        guard policy.encryptions.contains(where: { $0.utf8.elementsEqual(enc.utf8) }) else {
            throw .policy("JWE enc not allowed")
        }
        guard !header.hasMember("crit") else { throw .policy("JWE header has \"crit\"") }
        guard !header.hasMember("zip") else { throw .policy("JWE header has \"zip\"") }

        guard encryptedKey.isEmpty else { throw .malformed("ECDH-ES JWE must have an empty encrypted key") }
        guard iv.count == ivLength else { throw .malformed("JWE IV must be \(ivLength) bytes, is \(iv.count)") }
        guard tag.count == tagLength else { throw .malformed("JWE tag must be \(tagLength) bytes, is \(tag.count)") }
        guard ciphertextLength <= CryptoLimits.maxPlaintext else {
            throw .tooBig("JWE ciphertext exceeds \(CryptoLimits.maxPlaintext) bytes")
        }

        for name in ["apu", "apv"] {
            guard let value = header[name] else { continue }
            guard case .string(let text) = value, (try? Base64URL.decode(text)) != nil else {
                throw .malformed("JWE \(name) must be a base64url string")
            }
        }

        try checkEphemeralKey(header["epk"])
        return header
    }

    /// The sender's ephemeral key must be a public EC P-256 JWK on the curve (PROTOCOL §19):
    /// an invalid-curve point never reaches the key agreement.
    private static func checkEphemeralKey(_ epk: JSONValue?) throws(TDNSError) {
        guard let epk else { throw .malformed("JWE header lacks \"epk\"") }
        guard case .object = epk else { throw .malformed("JWE epk is not an object") }
        guard !epk.hasMember("d") else { throw .malformed("JWE epk contains a private key") }
        guard case .string(let kty)? = epk["kty"], case .string(let crv)? = epk["crv"] else {
            throw .malformed("JWE epk lacks kty or crv")
        }
        guard kty.utf8.elementsEqual("EC".utf8), crv.utf8.elementsEqual("P-256".utf8) else {
            throw .policy("JWE epk must be an EC P-256 key")
        }
        do throws(TDNSError) {
            _ = try ECJWK.parsePublic(epk, offCurve: .cryptoFailure)
        } catch where error.code == .cryptoFailure || error.code == .malformed {
            throw error
        } catch {
            // `use`/`alg` values we do not serve, or anything else odd about the key.
            throw .malformed("JWE epk is not an acceptable public JWK")
        }
    }

    private static func strictSegment(_ segment: ArraySlice<UInt8>, what: String) throws(TDNSError) -> [UInt8] {
        do {
            return try Base64URL.decode(segment)
        } catch {
            throw .malformed("\(what) is not strict base64url")
        }
    }
}

// MARK: - JWS

/// Compact JWS with ES256 (RFC 7515, RFC 7518 §3.4), as the Go backend writes it
/// (PROTOCOL §8.3).
public enum JWS {
    /// Largest payload signed or returned: a JWS wraps a whole JWE compact serialization or
    /// HPKE ciphertext (PROTOCOL §6), and the JWE is the larger of the two.
    public static let maxPayload = max(CryptoLimits.maxJWECompact, CryptoLimits.maxHPKECiphertext)
    /// Largest compact JWS accepted: the base64url payload plus room for header and signature.
    public static let maxCompact = (maxPayload / 3 + 1) * 4 + 8192
    /// ES256 signature length: r ‖ s, 32 bytes each (RFC 7518 §3.4).
    static let signatureLength = 64
    static let maxHeaderDepth = 4

    /// Signs `payload` (attached) with the protected header
    /// `{"alg":"ES256","cty":"application/octet-stream","typ":"JWS"}`.
    ///
    /// - Throws: `.tooBig` over ``maxPayload``; `.internalFailure` if cjose fails.
    public static func sign(_ payload: [UInt8], with key: JOSEPrivateKey) throws(TDNSError) -> [UInt8] {
        guard payload.count <= maxPayload else { throw .tooBig("JWS payload exceeds \(maxPayload) bytes") }
        return try CJOSE.jwsSign(payload, with: key.cjose)
    }

    /// Verifies an ASCII compact JWS and returns its payload.
    ///
    /// Checks before cjose sees the input: size ≤ ``maxCompact`` (`.tooBig`); three segments,
    /// each strict base64url (`.malformed`); header ≤ ``CryptoLimits/maxJOSEHeader`` bytes
    /// (`.tooBig`), a strict JSON object (`.malformed`), `alg` exactly "ES256" (else `.policy`),
    /// no `crit` (`.policy`); signature exactly 64 bytes (`.malformed`). A signature that does
    /// not verify is `.cryptoFailure`.
    public static func verify(_ compact: [UInt8], with key: JOSEPublicKey) throws(TDNSError) -> [UInt8] {
        let payload = try preparse(compact)
        try CJOSE.jwsVerify(compact, with: key.cjose)
        return payload
    }

    /// The strict pre-parse of ``verify(_:with:)``; returns the decoded payload.
    static func preparse(_ compact: [UInt8]) throws(TDNSError) -> [UInt8] {
        guard compact.count <= maxCompact else {
            throw .tooBig("JWS of \(compact.count) bytes exceeds \(maxCompact)")
        }
        let segments = compact.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false)
        guard segments.count == 3 else {
            throw .malformed("compact JWS must have 3 segments")
        }
        let header = try JOSEHeader.parse(segments[0], what: "JWS", maxDepth: maxHeaderDepth)
        let payload: [UInt8]
        let signature: [UInt8]
        do {
            payload = try Base64URL.decode(segments[1])
            signature = try Base64URL.decode(segments[2])
        } catch {
            throw .malformed("JWS payload or signature is not strict base64url")
        }
        let alg = try JOSEHeader.requiredString(header, "alg", what: "JWS")
        guard alg.utf8.elementsEqual("ES256".utf8) else { throw .policy("JWS alg must be ES256") }
        guard !header.hasMember("crit") else { throw .policy("JWS header has \"crit\"") }
        // RFC 7797 unencoded payloads need "crit"; a bare "b64" other than true is refused too.
        if let b64 = header["b64"], b64.boolValue != true { throw .policy("JWS header has \"b64\"") }
        guard signature.count == signatureLength else {
            throw .malformed("ES256 signature must be \(signatureLength) bytes, is \(signature.count)")
        }
        guard payload.count <= maxPayload else { throw .tooBig("JWS payload exceeds \(maxPayload) bytes") }
        return payload
    }
}

// MARK: - protected header

enum JOSEHeader {
    /// Decodes and parses a protected header segment: strict base64url of at most
    /// ``CryptoLimits/maxJOSEHeader`` bytes holding a strict JSON object.
    static func parse(_ segment: ArraySlice<UInt8>, what: String, maxDepth: Int) throws(TDNSError) -> JSONValue {
        // Base64url length of maxJOSEHeader bytes, so oversize headers are refused undecoded.
        let maxEncoded = (CryptoLimits.maxJOSEHeader * 4 + 2) / 3
        guard segment.count <= maxEncoded else {
            throw .tooBig("\(what) header exceeds \(CryptoLimits.maxJOSEHeader) bytes")
        }
        let bytes: [UInt8]
        do {
            bytes = try Base64URL.decode(segment)
        } catch {
            throw .malformed("\(what) header is not strict base64url")
        }
        let header: JSONValue
        do throws(TDNSError) {
            header = try JSONValue.parse(bytes, maxDepth: maxDepth, maxSize: CryptoLimits.maxJOSEHeader)
        } catch where error.code == .tooBig {
            throw error
        } catch {
            throw .malformed("\(what) header is not strict JSON")
        }
        guard case .object = header else { throw .malformed("\(what) header is not a JSON object") }
        return header
    }

    static func requiredString(_ header: JSONValue, _ name: String, what: String) throws(TDNSError) -> String {
        guard let value = header[name] else { throw .malformed("\(what) header lacks \"\(name)\"") }
        guard case .string(let s) = value else { throw .malformed("\(what) header \"\(name)\" is not a string") }
        return s
    }
}
