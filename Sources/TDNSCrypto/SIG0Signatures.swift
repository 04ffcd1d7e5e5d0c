import TDNSCore
import TDNSWire

/// SIG(0) signing and verification (RFC 2931), the crypto half of TDNSWire's `SIG0`.
///
/// Only Ed25519 (15) and ECDSA P-256/SHA-256 (13) are accepted: the KRS signs with Ed25519
/// (PROTOCOL §12), and a KDC may use P-256. Verification has bounded cost: one KEY per message,
/// and every cheap check — algorithm, key tag, validity window — comes before the one
/// public-key operation.
public enum SIG0Signatures {
    public static let algorithms: Set<UInt8> = [DNSSECAlgorithm.ed25519.rawValue, DNSSECAlgorithm.ecdsap256sha256.rawValue]
    /// Go tdns signs with inception = now − 60 s and expiration = now + 300 s (PROTOCOL §12).
    public static let backdate: Int64 = 60
    public static let lifetime: Int64 = 300

    /// Signs `message` with `key`, whose KEY RR (flags 256, protocol 3) is `keyRecord`; the
    /// signer name is the control zone for tdns enrollment (PROTOCOL §12).
    public static func sign(
        _ message: DNSMessage, with key: DNSSECPrivateKey, signerName: DNSName, now: Int64
    ) throws(TDNSError) -> [UInt8] {
        guard algorithms.contains(key.algorithm.rawValue) else {
            throw .policy("SIG(0) signing needs an Ed25519 or ECDSA P-256 key")
        }
        guard let inception = UInt32(exactly: now - backdate), let expiration = UInt32(exactly: now + lifetime) else {
            throw .malformed("SIG(0): time \(now) does not fit RFC 2931's 32-bit fields")
        }
        let keyTag = KEYRecord(algorithm: key.algorithm.rawValue, publicKey: key.dnskeyPublicKey).keyTag
        let sig = SIGRecord.sig0(
            algorithm: key.algorithm.rawValue, keyTag: keyTag, signerName: signerName,
            inception: inception, expiration: expiration)
        return try SIG0.sign(message: message, sig: sig) { (data) throws(TDNSError) -> [UInt8] in try key.sign(data) }
    }

    /// Verifies the SIG(0) that ends `message` (parsed from received bytes) against `key`.
    ///
    /// - Throws: `.authentication` when the message is unsigned, signed by another key or the
    ///   signature does not verify; `.stale` outside inception…expiration ± `skew` (checked
    ///   before any public-key operation); `.policy` for algorithms other than 13 and 15.
    public static func verify(_ message: DNSMessage, key: KEYRecord, now: Int64, skew: Int64 = 300) throws(TDNSError) {
        guard let found = try SIG0.extract(from: message) else { throw .authentication("message carries no SIG(0)") }
        let sig = found.sig
        guard algorithms.contains(sig.algorithm) else { throw .policy("SIG(0) algorithm \(sig.algorithm) is not accepted") }
        guard sig.algorithm == key.algorithm, sig.keyTag == key.keyTag else {
            throw .authentication("SIG(0) is by key \(sig.keyTag)/\(sig.algorithm), not the expected \(key.keyTag)/\(key.algorithm)")
        }
        guard Int64(sig.inception) - skew <= now else { throw .stale("SIG(0) is not valid yet") }
        guard now <= Int64(sig.expiration) + skew else { throw .stale("SIG(0) has expired") }
        let publicKey = try DNSSECPublicKey(algorithm: DNSSECAlgorithm(rawValue: key.algorithm), dnskeyPublicKey: key.publicKey)
        guard publicKey.verify(signature: found.signature, data: found.signedData) else {
            throw .authentication("SIG(0) signature does not verify")
        }
    }
}
