import TDNSCore
import Crypto
import Foundation
import Testing
import TDNSTestSupport

@testable import TDNSCrypto

// Vectors: Tests/Vectors/{jose,jws,manifest}.json, made by the real Go code (tdns-transport
// crypto backends on go-jose v4; provenance inside each file). RFC 7518 Appendix C values are
// copied from the RFC.

// MARK: - helpers

enum Vectors {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors")

    static func load(_ name: String) -> JSONValue {
        let path = directory.appendingPathComponent(name).path
        guard let data = FileManager.default.contents(atPath: path),
              let value = try? JSONValue.parse(Array(data), maxDepth: 16, maxSize: 1 << 24)
        else {
            Issue.record("cannot load vector file \(path)")
            return .null
        }
        return value
    }

    static let jose = load("jose.json")
    static let jws = load("jws.json")
    static let manifest = load("manifest.json")

    static func plaintext(id: String) -> [UInt8]? {
        for p in jose["plaintexts"]?.arrayValue ?? [] where p["id"]?.stringValue == id {
            return p["b64"]?.stringValue.flatMap { try? Base64.decode($0) }
        }
        return nil
    }

    static var recipient1: JSONValue { jose["keys"]?[0] ?? .null }
}

func u8(_ s: String) -> [UInt8] { Array(s.utf8) }

func b64u(_ s: String) -> String { Base64URL.encode(Array(s.utf8)) }
func b64u(_ b: [UInt8]) -> String { Base64URL.encode(b) }

/// A valid public epk from a Go vector, so that a JWE's other defects are what gets tested.
let goEpk = #"{"kty":"EC","crv":"P-256","x":"Ley6tW2H9WLZ3VK9VbCe9tFLiOZhbPlzFwvuV6TEX0w","y":"GHkWvDVAmp-ZjDN6IOHmYGddDzKPcbwiu9mJoFhTs1U"}"#

/// Builds a compact JWE from parts (the content is not decryptable: these inputs must be
/// refused before decryption).
func makeJWE(
    header: String = #"{"alg":"ECDH-ES","enc":"A256GCM","epk":\#(goEpk)}"#,
    encryptedKey: [UInt8] = [],
    iv: [UInt8] = Array(repeating: 7, count: 12),
    ciphertext: [UInt8] = Array(repeating: 9, count: 20),
    tag: [UInt8] = Array(repeating: 5, count: 16)
) -> [UInt8] {
    u8([b64u(header), b64u(encryptedKey), b64u(iv), b64u(ciphertext), b64u(tag)].joined(separator: "."))
}

func recipient1Key() throws -> JOSEPrivateKey {
    try JOSEPrivateKey(jwk: u8(Vectors.recipient1["private_jwk"]?.stringValue ?? ""))
}

// MARK: - Go vectors

@Suite("JOSE Go vectors")
struct JOSEGoVectorTests {
    static let vectorIDs: [String] = (Vectors.jose["vectors"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }

    @Test("every jose.json vector decrypts to its plaintext", arguments: vectorIDs)
    func decryptsGoVector(id: String) throws {
        let vectors = Vectors.jose["vectors"]?.arrayValue ?? []
        let vector = try #require(vectors.first { $0["id"]?.stringValue == id })
        let compact = u8(try #require(vector["jwe_compact"]?.stringValue))
        // The transport form is standard base64 of the compact JWE's ASCII.
        let transport = try Base64.decode(try #require(vector["ciphertext_b64"]?.stringValue))
        #expect(transport == compact)

        let plaintextID = try #require(vector["plaintext"]?.stringValue)
        let expected = try #require(Vectors.plaintext(id: plaintextID))
        let key = try recipient1Key()
        let plaintext = try JWE.decrypt(compact, with: key)
        #expect(plaintext == expected)
        // Also the empty plaintext, which go-jose itself cannot decrypt (see the vector's note).
        if id == "jose-recipient1-empty" { #expect(plaintext.isEmpty) }
        let entry = (Vectors.jose["plaintexts"]?.arrayValue ?? []).first { $0["id"] == vector["plaintext"] }
        #expect(Hex.encode(SHA256.hash(data: plaintext)) == entry?["sha256_hex"]?.stringValue)
    }

    @Test("the tampered-tag vector is rejected as a crypto failure")
    func negativeVector() throws {
        let negatives = try #require(Vectors.jose["negative"]?.arrayValue)
        #expect(!negatives.isEmpty)
        let key = try recipient1Key()
        for vector in negatives {
            let compact = u8(try #require(vector["jwe_compact"]?.stringValue))
            expectCode(.cryptoFailure) { _ = try JWE.decrypt(compact, with: key) }
        }
    }

    @Test("JWKs serialize exactly as the Go backend writes them")
    func keySerialization() throws {
        var pairs: [(String, String)] = []
        if let example = Vectors.jose["key_serialization"]?["example_from_GenerateKeypair"] {
            pairs.append((try #require(example["private_jwk"]?.stringValue), try #require(example["public_jwk"]?.stringValue)))
        }
        for key in Vectors.jose["keys"]?.arrayValue ?? [] {
            pairs.append((try #require(key["private_jwk"]?.stringValue), try #require(key["public_jwk"]?.stringValue)))
        }
        if let signer = Vectors.jws["signers"]?["jose_signer"] {
            pairs.append((try #require(signer["private_jwk"]?.stringValue), try #require(signer["public_jwk"]?.stringValue)))
        }
        #expect(pairs.count == 3)
        for (privateText, publicText) in pairs {
            let priv = try JOSEPrivateKey(jwk: u8(privateText))
            let pub = try JOSEPublicKey(jwk: u8(publicText))
            #expect(priv.jwkJSON() == privateText)
            #expect(priv.publicKey.jwkJSON() == publicText)
            #expect(pub.jwkJSON() == publicText)
            #expect(pub.xCoordinate == priv.publicKey.xCoordinate)
        }
        // Raw coordinates of recipient1 as the vector states them.
        let r1 = Vectors.recipient1
        let pub = try JOSEPublicKey(jwk: u8(try #require(r1["public_jwk"]?.stringValue)))
        #expect(Hex.encode(pub.xCoordinate) == r1["x_hex"]?.stringValue)
    }

    @Test("jws.json vectors: the good one verifies, tampered, other key and flipped byte fail")
    func jwsVectors() throws {
        let signer = try #require(Vectors.jws["signers"]?["jose_signer"])
        let pub = try JOSEPublicKey(jwk: u8(try #require(signer["public_jwk"]?.stringValue)))
        let other = try JOSEPrivateKey.generate().publicKey
        let vectors = try #require(Vectors.jws["vectors"]?.arrayValue)
        #expect(vectors.count == 2)
        for vector in vectors {
            let compact = u8(try #require(vector["jws_compact"]?.stringValue))
            let payload = try Base64.decode(try #require(vector["payload_b64"]?.stringValue))
            if vector["must_fail"]?.boolValue == true {
                expectCode(.cryptoFailure) { _ = try JWS.verify(compact, with: pub) }
                continue
            }
            #expect(try JWS.verify(compact, with: pub) == payload)
            expectCode(.cryptoFailure, "other key") { _ = try JWS.verify(compact, with: other) }

            // Flip one byte of the signature (re-encoded, so the base64url stays canonical).
            let original = String(decoding: compact, as: UTF8.self).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            var parts = original
            var sig = try Base64URL.decode(parts[2])
            sig[10] ^= 0x01
            parts[2] = Base64URL.encode(sig)
            expectCode(.cryptoFailure, "flipped signature") { _ = try JWS.verify(u8(parts.joined(separator: ".")), with: pub) }
            // And one byte of the payload.
            var body = try Base64URL.decode(parts[1])
            body[0] ^= 0x20
            parts[1] = Base64URL.encode(body)
            parts[2] = original[2]
            expectCode(.cryptoFailure, "flipped payload") { _ = try JWS.verify(u8(parts.joined(separator: ".")), with: pub) }
        }
    }

    @Test("the JWT manifest's JWS verifies with its verify_key_jwk")
    func jwtManifest() throws {
        let manifests = try #require(Vectors.manifest["jwt_manifest"]?["manifests"]?.arrayValue)
        #expect(!manifests.isEmpty)
        for m in manifests {
            let key = try JOSEPublicKey(jwk: u8(try #require(m["verify_key_jwk"]?.stringValue)))
            let compact = u8(try #require(m["jws_compact"]?.stringValue))
            let claims = try JWS.verify(compact, with: key)
            #expect(claims == u8(try #require(m["claims_json_signed"]?.stringValue)))
            // The claims are strict JSON for our parser too.
            let parsed = try JSONValue.parse(claims)
            #expect(parsed["iat"]?.int64Value == 1_767_225_600)
        }
    }
}

// MARK: - our own round trips

@Suite("JOSE round trips")
struct JOSERoundTripTests {
    @Test("encrypt → decrypt", arguments: [0, 1, 100, 65536])
    func roundTrip(size: Int) throws {
        let key = try JOSEPrivateKey.generate()
        let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let compact = try JWE.encrypt(plaintext, to: key.publicKey)
        #expect(try JWE.decrypt(compact, with: key) == plaintext)
        // A different key cannot decrypt it.
        let other = try JOSEPrivateKey.generate()
        expectCode(.cryptoFailure) { _ = try JWE.decrypt(compact, with: other) }
    }

    @Test("cjose's protected header holds exactly alg, enc and a public epk")
    func headerMembers() throws {
        let key = try JOSEPrivateKey.generate()
        let compact = try JWE.encrypt(u8("hello"), to: key.publicKey)
        let segments = compact.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        #expect(segments.count == 5)
        #expect(segments[1].isEmpty)
        let header = try JSONValue.parse(try Base64URL.decode(segments[0]))
        #expect(header.keys?.sorted() == ["alg", "enc", "epk"])
        #expect(header["alg"] == .string("ECDH-ES"))
        #expect(header["enc"] == .string("A256GCM"))
        #expect(header["epk"]?.keys?.sorted() == ["crv", "kty", "x", "y"])
        #expect(try Base64URL.decode(segments[2]).count == 12)
        #expect(try Base64URL.decode(segments[4]).count == 16)
    }

    @Test("sign → verify, with the go-jose header segment")
    func signVerify() throws {
        let key = try JOSEPrivateKey.generate()
        for payload in [u8(""), u8("hello, tdns"), Array(repeating: 0xA5, count: 100_000)] {
            let compact = try JWS.sign(payload, with: key)
            let first = compact.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)[0]
            #expect(String(decoding: first, as: UTF8.self)
                    == "eyJhbGciOiJFUzI1NiIsImN0eSI6ImFwcGxpY2F0aW9uL29jdGV0LXN0cmVhbSIsInR5cCI6IkpXUyJ9")
            #expect(try JWS.verify(compact, with: key.publicKey) == payload)
            expectCode(.cryptoFailure) { _ = try JWS.verify(compact, with: try JOSEPrivateKey.generate().publicKey) }
        }
    }

    @Test("generated keys: Go metadata, parse back to the same key")
    func generatedKey() throws {
        let key = try JOSEPrivateKey.generate()
        let privateText = key.jwkJSON()
        let publicText = key.publicKey.jwkJSON()
        #expect(publicText.hasPrefix(#"{"use":"enc","kty":"EC","crv":"P-256","alg":"ECDH-ES","x":""#))
        #expect(privateText.hasPrefix(String(publicText.dropLast())))
        #expect(privateText.contains(#","d":""#))
        let again = try JOSEPrivateKey(jwk: u8(privateText))
        #expect(again.jwkJSON() == privateText)
        #expect(key.publicKey.xCoordinate.count == 32)
        let x = try JSONValue.parse(u8(publicText))["x"]?.stringValue
        #expect(try Base64URL.decode(x ?? "") == key.publicKey.xCoordinate)
        // A JWS from one is verified by the other.
        #expect(try JWS.verify(try JWS.sign(u8("x"), with: again), with: key.publicKey) == u8("x"))
    }

    @Test("one key used from many tasks at once")
    func concurrentUse() async throws {
        let key = try JOSEPrivateKey.generate()
        let messages = (0..<16).map { i in u8("message \(i)") }
        let compacts = try messages.map { try JWE.encrypt($0, to: key.publicKey) }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for round in 0..<4 {
                for (i, compact) in compacts.enumerated() {
                    group.addTask {
                        let plaintext = try JWE.decrypt(compact, with: key)
                        let signature = try JWS.sign(plaintext, with: key)
                        _ = try JWE.encrypt(plaintext, to: key.publicKey)
                        return try JWS.verify(signature, with: key.publicKey) == messages[i] && plaintext == messages[i] && round >= 0
                    }
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}

// MARK: - RFC 7518 Appendix C

@Suite("RFC 7518 Appendix C")
struct RFC7518AppendixCTests {
    // RFC 7518 Appendix C: Alice's ephemeral key (public part), Bob's key, apu "Alice",
    // apv "Bob", enc A128GCM, derived key VqqN6vgjbSBcIijNcacQGg.
    static let bobJWK = #"{"kty":"EC","crv":"P-256","x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ","y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck","d":"VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"}"#
    static let header = #"{"alg":"ECDH-ES","enc":"A128GCM","apu":"QWxpY2U","apv":"Qm9i","epk":{"kty":"EC","crv":"P-256","x":"gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0","y":"SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"}}"#
    static let derivedKey = "VqqN6vgjbSBcIijNcacQGg"
    static let testPolicy = JWEPolicy(algorithms: ["ECDH-ES"], encryptions: ["A128GCM"])

    /// A compact JWE whose content swift-crypto encrypted under the RFC's derived key.
    static func compact(header: String = header, plaintext: [UInt8]) throws -> [UInt8] {
        let headerSegment = b64u(header)
        let cek = SymmetricKey(data: try Base64URL.decode(derivedKey))
        let iv: [UInt8] = (0..<12).map { UInt8($0 * 17) }
        let sealed = try AES.GCM.seal(plaintext, using: cek, nonce: try AES.GCM.Nonce(data: iv),
                                      authenticating: Array(headerSegment.utf8))
        return u8([headerSegment, "", b64u(iv), b64u(Array(sealed.ciphertext)), b64u(Array(sealed.tag))].joined(separator: "."))
    }

    @Test("cjose's Concat KDF (with apu/apv) derives the RFC's key")
    func concatKDFMatchesRFC() throws {
        let bob = try JOSEPrivateKey(jwk: u8(Self.bobJWK))
        let plaintext = u8("RFC 7518 Appendix C, decrypted through our JWE path")
        let jwe = try Self.compact(plaintext: plaintext)
        #expect(try JWE.decrypt(jwe, with: bob, policy: Self.testPolicy) == plaintext)
        // The production policy refuses A128GCM before decrypting.
        expectCode(.policy) { _ = try JWE.decrypt(jwe, with: bob) }
    }

    @Test("without apu/apv the KDF input differs and decryption fails")
    func partyInfoMatters() throws {
        let bob = try JOSEPrivateKey(jwk: u8(Self.bobJWK))
        let noParty = #"{"alg":"ECDH-ES","enc":"A128GCM","epk":{"kty":"EC","crv":"P-256","x":"gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0","y":"SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"}}"#
        let jwe = try Self.compact(header: noParty, plaintext: u8("x"))
        expectCode(.cryptoFailure) { _ = try JWE.decrypt(jwe, with: bob, policy: Self.testPolicy) }
    }
}

// MARK: - JWE receive checks

@Suite("JWE receive checks")
struct JWENegativeTests {
    let key: JOSEPrivateKey

    init() throws { key = try JOSEPrivateKey.generate() }

    func decrypt(_ compact: [UInt8]) throws { _ = try JWE.decrypt(compact, with: key) }

    @Test("the unmodified template passes the pre-parse")
    func templatePasses() throws {
        try JWE.preparse(makeJWE(), policy: .production)
        expectCode(.cryptoFailure) { try decrypt(makeJWE()) }
    }

    @Test("disallowed alg values are policy failures", arguments: ["none", "dir", "RSA1_5", "RSA-OAEP", "ECDH-ES+A256KW", "A256KW", "PBES2-HS256+A128KW", "HS256", "ecdh-es"])
    func disallowedAlg(alg: String) {
        expectCode(.policy) { try decrypt(makeJWE(header: #"{"alg":"\#(alg)","enc":"A256GCM","epk":\#(goEpk)}"#)) }
    }

    @Test("disallowed enc values are policy failures", arguments: ["A128GCM", "A192GCM", "A256CBC-HS512", "A128CBC-HS256", "none"])
    func disallowedEnc(enc: String) {
        expectCode(.policy) { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"\#(enc)","epk":\#(goEpk)}"#)) }
    }

    @Test("crit and zip are policy failures")
    func critAndZip() {
        expectCode(.policy, "crit") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","crit":["exp"],"exp":1,"epk":\#(goEpk)}"#)) }
        expectCode(.policy, "zip") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","zip":"DEF","epk":\#(goEpk)}"#)) }
    }

    @Test("missing or non-string alg/enc are malformed")
    func missingAlgEnc() {
        expectCode(.malformed) { try decrypt(makeJWE(header: #"{"enc":"A256GCM","epk":\#(goEpk)}"#)) }
        expectCode(.malformed) { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","epk":\#(goEpk)}"#)) }
        expectCode(.malformed) { try decrypt(makeJWE(header: #"{"alg":["ECDH-ES"],"enc":"A256GCM","epk":\#(goEpk)}"#)) }
    }

    @Test("IV, tag and encrypted key lengths")
    func lengths() {
        expectCode(.malformed, "8-byte tag") { try decrypt(makeJWE(tag: Array(repeating: 1, count: 8))) }
        expectCode(.malformed, "17-byte tag") { try decrypt(makeJWE(tag: Array(repeating: 1, count: 17))) }
        expectCode(.malformed, "16-byte IV") { try decrypt(makeJWE(iv: Array(repeating: 1, count: 16))) }
        expectCode(.malformed, "empty IV") { try decrypt(makeJWE(iv: [])) }
        expectCode(.malformed, "non-empty encrypted key") { try decrypt(makeJWE(encryptedKey: Array(repeating: 1, count: 40))) }
    }

    @Test("ephemeral key checks")
    func ephemeralKey() {
        // Off the curve: the Go vector's x with y + 1.
        var y = (try? Base64URL.decode("GHkWvDVAmp-ZjDN6IOHmYGddDzKPcbwiu9mJoFhTs1U")) ?? []
        y[31] &+= 1
        let offCurve = #"{"kty":"EC","crv":"P-256","x":"Ley6tW2H9WLZ3VK9VbCe9tFLiOZhbPlzFwvuV6TEX0w","y":"\#(b64u(y))"}"#
        expectCode(.cryptoFailure, "off curve") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","epk":\#(offCurve)}"#)) }
        // The point at infinity / all zeros is not a point either.
        let zeros = #"{"kty":"EC","crv":"P-256","x":"\#(b64u([UInt8](repeating: 0, count: 32)))","y":"\#(b64u([UInt8](repeating: 0, count: 32)))"}"#
        expectCode(.cryptoFailure, "zero point") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","epk":\#(zeros)}"#)) }
        // Another curve (a real P-384 point) and another key type.
        let p384 = P384.KeyAgreement.PrivateKey().publicKey.x963Representation
        let p384JWK = #"{"kty":"EC","crv":"P-384","x":"\#(b64u(Array(p384[1...48])))","y":"\#(b64u(Array(p384[49...96])))"}"#
        expectCode(.policy, "P-384 epk") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","epk":\#(p384JWK)}"#)) }
        let okp = #"{"kty":"OKP","crv":"X25519","x":"\#(b64u([UInt8](repeating: 9, count: 32)))"}"#
        expectCode(.policy, "X25519 epk") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","epk":\#(okp)}"#)) }
        // Shape errors.
        expectCode(.malformed, "no epk") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM"}"#)) }
        expectCode(.malformed, "epk string") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","epk":"x"}"#)) }
        let short = #"{"kty":"EC","crv":"P-256","x":"\#(b64u([UInt8](repeating: 1, count: 31)))","y":"GHkWvDVAmp-ZjDN6IOHmYGddDzKPcbwiu9mJoFhTs1U"}"#
        expectCode(.malformed, "31-byte x") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","epk":\#(short)}"#)) }
        let withD = #"{"kty":"EC","crv":"P-256","x":"Ley6tW2H9WLZ3VK9VbCe9tFLiOZhbPlzFwvuV6TEX0w","y":"GHkWvDVAmp-ZjDN6IOHmYGddDzKPcbwiu9mJoFhTs1U","d":"\#(b64u([UInt8](repeating: 1, count: 32)))"}"#
        expectCode(.malformed, "epk with d") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","epk":\#(withD)}"#)) }
    }

    @Test("apu/apv must be base64url strings")
    func partyInfo() throws {
        expectCode(.malformed) { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","apu":"QWxpY2U=","epk":\#(goEpk)}"#)) }
        expectCode(.malformed) { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","apv":5,"epk":\#(goEpk)}"#)) }
        try JWE.preparse(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","apu":"QWxpY2U","apv":"Qm9i","epk":\#(goEpk)}"#), policy: .production)
    }

    @Test("segment structure")
    func segments() {
        let valid = String(decoding: makeJWE(), as: UTF8.self)
        let parts = valid.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        expectCode(.malformed, "4 segments") { try decrypt(u8(parts.dropLast().joined(separator: "."))) }
        expectCode(.malformed, "6 segments") { try decrypt(u8(valid + ".AAAA")) }
        expectCode(.malformed, "many dots") { try decrypt(Array(repeating: UInt8(ascii: "."), count: 10_000)) }
        expectCode(.malformed, "empty input") { try decrypt([]) }
    }

    @Test("strict base64url in every segment")
    func base64url() {
        let valid = String(decoding: makeJWE(), as: UTF8.self)
        let parts = valid.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for i in [0, 2, 3, 4] {
            for bad in [parts[i] + "=", "+" + parts[i].dropFirst(), parts[i] + " ", parts[i] + "\u{e9}"] {
                var p = parts
                p[i] = bad
                expectCode(.malformed, "segment \(i)") { try decrypt(u8(p.joined(separator: "."))) }
            }
        }
        var p = parts
        p[1] = "A"
        expectCode(.malformed, "encrypted key of impossible length") { try decrypt(u8(p.joined(separator: "."))) }
    }

    @Test("headers that are not a strict JSON object")
    func headerJSON() {
        expectCode(.malformed, "not JSON") { try decrypt(makeJWE(header: "not json")) }
        expectCode(.malformed, "array") { try decrypt(makeJWE(header: #"["alg","ECDH-ES"]"#)) }
        expectCode(.malformed, "trailing") { try decrypt(makeJWE(header: #"{"alg":"ECDH-ES","enc":"A256GCM","epk":\#(goEpk)} x"#)) }
        expectCode(.malformed, "duplicate alg") { try decrypt(makeJWE(header: #"{"alg":"none","alg":"ECDH-ES","enc":"A256GCM","epk":\#(goEpk)}"#)) }
        expectCode(.malformed, "empty header") { try decrypt(makeJWE(header: "")) }
    }

    @Test("size caps before parsing")
    func sizes() {
        let bigHeader = #"{"alg":"ECDH-ES","enc":"A256GCM","pad":"\#(String(repeating: "a", count: CryptoLimits.maxJOSEHeader))","epk":\#(goEpk)}"#
        expectCode(.tooBig, "header") { try decrypt(makeJWE(header: bigHeader)) }
        expectCode(.tooBig, "compact") { try decrypt([UInt8](repeating: UInt8(ascii: "A"), count: CryptoLimits.maxJWECompact + 1)) }
        expectCode(.tooBig, "plaintext") { _ = try JWE.encrypt([UInt8](repeating: 0, count: CryptoLimits.maxPlaintext + 1), to: key.publicKey) }
    }

    @Test("a modified header (the AAD) fails authentication")
    func headerIsAuthenticated() throws {
        let compact = String(decoding: try JWE.encrypt(u8("payload"), to: key.publicKey), as: UTF8.self)
        var parts = compact.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let header = try JSONValue.parse(try Base64URL.decode(parts[0]))
        guard case .object(var members) = header else { Issue.record("header"); return }
        members.append(("kid", .string("added")))
        parts[0] = b64u(JSONValue.object(members).serialized())
        expectCode(.cryptoFailure) { try decrypt(u8(parts.joined(separator: "."))) }
    }
}

// MARK: - JWS receive checks

@Suite("JWS receive checks")
struct JWSNegativeTests {
    let key: JOSEPrivateKey

    init() throws { key = try JOSEPrivateKey.generate() }

    func jws(header: String, payload: String = "hello", signature: [UInt8] = Array(repeating: 1, count: 64)) -> [UInt8] {
        u8([b64u(header), b64u(payload), b64u(signature)].joined(separator: "."))
    }

    func verify(_ compact: [UInt8]) throws { _ = try JWS.verify(compact, with: key.publicKey) }

    @Test("algorithms other than ES256 are policy failures", arguments: ["none", "HS256", "ES384", "RS256", "EdDSA", "es256"])
    func disallowedAlg(alg: String) {
        expectCode(.policy) { try verify(jws(header: #"{"alg":"\#(alg)"}"#)) }
    }

    @Test("crit and b64 are policy failures")
    func crit() {
        expectCode(.policy) { try verify(jws(header: #"{"alg":"ES256","crit":["b64"],"b64":false}"#)) }
        expectCode(.policy) { try verify(jws(header: #"{"alg":"ES256","b64":false}"#)) }
    }

    @Test("signature length and structure")
    func structure() {
        expectCode(.malformed, "63-byte signature") { try verify(jws(header: #"{"alg":"ES256"}"#, signature: Array(repeating: 1, count: 63))) }
        expectCode(.malformed, "65-byte signature") { try verify(jws(header: #"{"alg":"ES256"}"#, signature: Array(repeating: 1, count: 65))) }
        expectCode(.malformed, "DER signature length") { try verify(jws(header: #"{"alg":"ES256"}"#, signature: Array(repeating: 1, count: 70))) }
        expectCode(.malformed, "2 segments") { try verify(u8(b64u(#"{"alg":"ES256"}"#) + "." + b64u("x"))) }
        expectCode(.malformed, "4 segments") { try verify(jws(header: #"{"alg":"ES256"}"#) + u8(".AAAA")) }
        expectCode(.malformed, "not JSON") { try verify(jws(header: "{alg:ES256}")) }
        expectCode(.malformed, "padded payload") { try verify(u8(b64u(#"{"alg":"ES256"}"#) + ".aGk=." + b64u([UInt8](repeating: 1, count: 64)))) }
        expectCode(.malformed, "missing alg") { try verify(jws(header: #"{"typ":"JWS"}"#)) }
        expectCode(.cryptoFailure, "well-formed, wrong signature") { try verify(jws(header: #"{"alg":"ES256"}"#)) }
        expectCode(.tooBig, "oversize") { try verify([UInt8](repeating: UInt8(ascii: "A"), count: JWS.maxCompact + 1)) }
    }
}

// MARK: - JWK parsing

@Suite("JWK parsing")
struct JWKTests {
    static let x = "sGfvvCV63lfohLR_3iKVyUDks0af4U1LchRVD4PyAZo"
    static let y = "pSw6dwn20MAyfQFYM36-fOjxlymZ67N62ynR5BdID80"
    static let d = "_zaLhIrMrEzzZ7AB9gB90FtRRnmONMcdLuYp3qX4j9o"

    static func jwk(_ extra: String = "", kty: String = "EC", crv: String = "P-256", x: String = x, y: String = y) -> [UInt8] {
        u8(#"{"kty":"\#(kty)","crv":"\#(crv)","x":"\#(x)","y":"\#(y)"\#(extra)}"#)
    }

    @Test("minimal and annotated keys parse")
    func accepted() throws {
        _ = try JOSEPublicKey(jwk: Self.jwk())
        _ = try JOSEPublicKey(jwk: Self.jwk(#","use":"sig","alg":"ES256","kid":"kdc-1""#))
        _ = try JOSEPublicKey(jwk: Self.jwk(#","key_ops":["verify"],"ext":true"#))
        _ = try JOSEPrivateKey(jwk: Self.jwk(#","d":"\#(Self.d)""#))
        // A kid survives serialization in go-jose's position (after kty).
        let k = try JOSEPublicKey(jwk: Self.jwk(#","kid":"a<b","use":"enc""#))
        #expect(k.jwkJSON() == #"{"use":"enc","kty":"EC","kid":"a\u003cb","crv":"P-256","x":"\#(Self.x)","y":"\#(Self.y)"}"#)
    }

    @Test("public/private mix-ups are wrong key types")
    func publicPrivate() {
        expectCode(.wrongKeyType, "public JWK with d") { _ = try JOSEPublicKey(jwk: Self.jwk(#","d":"\#(Self.d)""#)) }
        expectCode(.wrongKeyType, "private JWK without d") { _ = try JOSEPrivateKey(jwk: Self.jwk()) }
    }

    @Test("other key types and curves")
    func types() {
        expectCode(.wrongKeyType, "RSA") { _ = try JOSEPublicKey(jwk: Self.jwk(kty: "RSA")) }
        expectCode(.wrongKeyType, "OKP") { _ = try JOSEPublicKey(jwk: Self.jwk(kty: "OKP")) }
        expectCode(.wrongKeyType, "P-384") { _ = try JOSEPublicKey(jwk: Self.jwk(crv: "P-384")) }
        expectCode(.wrongKeyType, "secp256k1") { _ = try JOSEPublicKey(jwk: Self.jwk(crv: "secp256k1")) }
    }

    @Test("use and alg allow-lists")
    func policy() {
        expectCode(.policy) { _ = try JOSEPublicKey(jwk: Self.jwk(#","alg":"RS256""#)) }
        expectCode(.policy) { _ = try JOSEPublicKey(jwk: Self.jwk(#","alg":"ECDH-ES+A256KW""#)) }
        expectCode(.policy) { _ = try JOSEPublicKey(jwk: Self.jwk(#","use":"wrap""#)) }
        expectCode(.malformed) { _ = try JOSEPublicKey(jwk: Self.jwk(#","alg":1"#)) }
    }

    @Test("malformed keys")
    func malformed() {
        let x31 = b64u([UInt8](repeating: 1, count: 31))
        let x33 = b64u([UInt8](repeating: 1, count: 33))
        expectCode(.malformed, "x of 31 bytes") { _ = try JOSEPublicKey(jwk: Self.jwk(x: x31)) }
        expectCode(.malformed, "x of 33 bytes") { _ = try JOSEPublicKey(jwk: Self.jwk(x: x33)) }
        expectCode(.malformed, "y padded") { _ = try JOSEPublicKey(jwk: Self.jwk(y: Self.y + "=")) }
        expectCode(.malformed, "x standard base64") { _ = try JOSEPublicKey(jwk: Self.jwk(x: "sGfvvCV63lfohLR/3iKVyUDks0af4U1LchRVD4PyAZo")) }
        expectCode(.malformed, "off curve") { _ = try JOSEPublicKey(jwk: Self.jwk(y: Self.x)) }
        expectCode(.malformed, "missing y") { _ = try JOSEPublicKey(jwk: u8(#"{"kty":"EC","crv":"P-256","x":"\#(Self.x)"}"#)) }
        expectCode(.malformed, "unknown member") { _ = try JOSEPublicKey(jwk: Self.jwk(#","x5c":["AAAA"]"#)) }
        expectCode(.malformed, "duplicate member") { _ = try JOSEPublicKey(jwk: Self.jwk(#","x":"\#(Self.x)""#)) }
        expectCode(.malformed, "not an object") { _ = try JOSEPublicKey(jwk: u8("[]")) }
        expectCode(.malformed, "not JSON") { _ = try JOSEPublicKey(jwk: u8("kty=EC")) }
        expectCode(.malformed, "key_ops not strings") { _ = try JOSEPublicKey(jwk: Self.jwk(#","key_ops":[1]"#)) }
        expectCode(.tooBig, "oversize") { _ = try JOSEPublicKey(jwk: Self.jwk(#","kid":"\#(String(repeating: "k", count: CryptoLimits.maxKeyText))""#)) }
    }

    @Test("private scalars")
    func scalars() {
        // The scalar of another key: valid, but not the one for x and y.
        let otherD = "BPJj4S4pEHL905ZUamvPLb9XAhiFdg5w69S953rhlx4"
        expectCode(.malformed, "d not matching x/y") { _ = try JOSEPrivateKey(jwk: Self.jwk(#","d":"\#(otherD)""#)) }
        expectCode(.malformed, "d of 31 bytes") { _ = try JOSEPrivateKey(jwk: Self.jwk(#","d":"\#(b64u([UInt8](repeating: 1, count: 31)))""#)) }
        expectCode(.malformed, "d zero") { _ = try JOSEPrivateKey(jwk: Self.jwk(#","d":"\#(b64u([UInt8](repeating: 0, count: 32)))""#)) }
        // The group order n is not a valid scalar.
        let n = Hex.decode(Array("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551".utf8)) ?? []
        expectCode(.malformed, "d = n") { _ = try JOSEPrivateKey(jwk: Self.jwk(#","d":"\#(b64u(n))""#)) }
        expectCode(.malformed, "d not a string") { _ = try JOSEPrivateKey(jwk: Self.jwk(#","d":1"#)) }
    }
}

// MARK: - base64

@Suite("Base64")
struct Base64Tests {
    // RFC 4648 §10.
    static let rfc4648: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]

    @Test("RFC 4648 test vectors")
    func vectors() throws {
        for (plain, encoded) in Self.rfc4648 {
            #expect(Base64.encode(u8(plain)) == encoded)
            #expect(try Base64.decode(encoded) == u8(plain))
            let url = encoded.replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(u8(plain)) == url)
            #expect(try Base64URL.decode(url) == u8(plain))
        }
        let all = (0...255).map { UInt8($0) }
        #expect(try Base64URL.decode(Base64URL.encode(all)) == all)
        #expect(try Base64.decode(Base64.encode(all)) == all)
        #expect(Base64URL.encode([0xfb, 0xff]) == "-_8")
        #expect(Base64.encode([0xfb, 0xff]) == "+/8=")
        #expect(try Base64URL.validatedDecodedLength(u8("Zm9vYmE")) == 5)
    }

    @Test("base64url rejects", arguments: ["Zg==", "Zg=", "Z", "Zm9vY", "+/8", "Zm 9v", "Zm9v\n", "Zh", "Zm9", "Zm8=", "Zm\u{e9}v"])
    func base64urlRejects(text: String) {
        expectCode(.malformed) { _ = try Base64URL.decode(text) }
        expectCode(.malformed) { _ = try Base64URL.validatedDecodedLength(u8(text)) }
    }

    @Test("standard base64 rejects", arguments: ["Zg", "Zg=", "Zg===", "Z===", "====", "Zm9vY===", "-_8=", "Zm9v\n", "Zh==", "Zm9=", "Z=g=", "=Zg=", "Zm8=Zm8="])
    func base64Rejects(text: String) {
        expectCode(.malformed) { _ = try Base64.decode(text) }
    }

    @Test("slices decode like arrays")
    func slices() throws {
        let text = u8("xxZm9vYmFyxx")
        #expect(try Base64URL.decode(text[2..<10]) == u8("foobar"))
        #expect(try Base64.decode(text[2..<10]) == u8("foobar"))
    }
}
