/*
 * The two functions server plugins are built on, from C:
 *   krs_notify_decide  whether a message knotd received is a NOTIFY for the KRS, and the RCODE
 *                      and AA its response takes (below the control zone, outside it, the
 *                      apex, a QUERY, class CH, a response, malformed bytes, NULL/stale args);
 *   krs_status_text    the status.tdnskrs. strings, exactly, and how they are freed (one
 *                      krs_free; NULL, foreign, inner and already-freed pointers ignored).
 *
 * usage: test_host_api STATE_DIR KEY_DIR HPKE_KEY_FILE STATE_DIR2
 * Prints one PASS/FAIL line per check; exit status 1 if any failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tdnskrs/tdnskrs.h>

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

/* A DNS message: id 0x4242, flags byte `flags2` (QR/opcode/AA…), one question. */
static size_t message(uint8_t *out, uint8_t flags2, const char *qname, uint16_t qtype, uint16_t qclass)
{
    size_t n = 0;
    out[n++] = 0x42, out[n++] = 0x42;
    out[n++] = flags2, out[n++] = 0x00;
    out[n++] = 0, out[n++] = 1;
    for (int i = 0; i < 6; i++) out[n++] = 0;
    for (const char *p = qname; *p;) {
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

#define NOTIFY (4 << 3)
#define QUERY  0

struct verdict {
    int rc, for_krs, rcode, aa;
};

static struct verdict decide(krs_context_t *ctx, uint8_t flags2, const char *qname, uint16_t qclass)
{
    uint8_t msg[512];
    size_t len = message(msg, flags2, qname, 6, qclass);
    struct verdict v = { 0, -1, -1, -1 };
    v.rc = krs_notify_decide(ctx, msg, len, &v.for_krs, &v.rcode, &v.aa);
    return v;
}

static void expect(krs_context_t *ctx, const char *name, uint8_t flags2, const char *qname, uint16_t qclass,
                   int rc, int for_krs, int rcode, int aa)
{
    struct verdict v = decide(ctx, flags2, qname, qclass);
    char detail[200];
    snprintf(detail, sizeof detail, "rc %d, for_krs %d, rcode %d, aa %d (want %d, %d, %d, %d)", v.rc, v.for_krs,
             v.rcode, v.aa, rc, for_krs, rcode, aa);
    check(v.rc == rc && v.for_krs == for_krs && v.rcode == rcode && v.aa == aa, name, detail);
}

static int pending_lines(const char *state)
{
    char path[1100], line[256];
    snprintf(path, sizeof path, "%s/pending", state);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (f != NULL) {
        while (fgets(line, sizeof line, f)) n++;
        fclose(f);
    }
    return n;
}

/* The status strings of ctx, compared with want[0..n); prints what differs. */
static void expect_status(krs_context_t *ctx, const char *name, const char *const *want, size_t n)
{
    char **lines = (char **)0x1;
    size_t count = 99;
    int rc = krs_status_text(ctx, &lines, &count);
    char detail[1200] = "";
    int ok = rc == KRS_OK && lines != NULL && count == n && lines[count] == NULL;
    size_t off = (size_t)snprintf(detail, sizeof detail, "rc %d, %zu lines:", rc, rc == KRS_OK ? count : 0);
    for (size_t i = 0; rc == KRS_OK && lines != NULL && i < count; i++) {
        if (i >= n || strcmp(lines[i], want[i]) != 0) ok = 0;
        if (off < sizeof detail) off += (size_t)snprintf(detail + off, sizeof detail - off, " \"%s\"", lines[i]);
    }
    check(ok, name, detail);
    if (rc == KRS_OK) krs_free(lines);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s STATE KEYDIR HPKEKEY STATE2\n", argv[0]);
        return 2;
    }
    char a[5][1100];
    snprintf(a[0], sizeof a[0], "state_dir=%s", argv[1]);
    snprintf(a[1], sizeof a[1], "key_dir=%s", argv[2]);
    snprintf(a[2], sizeof a[2], "hpke_private_key=%s", argv[3]);
    snprintf(a[3], sizeof a[3], "node_id=krs1.example.");
    snprintf(a[4], sizeof a[4], "control_zone=kdc.example.");
    const char *settings[5] = { a[0], a[1], a[2], a[3], a[4] };
    krs_context_t *ctx = NULL;
    if (krs_init(&ctx, 5, settings) != KRS_OK) {
        check(0, "krs_init", krs_last_error(NULL));
        return 1;
    }
    char version[300];
    snprintf(version, sizeof version, "version=%s", krs_version());

    /* --- krs_status_text before anything happened ------------------------------------- */
    const char *fresh[] = {
        version,
        "node_id=krs1.example. enrolled=yes listening=no running=no",
        "last_distribution=none",
        "keys=0 keys_installed=0 notifies=0 fetches=0 refused=0",
        "key_changes installed=0 retired=0 removed=0",
    };
    expect_status(ctx, "krs_status_text: a fresh context's five strings, exactly", fresh, 5);
    const char *none[] = { version };
    expect_status(NULL, "krs_status_text(NULL): only the version (a host running no KRS)", none, 1);

    /* --- krs_notify_decide --------------------------------------------------------------- */
    expect(ctx, "NOTIFY 6a2f0001.kdc.example. (below the control zone) -> for the KRS, NOERROR, AA", NOTIFY,
           "6a2f0001.kdc.example.", 1, KRS_OK, 1, 0, 1);
    check(pending_lines(argv[1]) == 1, "… and the distribution is recorded in state_dir/pending", NULL);
    expect(ctx, "the same NOTIFY again -> for the KRS, NOERROR (known already)", NOTIFY, "6a2f0001.kdc.example.", 1,
           KRS_OK, 1, 0, 1);
    expect(ctx, "NOTIFY 6A2F0002.KDC.EXAMPLE. (upper case) -> for the KRS, NOERROR", NOTIFY, "6A2F0002.KDC.EXAMPLE.", 1,
           KRS_OK, 1, 0, 1);
    expect(ctx, "NOTIFY kdc.example. (the control zone's apex) -> for the KRS, REFUSED, AA", NOTIFY, "kdc.example.", 1,
           KRS_OK, 1, 5, 1);
    expect(ctx, "NOTIFY www.kdc.example. (no distribution ID) -> for the KRS, REFUSED", NOTIFY, "www.kdc.example.", 1,
           KRS_OK, 1, 5, 1);
    expect(ctx, "NOTIFY example.com. (outside the control zone) -> not the KRS's", NOTIFY, "example.com.", 1, KRS_OK,
           0, 0, 0);
    expect(ctx, "NOTIFY 6a2f0003.other.example. (outside) -> not the KRS's", NOTIFY, "6a2f0003.other.example.", 1,
           KRS_OK, 0, 0, 0);
    expect(ctx, "NOTIFY 6a2f0004.example. (a parent of nothing we own) -> not the KRS's", NOTIFY, "6a2f0004.example.",
           1, KRS_OK, 0, 0, 0);
    expect(ctx, "a QUERY for 6a2f0005.kdc.example. -> not the KRS's", QUERY, "6a2f0005.kdc.example.", 1, KRS_OK, 0,
           0, 0);
    expect(ctx, "NOTIFY 6a2f0006.kdc.example. of class CH -> not the KRS's", NOTIFY, "6a2f0006.kdc.example.", 3,
           KRS_OK, 0, 0, 0);
    expect(ctx, "a NOTIFY response (QR set) for 6a2f0007.kdc.example. -> not the KRS's", 0x80 | NOTIFY,
           "6a2f0007.kdc.example.", 1, KRS_OK, 0, 0, 0);
    check(pending_lines(argv[1]) == 2, "only the two NOTIFYs for the KRS were queued", NULL);

    int for_krs = -1, rcode = -1, aa = -1;
    const uint8_t garbage[5] = { 1, 2, 3, 4, 5 };
    int rc = krs_notify_decide(ctx, garbage, sizeof garbage, &for_krs, &rcode, &aa);
    char detail[200];
    snprintf(detail, sizeof detail, "rc %d, for_krs %d", rc, for_krs);
    check(rc == KRS_EMALFORMED && for_krs == 0 && rcode == 0 && aa == 0,
          "5 bytes of garbage -> KRS_EMALFORMED, out-parameters 0 (the host handles it as usual)", detail);
    uint8_t msg[512];
    size_t len = message(msg, NOTIFY, "6a2f0008.kdc.example.", 6, 1);
    rc = krs_notify_decide(ctx, msg, len - 3, &for_krs, &rcode, &aa);
    check(rc == KRS_EMALFORMED && for_krs == 0, "a NOTIFY cut short in its question -> KRS_EMALFORMED", NULL);
    check(krs_notify_decide(ctx, NULL, 12, &for_krs, &rcode, &aa) == KRS_EINVAL, "msg NULL -> KRS_EINVAL", NULL);
    check(krs_notify_decide(ctx, msg, len, NULL, &rcode, &aa) == KRS_EINVAL && krs_notify_decide(ctx, msg, len, &for_krs, NULL, &aa) == KRS_EINVAL &&
              krs_notify_decide(ctx, msg, len, &for_krs, &rcode, NULL) == KRS_EINVAL,
          "a NULL out-parameter -> KRS_EINVAL", NULL);
    check(krs_notify_decide(NULL, msg, len, &for_krs, &rcode, &aa) == KRS_EINVAL, "ctx NULL -> KRS_EINVAL", NULL);
    check(pending_lines(argv[1]) == 2, "the failed calls queued nothing", NULL);

    /* The library counted only what was for the KRS: 5 NOTIFYs, 2 refused. */
    const char *after[] = {
        version,
        "node_id=krs1.example. enrolled=yes listening=no running=no",
        "last_distribution=none",
        "keys=0 keys_installed=0 notifies=5 fetches=0 refused=0",
        "key_changes installed=0 retired=0 removed=0",
    };
    expect_status(ctx, "krs_status_text: notifies=5 (the messages that were not the KRS's are not counted)", after, 5);
    char *json = NULL;
    check(krs_status_json(ctx, &json) == KRS_OK && json != NULL && strstr(json, "\"notifies_refused\":2") != NULL,
          "krs_status_json: notifies_refused 2 (the apex and www)", json);
    krs_free(json);

    /* --- freeing ----------------------------------------------------------------------------- */
    char **lines = NULL;
    size_t count = 0;
    rc = krs_status_text(ctx, &lines, &count);
    check(rc == KRS_OK && count == 5, "krs_status_text for the free checks", NULL);
    if (rc == KRS_OK) {
        krs_free(lines[1]);     /* a string inside the block: not ours to free alone, ignored */
        krs_free(lines[4] + 3); /* a pointer into the block: ignored */
        check(strcmp(lines[1], fresh[1]) == 0, "krs_free(lines[1]) is ignored (the block stays intact)", lines[1]);
        krs_free(lines);
        krs_free(lines); /* freed already: ignored (a double free would be in valgrind's report) */
    }
    krs_free(NULL);
    char *foreign = (char *)malloc(16);
    if (foreign != NULL) {
        strcpy(foreign, "host memory");
        krs_free(foreign);
        check(strcmp(foreign, "host memory") == 0, "krs_free(malloc'ed by the host) is ignored, memory untouched", foreign);
        free(foreign);
    }
    check(krs_status_text(ctx, NULL, &count) == KRS_EINVAL && krs_status_text(ctx, &lines, NULL) == KRS_EINVAL,
          "krs_status_text with a NULL out-parameter -> KRS_EINVAL", NULL);

    /* --- a node that is not enrolled: nothing is for the KRS -------------------------------- */
    char b[1100];
    snprintf(b, sizeof b, "state_dir=%s", argv[4]);
    const char *bare[2] = { b, "key_store=none" };
    krs_context_t *unenrolled = NULL;
    rc = krs_init(&unenrolled, 2, bare);
    snprintf(detail, sizeof detail, "rc %d: %s", rc, krs_last_error(NULL));
    check(rc == KRS_OK, "krs_init of a node not enrolled yet (state_dir only)", detail);
    if (rc == KRS_OK) {
        expect(unenrolled, "not enrolled: NOTIFY 6a2f0001.kdc.example. -> not the KRS's (no control zone)", NOTIFY,
               "6a2f0001.kdc.example.", 1, KRS_OK, 0, 0, 0);
        const char *bare_status[] = {
            version,
            "node_id=- enrolled=no listening=no running=no",
            "last_distribution=none",
            "keys=0 keys_installed=0 notifies=0 fetches=0 refused=0",
            "key_changes installed=0 retired=0 removed=0",
        };
        expect_status(unenrolled, "krs_status_text of a node not enrolled: node_id=- enrolled=no", bare_status, 5);
        krs_cleanup(unenrolled);
    }

    /* --- stale contexts ------------------------------------------------------------------- */
    krs_cleanup(ctx);
    lines = (char **)0x1;
    check(krs_status_text(ctx, &lines, &count) == KRS_EINVAL && lines == NULL && count == 0,
          "krs_status_text of a cleaned-up context -> KRS_EINVAL, out-parameters NULL/0", NULL);
    check(krs_notify_decide(ctx, msg, len, &for_krs, &rcode, &aa) == KRS_EINVAL && for_krs == 0,
          "krs_notify_decide of a cleaned-up context -> KRS_EINVAL", NULL);
    check(krs_status_text((krs_context_t *)(void *)&count, &lines, &count) == KRS_EINVAL,
          "krs_status_text of a pointer that never was a context -> KRS_EINVAL, not a crash", NULL);
    return failures ? 1 : 0;
}
