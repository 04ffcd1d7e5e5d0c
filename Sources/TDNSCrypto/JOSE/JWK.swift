// Strict EC P-256 JSON Web Keys (RFC 7517 §4, RFC 7518 §6.2) as the tdns JOSE backend writes
// them (PROTOCOL §8.1), validated with swift-crypto before any C library sees the key.

import TDNSCore
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The optional JWK members a key keeps so that it serializes the way go-jose re-marshals it.
struct JWKMetadata: Sendable, Equatable {
    var use: String?
    var alg: String?
    var kid: String?

    /// What the Go backend's `GenerateKeypair` sets (PROTOCOL §8.1).
    static let generated = JWKMetadata(use: "enc", alg: "ECDH-ES", kid: nil)
}

/// A validated EC P-256 public key: coordinates exactly 32 bytes, point on the curve.
struct ECPublicJWK: Sendable {
    let key: P256.KeyAgreement.PublicKey
    let x: [UInt8]
    let y: [UInt8]
    let metadata: JWKMetadata
}

/// EC P-256 JWK parsing and serialization.
///
/// Parser rules (PROTOCOL §8.1, §19): an object with `kty` "EC" and `crv` "P-256"; `x` and `y`
/// strict base64url of exactly 32 bytes (RFC 7518 §6.2.1.2: the full coordinate length, zero
/// left-padded); `d` (private keys only) exactly 32 bytes (§6.2.2.1) whose public point is
/// `(x, y)`; optional `use` ("enc" or "sig"), `alg` ("ECDH-ES" or "ES256"), `kid` (string),
/// `key_ops` (array of strings) and `ext` (boolean, as WebCrypto exports it); any other member
/// is refused, as is a duplicate member name.
///
/// Codes: `.tooBig` over ``CryptoLimits/maxKeyText``; `.wrongKeyType` for another key type or
/// curve, and for a public key where a private one is needed or the other way round; `.policy`
/// for a `use` or `alg` we do not serve; `.malformed` for everything else.
enum ECJWK {
    static let coordinateSize = 32
    /// JWK nesting: the key object plus `key_ops`.
    static let maxDepth = 2

    private static let allowedMembers: Set<[UInt8]> = Set(
        ["kty", "crv", "x", "y", "d", "use", "alg", "kid", "key_ops", "ext"].map { Array($0.utf8) }
    )

    /// Size check and strict JSON parse of key text; the result is a JSON object.
    static func parseText(_ text: [UInt8]) throws(TDNSError) -> JSONValue {
        guard text.count <= CryptoLimits.maxKeyText else {
            throw .tooBig("JWK text of \(text.count) bytes exceeds \(CryptoLimits.maxKeyText)")
        }
        let value = try JSONValue.parse(text, maxDepth: maxDepth, maxSize: CryptoLimits.maxKeyText)
        guard case .object = value else { throw .malformed("JWK is not a JSON object") }
        return value
    }

    /// Checks `kty`/`crv`, the member set and the optional members.
    static func checkShape(_ jwk: JSONValue) throws(TDNSError) -> JWKMetadata {
        guard case .object(let members) = jwk else { throw .malformed("JWK is not a JSON object") }
        // Key type and curve first, so that every key of another kind (RSA, oct, OKP, P-384)
        // gets the same code whatever other members it has.
        let kty = try requiredString(jwk, "kty")
        guard kty.utf8.elementsEqual("EC".utf8) else { throw TDNSError(.wrongKeyType, "JWK kty must be \"EC\"") }
        let crv = try requiredString(jwk, "crv")
        guard crv.utf8.elementsEqual("P-256".utf8) else { throw TDNSError(.wrongKeyType, "JWK crv must be \"P-256\"") }
        for (name, _) in members where !allowedMembers.contains(Array(name.utf8)) {
            throw .malformed("JWK has an unsupported member")
        }

        let use = try optionalString(jwk, "use")
        if let use, !(use.utf8.elementsEqual("enc".utf8) || use.utf8.elementsEqual("sig".utf8)) {
            throw .policy("JWK use must be \"enc\" or \"sig\"")
        }
        let alg = try optionalString(jwk, "alg")
        if let alg, !(alg.utf8.elementsEqual("ECDH-ES".utf8) || alg.utf8.elementsEqual("ES256".utf8)) {
            throw .policy("JWK alg must be \"ECDH-ES\" or \"ES256\"")
        }
        let kid = try optionalString(jwk, "kid")
        if let ops = jwk["key_ops"] {
            guard case .array(let list) = ops, list.allSatisfy({ $0.stringValue != nil }) else {
                throw .malformed("JWK key_ops must be an array of strings")
            }
        }
        if let ext = jwk["ext"], ext.boolValue == nil {
            throw .malformed("JWK ext must be a boolean")
        }
        return JWKMetadata(use: use, alg: alg, kid: kid)
    }

    /// Parses a public JWK. `offCurve` is the code for coordinates that are not a point of
    /// P-256: `.malformed` for key text, `.cryptoFailure` for a JWE's ephemeral key.
    static func parsePublic(_ jwk: JSONValue, offCurve: TDNSError.Code = .malformed) throws(TDNSError) -> ECPublicJWK {
        let metadata = try checkShape(jwk)
        guard !jwk.hasMember("d") else {
            throw TDNSError(.wrongKeyType, "public JWK must not contain \"d\"")
        }
        return try publicPart(jwk, metadata: metadata, offCurve: offCurve)
    }

    /// Parses a private JWK: the public part as ``parsePublic(_:offCurve:)``, `d` of 32 bytes
    /// that yields the same point.
    static func parsePrivate(_ jwk: JSONValue) throws(TDNSError) -> (key: P256.KeyAgreement.PrivateKey, publicJWK: ECPublicJWK) {
        let metadata = try checkShape(jwk)
        guard let dValue = jwk["d"] else {
            throw TDNSError(.wrongKeyType, "private JWK must contain \"d\"")
        }
        let pub = try publicPart(jwk, metadata: metadata, offCurve: .malformed)
        guard case .string(let dText) = dValue else { throw .malformed("JWK d must be a string") }
        var d = try decodeFixed(dText, name: "d")
        defer { zeroize(&d) }
        let key: P256.KeyAgreement.PrivateKey
        do {
            key = try P256.KeyAgreement.PrivateKey(rawRepresentation: d)
        } catch {
            throw .malformed("JWK d is not a valid P-256 private scalar")
        }
        let derived = Array(key.publicKey.x963Representation)
        guard derived.count == 65, derived[1...32].elementsEqual(pub.x), derived[33...64].elementsEqual(pub.y) else {
            throw .malformed("JWK d does not belong to x and y")
        }
        return (key, pub)
    }

    private static func publicPart(_ jwk: JSONValue, metadata: JWKMetadata, offCurve: TDNSError.Code) throws(TDNSError) -> ECPublicJWK {
        let x = try decodeFixed(try requiredString(jwk, "x"), name: "x")
        let y = try decodeFixed(try requiredString(jwk, "y"), name: "y")
        let key = try publicKey(x: x, y: y, offCurve: offCurve)
        return ECPublicJWK(key: key, x: x, y: y, metadata: metadata)
    }

    /// The swift-crypto key for `04 ‖ x ‖ y`; BoringSSL refuses points not on the curve.
    static func publicKey(x: [UInt8], y: [UInt8], offCurve: TDNSError.Code) throws(TDNSError) -> P256.KeyAgreement.PublicKey {
        do {
            return try P256.KeyAgreement.PublicKey(x963Representation: [0x04] + x + y)
        } catch {
            throw TDNSError(offCurve, "EC point is not on P-256")
        }
    }

    private static func requiredString(_ jwk: JSONValue, _ name: String) throws(TDNSError) -> String {
        guard let v = jwk[name] else { throw .malformed("JWK lacks \"\(name)\"") }
        guard case .string(let s) = v else { throw .malformed("JWK \"\(name)\" must be a string") }
        return s
    }

    private static func optionalString(_ jwk: JSONValue, _ name: String) throws(TDNSError) -> String? {
        guard let v = jwk[name] else { return nil }
        guard case .string(let s) = v else { throw .malformed("JWK \"\(name)\" must be a string") }
        return s
    }

    private static func decodeFixed(_ text: String, name: String) throws(TDNSError) -> [UInt8] {
        var bytes: [UInt8]
        do {
            bytes = try Base64URL.decode(text)
        } catch {
            throw .malformed("JWK \"\(name)\" is not base64url")
        }
        guard bytes.count == coordinateSize else {
            zeroize(&bytes)
            throw .malformed("JWK \"\(name)\" must decode to \(coordinateSize) bytes")
        }
        return bytes
    }

    /// Serializes in go-jose's member order (`use, kty, kid, crv, alg, x, y, d`; absent
    /// optional members omitted) with Go's HTML escaping, so a Go-generated key round-trips
    /// byte for byte. With `d`, the result is secret; intermediate buffers are zeroized.
    static func serialize(x: [UInt8], y: [UInt8], d: [UInt8]?, metadata: JWKMetadata) -> String {
        var members: [(String, JSONValue)] = []
        if let use = metadata.use { members.append(("use", .string(use))) }
        members.append(("kty", .string("EC")))
        if let kid = metadata.kid { members.append(("kid", .string(kid))) }
        members.append(("crv", .string("P-256")))
        if let alg = metadata.alg { members.append(("alg", .string(alg))) }
        members.append(("x", .string(Base64URL.encode(x))))
        members.append(("y", .string(Base64URL.encode(y))))
        var out = JSONValue.object(members).serialized(escapeHTML: true)
        if let d {
            // Appended by hand so the secret passes through buffers we can clear.
            guard out.last == UInt8(ascii: "}") else { return "" }
            out.removeLast()
            var encoded = Base64URL.encodeBytes(d)
            // Reserve first: a reallocation would leave a copy of the secret in freed memory.
            out.reserveCapacity(out.count + encoded.count + 16)
            out.append(contentsOf: Array(",\"d\":\"".utf8))
            out.append(contentsOf: encoded)
            out.append(contentsOf: Array("\"}".utf8))
            zeroize(&encoded)
        }
        defer { zeroize(&out) }
        return String(decoding: out, as: UTF8.self)
    }
}
