/*
 * dlz_tdnskrs.c — BIND 9 DLZ module (dlopen driver) hosting libtdnskrs inside named.
 *
 * It serves the zone `tdnskrs.`:
 *   tdnskrs.          SOA  tdnskrs. hostmaster.tdnskrs. 1 3600 600 86400 60
 *   tdnskrs.          NS   localhost.
 *   version.tdnskrs.  TXT  "<krs_version()>"
 *   status.tdnskrs.   TXT  the KRS state, one string per record (see status_records())
 *
 * Without KRS settings it only hosts the library (the hosting proof):
 *   dlz "tdnskrs" { database "dlopen /usr/lib/bind/dlz_tdnskrs.so"; };
 *
 * With them it runs a Key Receiver Service inside named:
 *   dlz "tdnskrs" { database "dlopen /usr/lib/bind/dlz_tdnskrs.so state_dir=/var/lib/tdnskrs
 *                             rndc_conf=/etc/bind/rndc.conf"; };
 *
 * Every word of the database string after the module path is a `key=value` setting of
 * krs_init() (see krs.h: state_dir=, key_dir=, notify_listen=, rndc=, rndc_conf=,
 * command_timeout=, config=, …); after `tdns-krs enroll` state_dir= alone is enough
 * (state_dir/krs.conf). The module adds the host defaults `key_store?=bind
 * rndc?=/usr/sbin/rndc` (krs.h: the words and a config= file override them), so that the
 * library's BIND key store writes the K-files and runs `rndc loadkeys ZONE` before it
 * confirms to the KDC — a failing rndc is reported to the KDC as failed keys (`rndc=none`:
 * files only).
 *
 * dlz_create() calls krs_init() and krs_start(); dlz_destroy() calls krs_stop() and
 * krs_cleanup(). The library's log lines and key changes go to named's logger. The zone must
 * be configured with `auto-dnssec maintain; inline-signing yes; key-directory "<key_dir>";`
 * so that the timing metadata of the KDC's key files, not named, decides when keys are
 * published, used (Activate), retired (Inactive) and removed (Delete).
 *
 * named creates the new instance before it destroys the old one on `rndc reload` and
 * `rndc reconfig`, so all state lives in the per-instance struct and nothing is global
 * (libtdnskrs serializes contexts sharing a state_dir; its listener uses SO_REUSEPORT).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tdnskrs/common.h>
#include <tdnskrs/krs.h>

#include "../common/krs_status_text.h"
#include "dlz_minimal.h"

#define DLZ_EXPORT __attribute__((visibility("default")))

#define ZONE_NAME  "tdnskrs"
#define RECORD_TTL 60U
#define STATUS_TTL 0U /* the status changes at any moment: no caching */
#define SOA_RDATA  "tdnskrs. hostmaster.tdnskrs. 1 3600 600 86400 60"
#define NS_RDATA   "localhost."

/* A TXT character-string holds at most 255 bytes; \DDD escaping can quadruple that. */
#define TXT_TEXT_MAX (2 + 4 * 255 + 1)

/* Host defaults (`key?=value`): the operator's words and config= file override them. */
static const char *const DEFAULT_SETTINGS[] = {"key_store?=bind", "rndc?=/usr/sbin/rndc"};
#define N_DEFAULT_SETTINGS (sizeof(DEFAULT_SETTINGS) / sizeof(DEFAULT_SETTINGS[0]))
#define MAX_SETTINGS       64
#define ISC_LOG_DEBUG1     1 /* ISC_LOG_DEBUG(1) */

struct dlz_tdnskrs {
    log_t *log;                     /* named's logger; may be NULL */
    dns_sdlz_putrr_t *putrr;        /* required to answer anything */
    char version_txt[TXT_TEXT_MAX]; /* presentation form: quoted, escaped */

    /* --- the KRS (NULL: hosting only) --- */
    krs_context_t *krs;

    pthread_mutex_t mu; /* guards the counters */
    unsigned long installed, retired, removed;
};

/* --- helpers ---------------------------------------------------------------------------- */

/* ASCII-only, locale-free case-insensitive equality (DNS names compare this way). */
static int name_equal(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca >= 'A' && ca <= 'Z') {
            ca = (unsigned char)(ca - 'A' + 'a');
        }
        if (cb >= 'A' && cb <= 'Z') {
            cb = (unsigned char)(cb - 'A' + 'a');
        }
        if (ca != cb) {
            return 0;
        }
        if (ca == '\0') {
            return 1;
        }
    }
}

static int is_our_zone(const char *name)
{
    return name != NULL && (name_equal(name, ZONE_NAME) || name_equal(name, ZONE_NAME "."));
}

/*
 * Renders `s` as one quoted TXT character-string in master-file syntax, so that any byte
 * the library might return reaches the wire unchanged. Fails (returns 0) if `s` is longer
 * than a character-string allows.
 */
static int txt_quote(const char *s, char *out, size_t outlen)
{
    size_t n = strlen(s);
    if (n > 255 || outlen < TXT_TEXT_MAX) {
        return 0;
    }
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c > 0x7e) {
            /* \DDD, decimal, exactly three digits */
            out[o++] = '\\';
            out[o++] = (char)('0' + c / 100);
            out[o++] = (char)('0' + (c / 10) % 10);
            out[o++] = (char)('0' + c % 10);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return 1;
}

/* --- logging ---------------------------------------------------------------------------- */

static void logf_(struct dlz_tdnskrs *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(struct dlz_tdnskrs *st, int level, const char *fmt, ...)
{
    if (st == NULL || st->log == NULL) {
        return;
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    st->log(level, "%s", line);
}

static int isc_level(int krs_level)
{
    switch (krs_level) {
    case KRS_LOG_ERROR:
        return ISC_LOG_ERROR;
    case KRS_LOG_WARNING:
        return ISC_LOG_WARNING;
    case KRS_LOG_INFO:
        return ISC_LOG_INFO;
    default:
        return ISC_LOG_DEBUG1;
    }
}

/* krs_host_ops_t.log: library lines into named's log. */
static void host_log(void *user, int level, const char *message)
{
    logf_(user, isc_level(level), "tdnskrs: %s", message != NULL ? message : "");
}

/* --- key changes ------------------------------------------------------------------------- */

/* krs_host_ops_t.key_changed: named has been told already (rndc loadkeys, by the library's
 * key store); the module only logs and counts for status.tdnskrs. */
static void host_key_changed(void *user, const char *zone, uint16_t key_tag, uint8_t algorithm, int change)
{
    struct dlz_tdnskrs *st = user;
    if (st == NULL || zone == NULL) {
        return;
    }
    const char *what = change == KRS_KEY_INSTALLED ? "installed" : change == KRS_KEY_RETIRED ? "retired" : "removed";
    pthread_mutex_lock(&st->mu);
    if (change == KRS_KEY_INSTALLED) {
        st->installed++;
    } else if (change == KRS_KEY_RETIRED) {
        st->retired++;
    } else {
        st->removed++;
    }
    pthread_mutex_unlock(&st->mu);
    logf_(st, ISC_LOG_INFO, "tdnskrs: key %u (algorithm %u) for %s %s", (unsigned)key_tag, (unsigned)algorithm, zone, what);
}

/* --- status.tdnskrs. TXT ------------------------------------------------------------------ */

static isc_result_t put_txt(struct dlz_tdnskrs *st, dns_sdlzlookup_t *lookup, const char *text)
{
    char quoted[TXT_TEXT_MAX];
    char clipped[256];
    snprintf(clipped, sizeof(clipped), "%s", text); /* at most 255 bytes */
    if (!txt_quote(clipped, quoted, sizeof(quoted))) {
        return ISC_R_FAILURE;
    }
    return st->putrr(lookup, "txt", STATUS_TTL, quoted);
}

/*
 * The records, one string each: those of krs_status_lines() (the same in the Knot module),
 * then this instance's count of key changes:
 *   "key_changes installed=2 retired=0 removed=0"
 * Without KRS settings: "version=…" and "krs=not configured".
 */
static isc_result_t status_records(struct dlz_tdnskrs *st, dns_sdlzlookup_t *lookup)
{
    char lines[KRS_STATUS_LINES][KRS_STATUS_TEXT_MAX + 1];
    int n = krs_status_lines(st->krs, lines);
    isc_result_t r = ISC_R_SUCCESS;
    for (int i = 0; i < n && r == ISC_R_SUCCESS; i++) {
        r = put_txt(st, lookup, lines[i]);
    }
    if (r != ISC_R_SUCCESS) {
        return r;
    }
    if (st->krs == NULL) {
        return put_txt(st, lookup, "krs=not configured");
    }
    char line[128];
    pthread_mutex_lock(&st->mu);
    snprintf(line, sizeof(line), "key_changes installed=%lu retired=%lu removed=%lu", st->installed,
             st->retired, st->removed);
    pthread_mutex_unlock(&st->mu);
    return put_txt(st, lookup, line);
}

/* --- instance lifetime -------------------------------------------------------------------- */

static void instance_free(struct dlz_tdnskrs *st)
{
    if (st->krs != NULL) {
        krs_stop(st->krs);
        krs_cleanup(st->krs); /* no callback runs after this */
        st->krs = NULL;
    }
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/*
 * The KRS settings: DEFAULT_SETTINGS, then argv[1..] (each must be key=value).
 * Returns NULL or the reason it refused the words.
 */
static const char *parse_words(unsigned int argc, char *argv[], const char **krs_argv, int *krs_argc)
{
    *krs_argc = 0;
    if (argc <= 1) {
        return NULL; /* hosting only */
    }
    for (size_t d = 0; d < N_DEFAULT_SETTINGS; d++) {
        krs_argv[(*krs_argc)++] = DEFAULT_SETTINGS[d];
    }
    for (unsigned int i = 1; i < argc; i++) {
        const char *w = argv[i];
        if (w == NULL || strchr(w, '=') == NULL || w[0] == '=') {
            return "every word after the module path must be key=value";
        }
        if (*krs_argc >= MAX_SETTINGS) {
            return "too many settings";
        }
        krs_argv[(*krs_argc)++] = w;
    }
    return NULL;
}

/* --- entry points ------------------------------------------------------------------------ */

DLZ_EXPORT int dlz_version(unsigned int *flags)
{
    /* Instance state is read-only after dlz_create or guarded by st->mu; libtdnskrs is
     * thread-safe. */
    if (flags != NULL) {
        *flags |= DNS_SDLZFLAG_THREADSAFE;
    }
    return DLZ_DLOPEN_VERSION;
}

DLZ_EXPORT isc_result_t dlz_create(const char *dlzname, unsigned int argc, char *argv[],
                                   void **dbdata, ...)
{
    if (dbdata == NULL) {
        return ISC_R_FAILURE;
    }
    *dbdata = NULL;

    struct dlz_tdnskrs *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return ISC_R_NOMEMORY;
    }
    pthread_mutex_init(&st->mu, NULL);

    /* Helpers arrive as (name, function pointer) pairs terminated by a NULL name. */
    va_list ap;
    va_start(ap, dbdata);
    for (const char *helper = va_arg(ap, const char *); helper != NULL;
         helper = va_arg(ap, const char *)) {
        /* Read every helper as a generic function pointer (all of them are), then convert:
         * function-to-function pointer conversion is well-defined in ISO C. */
        void (*fn)(void) = va_arg(ap, void (*)(void));
        if (strcmp(helper, "log") == 0) {
            st->log = (log_t *)fn;
        } else if (strcmp(helper, "putrr") == 0) {
            st->putrr = (dns_sdlz_putrr_t *)fn;
        }
    }
    va_end(ap);

    const char *name = dlzname != NULL ? dlzname : "?";
    const char *version = krs_version();
    const char *krs_argv[MAX_SETTINGS];
    int krs_argc = 0;
    const char *why = NULL;
    if (st->putrr == NULL) {
        why = "named passed no putrr helper";
    } else if (version == NULL) {
        why = "krs_version() returned NULL";
    } else if (!txt_quote(version, st->version_txt, sizeof(st->version_txt))) {
        why = "library version does not fit a TXT string";
    } else {
        why = parse_words(argc, argv, krs_argv, &krs_argc);
    }
    if (why != NULL) {
        logf_(st, ISC_LOG_ERROR, "tdnskrs DLZ '%s': %s", name, why);
        instance_free(st);
        return ISC_R_FAILURE;
    }

    logf_(st, ISC_LOG_INFO, "tdnskrs DLZ loaded, libtdnskrs %s", version);
    if (krs_argc == 0) {
        /* Hosting only: no KRS settings in the database string. */
        *dbdata = st;
        return ISC_R_SUCCESS;
    }

    int rc = krs_init(&st->krs, krs_argc, krs_argv);
    if (rc != KRS_OK) {
        logf_(st, ISC_LOG_ERROR, "tdnskrs DLZ '%s': krs_init failed (%d): %s", name, rc, krs_last_error(NULL));
        st->krs = NULL;
        instance_free(st);
        return ISC_R_FAILURE;
    }
    krs_host_ops_t ops;
    memset(&ops, 0, sizeof(ops));
    ops.version = KRS_HOST_OPS_VERSION;
    ops.size = sizeof(ops);
    ops.user = st;
    ops.log = host_log;
    ops.key_changed = host_key_changed;
    if ((rc = krs_set_host_ops(st->krs, &ops)) != KRS_OK) {
        logf_(st, ISC_LOG_ERROR, "tdnskrs DLZ '%s': krs_set_host_ops failed (%d): %s", name, rc,
              krs_last_error(st->krs));
        instance_free(st);
        return ISC_R_FAILURE;
    }
    if ((rc = krs_start(st->krs)) != KRS_OK) {
        logf_(st, ISC_LOG_ERROR, "tdnskrs DLZ '%s': krs_start failed (%d): %s", name, rc, krs_last_error(st->krs));
        instance_free(st);
        return ISC_R_FAILURE;
    }
    logf_(st, ISC_LOG_INFO, "tdnskrs DLZ '%s': KRS started", name);
    *dbdata = st;
    return ISC_R_SUCCESS;
}

DLZ_EXPORT void dlz_destroy(void *dbdata)
{
    struct dlz_tdnskrs *st = dbdata;
    if (st == NULL) {
        return;
    }
    int had_krs = st->krs != NULL;
    log_t *log = st->log;
    instance_free(st);
    if (log != NULL) {
        log(ISC_LOG_INFO, "%s", had_krs ? "tdnskrs DLZ instance unloaded (KRS stopped)" : "tdnskrs DLZ instance unloaded");
    }
}

DLZ_EXPORT isc_result_t dlz_findzonedb(void *dbdata, const char *name,
                                       dns_clientinfomethods_t *methods,
                                       dns_clientinfo_t *clientinfo)
{
    (void)dbdata;
    (void)methods;
    (void)clientinfo;
    return is_our_zone(name) ? ISC_R_SUCCESS : ISC_R_NOTFOUND;
}

DLZ_EXPORT isc_result_t dlz_lookup(const char *zone, const char *name, void *dbdata,
                                   dns_sdlzlookup_t *lookup, dns_clientinfomethods_t *methods,
                                   dns_clientinfo_t *clientinfo)
{
    struct dlz_tdnskrs *st = dbdata;
    (void)methods;
    (void)clientinfo;

    if (st == NULL || !is_our_zone(zone) || name == NULL) {
        return ISC_R_NOTFOUND;
    }
    /* The apex records come from dlz_authority(); named asks it right after this call. */
    if (name_equal(name, "version")) {
        return st->putrr(lookup, "txt", RECORD_TTL, st->version_txt);
    }
    if (name_equal(name, "status")) {
        return status_records(st, lookup);
    }
    return ISC_R_NOTFOUND;
}

DLZ_EXPORT isc_result_t dlz_authority(const char *zone, void *dbdata, dns_sdlzlookup_t *lookup)
{
    struct dlz_tdnskrs *st = dbdata;
    if (st == NULL || !is_our_zone(zone)) {
        return ISC_R_NOTFOUND;
    }
    isc_result_t r = st->putrr(lookup, "soa", RECORD_TTL, SOA_RDATA);
    if (r != ISC_R_SUCCESS) {
        return r;
    }
    return st->putrr(lookup, "ns", RECORD_TTL, NS_RDATA);
}
