import TDNSCore
import TDNSCrypto
import TDNSWire

/// The KDC's long-term keys (created by `init`):
///
/// - X25519 for HPKE: enrollment requests are sealed to it, enrollment confirmations are
///   sealed with it in Auth mode (PROTOCOL §7, §11.4–§11.5);
/// - P-256 for JOSE: enrollment requests of JOSE-only nodes (PROTOCOL §8, §11.4);
/// - P-256 ES256 signing key: signs distributions for non-legacy nodes (PROTOCOL §8.3, §19);
///   its public JWK goes into enrollment packages as `kdc_signing_pubkey`;
/// - Ed25519 SIG(0) key: signs the KDC's NOTIFYs to non-legacy nodes (PROTOCOL §19); its KEY
///   RR goes into packages as `kdc_sig0_pubkey`. The Go KDC has no such key (PROTOCOL §14 row 13).
public struct KDCKeys: Sendable {
    public let hpke: HPKEPrivateKey
    public let jose: JOSEPrivateKey
    public let signing: JOSEPrivateKey
    public let sig0: DNSSECPrivateKey

    static let hpkeFile = "keys/kdc.hpke.privatekey"
    static let joseFile = "keys/kdc.jose.privatekey"
    static let signingFile = "keys/kdc.signing.privatekey"
    static let sig0File = "keys/kdc.sig0.privatekey"

    public static func generate() throws(TDNSError) -> KDCKeys {
        KDCKeys(
            hpke: HPKEPrivateKey.generate(),
            jose: try JOSEPrivateKey.generate(),
            signing: try makeSigningKey(),
            sig0: try DNSSECPrivateKey.generate(algorithm: .ed25519))
    }

    /// A P-256 key whose JWK says what it is for: `"use":"sig","alg":"ES256"`.
    static func makeSigningKey() throws(TDNSError) -> JOSEPrivateKey {
        let generated = try JOSEPrivateKey.generate()
        var jwk = Array(generated.jwkJSON().utf8)
        defer { zeroize(&jwk) }
        guard case .object(var members) = try JSONValue.parse(jwk) else {
            throw .internalFailure("generated JWK is not an object")
        }
        for i in members.indices {
            if members[i].0 == "use" { members[i].1 = .string("sig") }
            if members[i].0 == "alg" { members[i].1 = .string("ES256") }
        }
        var text = JSONValue.object(members).serialized()
        defer { zeroize(&text) }
        return try JOSEPrivateKey(jwk: text)
    }

    /// Writes the private keys (0600) and the public keys (0644) into the state directory.
    public func write(to store: KDCStore, controlZone: DNSName) throws(TDNSError) {
        var hpkeText = Array("# tdns-kdc HPKE (X25519) private key\n\(hpke.hex)\n".utf8)
        defer { zeroize(&hpkeText) }
        try store.writeSecret(Self.hpkeFile, hpkeText)
        var joseText = Array((jose.jwkJSON() + "\n").utf8)
        defer { zeroize(&joseText) }
        try store.writeSecret(Self.joseFile, joseText)
        var signingText = Array((signing.jwkJSON() + "\n").utf8)
        defer { zeroize(&signingText) }
        try store.writeSecret(Self.signingFile, signingText)
        var pem = sig0.pkcs8PEM()
        defer { zeroize(&pem) }
        try store.writeSecret(Self.sig0File, pem)

        try store.writePublic("kdc.hpke.pubkey", Array("# tdns-kdc HPKE (X25519) public key\n\(hpke.publicKey.hex)\n".utf8))
        try store.writePublic("kdc.jose.pubkey", Array((jose.publicKey.jwkJSON() + "\n").utf8))
        try store.writePublic("kdc.signing.pubkey", Array((signing.publicKey.jwkJSON() + "\n").utf8))
        try store.writePublic("kdc.sig0.key", Array((sig0KeyLine(controlZone: controlZone) + "\n").utf8))
    }

    public static func load(from store: KDCStore) throws(TDNSError) -> KDCKeys {
        var hpkeText = try store.read(hpkeFile, limit: 16384)
        defer { zeroize(&hpkeText) }
        var joseText = try store.read(joseFile, limit: 16384)
        defer { zeroize(&joseText) }
        var signingText = try store.read(signingFile, limit: 16384)
        defer { zeroize(&signingText) }
        var pem = try store.read(sig0File, limit: 16384)
        defer { zeroize(&pem) }
        return KDCKeys(
            hpke: try HPKEPrivateKey(text: hpkeText),
            jose: try JOSEPrivateKey(jwk: trimmed(joseText)),
            signing: try JOSEPrivateKey(jwk: trimmed(signingText)),
            sig0: try DNSSECPrivateKey(pkcs8PEM: pem, algorithm: .ed25519))
    }

    /// The KEY RR of the SIG(0) key: owner = control zone (it is the signer name of the KDC's
    /// SIG(0)s), TTL 3600, `KEY 256 3 15 <b64>`.
    public func sig0KeyLine(controlZone: DNSName) -> String {
        sig0KeyRecord.presentationLine(owner: controlZone)
    }

    public var sig0KeyRecord: KEYRecord {
        KEYRecord(algorithm: sig0.algorithm.rawValue, publicKey: sig0.dnskeyPublicKey)
    }

    private static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        var s = bytes[...]
        while let l = s.last, l == 0x0A || l == 0x0D || l == 0x20 { s = s.dropLast() }
        return Array(s)
    }
}
