import TDNSCore
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A DNSSEC public key taken from the public-key field of a DNSKEY or KEY RR: verifies RRSIG and
/// SIG(0) signatures (PROTOCOL §12) and lets a distributed private key be matched to its DNSKEY.
///
/// Supported: ECDSAP256SHA256 (13), ECDSAP384SHA384 (14), ED25519 (15). RSA is refused (no RSA
/// in the `Crypto` module this target links).
public struct DNSSECPublicKey: Sendable {
    enum Verifier: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    let verifier: Verifier

    public let algorithm: DNSSECAlgorithm
    /// The DNSKEY public-key field this key was made from.
    public let dnskeyPublicKey: [UInt8]

    /// Parses a DNSKEY public-key field: x ‖ y of 32 or 48 octets each for ECDSA (RFC 6605 §4;
    /// the point must be on the curve), 32 octets for Ed25519 (RFC 8080 §3).
    ///
    /// - Throws: `.policy` for other algorithms; `.malformed` for a wrong length or a point not
    ///   on the curve.
    public init(algorithm: DNSSECAlgorithm, dnskeyPublicKey raw: [UInt8]) throws(TDNSError) {
        switch algorithm {
        case .ecdsap256sha256:
            guard raw.count == 64 else { throw .malformed("P-256 DNSKEY public key must be 64 octets, got \(raw.count)") }
            do {
                verifier = .p256(try P256.Signing.PublicKey(rawRepresentation: raw))
            } catch {
                throw .malformed("P-256 DNSKEY public key is not a point on the curve")
            }
        case .ecdsap384sha384:
            guard raw.count == 96 else { throw .malformed("P-384 DNSKEY public key must be 96 octets, got \(raw.count)") }
            do {
                verifier = .p384(try P384.Signing.PublicKey(rawRepresentation: raw))
            } catch {
                throw .malformed("P-384 DNSKEY public key is not a point on the curve")
            }
        case .ed25519:
            guard raw.count == 32 else { throw .malformed("Ed25519 DNSKEY public key must be 32 octets, got \(raw.count)") }
            do {
                verifier = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: raw))
            } catch {
                throw .malformed("Ed25519 DNSKEY public key rejected")
            }
        default:
            throw .policy("signature verification for DNSSEC algorithm \(algorithm.rawValue) (\(algorithm)) is not supported")
        }
        self.algorithm = algorithm
        self.dnskeyPublicKey = raw
    }

    /// True when `signature` (DNSSEC encoding: r ‖ s for ECDSA, RFC 6605 §4; 64 octets for
    /// Ed25519, RFC 8080 §4) is valid for `data` under this key. ECDSA hashes `data` with SHA-256
    /// (13) or SHA-384 (14). A signature of the wrong length is simply invalid.
    public func verify(signature: [UInt8], data: [UInt8]) -> Bool {
        switch verifier {
        case .p256(let key):
            guard signature.count == 64,
                  let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: data)
        case .p384(let key):
            guard signature.count == 96,
                  let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: data)
        case .ed25519(let key):
            guard signature.count == 64 else { return false }
            return key.isValidSignature(signature, for: data)
        }
    }

    /// The RFC 4034 Appendix B key tag of the DNSKEY/KEY with these `flags` (protocol 3).
    public func keyTag(flags: UInt16) -> UInt16 {
        dnssecKeyTag(flags: flags, protocol: 3, algorithm: algorithm.rawValue, publicKey: dnskeyPublicKey)
    }
}
