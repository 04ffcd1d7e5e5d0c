import Crypto
import TDNSCore

/// Hashes and MACs over distribution data (PROTOCOL §9.2, §9.3).
public enum Digests {
    public static func sha256(_ data: some Collection<UInt8>) -> [UInt8] {
        Array(SHA256.hash(data: Array(data)))
    }

    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
    }

    /// Constant-time check of an HMAC-SHA256 value.
    public static func hmacSHA256IsValid(_ mac: [UInt8], key: [UInt8], data: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: data, using: SymmetricKey(data: key))
    }
}
