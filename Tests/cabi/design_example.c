/*
 * design_example.c — a program written from the TDNS design document's "C Implementation
 * Considerations" (../shared/seed/tdns-jose-migration.md), the way a new user would write it:
 * its crypto.h (crypto_backend_t, crypto_get_backend, generate_keypair(&priv, &pub), encrypt
 * with the public key, decrypt with the private key), the goto-cleanup process_distribution
 * of "Resource Management", the return codes and LOG_* macros of "Error Handling", the
 * Doxygen example's crypto_decrypt, and the DLZ skeleton's krs_init/krs_cleanup as far as
 * libtdnskrs's opaque context allows (README: "Where the API differs from the design").
 *
 * The same source is compiled as C11 and as C++17 with -Wall -Wextra -Werror (Tests/cabi/
 * headers.sh) and run under valgrind.
 *
 *   design_example STATE_DIR     all checks; prints PASS/FAIL lines, exits 1 on a failure
 *   design_example readonly      writes into the table crypto_get_backend returned: must die
 *                                of SIGSEGV (the tables are read-only memory)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <tdnskrs/crypto.h>
#include <tdnskrs/krs.h>

/* "Error Handling": the design's logging macros (application code: libtdnskrs defines no
 * LOG_* macros, whose names would collide with <syslog.h>). */
#define LOG_ERROR(fmt, ...) \
    fprintf(stderr, "[ERROR] " fmt "\n", ##__VA_ARGS__)

#define LOG_INFO(fmt, ...) \
    fprintf(stdout, "[INFO] " fmt "\n", ##__VA_ARGS__)

/* The return codes the design defines, with the design's values. */
#ifdef __cplusplus
#define STATIC_CHECK(cond, msg) static_assert(cond, msg)
#else
#define STATIC_CHECK(cond, msg) _Static_assert(cond, msg)
#endif
STATIC_CHECK(KRS_OK == 0, "KRS_OK is 0");
STATIC_CHECK(KRS_ERROR == -1, "KRS_ERROR is -1");
STATIC_CHECK(KRS_ENOMEM == -2, "KRS_ENOMEM is -2");
STATIC_CHECK(KRS_EINVAL == -3, "KRS_EINVAL is -3");
STATIC_CHECK(KRS_ECRYPTO == -4, "KRS_ECRYPTO is -4");
STATIC_CHECK(KRS_EDNS == -5, "KRS_EDNS is -5");

static int failures;

static void check(int ok, const char *name, const char *detail)
{
    if (ok) {
        printf("PASS: %s\n", name);
    } else {
        printf("FAIL: %s \xe2\x80\x94 %s\n", name, detail != NULL ? detail : "");
        failures++;
    }
}

/* --- "Crypto Abstraction in C": generate, encrypt to pub, decrypt with priv ---------------- */

static void keypair_in_design_order(const char *name)
{
    char label[160], detail[160];
    crypto_backend_t *backend = NULL;
    backend = crypto_get_backend(name);
    snprintf(label, sizeof label, "design: crypto_backend_t *backend = crypto_get_backend(\"%s\")", name);
    check(backend != NULL && strcmp(backend->name, name) == 0, label, "NULL or wrong name");
    if (backend == NULL) {
        return;
    }

    void *priv_key = NULL, *pub_key = NULL;
    int rc = backend->generate_keypair(&priv_key, &pub_key);
    snprintf(label, sizeof label, "design: %s generate_keypair(&priv_key, &pub_key)", name);
    snprintf(detail, sizeof detail, "rc %d (%s)", rc, krs_strerror(rc));
    check(rc == KRS_OK && priv_key != NULL && pub_key != NULL, label, detail);

    const char *message = "ZSK for example.com., as the design carries it";
    uint8_t *ciphertext = NULL, *plaintext = NULL;
    size_t ct_len = 0, pt_len = 0;
    rc = backend->encrypt(pub_key, (const uint8_t *)message, strlen(message), &ciphertext, &ct_len);
    snprintf(label, sizeof label, "design-order keypair: %s encrypt(pub_key, …) -> KRS_OK", name);
    snprintf(detail, sizeof detail, "rc %d (%s): the keys came back the wrong way round", rc, krs_strerror(rc));
    check(rc == KRS_OK && ciphertext != NULL && ct_len > 0, label, detail);
    if (rc != KRS_OK) {
        backend->free_public_key(pub_key);
        backend->free_private_key(priv_key);
        return;
    }

    rc = backend->decrypt(priv_key, ciphertext, ct_len, &plaintext, &pt_len);
    snprintf(label, sizeof label, "design-order keypair: %s decrypt(priv_key, …) gives the plaintext back", name);
    snprintf(detail, sizeof detail, "rc %d (%s), %zu bytes", rc, krs_strerror(rc), pt_len);
    check(rc == KRS_OK && pt_len == strlen(message) && plaintext != NULL && memcmp(plaintext, message, pt_len) == 0,
          label, detail);
    krs_free(plaintext);
    plaintext = NULL;

    /* The other way round is refused: proof that the first out-parameter is the private key. */
    uint8_t *wrong = NULL;
    size_t wrong_len = 0;
    rc = backend->encrypt(priv_key, (const uint8_t *)message, strlen(message), &wrong, &wrong_len);
    snprintf(label, sizeof label, "design-order keypair: %s encrypt(priv_key, …) -> KRS_EKEYTYPE", name);
    snprintf(detail, sizeof detail, "rc %d", rc);
    check(rc == KRS_EKEYTYPE && wrong == NULL, label, detail);
    rc = backend->decrypt(pub_key, ciphertext, ct_len, &wrong, &wrong_len);
    snprintf(label, sizeof label, "design-order keypair: %s decrypt(pub_key, …) -> KRS_EKEYTYPE", name);
    snprintf(detail, sizeof detail, "rc %d", rc);
    check(rc == KRS_EKEYTYPE && wrong == NULL, label, detail);

    /* "Error Handling": a failing decryption reported with the design's codes and macro. */
    ciphertext[ct_len / 2] ^= 0x01;
    uint8_t *pt = NULL;
    int result = crypto_decrypt(backend, priv_key, ciphertext, ct_len, &pt, &pt_len);
    if (result != KRS_OK) {
        LOG_ERROR("Decryption failed: %d", result);
    }
    snprintf(label, sizeof label, "design: crypto_decrypt(backend, priv_key, tampered ct) -> an error code, no plaintext (%s)", name);
    snprintf(detail, sizeof detail, "rc %d", result);
    check(result != KRS_OK && result < 0 && pt == NULL, label, detail);
    ciphertext[ct_len / 2] ^= 0x01;
    result = crypto_decrypt(backend, priv_key, ciphertext, ct_len, &pt, &pt_len);
    snprintf(label, sizeof label, "design: crypto_decrypt(backend, priv_key, ct) -> KRS_OK (%s)", name);
    snprintf(detail, sizeof detail, "rc %d", result);
    check(result == KRS_OK && pt != NULL && pt_len == strlen(message), label, detail);
    krs_free(pt);

    krs_free(ciphertext);
    backend->free_public_key(pub_key);
    backend->free_private_key(priv_key);
}

/* --- "Memory Management" / "Resource Management": process_distribution with goto cleanup -- */

static void *node_priv_key; /* the node's JOSE private key, for process_distribution */

/* The design's process_distribution: the manifest is JSON text (json-c, as the design's
 * stack has it) whose "ciphertext" member holds a compact JWE for this node. */
static int process_distribution(const char *data)
{
    uint8_t *plaintext = NULL;
    size_t pt_len = 0;
    crypto_backend_t *backend = NULL;
    json_object *manifest = NULL;
    json_object *ct = NULL;
    const char *compact = NULL;
    int ret = -1;

    // Allocate resources
    backend = crypto_get_backend("jose");
    if (!backend) goto cleanup;

    manifest = json_tokener_parse(data);
    if (!manifest) goto cleanup;

    // ... process
    if (!json_object_object_get_ex(manifest, "ciphertext", &ct)) goto cleanup;
    compact = json_object_get_string(ct);
    if (backend->decrypt(node_priv_key, (const uint8_t *)compact, strlen(compact), &plaintext, &pt_len) != KRS_OK)
        goto cleanup;
    LOG_INFO("distribution decrypted: %zu bytes", pt_len);

    ret = 0;  // Success

cleanup:
    if (plaintext) krs_free(plaintext); /* the design says free(); library memory goes to krs_free */
    if (manifest) json_object_put(manifest);
    return ret;
}

static void resource_management(void)
{
    crypto_backend_t *backend = crypto_get_backend("jose");
    void *pub = NULL;
    if (backend == NULL || backend->generate_keypair(&node_priv_key, &pub) != KRS_OK) {
        check(0, "design: process_distribution (goto cleanup)", "no JOSE key pair");
        return;
    }
    const char *keys = "[{\"zone_name\":\"example.com.\",\"key_id\":\"23719\"}]";
    uint8_t *jwe = NULL;
    size_t jwe_len = 0;
    int rc = backend->encrypt(pub, (const uint8_t *)keys, strlen(keys), &jwe, &jwe_len);
    char *data = NULL;
    if (rc == KRS_OK) {
        size_t n = jwe_len + 64;
        data = (char *)malloc(n);
        if (data != NULL) {
            snprintf(data, n, "{\"distribution_id\":\"6a2f0001\",\"ciphertext\":\"%.*s\"}", (int)jwe_len, (const char *)jwe);
        }
    }
    check(data != NULL && process_distribution(data) == 0,
          "design: process_distribution(data) decrypts the manifest's JWE and cleans up (goto cleanup)", "returned -1");
    check(process_distribution("{not json") == -1, "design: process_distribution of bad JSON returns -1 through cleanup", NULL);
    free(data);
    krs_free(jwe);
    backend->free_public_key(pub);
    backend->free_private_key(node_priv_key);
}

/* --- "Error Handling": the codes have texts ------------------------------------------------- */

static void return_codes(void)
{
    const int codes[] = { KRS_OK, KRS_ERROR, KRS_ENOMEM, KRS_EINVAL, KRS_ECRYPTO, KRS_EDNS };
    int ok = 1;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *text = krs_strerror(codes[i]);
        ok = ok && text != NULL && strcmp(text, "unknown error") != 0;
    }
    check(ok, "design: KRS_OK, KRS_ERROR, KRS_ENOMEM, KRS_EINVAL, KRS_ECRYPTO, KRS_EDNS have values 0…-5 and texts", NULL);
    crypto_backend_t *backend = crypto_get_backend("hpke");
    void *pub = NULL;
    check(backend != NULL && backend->generate_keypair(NULL, &pub) == KRS_EINVAL && pub == NULL,
          "design: generate_keypair(NULL, &pub) -> KRS_EINVAL", NULL);
    check(crypto_get_backend("cjose") == NULL, "design: crypto_get_backend of an unknown name -> NULL", NULL);
}

/* --- "DNS Server Module Integration": the DLZ skeleton's krs_init / krs_cleanup ------------- */

/* The skeleton mallocs a krs_context_t and passes it with argv to krs_init; libtdnskrs's
 * context is opaque, made by krs_init(&ctx, argc, argv) and freed by krs_cleanup. */
static int dlz_create_like(const char *dlzname, unsigned int argc, char *argv[], void **dbdata)
{
    krs_context_t *ctx = NULL;
    (void)dlzname;
    // Initialize KRS context
    int rc = krs_init(&ctx, (int)argc, (const char *const *)argv);
    if (rc != KRS_OK) {
        LOG_ERROR("krs_init: %s", krs_last_error(NULL));
        return rc;
    }
    *dbdata = ctx;
    return KRS_OK;
}

static void dlz_destroy_like(void *dbdata)
{
    krs_context_t *ctx = (krs_context_t *)dbdata;
    krs_cleanup(ctx); /* frees the context: no free(ctx) */
}

static void dlz_skeleton(const char *state_dir)
{
    crypto_backend_t *backend = crypto_get_backend("hpke");
    void *priv = NULL, *pub = NULL;
    char *hex = NULL;
    size_t hex_len = 0;
    if (backend == NULL || backend->generate_keypair(&priv, &pub) != KRS_OK ||
        backend->serialize_private_key(priv, &hex, &hex_len) != KRS_OK) {
        check(0, "design: DLZ skeleton", "no HPKE key");
        return;
    }
    char a[5][1200];
    snprintf(a[0], sizeof a[0], "state_dir=%s", state_dir);
    snprintf(a[1], sizeof a[1], "node_id=edge1.example.net.");
    snprintf(a[2], sizeof a[2], "control_zone=kdc.example.com.");
    snprintf(a[3], sizeof a[3], "key_store=none");
    snprintf(a[4], sizeof a[4], "hpke_private_key=%s", hex);
    char *argv[5] = { a[0], a[1], a[2], a[3], a[4] }; /* as named hands them to dlz_create */
    void *dbdata = NULL;
    int rc = dlz_create_like("tdnskrs", 5, argv, &dbdata);
    char detail[300];
    snprintf(detail, sizeof detail, "rc %d: %s", rc, krs_last_error(NULL));
    check(rc == KRS_OK && dbdata != NULL, "design: DLZ skeleton: krs_init(&ctx, argc, argv) with named's char *argv[]", detail);
    if (rc == KRS_OK) {
        char *status = NULL;
        check(krs_status_json((krs_context_t *)dbdata, &status) == KRS_OK && status != NULL &&
                  strstr(status, "\"node_id\":\"edge1.example.net.\"") != NULL,
              "design: DLZ skeleton: the context answers (krs_status_json names the node)", status);
        krs_free(status);
        dlz_destroy_like(dbdata);
        check(krs_status_json((krs_context_t *)dbdata, &status) == KRS_EINVAL && status == NULL,
              "design: DLZ skeleton: after krs_cleanup the context is gone (KRS_EINVAL, no crash)", NULL);
    }
    memset(a[4], 0, sizeof a[4]);
    krs_free(hex);
    backend->free_public_key(pub);
    backend->free_private_key(priv);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "readonly") == 0) {
        crypto_backend_t *backend = crypto_get_backend("jose");
        if (backend == NULL) {
            return 2;
        }
        backend->name = "mine"; /* must not survive: SIGSEGV */
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s STATE_DIR | readonly\n", argv[0]);
        return 2;
    }
    keypair_in_design_order("jose");
    keypair_in_design_order("hpke");
    resource_management();
    return_codes();
    dlz_skeleton(argv[1]);
    printf("# design_example finished (%s)\n",
#ifdef __cplusplus
           "C++"
#else
           "C"
#endif
    );
    return failures != 0;
}
