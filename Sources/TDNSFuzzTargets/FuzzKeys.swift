import TDNSCore
import TDNSCrypto

/// The keys the harnesses use: the public test keys of Tests/Vectors (so that the seed
/// inputs taken from the vectors verify and decrypt, and mutations of them reach past the
/// signature and tag checks), plus a second key for "the other key must fail" checks.
/// None of this is secret: these keys are published with the vectors.
enum FuzzKeys {
    /// hpke.json `recipient1` (X25519 scalar); manifest HMACs in the vectors are keyed with its
    /// public key.
    static let hpkeRecipientHex = "29c809432155a0ad68406a5652036edddeaaeb202c16675a80822e4a444c6534"
    /// jose.json `recipient1`: the JWE recipient.
    static let joseRecipientJWK =
        #"{"use":"enc","kty":"EC","crv":"P-256","alg":"ECDH-ES","x":"sGfvvCV63lfohLR_3iKVyUDks0af4U1LchRVD4PyAZo","y":"pSw6dwn20MAyfQFYM36-fOjxlymZ67N62ynR5BdID80","d":"_zaLhIrMrEzzZ7AB9gB90FtRRnmONMcdLuYp3qX4j9o"}"#
    /// jws.json `jose_signer`: signs the JWS and JWT-manifest vectors (the KDC signing key).
    static let kdcSignerJWK =
        #"{"use":"enc","kty":"EC","crv":"P-256","alg":"ECDH-ES","x":"dRDUIW1sesO3W8rnDjBs_Xr5IkHICqDtTCZTfgjG3qE","y":"emM1bvCkKQU0byA_buYaGR_2bNhrbOgcK8SiC6iuXt0","d":"BPJj4S4pEHL905ZUamvPLb9XAhiFdg5w69S953rhlx4"}"#

    /// Parsed once. A failure here is a broken harness, reported by every run.
    static let keys: Result<Keys, TDNSError> = Result { () throws(TDNSError) -> Keys in
        let hpkeRaw = Hex.decode(Array(hpkeRecipientHex.utf8)) ?? []
        return Keys(
            hpkeRecipient: try HPKEPrivateKey(rawRepresentation: hpkeRaw),
            joseRecipient: try JOSEPrivateKey(jwk: Array(joseRecipientJWK.utf8)),
            kdcSigner: try JOSEPrivateKey(jwk: Array(kdcSignerJWK.utf8)))
    }

    struct Keys: Sendable {
        let hpkeRecipient: HPKEPrivateKey
        let joseRecipient: JOSEPrivateKey
        let kdcSigner: JOSEPrivateKey
    }

    static func get() throws(InvariantViolation) -> Keys {
        switch keys {
        case .success(let k): return k
        case .failure(let e): throw InvariantViolation(message: "harness keys do not parse: \(e.reason)")
        }
    }
}
