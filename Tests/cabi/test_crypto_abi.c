/*
 * Tests/cabi/test_crypto_abi.c — C-ABI tests of libtdnskrs' crypto interface.
 *
 * Written against the public headers only (tdnskrs.h, common.h, crypto.h in Include/tdnskrs):
 * every function and every member of crypto_backend_t, for both backends, checked against the behaviour the headers
 * document. Run by Tests/cabi/run.sh (compiled -Wall -Wextra -Werror, run under valgrind).
 *
 * Output: one line per check, "PASS: <name>" or "FAIL: <name> — <reason>"; exit status 0 when
 * every check passed, 1 when a check failed. Key material and plaintexts are never printed.
 *
 * Each section runs in a forked child, so a crash (or an abort inside the library, which the
 * header rules out) is reported as a FAIL of that section and the other sections still run.
 * The parent never calls the library. TDNSKRS_NOFORK=1 runs the sections in-process.
 */
#define _POSIX_C_SOURCE 200809L

#include <tdnskrs/tdnskrs.h>

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* Vectors made by the real Go code (tdns-transport v2/crypto, circl hpke, go-jose v4.1.4),   */
/* copied from Tests/Vectors/hpke.json and Tests/Vectors/jose.json. HPKE ciphertexts are the  */
/* hex form of the files' ciphertext_b64; JOSE ones are the files' jwe_compact. Plaintexts    */
/* (plaintexts[]): "empty" = 0 bytes, "A" = the byte 0x41, "bytes100" = 0x00..0x63.           */
/* ---------------------------------------------------------------------------------------- */

/* Tests/Vectors/hpke.json keys[0] "recipient1" and key_serialization.example_from_GenerateKeypair. */
static const char HPKE_R1_PRIV_HEX[] =
    "29c809432155a0ad68406a5652036edddeaaeb202c16675a80822e4a444c6534";
static const char HPKE_R1_PUB_HEX[] =
    "d77a78380fa503be1e50a742d5aedb4c2c2cb561f2c4804b52d20b7c65645941";
static const char HPKE_EX_PRIV_HEX[] =
    "5df8b2ce230f39ebb2d8cf4ad4ecd01ac3537a190c78b52756827f088ba7bafd";
static const char HPKE_EX_PUB_HEX[] =
    "0d76c3a7ebd76faa65074275f412b8067ce840002e4b4eb596ffe8d9fdcca36e";
/* hpke.json vectors "hpke-recipient1-empty" (plaintext "empty", 48 bytes) */
static const char HPKE_CT_EMPTY[] =
    "ae72c1e567eebbab3a2ef0391c485c42e3032f7c2db180fadbe6f084e0bc3127747cc2f0102c"
    "afb2b53bd6e3c486fca3";
/* hpke.json vectors "hpke-recipient1-A" (plaintext "A", 49 bytes) */
static const char HPKE_CT_A[] =
    "0ca7d6c94400be47815181d99e2abef1c1c4892ca746f9b072c66a63f4762057e2332da7c686"
    "85427147f03affeb213ff8";
/* hpke.json vectors "hpke-recipient1-bytes100" (plaintext "bytes100", 148 bytes) */
static const char HPKE_CT_BYTES100[] =
    "13ce4f267c2aeeeb6b8dffac9590c6f306a5d260de5c6ced58809c5fde279e6f15e67533104f"
    "2bf7b25a7471dd41a125a2ce3e68925713cb71b0b324073dcab49d40b23108c79f2a2e3457a2"
    "a9fe7fe22d54e73f60f59976aaced4fd97859615038a80ceb083b68502f30a361736d1608e3e"
    "0e9c073222e0dc8d5cfe0a6836c2c3699e8dea34cb6f61754c90fe624be3795f1d9b";
/* hpke.json negative "hpke-recipient1-bytes100-tampered-tag" (plaintext "bytes100", 148 bytes) */
static const char HPKE_CT_BYTES100_TAMPERED_TAG[] =
    "13ce4f267c2aeeeb6b8dffac9590c6f306a5d260de5c6ced58809c5fde279e6f15e67533104f"
    "2bf7b25a7471dd41a125a2ce3e68925713cb71b0b324073dcab49d40b23108c79f2a2e3457a2"
    "a9fe7fe22d54e73f60f59976aaced4fd97859615038a80ceb083b68502f30a361736d1608e3e"
    "0e9c073222e0dc8d5cfe0a6836c2c3699e8dea34cb6f61754c90fe624be3795f1d9a";

/* Tests/Vectors/jose.json keys[0] "recipient1" and key_serialization.example_from_GenerateKeypair. */
static const char JOSE_R1_PRIV_JWK[] =
    "{\"use\":\"enc\",\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES\",\"x\":\"sGfvvCV63lfohLR_3"
    "iKVyUDks0af4U1LchRVD4PyAZo\",\"y\":\"pSw6dwn20MAyfQFYM36-fOjxlymZ67N62ynR5BdID80"
    "\",\"d\":\"_zaLhIrMrEzzZ7AB9gB90FtRRnmONMcdLuYp3qX4j9o\"}";
static const char JOSE_R1_PUB_JWK[] =
    "{\"use\":\"enc\",\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES\",\"x\":\"sGfvvCV63lfohLR_3"
    "iKVyUDks0af4U1LchRVD4PyAZo\",\"y\":\"pSw6dwn20MAyfQFYM36-fOjxlymZ67N62ynR5BdID80"
    "\"}";
static const char JOSE_EX_PRIV_JWK[] =
    "{\"use\":\"enc\",\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES\",\"x\":\"uzVM_pJfvbCHfR9dd"
    "zX3C3v1ENKNcGo0xjvLU-9-vMs\",\"y\":\"S3JqYWuwNrdC3hhHp9-yDSs1aCVdPbSng6gghZOA1-k"
    "\",\"d\":\"o3cdlpAFpBlije-XwnSAYVQkt5IvlK8eIkpfoEJxf1U\"}";
static const char JOSE_EX_PUB_JWK[] =
    "{\"use\":\"enc\",\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES\",\"x\":\"uzVM_pJfvbCHfR9dd"
    "zX3C3v1ENKNcGo0xjvLU-9-vMs\",\"y\":\"S3JqYWuwNrdC3hhHp9-yDSs1aCVdPbSng6gghZOA1-k"
    "\"}";
/* jose.json vectors "jose-recipient1-empty" (plaintext "empty") */
static const char JOSE_JWE_EMPTY[] =
    "eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTI1NkdDTSIsImVwayI6eyJrdHkiOiJFQyIsImNydiI6"
    "IlAtMjU2IiwieCI6IjdIVEtmOFE0c0FXN2NDWGFkdDJzN3ljU0VHSlpHWldjWnROYndJOTVNZk0i"
    "LCJ5IjoialFuMXJmZnpqMnp2WU9hYW9sOVFPc29XVW85XzcycTBXUDd1X25iVm56USJ9fQ..gtV3"
    "SO4ILNajV8Ti..Zy8H0KrDq7GMBRnScZdPfg";
/* jose.json vectors "jose-recipient1-A" (plaintext "A") */
static const char JOSE_JWE_A[] =
    "eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTI1NkdDTSIsImVwayI6eyJrdHkiOiJFQyIsImNydiI6"
    "IlAtMjU2IiwieCI6IkxleTZ0VzJIOVdMWjNWSzlWYkNlOXRGTGlPWmhiUGx6Rnd2dVY2VEVYMHci"
    "LCJ5IjoiR0hrV3ZEVkFtcC1aakRONklPSG1ZR2RkRHpLUGNid2l1OW1Kb0ZoVHMxVSJ9fQ..pRj6"
    "31FY5m-ERFvk.iA.gny39-nIL_4CTf2d24-4-Q";
/* jose.json vectors "jose-recipient1-bytes100" (plaintext "bytes100") */
static const char JOSE_JWE_BYTES100[] =
    "eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTI1NkdDTSIsImVwayI6eyJrdHkiOiJFQyIsImNydiI6"
    "IlAtMjU2IiwieCI6InRNYzZzWGd6MW54VHhEcWJNZm5RcDBac2x2TnM5TjZ1bXNuSlhBd2t3a00i"
    "LCJ5IjoiaVRYdjZRU0I5UEtkZFZKSXE5eWtjZzg1VTh0TmtuSnk0cEsyYmMwcmh0QSJ9fQ..3xyq"
    "x9eD9G-TWdwl.mEDnxuRSgvuNknmwRDqWzuMC7J-T1hsiszLB5QS9i_MtBmiNWblXfvMlPzBl9yP"
    "TVHV2j-zJ3Iz12G92YBTceTGvYz9xdVOuElx7BeZhTR4EUZvt4uy_RWR6frlijpNww_dQyA.2MMa"
    "1phixEpXUtwF3PP0ig";
/* jose.json negative "jose-recipient1-bytes100-tampered-tag" (plaintext "bytes100") */
static const char JOSE_JWE_BYTES100_TAMPERED_TAG[] =
    "eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTI1NkdDTSIsImVwayI6eyJrdHkiOiJFQyIsImNydiI6"
    "IlAtMjU2IiwieCI6InRNYzZzWGd6MW54VHhEcWJNZm5RcDBac2x2TnM5TjZ1bXNuSlhBd2t3a00i"
    "LCJ5IjoiaVRYdjZRU0I5UEtkZFZKSXE5eWtjZzg1VTh0TmtuSnk0cEsyYmMwcmh0QSJ9fQ..3xyq"
    "x9eD9G-TWdwl.mEDnxuRSgvuNknmwRDqWzuMC7J-T1hsiszLB5QS9i_MtBmiNWblXfvMlPzBl9yP"
    "TVHV2j-zJ3Iz12G92YBTceTGvYz9xdVOuElx7BeZhTR4EUZvt4uy_RWR6frlijpNww_dQyA.2MMa"
    "1phixEpXUtwF3PP0iw";

/* ---------------------------------------------------------------------------------------- */
/* Reporting                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static int g_failed;

static void report(bool ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        printf("PASS: %s\n", name);
        return;
    }
    g_failed = 1;
    printf("FAIL: %s \xe2\x80\x94 ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void passf(const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    report(true, name, "");
}

/* Masks of acceptable return codes: W(KRS_EMALFORMED) | W(KRS_EPOLICY). */
#define W(code) (1u << (unsigned)(-(code)))

/* Every return code of common.h. Tests/cabi/run.sh generates the list from the header
 * (KRS_CODES_INC) so that codes added later are covered; the fallback is the crypto set. */
static const struct {
    int code;
    const char *name;
} all_codes[] = {
#ifdef KRS_CODES_INC
#define KRS_CODE(c) {c, #c},
#include KRS_CODES_INC
#undef KRS_CODE
#else
    {KRS_OK, "KRS_OK"},           {KRS_ERROR, "KRS_ERROR"},       {KRS_ENOMEM, "KRS_ENOMEM"},
    {KRS_EINVAL, "KRS_EINVAL"},   {KRS_ECRYPTO, "KRS_ECRYPTO"},   {KRS_EDNS, "KRS_EDNS"},
    {KRS_EKEYTYPE, "KRS_EKEYTYPE"}, {KRS_EMALFORMED, "KRS_EMALFORMED"},
    {KRS_ETOOBIG, "KRS_ETOOBIG"}, {KRS_EPOLICY, "KRS_EPOLICY"},
#endif
};

static const char *rcname(int rc)
{
    for (size_t i = 0; i < sizeof all_codes / sizeof all_codes[0]; i++)
        if (all_codes[i].code == rc) return all_codes[i].name;
    return "unknown code";
}

static bool rc_in(int rc, unsigned mask)
{
    return rc <= 0 && rc > -32 && (mask & W(rc)) != 0;
}

static const char *maskname(unsigned mask)
{
    static char buf[256];
    buf[0] = '\0';
    for (int c = 0; c > -32; c--) {
        if (mask & W(c)) {
            if (buf[0]) strncat(buf, "|", sizeof buf - strlen(buf) - 1);
            strncat(buf, rcname(c), sizeof buf - strlen(buf) - 1);
        }
    }
    return buf;
}

/* A non-NULL pointer value the library never hands out: out-params are preset to it to see
 * that a call resets them. Never dereferenced or freed. */
static char g_sentinel_obj;
#define SENTINEL ((void *)&g_sentinel_obj)
#define SENTINEL_LEN ((size_t)0x5a5a)

/* ---------------------------------------------------------------------------------------- */
/* Small helpers (hex, base64url, a flat JSON object reader)                                */
/* ---------------------------------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex into a malloc'd buffer; exits on malformed input (test bug). */
static uint8_t *unhex(const char *hex, size_t *out_len)
{
    size_t n = strlen(hex);
    if (n % 2) {
        fprintf(stderr, "test bug: odd hex\n");
        exit(2);
    }
    uint8_t *out = malloc(n / 2 + 1);
    if (!out) exit(2);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "test bug: bad hex\n");
            exit(2);
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = n / 2;
    return out;
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url_enc(const uint8_t *in, size_t n)
{
    char *out = malloc(n * 4 / 3 + 4);
    if (!out) exit(2);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
        out[o++] = B64URL[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

/* Decodes unpadded base64url text[0..n); returns malloc'd bytes or NULL when invalid. */
static uint8_t *b64url_dec(const char *text, size_t n, size_t *out_len)
{
    if (n % 4 == 1) return NULL;
    uint8_t *out = malloc(n * 3 / 4 + 3);
    if (!out) exit(2);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = memchr(B64URL, text[i], 64);
        if (!p || text[i] == '\0') {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)(p - B64URL);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = o;
    return out;
}

/* A flat JSON object whose values are all strings (a JWK). */
#define JOBJ_MAX 16
typedef struct {
    int n;
    char key[JOBJ_MAX][32];
    char val[JOBJ_MAX][256];
} jobj_t;

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *read_jstr(const char *p, char *dst, size_t cap)
{
    if (*p != '"') return NULL;
    p++;
    size_t o = 0;
    while (*p && *p != '"') {
        if (*p == '\\') return NULL; /* JWK members never need escapes */
        if (o + 1 >= cap) return NULL;
        dst[o++] = *p++;
    }
    if (*p != '"') return NULL;
    dst[o] = '\0';
    return p + 1;
}

static bool jobj_parse(const char *s, jobj_t *o)
{
    memset(o, 0, sizeof *o);
    const char *p = skip_ws(s);
    if (*p++ != '{') return false;
    p = skip_ws(p);
    if (*p == '}') return *skip_ws(p + 1) == '\0';
    for (;;) {
        if (o->n == JOBJ_MAX) return false;
        p = read_jstr(skip_ws(p), o->key[o->n], sizeof o->key[0]);
        if (!p) return false;
        p = skip_ws(p);
        if (*p++ != ':') return false;
        p = read_jstr(skip_ws(p), o->val[o->n], sizeof o->val[0]);
        if (!p) return false;
        for (int i = 0; i < o->n; i++)
            if (!strcmp(o->key[i], o->key[o->n])) return false; /* duplicate member */
        o->n++;
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p != '}') return false;
        return *skip_ws(p + 1) == '\0';
    }
}

static const char *jobj_get(const jobj_t *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->key[i], key)) return o->val[i];
    return NULL;
}

/* Same member set with the same values (order ignored). */
static bool jobj_equal(const jobj_t *a, const jobj_t *b)
{
    if (a->n != b->n) return false;
    for (int i = 0; i < a->n; i++) {
        const char *v = jobj_get(b, a->key[i]);
        if (!v || strcmp(v, a->val[i])) return false;
    }
    return true;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d) exit(2);
    memcpy(d, s, n + 1);
    return d;
}

static uint8_t *pattern(size_t n, unsigned mod)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b) exit(2);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i % mod);
    return b;
}

/* ---------------------------------------------------------------------------------------- */
/* Checked wrappers around the backend functions                                            */
/* ---------------------------------------------------------------------------------------- */

static const crypto_backend_t *HP, *JO;

static const crypto_backend_t *backend_or_die(const char *name)
{
    const crypto_backend_t *b = crypto_get_backend(name);
    if (!b) {
        report(false, name, "crypto_get_backend(\"%s\") returned NULL; section skipped", name);
        exit(1);
    }
    return b;
}

/* Parses a key; returns the handle when the call succeeded (also when it was expected to fail,
 * in which case the handle is freed here and NULL returned). */
static void *t_parse(const crypto_backend_t *b, bool priv, const char *data, size_t len,
                       unsigned want, const char *name)
{
    void *k = SENTINEL;
    int rc = priv ? b->parse_private_key(data, len, &k) : b->parse_public_key(data, len, &k);
    if (want == W(KRS_OK)) {
        bool ok = rc == KRS_OK && k != NULL && k != SENTINEL;
        report(ok, name, "got %s (%d), handle %s", rcname(rc), rc,
               k == NULL ? "NULL" : k == SENTINEL ? "not written" : "set");
        if (rc == KRS_OK && k != NULL && k != SENTINEL) return k;
        return NULL;
    }
    bool ok = rc_in(rc, want) && (rc == KRS_OK ? (k != NULL && k != SENTINEL) : k == NULL);
    report(ok, name, "got %s (%d), want %s; out-param %s", rcname(rc), rc, maskname(want),
           k == NULL ? "NULL" : k == SENTINEL ? "NOT reset to NULL" : "set to a handle");
    if (rc == KRS_OK && k && k != SENTINEL) {
        if (priv) b->free_private_key(k);
        else b->free_public_key(k);
    }
    return NULL;
}

/* Serializes; on success returns the string (free with krs_free). */
static char *t_serialize(const crypto_backend_t *b, bool priv, void *key, unsigned want,
                       const char *name)
{
    char *out = SENTINEL;
    size_t out_len = SENTINEL_LEN;
    int rc = priv ? b->serialize_private_key(key, &out, &out_len)
                  : b->serialize_public_key(key, &out, &out_len);
    if (want == W(KRS_OK)) {
        bool ok = rc == KRS_OK && out != NULL && out != SENTINEL;
        if (!ok) {
            report(false, name, "got %s (%d), out %s", rcname(rc), rc,
                   out == NULL ? "NULL" : out == SENTINEL ? "not written" : "set");
            return NULL;
        }
        bool nul = strlen(out) == out_len;
        report(nul, name, "*out_len (%zu) != strlen(*out) (%zu): not NUL-terminated at out_len",
               out_len, strlen(out));
        return out;
    }
    bool ok = rc_in(rc, want) && out == NULL && out_len == 0;
    report(ok, name, "got %s (%d), want %s; out %s, out_len %s", rcname(rc), rc, maskname(want),
           out == NULL ? "NULL" : out == SENTINEL ? "NOT reset" : "set",
           out_len == 0 ? "0" : "NOT 0");
    if (rc == KRS_OK && out && out != SENTINEL) krs_free(out);
    return NULL;
}

static uint8_t *t_encrypt(const crypto_backend_t *b, void *pub, const uint8_t *pt, size_t n,
                        size_t *ct_len, unsigned want, const char *name)
{
    uint8_t *ct = SENTINEL;
    size_t len = SENTINEL_LEN;
    int rc = b->encrypt(pub, pt, n, &ct, &len);
    if (want == W(KRS_OK)) {
        bool ok = rc == KRS_OK && ct != NULL && ct != SENTINEL && len > 0;
        report(ok, name, "got %s (%d), ct %s, ct_len %zu", rcname(rc), rc,
               ct == NULL ? "NULL" : ct == SENTINEL ? "not written" : "set", len);
        if (rc == KRS_OK && ct && ct != SENTINEL) {
            *ct_len = len;
            return ct;
        }
        return NULL;
    }
    bool ok = rc_in(rc, want) && ct == NULL && len == 0;
    report(ok, name, "got %s (%d), want %s; ct %s, ct_len %s", rcname(rc), rc, maskname(want),
           ct == NULL ? "NULL" : ct == SENTINEL ? "NOT reset" : "set", len == 0 ? "0" : "NOT 0");
    if (rc == KRS_OK && ct && ct != SENTINEL) krs_free(ct);
    return NULL;
}

/* Decrypts and, on expected success, compares with exp[0..exp_len). Returns rc. */
static int t_decrypt(const crypto_backend_t *b, void *priv, const uint8_t *ct, size_t ct_len,
                   unsigned want, const uint8_t *exp, size_t exp_len, const char *name)
{
    uint8_t *pt = SENTINEL;
    size_t len = SENTINEL_LEN;
    int rc = b->decrypt(priv, ct, ct_len, &pt, &len);
    if (want == W(KRS_OK)) {
        if (rc != KRS_OK || pt == NULL || pt == SENTINEL) {
            report(false, name, "got %s (%d), pt %s", rcname(rc), rc,
                   pt == NULL ? "NULL (a zero-length plaintext must be a non-NULL buffer)"
                   : pt == SENTINEL ? "not written" : "set");
            if (rc == KRS_OK && pt && pt != SENTINEL) krs_free(pt);
            return rc;
        }
        bool same = len == exp_len && (exp_len == 0 || memcmp(pt, exp, exp_len) == 0);
        report(same, name, "plaintext differs (got %zu bytes, want %zu)", len, exp_len);
        krs_free(pt);
        return rc;
    }
    bool ok = rc_in(rc, want) && pt == NULL && len == 0;
    report(ok, name, "got %s (%d), want %s; pt %s, pt_len %s", rcname(rc), rc, maskname(want),
           pt == NULL ? "NULL" : pt == SENTINEL ? "NOT reset" : "set", len == 0 ? "0" : "NOT 0");
    if (rc == KRS_OK && pt && pt != SENTINEL) krs_free(pt);
    return rc;
}

static bool generate(const crypto_backend_t *b, void **pub, void **priv, const char *name)
{
    *pub = SENTINEL;
    *priv = SENTINEL;
    int rc = b->generate_keypair(priv, pub); /* the design's order: private key first */
    bool ok = rc == KRS_OK && *pub && *priv && *pub != SENTINEL && *priv != SENTINEL &&
              *pub != *priv;
    report(ok, name, "got %s (%d), pub %s, priv %s", rcname(rc), rc, *pub ? "set" : "NULL",
           *priv ? "set" : "NULL");
    if (!ok) {
        if (rc == KRS_OK) {
            if (*pub && *pub != SENTINEL) b->free_public_key(*pub);
            if (*priv && *priv != SENTINEL) b->free_private_key(*priv);
        }
        *pub = *priv = NULL;
    }
    return ok;
}

static bool is_lower_hex64(const char *s)
{
    if (strlen(s) != 64) return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

/* Memcheck makes 64 MiB AES-GCM runs take minutes: the exact-limit checks run without it. */
static bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload") != NULL;
}

/* A plaintext of exactly KRS_CRYPTO_MAX_PLAINTEXT bytes is accepted and round trips. */
static void max_plaintext_roundtrip(const crypto_backend_t *b, void *pub, void *priv)
{
    char n[200];
    if (under_valgrind()) {
        printf("# %s: exact KRS_CRYPTO_MAX_PLAINTEXT round trip skipped under valgrind\n", b->name);
        return;
    }
    size_t max = (size_t)KRS_CRYPTO_MAX_PLAINTEXT, cl = 0;
    uint8_t *big = malloc(max);
    if (!big) return;
    for (size_t i = 0; i < max; i++) big[i] = (uint8_t)(i * 31u + (i >> 12));
    snprintf(n, sizeof n, "%s: encrypt exactly KRS_CRYPTO_MAX_PLAINTEXT bytes", b->name);
    uint8_t *ct = t_encrypt(b, pub, big, max, &cl, W(KRS_OK), n);
    if (ct) {
        snprintf(n, sizeof n, "%s: decrypt a KRS_CRYPTO_MAX_PLAINTEXT-byte plaintext", b->name);
        t_decrypt(b, priv, ct, cl, W(KRS_OK), big, max, n);
        krs_free(ct);
    }
    free(big);
}

/* ---------------------------------------------------------------------------------------- */
/* Sections                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void sec_lookup(void)
{
    const crypto_backend_t *h = crypto_get_backend("hpke");
    const crypto_backend_t *j = crypto_get_backend("jose");
    report(h != NULL, "crypto_get_backend(\"hpke\") is non-NULL", "NULL");
    report(j != NULL, "crypto_get_backend(\"jose\") is non-NULL", "NULL");
    report(crypto_get_backend("nope") == NULL, "crypto_get_backend(\"nope\") is NULL", "non-NULL");
    report(crypto_get_backend(NULL) == NULL, "crypto_get_backend(NULL) is NULL", "non-NULL");
    report(crypto_get_backend("") == NULL, "crypto_get_backend(\"\") is NULL", "non-NULL");
    report(crypto_get_backend("HPKE") == NULL, "crypto_get_backend(\"HPKE\") is NULL (exact name)",
           "non-NULL");
    report(crypto_get_backend("hpke ") == NULL, "crypto_get_backend(\"hpke \") is NULL",
           "non-NULL");
    if (!h || !j) return;
    report(h != j, "hpke and jose backends are distinct", "same pointer");
    report(crypto_get_backend("hpke") == h && crypto_get_backend("jose") == j,
           "crypto_get_backend returns the same static table each time", "pointer changed");
    const crypto_backend_t *bs[2] = {h, j};
    const char *names[2] = {"hpke", "jose"};
    for (int i = 0; i < 2; i++) {
        const crypto_backend_t *b = bs[i];
        char n[128];
        snprintf(n, sizeof n, "%s: name is \"%s\"", names[i], names[i]);
        report(b->name && !strcmp(b->name, names[i]), n, "name is %s",
               b->name ? "a different string" : "NULL");
        snprintf(n, sizeof n, "%s: every function pointer of crypto_backend_t is set", names[i]);
        report(b->generate_keypair && b->parse_public_key && b->parse_private_key && b->encrypt &&
                   b->decrypt && b->free_public_key && b->free_private_key &&
                   b->serialize_public_key && b->serialize_private_key,
               n, "a member is NULL");
    }
}

static void sec_common(void)
{
    const size_t nc = sizeof all_codes / sizeof all_codes[0];
    const char *texts[sizeof all_codes / sizeof all_codes[0]];
    int lowest = 0;
    for (size_t i = 0; i < nc; i++) {
        const char *s = krs_strerror(all_codes[i].code);
        texts[i] = s;
        if (all_codes[i].code < lowest) lowest = all_codes[i].code;
        char n[128];
        snprintf(n, sizeof n, "krs_strerror(%s) is a non-empty specific text", all_codes[i].name);
        report(s && s[0] && strcmp(s, "unknown error") != 0, n, "%s",
               !s ? "NULL" : !s[0] ? "empty" : "\"unknown error\"");
    }
    bool distinct = true;
    for (size_t i = 0; i < nc; i++)
        for (size_t k = i + 1; k < nc; k++)
            if (texts[i] && texts[k] && strcmp(texts[i], "unknown error") != 0 &&
                !strcmp(texts[i], texts[k]))
                distinct = false;
    {
        char n[128];
        snprintf(n, sizeof n, "krs_strerror texts of the %zu codes in common.h are distinct", nc);
        report(distinct, n, "two codes share a text");
    }
    /* one past the last code in the header, and values no code will ever have */
    const int unknown[] = {lowest - 1, 1, 42, -1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = krs_strerror(unknown[i]);
        char n[128];
        snprintf(n, sizeof n, "krs_strerror(%d) is \"unknown error\"", unknown[i]);
        report(s && !strcmp(s, "unknown error"), n, "%s", s ? "other text" : "NULL");
    }
    report(krs_strerror(KRS_ECRYPTO) == krs_strerror(KRS_ECRYPTO),
           "krs_strerror returns static storage (same pointer twice)", "pointer changed");

    const char *v = krs_version();
    report(v && v[0], "krs_version is non-empty", v ? "empty" : "NULL");
    if (v && v[0]) {
        unsigned a, b, c;
        char tail;
        int k = sscanf(v, "%u.%u.%u%c", &a, &b, &c, &tail);
        report(k == 3 || (k == 4 && (tail == '-' || tail == '+')),
               "krs_version looks like MAJOR.MINOR.PATCH", "got \"%s\"", v);
        report(krs_version() == v, "krs_version returns static storage", "pointer changed");
    }

    krs_free(NULL);
    passf("krs_free(NULL) returns");

    char stackbuf[24] = "not library memory";
    krs_free(stackbuf);
    report(!strcmp(stackbuf, "not library memory"),
           "krs_free of a stack buffer leaves it untouched", "buffer was modified");
    char *heap = malloc(32);
    if (!heap) exit(2);
    memcpy(heap, "malloc'd, not from libtdnskrs", 30);
    krs_free(heap);
    report(!strcmp(heap, "malloc'd, not from libtdnskrs"),
           "krs_free of a malloc'd buffer it did not hand out leaves it untouched",
           "buffer was modified (or freed)");
    free(heap);
}

/* NULL for each pointer argument, for one backend. */
static void sec_nulls(const crypto_backend_t *b)
{
    const char *bn = b->name;
    char n[256];
    void *pub = NULL, *priv = NULL;
    snprintf(n, sizeof n, "%s: generate_keypair for the NULL-argument checks", bn);
    if (!generate(b, &pub, &priv, n)) return;

    void *p1 = SENTINEL, *p2 = SENTINEL;
    int rc = b->generate_keypair(NULL, &p2);
    snprintf(n, sizeof n, "%s: generate_keypair(NULL, &pub) -> KRS_EINVAL, pub NULL", bn);
    report(rc == KRS_EINVAL && p2 == NULL, n, "got %s, pub %s", rcname(rc),
           p2 == NULL ? "NULL" : p2 == SENTINEL ? "NOT reset" : "set (leaked)");
    rc = b->generate_keypair(&p1, NULL);
    snprintf(n, sizeof n, "%s: generate_keypair(&priv, NULL) -> KRS_EINVAL, priv NULL", bn);
    report(rc == KRS_EINVAL && p1 == NULL, n, "got %s, priv %s", rcname(rc),
           p1 == NULL ? "NULL" : p1 == SENTINEL ? "NOT reset" : "set (leaked)");
    rc = b->generate_keypair(NULL, NULL);
    snprintf(n, sizeof n, "%s: generate_keypair(NULL, NULL) -> KRS_EINVAL", bn);
    report(rc == KRS_EINVAL, n, "got %s", rcname(rc));

    char *pubtext = NULL, *privtext = NULL;
    size_t pubtext_len = 0, privtext_len = 0;
    snprintf(n, sizeof n, "%s: serialize_public_key for the NULL-argument checks", bn);
    pubtext = t_serialize(b, false, pub, W(KRS_OK), n);
    snprintf(n, sizeof n, "%s: serialize_private_key for the NULL-argument checks", bn);
    privtext = t_serialize(b, true, priv, W(KRS_OK), n);
    if (!pubtext || !privtext) goto out;
    pubtext_len = strlen(pubtext);
    privtext_len = strlen(privtext);

    for (int which = 0; which < 2; which++) {
        bool isp = which == 1;
        const char *fn = isp ? "parse_private_key" : "parse_public_key";
        const char *text = isp ? privtext : pubtext;
        size_t tl = isp ? privtext_len : pubtext_len;
        snprintf(n, sizeof n, "%s: %s(NULL, %zu, &key) -> KRS_EINVAL", bn, fn, tl);
        t_parse(b, isp, NULL, tl, W(KRS_EINVAL), n);
        snprintf(n, sizeof n, "%s: %s(NULL, 0, &key) -> KRS_EINVAL or KRS_EMALFORMED", bn, fn);
        t_parse(b, isp, NULL, 0, W(KRS_EINVAL) | W(KRS_EMALFORMED), n);
        rc = isp ? b->parse_private_key(text, tl, NULL) : b->parse_public_key(text, tl, NULL);
        snprintf(n, sizeof n, "%s: %s(valid, len, NULL) -> KRS_EINVAL", bn, fn);
        report(rc == KRS_EINVAL, n, "got %s (%d)", rcname(rc), rc);
    }

    uint8_t pt[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    size_t dummy;
    snprintf(n, sizeof n, "%s: encrypt(NULL key, ...) -> KRS_EINVAL", bn);
    t_encrypt(b, NULL, pt, sizeof pt, &dummy, W(KRS_EINVAL), n);
    snprintf(n, sizeof n, "%s: encrypt(key, NULL pt, 10, ...) -> KRS_EINVAL", bn);
    t_encrypt(b, pub, NULL, sizeof pt, &dummy, W(KRS_EINVAL), n);
    {
        size_t l = SENTINEL_LEN;
        rc = b->encrypt(pub, pt, sizeof pt, NULL, &l);
        snprintf(n, sizeof n, "%s: encrypt(..., NULL ct, &len) -> KRS_EINVAL, len 0", bn);
        report(rc == KRS_EINVAL && l == 0, n, "got %s, len %s", rcname(rc), l ? "NOT 0" : "0");
        uint8_t *c = SENTINEL;
        rc = b->encrypt(pub, pt, sizeof pt, &c, NULL);
        snprintf(n, sizeof n, "%s: encrypt(..., &ct, NULL len) -> KRS_EINVAL, ct NULL", bn);
        report(rc == KRS_EINVAL && c == NULL, n, "got %s, ct %s", rcname(rc),
               c == NULL ? "NULL" : c == SENTINEL ? "NOT reset" : "set");
        if (rc == KRS_OK && c && c != SENTINEL) krs_free(c);
    }

    size_t ct_len = 0;
    snprintf(n, sizeof n, "%s: encrypt 10 bytes for the decrypt NULL-argument checks", bn);
    uint8_t *ct = t_encrypt(b, pub, pt, sizeof pt, &ct_len, W(KRS_OK), n);
    if (ct) {
        snprintf(n, sizeof n, "%s: decrypt(NULL key, ...) -> KRS_EINVAL", bn);
        t_decrypt(b, NULL, ct, ct_len, W(KRS_EINVAL), NULL, 0, n);
        snprintf(n, sizeof n, "%s: decrypt(key, NULL ct, %zu, ...) -> KRS_EINVAL", bn, ct_len);
        t_decrypt(b, priv, NULL, ct_len, W(KRS_EINVAL), NULL, 0, n);
        snprintf(n, sizeof n, "%s: decrypt(key, NULL ct, 0, ...) -> KRS_EINVAL or KRS_EMALFORMED",
                 bn);
        t_decrypt(b, priv, NULL, 0, W(KRS_EINVAL) | W(KRS_EMALFORMED), NULL, 0, n);
        size_t l = SENTINEL_LEN;
        rc = b->decrypt(priv, ct, ct_len, NULL, &l);
        snprintf(n, sizeof n, "%s: decrypt(..., NULL pt, &len) -> KRS_EINVAL, len 0", bn);
        report(rc == KRS_EINVAL && l == 0, n, "got %s, len %s", rcname(rc), l ? "NOT 0" : "0");
        uint8_t *p = SENTINEL;
        rc = b->decrypt(priv, ct, ct_len, &p, NULL);
        snprintf(n, sizeof n, "%s: decrypt(..., &pt, NULL len) -> KRS_EINVAL, pt NULL", bn);
        report(rc == KRS_EINVAL && p == NULL, n, "got %s, pt %s", rcname(rc),
               p == NULL ? "NULL" : p == SENTINEL ? "NOT reset" : "set");
        if (rc == KRS_OK && p && p != SENTINEL) krs_free(p);
        snprintf(n, sizeof n, "%s: decrypt round trip still works after the NULL checks", bn);
        t_decrypt(b, priv, ct, ct_len, W(KRS_OK), pt, sizeof pt, n);
        krs_free(ct);
    }

    for (int which = 0; which < 2; which++) {
        bool isp = which == 1;
        const char *fn = isp ? "serialize_private_key" : "serialize_public_key";
        void *key = isp ? priv : pub;
        snprintf(n, sizeof n, "%s: %s(NULL key, ...) -> KRS_EINVAL", bn, fn);
        t_serialize(b, isp, NULL, W(KRS_EINVAL), n);
        size_t l = SENTINEL_LEN;
        rc = isp ? b->serialize_private_key(key, NULL, &l) : b->serialize_public_key(key, NULL, &l);
        snprintf(n, sizeof n, "%s: %s(key, NULL out, &len) -> KRS_EINVAL, len 0", bn, fn);
        report(rc == KRS_EINVAL && l == 0, n, "got %s, len %s", rcname(rc), l ? "NOT 0" : "0");
        char *o = SENTINEL;
        rc = isp ? b->serialize_private_key(key, &o, NULL) : b->serialize_public_key(key, &o, NULL);
        snprintf(n, sizeof n, "%s: %s(key, &out, NULL len) -> KRS_EINVAL, out NULL", bn, fn);
        report(rc == KRS_EINVAL && o == NULL, n, "got %s, out %s", rcname(rc),
               o == NULL ? "NULL" : o == SENTINEL ? "NOT reset" : "set");
        if (rc == KRS_OK && o && o != SENTINEL) krs_free(o);
    }

    b->free_public_key(NULL);
    snprintf(n, sizeof n, "%s: free_public_key(NULL) returns", bn);
    passf("%s", n);
    b->free_private_key(NULL);
    snprintf(n, sizeof n, "%s: free_private_key(NULL) returns", bn);
    passf("%s", n);

out:
    if (pubtext) krs_free(pubtext);
    if (privtext) krs_free(privtext);
    b->free_public_key(pub);
    b->free_private_key(priv);
}

/* generate / serialize / parse round trips and encrypt / decrypt round trips. */
static void sec_roundtrip(const crypto_backend_t *b)
{
    const bool hp = b == HP;
    const char *bn = b->name;
    char n[256];
    void *pub, *priv;
    snprintf(n, sizeof n, "%s: generate_keypair", bn);
    if (!generate(b, &pub, &priv, n)) return;

    snprintf(n, sizeof n, "%s: serialize_public_key(pub)", bn);
    char *pubtext = t_serialize(b, false, pub, W(KRS_OK), n);
    snprintf(n, sizeof n, "%s: serialize_public_key(priv) (public half)", bn);
    char *pubtext2 = t_serialize(b, false, priv, W(KRS_OK), n);
    snprintf(n, sizeof n, "%s: serialize_private_key(priv)", bn);
    char *privtext = t_serialize(b, true, priv, W(KRS_OK), n);
    snprintf(n, sizeof n, "%s: serialize_private_key(pub) -> KRS_EKEYTYPE", bn);
    t_serialize(b, true, pub, W(KRS_EKEYTYPE), n);

    if (pubtext && pubtext2) {
        snprintf(n, sizeof n, "%s: public half of the private key serializes like the public key",
                 bn);
        report(!strcmp(pubtext, pubtext2), n, "serializations differ");
    }
    if (pubtext && privtext) {
        if (hp) {
            snprintf(n, sizeof n, "hpke: public key serializes as 64 lowercase hex");
            report(is_lower_hex64(pubtext), n, "%zu chars, not all [0-9a-f]", strlen(pubtext));
            snprintf(n, sizeof n, "hpke: private key serializes as 64 lowercase hex");
            report(is_lower_hex64(privtext), n, "%zu chars, not all [0-9a-f]", strlen(privtext));
            report(strcmp(pubtext, privtext) != 0, "hpke: private and public serializations differ",
                   "identical");
        } else {
            jobj_t o;
            bool okp = jobj_parse(pubtext, &o);
            report(okp, "jose: public key serializes as a flat JWK JSON object", "not parseable");
            if (okp) {
                const char *x = jobj_get(&o, "x"), *y = jobj_get(&o, "y");
                bool members = o.n == 6 && jobj_get(&o, "use") && !strcmp(jobj_get(&o, "use"), "enc") &&
                               jobj_get(&o, "kty") && !strcmp(jobj_get(&o, "kty"), "EC") &&
                               jobj_get(&o, "crv") && !strcmp(jobj_get(&o, "crv"), "P-256") &&
                               jobj_get(&o, "alg") && !strcmp(jobj_get(&o, "alg"), "ECDH-ES") && x &&
                               y;
                report(members,
                       "jose: public JWK has exactly use=enc,kty=EC,crv=P-256,alg=ECDH-ES,x,y",
                       "%d members or wrong values", o.n);
                size_t xl = 0, yl = 0;
                uint8_t *xb = x ? b64url_dec(x, strlen(x), &xl) : NULL;
                uint8_t *yb = y ? b64url_dec(y, strlen(y), &yl) : NULL;
                report(xb && yb && xl == 32 && yl == 32 && strlen(x) == 43 && strlen(y) == 43,
                       "jose: public JWK x and y are unpadded base64url of 32 bytes",
                       "x %zu bytes, y %zu bytes", xl, yl);
                free(xb);
                free(yb);
            }
            okp = jobj_parse(privtext, &o);
            report(okp, "jose: private key serializes as a flat JWK JSON object", "not parseable");
            if (okp) {
                const char *d = jobj_get(&o, "d");
                size_t dl = 0;
                uint8_t *db = d ? b64url_dec(d, strlen(d), &dl) : NULL;
                report(o.n == 7 && db && dl == 32,
                       "jose: private JWK has the 6 public members plus d (32 bytes)",
                       "%d members, d %s", o.n, db ? "present" : "missing/invalid");
                free(db);
                jobj_t op;
                if (jobj_parse(pubtext, &op)) {
                    bool same = true;
                    for (int i = 0; i < op.n; i++) {
                        const char *v = jobj_get(&o, op.key[i]);
                        if (!v || strcmp(v, op.val[i])) same = false;
                    }
                    report(same, "jose: private JWK's public members equal the public JWK",
                           "members differ");
                }
            }
            report(strstr(pubtext, "\"d\"") == NULL, "jose: public JWK has no \"d\"", "has d");
        }

        /* text round trips */
        snprintf(n, sizeof n, "%s: parse_public_key(serialized public key)", bn);
        void *pub2 = t_parse(b, false, pubtext, strlen(pubtext), W(KRS_OK), n);
        if (pub2) {
            snprintf(n, sizeof n, "%s: re-serialize parsed public key", bn);
            char *t = t_serialize(b, false, pub2, W(KRS_OK), n);
            if (t) {
                snprintf(n, sizeof n, "%s: public key serialize -> parse -> serialize is stable", bn);
                report(!strcmp(t, pubtext), n, "serializations differ");
                krs_free(t);
            }
        }
        snprintf(n, sizeof n, "%s: parse_private_key(serialized private key)", bn);
        void *priv2 = t_parse(b, true, privtext, strlen(privtext), W(KRS_OK), n);
        if (priv2) {
            snprintf(n, sizeof n, "%s: re-serialize parsed private key", bn);
            char *t = t_serialize(b, true, priv2, W(KRS_OK), n);
            if (t) {
                snprintf(n, sizeof n, "%s: private key serialize -> parse -> serialize is stable",
                         bn);
                report(!strcmp(t, privtext), n, "serializations differ");
                krs_free(t);
            }
            snprintf(n, sizeof n, "%s: public half of the parsed private key", bn);
            t = t_serialize(b, false, priv2, W(KRS_OK), n);
            if (t) {
                snprintf(n, sizeof n, "%s: parsed private key derives the same public key", bn);
                report(!strcmp(t, pubtext), n, "public halves differ");
                krs_free(t);
            }
        }
        snprintf(n, sizeof n, "%s: parse_public_key(serialized private key) -> KRS_EKEYTYPE", bn);
        if (!hp) t_parse(b, false, privtext, strlen(privtext), W(KRS_EKEYTYPE), n);
        snprintf(n, sizeof n, "%s: parse_private_key(serialized public key) -> KRS_EKEYTYPE", bn);
        if (!hp) t_parse(b, true, pubtext, strlen(pubtext), W(KRS_EKEYTYPE), n);

        /* encrypt / decrypt round trips through the original and the re-parsed handles */
        static const size_t sizes[] = {0, 1, 100, 65536};
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t sz = sizes[si];
            uint8_t *pt = pattern(sz, 251);
            size_t ct_len = 0;
            snprintf(n, sizeof n, "%s: encrypt %zu bytes", bn, sz);
            uint8_t *ct = t_encrypt(b, pub, pt, sz, &ct_len, W(KRS_OK), n);
            if (ct) {
                if (hp) {
                    snprintf(n, sizeof n, "hpke: ciphertext of %zu bytes is 32 + %zu + 16 bytes", sz,
                             sz);
                    report(ct_len == 32 + sz + 16, n, "ct_len %zu", ct_len);
                } else {
                    int dots = 0;
                    size_t seg[5] = {0}, pos[5] = {0};
                    bool ascii = true;
                    for (size_t i = 0; i < ct_len; i++) {
                        if (ct[i] == '.') {
                            if (dots < 4) pos[dots + 1] = i + 1;
                            dots++;
                        } else if (!memchr(B64URL, ct[i], 64) || ct[i] == 0) {
                            ascii = false;
                        }
                    }
                    snprintf(n, sizeof n,
                             "jose: ciphertext of %zu bytes is compact JWE (5 base64url parts)", sz);
                    report(ascii && dots == 4, n, "%d dots, %s", dots,
                           ascii ? "base64url only" : "other bytes present");
                    if (ascii && dots == 4) {
                        for (int i = 0; i < 5; i++)
                            seg[i] = (i < 4 ? pos[i + 1] - 1 : ct_len) - pos[i];
                        size_t l_iv = 0, l_ct = 0, l_tag = 0, l_h = 0;
                        uint8_t *iv = b64url_dec((char *)ct + pos[2], seg[2], &l_iv);
                        uint8_t *cc = b64url_dec((char *)ct + pos[3], seg[3], &l_ct);
                        uint8_t *tg = b64url_dec((char *)ct + pos[4], seg[4], &l_tag);
                        uint8_t *hd = b64url_dec((char *)ct + pos[0], seg[0], &l_h);
                        snprintf(n, sizeof n,
                                 "jose: %zu-byte JWE has empty encrypted key, 12-byte IV, %zu-byte "
                                 "ciphertext, 16-byte tag",
                                 sz, sz);
                        report(seg[1] == 0 && iv && l_iv == 12 && cc && l_ct == sz && tg &&
                                   l_tag == 16,
                               n, "key seg %zu chars, iv %zu, ct %zu, tag %zu bytes", seg[1], l_iv,
                               l_ct, l_tag);
                        if (hd) {
                            char *h = malloc(l_h + 1);
                            if (!h) exit(2);
                            /* compare without JSON whitespace (no header value has blanks) */
                            size_t hn = 0;
                            for (size_t q = 0; q < l_h; q++)
                                if (hd[q] != ' ' && hd[q] != '\t' && hd[q] != '\n' && hd[q] != '\r')
                                    h[hn++] = (char)hd[q];
                            h[hn] = 0;
                            snprintf(n, sizeof n,
                                     "jose: %zu-byte JWE header has alg ECDH-ES, enc A256GCM, "
                                     "P-256 epk, no zip/crit",
                                     sz);
                            report(strstr(h, "\"alg\":\"ECDH-ES\"") && strstr(h, "\"enc\":\"A256GCM\"") &&
                                       strstr(h, "\"epk\"") && strstr(h, "\"P-256\"") &&
                                       !strstr(h, "\"zip\"") && !strstr(h, "\"crit\""),
                                   n, "unexpected header");
                            free(h);
                        }
                        free(iv);
                        free(cc);
                        free(tg);
                        free(hd);
                    }
                }
                snprintf(n, sizeof n, "%s: decrypt %zu bytes (generated key)", bn, sz);
                t_decrypt(b, priv, ct, ct_len, W(KRS_OK), pt, sz, n);
                if (priv2) {
                    snprintf(n, sizeof n, "%s: decrypt %zu bytes with the re-parsed private key", bn,
                             sz);
                    t_decrypt(b, priv2, ct, ct_len, W(KRS_OK), pt, sz, n);
                }
                krs_free(ct);
            }
            if (pub2) {
                snprintf(n, sizeof n, "%s: encrypt %zu bytes to the re-parsed public key", bn, sz);
                ct = t_encrypt(b, pub2, pt, sz, &ct_len, W(KRS_OK), n);
                if (ct) {
                    snprintf(n, sizeof n, "%s: decrypt %zu bytes sent to the re-parsed public key",
                             bn, sz);
                    t_decrypt(b, priv, ct, ct_len, W(KRS_OK), pt, sz, n);
                    krs_free(ct);
                }
            }
            free(pt);
        }

        /* pt == NULL with pt_len == 0 is allowed */
        size_t ct_len = 0;
        snprintf(n, sizeof n, "%s: encrypt(pub, NULL, 0) is allowed", bn);
        uint8_t *ct = t_encrypt(b, pub, NULL, 0, &ct_len, W(KRS_OK), n);
        if (ct) {
            snprintf(n, sizeof n, "%s: decrypt of encrypt(NULL, 0) gives a non-NULL empty buffer",
                     bn);
            t_decrypt(b, priv, ct, ct_len, W(KRS_OK), NULL, 0, n);
            krs_free(ct);
        }

        /* encryption is randomized */
        uint8_t msg[32] = {0};
        size_t l1 = 0, l2 = 0;
        snprintf(n, sizeof n, "%s: encrypt a 32-byte message (first time)", bn);
        uint8_t *c1 = t_encrypt(b, pub, msg, sizeof msg, &l1, W(KRS_OK), n);
        snprintf(n, sizeof n, "%s: encrypt the same 32-byte message again", bn);
        uint8_t *c2 = t_encrypt(b, pub, msg, sizeof msg, &l2, W(KRS_OK), n);
        if (c1 && c2) {
            snprintf(n, sizeof n, "%s: two encryptions of one message differ (fresh ephemeral key)",
                     bn);
            report(l1 != l2 || memcmp(c1, c2, l1) != 0, n, "identical ciphertexts");
        }

        /* wrong key, wrong key kind */
        void *opub, *opriv;
        snprintf(n, sizeof n, "%s: generate a second key pair", bn);
        if (c1 && generate(b, &opub, &opriv, n)) {
            snprintf(n, sizeof n, "%s: decrypt with another private key -> KRS_ECRYPTO", bn);
            t_decrypt(b, opriv, c1, l1, W(KRS_ECRYPTO), NULL, 0, n);
            b->free_public_key(opub);
            b->free_private_key(opriv);
        }
        if (c1) {
            snprintf(n, sizeof n, "%s: decrypt with a public key handle -> KRS_EKEYTYPE", bn);
            t_decrypt(b, pub, c1, l1, W(KRS_EKEYTYPE), NULL, 0, n);
        }
        if (c1) krs_free(c1);
        if (c2) krs_free(c2);

        if (pub2) b->free_public_key(pub2);
        if (priv2) b->free_private_key(priv2);
    }
    if (pubtext) krs_free(pubtext);
    if (pubtext2) krs_free(pubtext2);
    if (privtext) krs_free(privtext);
    b->free_public_key(pub);
    b->free_private_key(priv);
}

/* Handles of the other backend, and of a kind the call cannot use. */
static void sec_cross(void)
{
    void *hpub, *hpriv, *jpub, *jpriv;
    if (!generate(HP, &hpub, &hpriv, "cross: hpke generate_keypair")) return;
    if (!generate(JO, &jpub, &jpriv, "cross: jose generate_keypair")) {
        HP->free_public_key(hpub);
        HP->free_private_key(hpriv);
        return;
    }
    uint8_t pt[16] = {0};
    size_t hl = 0, jl = 0, d;
    uint8_t *hct = t_encrypt(HP, hpub, pt, sizeof pt, &hl, W(KRS_OK), "cross: hpke encrypt");
    uint8_t *jct = t_encrypt(JO, jpub, pt, sizeof pt, &jl, W(KRS_OK), "cross: jose encrypt");

    t_encrypt(JO, hpub, pt, sizeof pt, &d, W(KRS_EKEYTYPE), "cross: jose encrypt to an HPKE public key -> KRS_EKEYTYPE");
    t_encrypt(HP, jpub, pt, sizeof pt, &d, W(KRS_EKEYTYPE), "cross: hpke encrypt to a JOSE public key -> KRS_EKEYTYPE");
    if (jct) {
        t_decrypt(JO, hpriv, jct, jl, W(KRS_EKEYTYPE), NULL, 0,
                "cross: jose decrypt with an HPKE private key -> KRS_EKEYTYPE");
        t_decrypt(HP, jpriv, jct, jl, W(KRS_EKEYTYPE), NULL, 0,
                "cross: hpke decrypt with a JOSE private key -> KRS_EKEYTYPE");
        t_decrypt(HP, hpriv, jct, jl, W(KRS_EMALFORMED) | W(KRS_ECRYPTO), NULL, 0,
                "cross: hpke decrypt of a JWE -> KRS_EMALFORMED or KRS_ECRYPTO");
    }
    if (hct) {
        t_decrypt(JO, jpriv, hct, hl, W(KRS_EMALFORMED), NULL, 0,
                "cross: jose decrypt of an HPKE ciphertext -> KRS_EMALFORMED");
        t_decrypt(HP, hpub, hct, hl, W(KRS_EKEYTYPE), NULL, 0,
                "cross: hpke decrypt with the public key handle -> KRS_EKEYTYPE");
    }
    t_serialize(JO, false, hpub, W(KRS_EKEYTYPE), "cross: jose serialize_public_key(HPKE key) -> KRS_EKEYTYPE");
    t_serialize(JO, true, hpriv, W(KRS_EKEYTYPE), "cross: jose serialize_private_key(HPKE key) -> KRS_EKEYTYPE");
    t_serialize(HP, false, jpub, W(KRS_EKEYTYPE), "cross: hpke serialize_public_key(JOSE key) -> KRS_EKEYTYPE");
    t_serialize(HP, true, jpriv, W(KRS_EKEYTYPE), "cross: hpke serialize_private_key(JOSE key) -> KRS_EKEYTYPE");
    t_serialize(JO, true, jpub, W(KRS_EKEYTYPE), "cross: jose serialize_private_key(public key) -> KRS_EKEYTYPE");

    /* key text of one backend given to the other */
    char *ht = t_serialize(HP, false, hpub, W(KRS_OK), "cross: hpke serialize public");
    char *jt = t_serialize(JO, true, jpriv, W(KRS_OK), "cross: jose serialize private");
    if (ht) {
        t_parse(JO, false, ht, strlen(ht), W(KRS_EMALFORMED), "cross: jose parse_public_key(HPKE hex) -> KRS_EMALFORMED");
        t_parse(JO, true, ht, strlen(ht), W(KRS_EMALFORMED), "cross: jose parse_private_key(HPKE hex) -> KRS_EMALFORMED");
        krs_free(ht);
    }
    if (jt) {
        t_parse(HP, false, jt, strlen(jt), W(KRS_EMALFORMED), "cross: hpke parse_public_key(JWK) -> KRS_EMALFORMED");
        t_parse(HP, true, jt, strlen(jt), W(KRS_EMALFORMED), "cross: hpke parse_private_key(JWK) -> KRS_EMALFORMED");
        krs_free(jt);
    }
    if (hct) krs_free(hct);
    if (jct) krs_free(jct);
    HP->free_public_key(hpub);
    HP->free_private_key(hpriv);
    JO->free_public_key(jpub);
    JO->free_private_key(jpriv);
}

/* A pointer the library never made, passed as a key handle. */
static void sec_foreign_handle(void)
{
    uint64_t fake[16];
    memset(fake, 0, sizeof fake);
    uint8_t pt[4] = {1, 2, 3, 4};
    size_t d;
    const crypto_backend_t *bs[2] = {HP, JO};
    for (int i = 0; i < 2; i++) {
        const crypto_backend_t *b = bs[i];
        char n[200];
        snprintf(n, sizeof n, "%s: encrypt with a handle the library never made -> KRS_EINVAL or KRS_EKEYTYPE", b->name);
        t_encrypt(b, fake, pt, sizeof pt, &d, W(KRS_EINVAL) | W(KRS_EKEYTYPE), n);
        snprintf(n, sizeof n, "%s: decrypt with a handle the library never made -> KRS_EINVAL or KRS_EKEYTYPE", b->name);
        t_decrypt(b, fake, pt, sizeof pt, W(KRS_EINVAL) | W(KRS_EKEYTYPE), NULL, 0, n);
        snprintf(n, sizeof n, "%s: serialize_public_key of a handle the library never made -> KRS_EINVAL or KRS_EKEYTYPE", b->name);
        t_serialize(b, false, fake, W(KRS_EINVAL) | W(KRS_EKEYTYPE), n);
    }
}

/* The Go vectors of Tests/Vectors/hpke.json. */
static void sec_hpke_vectors(void)
{
    const crypto_backend_t *b = HP;
    void *priv = t_parse(b, true, HPKE_R1_PRIV_HEX, strlen(HPKE_R1_PRIV_HEX), W(KRS_OK),
                           "hpke vectors: parse recipient1 private key (hex)");
    void *pub = t_parse(b, false, HPKE_R1_PUB_HEX, strlen(HPKE_R1_PUB_HEX), W(KRS_OK),
                          "hpke vectors: parse recipient1 public key (hex)");
    if (priv) {
        char *t = t_serialize(b, false, priv, W(KRS_OK), "hpke vectors: serialize recipient1 public half");
        if (t) {
            report(!strcmp(t, HPKE_R1_PUB_HEX),
                   "hpke vectors: recipient1 public key derived from the private key matches Go",
                   "differs");
            krs_free(t);
        }
        t = t_serialize(b, true, priv, W(KRS_OK), "hpke vectors: serialize recipient1 private key");
        if (t) {
            report(!strcmp(t, HPKE_R1_PRIV_HEX),
                   "hpke vectors: recipient1 private key serializes back to Go's 32 bytes (unclamped)",
                   "differs");
            krs_free(t);
        }
        struct {
            const char *id;
            const char *hex;
            size_t len;
        } v[] = {{"hpke-recipient1-empty", HPKE_CT_EMPTY, 0},
                 {"hpke-recipient1-A", HPKE_CT_A, 1},
                 {"hpke-recipient1-bytes100", HPKE_CT_BYTES100, 100}};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            size_t cl;
            uint8_t *ct = unhex(v[i].hex, &cl);
            uint8_t *exp = v[i].len == 1 ? (uint8_t *)xstrdup("A") : pattern(v[i].len, 256);
            char n[200];
            snprintf(n, sizeof n, "hpke vectors: decrypt Go vector %s", v[i].id);
            t_decrypt(b, priv, ct, cl, W(KRS_OK), exp, v[i].len, n);
            free(exp);
            free(ct);
        }
        size_t cl;
        uint8_t *ct = unhex(HPKE_CT_BYTES100_TAMPERED_TAG, &cl);
        t_decrypt(b, priv, ct, cl, W(KRS_ECRYPTO), NULL, 0,
                "hpke vectors: Go negative hpke-recipient1-bytes100-tampered-tag -> KRS_ECRYPTO");
        free(ct);
    }
    if (pub) {
        char *t = t_serialize(b, false, pub, W(KRS_OK), "hpke vectors: serialize recipient1 public key");
        if (t) {
            report(!strcmp(t, HPKE_R1_PUB_HEX), "hpke vectors: recipient1 public key round trips",
                   "differs");
            krs_free(t);
        }
        b->free_public_key(pub);
    }
    void *ex = t_parse(b, true, HPKE_EX_PRIV_HEX, strlen(HPKE_EX_PRIV_HEX), W(KRS_OK),
                         "hpke vectors: parse Go GenerateKeypair example private key");
    if (ex) {
        char *t = t_serialize(b, false, ex, W(KRS_OK), "hpke vectors: serialize example public half");
        if (t) {
            report(!strcmp(t, HPKE_EX_PUB_HEX),
                   "hpke vectors: example public key derived from the private key matches Go",
                   "differs");
            krs_free(t);
        }
        b->free_private_key(ex);
    }
    if (priv) b->free_private_key(priv);
}

/* Key text formats and malformed HPKE input. */
static void sec_hpke_bad(void)
{
    const crypto_backend_t *b = HP;
    char n[256];
    size_t rawlen;
    uint8_t *raw = unhex(HPKE_R1_PUB_HEX, &rawlen);
    uint8_t *rawpriv = unhex(HPKE_R1_PRIV_HEX, &rawlen);

    /* accepted forms */
    struct {
        const char *what;
        bool priv;
        char *text;
        size_t len;
    } ok[8];
    int nok = 0;
    char buf[512];
    ok[nok].what = "32 raw bytes";
    ok[nok].priv = false;
    ok[nok].text = malloc(32);
    if (!ok[nok].text) exit(2);
    memcpy(ok[nok].text, raw, 32);
    ok[nok++].len = 32;
    snprintf(buf, sizeof buf, "# tdns hpke public key\n# second comment\n  \t%s \n\n", HPKE_R1_PUB_HEX);
    ok[nok].what = "hex with '#' comment lines and surrounding whitespace";
    ok[nok].priv = false;
    ok[nok].text = xstrdup(buf);
    ok[nok].len = strlen(buf);
    nok++;
    snprintf(buf, sizeof buf, "# comment\r\n%s\r\n", HPKE_R1_PUB_HEX);
    ok[nok].what = "hex with CRLF line ends";
    ok[nok].priv = false;
    ok[nok].text = xstrdup(buf);
    ok[nok].len = strlen(buf);
    nok++;
    snprintf(buf, sizeof buf, "%s\n", HPKE_R1_PUB_HEX);
    ok[nok].what = "hex with a trailing newline";
    ok[nok].priv = false;
    ok[nok].text = xstrdup(buf);
    ok[nok].len = strlen(buf);
    nok++;
    snprintf(buf, sizeof buf, "%s", HPKE_R1_PUB_HEX);
    for (char *p = buf; *p; p++) *p = (char)toupper((unsigned char)*p);
    ok[nok].what = "upper-case hex";
    ok[nok].priv = false;
    ok[nok].text = xstrdup(buf);
    ok[nok].len = strlen(buf);
    nok++;
    ok[nok].what = "32 raw bytes";
    ok[nok].priv = true;
    ok[nok].text = malloc(32);
    if (!ok[nok].text) exit(2);
    memcpy(ok[nok].text, rawpriv, 32);
    ok[nok++].len = 32;
    snprintf(buf, sizeof buf, "# tdns hpke private key\n\n%s\n", HPKE_R1_PRIV_HEX);
    ok[nok].what = "hex with '#' comment lines and surrounding whitespace";
    ok[nok].priv = true;
    ok[nok].text = xstrdup(buf);
    ok[nok].len = strlen(buf);
    nok++;
    for (int i = 0; i < nok; i++) {
        snprintf(n, sizeof n, "hpke: %s accepts %s", ok[i].priv ? "parse_private_key" : "parse_public_key",
                 ok[i].what);
        void *k = t_parse(b, ok[i].priv, ok[i].text, ok[i].len, W(KRS_OK), n);
        if (k) {
            snprintf(n, sizeof n, "hpke: serialize the %s key parsed from %s",
                     ok[i].priv ? "private" : "public", ok[i].what);
            char *t = t_serialize(b, ok[i].priv, k, W(KRS_OK), n);
            if (t) {
                snprintf(n, sizeof n, "hpke: %s key from %s serializes to the expected lowercase hex",
                         ok[i].priv ? "private" : "public", ok[i].what);
                report(!strcmp(t, ok[i].priv ? HPKE_R1_PRIV_HEX : HPKE_R1_PUB_HEX), n, "differs");
                krs_free(t);
            }
            if (ok[i].priv) b->free_private_key(k);
            else b->free_public_key(k);
        }
        free(ok[i].text);
    }

    /* malformed */
    char h63[64], h65[66], hg[65], hsp[66], h0x[67];
    memcpy(h63, HPKE_R1_PUB_HEX, 63);
    h63[63] = 0;
    snprintf(h65, sizeof h65, "%s0", HPKE_R1_PUB_HEX);
    snprintf(hg, sizeof hg, "%s", HPKE_R1_PUB_HEX);
    hg[10] = 'g';
    memcpy(hsp, HPKE_R1_PUB_HEX, 32);
    hsp[32] = ' ';
    memcpy(hsp + 33, HPKE_R1_PUB_HEX + 32, 33);
    snprintf(h0x, sizeof h0x, "0x%s", HPKE_R1_PUB_HEX);
    struct {
        const char *what;
        const char *text;
        size_t len;
    } bad[] = {
        {"63 hex characters", h63, 63},
        {"65 hex characters", h65, 65},
        {"a non-hex character", hg, 64},
        {"whitespace inside the hex", hsp, 65},
        {"a 0x prefix", h0x, 66},
        {"31 raw bytes", (const char *)raw, 31},
        {"33 bytes", "0123456789abcdef0123456789abcdef0", 33},
        {"empty input (len 0)", "", 0},
        {"only comment lines", "# nothing here\n# still nothing\n", 31},
        {"only whitespace", "   \n\t  \n", 8},
        {"64 hex chars after a comment on the same line", "# x d77a78380fa503be1e50a742d5aedb4c2c2cb561f2c4804b52d20b7c65645941", 68},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(n, sizeof n, "hpke: parse_public_key rejects %s -> KRS_EMALFORMED", bad[i].what);
        t_parse(b, false, bad[i].text, bad[i].len, W(KRS_EMALFORMED), n);
        snprintf(n, sizeof n, "hpke: parse_private_key rejects %s -> KRS_EMALFORMED", bad[i].what);
        t_parse(b, true, bad[i].text, bad[i].len, W(KRS_EMALFORMED), n);
    }
    static const char zero64[] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    static const char zero32[32] = {0};
    t_parse(b, false, zero32, 32, W(KRS_EMALFORMED), "hpke: all-zero public key (32 raw bytes) -> KRS_EMALFORMED");
    t_parse(b, false, zero64, 64, W(KRS_EMALFORMED), "hpke: all-zero public key (hex) -> KRS_EMALFORMED");
    t_parse(b, true, zero64, 64, W(KRS_EMALFORMED),
              "hpke: all-zero private key (hex) -> KRS_EMALFORMED (Go rejectZeroKey, PROTOCOL 7)");

    /* low-order X25519 points: parse may refuse them, otherwise encrypt must fail (PROTOCOL 19) */
    static const char *low_order[] = {
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    };
    for (size_t i = 0; i < sizeof low_order / sizeof low_order[0]; i++) {
        void *k = SENTINEL;
        int rc = b->parse_public_key(low_order[i], 64, &k);
        snprintf(n, sizeof n, "hpke: low-order public key #%zu is refused (parse KRS_EMALFORMED or encrypt KRS_ECRYPTO)", i + 1);
        if (rc == KRS_OK && k && k != SENTINEL) {
            uint8_t *ct = SENTINEL;
            size_t cl = SENTINEL_LEN;
            uint8_t pt[8] = {0};
            int erc = b->encrypt(k, pt, sizeof pt, &ct, &cl);
            report(erc == KRS_ECRYPTO && ct == NULL && cl == 0, n,
                   "parse KRS_OK, then encrypt %s (%d)", rcname(erc), erc);
            if (erc == KRS_OK && ct && ct != SENTINEL) krs_free(ct);
            b->free_public_key(k);
        } else {
            report(rc == KRS_EMALFORMED && k == NULL, n, "parse %s (%d), handle %s", rcname(rc), rc,
                   k ? "not NULL" : "NULL");
        }
    }

    /* size limit on key text: a long '#' comment line, the hex, a newline */
    for (int over = 0; over < 2; over++) {
        size_t total = (size_t)KRS_CRYPTO_MAX_KEY_TEXT + (size_t)over;
        for (int isp = 0; isp < 2; isp++) {
            const char *hex = isp ? HPKE_R1_PRIV_HEX : HPKE_R1_PUB_HEX;
            char *t = malloc(total);
            if (!t) exit(2);
            memset(t, 'x', total);
            t[0] = '#';
            t[total - 66] = '\n';
            memcpy(t + total - 65, hex, 64);
            t[total - 1] = '\n';
            if (over) {
                snprintf(n, sizeof n, "hpke: %s key text of KRS_CRYPTO_MAX_KEY_TEXT+1 bytes -> KRS_ETOOBIG",
                         isp ? "private" : "public");
                t_parse(b, isp, t, total, W(KRS_ETOOBIG), n);
            } else {
                snprintf(n, sizeof n, "hpke: %s key text of exactly KRS_CRYPTO_MAX_KEY_TEXT bytes is parsed",
                         isp ? "private" : "public");
                void *k = t_parse(b, isp, t, total, W(KRS_OK), n);
                if (k) {
                    if (isp) b->free_private_key(k);
                    else b->free_public_key(k);
                }
            }
            free(t);
        }
    }
    {
        /* oversize garbage must be ETOOBIG (rejected before parsing), not EMALFORMED */
        size_t total = (size_t)KRS_CRYPTO_MAX_KEY_TEXT + 1;
        char *t = malloc(total);
        if (!t) exit(2);
        memset(t, 'z', total);
        t_parse(b, false, t, total, W(KRS_ETOOBIG),
                "hpke: oversize garbage key text -> KRS_ETOOBIG (size checked before parsing)");
        free(t);
    }

    /* ciphertext damage */
    void *priv = t_parse(b, true, HPKE_R1_PRIV_HEX, 64, W(KRS_OK), "hpke: parse recipient1 private key");
    if (priv) {
        size_t cl;
        uint8_t *ct = unhex(HPKE_CT_BYTES100, &cl);
        uint8_t *exp = pattern(100, 256);
        t_decrypt(b, priv, ct, cl, W(KRS_OK), exp, 100, "hpke: undamaged vector decrypts");
        struct {
            const char *what;
            size_t at;
        } flips[] = {{"enc (ephemeral key)", 5}, {"AEAD ciphertext", 32 + 50}, {"tag", 147}};
        for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
            ct[flips[i].at] ^= 0x04;
            snprintf(n, sizeof n, "hpke: one flipped bit in the %s -> KRS_ECRYPTO", flips[i].what);
            t_decrypt(b, priv, ct, cl, W(KRS_ECRYPTO), NULL, 0, n);
            ct[flips[i].at] ^= 0x04;
        }
        t_decrypt(b, priv, ct, cl - 1, W(KRS_ECRYPTO), NULL, 0, "hpke: ciphertext truncated by 1 byte -> KRS_ECRYPTO");
        t_decrypt(b, priv, ct, 48, W(KRS_ECRYPTO), NULL, 0, "hpke: ciphertext truncated to 48 bytes -> KRS_ECRYPTO");
        t_decrypt(b, priv, ct, 47, W(KRS_EMALFORMED), NULL, 0, "hpke: ciphertext of 47 bytes (< enc+tag) -> KRS_EMALFORMED");
        t_decrypt(b, priv, ct, 32, W(KRS_EMALFORMED), NULL, 0, "hpke: ciphertext of only enc (32 bytes) -> KRS_EMALFORMED");
        t_decrypt(b, priv, ct, 0, W(KRS_EMALFORMED), NULL, 0, "hpke: empty ciphertext (len 0) -> KRS_EMALFORMED");
        uint8_t *longer = malloc(cl + 1);
        if (!longer) exit(2);
        memcpy(longer, ct, cl);
        longer[cl] = 0;
        t_decrypt(b, priv, longer, cl + 1, W(KRS_ECRYPTO), NULL, 0, "hpke: ciphertext with one extra byte -> KRS_ECRYPTO");
        free(longer);
        uint8_t saved[32];
        memcpy(saved, ct, 32);
        memset(ct, 0, 32);
        t_decrypt(b, priv, ct, cl, W(KRS_ECRYPTO), NULL, 0, "hpke: all-zero enc -> KRS_ECRYPTO");
        size_t lol;
        uint8_t *lo = unhex(low_order[1], &lol);
        memcpy(ct, lo, 32);
        free(lo);
        t_decrypt(b, priv, ct, cl, W(KRS_ECRYPTO), NULL, 0, "hpke: low-order point as enc -> KRS_ECRYPTO");
        memcpy(ct, saved, 32);

        /* ETOOBIG without reading the input: a huge length over zero pages */
        size_t hugelen = (size_t)KRS_CRYPTO_MAX_PLAINTEXT + 48 + 1;
        uint8_t *huge = calloc(1, hugelen);
        if (huge) {
            t_decrypt(b, priv, huge, hugelen, W(KRS_ETOOBIG), NULL, 0,
                    "hpke: ciphertext of KRS_CRYPTO_MAX_PLAINTEXT+49 bytes -> KRS_ETOOBIG");
            free(huge);
        }
        free(exp);
        free(ct);
        b->free_private_key(priv);
    }
    {
        void *gp, *gs;
        if (generate(b, &gp, &gs, "hpke: generate_keypair for the size-limit checks")) {
            max_plaintext_roundtrip(b, gp, gs);
            b->free_public_key(gp);
            b->free_private_key(gs);
        }
    }
    void *pub = t_parse(b, false, HPKE_R1_PUB_HEX, 64, W(KRS_OK), "hpke: parse recipient1 public key");
    if (pub) {
        size_t hugelen = (size_t)KRS_CRYPTO_MAX_PLAINTEXT + 1, d;
        uint8_t *huge = calloc(1, hugelen);
        if (huge) {
            t_encrypt(b, pub, huge, hugelen, &d, W(KRS_ETOOBIG),
                    "hpke: encrypt of KRS_CRYPTO_MAX_PLAINTEXT+1 bytes -> KRS_ETOOBIG");
            free(huge);
        }
        b->free_public_key(pub);
    }
    free(raw);
    free(rawpriv);
}

/* The Go vectors of Tests/Vectors/jose.json. */
static void sec_jose_vectors(void)
{
    const crypto_backend_t *b = JO;
    void *priv = t_parse(b, true, JOSE_R1_PRIV_JWK, strlen(JOSE_R1_PRIV_JWK), W(KRS_OK),
                           "jose vectors: parse recipient1 private JWK");
    void *pub = t_parse(b, false, JOSE_R1_PUB_JWK, strlen(JOSE_R1_PUB_JWK), W(KRS_OK),
                          "jose vectors: parse recipient1 public JWK");
    jobj_t want_pub, want_priv, got;
    if (!jobj_parse(JOSE_R1_PUB_JWK, &want_pub) || !jobj_parse(JOSE_R1_PRIV_JWK, &want_priv)) {
        fprintf(stderr, "test bug: vector JWK\n");
        exit(2);
    }
    if (priv) {
        char *t = t_serialize(b, false, priv, W(KRS_OK), "jose vectors: serialize recipient1 public half");
        if (t) {
            report(jobj_parse(t, &got) && jobj_equal(&got, &want_pub),
                   "jose vectors: recipient1 public JWK derived from the private key equals Go's (same members and values)",
                   "differs");
            report(!strcmp(t, JOSE_R1_PUB_JWK),
                   "jose vectors: public JWK is byte-identical to Go's (member order use,kty,crv,alg,x,y)",
                   "different bytes (member order or spacing)");
            krs_free(t);
        }
        t = t_serialize(b, true, priv, W(KRS_OK), "jose vectors: serialize recipient1 private JWK");
        if (t) {
            report(jobj_parse(t, &got) && jobj_equal(&got, &want_priv),
                   "jose vectors: recipient1 private JWK equals Go's (same members and values)", "differs");
            report(!strcmp(t, JOSE_R1_PRIV_JWK),
                   "jose vectors: private JWK is byte-identical to Go's (member order use,kty,crv,alg,x,y,d)",
                   "different bytes (member order or spacing)");
            krs_free(t);
        }
        struct {
            const char *id;
            const char *jwe;
            size_t len;
        } v[] = {{"jose-recipient1-empty (Go itself cannot decrypt it)", JOSE_JWE_EMPTY, 0},
                 {"jose-recipient1-A", JOSE_JWE_A, 1},
                 {"jose-recipient1-bytes100", JOSE_JWE_BYTES100, 100}};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            uint8_t *exp = v[i].len == 1 ? (uint8_t *)xstrdup("A") : pattern(v[i].len, 256);
            char n[200];
            snprintf(n, sizeof n, "jose vectors: decrypt Go vector %s", v[i].id);
            t_decrypt(b, priv, (const uint8_t *)v[i].jwe, strlen(v[i].jwe), W(KRS_OK), exp, v[i].len, n);
            free(exp);
        }
        t_decrypt(b, priv, (const uint8_t *)JOSE_JWE_BYTES100_TAMPERED_TAG,
                strlen(JOSE_JWE_BYTES100_TAMPERED_TAG), W(KRS_ECRYPTO), NULL, 0,
                "jose vectors: Go negative jose-recipient1-bytes100-tampered-tag -> KRS_ECRYPTO");
    }
    if (pub) {
        char *t = t_serialize(b, false, pub, W(KRS_OK), "jose vectors: serialize recipient1 public JWK");
        if (t) {
            report(jobj_parse(t, &got) && jobj_equal(&got, &want_pub),
                   "jose vectors: recipient1 public JWK round trips", "differs");
            krs_free(t);
        }
        b->free_public_key(pub);
    }
    void *ex = t_parse(b, true, JOSE_EX_PRIV_JWK, strlen(JOSE_EX_PRIV_JWK), W(KRS_OK),
                         "jose vectors: parse Go GenerateKeypair example private JWK");
    if (ex) {
        char *t = t_serialize(b, false, ex, W(KRS_OK), "jose vectors: serialize example public half");
        jobj_t w;
        if (t && jobj_parse(JOSE_EX_PUB_JWK, &w)) {
            report(jobj_parse(t, &got) && jobj_equal(&got, &w),
                   "jose vectors: example public JWK derived from the private key equals Go's", "differs");
        }
        if (t) krs_free(t);
        b->free_private_key(ex);
    }
    if (priv) b->free_private_key(priv);
}

/* Builds a JWK text from a template JWK by setting (or, with val NULL, removing) one member. */
static char *jwk_with(const char *tmpl, const char *key, const char *val)
{
    jobj_t o;
    if (!jobj_parse(tmpl, &o)) exit(2);
    char *out = malloc(4096);
    if (!out) exit(2);
    size_t p = 0;
    bool done = false;
    out[p++] = '{';
    for (int i = 0; i < o.n; i++) {
        const char *v = o.val[i];
        if (!strcmp(o.key[i], key)) {
            done = true;
            if (!val) continue;
            v = val;
        }
        p += (size_t)snprintf(out + p, 4096 - p, "%s\"%s\":\"%s\"", p > 1 ? "," : "", o.key[i], v);
    }
    if (!done && val) p += (size_t)snprintf(out + p, 4096 - p, "%s\"%s\":\"%s\"", p > 1 ? "," : "", key, val);
    snprintf(out + p, 4096 - p, "}");
    return out;
}

static void sec_jose_bad(void)
{
    const crypto_backend_t *b = JO;
    char n[300];
    jobj_t r1, ex;
    if (!jobj_parse(JOSE_R1_PRIV_JWK, &r1) || !jobj_parse(JOSE_EX_PRIV_JWK, &ex)) exit(2);

    /* accepted variants */
    {
        char *min_pub = xstrdup("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"\",\"y\":\"\"}");
        char *t1 = jwk_with(min_pub, "x", jobj_get(&r1, "x"));
        char *t2 = jwk_with(t1, "y", jobj_get(&r1, "y"));
        void *k = t_parse(b, false, t2, strlen(t2), W(KRS_OK),
                            "jose: parse_public_key accepts a JWK without use/alg (kty,crv,x,y only)");
        if (k) b->free_public_key(k);
        char *t3 = jwk_with(t2, "d", jobj_get(&r1, "d"));
        k = t_parse(b, true, t3, strlen(t3), W(KRS_OK),
                      "jose: parse_private_key accepts a JWK without use/alg (kty,crv,x,y,d only)");
        if (k) b->free_private_key(k);
        free(min_pub);
        free(t1);
        free(t2);
        free(t3);
        char *ws = malloc(strlen(JOSE_R1_PUB_JWK) + 16);
        if (!ws) exit(2);
        sprintf(ws, "\n  %s \n", JOSE_R1_PUB_JWK);
        k = t_parse(b, false, ws, strlen(ws), W(KRS_OK), "jose: parse_public_key accepts surrounding JSON whitespace");
        if (k) b->free_public_key(k);
        free(ws);
    }

    /* metadata members: what Go's GenerateKeypair writes, the signing variants, a kid */
    {
        struct {
            const char *what, *key, *val;
            unsigned want;
        } meta[] = {
            {"alg ES256 (a signing key of the same curve) is accepted", "alg", "ES256", W(KRS_OK)},
            {"use sig is accepted", "use", "sig", W(KRS_OK)},
            {"a kid member is accepted", "kid", "kdc-1", W(KRS_OK)},
            {"alg ECDH-ES+A256KW -> KRS_EPOLICY", "alg", "ECDH-ES+A256KW", W(KRS_EPOLICY)},
            {"alg RSA-OAEP -> KRS_EPOLICY", "alg", "RSA-OAEP", W(KRS_EPOLICY)},
            {"use foo -> KRS_EPOLICY", "use", "foo", W(KRS_EPOLICY)},
            {"an unknown member gives a documented code (KRS_OK or KRS_EMALFORMED)", "foo", "bar",
             W(KRS_OK) | W(KRS_EMALFORMED)},
        };
        for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++) {
            char *t = jwk_with(JOSE_R1_PUB_JWK, meta[i].key, meta[i].val);
            snprintf(n, sizeof n, "jose: parse_public_key: %s", meta[i].what);
            void *k = t_parse(b, false, t, strlen(t), meta[i].want, n);
            if (k) b->free_public_key(k);
            free(t);
            t = jwk_with(JOSE_R1_PRIV_JWK, meta[i].key, meta[i].val);
            snprintf(n, sizeof n, "jose: parse_private_key: %s", meta[i].what);
            k = t_parse(b, true, t, strlen(t), meta[i].want, n);
            if (k) b->free_private_key(k);
            free(t);
        }
    }

    /* malformed public keys */
    char *pubs[16];
    const char *pw[16];
    int np = 0;
    char x31[64];
    {
        size_t xl;
        uint8_t *xb = b64url_dec(jobj_get(&r1, "x"), strlen(jobj_get(&r1, "x")), &xl);
        char *e = b64url_enc(xb + 1, 31);
        snprintf(x31, sizeof x31, "%s", e);
        free(e);
        free(xb);
    }
    {
        /* Keys of another kind: KRS_EKEYTYPE. */
        const char *what[4] = {"\"d\" present in a public key", "kty RSA", "kty OKP", "crv P-384"};
        char *kinds[4] = {xstrdup(JOSE_R1_PRIV_JWK), jwk_with(JOSE_R1_PUB_JWK, "kty", "RSA"),
                          jwk_with(JOSE_R1_PUB_JWK, "kty", "OKP"), jwk_with(JOSE_R1_PUB_JWK, "crv", "P-384")};
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "jose: parse_public_key rejects %s -> KRS_EKEYTYPE", what[i]);
            t_parse(b, false, kinds[i], strlen(kinds[i]), W(KRS_EKEYTYPE), n);
            free(kinds[i]);
        }
    }
    pw[np] = "missing crv";
    pubs[np++] = jwk_with(JOSE_R1_PUB_JWK, "crv", NULL);
    pw[np] = "missing y";
    pubs[np++] = jwk_with(JOSE_R1_PUB_JWK, "y", NULL);
    pw[np] = "x of 31 bytes";
    pubs[np++] = jwk_with(JOSE_R1_PUB_JWK, "x", x31);
    pw[np] = "x not base64url";
    pubs[np++] = jwk_with(JOSE_R1_PUB_JWK, "x", "sGfvvCV63lfohLR/3iKVyUDks0af4U1LchRVD4PyAZo");
    pw[np] = "point not on the curve (y of another key)";
    pubs[np++] = jwk_with(JOSE_R1_PUB_JWK, "y", jobj_get(&ex, "y"));
    pw[np] = "not JSON";
    pubs[np++] = xstrdup("this is not a JWK");
    pw[np] = "a JSON array";
    pubs[np++] = xstrdup("[1,2,3]");
    pw[np] = "an empty JSON object";
    pubs[np++] = xstrdup("{}");
    pw[np] = "truncated JSON";
    pubs[np++] = xstrdup(JOSE_R1_PUB_JWK);
    pubs[np - 1][strlen(pubs[np - 1]) / 2] = '\0';
    pw[np] = "a JWK Set";
    {
        char *s = malloc(strlen(JOSE_R1_PUB_JWK) + 16);
        if (!s) exit(2);
        sprintf(s, "{\"keys\":[%s]}", JOSE_R1_PUB_JWK);
        pubs[np++] = s;
    }
    for (int i = 0; i < np; i++) {
        snprintf(n, sizeof n, "jose: parse_public_key rejects %s -> KRS_EMALFORMED", pw[i]);
        t_parse(b, false, pubs[i], strlen(pubs[i]), W(KRS_EMALFORMED), n);
        free(pubs[i]);
    }
    t_parse(b, false, "", 0, W(KRS_EMALFORMED), "jose: parse_public_key rejects empty input (len 0) -> KRS_EMALFORMED");

    /* malformed private keys */
    char *privs[8];
    const char *qw[8];
    int nq = 0;
    char d31[64];
    {
        size_t dl;
        uint8_t *db = b64url_dec(jobj_get(&r1, "d"), strlen(jobj_get(&r1, "d")), &dl);
        char *e = b64url_enc(db + 1, 31);
        snprintf(d31, sizeof d31, "%s", e);
        free(e);
        free(db);
    }
    t_parse(b, true, JOSE_R1_PUB_JWK, strlen(JOSE_R1_PUB_JWK), W(KRS_EKEYTYPE),
            "jose: parse_private_key rejects a JWK without \"d\" -> KRS_EKEYTYPE");
    {
        char *p384 = jwk_with(JOSE_R1_PRIV_JWK, "crv", "P-384");
        t_parse(b, true, p384, strlen(p384), W(KRS_EKEYTYPE), "jose: parse_private_key rejects crv P-384 -> KRS_EKEYTYPE");
        free(p384);
    }
    qw[nq] = "d that does not belong to x/y";
    privs[nq++] = jwk_with(JOSE_R1_PRIV_JWK, "d", jobj_get(&ex, "d"));
    qw[nq] = "x/y of another key";
    {
        char *t = jwk_with(JOSE_R1_PRIV_JWK, "x", jobj_get(&ex, "x"));
        privs[nq++] = jwk_with(t, "y", jobj_get(&ex, "y"));
        free(t);
    }
    qw[nq] = "d of 31 bytes";
    privs[nq++] = jwk_with(JOSE_R1_PRIV_JWK, "d", d31);
    qw[nq] = "d = 0";
    privs[nq++] = jwk_with(JOSE_R1_PRIV_JWK, "d", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    for (int i = 0; i < nq; i++) {
        snprintf(n, sizeof n, "jose: parse_private_key rejects %s -> KRS_EMALFORMED", qw[i]);
        t_parse(b, true, privs[i], strlen(privs[i]), W(KRS_EMALFORMED), n);
        free(privs[i]);
    }

    /* key text size limit */
    size_t lim = KRS_CRYPTO_MAX_KEY_TEXT, jl = strlen(JOSE_R1_PUB_JWK);
    char *t = malloc(lim + 2);
    if (!t) exit(2);
    memcpy(t, JOSE_R1_PUB_JWK, jl);
    memset(t + jl, ' ', lim + 1 - jl);
    void *k = t_parse(b, false, t, lim, W(KRS_OK), "jose: public JWK of exactly KRS_CRYPTO_MAX_KEY_TEXT bytes (trailing spaces) is parsed");
    if (k) b->free_public_key(k);
    t_parse(b, false, t, lim + 1, W(KRS_ETOOBIG), "jose: public JWK of KRS_CRYPTO_MAX_KEY_TEXT+1 bytes -> KRS_ETOOBIG");
    jl = strlen(JOSE_R1_PRIV_JWK);
    memcpy(t, JOSE_R1_PRIV_JWK, jl);
    memset(t + jl, ' ', lim + 1 - jl);
    t_parse(b, true, t, lim + 1, W(KRS_ETOOBIG), "jose: private JWK of KRS_CRYPTO_MAX_KEY_TEXT+1 bytes -> KRS_ETOOBIG");
    memset(t, '{', lim + 1);
    t_parse(b, false, t, lim + 1, W(KRS_ETOOBIG), "jose: oversize garbage JWK text -> KRS_ETOOBIG (size checked before parsing)");
    free(t);

    {
        void *gp, *gs;
        if (generate(b, &gp, &gs, "jose: generate_keypair for the size-limit checks")) {
            max_plaintext_roundtrip(b, gp, gs);
            b->free_public_key(gp);
            b->free_private_key(gs);
        }
    }
    void *pub = t_parse(b, false, JOSE_R1_PUB_JWK, strlen(JOSE_R1_PUB_JWK), W(KRS_OK), "jose: parse recipient1 public JWK");
    if (pub) {
        size_t hugelen = (size_t)KRS_CRYPTO_MAX_PLAINTEXT + 1, d;
        uint8_t *huge = calloc(1, hugelen);
        if (huge) {
            t_encrypt(b, pub, huge, hugelen, &d, W(KRS_ETOOBIG), "jose: encrypt of KRS_CRYPTO_MAX_PLAINTEXT+1 bytes -> KRS_ETOOBIG");
            free(huge);
        }
        b->free_public_key(pub);
    }
}

/* A compact JWE from parts; header_json is base64url-encoded here. */
static char *make_jwe(const char *header_json, const char *ek, const char *iv, const char *ct,
                      const char *tag)
{
    char *h = b64url_enc((const uint8_t *)header_json, strlen(header_json));
    size_t n = strlen(h) + strlen(ek) + strlen(iv) + strlen(ct) + strlen(tag) + 5;
    char *out = malloc(n);
    if (!out) exit(2);
    snprintf(out, n, "%s.%s.%s.%s.%s", h, ek, iv, ct, tag);
    free(h);
    return out;
}

/* Damaged and policy-violating JWEs, built from the Go vector jose-recipient1-bytes100. */
static void sec_jose_jwe(void)
{
    const crypto_backend_t *b = JO;
    char n[300];
    void *priv = t_parse(b, true, JOSE_R1_PRIV_JWK, strlen(JOSE_R1_PRIV_JWK), W(KRS_OK),
                           "jose jwe: parse recipient1 private JWK");
    if (!priv) return;
    uint8_t *exp = pattern(100, 256);

    /* split the Go vector */
    char *v = xstrdup(JOSE_JWE_BYTES100);
    char *seg[5];
    char *p = v;
    for (int i = 0; i < 5; i++) {
        seg[i] = p;
        char *dot = strchr(p, '.');
        if (i < 4) {
            if (!dot) exit(2);
            *dot = '\0';
            p = dot + 1;
        }
    }
    size_t hl;
    uint8_t *hb = b64url_dec(seg[0], strlen(seg[0]), &hl);
    if (!hb) exit(2);
    char *hdr = malloc(hl + 1);
    if (!hdr) exit(2);
    memcpy(hdr, hb, hl);
    hdr[hl] = 0;
    free(hb);
    /* the ephemeral key object, as Go wrote it */
    const char *e0 = strstr(hdr, "\"epk\":");
    if (!e0) exit(2);
    e0 += 6;
    const char *e1 = strchr(e0, '}');
    if (!e1) exit(2);
    char epk[512];
    snprintf(epk, sizeof epk, "%.*s", (int)(e1 - e0 + 1), e0);

    /* the builder reproduces the vector */
    char *same = make_jwe(hdr, "", seg[2], seg[3], seg[4]);
    report(!strcmp(same, JOSE_JWE_BYTES100), "jose jwe: test's JWE builder reproduces the Go vector", "differs");
    t_decrypt(b, priv, (uint8_t *)same, strlen(same), W(KRS_OK), exp, 100, "jose jwe: rebuilt Go vector decrypts");
    free(same);

    /* policy: well-formed, refused */
    char h[1024];
    struct {
        const char *what;
        const char *fmt; /* %s = epk */
    } pol[] = {
        {"alg ECDH-ES+A256KW", "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":%s}"},
        {"alg ECDH-ES+A128KW", "{\"alg\":\"ECDH-ES+A128KW\",\"enc\":\"A256GCM\",\"epk\":%s}"},
        {"alg dir", "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"epk\":%s}"},
        {"alg none", "{\"alg\":\"none\",\"enc\":\"A256GCM\",\"epk\":%s}"},
        {"alg RSA1_5", "{\"alg\":\"RSA1_5\",\"enc\":\"A256GCM\",\"epk\":%s}"},
        {"alg PBES2-HS256+A128KW", "{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"epk\":%s,\"p2s\":\"AAAAAAAAAAA\",\"p2c\":1000}"},
        {"enc A128GCM", "{\"alg\":\"ECDH-ES\",\"enc\":\"A128GCM\",\"epk\":%s}"},
        {"enc A256CBC-HS512", "{\"alg\":\"ECDH-ES\",\"enc\":\"A256CBC-HS512\",\"epk\":%s}"},
        {"a zip header", "{\"alg\":\"ECDH-ES\",\"enc\":\"A256GCM\",\"epk\":%s,\"zip\":\"DEF\"}"},
        {"a crit header", "{\"alg\":\"ECDH-ES\",\"enc\":\"A256GCM\",\"epk\":%s,\"crit\":[\"exp\"],\"exp\":1}"},
    };
    for (size_t i = 0; i < sizeof pol / sizeof pol[0]; i++) {
        snprintf(h, sizeof h, pol[i].fmt, epk);
        char *j = make_jwe(h, "", seg[2], seg[3], seg[4]);
        snprintf(n, sizeof n, "jose jwe: %s -> KRS_EPOLICY", pol[i].what);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_EPOLICY), NULL, 0, n);
        free(j);
    }
    /* alg ECDH-ES+A256KW with a (bogus) wrapped key: still policy */
    snprintf(h, sizeof h, "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":%s}", epk);
    {
        char *j = make_jwe(h, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", seg[2], seg[3], seg[4]);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_EPOLICY), NULL, 0,
                "jose jwe: alg ECDH-ES+A256KW with an encrypted key -> KRS_EPOLICY");
        free(j);
    }
    /* bad ephemeral keys */
    {
        jobj_t ek;
        if (!jobj_parse(epk, &ek)) exit(2);
        jobj_t r1;
        if (!jobj_parse(JOSE_EX_PUB_JWK, &r1)) exit(2);
        snprintf(h, sizeof h, "{\"alg\":\"ECDH-ES\",\"enc\":\"A256GCM\",\"epk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}}",
                 jobj_get(&ek, "x"), jobj_get(&r1, "y"));
        char *j = make_jwe(h, "", seg[2], seg[3], seg[4]);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_ECRYPTO) | W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: epk not on P-256 -> KRS_ECRYPTO (invalid ephemeral key) or KRS_EMALFORMED");
        free(j);
        snprintf(h, sizeof h, "{\"alg\":\"ECDH-ES\",\"enc\":\"A256GCM\",\"epk\":{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\"}}",
                 "iA2rJgRC3ukqJcN7rj3B8tq3ZkAa8vTKYC5Gq2YArbPX4V5fOqjQuMhfmYfa0ATE",
                 "Ye3vCIHKAO2w-1Ql3wBahSDozlmNV8k0YJA6K2jN07lyjxgOMt1PxtJxrSzKY6XN");
        j = make_jwe(h, "", seg[2], seg[3], seg[4]);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_EPOLICY) | W(KRS_ECRYPTO) | W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: epk on P-384 is refused (KRS_EPOLICY, KRS_ECRYPTO or KRS_EMALFORMED)");
        free(j);
        snprintf(h, sizeof h, "{\"alg\":\"ECDH-ES\",\"enc\":\"A256GCM\"}");
        j = make_jwe(h, "", seg[2], seg[3], seg[4]);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_EMALFORMED) | W(KRS_ECRYPTO), NULL, 0,
                "jose jwe: header without epk -> KRS_EMALFORMED or KRS_ECRYPTO");
        free(j);
    }
    /* structural damage */
    {
        char *j = make_jwe(hdr, "", "AAAAAAAAAAAAAAAAAAAAAA", seg[3], seg[4]); /* 16-byte IV */
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_EMALFORMED) | W(KRS_EPOLICY), NULL, 0,
                "jose jwe: 16-byte IV -> KRS_EMALFORMED or KRS_EPOLICY");
        free(j);
        char tag15[32];
        snprintf(tag15, sizeof tag15, "%.20s", seg[4]); /* 20 chars -> 15 bytes */
        j = make_jwe(hdr, "", seg[2], seg[3], tag15);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_EMALFORMED) | W(KRS_EPOLICY), NULL, 0,
                "jose jwe: 15-byte tag -> KRS_EMALFORMED or KRS_EPOLICY");
        free(j);
        j = make_jwe(hdr, "AAAA", seg[2], seg[3], seg[4]);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_EMALFORMED) | W(KRS_EPOLICY), NULL, 0,
                "jose jwe: non-empty encrypted key with ECDH-ES -> KRS_EMALFORMED or KRS_EPOLICY");
        free(j);
        j = make_jwe(hdr, "", "AAAAAAAAAAAAAAA+", seg[3], seg[4]);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: '+' (not base64url) in the IV -> KRS_EMALFORMED");
        free(j);
    }
    {
        const char *c = JOSE_JWE_BYTES100;
        size_t cl = strlen(c);
        const char *last = strrchr(c, '.');
        t_decrypt(b, priv, (const uint8_t *)c, (size_t)(last - c), W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: 4 parts (tag segment cut off) -> KRS_EMALFORMED");
        t_decrypt(b, priv, (const uint8_t *)c, cl / 2, W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: cut in half -> KRS_EMALFORMED");
        t_decrypt(b, priv, (const uint8_t *)c, cl - 1, W(KRS_EMALFORMED) | W(KRS_EPOLICY), NULL, 0,
                "jose jwe: last character removed (21-char tag) -> KRS_EMALFORMED or KRS_EPOLICY");
        char *six = malloc(cl + 3);
        if (!six) exit(2);
        sprintf(six, "%s.A", c);
        t_decrypt(b, priv, (uint8_t *)six, strlen(six), W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: 6 parts -> KRS_EMALFORMED");
        free(six);
        t_decrypt(b, priv, (const uint8_t *)"....", 4, W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: \"....\" -> KRS_EMALFORMED");
        t_decrypt(b, priv, (const uint8_t *)"{\"protected\":\"e30\"}", 19, W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: JSON serialization instead of compact -> KRS_EMALFORMED");
        char *nh = make_jwe("not json", "", seg[2], seg[3], seg[4]);
        t_decrypt(b, priv, (uint8_t *)nh, strlen(nh), W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: header that is not JSON -> KRS_EMALFORMED");
        free(nh);
        t_decrypt(b, priv, (const uint8_t *)c, 0, W(KRS_EMALFORMED), NULL, 0,
                "jose jwe: empty ciphertext (len 0) -> KRS_EMALFORMED");
    }
    /* cryptographic damage */
    {
        char *c = xstrdup(JOSE_JWE_BYTES100);
        size_t off = strlen(seg[0]) + 1 + 1 + strlen(seg[2]) + 1 + strlen(seg[3]) / 2;
        c[off] = c[off] == 'A' ? 'B' : 'A';
        t_decrypt(b, priv, (uint8_t *)c, strlen(c), W(KRS_ECRYPTO), NULL, 0,
                "jose jwe: one changed character in the ciphertext segment -> KRS_ECRYPTO");
        free(c);
        c = xstrdup(JOSE_JWE_BYTES100);
        off = strlen(seg[0]) + 2 + strlen(seg[2]) / 2;
        c[off] = c[off] == 'A' ? 'B' : 'A';
        t_decrypt(b, priv, (uint8_t *)c, strlen(c), W(KRS_ECRYPTO), NULL, 0,
                "jose jwe: one changed character in the IV -> KRS_ECRYPTO");
        free(c);
        char ct96[256];
        snprintf(ct96, sizeof ct96, "%.*s", (int)strlen(seg[3]) - 6, seg[3]);
        char *j = make_jwe(hdr, "", seg[2], ct96, seg[4]);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_ECRYPTO), NULL, 0,
                "jose jwe: ciphertext segment truncated (still valid base64url) -> KRS_ECRYPTO");
        free(j);
        /* same header content, different bytes: the AAD is the header segment as sent */
        char *h2 = malloc(strlen(hdr) + 2);
        if (!h2) exit(2);
        sprintf(h2, "%s ", hdr);
        j = make_jwe(h2, "", seg[2], seg[3], seg[4]);
        t_decrypt(b, priv, (uint8_t *)j, strlen(j), W(KRS_ECRYPTO), NULL, 0,
                "jose jwe: header re-encoded with a trailing space (AAD changed) -> KRS_ECRYPTO");
        free(j);
        free(h2);
        /* the Go vector decrypted with another valid key */
        void *other = t_parse(b, true, JOSE_EX_PRIV_JWK, strlen(JOSE_EX_PRIV_JWK), W(KRS_OK),
                                "jose jwe: parse Go example private JWK");
        if (other) {
            t_decrypt(b, other, (const uint8_t *)JOSE_JWE_BYTES100, strlen(JOSE_JWE_BYTES100), W(KRS_ECRYPTO), NULL, 0,
                    "jose jwe: Go vector with the wrong private key -> KRS_ECRYPTO");
            b->free_private_key(other);
        }
    }
    /* a too-long JWE is refused without being read (zero pages) */
    {
        size_t hugelen = (size_t)KRS_CRYPTO_MAX_PLAINTEXT * 2 + 1;
        uint8_t *huge = calloc(1, hugelen);
        if (huge) {
            t_decrypt(b, priv, huge, hugelen, W(KRS_ETOOBIG), NULL, 0,
                    "jose jwe: JWE of 2*KRS_CRYPTO_MAX_PLAINTEXT+1 bytes -> KRS_ETOOBIG");
            free(huge);
        }
    }
    free(hdr);
    free(v);
    free(exp);
    b->free_private_key(priv);
}

/* Handles and calls shared by several threads. */
struct thr {
    const crypto_backend_t *b;
    void *pub, *priv;
    int bad;
};

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    uint8_t pt[333];
    for (size_t i = 0; i < sizeof pt; i++) pt[i] = (uint8_t)(i * 7);
    for (int it = 0; it < 8; it++) {
        uint8_t *ct = NULL, *out = NULL;
        size_t cl = 0, ol = 0;
        if (t->b->encrypt(t->pub, pt, sizeof pt, &ct, &cl) != KRS_OK) {
            t->bad++;
            continue;
        }
        if (t->b->decrypt(t->priv, ct, cl, &out, &ol) != KRS_OK || ol != sizeof pt ||
            memcmp(out, pt, ol) != 0)
            t->bad++;
        krs_free(ct);
        if (out) krs_free(out);
        char *s = NULL;
        size_t sl = 0;
        if (t->b->serialize_public_key(t->priv, &s, &sl) != KRS_OK) t->bad++;
        else krs_free(s);
    }
    return NULL;
}

static void sec_threads(void)
{
    const crypto_backend_t *bs[2] = {HP, JO};
    for (int i = 0; i < 2; i++) {
        const crypto_backend_t *b = bs[i];
        char n[200];
        void *pub, *priv;
        snprintf(n, sizeof n, "%s threads: generate_keypair", b->name);
        if (!generate(b, &pub, &priv, n)) continue;
        enum { NT = 4 };
        pthread_t th[NT];
        struct thr ts[NT];
        int started = 0;
        for (int k = 0; k < NT; k++) {
            ts[k] = (struct thr){b, pub, priv, 0};
            if (pthread_create(&th[k], NULL, thr_main, &ts[k]) == 0) started++;
            else break;
        }
        int bad = 0;
        for (int k = 0; k < started; k++) {
            pthread_join(th[k], NULL);
            bad += ts[k].bad;
        }
        snprintf(n, sizeof n, "%s threads: %d threads encrypt/decrypt/serialize with shared handles",
                 b->name, NT);
        report(started == NT && bad == 0, n, "%d of %d threads started, %d failed calls", started, NT, bad);
        b->free_public_key(pub);
        b->free_private_key(priv);
    }
}

/* ---------------------------------------------------------------------------------------- */

static void sec_nulls_hpke(void) { sec_nulls(HP); }
static void sec_nulls_jose(void) { sec_nulls(JO); }
static void sec_rt_hpke(void) { sec_roundtrip(HP); }
static void sec_rt_jose(void) { sec_roundtrip(JO); }

static const struct {
    const char *name;
    void (*fn)(void);
    bool needs_backends;
} sections[] = {
    {"backend lookup", sec_lookup, false},
    {"krs_strerror/krs_version/krs_free", sec_common, false},
    {"hpke NULL arguments", sec_nulls_hpke, true},
    {"jose NULL arguments", sec_nulls_jose, true},
    {"hpke round trips", sec_rt_hpke, true},
    {"jose round trips", sec_rt_jose, true},
    {"cross-backend handles", sec_cross, true},
    {"hpke Go vectors", sec_hpke_vectors, true},
    {"hpke bad input", sec_hpke_bad, true},
    {"jose Go vectors", sec_jose_vectors, true},
    {"jose bad keys", sec_jose_bad, true},
    {"jose bad JWEs", sec_jose_jwe, true},
    {"threads", sec_threads, true},
    {"foreign handles", sec_foreign_handle, true},
};

static void run_section(size_t i)
{
    if (sections[i].needs_backends) {
        HP = backend_or_die("hpke");
        JO = backend_or_die("jose");
    }
    sections[i].fn();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *only = argc > 1 ? argv[1] : NULL;
    const char *nofork = getenv("TDNSKRS_NOFORK");
    bool fork_each = !(nofork && nofork[0] == '1');
    int status_all = 0; /* 0 ok, 1 check failed, 99 valgrind error in a child */

    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (only && !strstr(sections[i].name, only)) continue;
        if (!fork_each) {
            run_section(i);
            continue;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            g_failed = 0;
            run_section(i);
            fflush(stdout);
            exit(g_failed ? 1 : 0);
        }
        int st = 0;
        if (waitpid(pid, &st, 0) < 0) {
            perror("waitpid");
            return 2;
        }
        if (WIFSIGNALED(st)) {
            char n[128];
            snprintf(n, sizeof n, "section \"%s\" ran to completion", sections[i].name);
            report(false, n, "child killed by signal %d (crash or abort inside the library?)",
                   WTERMSIG(st));
            if (status_all == 0) status_all = 1;
        } else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
            int ec = WEXITSTATUS(st);
            if (ec == 99) status_all = 99;
            else if (ec != 1) {
                char n[128];
                snprintf(n, sizeof n, "section \"%s\" ran to completion", sections[i].name);
                report(false, n, "child exited with status %d", ec);
            }
            if (status_all == 0) status_all = 1;
        }
    }
    if (!fork_each) status_all = g_failed ? 1 : 0;
    else if (g_failed && status_all == 0) status_all = 1;
    printf("# test_crypto_abi finished\n");
    return status_all;
}
