/*
 * dlz_tdnskrs.c — BIND 9 DLZ module (dlopen driver) hosting libtdnskrs inside named.
 *
 * Hosting proof: serves the zone `tdnskrs.` with
 *   tdnskrs.          SOA  tdnskrs. hostmaster.tdnskrs. 1 3600 600 86400 60
 *   tdnskrs.          NS   localhost.
 *   version.tdnskrs.  TXT  "<krs_version()>"
 * where the TXT string comes from the Swift core at load time.
 *
 *   dlz "tdnskrs" { database "dlopen /usr/lib/bind/dlz_tdnskrs.so"; };
 *
 * named creates the new instance before it destroys the old one on `rndc reload` and
 * `rndc reconfig`, so all state lives in the per-instance struct and nothing is global.
 */
#include <stdlib.h>
#include <string.h>

#include <tdnskrs/common.h>

#include "dlz_minimal.h"

#define DLZ_EXPORT __attribute__((visibility("default")))

#define ZONE_NAME  "tdnskrs"
#define RECORD_TTL 60U
#define SOA_RDATA  "tdnskrs. hostmaster.tdnskrs. 1 3600 600 86400 60"
#define NS_RDATA   "localhost."

/* A TXT character-string holds at most 255 bytes; \DDD escaping can quadruple that. */
#define TXT_TEXT_MAX (2 + 4 * 255 + 1)

struct dlz_tdnskrs {
    log_t *log;                 /* named's logger; may be NULL */
    dns_sdlz_putrr_t *putrr;    /* required to answer anything */
    char version_txt[TXT_TEXT_MAX]; /* presentation form: quoted, escaped */
};

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

DLZ_EXPORT int dlz_version(unsigned int *flags)
{
    /* Instance state is read-only after dlz_create and libtdnskrs is thread-safe. */
    if (flags != NULL) {
        *flags |= DNS_SDLZFLAG_THREADSAFE;
    }
    return DLZ_DLOPEN_VERSION;
}

DLZ_EXPORT isc_result_t dlz_create(const char *dlzname, unsigned int argc, char *argv[],
                                   void **dbdata, ...)
{
    (void)argc;
    (void)argv;

    if (dbdata == NULL) {
        return ISC_R_FAILURE;
    }
    *dbdata = NULL;

    struct dlz_tdnskrs *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return ISC_R_NOMEMORY;
    }

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

    const char *version = krs_version();
    const char *why = NULL;
    if (st->putrr == NULL) {
        why = "named passed no putrr helper";
    } else if (version == NULL) {
        why = "krs_version() returned NULL";
    } else if (!txt_quote(version, st->version_txt, sizeof(st->version_txt))) {
        why = "library version does not fit a TXT string";
    }
    if (why != NULL) {
        if (st->log != NULL) {
            st->log(ISC_LOG_ERROR, "tdnskrs DLZ '%s': %s", dlzname != NULL ? dlzname : "?", why);
        }
        free(st);
        return ISC_R_FAILURE;
    }

    if (st->log != NULL) {
        st->log(ISC_LOG_INFO, "tdnskrs DLZ loaded, libtdnskrs %s", version);
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
    if (st->log != NULL) {
        st->log(ISC_LOG_INFO, "tdnskrs DLZ instance unloaded");
    }
    free(st);
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
