/**
 * @file tdnskrs/common.h
 * @brief Return codes, memory ownership and version of libtdnskrs.
 *
 * Conventions used by every libtdnskrs function:
 *   - The status is the return value: KRS_OK (0) on success, a negative KRS_E* code on failure.
 *     Codes are never renumbered; new ones are only ever added at the end. KRS_OK … KRS_EDNS
 *     are the design's codes, with the design's values.
 *   - Results come back through out-parameters. Out-parameters are set to NULL / 0 on entry,
 *     and are only filled when the function returns KRS_OK: a failing call never hands out
 *     a partial buffer.
 *   - Whoever allocates provides the free. Every buffer the library returns is freed with
 *     krs_free(), which zeroizes it first; key handles with their backend's free function;
 *     contexts with krs_cleanup(). Never pass library memory to free().
 *   - All functions are safe to call from several threads at once, and never abort the
 *     calling process: invalid input is reported through the return code.
 */
#ifndef TDNSKRS_COMMON_H
#define TDNSKRS_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name Return codes
 *  @{ */
#define KRS_OK           0   /**< success */
#define KRS_ERROR       -1   /**< unspecified internal failure */
#define KRS_ENOMEM      -2   /**< memory allocation failed */
#define KRS_EINVAL      -3   /**< invalid argument: NULL where not allowed, unknown handle */
#define KRS_ECRYPTO     -4   /**< cryptographic failure: authentication tag, signature or key agreement failed */
#define KRS_EDNS        -5   /**< DNS protocol error */
#define KRS_EKEYTYPE    -6   /**< key handle of the wrong kind: other backend, or public where private is needed */
#define KRS_EMALFORMED  -7   /**< input is not well-formed: bad hex, JWK, JWE, base64, lengths, DNS message */
#define KRS_ETOOBIG     -8   /**< input exceeds a size limit; rejected before it was parsed */
#define KRS_EPOLICY     -9   /**< well-formed but refused by policy: algorithm not allowed, crit, zip */
#define KRS_EAUTH      -10   /**< a distribution's signature or HMAC did not verify */
#define KRS_EUNSIGNED  -11   /**< unsigned (HMAC-only) distribution while require_signature=yes */
#define KRS_EREPLAY    -12   /**< distribution ID already processed for this node */
#define KRS_ESTALE     -13   /**< timestamp too old or in the future; JWT expired or not yet valid */
#define KRS_ESTORAGE   -14   /**< writing the key store or the state directory failed */
#define KRS_ECONFIG    -15   /**< a setting is unknown, malformed or inconsistent */
#define KRS_EWRONGNODE -16   /**< meant for another node, or another distribution ID */
#define KRS_EKEYMISMATCH -17 /**< key tag differs from key_id, or private key does not match its DNSKEY */
#define KRS_ENETWORK   -18   /**< network failure: connection refused or reset, address unusable */
#define KRS_ETIMEOUT   -19   /**< no answer within the time allowed */
/** @} */

/**
 * @brief Human-readable text for a return code.
 * @param code  a KRS_* code (any int)
 * @return Never NULL; unknown codes give "unknown error".
 * Ownership: static storage, do not free.
 */
const char *krs_strerror(int code);

/**
 * @brief Library version, e.g. "0.2.0" (see NEWS).
 * @return The version string; never NULL.
 * Ownership: static storage, do not free.
 */
const char *krs_version(void);

/**
 * @brief Frees a buffer returned by libtdnskrs (ciphertext, plaintext, serialized key,
 *   JSON, DNS answer, the line array of krs_status_text).
 *
 * The buffer is overwritten with zeros before it is released. NULL is ignored, and so is
 * a pointer the library did not hand out or has freed already (it is left untouched), such
 * as one string inside the block of krs_status_text.
 * @param p  the buffer, or NULL
 * Ownership: p is invalid afterwards.
 */
void krs_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* TDNSKRS_COMMON_H */
