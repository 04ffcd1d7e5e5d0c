import TDNSCore
import Testing
import TDNSTestSupport
@testable import TDNSCrypto

@Suite("HPKE backend")
struct HPKETests {
    // MARK: RFC 9180 Appendix A (CFRG test-vectors.json), suite 0x0020/0x0001/0x0002


    @Test("RFC 9180 vectors: mode base and auth", arguments: [0, 2])
    func rfc9180(mode: Int) throws {
        let vectors = try VectorFiles.load("rfc9180-x25519-sha256-aes256gcm.json").objects("vectors")
        let v = try #require(vectors.first { ($0["mode"] as? Int) == mode })
        let recipient = try HPKEPrivateKey(rawRepresentation: try hexBytes(v.string("skRm")))
        #expect(recipient.publicKey.hex == (try v.string("pkRm")), "public key derived from skRm")
        let info = try hexBytes(v.string("info"))
        let enc = try hexBytes(v.string("enc"))
        // Our API is single-shot (sequence number 0), so the first encryption is the one to open.
        let first = try #require(try v.objects("encryptions").first)
        let ciphertext = enc + (try hexBytes(first.string("ct")))
        let aad = try hexBytes(first.string("aad"))
        let expected = try hexBytes(first.string("pt"))
        if mode == 0 {
            #expect(try HPKECipher.open(ciphertext, with: recipient, info: info, aad: aad) == expected)
        } else {
            let sender = try HPKEPrivateKey(rawRepresentation: try hexBytes(v.string("skSm")))
            #expect(sender.publicKey.hex == (try v.string("pkSm")))
            #expect(try HPKECipher.openAuth(ciphertext, with: recipient, from: sender.publicKey, info: info, aad: aad) == expected)
            // The same bytes must not open without sender authentication, nor with another sender.
            #expect(throws: TDNSError.self) { try HPKECipher.open(ciphertext, with: recipient, info: info, aad: aad) }
            let other = HPKEPrivateKey.generate()
            #expect(throws: TDNSError.self) {
                try HPKECipher.openAuth(ciphertext, with: recipient, from: other.publicKey, info: info, aad: aad)
            }
        }
        // Wrong AAD fails.
        #expect(throws: TDNSError.self) {
            if mode == 0 { _ = try HPKECipher.open(ciphertext, with: recipient, info: info, aad: []) }
            else { throw TDNSError(.cryptoFailure, "covered above") }
        }
    }

    // MARK: Go vectors (../shared/vectors/hpke.json)

    @Test("Go hpke.json: every vector decrypts, negatives fail")
    func goVectors() throws {
        let file = try VectorFiles.load("hpke.json")
        let keys = try file.objects("keys")
        let plaintexts = try file.objects("plaintexts")
        var opened = 0
        for v in try file.objects("vectors") {
            let keyEntry = try #require(keys.first { ($0["name"] as? String) == (v["recipient"] as? String) })
            let key = try HPKEPrivateKey(text: Array(try keyEntry.string("private_key_hex").utf8))
            #expect(key.publicKey.hex == (try keyEntry.string("public_key_hex")))
            let pt = try #require(plaintexts.first { ($0["id"] as? String) == (v["plaintext"] as? String) })
            let ct = try base64Bytes(v.string("ciphertext_b64"))
            #expect(try HPKECipher.open(ct, with: key) == (try base64Bytes(pt.string("b64"))), "\(v["id"] ?? "")")
            opened += 1
        }
        #expect(opened >= 4)
        for v in try file.objects("negative") {
            let keyEntry = try #require(keys.first { ($0["name"] as? String) == (v["recipient"] as? String) })
            let key = try HPKEPrivateKey(text: Array(try keyEntry.string("private_key_hex").utf8))
            let error = #expect(throws: TDNSError.self) { try HPKECipher.open(try base64Bytes(v.string("ciphertext_b64")), with: key) }
            #expect(error?.code == .cryptoFailure)
        }
        // Key serialization example from the Go GenerateKeypair.
        let example = try file.object("key_serialization").object("example_from_GenerateKeypair")
        let k = try HPKEPrivateKey(text: Array(try example.string("private_key_hex").utf8))
        #expect(k.hex == (try example.string("private_key_hex")))
        #expect(k.publicKey.hex == (try example.string("public_key_hex")))
    }

    // MARK: Round trips and key formats

    @Test("seal/open round trip, base and auth", arguments: [0, 1, 29, 1000, 70_000])
    func roundTrip(size: Int) throws {
        let recipient = HPKEPrivateKey.generate()
        let sender = HPKEPrivateKey.generate()
        let pt = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let ct = try HPKECipher.seal(pt, to: recipient.publicKey)
        #expect(ct.count == size + 48)
        #expect(try HPKECipher.open(ct, with: recipient) == pt)
        let authCT = try HPKECipher.sealAuth(pt, to: recipient.publicKey, from: sender)
        #expect(try HPKECipher.openAuth(authCT, with: recipient, from: sender.publicKey) == pt)
    }

    @Test("key text: raw, hex, comments, whitespace, uppercase")
    func keyText() throws {
        let key = HPKEPrivateKey.generate()
        let raw = try hexBytes(key.publicKey.hex)
        #expect(try HPKEPublicKey(text: raw).hex == key.publicKey.hex)
        let file = "# tdns KRS public key\n# generated for a test\n  \(key.publicKey.hex.uppercased())  \n\n"
        #expect(try HPKEPublicKey(text: Array(file.utf8)).hex == key.publicKey.hex)
        #expect(try HPKEPrivateKey(text: Array("\(key.hex)\n".utf8)).publicKey.hex == key.publicKey.hex)
    }

    @Test("bad keys are refused with specific codes", arguments: [
        ("empty", "", TDNSError.Code.malformed),
        ("63 hex", String(repeating: "a", count: 63), .malformed),
        ("65 hex", String(repeating: "a", count: 65), .malformed),
        ("non-hex", String(repeating: "g", count: 64), .malformed),
        ("two key lines", String(repeating: "a", count: 64) + "\n" + String(repeating: "b", count: 64), .malformed),
        ("all-zero", String(repeating: "0", count: 64), .malformed),
        ("comment only", "# nothing here\n", .malformed),
        ("oversize", "", .tooBig),
    ])
    func badKeys(name: String, text: String, code: TDNSError.Code) {
        let text = name == "oversize" ? String(repeating: "a", count: 16 * 1024 + 1) : text
        let pub = #expect(throws: TDNSError.self, "\(name)") { try HPKEPublicKey(text: Array(text.utf8)) }
        #expect(pub?.code == code)
        let priv = #expect(throws: TDNSError.self, "\(name)") { try HPKEPrivateKey(text: Array(text.utf8)) }
        #expect(priv?.code == code)
    }

    @Test("raw all-zero keys are refused")
    func zeroRaw() {
        #expect(throws: TDNSError.self) { try HPKEPublicKey(text: [UInt8](repeating: 0, count: 32)) }
        #expect(throws: TDNSError.self) { try HPKEPrivateKey(text: [UInt8](repeating: 0, count: 32)) }
    }

    @Test("ciphertexts: short, tampered, low-order enc")
    func badCiphertexts() throws {
        let key = HPKEPrivateKey.generate()
        let ct = try HPKECipher.seal(Array("hello".utf8), to: key.publicKey)
        let short = #expect(throws: TDNSError.self) { try HPKECipher.open(Array(ct.prefix(47)), with: key) }
        #expect(short?.code == .malformed)
        for i in [0, 31, 32, ct.count - 1] {
            var t = ct
            t[i] ^= 0x01
            let e = #expect(throws: TDNSError.self) { try HPKECipher.open(t, with: key) }
            #expect(e?.code == .cryptoFailure)
        }
        // enc = identity (all zeros) and small-order points give an all-zero DH result.
        let lowOrder: [[UInt8]] = [
            [UInt8](repeating: 0, count: 32),
            [1] + [UInt8](repeating: 0, count: 31),
            try hexBytes("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            try hexBytes("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        ]
        for enc in lowOrder {
            let e = #expect(throws: TDNSError.self) { try HPKECipher.open(enc + Array(ct.dropFirst(32)), with: key) }
            #expect(e?.code == .cryptoFailure)
        }
        // Small-order public keys are refused at parse time, also with the top bit set.
        for point in lowOrder.dropFirst() {
            let e = #expect(throws: TDNSError.self) { try HPKEPublicKey(rawRepresentation: point) }
            #expect(e?.code == .malformed)
            var high = point
            high[31] |= 0x80
            #expect(throws: TDNSError.self) { try HPKEPublicKey(rawRepresentation: high) }
        }
    }
}
