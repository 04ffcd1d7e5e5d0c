import TDNSCore
/// Size limits applied before any input is parsed. They mirror `Include/tdnskrs/crypto.h`.
public enum CryptoLimits {
    /// Largest plaintext either backend encrypts or returns (`KRS_CRYPTO_MAX_PLAINTEXT`).
    public static let maxPlaintext = 64 * 1024 * 1024
    /// Largest key text (hex or JWK JSON) accepted (`KRS_CRYPTO_MAX_KEY_TEXT`).
    public static let maxKeyText = 16 * 1024
    /// Largest HPKE ciphertext: enc (32) + plaintext + tag (16).
    public static let maxHPKECiphertext = maxPlaintext + 48
    /// Largest compact JWE: base64url of the plaintext plus room for header, IV and tag.
    public static let maxJWECompact = (maxPlaintext / 3 + 1) * 4 + 8192
    /// Largest JOSE protected header accepted (decoded bytes).
    public static let maxJOSEHeader = 4096
}
