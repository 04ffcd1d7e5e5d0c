/* Encrypt to a freshly generated HPKE key and decrypt again through the public C API.
 * Build: cc crypto_example.c $(pkg-config --cflags --libs tdnskrs) */
#include <stdio.h>
#include <string.h>
#include <tdnskrs/tdnskrs.h>

int main(void) {
    const crypto_backend_t *be = crypto_get_backend("hpke");
    void *pub = NULL, *priv = NULL;
    uint8_t *ct = NULL, *pt = NULL;
    size_t ct_len = 0, pt_len = 0;
    const char *msg = "DNSSEC keys travel safely";
    int rc = be->generate_keypair(&priv, &pub); /* private key first, as the TDNS design declares */
    if (rc == KRS_OK) rc = be->encrypt(pub, (const uint8_t *)msg, strlen(msg), &ct, &ct_len);
    if (rc == KRS_OK) rc = be->decrypt(priv, ct, ct_len, &pt, &pt_len);
    if (rc == KRS_OK)
        printf("%s: %zu-byte ciphertext, decrypted \"%.*s\"\n", be->name, ct_len, (int)pt_len, (const char *)pt);
    else
        fprintf(stderr, "error: %s\n", krs_strerror(rc));
    krs_free(ct);
    krs_free(pt);
    be->free_public_key(pub);
    be->free_private_key(priv);
    return rc == KRS_OK ? 0 : 1;
}
