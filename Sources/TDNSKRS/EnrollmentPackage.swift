import TDNSCore
import TDNSCrypto
import TDNSWire

/// The one-time enrollment package a KDC operator hands to a node, in either of two formats:
///
/// - the Go format (PROTOCOL §11.2, plus the optional fields of §19): base64 of a JSON object
///   with `token`, `node_id`, `kdc_hpke_pubkey`, `kdc_jose_pubkey`, `kdc_enrollment_address`,
///   `control_zone`; our KDC adds `kdc_signing_pubkey`, `kdc_sig0_pubkey`, `valid_until`,
///   `supported_crypto`, `default_crypto` and, for a re-enrollment, `reenroll: true`;
/// - the seed's format (`tdns-kdc enroll generate --format seed`, PROTOCOL §19): a JSON object
///   (as it is, or base64) with `version` "2.0", `crypto`, `auth_token`, `kdc_encryption_key`
///   (the KDC's JWK object for jose, base64 of its 32-byte X25519 key for hpke — 64 hex
///   characters are taken too),
///   `kdc_signing_key` (the KDC's ES256 JWK), `kdc_address`, `kdc_port`, `control_zone`,
///   `valid_until`, `capabilities` — and no node ID, which the node is given
///   (`--node-id`, `node_id=`).
///
/// Readers accept packages with or without the optional fields.
public struct EnrollmentPackage: Sendable {
    public enum Format: String, Sendable { case go, seed }

    public var format: Format
    public var token: String
    public var nodeID: String
    public var controlZone: String
    /// `IP:port` of the KDC's DNS service: enrollment, CHUNK queries and confirmations.
    public var kdcAddress: String
    public var kdcHPKEKey: HPKEPublicKey?
    public var kdcJOSEKey: JOSEPublicKey?
    /// §19: the KDC's ES256 key for signed distributions.
    public var kdcSigningKey: JOSEPublicKey?
    /// §19: the KDC's SIG(0) KEY RR, presentation text (Ed25519 or ECDSA P-256); stored at
    /// enrollment as `kdc_sig0_pubkey`, so that NOTIFYs are verified with it.
    public var kdcSIG0Key: String?
    /// §19: RFC 3339 end of validity, as given.
    public var validUntil: String?
    /// The backends the KDC offers: the package's `supported_crypto` (seed format: `crypto`),
    /// else those it has a KDC key for. Enrollment makes node keys only for these.
    public var offeredCrypto: [CryptoBackend]
    /// §19: a re-enrollment package for a node the KDC has enrolled already.
    public var reenroll: Bool

    static let maxSize = 64 * 1024

    /// Parses the package file: blank lines and `#` lines skipped, the rest joined and
    /// base64-decoded to the JSON object (or taken as it is when it is JSON already).
    ///
    /// - Parameter nodeID: the node's ID from `--node-id` / `node_id=`: required for a seed
    ///   package (it names no node); for a Go package it must agree with the package's.
    public init(fileContents text: [UInt8], nodeID givenNodeID: String? = nil) throws(TDNSError) {
        guard text.count <= Self.maxSize else { throw .tooBig("enrollment package larger than \(Self.maxSize) bytes") }
        var joined: [UInt8] = []
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let trimmed = Array(String(decoding: line, as: UTF8.self).trimmingWhitespace().utf8)
            if trimmed.isEmpty || trimmed.first == UInt8(ascii: "#") { continue }
            joined += trimmed
        }
        let jsonBytes: [UInt8]
        if joined.first == UInt8(ascii: "{") {
            jsonBytes = joined
        } else {
            do { jsonBytes = try Base64.decode(joined) } catch { throw .malformed("enrollment package is neither JSON nor base64") }
        }
        let json = try JSONValue.parse(jsonBytes, maxDepth: 6, maxSize: Self.maxSize)
        guard case .object = json else { throw .malformed("enrollment package is not a JSON object") }
        func string(_ key: String) throws(TDNSError) -> String {
            guard let v = json[key]?.stringValue, !v.isEmpty else { throw .malformed("enrollment package lacks \(key)") }
            return v
        }
        let given = try givenNodeID.map { (v) throws(TDNSError) in try KRSSettings.fqdn(v, setting: "node_id") }
        // Told apart by the token's name: our KDC's Go-format packages carry "version": "2.0"
        // as well (§19), so the version says nothing.
        let isSeed = json["auth_token"] != nil && json["token"] == nil
        format = isSeed ? .seed : .go
        if let named = json["node_id"]?.stringValue, !named.isEmpty {
            nodeID = try KRSSettings.fqdn(named, setting: "node_id")
            if let given, given != nodeID {
                throw .config("node_id: the enrollment package is for \(nodeID), not \(given)")
            }
        } else if isSeed, let given {
            nodeID = given
        } else if isSeed {
            throw .config("node_id: a seed-format package names no node; give it with --node-id (node_id=)")
        } else {
            throw .malformed("enrollment package lacks node_id")
        }
        controlZone = try KRSSettings.fqdn(try string("control_zone"), setting: "control_zone")
        validUntil = json["valid_until"]?.stringValue
        reenroll = json["reenroll"]?.boolValue ?? false

        if isSeed {
            if let version = json["version"]?.stringValue, version != "2.0" {
                throw .malformed("enrollment package version \"\(version.prefix(16))\" is not 2.0")
            }
            token = try string("auth_token")
            guard (16...256).contains(token.utf8.count), token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw .malformed("auth_token is not 16–256 printable characters")
            }
            // kdc_address + kdc_port; an IPv6 literal in brackets.
            let host = try string("kdc_address")
            let port: Int64
            switch json["kdc_port"] {
            case .string(let t)?: port = Int64(t) ?? 0
            case let v?: port = v.int64Value ?? 0
            case nil: throw .malformed("enrollment package lacks kdc_port")
            }
            guard (1...65535).contains(port) else { throw .malformed("kdc_port \(port) is not 1–65535") }
            kdcAddress = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
            let crypto = try string("crypto").lowercasedASCII()
            guard let backend = CryptoBackend(rawValue: crypto) else {
                throw .malformed("crypto \"\(crypto.prefix(16))\" is not hpke or jose")
            }
            offeredCrypto = [backend]
            guard let key = json["kdc_encryption_key"] else { throw .malformed("enrollment package lacks kdc_encryption_key") }
            switch backend {
            case .hpke:
                // base64 of the KDC's 32-byte X25519 public key (44 characters); 64 hex
                // characters, the form of every other HPKE key in TDNS, are taken too.
                guard let text = key.stringValue,
                      let raw = text.utf8.count == 64 ? Hex.decode(Array(text.utf8)) : try? Base64.decode(text), raw.count == 32
                else {
                    throw .malformed("kdc_encryption_key is not base64 of a 32-byte X25519 key")
                }
                kdcHPKEKey = try HPKEPublicKey(rawRepresentation: raw)
                kdcJOSEKey = nil
            case .jose:
                guard let jwk = try Self.jwk(key, "kdc_encryption_key") else { throw .malformed("kdc_encryption_key is empty") }
                kdcJOSEKey = jwk
                kdcHPKEKey = nil
            }
            kdcSigningKey = try json["kdc_signing_key"].flatMap { (v) throws(TDNSError) in try Self.jwk(v, "kdc_signing_key") }
            if let caps = json["capabilities"], caps.arrayValue == nil {
                throw .malformed("capabilities is not a list")
            }
        } else {
            token = try string("token")
            guard token.utf8.count == 64, Hex.decode(Array(token.utf8)) != nil else { throw .malformed("enrollment token is not 64 hex characters") }
            kdcAddress = try string("kdc_enrollment_address")
            if let hex = json["kdc_hpke_pubkey"]?.stringValue, !hex.isEmpty {
                kdcHPKEKey = try HPKEPublicKey(text: Array(hex.utf8))
            }
            if let b64 = json["kdc_jose_pubkey"]?.stringValue, !b64.isEmpty {
                // base64 of the KDC's public JWK JSON (§11.2).
                let jwk: [UInt8]
                do { jwk = try Base64.decode(b64) } catch { throw .malformed("kdc_jose_pubkey is not base64") }
                kdcJOSEKey = try JOSEPublicKey(jwk: jwk)
            }
            guard kdcHPKEKey != nil || kdcJOSEKey != nil else { throw .malformed("enrollment package has neither KDC HPKE nor JOSE key") }
            kdcSigningKey = try json["kdc_signing_pubkey"].flatMap { (v) throws(TDNSError) in try Self.jwk(v, "kdc_signing_pubkey") }
            if let list = json["supported_crypto"] {
                guard let items = list.arrayValue else { throw .malformed("supported_crypto is not a list") }
                // Names this node does not know are a later KDC's backends: not offered to us.
                var offered: [CryptoBackend] = []
                for item in items {
                    if let b = item.stringValue.flatMap({ CryptoBackend(rawValue: $0.lowercasedASCII()) }), !offered.contains(b) {
                        offered.append(b)
                    }
                }
                offeredCrypto = offered
            } else {
                offeredCrypto = (kdcHPKEKey != nil ? [.hpke] : []) + (kdcJOSEKey != nil ? [.jose] : [])
            }
        }
        if let line = json["kdc_sig0_pubkey"]?.stringValue, !line.isEmpty {
            // Checked now, so that enrollment never stores a key the settings cannot read.
            do {
                _ = try KRSSettings.sig0Key(Array(line.utf8))
            } catch {
                throw .malformed("kdc_sig0_pubkey is not a usable KEY record: \(error.reason)")
            }
            kdcSIG0Key = line
        }
    }

    /// A JWK given as a JSON object, as JWK JSON text, or as base64 of JWK JSON (the form
    /// §11.2 uses for kdc_jose_pubkey).
    private static func jwk(_ value: JSONValue, _ name: String) throws(TDNSError) -> JOSEPublicKey? {
        switch value {
        case .null: return nil
        case .object: return try JOSEPublicKey(jwk: value.serialized())
        case .string(let s) where s.isEmpty: return nil
        case .string(let s) where s.hasPrefix("{"): return try JOSEPublicKey(jwk: Array(s.utf8))
        case .string(let s):
            do { return try JOSEPublicKey(jwk: try Base64.decode(s)) } catch { throw .malformed("\(name) is not a JWK") }
        default: throw .malformed("\(name) is not a JWK")
        }
    }
}
