import TDNSCore
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A DNSSEC signing key as the KDC distributes it (PROTOCOL §10.2 `roll_key.private_key`: a PEM
/// PKCS#8 block) and as BIND (`K<zone>+<alg>+<tag>.private`, v1.3) and Knot (`keymgr import-bind`)
/// read it.
///
/// Supported: RSASHA256 (8) and RSASHA512 (10) keys of 1024–4096 bits (parse, DNSKEY, BIND file,
/// PKCS#8; no signing), ECDSAP256SHA256 (13), ECDSAP384SHA384 (14) and ED25519 (15) (everything).
/// Secrets are held by swift-crypto key objects or zeroized on release; nothing here logs them.
public struct DNSSECPrivateKey: Sendable {
    enum Material: Sendable {
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
        case rsa(DNSSECRSAKey)
    }

    let material: Material

    /// The DNSSEC algorithm the key is used with.
    public let algorithm: DNSSECAlgorithm

    /// The DNSKEY public-key field: RFC 3110 §2 for RSA (exponent length ‖ exponent ‖ modulus),
    /// RFC 6605 §4 for ECDSA (x ‖ y), RFC 8080 §3 for Ed25519 (the 32-octet public key).
    /// Derived from the private key, never taken from the input.
    public let dnskeyPublicKey: [UInt8]

    /// Parses the PEM text of an unencrypted PKCS#8 private key (one `-----BEGIN PRIVATE KEY-----`
    /// block) for use with `algorithm`.
    ///
    /// - Throws: `.tooBig` over ``CryptoLimits/maxKeyText`` (16 KiB, before parsing);
    ///   `.policy` for an algorithm outside 8, 10, 13, 14, 15, a key of another type or curve
    ///   than `algorithm` needs, an RSA modulus outside 1024–4096 bits, or an encrypted key;
    ///   `.malformed` for anything that is not a well-formed key.
    public init(pkcs8PEM pem: [UInt8], algorithm: DNSSECAlgorithm) throws(TDNSError) {
        var der = try DNSSECPEM.decodePrivateKey(pem)
        defer { zeroize(&der) }
        try self.init(pkcs8DER: der, algorithm: algorithm)
    }

    /// Parses a DER PKCS#8 private key; same rules and errors as ``init(pkcs8PEM:algorithm:)``.
    /// `der` stays the caller's secret to zeroize.
    public init(pkcs8DER der: [UInt8], algorithm: DNSSECAlgorithm) throws(TDNSError) {
        guard der.count <= CryptoLimits.maxKeyText else {
            throw .tooBig("PKCS#8 private key is \(der.count) bytes, limit \(CryptoLimits.maxKeyText)")
        }
        guard [.rsasha256, .rsasha512, .ecdsap256sha256, .ecdsap384sha384, .ed25519].contains(algorithm) else {
            throw .policy("unsupported DNSSEC algorithm \(algorithm.rawValue)")
        }
        switch try DNSSECPKCS8.parse(der) {
        case .rsa(let key):
            guard algorithm.isRSA else { throw Self.mismatch("an RSA key", algorithm) }
            self.init(material: .rsa(key), algorithm: algorithm)

        case .ecdsa(let curve, var scalar, let point):
            defer { zeroize(&scalar) }
            guard algorithm == curve.algorithm else {
                throw Self.mismatch(curve == .p256 ? "a P-256 key" : "a P-384 key", algorithm)
            }
            let material: Material
            let x963: Data
            let compressed: Data
            do {
                switch curve {
                case .p256:
                    let key = try P256.Signing.PrivateKey(rawRepresentation: scalar)
                    material = .p256(key)
                    (x963, compressed) = (key.publicKey.x963Representation, key.publicKey.compressedRepresentation)
                case .p384:
                    let key = try P384.Signing.PrivateKey(rawRepresentation: scalar)
                    material = .p384(key)
                    (x963, compressed) = (key.publicKey.x963Representation, key.publicKey.compressedRepresentation)
                }
            } catch {
                throw .malformed("EC private key is not a valid scalar for the curve")
            }
            if let point, !(point.elementsEqual(x963) || point.elementsEqual(compressed)) {
                throw .malformed("EC public key in the PKCS#8 does not match the private key")
            }
            self.init(material: material, algorithm: algorithm)

        case .ed25519(var seed, let publicKey):
            defer { zeroize(&seed) }
            guard algorithm == .ed25519 else { throw Self.mismatch("an Ed25519 key", algorithm) }
            let key: Curve25519.Signing.PrivateKey
            do {
                key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
            } catch {
                throw .malformed("Ed25519 private key rejected")
            }
            if let publicKey, !publicKey.elementsEqual(key.publicKey.rawRepresentation) {
                throw .malformed("Ed25519 public key in the PKCS#8 does not match the private key")
            }
            self.init(material: .ed25519(key), algorithm: algorithm)
        }
    }

    init(material: Material, algorithm: DNSSECAlgorithm) {
        self.material = material
        self.algorithm = algorithm
        switch material {
        case .p256(let key):
            dnskeyPublicKey = Array(key.publicKey.rawRepresentation)
        case .p384(let key):
            dnskeyPublicKey = Array(key.publicKey.rawRepresentation)
        case .ed25519(let key):
            dnskeyPublicKey = Array(key.publicKey.rawRepresentation)
        case .rsa(let key):
            dnskeyPublicKey = rfc3110PublicKey(exponent: key.e, modulus: key.n)
        }
    }

    private static func mismatch(_ what: String, _ algorithm: DNSSECAlgorithm) -> TDNSError {
        .policy("unsupported/mismatched algorithm: \(what) cannot be used with algorithm \(algorithm.rawValue) (\(algorithm))")
    }

    /// A new random key for ECDSAP256SHA256 (13), ECDSAP384SHA384 (14) or ED25519 (15).
    ///
    /// - Throws: `.policy` for any other algorithm (RSA keys are not generated here).
    public static func generate(algorithm: DNSSECAlgorithm) throws(TDNSError) -> DNSSECPrivateKey {
        switch algorithm {
        case .ecdsap256sha256:
            DNSSECPrivateKey(material: .p256(P256.Signing.PrivateKey(compactRepresentable: false)), algorithm: algorithm)
        case .ecdsap384sha384:
            DNSSECPrivateKey(material: .p384(P384.Signing.PrivateKey(compactRepresentable: false)), algorithm: algorithm)
        case .ed25519:
            DNSSECPrivateKey(material: .ed25519(Curve25519.Signing.PrivateKey()), algorithm: algorithm)
        default:
            throw .policy("key generation for DNSSEC algorithm \(algorithm.rawValue) is not supported")
        }
    }

    /// The RFC 4034 Appendix B key tag of the DNSKEY with these `flags` (protocol 3).
    public func keyTag(flags: UInt16) -> UInt16 {
        dnssecKeyTag(flags: flags, protocol: 3, algorithm: algorithm.rawValue, publicKey: dnskeyPublicKey)
    }

    /// The matching public key.
    ///
    /// - Throws: `.policy` for RSA (no RSA verification in this library).
    public func publicKey() throws(TDNSError) -> DNSSECPublicKey {
        try DNSSECPublicKey(algorithm: algorithm, dnskeyPublicKey: dnskeyPublicKey)
    }

    /// Size of an RSA modulus in bits; nil for other key types.
    public var rsaModulusBits: Int? {
        if case .rsa(let key) = material { return key.modulusBits }
        return nil
    }

    /// The key as PEM PKCS#8 text, byte for byte what Go's `x509.MarshalPKCS8PrivateKey` +
    /// `pem.Encode` give (the KDC's `private_key` before its base64, PROTOCOL §10.2).
    ///
    /// The caller owns the returned secret and should `zeroize` it after use.
    public func pkcs8PEM() -> [UInt8] {
        var der = pkcs8DER()
        defer { zeroize(&der) }
        return DNSSECPEM.encode(label: DNSSECPEM.privateKeyLabel, der: der)
    }

    /// The key as DER PKCS#8. The caller owns the returned secret.
    public func pkcs8DER() -> [UInt8] {
        switch material {
        case .p256(let key):
            var scalar = secretBytes(key.rawRepresentation)
            defer { zeroize(&scalar) }
            return DNSSECPKCS8.encodeEC(curve: .p256, scalar: scalar, uncompressedPoint: Array(key.publicKey.x963Representation))
        case .p384(let key):
            var scalar = secretBytes(key.rawRepresentation)
            defer { zeroize(&scalar) }
            return DNSSECPKCS8.encodeEC(curve: .p384, scalar: scalar, uncompressedPoint: Array(key.publicKey.x963Representation))
        case .ed25519(let key):
            var seed = secretBytes(key.rawRepresentation)
            defer { zeroize(&seed) }
            return DNSSECPKCS8.encodeEd25519(seed: seed)
        case .rsa(let key):
            return DNSSECPKCS8.encodeRSA(key)
        }
    }

    /// Signs `data` (for DNSSEC: RRSIG RDATA without the signature ‖ canonical RRset; for SIG(0):
    /// SIG RDATA ‖ message, RFC 2931 §3.1) and returns the DNSSEC signature encoding:
    /// r ‖ s of 32 (P-256/SHA-256) or 48 (P-384/SHA-384) octets each (RFC 6605 §4), or the
    /// 64-octet Ed25519 signature (RFC 8080 §4).
    ///
    /// - Throws: `.policy` for RSA keys; `.cryptoFailure` if the signer fails.
    public func sign(_ data: [UInt8]) throws(TDNSError) -> [UInt8] {
        do {
            switch material {
            case .p256(let key):
                return Array(try key.signature(for: data).rawRepresentation)
            case .p384(let key):
                return Array(try key.signature(for: data).rawRepresentation)
            case .ed25519(let key):
                return Array(try key.signature(for: data))
            case .rsa:
                throw TDNSError.policy("RSA signing is not supported")
            }
        } catch let error as TDNSError {
            throw error
        } catch {
            throw .cryptoFailure("DNSSEC signing failed")
        }
    }

    /// The key as a BIND `Private-key-format: v1.3` file, exactly as `dnssec-keygen` (BIND 9.18)
    /// writes it and as `dnssec-signzone`, `named` and Knot's `keymgr import-bind` read it:
    ///
    /// ```
    /// Private-key-format: v1.3
    /// Algorithm: 13 (ECDSAP256SHA256)
    /// PrivateKey: <base64 of the 32/48-octet scalar or the 32-octet Ed25519 seed>
    /// Created: 20240101000000
    /// Publish: 20240101000000
    /// Activate: 20240101000000
    /// ```
    ///
    /// RSA keys carry `Modulus`, `PublicExponent`, `PrivateExponent`, `Prime1`, `Prime2`,
    /// `Exponent1`, `Exponent2`, `Coefficient` (unsigned big-endian, base64) in place of
    /// `PrivateKey`. Times are Unix seconds printed as UTC `YYYYMMDDHHMMSS`; BIND keeps them as
    /// unsigned 32-bit seconds, so values are clamped to 1970-01-01 … 2106-02-07. A nil
    /// `publish` or `activate` omits the line (BIND then never publishes or activates the key).
    ///
    /// The caller owns the returned secret: write it to a file of mode 0600 and `zeroize` it.
    public func bindPrivateKeyFile(created: Int64, publish: Int64?, activate: Int64?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(2048)
        out += Array("Private-key-format: v1.3\n".utf8)
        out += Array("Algorithm: \(algorithm.rawValue) (\(algorithm))\n".utf8)

        func field(_ name: String, _ value: [UInt8]) {
            var b64 = Base64.encodeBytes(value)
            defer { zeroize(&b64) }
            out += Array("\(name): ".utf8)
            out += b64
            out.append(UInt8(ascii: "\n"))
        }

        switch material {
        case .p256(let key):
            var scalar = secretBytes(key.rawRepresentation)
            defer { zeroize(&scalar) }
            field("PrivateKey", scalar)
        case .p384(let key):
            var scalar = secretBytes(key.rawRepresentation)
            defer { zeroize(&scalar) }
            field("PrivateKey", scalar)
        case .ed25519(let key):
            var seed = secretBytes(key.rawRepresentation)
            defer { zeroize(&seed) }
            field("PrivateKey", seed)
        case .rsa(let key):
            field("Modulus", key.n)
            field("PublicExponent", key.e)
            field("PrivateExponent", key.d)
            field("Prime1", key.p)
            field("Prime2", key.q)
            field("Exponent1", key.dp)
            field("Exponent2", key.dq)
            field("Coefficient", key.qinv)
        }
        out += Array("Created: \(DNSTime.format(created))\n".utf8)
        if let publish { out += Array("Publish: \(DNSTime.format(publish))\n".utf8) }
        if let activate { out += Array("Activate: \(DNSTime.format(activate))\n".utf8) }
        return out
    }
}

/// RFC 3110 §2: exponent length (one octet, or 0 and two octets when over 255) ‖ exponent ‖
/// modulus, all unsigned big-endian without leading zeros.
func rfc3110PublicKey(exponent: [UInt8], modulus: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(3 + exponent.count + modulus.count)
    if exponent.count <= 255 {
        out.append(UInt8(truncatingIfNeeded: exponent.count))
    } else {
        out += [0, UInt8(truncatingIfNeeded: exponent.count >> 8), UInt8(truncatingIfNeeded: exponent.count)]
    }
    out += exponent
    out += modulus
    return out
}

/// Copies a secret out of a swift-crypto `Data`. The `Data` itself is left alone: for Ed25519
/// it can share memory with the key object (writing to it would change the key), and swift-crypto
/// keeps its own key storage in zeroizing buffers.
private func secretBytes(_ data: Data) -> [UInt8] {
    data.withUnsafeBytes { [UInt8]($0) }
}
