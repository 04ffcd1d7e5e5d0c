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
        /// A signature or HMAC over a distribution or manifest did not verify (`KRS_EAUTH`).
        case authentication
        /// An unsigned (HMAC-only) distribution while signatures are required (`KRS_EUNSIGNED`).
        case unsigned
        /// The distribution ID was processed before (`KRS_EREPLAY`).
        case replay
        /// Timestamp too old or in the future, or a JWT outside its validity (`KRS_ESTALE`).
        case stale
        /// Writing to or removing from the key store or state directory failed (`KRS_ESTORAGE`).
        case storage
        /// A setting is unknown, malformed or inconsistent (`KRS_ECONFIG`).
        case config
        /// Meant for another node, or not the distribution that was asked for (`KRS_EWRONGNODE`).
        case wrongNode
        /// Key material does not match its description: key tag ≠ key_id, private key ≠ DNSKEY
        /// (`KRS_EKEYMISMATCH`).
        case keyMismatch
        /// A network operation failed: connection refused or reset, no route (`KRS_ENETWORK`).
        case network
        /// No answer within the time allowed (`KRS_ETIMEOUT`).
        case timeout
        /// The peer answered, but with an error or not what was asked (`KRS_EDNS`).
        case dns
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
    package static func authentication(_ reason: String) -> TDNSError { TDNSError(.authentication, reason) }
    package static func unsigned(_ reason: String) -> TDNSError { TDNSError(.unsigned, reason) }
    package static func replay(_ reason: String) -> TDNSError { TDNSError(.replay, reason) }
    package static func stale(_ reason: String) -> TDNSError { TDNSError(.stale, reason) }
    package static func storage(_ reason: String) -> TDNSError { TDNSError(.storage, reason) }
    package static func config(_ reason: String) -> TDNSError { TDNSError(.config, reason) }
    package static func wrongNode(_ reason: String) -> TDNSError { TDNSError(.wrongNode, reason) }
    package static func keyMismatch(_ reason: String) -> TDNSError { TDNSError(.keyMismatch, reason) }
    package static func network(_ reason: String) -> TDNSError { TDNSError(.network, reason) }
    package static func timeout(_ reason: String) -> TDNSError { TDNSError(.timeout, reason) }
    package static func dns(_ reason: String) -> TDNSError { TDNSError(.dns, reason) }
}
