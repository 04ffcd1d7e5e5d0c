import TDNSCore
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An X25519 public key of the HPKE backend (PROTOCOL §7): 32 raw bytes, 64 hex in text.
public struct HPKEPublicKey: Sendable {
    let key: Curve25519.KeyAgreement.PublicKey

    /// Parses 32 raw bytes. The all-zero key is refused, as the Go backend does.
    public init(rawRepresentation raw: [UInt8]) throws(TDNSError) {
        guard raw.count == 32 else { throw .malformed("HPKE public key must be 32 bytes, got \(raw.count)") }
        guard raw.contains(where: { $0 != 0 }) else { throw .malformed("HPKE public key is all zeros") }
        guard !X25519.hasSmallOrder(raw) else { throw .malformed("HPKE public key is a small-order point") }
        do {
            key = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw)
        } catch {
            throw .malformed("HPKE public key rejected: \(error)")
        }
    }

    /// Parses a key as found in files and configuration: 32 raw bytes, or 64 hex characters
    /// with `#` comment lines and surrounding whitespace ignored.
    public init(text: [UInt8]) throws(TDNSError) {
        var raw = try hpkeKeyBytes(text, what: "public")
        defer { zeroize(&raw) }
        try self.init(rawRepresentation: raw)
    }

    init(_ key: Curve25519.KeyAgreement.PublicKey) { self.key = key }

    public var rawRepresentation: [UInt8] { Array(key.rawRepresentation) }

    /// 64 lowercase hex characters.
    public var hex: String { Hex.encode(key.rawRepresentation) }
}

/// An X25519 private key of the HPKE backend. The public key is derived once, at parse time,
/// and kept: decryption then costs one X25519 operation, not two (PLATFORM performance notes).
public struct HPKEPrivateKey: Sendable {
    let key: Curve25519.KeyAgreement.PrivateKey
    public let publicKey: HPKEPublicKey

    /// Parses 32 raw bytes (the scalar as CIRCL marshals it, unclamped). All zeros is refused.
    public init(rawRepresentation raw: [UInt8]) throws(TDNSError) {
        guard raw.count == 32 else { throw .malformed("HPKE private key must be 32 bytes, got \(raw.count)") }
        guard raw.contains(where: { $0 != 0 }) else { throw .malformed("HPKE private key is all zeros") }
        do {
            key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw)
        } catch {
            throw .malformed("HPKE private key rejected")
        }
        publicKey = HPKEPublicKey(key.publicKey)
    }

    public init(text: [UInt8]) throws(TDNSError) {
        var raw = try hpkeKeyBytes(text, what: "private")
        defer { zeroize(&raw) }
        try self.init(rawRepresentation: raw)
    }

    init(_ key: Curve25519.KeyAgreement.PrivateKey) {
        self.key = key
        self.publicKey = HPKEPublicKey(key.publicKey)
    }

    public static func generate() -> HPKEPrivateKey {
        HPKEPrivateKey(Curve25519.KeyAgreement.PrivateKey())
    }

    /// 64 lowercase hex characters of the private scalar. The caller owns a secret.
    public var hex: String {
        var raw = Array(key.rawRepresentation)
        defer { zeroize(&raw) }
        return Hex.encode(raw)
    }
}

/// Raw bytes of an HPKE key given as 32 raw bytes or as key-file hex text.
private func hpkeKeyBytes(_ text: [UInt8], what: String) throws(TDNSError) -> [UInt8] {
    guard text.count <= CryptoLimits.maxKeyText else {
        throw .tooBig("HPKE \(what) key text is \(text.count) bytes, limit \(CryptoLimits.maxKeyText)")
    }
    if text.count == 32 { return text }
    guard let line = keyFileContent(text), line.count == 64, let raw = Hex.decode(line) else {
        throw .malformed("HPKE \(what) key must be 32 raw bytes or 64 hex characters")
    }
    return raw
}

enum X25519 {
    /// The u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519, and their
    /// non-canonical encodings ≥ p (the list libsodium rejects). X25519 with any of them
    /// gives the all-zero shared secret; swift-crypto's HPKE sender does not refuse them.
    private static let smallOrder: [[UInt8]] = [
        [UInt8](repeating: 0, count: 32),
        [1] + [UInt8](repeating: 0, count: 31),
        [0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
         0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00],
        [0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
         0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57],
        [0xec] + [UInt8](repeating: 0xff, count: 30) + [0x7f],  // p - 1
        [0xed] + [UInt8](repeating: 0xff, count: 30) + [0x7f],  // p
        [0xee] + [UInt8](repeating: 0xff, count: 30) + [0x7f],  // p + 1
    ]

    /// True when `u` (32 bytes) encodes a small-order point. The top bit is ignored, as X25519 does.
    static func hasSmallOrder(_ u: some Collection<UInt8>) -> Bool {
        guard u.count == 32 else { return false }
        var masked = Array(u)
        masked[31] &= 0x7f
        return smallOrder.contains(masked)
    }
}
