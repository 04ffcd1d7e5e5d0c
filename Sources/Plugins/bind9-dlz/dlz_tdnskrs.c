/*
 * dlz_tdnskrs.c — BIND 9 DLZ module (dlopen driver) hosting libtdnskrs inside named.
 *
 * Host glue only: the database words → krs_init(), named's logger → krs_set_host_ops(), and
 * the zone `tdnskrs.`:
 *   tdnskrs.          SOA  tdnskrs. hostmaster.tdnskrs. 1 3600 600 86400 60
 *   tdnskrs.          NS   localhost.
 *   version.tdnskrs.  TXT  "<krs_version()>"
 *   status.tdnskrs.   TXT  one record per string of krs_status_text() (the same text as in
 *                          knotd), then "krs=not configured" when no KRS runs
 *
 * Without KRS settings it only hosts the library (the hosting proof):
 *   dlz "tdnskrs" { database "dlopen /usr/lib/bind/dlz_tdnskrs.so"; };
 *
 * With them it runs a Key Receiver Service inside named:
 *   dlz "tdnskrs" { database "dlopen /usr/lib/bind/dlz_tdnskrs.so state_dir=/var/lib/tdnskrs
 *                             rndc_conf=/etc/bind/rndc.conf"; };
 *
 * Every word after the module path is a `key=value` setting of krs_init() (krs.h); after
 * `tdns-krs enroll` state_dir= alone is enough (state_dir/krs.conf). The module adds the host
 * defaults `key_store?=bind rndc?=/usr/sbin/rndc` (the words and a config= file override
 * them), so that the library's BIND key store writes the K-files and runs `rndc loadkeys ZONE`
 * before it confirms to the KDC (`rndc=none`: files only). The library receives the NOTIFYs
 * on its own listener (notify_listen=) and logs every key change into named's log. The zone
 * must be configured with `auto-dnssec maintain; inline-signing yes; key-directory "<key_dir>";`
 * so that the timing metadata of the KDC's key files decides when keys are used.
 *
 * named creates the new instance before it destroys the old one on `rndc reload` and
 * `rndc reconfig`: all state is per instance (libtdnskrs serializes contexts sharing a
 * state_dir; its listener uses SO_REUSEPORT).
 */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tdnskrs/common.h>
#include <tdnskrs/krs.h>

#include "dlz_minimal.h"

#define DLZ_EXPORT __attribute__((visibility("default")))

#define RECORD_TTL     60U
#define STATUS_TTL     0U /* the status changes at any moment: no caching */
#define MAX_ARGS       64
#define ISC_LOG_DEBUG1 1 /* ISC_LOG_DEBUG(1) */
/* A TXT character-string holds at most 255 bytes; \DDD escaping can quadruple that. */
#define TXT_TEXT_MAX   (2 + 4 * 255 + 1)

struct dlz_tdnskrs {
    log_t *log;              /* named's logger; may be NULL */
    dns_sdlz_putrr_t *putrr; /* required to answer anything */
    krs_context_t *krs;      /* NULL: hosting only */
};

/* ASCII case-insensitive equality, as DNS names compare (strcasecmp follows the locale). */
static int name_is(const char *name, const char *lower)
{
    for (; *lower != '\0'; name++, lower++) {
        if ((*name >= 'A' && *name <= 'Z' ? *name - 'A' + 'a' : *name) != *lower) {
            return 0;
        }
    }
    return *name == '\0';
}

static int is_our_zone(const char *name)
{
    return name != NULL && (name_is(name, "tdnskrs") || name_is(name, "tdnskrs."));
}

/* krs_host_ops_t.log: library lines into named's log. */
static void host_log(void *user, int level, const char *message)
{
    static const int isc_level[] = { ISC_LOG_ERROR, ISC_LOG_WARNING, ISC_LOG_INFO, ISC_LOG_DEBUG1 };
    struct dlz_tdnskrs *st = user;
    if (st->log != NULL) {
        st->log(isc_level[level >= KRS_LOG_ERROR && level <= KRS_LOG_DEBUG ? level : KRS_LOG_DEBUG], "tdnskrs: %s", message);
    }
}

/* One TXT record holding `s` (at most 255 bytes) as a quoted master-file character-string,
 * so that any byte reaches the wire unchanged through putrr's text parser. */
static isc_result_t put_txt(struct dlz_tdnskrs *st, dns_sdlzlookup_t *lookup, uint32_t ttl, const char *s)
{
    char out[TXT_TEXT_MAX];
    size_t o = 0, n = strnlen(s, 255);
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\%03u", c);
        } else {
            if (c == '"' || c == '\\') {
                out[o++] = '\\';
            }
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return st->putrr(lookup, "txt", ttl, out);
}

static isc_result_t status_records(struct dlz_tdnskrs *st, dns_sdlzlookup_t *lookup)
{
    char **lines = NULL;
    size_t n = 0;
    if (krs_status_text(st->krs, &lines, &n) != KRS_OK) {
        return ISC_R_FAILURE;
    }
    isc_result_t r = ISC_R_SUCCESS;
    for (size_t i = 0; i < n && r == ISC_R_SUCCESS; i++) {
        r = put_txt(st, lookup, STATUS_TTL, lines[i]);
    }
    krs_free(lines);
    if (r == ISC_R_SUCCESS && st->krs == NULL) {
        r = put_txt(st, lookup, STATUS_TTL, "krs=not configured");
    }
    return r;
}

static void instance_free(struct dlz_tdnskrs *st)
{
    krs_cleanup(st->krs); /* stops and joins the KRS: no callback runs after this */
    free(st);
}

DLZ_EXPORT int dlz_version(unsigned int *flags)
{
    /* Instance state is read-only after dlz_create; libtdnskrs is thread-safe. */
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
    /* Helpers arrive as (name, function pointer) pairs terminated by a NULL name. Each is
     * read as a generic function pointer, then converted (well-defined in ISO C). */
    va_list ap;
    va_start(ap, dbdata);
    for (const char *helper = va_arg(ap, const char *); helper != NULL; helper = va_arg(ap, const char *)) {
        void (*fn)(void) = va_arg(ap, void (*)(void));
        if (strcmp(helper, "log") == 0) {
            st->log = (log_t *)fn;
        } else if (strcmp(helper, "putrr") == 0) {
            st->putrr = (dns_sdlz_putrr_t *)fn;
        }
    }
    va_end(ap);

    /* The words after the module path, after the host defaults. */
    const char *name = dlzname != NULL ? dlzname : "?";
    const char *krs_argv[MAX_ARGS] = { "key_store?=bind", "rndc?=/usr/sbin/rndc" };
    int krs_argc = 2;
    const char *why = st->putrr == NULL ? "named passed no putrr helper" : NULL;
    for (unsigned int i = 1; i < argc && why == NULL; i++) {
        if (argv[i] == NULL || argv[i][0] == '=' || strchr(argv[i], '=') == NULL) {
            why = "every word after the module path must be key=value";
        } else if (krs_argc == MAX_ARGS) {
            why = "too many settings";
        } else {
            krs_argv[krs_argc++] = argv[i];
        }
    }
    if (why != NULL) {
        if (st->log != NULL) {
            st->log(ISC_LOG_ERROR, "tdnskrs DLZ '%s': %s", name, why);
        }
        instance_free(st);
        return ISC_R_FAILURE;
    }
    if (st->log != NULL) {
        st->log(ISC_LOG_INFO, "tdnskrs DLZ loaded, libtdnskrs %s", krs_version());
    }
    if (argc > 1) {
        krs_host_ops_t ops = { .version = KRS_HOST_OPS_VERSION, .size = sizeof(ops), .user = st, .log = host_log };
        const char *step = "krs_init";
        int rc = krs_init(&st->krs, krs_argc, krs_argv);
        if (rc == KRS_OK && (rc = krs_set_host_ops(st->krs, &ops)) != KRS_OK) {
            step = "krs_set_host_ops";
        } else if (rc == KRS_OK && (rc = krs_start(st->krs)) != KRS_OK) {
            step = "krs_start";
        }
        if (rc != KRS_OK) {
            if (st->log != NULL) {
                st->log(ISC_LOG_ERROR, "tdnskrs DLZ '%s': %s failed (%d): %s", name, step, rc,
                        krs_last_error(st->krs));
            }
            instance_free(st);
            return ISC_R_FAILURE;
        }
        if (st->log != NULL) {
            st->log(ISC_LOG_INFO, "tdnskrs DLZ '%s': KRS started", name);
        }
    }
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

DLZ_EXPORT isc_result_t dlz_findzonedb(void *dbdata, const char *name, dns_clientinfomethods_t *methods,
                                       dns_clientinfo_t *clientinfo)
{
    (void)dbdata;
    (void)methods;
    (void)clientinfo;
    return is_our_zone(name) ? ISC_R_SUCCESS : ISC_R_NOTFOUND;
}

DLZ_EXPORT isc_result_t dlz_lookup(const char *zone, const char *name, void *dbdata, dns_sdlzlookup_t *lookup,
                                   dns_clientinfomethods_t *methods, dns_clientinfo_t *clientinfo)
{
    struct dlz_tdnskrs *st = dbdata;
    (void)methods;
    (void)clientinfo;
    if (st == NULL || !is_our_zone(zone) || name == NULL) {
        return ISC_R_NOTFOUND;
    }
    /* The apex records come from dlz_authority(); named asks it right after this call. */
    if (name_is(name, "version")) {
        return put_txt(st, lookup, RECORD_TTL, krs_version());
    }
    if (name_is(name, "status")) {
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
    isc_result_t r = st->putrr(lookup, "soa", RECORD_TTL, "tdnskrs. hostmaster.tdnskrs. 1 3600 600 86400 60");
    return r != ISC_R_SUCCESS ? r : st->putrr(lookup, "ns", RECORD_TTL, "localhost.");
}
