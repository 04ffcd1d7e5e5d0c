/// A failure of a TDNSCrypto operation: a stable code and a reason for humans.
///
/// The code maps 1:1 onto a `KRS_E…` return code of the C API (see `Include/tdnskrs/common.h`);
/// the reason never contains key material or plaintext.
public struct CryptoError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Code: Equatable, Sendable {
        /// Authentication tag, signature or key agreement failed (`KRS_ECRYPTO`).
        case cryptoFailure
        /// Key of the wrong kind for the operation (`KRS_EKEYTYPE`).
        case wrongKeyType
        /// Input is not well-formed: hex, JSON, JWK, JWE, base64, lengths (`KRS_EMALFORMED`).
        case malformed
        /// Input exceeds a size limit; rejected before parsing (`KRS_ETOOBIG`).
        case tooBig
        /// Well-formed but refused by policy: algorithm not allowed, `crit`, `zip` (`KRS_EPOLICY`).
        case policy
        /// Anything else: a library we call failed unexpectedly (`KRS_ERROR`).
        case internalFailure
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }

    static func malformed(_ reason: String) -> CryptoError { CryptoError(.malformed, reason) }
    static func policy(_ reason: String) -> CryptoError { CryptoError(.policy, reason) }
    static func cryptoFailure(_ reason: String) -> CryptoError { CryptoError(.cryptoFailure, reason) }
    static func tooBig(_ reason: String) -> CryptoError { CryptoError(.tooBig, reason) }
    static func internalFailure(_ reason: String) -> CryptoError { CryptoError(.internalFailure, reason) }
}

/// Size limits applied before any input is parsed. They mirror `Include/tdnskrs/crypto.h`.
public enum CryptoLimits {
    /// Largest plaintext either backend encrypts or returns (`KRS_CRYPTO_MAX_PLAINTEXT`).
    public static let maxPlaintext = 64 * 1024 * 1024
    /// Largest key text (hex or JWK JSON) accepted (`KRS_CRYPTO_MAX_KEY_TEXT`).
    public static let maxKeyText = 16 * 1024
    /// Largest HPKE ciphertext: enc (32) + plaintext + tag (16).
    public static let maxHPKECiphertext = maxPlaintext + 48
    /// Largest compact JWE: base64url of the plaintext plus room for header, IV and tag.
    public static let maxJWECompact = (maxPlaintext / 3 + 1) * 4 + 8192
    /// Largest JOSE protected header accepted (decoded bytes).
    public static let maxJOSEHeader = 4096
}
