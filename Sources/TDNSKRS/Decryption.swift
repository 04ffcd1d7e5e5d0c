import TDNSCore
import TDNSCrypto

/// Turns the transport blob B into plaintext (PROTOCOL §6, §21). A JWS around the ciphertext
/// is verified when present, but it binds nothing (it covers only the ciphertext, not the
/// distribution ID, node or time): whether a distribution is bound is the manifest's matter
/// (``Manifest/isBound``, contract §2).
struct Decryption {
    /// The node's current key first (if any), then the one from before a re-enrollment (if
    /// still used): either opens a distribution made for it (contract item 5).
    var hpkeKeys: [HPKEPrivateKey]
    var joseKeys: [JOSEPrivateKey]
    var kdcSigningKey: JOSEPublicKey?
    /// Whether `hpkeKeys`/`joseKeys` start with a current key (else all are previous ones).
    var hasCurrentHPKE = true
    var hasCurrentJOSE = true

    struct Result {
        var plaintext: [UInt8]
        /// The ciphertext was a JWS verified with the KDC signing key.
        var signatureVerified: Bool
        /// An HPKE payload under `crypto:"hpke"` that carried its encapsulated key twice
        /// (`E ‖ E ‖ AEAD`, the Go KDC's node_operations, PROTOCOL §21) and was opened after
        /// the first copy.
        var doubledEncapsulatedKey = false
        /// Opened with a key from before a re-enrollment, not the current one.
        var openedWithPreviousKey = false
    }

    /// - Parameter blob: B, ASCII standard base64 of the ciphertext C.
    /// - Parameter crypto: the manifest's `crypto`.
    func decrypt(blob: [UInt8], crypto: Manifest.Crypto) throws(TDNSError) -> Result {
        var ciphertext: [UInt8]
        do {
            ciphertext = try Base64.decode(blob)
        } catch {
            throw .malformed("transport payload is not valid base64")
        }
        var verified = false
        if Self.looksLikeJWS(ciphertext) {
            // A KDC-signed distribution: JWS(ES256) whose payload is the real ciphertext (§8.3).
            guard let kdcSigningKey else {
                throw .authentication("signed distribution, but no kdc_signing_pubkey is configured to verify it")
            }
            do {
                ciphertext = try JWS.verify(ciphertext, with: kdcSigningKey)
            } catch where error.code == .cryptoFailure {
                throw .authentication("distribution signature does not verify with the KDC signing key")
            }
            verified = true
        }
        let plaintext: [UInt8]
        var doubled = false
        let index: Int
        let currentKeys: Int
        switch crypto {
        case .hpkeV1, .hpke: currentKeys = hasCurrentHPKE ? 1 : 0
        case .jose: currentKeys = hasCurrentJOSE ? 1 : 0
        case .unknown: currentKeys = 0
        }
        switch crypto {
        case .hpkeV1:
            // v1: enc is duplicated in front of the HPKE ciphertext; skip the first copy.
            guard ciphertext.count >= 32 else { throw .malformed("v1 ciphertext is shorter than 32 bytes") }
            let rest = Array(ciphertext.dropFirst(32))
            (plaintext, index) = try Self.first(try hpke()) { (key) throws(TDNSError) in try HPKECipher.open(rest, with: key) }
        case .hpke:
            let keys = try hpke()
            do {
                (plaintext, index) = try Self.first(keys) { (key) throws(TDNSError) in try HPKECipher.open(ciphertext, with: key) }
            } catch where error.code == .cryptoFailure && Self.carriesKeyTwice(ciphertext) {
                // The Go KDC's node_operations payload: the v1 layout under "hpke". The AEAD
                // still authenticates everything after the first copy, so nothing is lost.
                let rest = Array(ciphertext.dropFirst(HPKECipher.encLength))
                (plaintext, index) = try Self.first(keys) { (key) throws(TDNSError) in try HPKECipher.open(rest, with: key) }
                doubled = true
            }
        case .jose:
            guard !joseKeys.isEmpty else { throw TDNSError(.wrongKeyType, "JOSE distribution, but no jose_private_key is configured") }
            (plaintext, index) = try Self.first(joseKeys) { (key) throws(TDNSError) in try JWE.decrypt(ciphertext, with: key) }
        case .unknown(let other):
            throw .policy("unknown crypto \"\(other.prefix(32))\" in manifest")
        }
        return Result(plaintext: plaintext, signatureVerified: verified, doubledEncapsulatedKey: doubled, openedWithPreviousKey: index >= currentKeys)
    }

    /// The first key that opens the ciphertext, and its index; a key that does not is
    /// passed over only when the ciphertext does not authenticate under it.
    private static func first<K>(_ keys: [K], _ open: (K) throws(TDNSError) -> [UInt8]) throws(TDNSError) -> ([UInt8], Int) {
        var failure: TDNSError? = nil
        for (i, key) in keys.enumerated() {
            do throws(TDNSError) {
                return (try open(key), i)
            } catch where error.code == .cryptoFailure {
                if failure == nil { failure = error }
            }
        }
        throw failure ?? TDNSError(.wrongKeyType, "no key to open the distribution with")
    }

    /// Bytes 0–31 equal bytes 32–63, and something follows: `E ‖ E ‖ AEAD`.
    static func carriesKeyTwice(_ c: [UInt8]) -> Bool {
        let n = HPKECipher.encLength
        return c.count > 2 * n && c[0..<n] == c[n..<(2 * n)]
    }

    private func hpke() throws(TDNSError) -> [HPKEPrivateKey] {
        guard !hpkeKeys.isEmpty else { throw TDNSError(.wrongKeyType, "HPKE distribution, but no hpke_private_key is configured") }
        return hpkeKeys
    }

    /// PROTOCOL §6: printable ASCII with exactly two dots is a JWS (a JWE has four).
    static func looksLikeJWS(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return false }
        var dots = 0
        for b in bytes {
            guard b >= 0x21 && b <= 0x7e else { return false }
            if b == UInt8(ascii: ".") { dots += 1 }
        }
        return dots == 2
    }
}
