/*
 * dlz_minimal.h — the part of BIND 9's DLZ "dlopen" driver ABI that dlz_tdnskrs.c uses,
 * declared here so the module needs no BIND headers or libraries at build time.
 *
 * Interface version 3 (BIND 9.18): named accepts a module whose dlz_version() returns a
 * value in [DLZ_DLOPEN_VERSION - DLZ_DLOPEN_AGE, DLZ_DLOPEN_VERSION].
 *
 * Every constant and prototype below was checked against bind9-dev 9.18.49
 * (dns/dlz_dlopen.h, dns/sdlz.h, isc/result.h, isc/log.h). Those headers are not usable
 * directly: they pull in the whole ISC type system and a config macro.
 */
#ifndef TDNSKRS_DLZ_MINIMAL_H
#define TDNSKRS_DLZ_MINIMAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* --- interface version ------------------------------------------------------------------ */

#define DLZ_DLOPEN_VERSION 3
#define DLZ_DLOPEN_AGE     0

/* --- result codes (positions in BIND's isc_result enum) ------------------------------------ */

typedef unsigned int isc_result_t;

#define ISC_R_SUCCESS        0
#define ISC_R_NOMEMORY       1
#define ISC_R_NOPERM         6
#define ISC_R_NOSPACE        19
#define ISC_R_NOTFOUND       23
#define ISC_R_FAILURE        25
#define ISC_R_NOTIMPLEMENTED 27
#define ISC_R_NOMORE         29

/* --- flags returned by dlz_version() ------------------------------------------------------ */

#define DNS_SDLZFLAG_THREADSAFE    0x00000001U /* named may call the module from several threads */
#define DNS_SDLZFLAG_RELATIVEOWNER 0x00000002U
#define DNS_SDLZFLAG_RELATIVERDATA 0x00000004U

/* --- log levels for the "log" helper ------------------------------------------------------ */

#define ISC_LOG_INFO    (-1)
#define ISC_LOG_NOTICE  (-2)
#define ISC_LOG_WARNING (-3)
#define ISC_LOG_ERROR   (-4)

/* --- opaque handles named passes through ---------------------------------------------------- */

typedef uint32_t dns_ttl_t;
typedef void *dns_sdlzlookup_t;
typedef void *dns_sdlzallnodes_t;
typedef void *dns_view_t;
typedef void *dns_dlzdb_t;
typedef void *dns_clientinfomethods_t;
typedef void *dns_clientinfo_t;

/*
 * Helpers named hands to dlz_create() after `dbdata`, as a NULL-terminated list of
 * (const char *name, function pointer) pairs. Names used by named 9.18:
 *   "log"            log_t
 *   "putrr"          dns_sdlz_putrr_t         add one record to the current lookup
 *   "putnamedrr"     dns_sdlz_putnamedrr_t    add one named record during allnodes
 *   "writeable_zone" dns_dlz_writeablezone_t  declare a zone open to dynamic UPDATE
 */
typedef void log_t(int level, const char *fmt, ...);
typedef isc_result_t dns_sdlz_putrr_t(dns_sdlzlookup_t *lookup, const char *type, dns_ttl_t ttl,
                                      const char *data);
typedef isc_result_t dns_sdlz_putnamedrr_t(dns_sdlzallnodes_t *allnodes, const char *name,
                                           const char *type, dns_ttl_t ttl, const char *data);
typedef isc_result_t dns_dlz_writeablezone_t(dns_view_t *view, dns_dlzdb_t *dlzdb,
                                             const char *zone_name);

/* --- entry points named looks up with dlsym() ---------------------------------------------- */

/* Required. Returns DLZ_DLOPEN_VERSION; may set DNS_SDLZFLAG_* bits in *flags. */
int dlz_version(unsigned int *flags);

/* Required. argv[0] is the module path, argv[1..] the rest of the `database` string. */
isc_result_t dlz_create(const char *dlzname, unsigned int argc, char *argv[], void **dbdata, ...);

/* Optional. Called when the instance is dropped (reload, reconfig, shutdown). */
void dlz_destroy(void *dbdata);

/* Required. ISC_R_SUCCESS if the module is authoritative for `name`. */
isc_result_t dlz_findzonedb(void *dbdata, const char *name, dns_clientinfomethods_t *methods,
                            dns_clientinfo_t *clientinfo);

/* Required. `name` is relative to `zone`: "@" for the apex, "*" for the wildcard probe. */
isc_result_t dlz_lookup(const char *zone, const char *name, void *dbdata, dns_sdlzlookup_t *lookup,
                        dns_clientinfomethods_t *methods, dns_clientinfo_t *clientinfo);

/* Optional. Supplies SOA and NS of the apex when dlz_lookup() does not. */
isc_result_t dlz_authority(const char *zone, void *dbdata, dns_sdlzlookup_t *lookup);

/* Optional, for zone transfers. */
isc_result_t dlz_allowzonexfr(void *dbdata, const char *name, const char *client);
isc_result_t dlz_allnodes(const char *zone, void *dbdata, dns_sdlzallnodes_t *allnodes);

#endif /* TDNSKRS_DLZ_MINIMAL_H */
