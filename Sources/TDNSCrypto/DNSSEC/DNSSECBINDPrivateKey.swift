import TDNSCore
import Crypto

// BIND's private key file (`K<zone>+<alg>+<tag>.private`), the reading half of
// `DNSSECPrivateKey.bindPrivateKeyFile(created:publish:activate:)`: what `dnssec-keygen`
// (BIND 9.x) writes and `key import` of the reference KDC reads.
//
//     Private-key-format: v1.3
//     Algorithm: 13 (ECDSAP256SHA256)
//     PrivateKey: <base64>
//     Created: 20240101000000
//     ...
//
// RSA keys carry Modulus, PublicExponent, PrivateExponent, Prime1, Prime2, Exponent1,
// Exponent2 and Coefficient instead of PrivateKey (BIND lib/dns/opensslrsa_link.c).

/// What a BIND `.private` file holds besides the key: its format version and timing lines.
public struct BINDPrivateKeyMetadata: Sendable, Equatable {
    /// "v1.2" or "v1.3".
    public var format: String
    /// Timing and bookkeeping lines in file order (`Created`, `Publish`, `Activate`, …), values
    /// as written.
    public var fields: [BINDField]

    public struct BINDField: Sendable, Equatable {
        public var name: String
        public var value: String
    }
}

extension DNSSECPrivateKey {
    /// Format versions accepted: 1.2 (BIND 9.6–9.8) and 1.3 (BIND 9.9 onwards); both have the
    /// same key fields.
    public static let bindPrivateKeyFormats: Set<String> = ["v1.2", "v1.3"]

    /// Timing and bookkeeping fields BIND writes after the key material (lib/dns/dst_parse.c
    /// `timetags`, `numerictags`, `booleantags`, `statetags`); accepted and kept, never
    /// interpreted.
    static let bindMetadataFields: Set<String> = [
        "Created", "Publish", "Activate", "Revoke", "Inactive", "Delete", "DSPublish",
        "SyncPublish", "SyncDelete", "DNSKEYChange", "ZRRSIGChange", "KRRSIGChange", "DSChange",
        "DSRemoved", "Predecessor", "Successor", "MaxTTL", "RollPeriod", "Lifetime", "DSPubCount",
        "DSRemCount", "KSK", "ZSK", "GoalState", "DNSKEYState", "KRRSIGState", "ZRRSIGState",
        "DSState",
    ]

    private static let rsaFields = [
        "Modulus", "PublicExponent", "PrivateExponent", "Prime1", "Prime2", "Exponent1", "Exponent2", "Coefficient",
    ]

    /// Parses a BIND `Private-key-format: v1.2/v1.3` file for algorithms 8, 10 (RSA), 13, 14
    /// (ECDSA) or 15 (Ed25519).
    ///
    /// Strict: the first line is the format line, the second `Algorithm: <n> [(<mnemonic>)]`;
    /// every other line is `Name: value` with a key field of that algorithm (each exactly once)
    /// or a BIND timing field; blank lines and a final newline are allowed; anything else —
    /// an unknown field, a duplicate, a field of another algorithm, a key on an HSM (`Engine`,
    /// `Label`), non-canonical base64 — is refused. The public key is derived from the private
    /// material (RSA: checked as PKCS#8 import checks it).
    ///
    /// - Throws: `.tooBig` over ``CryptoLimits/maxKeyText`` (before parsing); `.policy` for an
    ///   algorithm outside 8, 10, 13, 14, 15, for HSM keys and RSA moduli outside 1024–4096
    ///   bits; `.malformed` otherwise. Secret intermediate buffers are zeroized.
    public init(bindPrivateKey text: [UInt8]) throws(TDNSError) {
        self = try Self.parseBINDPrivateKey(text).key
    }

    /// ``init(bindPrivateKey:)`` that also returns the file's format and timing lines.
    public static func parseBINDPrivateKey(_ text: [UInt8]) throws(TDNSError) -> (key: DNSSECPrivateKey, metadata: BINDPrivateKeyMetadata) {
        guard text.count <= CryptoLimits.maxKeyText else {
            throw .tooBig("BIND private key file is \(text.count) bytes, limit \(CryptoLimits.maxKeyText)")
        }
        var lines: [(name: String, value: ArraySlice<UInt8>)] = []
        for (number, raw) in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var line = raw
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw .malformed("BIND private key line \(number + 1) is not \"Name: value\"")
            }
            let nameBytes = line[line.startIndex..<colon]
            guard !nameBytes.isEmpty, nameBytes.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") }) else {
                throw .malformed("BIND private key line \(number + 1) has a malformed field name")
            }
            var value = line[(colon + 1)...]
            while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
            while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
            lines.append((String(decoding: nameBytes, as: UTF8.self), value))
        }

        guard lines.count >= 2, lines[0].name == "Private-key-format" else {
            throw .malformed("BIND private key file must start with \"Private-key-format:\"")
        }
        let format = String(decoding: lines[0].value, as: UTF8.self)
        guard bindPrivateKeyFormats.contains(format) else {
            throw .malformed("BIND private key format \"\(format.prefix(16))\" is not v1.2 or v1.3")
        }
        guard lines[1].name == "Algorithm" else {
            throw .malformed("BIND private key file: second line must be \"Algorithm:\"")
        }
        let algorithm = try parseAlgorithmLine(lines[1].value)

        var material: [String: [UInt8]] = [:]
        defer {
            // Take each buffer out before clearing it: zeroizing a copy that still shares its
            // storage with the dictionary's value would clear a fresh copy (copy-on-write).
            for name in Array(material.keys) {
                if var secret = material.removeValue(forKey: name) { zeroize(&secret) }
            }
        }
        var metadata: [BINDPrivateKeyMetadata.BINDField] = []
        var seenMetadata: Set<String> = []
        let keyFields = algorithm.isRSA ? rsaFields : ["PrivateKey"]
        for (name, value) in lines.dropFirst(2) {
            if keyFields.contains(name) {
                guard material[name] == nil else { throw .malformed("BIND private key file repeats \(name)") }
                do {
                    material[name] = try Base64.decode(value)
                } catch {
                    throw .malformed("BIND private key field \(name) is not canonical base64")
                }
            } else if bindMetadataFields.contains(name) {
                guard seenMetadata.insert(name).inserted else { throw .malformed("BIND private key file repeats \(name)") }
                metadata.append(.init(name: name, value: String(decoding: value, as: UTF8.self)))
            } else if name == "Engine" || name == "Label" {
                throw .policy("BIND private key refers to an HSM (\(name)); only keys held in the file can be imported")
            } else {
                throw .malformed("BIND private key file has an unexpected field \"\(name.prefix(32))\" for algorithm \(algorithm.rawValue)")
            }
        }
        for name in keyFields where material[name] == nil {
            throw .malformed("BIND private key file lacks \(name)")
        }

        let key: DNSSECPrivateKey
        switch algorithm {
        case .rsasha256, .rsasha512:
            func field(_ n: String) -> [UInt8] { Array((material[n] ?? []).drop(while: { $0 == 0 })) }
            let rsa = DNSSECRSAKey(
                n: field("Modulus"), e: field("PublicExponent"), d: field("PrivateExponent"),
                p: field("Prime1"), q: field("Prime2"), dp: field("Exponent1"), dq: field("Exponent2"),
                qinv: field("Coefficient"))
            // Through PKCS#8 so that the same shape checks apply as to a distributed RSA key.
            var der = DNSSECPKCS8.encodeRSA(rsa)
            defer { zeroize(&der) }
            key = try DNSSECPrivateKey(pkcs8DER: der, algorithm: algorithm)
        case .ecdsap256sha256, .ecdsap384sha384:
            let size = algorithm == .ecdsap256sha256 ? 32 : 48
            let raw = material["PrivateKey"] ?? []
            // BIND writes the full length; older OpenSSL-based writers could drop leading zeros.
            guard (1...size).contains(raw.count) else {
                throw .malformed("ECDSA private key is \(raw.count) octets, expected \(size)")
            }
            var scalar = [UInt8](repeating: 0, count: size - raw.count) + raw
            defer { zeroize(&scalar) }
            do {
                if size == 32 {
                    key = DNSSECPrivateKey(material: .p256(try P256.Signing.PrivateKey(rawRepresentation: scalar)), algorithm: algorithm)
                } else {
                    key = DNSSECPrivateKey(material: .p384(try P384.Signing.PrivateKey(rawRepresentation: scalar)), algorithm: algorithm)
                }
            } catch {
                throw .malformed("ECDSA private key is not a valid scalar for the curve")
            }
        case .ed25519:
            let raw = material["PrivateKey"] ?? []
            guard raw.count == 32 else { throw .malformed("Ed25519 private key is \(raw.count) octets, expected 32") }
            do {
                key = DNSSECPrivateKey(material: .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: raw)), algorithm: algorithm)
            } catch {
                throw .malformed("Ed25519 private key rejected")
            }
        default:
            throw .policy("BIND private key algorithm \(algorithm.rawValue) is not supported (8, 10, 13, 14, 15)")
        }
        return (key, BINDPrivateKeyMetadata(format: format, fields: metadata))
    }

    /// `13`, `13 (ECDSAP256SHA256)`: the number decides; a mnemonic, when present, must name it.
    private static func parseAlgorithmLine(_ value: ArraySlice<UInt8>) throws(TDNSError) -> DNSSECAlgorithm {
        let digits = value.prefix(while: { $0 >= 0x30 && $0 <= 0x39 })
        guard !digits.isEmpty, digits.count <= 3, let n = UInt8(String(decoding: digits, as: UTF8.self)) else {
            throw .malformed("BIND private key Algorithm line does not start with a number")
        }
        let algorithm = DNSSECAlgorithm(rawValue: n)
        var rest = value.dropFirst(digits.count)
        while let f = rest.first, f == 0x20 || f == 0x09 { rest = rest.dropFirst() }
        if !rest.isEmpty {
            guard rest.first == UInt8(ascii: "("), rest.last == UInt8(ascii: ")") else {
                throw .malformed("BIND private key Algorithm line has trailing text")
            }
            let name = String(decoding: rest.dropFirst().dropLast(), as: UTF8.self)
            if let known = algorithm.mnemonic, known.uppercased() != name.uppercased() {
                throw .malformed("BIND private key Algorithm \(n) is not \(name.prefix(24))")
            }
        }
        guard [.rsasha256, .rsasha512, .ecdsap256sha256, .ecdsap384sha384, .ed25519].contains(algorithm) else {
            throw .policy("BIND private key algorithm \(n) is not supported (8, 10, 13, 14, 15)")
        }
        return algorithm
    }
}

private func isAlphanumeric(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
}
