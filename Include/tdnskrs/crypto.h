/**
 * @file tdnskrs/crypto.h
 * @brief The crypto backend interface of the TDNS design ("Crypto Abstraction in C").
 *
 * `crypto_backend_t` and `crypto_get_backend()` are declared as the design declares them,
 * member for member; libtdnskrs appends two members (`serialize_public_key`,
 * `serialize_private_key`) after the design's eight.
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
 * returns KRS_EKEYTYPE; a handle that is not live (freed, or never made by the library)
 * returns KRS_EINVAL. Private key material is zeroized when its handle is freed.
 *
 * Size limits: plaintexts up to KRS_CRYPTO_MAX_PLAINTEXT bytes; key texts up to
 * KRS_CRYPTO_MAX_KEY_TEXT bytes; larger inputs return KRS_ETOOBIG without being parsed.
 *
 * Out-parameters are set to NULL / 0 on entry and filled only on KRS_OK.
 */
#ifndef TDNSKRS_CRYPTO_H
#define TDNSKRS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest plaintext encrypt accepts (64 MiB). */
#define KRS_CRYPTO_MAX_PLAINTEXT  (64u * 1024u * 1024u)
/** Largest key text parse_public_key / parse_private_key accept (16 KiB). */
#define KRS_CRYPTO_MAX_KEY_TEXT   (16u * 1024u)

/**
 * @brief A crypto backend: a table of functions, one table per backend.
 *
 * The tables belong to the library and live for the life of the process. They must not be
 * modified: they lie in read-only memory, so assigning to a member crashes the program
 * (SIGSEGV) at the faulty line instead of corrupting the table for every other user.
 */
typedef struct crypto_backend {
    /** Backend name: "hpke" or "jose". Ownership: static storage, do not free. */
    const char *name;

    /**
     * @brief Generates a new key pair — private key first, as the design declares it.
     * @param priv_key  receives the private key handle
     * @param pub_key   receives the public key handle
     * @return KRS_OK, KRS_EINVAL (a NULL argument) or KRS_ERROR.
     * Ownership: *priv_key with free_private_key, *pub_key with free_public_key.
     */
    int (*generate_keypair)(void **priv_key, void **pub_key);

    /**
     * @brief Parses a public key from data[0..len) (format: see the backend description).
     * @param data     key text (need not be NUL-terminated)
     * @param len      its length in bytes, at most KRS_CRYPTO_MAX_KEY_TEXT
     * @param pub_key  receives the public key handle
     * @return KRS_OK, KRS_EINVAL, KRS_ETOOBIG, or:
     *   KRS_EMALFORMED  not a valid key: bad hex or JSON, wrong lengths, all-zero or
     *                   small-order HPKE key, point not on the curve, unknown JWK members;
     *   KRS_EKEYTYPE    JOSE: a JWK of another type or curve than EC P-256, or one with "d";
     *   KRS_EPOLICY     JOSE: "alg" other than ECDH-ES/ES256, or "use" other than enc/sig.
     * Ownership: *pub_key with free_public_key; data stays the caller's.
     */
    int (*parse_public_key)(const char *data, size_t len, void **pub_key);

    /**
     * @brief Parses a private key from data[0..len).
     * @param data      key text (need not be NUL-terminated)
     * @param len       its length in bytes, at most KRS_CRYPTO_MAX_KEY_TEXT
     * @param priv_key  receives the private key handle
     * @return As parse_public_key, except that KRS_EKEYTYPE means a JWK without "d" (or of
     *   another type or curve), and KRS_EMALFORMED includes a "d" whose x/y do not match.
     * Ownership: *priv_key with free_private_key; data stays the caller's (the library
     *   keeps no copy of it).
     */
    int (*parse_private_key)(const char *data, size_t len, void **priv_key);

    /**
     * @brief Encrypts plaintext[0..pt_len) to the holder of pub_key.
     * @param pub_key     a public key handle of this backend
     * @param plaintext   may be NULL when pt_len is 0
     * @param pt_len      at most KRS_CRYPTO_MAX_PLAINTEXT
     * @param ciphertext  receives the ciphertext (NUL-terminated beyond ct_len)
     * @param ct_len      receives its length
     * @return KRS_OK, KRS_EINVAL, KRS_EKEYTYPE, KRS_ETOOBIG or KRS_ECRYPTO.
     * Ownership: *ciphertext with krs_free.
     */
    int (*encrypt)(void *pub_key, const uint8_t *plaintext, size_t pt_len,
                   uint8_t **ciphertext, size_t *ct_len);

    /**
     * @brief Decrypts ciphertext[0..ct_len) with priv_key.
     * @param priv_key    a private key handle of this backend
     * @param ciphertext  the ciphertext
     * @param ct_len      its length
     * @param plaintext   receives the plaintext; a zero-length plaintext is a non-NULL
     *                    buffer with *pt_len == 0
     * @param pt_len      receives its length
     * @return KRS_OK, KRS_EINVAL, KRS_EKEYTYPE, KRS_EMALFORMED (not a ciphertext of this
     *   backend), KRS_EPOLICY (JOSE algorithm or header not allowed), KRS_ETOOBIG or
     *   KRS_ECRYPTO (wrong key, tampered ciphertext, invalid ephemeral key).
     * Ownership: *plaintext with krs_free (which zeroizes it).
     */
    int (*decrypt)(void *priv_key, const uint8_t *ciphertext, size_t ct_len,
                   uint8_t **plaintext, size_t *pt_len);

    /**
     * @brief Releases a public key handle made by this backend.
     * NULL, a handle of the other kind or backend, and a handle freed before are ignored.
     * Ownership: the handle is invalid afterwards.
     */
    void (*free_public_key)(void *pub_key);

    /**
     * @brief Releases a private key handle made by this backend; the key is zeroized.
     * NULL, a handle of the other kind or backend, and a handle freed before are ignored.
     * Ownership: the handle is invalid afterwards.
     */
    void (*free_private_key)(void *priv_key);

    /* --- libtdnskrs additions, after the design's members ------------------------------- */

    /**
     * @brief Serializes a key in the backend's text format (NUL-terminated).
     * Also accepts a private key handle, and writes its public half.
     * @param key      a key handle of this backend
     * @param out      receives the text
     * @param out_len  receives its length, without the NUL
     * @return KRS_OK, KRS_EINVAL or KRS_EKEYTYPE.
     * Ownership: *out with krs_free.
     */
    int (*serialize_public_key)(void *key, char **out, size_t *out_len);

    /**
     * @brief Serializes a private key in the backend's text format (NUL-terminated).
     * @param key      a private key handle of this backend
     * @param out      receives the text (secret: krs_free zeroizes it)
     * @param out_len  receives its length, without the NUL
     * @return KRS_OK, KRS_EINVAL or KRS_EKEYTYPE (a public key).
     * Ownership: *out with krs_free.
     */
    int (*serialize_private_key)(void *key, char **out, size_t *out_len);
} crypto_backend_t;

/**
 * @brief Get backend by name.
 * @param name  "hpke" or "jose"
 * @return The backend's table, or NULL for any other name (and for NULL).
 * Ownership: the library's, valid for the life of the process; do not free and do not
 *   modify (the table is read-only memory: a write crashes). The pointer is not const only
 *   because the design declares it so.
 */
crypto_backend_t *crypto_get_backend(const char *name);

/**
 * @brief Decrypt ciphertext using specified crypto backend (the design's crypto_decrypt):
 *   the same as backend->decrypt(priv_key, ct, ct_len, pt, pt_len).
 * @param backend   a table returned by crypto_get_backend; any other pointer gives
 *                  KRS_EINVAL (it is compared, never called through)
 * @param priv_key  Private key for decryption
 * @param ct        Ciphertext buffer
 * @param ct_len    Length of ciphertext
 * @param pt        Pointer to receive plaintext buffer
 * @param pt_len    Pointer to receive plaintext length
 * @return KRS_OK on success, or a code of backend->decrypt.
 * Ownership: *pt with krs_free (not free(): the design's "caller must free" means krs_free).
 */
int crypto_decrypt(crypto_backend_t *backend, void *priv_key,
                   const uint8_t *ct, size_t ct_len,
                   uint8_t **pt, size_t *pt_len);

#ifdef __cplusplus
}
#endif

#endif /* TDNSKRS_CRYPTO_H */
