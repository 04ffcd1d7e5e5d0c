/// A failure anywhere in libtdnskrs: a stable code and a reason for humans.
///
/// The code maps 1:1 onto a `KRS_E…` return code of the C API (see `Include/tdnskrs/common.h`);
/// the reason never contains key material or plaintext.
public struct TDNSError: Error, Equatable, CustomStringConvertible, Sendable {
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

    package static func malformed(_ reason: String) -> TDNSError { TDNSError(.malformed, reason) }
    package static func policy(_ reason: String) -> TDNSError { TDNSError(.policy, reason) }
    package static func cryptoFailure(_ reason: String) -> TDNSError { TDNSError(.cryptoFailure, reason) }
    package static func tooBig(_ reason: String) -> TDNSError { TDNSError(.tooBig, reason) }
    package static func internalFailure(_ reason: String) -> TDNSError { TDNSError(.internalFailure, reason) }
}
