/// A failure anywhere in libtdnskrs: a stable code, a reason for humans, and where it was
/// raised.
///
/// The code maps 1:1 onto a `KRS_E…` return code of the C API (see `Include/tdnskrs/common.h`);
/// the reason never contains key material or plaintext. Two errors are equal when their codes
/// are (as swift-asn1's `ASN1Error`): the reason and the source location are for people.
///
/// `file` and `line` say where the error was made, for a developer reading a test failure or
/// ``debugDescription``; they are never part of ``description`` or ``reason``, which is all a
/// host operator sees (log lines, `krs_last_error`, status JSON).
public struct TDNSError: Error, Equatable, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// What kind of failure: an open set of `static let` values (STYLE §12, as swift-asn1's
    /// `ErrorCode`), so that a new code is an addition, not a change to every `switch`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name; also its text in audit lines and status details (`"malformed"`).
        public let name: String

        /// A code named `name`. Codes are compared by name: define each once, as a
        /// `static let`, and give it a `KRS_E…` value in the C-ABI target's table.
        public init(_ name: String) { self.name = name }

        public var description: String { name }

        /// Authentication tag, signature or key agreement failed (`KRS_ECRYPTO`).
        public static let cryptoFailure = Code("cryptoFailure")
        /// Key of the wrong kind for the operation (`KRS_EKEYTYPE`).
        public static let wrongKeyType = Code("wrongKeyType")
        /// Input is not well-formed: hex, JSON, JWK, JWE, base64, lengths (`KRS_EMALFORMED`).
        public static let malformed = Code("malformed")
        /// Input exceeds a size limit; rejected before parsing (`KRS_ETOOBIG`).
        public static let tooBig = Code("tooBig")
        /// Well-formed but refused by policy: algorithm not allowed, `crit`, `zip` (`KRS_EPOLICY`).
        public static let policy = Code("policy")
        /// Anything else: a library we call failed unexpectedly (`KRS_ERROR`).
        public static let internalFailure = Code("internalFailure")
        /// A signature or HMAC over a distribution or manifest did not verify (`KRS_EAUTH`).
        public static let authentication = Code("authentication")
        /// An unsigned (HMAC-only) distribution while signatures are required (`KRS_EUNSIGNED`).
        public static let unsigned = Code("unsigned")
        /// The distribution ID was processed before (`KRS_EREPLAY`).
        public static let replay = Code("replay")
        /// Timestamp too old or in the future, or a JWT outside its validity (`KRS_ESTALE`).
        public static let stale = Code("stale")
        /// Writing to or removing from the key store or state directory failed (`KRS_ESTORAGE`).
        public static let storage = Code("storage")
        /// A setting is unknown, malformed or inconsistent (`KRS_ECONFIG`).
        public static let config = Code("config")
        /// Meant for another node, or not the distribution that was asked for (`KRS_EWRONGNODE`).
        public static let wrongNode = Code("wrongNode")
        /// Key material does not match its description: key tag ≠ key_id, private key ≠ DNSKEY
        /// (`KRS_EKEYMISMATCH`).
        public static let keyMismatch = Code("keyMismatch")
        /// A network operation failed: connection refused or reset, no route (`KRS_ENETWORK`).
        public static let network = Code("network")
        /// No answer within the time allowed (`KRS_ETIMEOUT`).
        public static let timeout = Code("timeout")
        /// The peer answered, but with an error or not what was asked (`KRS_EDNS`).
        public static let dns = Code("dns")

        /// Every code this library raises, each of which has a `KRS_E…` value.
        public static let all: [Code] = [
            .cryptoFailure, .wrongKeyType, .malformed, .tooBig, .policy, .internalFailure, .authentication,
            .unsigned, .replay, .stale, .storage, .config, .wrongNode, .keyMismatch, .network, .timeout, .dns,
        ]
    }

    public let code: Code
    public let reason: String
    /// Where the error was made (`#fileID`), for debugging only.
    public let file: StaticString
    /// The line in ``file``.
    public let line: UInt

    public init(_ code: Code, _ reason: String, file: StaticString = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// The reason alone: what a host's operator may read.
    public var description: String { reason }

    /// Code, reason and source location, for developers (tests, debuggers).
    public var debugDescription: String { "\(code): \(reason) (\(file):\(line))" }

    /// Equal codes make equal errors; the reason and the location are not compared.
    public static func == (lhs: TDNSError, rhs: TDNSError) -> Bool { lhs.code == rhs.code }

    package static func malformed(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.malformed, reason, file: file, line: line)
    }
    package static func policy(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.policy, reason, file: file, line: line)
    }
    package static func cryptoFailure(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.cryptoFailure, reason, file: file, line: line)
    }
    package static func tooBig(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.tooBig, reason, file: file, line: line)
    }
    package static func internalFailure(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.internalFailure, reason, file: file, line: line)
    }
    package static func authentication(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.authentication, reason, file: file, line: line)
    }
    package static func unsigned(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.unsigned, reason, file: file, line: line)
    }
    package static func replay(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.replay, reason, file: file, line: line)
    }
    package static func stale(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.stale, reason, file: file, line: line)
    }
    package static func storage(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.storage, reason, file: file, line: line)
    }
    package static func config(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.config, reason, file: file, line: line)
    }
    package static func wrongNode(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.wrongNode, reason, file: file, line: line)
    }
    package static func keyMismatch(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.keyMismatch, reason, file: file, line: line)
    }
    package static func network(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.network, reason, file: file, line: line)
    }
    package static func timeout(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.timeout, reason, file: file, line: line)
    }
    package static func dns(_ reason: String, file: StaticString = #fileID, line: UInt = #line) -> TDNSError {
        TDNSError(.dns, reason, file: file, line: line)
    }
}
