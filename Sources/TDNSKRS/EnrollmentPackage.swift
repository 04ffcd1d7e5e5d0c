import TDNSCore
import TDNSCrypto
import TDNSWire

/// The one-time enrollment package a KDC operator hands to a node (PROTOCOL §11.2, plus the
/// optional fields of §19). Readers accept packages with or without the §19 fields.
public struct EnrollmentPackage: Sendable {
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

    static let maxSize = 64 * 1024

    /// Parses the package file: blank lines and `#` lines skipped, the rest joined and
    /// base64-decoded to the JSON object.
    public init(fileContents text: [UInt8]) throws(TDNSError) {
        guard text.count <= Self.maxSize else { throw .tooBig("enrollment package larger than \(Self.maxSize) bytes") }
        var joined: [UInt8] = []
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let trimmed = Array(String(decoding: line, as: UTF8.self).trimmingWhitespace().utf8)
            if trimmed.isEmpty || trimmed.first == UInt8(ascii: "#") { continue }
            joined += trimmed
        }
        let jsonBytes: [UInt8]
        do { jsonBytes = try Base64.decode(joined) } catch { throw .malformed("enrollment package is not base64") }
        let json = try JSONValue.parse(jsonBytes, maxDepth: 6, maxSize: Self.maxSize)
        func string(_ key: String) throws(TDNSError) -> String {
            guard let v = json[key]?.stringValue, !v.isEmpty else { throw .malformed("enrollment package lacks \(key)") }
            return v
        }
        token = try string("token")
        guard token.utf8.count == 64, Hex.decode(Array(token.utf8)) != nil else { throw .malformed("enrollment token is not 64 hex characters") }
        nodeID = try KRSSettings.fqdn(try string("node_id"), setting: "node_id")
        controlZone = try KRSSettings.fqdn(try string("control_zone"), setting: "control_zone")
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
        if let line = json["kdc_sig0_pubkey"]?.stringValue, !line.isEmpty {
            // Checked now, so that enrollment never stores a key the settings cannot read.
            do {
                _ = try KRSSettings.sig0Key(Array(line.utf8))
            } catch {
                throw .malformed("kdc_sig0_pubkey is not a usable KEY record: \(error.reason)")
            }
            kdcSIG0Key = line
        }
        validUntil = json["valid_until"]?.stringValue
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
