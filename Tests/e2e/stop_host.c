/*
 * krs_stop while a fetch is in flight (Tests/e2e/faults.sh, test 7).
 *
 * usage: stop_host STATE_DIR KDC_ADDRESS DIST_ID CONTROL_ZONE EVENTS_FILE PATTERN MAX_SECONDS
 *
 *   STATE_DIR     state directory of a node enrolled with tdns-krs (its krs.conf is read)
 *   KDC_ADDRESS   IP:port the node fetches from: a faultproxy.py that never answers
 *   DIST_ID       the distribution announced to the node (krs_handle_notify)
 *   EVENTS_FILE   the proxy's event log; PATTERN appears in it once the fetch reached the proxy
 *   MAX_SECONDS   krs_stop must return within this
 *
 * krs_init → krs_start → krs_handle_notify(NOTIFY <DIST_ID>.<CONTROL_ZONE>) → wait until the
 * proxy has the query → krs_stop (timed) → krs_status_json → krs_cleanup.
 * Prints "stop_seconds=<s>" and "status=<krs_status_json>". Exit status: 0 fine, 1 setup
 * failure, 2 krs_stop too slow.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tdnskrs/tdnskrs.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether the file contains the pattern. */
static int file_contains(const char *path, const char *pattern) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, pattern) != NULL;
    fclose(f);
    return found;
}

/* A NOTIFY (opcode 4, AA) for <id>.<zone>, qtype CHUNK (65288), class IN. */
static size_t build_notify(uint8_t *buf, size_t cap, const char *id, const char *zone) {
    char name[512];
    int n = snprintf(name, sizeof name, "%s.%s", id, zone);
    if (n <= 0 || (size_t)n >= sizeof name || cap < 12 + (size_t)n + 2 + 4) return 0;
    size_t off = 0;
    const uint8_t header[12] = {0x4b, 0x52, (uint8_t)((4 << 3) | 0x04), 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(buf, header, sizeof header);
    off = sizeof header;
    const char *label = name;
    while (*label) {
        const char *dot = strchr(label, '.');
        size_t len = dot ? (size_t)(dot - label) : strlen(label);
        if (len == 0 || len > 63) return 0;
        buf[off++] = (uint8_t)len;
        memcpy(buf + off, label, len);
        off += len;
        label += len + (dot ? 1 : 0);
    }
    buf[off++] = 0;
    buf[off++] = 0xff; /* 65288 = 0xff08 */
    buf[off++] = 0x08;
    buf[off++] = 0x00; /* IN */
    buf[off++] = 0x01;
    return off;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s STATE_DIR KDC_ADDRESS DIST_ID CONTROL_ZONE EVENTS_FILE PATTERN MAX_SECONDS\n", argv[0]);
        return 1;
    }
    const double max_seconds = atof(argv[7]);
    char state[1100], kdc[300];
    snprintf(state, sizeof state, "state_dir=%s", argv[1]);
    snprintf(kdc, sizeof kdc, "kdc_address=%s", argv[2]);
    /* The NOTIFY below is unsigned: this host tests krs_stop, not NOTIFY authentication
     * (which the node requires by default once it knows the KDC's SIG(0) key). */
    const char *settings[3] = {state, kdc, "require_notify_signature=no"};

    krs_context_t *ctx = NULL;
    int rc = krs_init(&ctx, 3, settings);
    if (rc != KRS_OK) {
        fprintf(stderr, "krs_init: %s: %s\n", krs_strerror(rc), krs_last_error(NULL));
        return 1;
    }
    rc = krs_start(ctx);
    if (rc != KRS_OK) {
        fprintf(stderr, "krs_start: %s: %s\n", krs_strerror(rc), krs_last_error(ctx));
        krs_cleanup(ctx);
        return 1;
    }

    uint8_t msg[600];
    size_t len = build_notify(msg, sizeof msg, argv[3], argv[4]);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    rc = len ? krs_handle_notify(ctx, msg, len, &resp, &resp_len) : KRS_EINVAL;
    if (rc != KRS_OK || resp_len < 4 || (resp[3] & 0x0f) != 0) {
        fprintf(stderr, "krs_handle_notify: rc %d, %zu-byte answer\n", rc, resp_len);
        krs_free(resp);
        krs_cleanup(ctx);
        return 1;
    }
    krs_free(resp);

    /* Wait (up to 60 s: valgrind is slow) until the fetch has reached the stalling proxy. */
    int seen = 0;
    for (int i = 0; i < 3000 && !seen; i++) {
        seen = file_contains(argv[5], argv[6]);
        if (!seen) sleep_ms(20);
    }
    if (!seen) {
        fprintf(stderr, "the fetch never reached the proxy (%s not in %s)\n", argv[6], argv[5]);
        krs_cleanup(ctx);
        return 1;
    }
    sleep_ms(300); /* the node is now waiting for an answer that never comes */

    const double t0 = now_seconds();
    rc = krs_stop(ctx);
    const double elapsed = now_seconds() - t0;
    printf("stop_seconds=%.3f\n", elapsed);
    fflush(stdout);
    if (rc != KRS_OK) {
        fprintf(stderr, "krs_stop: %s\n", krs_strerror(rc));
        krs_cleanup(ctx);
        return 1;
    }

    /* The status shows what became of the fetch (no key material in it). */
    char *status = NULL;
    rc = krs_status_json(ctx, &status);
    int listening = rc == KRS_OK && status && strstr(status, "\"listening\":false") == NULL;
    if (rc == KRS_OK && status) printf("status=%s\n", status);
    krs_free(status);
    krs_cleanup(ctx);
    if (rc != KRS_OK || listening) {
        fprintf(stderr, "after krs_stop the status still says listening (or failed: %d)\n", rc);
        return 1;
    }
    return elapsed < max_seconds ? 0 : 2;
}
