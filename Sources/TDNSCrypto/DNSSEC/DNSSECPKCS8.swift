import TDNSCore
import SwiftASN1

// PKCS#8 (RFC 5208 PrivateKeyInfo / RFC 5958 OneAsymmetricKey) for the DNSSEC key types the KDC
// distributes (PROTOCOL §10.2): RSA (RFC 8017 A.1.2 RSAPrivateKey), ECDSA P-256/P-384 (RFC 5915
// ECPrivateKey, RFC 5480 named curves) and Ed25519 (RFC 8410 §7). Parsing goes through
// SwiftASN1's DER parser (definite lengths, minimal integers, no trailing bytes); emitting uses the
// tiny writer below, which produces the same bytes as Go's x509.MarshalPKCS8PrivateKey.

/// The curves of the ECDSA DNSSEC algorithms.
enum DNSSECCurve: Sendable {
    case p256, p384

    /// Octets of a scalar or of one coordinate.
    var size: Int { self == .p256 ? 32 : 48 }

    var algorithm: DNSSECAlgorithm { self == .p256 ? .ecdsap256sha256 : .ecdsap384sha384 }

    /// DER of the namedCurve OID (RFC 5480 §2.1.1.1).
    var oidDER: [UInt8] {
        switch self {
        case .p256: [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]  // 1.2.840.10045.3.1.7
        case .p384: [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]  // 1.3.132.0.34
        }
    }
}

/// RSA private key components as unsigned big-endian integers without leading zero octets.
/// Held in a class so that the secret parts are zeroized when the last reference goes.
final class DNSSECRSAKey: @unchecked Sendable {
    // @unchecked: the arrays are written only by init and by deinit, when no other
    // reference can exist; every other access is a read.
    private(set) var n: [UInt8]
    private(set) var e: [UInt8]
    private(set) var d: [UInt8]
    private(set) var p: [UInt8]
    private(set) var q: [UInt8]
    private(set) var dp: [UInt8]
    private(set) var dq: [UInt8]
    private(set) var qinv: [UInt8]

    init(n: [UInt8], e: [UInt8], d: [UInt8], p: [UInt8], q: [UInt8], dp: [UInt8], dq: [UInt8], qinv: [UInt8]) {
        self.n = n
        self.e = e
        self.d = d
        self.p = p
        self.q = q
        self.dp = dp
        self.dq = dq
        self.qinv = qinv
    }

    deinit {
        zeroize(&d)
        zeroize(&p)
        zeroize(&q)
        zeroize(&dp)
        zeroize(&dq)
        zeroize(&qinv)
    }

    /// Size of the modulus in bits.
    var modulusBits: Int { dnssecBitLength(n) }
}

/// What a PKCS#8 document held. Scalars and seeds are secrets the receiver zeroizes.
enum DNSSECParsedKey {
    case rsa(DNSSECRSAKey)
    /// `point` is the optional public key of the ECPrivateKey (SEC 1 encoding, with its prefix).
    case ecdsa(DNSSECCurve, scalar: [UInt8], point: [UInt8]?)
    /// `publicKey` is the optional OneAsymmetricKey public key (32 octets).
    case ed25519(seed: [UInt8], publicKey: [UInt8]?)
}

enum DNSSECPKCS8 {
    /// Smallest and largest RSA modulus accepted, in bits (RFC 3110 §2 allows 512–4096; BIND and
    /// current practice refuse less than 1024).
    static let rsaModulusBits = 1024...4096
    /// Longest RSA public exponent accepted, in octets: OpenSSL refuses exponents over 64 bits
    /// for large moduli (OPENSSL_RSA_MAX_PUBEXP_BITS), so BIND could not use such a key.
    static let rsaMaxExponentOctets = 8

    // RFC 8410 §3 / RFC 5480 / RFC 8017 object identifiers, as components.
    private static let ed25519OID: [UInt] = [1, 3, 101, 112]
    private static let unsupportedKeyOIDs: [[UInt]: String] = [
        [1, 3, 101, 113]: "Ed448",
        [1, 3, 101, 110]: "X25519",
        [1, 3, 101, 111]: "X448",
        [1, 2, 840, 113549, 1, 1, 10]: "RSASSA-PSS",
        [1, 2, 840, 10040, 4, 1]: "DSA",
    ]
    private static let curveNames: [[UInt]: String] = [
        [1, 3, 132, 0, 10]: "secp256k1",
        [1, 3, 132, 0, 35]: "P-521",
    ]

    /// Parses a PKCS#8 DER document.
    ///
    /// - Throws: `.policy` for key types, curves or RSA shapes outside the DNSSEC algorithms this
    ///   library supports; `.malformed` for anything that is not such a document.
    static func parse(_ der: [UInt8]) throws(TDNSError) -> DNSSECParsedKey {
        do {
            return try parseUntyped(der)
        } catch let error as TDNSError {
            throw error
        } catch {
            throw .malformed("PKCS#8 private key is not valid DER")
        }
    }

    private static func parseUntyped(_ der: [UInt8]) throws -> DNSSECParsedKey {
        let root = try DER.parse(der)
        return try DER.sequence(root, identifier: .sequence) { nodes in
            let version = try Int(derEncoded: &nodes)
            guard version == 0 || version == 1 else {
                throw TDNSError.malformed("PKCS#8 version \(version) is not 0 or 1")
            }
            guard let algorithmNode = nodes.next() else {
                throw TDNSError.malformed("PKCS#8 has no privateKeyAlgorithm")
            }
            let (oid, parameters) = try DER.sequence(algorithmNode, identifier: .sequence) {
                inner -> (ASN1ObjectIdentifier, ASN1Node?) in
                let oid = try ASN1ObjectIdentifier(derEncoded: &inner)
                return (oid, inner.next())
            }
            let privateKey = try ASN1OctetString(derEncoded: &nodes)
            // [0] IMPLICIT Attributes: allowed, ignored.
            _ = DER.optionalImplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { $0 }
            // [1] IMPLICIT publicKey: only in a v2 (version 1) OneAsymmetricKey.
            let publicKey: ASN1BitString? = try DER.optionalImplicitlyTagged(
                &nodes, tag: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific))
            if publicKey != nil, version == 0 {
                throw TDNSError.malformed("PKCS#8 version 0 carries a public key")
            }

            if oid == ASN1ObjectIdentifier.AlgorithmIdentifier.rsaEncryption {
                // RFC 8017 A.1: parameters NULL (absent is tolerated, as OpenSSL does).
                if let parameters {
                    _ = try ASN1Null(derEncoded: parameters)
                }
                return .rsa(try parseRSAPrivateKey(privateKey.bytes))
            }
            if oid == ASN1ObjectIdentifier.AlgorithmIdentifier.idEcPublicKey {
                guard let parameters, parameters.identifier == .objectIdentifier else {
                    throw TDNSError.malformed("EC key without a namedCurve parameter")
                }
                let curveOID = try ASN1ObjectIdentifier(derEncoded: parameters)
                let curve: DNSSECCurve
                if curveOID == ASN1ObjectIdentifier.NamedCurves.secp256r1 {
                    curve = .p256
                } else if curveOID == ASN1ObjectIdentifier.NamedCurves.secp384r1 {
                    curve = .p384
                } else {
                    let name = curveNames[curveOID.oidComponents] ?? curveOID.description
                    throw TDNSError.policy("unsupported EC curve \(name): DNSSEC uses P-256 and P-384")
                }
                return try parseECPrivateKey(privateKey.bytes, curve: curve, curveOID: curveOID)
            }
            let components = oid.oidComponents
            if components == ed25519OID {
                // RFC 8410 §3: parameters MUST be absent.
                guard parameters == nil else {
                    throw TDNSError.malformed("Ed25519 AlgorithmIdentifier has parameters")
                }
                let seed = try ASN1OctetString(derEncoded: privateKey.bytes)
                guard seed.bytes.count == 32 else {
                    throw TDNSError.malformed("Ed25519 private key is \(seed.bytes.count) octets, not 32")
                }
                var raw: [UInt8]? = nil
                if let publicKey {
                    guard publicKey.paddingBits == 0, publicKey.bytes.count == 32 else {
                        throw TDNSError.malformed("Ed25519 public key in PKCS#8 is not 32 octets")
                    }
                    raw = Array(publicKey.bytes)
                }
                return .ed25519(seed: Array(seed.bytes), publicKey: raw)
            }
            let name = unsupportedKeyOIDs[components] ?? oid.description
            throw TDNSError.policy("unsupported key type \(name)")
        }
    }

    /// RFC 8017 A.1.2, two-prime form only.
    private static func parseRSAPrivateKey(_ der: ArraySlice<UInt8>) throws -> DNSSECRSAKey {
        let root = try DER.parse(der)
        return try DER.sequence(root, identifier: .sequence) { nodes in
            let version = try Int(derEncoded: &nodes)
            guard version == 0 else {
                throw TDNSError.policy("multi-prime RSA keys are not supported")
            }
            func next() throws -> [UInt8] { Array(try ArraySlice<UInt8>(derEncoded: &nodes)) }
            let key = DNSSECRSAKey(
                n: try next(), e: try next(), d: try next(), p: try next(), q: try next(),
                dp: try next(), dq: try next(), qinv: try next())
            try checkRSA(key)
            return key
        }
    }

    private static func checkRSA(_ key: DNSSECRSAKey) throws(TDNSError) {
        let bits = key.modulusBits
        guard let last = key.n.last, last & 1 == 1 else { throw .malformed("RSA modulus is not odd") }
        guard rsaModulusBits.contains(bits) else {
            throw .policy("RSA modulus of \(bits) bits is outside \(rsaModulusBits.lowerBound)–\(rsaModulusBits.upperBound)")
        }
        guard let eLast = key.e.last, eLast & 1 == 1, key.e != [1] else {
            throw .malformed("RSA public exponent must be odd and at least 3")
        }
        guard key.e.count <= rsaMaxExponentOctets else {
            throw .policy("RSA public exponent longer than \(rsaMaxExponentOctets * 8) bits")
        }
        for (name, value) in [("d", key.d), ("p", key.p), ("q", key.q), ("dp", key.dp), ("dq", key.dq), ("qinv", key.qinv)] {
            guard !value.isEmpty, value.count <= key.n.count else {
                throw .malformed("RSA private component \(name) is zero or longer than the modulus")
            }
        }
    }

    /// RFC 5915 §3, version 1; the optional parameters must name the same curve as the
    /// AlgorithmIdentifier.
    private static func parseECPrivateKey(
        _ der: ArraySlice<UInt8>, curve: DNSSECCurve, curveOID: ASN1ObjectIdentifier
    ) throws -> DNSSECParsedKey {
        let root = try DER.parse(der)
        return try DER.sequence(root, identifier: .sequence) { nodes in
            let version = try Int(derEncoded: &nodes)
            guard version == 1 else { throw TDNSError.malformed("ECPrivateKey version \(version) is not 1") }
            let scalar = try ASN1OctetString(derEncoded: &nodes)
            guard (1...curve.size).contains(scalar.bytes.count) else {
                throw TDNSError.malformed("EC private key is \(scalar.bytes.count) octets, expected \(curve.size)")
            }
            let inner = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                try ASN1ObjectIdentifier(derEncoded: $0)
            }
            if let inner, inner != curveOID {
                throw TDNSError.malformed("ECPrivateKey parameters name another curve")
            }
            let point = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) {
                try ASN1BitString(derEncoded: $0)
            }
            if let point, point.paddingBits != 0 {
                throw TDNSError.malformed("EC public key bit string has padding")
            }
            // Left-pad a short scalar (RFC 5915 asks for the full length; some encoders trim).
            let padded = [UInt8](repeating: 0, count: curve.size - scalar.bytes.count) + scalar.bytes
            return .ecdsa(curve, scalar: padded, point: point.map { Array($0.bytes) })
        }
    }

    // MARK: - writing

    /// PKCS#8 v1 (version 0) with `algorithmIdentifier` (full DER) and `privateKey` (the content
    /// of the OCTET STRING). The caller owns (zeroizes) the result.
    static func encode(algorithmIdentifier: [UInt8], privateKey: [UInt8]) -> [UInt8] {
        var content: [UInt8] = [0x02, 0x01, 0x00] + algorithmIdentifier
        defer { zeroize(&content) }
        content += DNSSECDER.tlvHeader(0x04, count: privateKey.count)
        content += privateKey
        return DNSSECDER.tlv(0x30, content)
    }

    /// Go's MarshalPKCS8PrivateKey for ECDSA: ECPrivateKey { 1, d (full length), [1] point }
    /// without the [0] parameters (they are in the AlgorithmIdentifier).
    static func encodeEC(curve: DNSSECCurve, scalar: [UInt8], uncompressedPoint: [UInt8]) -> [UInt8] {
        var content: [UInt8] = [0x02, 0x01, 0x01] + DNSSECDER.tlvHeader(0x04, count: scalar.count)
        defer { zeroize(&content) }
        content += scalar
        content += DNSSECDER.tlv(0xa1, DNSSECDER.tlv(0x03, [0x00] + uncompressedPoint))
        var ecPrivateKey = DNSSECDER.tlv(0x30, content)
        defer { zeroize(&ecPrivateKey) }
        // AlgorithmIdentifier { id-ecPublicKey 1.2.840.10045.2.1, namedCurve }
        let algorithm = DNSSECDER.tlv(
            0x30, [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01] + curve.oidDER)
        return encode(algorithmIdentifier: algorithm, privateKey: ecPrivateKey)
    }

    /// RFC 8410 §7: `302e020100300506032b657004220420` ‖ seed (PROTOCOL §10.2).
    static func encodeEd25519(seed: [UInt8]) -> [UInt8] {
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20] + seed
    }

    /// RFC 8017 A.1.2 inside PKCS#8 with `rsaEncryption` and NULL parameters (as Go writes it).
    static func encodeRSA(_ key: DNSSECRSAKey) -> [UInt8] {
        var body: [UInt8] = [0x02, 0x01, 0x00]
        defer { zeroize(&body) }
        for value in [key.n, key.e, key.d, key.p, key.q, key.dp, key.dq, key.qinv] {
            var integer = DNSSECDER.unsignedInteger(value)
            body += integer
            zeroize(&integer)
        }
        var rsaPrivateKey = DNSSECDER.tlv(0x30, body)
        defer { zeroize(&rsaPrivateKey) }
        // AlgorithmIdentifier { rsaEncryption 1.2.840.113549.1.1.1, NULL }
        let algorithm: [UInt8] = [
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ]
        return encode(algorithmIdentifier: algorithm, privateKey: rsaPrivateKey)
    }
}

/// A minimal DER writer: definite lengths, no failure paths.
enum DNSSECDER {
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var out = tlvHeader(tag, count: content.count)
        out.reserveCapacity(out.count + content.count)
        out += content
        return out
    }

    /// Tag and definite length of a TLV whose content has `count` octets.
    static func tlvHeader(_ tag: UInt8, count n: Int) -> [UInt8] {
        var out: [UInt8] = [tag]
        if n < 0x80 {
            out.append(UInt8(truncatingIfNeeded: n))
        } else {
            var lengthOctets: [UInt8] = []
            var rest = n
            while rest > 0 {
                lengthOctets.insert(UInt8(truncatingIfNeeded: rest & 0xff), at: 0)
                rest >>= 8
            }
            out.append(0x80 | UInt8(truncatingIfNeeded: lengthOctets.count))
            out += lengthOctets
        }
        return out
    }

    /// INTEGER of a non-negative big-endian magnitude: leading zeros dropped, one 0x00 added
    /// when the top bit is set, `02 01 00` for zero.
    static func unsignedInteger(_ magnitude: [UInt8]) -> [UInt8] {
        var body = Array(magnitude.drop(while: { $0 == 0 }))
        defer { zeroize(&body) }
        if body.first.map({ $0 & 0x80 != 0 }) ?? true { body.insert(0, at: 0) }
        return tlv(0x02, body)
    }
}

/// Bits in an unsigned big-endian integer (0 for zero).
func dnssecBitLength(_ bytes: [UInt8]) -> Int {
    guard let first = bytes.firstIndex(where: { $0 != 0 }) else { return 0 }
    return (bytes.count - first - 1) * 8 + (8 - bytes[first].leadingZeroBitCount)
}
