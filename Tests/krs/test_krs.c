/*
 * C-level test of the distribution pipeline through the public header: the distribution the
 * Go KDC made (Tests/Vectors/distribution.json) goes through krs_process_distribution.
 *
 * usage: test_krs STATE_DIR KEY_DIR NODE_ID CONTROL_ZONE HPKE_KEY_FILE NOW DIST_ID RDATA_HEX
 * (the node key is read from a tdns key file, so no key material appears on a command line)
 * Prints one PASS/FAIL line per check (never key material); exit status 1 if any failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tdnskrs/tdnskrs.h>

static int failures;

/* Host callbacks: a settable clock, a log counter and the key changes seen. */
struct host_state {
    int64_t now;
    int log_lines;
    int installed;
    char zone[256];
    unsigned tag;
};

static void host_log(void *user, int level, const char *message) {
    struct host_state *h = user;
    (void)level;
    if (message && *message) h->log_lines++;
}

static int64_t host_clock(void *user) { return ((struct host_state *)user)->now; }

static void host_key_changed(void *user, const char *zone, uint16_t tag, uint8_t alg, int change) {
    struct host_state *h = user;
    (void)alg;
    if (change == KRS_KEY_INSTALLED) h->installed++;
    snprintf(h->zone, sizeof h->zone, "%s", zone);
    h->tag = tag;
}

static void check(int ok, const char *name, const char *detail) {
    if (ok) {
        printf("PASS: %s\n", name);
    } else {
        printf("FAIL: %s — %s\n", name, detail ? detail : "");
        failures++;
    }
}

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
    if (argc != 9) {
        fprintf(stderr, "usage: %s STATE KEYDIR NODE CZ HPKEKEY NOW DISTID RDATAHEX\n", argv[0]);
        return 2;
    }
    char a[8][1024];
    snprintf(a[0], sizeof a[0], "state_dir=%s", argv[1]);
    snprintf(a[1], sizeof a[1], "key_dir=%s", argv[2]);
    snprintf(a[2], sizeof a[2], "node_id=%s", argv[3]);
    snprintf(a[3], sizeof a[3], "control_zone=%s", argv[4]);
    snprintf(a[4], sizeof a[4], "hpke_private_key=%s", argv[5]);
    snprintf(a[5], sizeof a[5], "max_skew=30");
    snprintf(a[6], sizeof a[6], "key_store=bind");
    snprintf(a[7], sizeof a[7], "colour=blue");
    const char *settings[8] = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]};
    char detail[512];

    /* A setting nobody knows is refused, and the reason names it. */
    krs_context_t *ctx = (krs_context_t *)0x1;
    int rc = krs_init(&ctx, 8, settings);
    snprintf(detail, sizeof detail, "rc %d, ctx %p, reason \"%s\"", rc, (void *)ctx, krs_last_error(NULL));
    check(rc == KRS_ECONFIG && ctx == NULL && strstr(krs_last_error(NULL), "colour") != NULL,
          "krs_init refuses an unknown setting with KRS_ECONFIG and names it", detail);
    check(krs_init(NULL, 7, settings) == KRS_EINVAL, "krs_init(NULL out_ctx) -> KRS_EINVAL", NULL);

    rc = krs_init(&ctx, 7, settings);
    snprintf(detail, sizeof detail, "rc %d: %s", rc, krs_last_error(NULL));
    check(rc == KRS_OK && ctx != NULL, "krs_init with the vector's node settings", detail);
    if (rc != KRS_OK) return 1;

    /* The host's clock decides "now" (no now= setting is given). */
    struct host_state host = {.now = strtoll(argv[6], NULL, 10)};
    krs_host_ops_t ops = {.version = KRS_HOST_OPS_VERSION, .size = sizeof ops, .user = &host,
                          .log = host_log, .clock = host_clock, .key_changed = host_key_changed};
    krs_host_ops_t wrong = ops;
    wrong.version = 99;
    check(krs_set_host_ops(ctx, &wrong) == KRS_EINVAL, "krs_set_host_ops refuses another ABI version", NULL);
    wrong = ops;
    wrong.size = 8;
    check(krs_set_host_ops(ctx, &wrong) == KRS_EINVAL, "krs_set_host_ops refuses another structure size", NULL);
    check(krs_set_host_ops(ctx, &ops) == KRS_OK, "krs_set_host_ops with log, clock and key_changed", NULL);

    size_t len = 0;
    uint8_t *rdata = from_hex(argv[8], &len);
    const uint8_t *records[1] = {rdata};
    size_t lengths[1] = {len};
    char *report = (char *)0x1;

    check(krs_process_distribution(ctx, argv[7], records, lengths, 0, &report) == KRS_EINVAL && report == NULL,
          "count 0 -> KRS_EINVAL, out-param NULL", NULL);
    check(krs_process_distribution(ctx, NULL, records, lengths, 1, &report) == KRS_EINVAL,
          "NULL distribution_id -> KRS_EINVAL", NULL);
    check(krs_process_distribution(ctx, argv[7], records, lengths, 1, NULL) == KRS_EINVAL,
          "NULL out_report_json -> KRS_EINVAL", NULL);
    check(krs_process_distribution(NULL, argv[7], records, lengths, 1, &report) == KRS_EINVAL,
          "NULL context -> KRS_EINVAL", NULL);

    /* A flipped HMAC byte: refused, nothing installed. */
    rdata[5] ^= 1;
    rc = krs_process_distribution(ctx, argv[7], records, lengths, 1, &report);
    snprintf(detail, sizeof detail, "rc %d: %s", rc, krs_last_error(ctx));
    check(rc == KRS_EAUTH && report == NULL, "manifest with a corrupted HMAC -> KRS_EAUTH", detail);
    rdata[5] ^= 1;

    /* An hour later on the host's clock the same distribution is stale. */
    int64_t fresh = host.now;
    host.now = fresh + 3600;
    rc = krs_process_distribution(ctx, argv[7], records, lengths, 1, &report);
    snprintf(detail, sizeof detail, "rc %d: %s", rc, krs_last_error(ctx));
    check(rc == KRS_ESTALE && report == NULL, "an hour later by the host clock -> KRS_ESTALE", detail);
    check(host.log_lines > 0, "refusals reach the host's log callback", NULL);
    host.now = fresh;

    rc = krs_process_distribution(ctx, argv[7], records, lengths, 1, &report);
    snprintf(detail, sizeof detail, "rc %d: %s", rc, krs_last_error(ctx));
    check(rc == KRS_OK && report != NULL, "krs_process_distribution of the Go KDC's distribution", detail);
    snprintf(detail, sizeof detail, "installed %d, zone %s, tag %u", host.installed, host.zone, host.tag);
    check(host.installed == 1 && strcmp(host.zone, "example.com.") == 0 && host.tag == 23719,
          "key_changed callback: example.com. key 23719 installed", detail);
    if (report) {
        const char *want = "{\"successful_keys\":[{\"zone_name\":\"example.com.\",\"key_id\":\"23719\"}]}";
        snprintf(detail, sizeof detail, "report %s", report);
        check(strcmp(report, want) == 0, "status report lists example.com. key 23719", detail);
        krs_free(report);
        report = NULL;
    }

    /* status.tdnskrs. as the plugins serve it: the key in key_dir, the change this context made. */
    char **lines = NULL;
    size_t count = 0;
    rc = krs_status_text(ctx, &lines, &count);
    char want[2][300];
    snprintf(want[0], sizeof want[0], "version=%s", krs_version());
    snprintf(want[1], sizeof want[1], "node_id=%s enrolled=yes listening=no running=no", argv[3]);
    snprintf(detail, sizeof detail, "rc %d, %zu lines: %s | %s | %s | %s | %s", rc, count, count > 0 ? lines[0] : "",
             count > 1 ? lines[1] : "", count > 2 ? lines[2] : "", count > 3 ? lines[3] : "", count > 4 ? lines[4] : "");
    check(rc == KRS_OK && count == 5 && strcmp(lines[0], want[0]) == 0 && strcmp(lines[1], want[1]) == 0 &&
              strcmp(lines[2], "last_distribution=none") == 0 &&
              strcmp(lines[3], "keys=1 keys_installed=0 notifies=0 fetches=0 refused=0") == 0 &&
              strcmp(lines[4], "key_changes installed=1 retired=0 removed=0") == 0 && lines[5] == NULL,
          "krs_status_text after the install: keys=1, key_changes installed=1", detail);
    krs_free(lines);

    rc = krs_process_distribution(ctx, argv[7], records, lengths, 1, &report);
    snprintf(detail, sizeof detail, "rc %d: %s", rc, krs_last_error(ctx));
    check(rc == KRS_EREPLAY && report == NULL && strstr(krs_last_error(ctx), "already processed") != NULL,
          "the same distribution again -> KRS_EREPLAY with a reason", detail);
    check(strcmp(krs_strerror(KRS_EREPLAY), "unknown error") != 0, "krs_strerror(KRS_EREPLAY) has a text", NULL);

    /* Counters by backend (issue 13): the vector processed, its replay refused once its
     * manifest named the backend; the refusals before that (HMAC, stale) are nobody's. */
    char *status_json = NULL;
    rc = krs_status_json(ctx, &status_json);
    check(rc == KRS_OK && status_json != NULL &&
              strstr(status_json, "\"backends\":{\"hpke\":{\"processed\":1,\"failed\":1,\"processing_ms\":{\"median\":") != NULL &&
              strstr(status_json, "\"jose\":{\"processed\":0,\"failed\":0,\"processing_ms\":{\"median\":0,\"p95\":0}}") != NULL,
          "krs_status_json backends: hpke processed 1, failed 1 (the replay); jose nothing", status_json);
    krs_free(status_json);

    krs_cleanup(ctx);
    krs_cleanup(NULL);
    check(krs_process_distribution(ctx, argv[7], records, lengths, 1, &report) == KRS_EINVAL,
          "a cleaned-up context -> KRS_EINVAL, not a crash", NULL);
    free(rdata);
    return failures ? 1 : 0;
}
