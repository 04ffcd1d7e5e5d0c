/*
 * tdnskrs/crypto.h — the crypto backend interface of the TDNS design.
 *
 * Two backends exist, byte-compatible with the Go KDC (tdns-transport v2/crypto):
 *
 *   "hpke"  RFC 9180 Base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM,
 *           empty info and AAD. Ciphertext = enc (32 bytes) || AES-GCM ciphertext || tag (16).
 *           Keys: 32 raw bytes, or 64 hex characters (surrounding whitespace and lines
 *           starting with '#' are ignored, as in tdns key files). Serialized as 64 lowercase hex.
 *
 *   "jose"  JWE compact serialization, alg ECDH-ES (direct), enc A256GCM, EC P-256 keys.
 *           Ciphertext = the ASCII compact JWE (no terminating NUL counted in ct_len).
 *           Keys: JWK JSON text; a public key must not carry "d", a private key must.
 *           Serialized as JWK JSON with the members the Go backend writes
 *           ({"use":"enc","kty":"EC","crv":"P-256","alg":"ECDH-ES","x":…,"y":…[,"d":…]}).
 *           Decryption accepts only ECDH-ES + A256GCM, a 12-byte IV, a 16-byte tag and an
 *           ephemeral key on P-256; "crit" and "zip" headers are refused.
 *
 * Key handles (void *) are opaque. A handle is immutable once created and may be used from
 * several threads at once; it is released with the free function of the backend that made
 * it. Passing a handle of the other backend, or a public key where a private key is needed,
 * returns KRS_EKEYTYPE. Private key material is zeroized when its handle is freed.
 *
 * Size limits: plaintexts up to KRS_CRYPTO_MAX_PLAINTEXT bytes; key texts up to
 * KRS_CRYPTO_MAX_KEY_TEXT bytes; larger inputs return KRS_ETOOBIG without being parsed.
 */
#ifndef TDNSKRS_CRYPTO_H
#define TDNSKRS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KRS_CRYPTO_MAX_PLAINTEXT  (64u * 1024u * 1024u)
#define KRS_CRYPTO_MAX_KEY_TEXT   (16u * 1024u)

typedef struct crypto_backend {
    /* Backend name: "hpke" or "jose". Static storage. */
    const char *name;

    /*
     * Generates a new key pair.
     * Returns KRS_OK, KRS_EINVAL (NULL argument) or KRS_ERROR.
     * Ownership: *pub_key with free_public_key, *priv_key with free_private_key.
     */
    int (*generate_keypair)(void **pub_key, void **priv_key);

    /*
     * Parses a public key from data[0..len) (format: see the backend description above).
     * Returns KRS_OK, KRS_EINVAL, KRS_ETOOBIG, or:
     *   KRS_EMALFORMED  not a valid key: bad hex or JSON, wrong lengths, all-zero or
     *                   small-order HPKE key, point not on the curve, unknown JWK members
     *   KRS_EKEYTYPE    JOSE: a JWK of another type or curve than EC P-256, or one with "d"
     *   KRS_EPOLICY     JOSE: "alg" other than ECDH-ES/ES256, or "use" other than enc/sig
     * Ownership: *pub_key with free_public_key.
     */
    int (*parse_public_key)(const char *data, size_t len, void **pub_key);

    /*
     * Parses a private key from data[0..len).
     * Returns as parse_public_key, except that KRS_EKEYTYPE means a JWK without "d" (or of
     * another type or curve), and KRS_EMALFORMED includes a "d" whose x/y do not match.
     * Ownership: *priv_key with free_private_key.
     */
    int (*parse_private_key)(const char *data, size_t len, void **priv_key);

    /*
     * Encrypts pt[0..pt_len) to the holder of pub_key. pt may be NULL when pt_len is 0.
     * Returns KRS_OK, KRS_EINVAL, KRS_EKEYTYPE, KRS_ETOOBIG or KRS_ECRYPTO.
     * Ownership: *ct with krs_free.
     */
    int (*encrypt)(void *pub_key, const uint8_t *pt, size_t pt_len, uint8_t **ct, size_t *ct_len);

    /*
     * Decrypts ct[0..ct_len) with priv_key.
     * Returns KRS_OK, KRS_EINVAL, KRS_EKEYTYPE, KRS_EMALFORMED (not a ciphertext of this
     * backend), KRS_EPOLICY (JOSE algorithm or header not allowed), KRS_ETOOBIG or
     * KRS_ECRYPTO (wrong key, tampered ciphertext, invalid ephemeral key).
     * Ownership: *pt with krs_free. A zero-length plaintext is returned as a non-NULL
     * buffer with *pt_len == 0.
     */
    int (*decrypt)(void *priv_key, const uint8_t *ct, size_t ct_len, uint8_t **pt, size_t *pt_len);

    /* Release a key handle made by this backend. NULL is ignored. */
    void (*free_public_key)(void *pub_key);
    void (*free_private_key)(void *priv_key);

    /*
     * Serialize a key in the backend's text format (NUL-terminated; *out_len excludes the
     * NUL). serialize_public_key also accepts a private key handle and writes its public half.
     * Returns KRS_OK, KRS_EINVAL or KRS_EKEYTYPE.
     * Ownership: *out with krs_free.
     */
    int (*serialize_public_key)(void *key, char **out, size_t *out_len);
    int (*serialize_private_key)(void *key, char **out, size_t *out_len);
} crypto_backend_t;

/*
 * Returns the backend named "hpke" or "jose", or NULL for any other name (and for NULL).
 * Ownership: static storage, valid for the life of the process; do not free.
 */
const crypto_backend_t *crypto_get_backend(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* TDNSKRS_CRYPTO_H */
