/*
 * Every distribution the real Go KDC sent (Tests/Vectors/go-daemons, README-krs.md there)
 * through krs_process_distribution from C, with the node keys `krs-cli enroll` wrote:
 * v1, v2, JOSE, chunked, and node_operations with the encapsulated key twice. Then the same
 * with require_signature=yes (KRS_EUNSIGNED: the Go KDC's manifests bind nothing), and a
 * key_dir that cannot be written (KRS_OK, every key in failed_keys with "storage: …").
 *
 * usage: test_go_daemons CASES_FILE WORK_DIR SIGNING_JWK_FILE
 * CASES_FILE: one case per line, tab-separated:
 *   label node control_zone now distribution_id hpke_key_path|- jose_key_path|-
 *   expected_report n_records rdata_hex...
 * Prints one PASS/FAIL line per check (never key material); exit status 1 if any failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

#define MAX_FIELDS 32
#define MAX_SETTINGS 12

struct fixture {
    char *label, *node, *zone, *now, *id, *hpke, *jose, *expected;
    size_t count;
    uint8_t *rdata[MAX_FIELDS];
    size_t len[MAX_FIELDS];
};

/* Creates a context for `f` with its own state and key directories under `dir`. */
static krs_context_t *context(const struct fixture *f, const char *dir, const char *extra1, const char *extra2) {
    static char a[MAX_SETTINGS][1024];
    const char *settings[MAX_SETTINGS];
    int n = 0;
    snprintf(a[n], sizeof a[n], "state_dir=%s/state", dir), n++;
    snprintf(a[n], sizeof a[n], "key_dir=%s/keys", dir), n++;
    snprintf(a[n], sizeof a[n], "node_id=%s", f->node), n++;
    snprintf(a[n], sizeof a[n], "control_zone=%s", f->zone), n++;
    snprintf(a[n], sizeof a[n], "now=%s", f->now), n++;
    snprintf(a[n], sizeof a[n], "chunk_rrtype=65015"), n++;
    if (strcmp(f->hpke, "-") != 0) snprintf(a[n], sizeof a[n], "hpke_private_key=%s", f->hpke), n++;
    if (strcmp(f->jose, "-") != 0) snprintf(a[n], sizeof a[n], "jose_private_key=%s", f->jose), n++;
    if (extra1) snprintf(a[n], sizeof a[n], "%s", extra1), n++;
    if (extra2) snprintf(a[n], sizeof a[n], "%s", extra2), n++;
    for (int i = 0; i < n; i++) settings[i] = a[i];
    krs_context_t *ctx = NULL;
    if (krs_init(&ctx, n, settings) != KRS_OK) {
        char name[256];
        snprintf(name, sizeof name, "%s: krs_init", f->label);
        check(0, name, krs_last_error(NULL));
        return NULL;
    }
    return ctx;
}

static int count_private_files(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s' 2>/dev/null | grep -c '\\.private$'", dir);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = 0;
        pclose(p);
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s CASES WORKDIR SIGNING_JWK_FILE\n", argv[0]);
        return 2;
    }
    FILE *cases = fopen(argv[1], "r");
    if (!cases) {
        perror(argv[1]);
        return 2;
    }
    char signing[1100];
    snprintf(signing, sizeof signing, "kdc_signing_pubkey=%s", argv[3]);
    static char line[1 << 20];
    int n_cases = 0, storage_done = 0;
    while (fgets(line, sizeof line, cases)) {
        line[strcspn(line, "\n")] = 0;
        char *field[MAX_FIELDS + 9];
        int nf = 0;
        for (char *tok = strtok(line, "\t"); tok && nf < MAX_FIELDS + 9; tok = strtok(NULL, "\t")) field[nf++] = tok;
        if (nf < 10) continue;
        struct fixture f = {field[0], field[1], field[2], field[3], field[4], field[5], field[6], field[7], 0, {0}, {0}};
        f.count = (size_t)strtoul(field[8], NULL, 10);
        if (f.count == 0 || f.count > MAX_FIELDS || (int)f.count != nf - 9) {
            check(0, f.label, "bad case line");
            continue;
        }
        for (size_t i = 0; i < f.count; i++) f.rdata[i] = from_hex(field[9 + i], &f.len[i]);
        const uint8_t *records[MAX_FIELDS];
        for (size_t i = 0; i < f.count; i++) records[i] = f.rdata[i];
        n_cases++;
        char dir[1100], name[512], detail[4096];

        /* 1. As the Go KRS would have: processed, the report the Go KRS sent (or would have). */
        snprintf(dir, sizeof dir, "%s/%s", argv[2], f.label);
        krs_context_t *ctx = context(&f, dir, NULL, NULL);
        if (ctx) {
            char *report = NULL;
            int rc = krs_process_distribution(ctx, f.id, records, f.len, f.count, &report);
            snprintf(name, sizeof name, "%s: krs_process_distribution -> KRS_OK, report as the Go KRS's", f.label);
            snprintf(detail, sizeof detail, "rc %d (%s), report %s, expected %s", rc, krs_last_error(ctx), report ? report : "(none)", f.expected);
            check(rc == KRS_OK && report && strcmp(report, f.expected) == 0, name, detail);
            krs_free(report);
            if (strstr(f.label, "hpke-doubled")) {
                char audit[1200], cmd[1300];
                snprintf(audit, sizeof audit, "%s/state/audit.log", dir);
                snprintf(cmd, sizeof cmd, "grep -q 'encapsulated key twice (Go KDC); opened the rest' '%s'", audit);
                snprintf(name, sizeof name, "%s: the doubled encapsulated key is written to the audit log", f.label);
                check(system(cmd) == 0, name, audit);
            }
            krs_cleanup(ctx);
        }

        /* 2. require_signature=yes: refused, nothing installed. */
        snprintf(dir, sizeof dir, "%s/%s-strict", argv[2], f.label);
        ctx = context(&f, dir, signing, "require_signature=yes");
        if (ctx) {
            char *report = NULL;
            int rc = krs_process_distribution(ctx, f.id, records, f.len, f.count, &report);
            char keys[1200];
            snprintf(keys, sizeof keys, "%s/keys", dir);
            snprintf(name, sizeof name, "%s: with require_signature=yes -> KRS_EUNSIGNED, nothing installed", f.label);
            snprintf(detail, sizeof detail, "rc %d: %s", rc, krs_last_error(ctx));
            check(rc == KRS_EUNSIGNED && report == NULL && count_private_files(keys) == 0
                      && strstr(krs_last_error(ctx), "Format 1 HMAC manifest") != NULL, name, detail);
            krs_free(report);
            krs_cleanup(ctx);
        }

        /* 3. Once, for a key distribution: key_dir replaced by a file after krs_init. */
        if (!storage_done && strstr(f.expected, "successful_keys") && strstr(f.label, "keyops-hpke-v2")) {
            storage_done = 1;
            snprintf(dir, sizeof dir, "%s/%s-storage", argv[2], f.label);
            ctx = context(&f, dir, NULL, NULL);
            if (ctx) {
                char keys[1200];
                snprintf(keys, sizeof keys, "%s/keys", dir);
                int ok = rmdir(keys) == 0;
                FILE *file = ok ? fopen(keys, "w") : NULL;
                if (file) fclose(file);
                char *report = NULL;
                int rc = krs_process_distribution(ctx, f.id, records, f.len, f.count, &report);
                snprintf(name, sizeof name, "%s: key_dir unwritable -> KRS_OK, every key in failed_keys with \"storage: …\"", f.label);
                snprintf(detail, sizeof detail, "rc %d (%s), report %s", rc, krs_last_error(ctx), report ? report : "(none)");
                check(file != NULL && rc == KRS_OK && report && strstr(report, "\"failed_keys\"")
                          && strstr(report, "\"error\":\"storage: ") && !strstr(report, "successful_keys"), name, detail);
                krs_free(report);
                report = NULL;
                rc = krs_process_distribution(ctx, f.id, records, f.len, f.count, &report);
                snprintf(name, sizeof name, "%s: the install-failed distribution is recorded (again -> KRS_EREPLAY)", f.label);
                snprintf(detail, sizeof detail, "rc %d: %s", rc, krs_last_error(ctx));
                check(rc == KRS_EREPLAY && report == NULL, name, detail);
                krs_free(report);
                krs_cleanup(ctx);
            }
        }
        for (size_t i = 0; i < f.count; i++) free(f.rdata[i]);
    }
    fclose(cases);
    char detail[64];
    snprintf(detail, sizeof detail, "%d cases, storage case %s", n_cases, storage_done ? "run" : "not run");
    check(n_cases == 11 && storage_done, "all eleven Go KDC distributions went through the C API", detail);
    return failures ? 1 : 0;
}
