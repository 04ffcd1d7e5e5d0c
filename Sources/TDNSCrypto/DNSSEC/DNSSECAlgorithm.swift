import TDNSCore

/// A DNSSEC algorithm number (RFC 4034 §A.1; IANA "DNS Security Algorithm Numbers").
///
/// An open set: any octet can be carried (a DNSKEY of an unknown algorithm is still a DNSKEY);
/// what this library can do with a given number is decided where keys are parsed.
public struct DNSSECAlgorithm: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    /// RSA/SHA-256, RFC 5702 §2 (PKCS #1 v1.5 signatures; DNSKEY per RFC 3110 §2).
    public static let rsasha256 = DNSSECAlgorithm(8)
    /// RSA/SHA-512, RFC 5702 §2. Keys are parsed; signing needs RSA support (not built in).
    public static let rsasha512 = DNSSECAlgorithm(10)
    /// ECDSA on P-256 with SHA-256, RFC 6605 §2 (DNSKEY x ‖ y, signature r ‖ s, 32 octets each).
    public static let ecdsap256sha256 = DNSSECAlgorithm(13)
    /// ECDSA on P-384 with SHA-384, RFC 6605 §2 (48 octets each).
    public static let ecdsap384sha384 = DNSSECAlgorithm(14)
    /// Ed25519, RFC 8080 §3 (32-octet public key, 64-octet signature).
    public static let ed25519 = DNSSECAlgorithm(15)

    /// The mnemonic BIND prints for this number (`Algorithm: 13 (ECDSAP256SHA256)` in a
    /// `.private` file, the `-a` argument of `dnssec-keygen`), or nil for a number BIND
    /// does not name.
    public var mnemonic: String? {
        switch rawValue {
        case 1: "RSAMD5"
        case 2: "DH"
        case 3: "DSA"
        case 5: "RSASHA1"
        case 6: "NSEC3DSA"
        case 7: "NSEC3RSASHA1"
        case 8: "RSASHA256"
        case 10: "RSASHA512"
        case 12: "ECCGOST"
        case 13: "ECDSAP256SHA256"
        case 14: "ECDSAP384SHA384"
        case 15: "ED25519"
        case 16: "ED448"
        default: nil
        }
    }

    /// Looks up a BIND mnemonic, ignoring ASCII case (`"ecdsap256sha256"` → 13).
    public init?(mnemonic: String) {
        let wanted = mnemonic.uppercased()
        for n in [1, 2, 3, 5, 6, 7, 8, 10, 12, 13, 14, 15, 16] as [UInt8] {
            let candidate = DNSSECAlgorithm(n)
            if candidate.mnemonic == wanted {
                self = candidate
                return
            }
        }
        return nil
    }

    /// The mnemonic when there is one, else the decimal number.
    public var description: String { mnemonic ?? String(rawValue) }

    /// True for the RSA algorithms whose keys this library parses (8 and 10).
    var isRSA: Bool { self == .rsasha256 || self == .rsasha512 }
}
