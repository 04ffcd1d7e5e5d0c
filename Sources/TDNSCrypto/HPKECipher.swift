import TDNSCore
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The tdns HPKE suite (PROTOCOL §7, RFC 9180): DHKEM(X25519, HKDF-SHA256) 0x0020,
/// HKDF-SHA256 0x0001, AES-256-GCM 0x0002; one seal per context (sequence number 0).
///
/// Wire form of a ciphertext: `enc (32 bytes) ‖ AEAD ciphertext ‖ tag (16 bytes)`, no prefix.
/// Distributions and the enrollment request use Base mode with empty info and AAD; the KDC's
/// enrollment confirmation uses Auth mode.
public enum HPKECipher {
    public static let suite = HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .AES_GCM_256)
    /// Length of the encapsulated key that starts every ciphertext.
    public static let encLength = 32
    /// Length of the AES-GCM tag that ends every ciphertext.
    public static let tagLength = 16

    /// Base mode seal: returns `enc ‖ ct`.
    public static func seal(
        _ plaintext: [UInt8], to recipient: HPKEPublicKey, info: [UInt8] = [], aad: [UInt8] = []
    ) throws(TDNSError) -> [UInt8] {
        try checkPlaintext(plaintext)
        do {
            var sender = try HPKE.Sender(recipientKey: recipient.key, ciphersuite: suite, info: Data(info))
            let ct = try sender.seal(plaintext, authenticating: aad)
            return Array(sender.encapsulatedKey) + Array(ct)
        } catch {
            throw .cryptoFailure("HPKE seal failed")
        }
    }

    /// Base mode open of `enc ‖ ct`.
    public static func open(
        _ ciphertext: [UInt8], with recipient: HPKEPrivateKey, info: [UInt8] = [], aad: [UInt8] = []
    ) throws(TDNSError) -> [UInt8] {
        let (enc, body) = try split(ciphertext)
        do {
            var context = try HPKE.Recipient(
                privateKey: recipient.key, ciphersuite: suite, info: Data(info), encapsulatedKey: Data(enc))
            return Array(try context.open(body, authenticating: aad))
        } catch {
            throw .cryptoFailure("HPKE open failed: wrong key or tampered ciphertext")
        }
    }

    /// Auth mode seal (RFC 9180 §5.1.3): the recipient learns that `sender` sealed it.
    public static func sealAuth(
        _ plaintext: [UInt8], to recipient: HPKEPublicKey, from sender: HPKEPrivateKey,
        info: [UInt8] = [], aad: [UInt8] = []
    ) throws(TDNSError) -> [UInt8] {
        try checkPlaintext(plaintext)
        do {
            var context = try HPKE.Sender(
                recipientKey: recipient.key, ciphersuite: suite, info: Data(info), authenticatedBy: sender.key)
            let ct = try context.seal(plaintext, authenticating: aad)
            return Array(context.encapsulatedKey) + Array(ct)
        } catch {
            throw .cryptoFailure("HPKE auth seal failed")
        }
    }

    /// Auth mode open: fails unless the ciphertext was sealed by the holder of `sender`'s private key.
    public static func openAuth(
        _ ciphertext: [UInt8], with recipient: HPKEPrivateKey, from sender: HPKEPublicKey,
        info: [UInt8] = [], aad: [UInt8] = []
    ) throws(TDNSError) -> [UInt8] {
        let (enc, body) = try split(ciphertext)
        do {
            var context = try HPKE.Recipient(
                privateKey: recipient.key, ciphersuite: suite, info: Data(info), encapsulatedKey: Data(enc),
                authenticatedBy: sender.key)
            return Array(try context.open(body, authenticating: aad))
        } catch {
            throw .cryptoFailure("HPKE auth open failed: wrong key, wrong sender or tampered ciphertext")
        }
    }

    private static func checkPlaintext(_ plaintext: [UInt8]) throws(TDNSError) {
        guard plaintext.count <= CryptoLimits.maxPlaintext else {
            throw .tooBig("plaintext is \(plaintext.count) bytes, limit \(CryptoLimits.maxPlaintext)")
        }
    }

    private static func split(_ ciphertext: [UInt8]) throws(TDNSError) -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
        guard ciphertext.count <= CryptoLimits.maxHPKECiphertext else {
            throw .tooBig("HPKE ciphertext is \(ciphertext.count) bytes, limit \(CryptoLimits.maxHPKECiphertext)")
        }
        guard ciphertext.count >= encLength + tagLength else {
            throw .malformed("HPKE ciphertext is \(ciphertext.count) bytes, shorter than enc + tag (48)")
        }
        let enc = ciphertext[..<encLength]
        // A small-order enc gives the all-zero DH secret (RFC 9180 §7.1.4 asks to reject it).
        guard !X25519.hasSmallOrder(enc) else { throw .cryptoFailure("HPKE enc is a small-order point") }
        return (enc, ciphertext[encLength...])
    }
}
