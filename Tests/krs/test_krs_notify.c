/*
 * krs_handle_notify from C, as the Knot module calls it (the message only, no peer address):
 * NOERROR only for <distribution-id>.<control zone> — recorded in state_dir/pending before the
 * answer — REFUSED for other names and opcodes, FORMERR for a bad NOTIFY, and REFUSED once
 * the host's share of the queue (16) is full.
 *
 * usage: test_krs_notify STATE_DIR KEY_DIR HPKE_KEY_FILE
 * Prints one PASS/FAIL line per check; exit status 1 if any failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tdnskrs/tdnskrs.h>

static int failures;

static void check(int ok, const char *name, const char *detail) {
    if (ok) {
        printf("PASS: %s\n", name);
    } else {
        printf("FAIL: %s — %s\n", name, detail ? detail : "");
        failures++;
    }
}

/* A DNS request: id 0x4242, `opcode`, AA, one question qname/qtype/qclass. */
static size_t message(uint8_t *out, int opcode, const char *qname, uint16_t qtype, uint16_t qclass) {
    size_t n = 0;
    out[n++] = 0x42, out[n++] = 0x42;
    out[n++] = (uint8_t)((opcode << 3) | 0x04), out[n++] = 0x00;
    out[n++] = 0, out[n++] = 1;                                     /* QDCOUNT */
    for (int i = 0; i < 6; i++) out[n++] = 0;                      /* AN, NS, AR */
    const char *p = qname;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        out[n++] = (uint8_t)len;
        memcpy(out + n, p, len), n += len;
        p += len + (dot ? 1 : 0);
    }
    out[n++] = 0;
    out[n++] = (uint8_t)(qtype >> 8), out[n++] = (uint8_t)qtype;
    out[n++] = (uint8_t)(qclass >> 8), out[n++] = (uint8_t)qclass;
    return n;
}

/* The RCODE krs_handle_notify answers, -1 for no answer. */
static int answer(krs_context_t *ctx, int opcode, const char *qname, uint16_t qclass) {
    uint8_t msg[512];
    size_t len = message(msg, opcode, qname, 65288, qclass);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = krs_handle_notify(ctx, msg, len, &resp, &resp_len);
    int rcode = -1;
    if (rc == KRS_OK && resp && resp_len >= 12 && resp[0] == 0x42 && resp[1] == 0x42 && (resp[2] & 0x80) && (resp[2] & 0x04)) {
        rcode = resp[3] & 0x0f;
    }
    krs_free(resp);
    return rcode;
}

static int pending_has(const char *state, const char *id) {
    char path[1100], line[256];
    snprintf(path, sizeof path, "%s/pending", state);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int found = 0, lines = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        /* <id> <first_seen_unix> <attempts> */
        char got[64];
        long long t;
        int attempts;
        if (sscanf(line, "%63s %lld %d", got, &t, &attempts) == 3 && strcmp(got, id) == 0 && t > 0 && attempts == 0) found = 1;
    }
    fclose(f);
    return found ? lines : 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s STATE KEYDIR HPKEKEY\n", argv[0]);
        return 2;
    }
    char a[5][1100];
    snprintf(a[0], sizeof a[0], "state_dir=%s", argv[1]);
    snprintf(a[1], sizeof a[1], "key_dir=%s", argv[2]);
    snprintf(a[2], sizeof a[2], "hpke_private_key=%s", argv[3]);
    snprintf(a[3], sizeof a[3], "node_id=krs1.example.");
    snprintf(a[4], sizeof a[4], "control_zone=kdc.example.");
    const char *settings[5] = {a[0], a[1], a[2], a[3], a[4]};
    krs_context_t *ctx = NULL;
    if (krs_init(&ctx, 5, settings) != KRS_OK) {
        check(0, "krs_init", krs_last_error(NULL));
        return 1;
    }
    char detail[256];
    int r = answer(ctx, 4, "6a2f0001.kdc.example.", 1);
    snprintf(detail, sizeof detail, "rcode %d, pending lines %d", r, pending_has(argv[1], "6a2f0001"));
    check(r == 0 && pending_has(argv[1], "6a2f0001") == 1,
          "NOTIFY 6a2f0001.kdc.example. -> NOERROR, in state_dir/pending as <id> <first_seen> 0", detail);
    r = answer(ctx, 4, "6a2f0001.kdc.example.", 1);
    check(r == 0 && pending_has(argv[1], "6a2f0001") == 1, "the same NOTIFY again -> NOERROR, no second entry", NULL);
    const char *refused[] = {"6a2f0002.other.example.", "kdc.example.", "www.kdc.example.", "6a2f0003.example."};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char name[256];
        r = answer(ctx, 4, refused[i], 1);
        snprintf(name, sizeof name, "NOTIFY %s (not <id>.<control zone>) -> REFUSED, not queued", refused[i]);
        snprintf(detail, sizeof detail, "rcode %d", r);
        check(r == 5 && pending_has(argv[1], "6a2f0001") == 1, name, detail);
    }
    r = answer(ctx, 0, "krs1.example.6a2f0004.kdc.example.", 1);
    snprintf(detail, sizeof detail, "rcode %d", r);
    check(r == 5, "a QUERY handed to krs_handle_notify -> REFUSED", detail);
    r = answer(ctx, 4, "6a2f0005.kdc.example.", 3);
    snprintf(detail, sizeof detail, "rcode %d", r);
    check(r == 1, "a NOTIFY of class CH -> FORMERR", detail);
    /* The host's NOTIFYs are one source: 16 waiting at most. One is queued already. */
    int ok = 1;
    for (int i = 2; i <= 16; i++) {
        char name[64];
        snprintf(name, sizeof name, "6a2f%04x.kdc.example.", 0x100 + i);
        if (answer(ctx, 4, name, 1) != 0) ok = 0;
    }
    check(ok, "15 more distributions from the host -> NOERROR (16 waiting)", NULL);
    r = answer(ctx, 4, "6a2fffff.kdc.example.", 1);
    snprintf(detail, sizeof detail, "rcode %d", r);
    check(r == 5 && !pending_has(argv[1], "6a2fffff"), "the 17th from the host -> REFUSED (the KDC sends it again), not recorded", detail);
    char *status = NULL;
    check(krs_status_json(ctx, &status) == KRS_OK && status && strstr(status, "\"notifies_refused\":7"),
          "krs_status_json counts the refused NOTIFYs", status);
    krs_free(status);
    krs_cleanup(ctx);
    return failures ? 1 : 0;
}
