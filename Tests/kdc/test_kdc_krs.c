/*
 * A distribution made by tdns-kdc through libtdnskrs's krs_process_distribution.
 *
 * usage: test_kdc_krs CONFIG_FILE NOW DIST_ID RDATA_HEX...
 *   CONFIG_FILE  krs_init settings, one key=value per line (node_id, control_zone, state_dir,
 *                key_dir, hpke_private_key=PATH or jose_private_key=PATH, kdc_signing_pubkey=…)
 *   NOW          Unix seconds for the host clock
 * Prints "rc=<code>" and, on success, "report=<json>"; exit status 0 iff KRS_OK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tdnskrs/tdnskrs.h>

static int64_t now_value;
static int64_t host_clock(void *user) { (void)user; return now_value; }

static uint8_t *from_hex(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2;
    uint8_t *out = malloc(n ? n : 1);
    if (!out) exit(2);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) exit(2);
        out[i] = (uint8_t)v;
    }
    *len = n;
    return out;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s CONFIG NOW DISTID RDATAHEX...\n", argv[0]);
        return 2;
    }
    char config[4200];
    snprintf(config, sizeof config, "config=%s", argv[1]);
    const char *settings[1] = {config};
    krs_context_t *ctx = NULL;
    int rc = krs_init(&ctx, 1, settings);
    if (rc != KRS_OK) {
        printf("rc=%d init: %s\n", rc, krs_last_error(NULL));
        return 1;
    }
    now_value = strtoll(argv[2], NULL, 10);
    krs_host_ops_t ops = {.version = KRS_HOST_OPS_VERSION, .size = sizeof ops, .clock = host_clock};
    krs_set_host_ops(ctx, &ops);

    size_t count = (size_t)(argc - 4);
    const uint8_t **records = calloc(count, sizeof *records);
    size_t *lengths = calloc(count, sizeof *lengths);
    if (!records || !lengths) return 2;
    for (size_t i = 0; i < count; i++) records[i] = from_hex(argv[4 + i], &lengths[i]);

    char *report = NULL;
    rc = krs_process_distribution(ctx, argv[3], records, lengths, count, &report);
    printf("rc=%d\n", rc);
    if (rc == KRS_OK && report) {
        printf("report=%s\n", report);
    } else {
        printf("reason=%s\n", krs_last_error(ctx));
    }
    krs_free(report);
    for (size_t i = 0; i < count; i++) free((void *)records[i]);
    free(records);
    free(lengths);
    krs_cleanup(ctx);
    return rc == KRS_OK ? 0 : 1;
}
