/*
 * mod_tdnskrs.c — Knot DNS module hosting libtdnskrs inside knotd: a Key Receiver Service
 * that receives DNSSEC private keys from a KDC over DNS.
 *
 * It answers, with AA, whether or not knotd serves a zone `tdnskrs.`:
 *   version.tdnskrs. 60 IN TXT "<krs_version()>"
 *   status.tdnskrs.   0 IN TXT  the KRS state, one string per record (see status_strings())
 * and, when a KRS is configured, takes the KDC's NOTIFYs for names at or below its control
 * zone off knotd's own port: the KDC NOTIFYs knotd, the module hands the message to
 * krs_handle_notify(), which answers at once and queues the distribution; the library's
 * worker thread (never a knotd worker) fetches it over TCP, installs the keys through its
 * Knot key store and confirms to the KDC. Every other query passes on untouched.
 *
 * Without a configuration section the module only proves the hosting:
 *
 *   module:
 *     - id: mod-tdnskrs
 *       file: /usr/lib/x86_64-linux-gnu/knot/modules-3.2/mod-tdnskrs.so
 *   template:
 *     - id: default
 *       global-module: mod-tdnskrs
 *
 * With one it runs a KRS (see Examples/knot.conf):
 *
 *   mod-tdnskrs:
 *     - id: default
 *       state-dir: /var/lib/tdnskrs        -> state_dir=
 *       key-dir: /var/lib/tdnskrs/keys     -> key_dir=
 *       config: /etc/tdnskrs/krs.conf      -> config=   (a key=value file krs_init reads)
 *       setting: "require_signature=yes"   -> passed verbatim; multi-valued
 *   template:
 *     - id: default
 *       global-module: mod-tdnskrs/default
 *
 * krs_init() gets the host defaults "key_store?=knot" and "notify_listen?=none" (krs.h: the
 * operator's `setting:` values and `config:` file override them, what enrollment stored in
 * krs.conf does not): knotd receives the NOTIFYs, so the library must not bind a listener of
 * its own, and the keys belong in Knot's KASP database.
 *
 * A KRS that cannot start (bad settings, not enrolled) is logged through knotd's log and
 * the module stays loaded, answering version/status, so that knotd never fails to start
 * because of it. knotd loads the new instance before it unloads the old one on
 * `knotc reload`, so all state is per instance and nothing is global (libtdnskrs serializes
 * contexts sharing a state_dir); unload() stops the instance's KRS worker and joins it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knot/module.h>

#include <tdnskrs/common.h>
#include <tdnskrs/krs.h>

#include "../common/krs_status_text.h"

#define VERSION_OWNER "version.tdnskrs."
#define STATUS_OWNER  "status.tdnskrs."
#define RECORD_TTL    60U
#define STATUS_TTL    0U /* the status changes at any moment: no caching */
#define MAX_SETTINGS  64
#define MAX_STATUS    (KRS_STATUS_LINES + 1)
#define TXT_MAX       KRS_STATUS_TEXT_MAX
#define ERROR_MAX     256

/* Module section items (yp_name_t: length byte, then the name). */
#define MOD_CONFIG    "\x06" "config"
#define MOD_STATE_DIR "\x09" "state-dir"
#define MOD_KEY_DIR   "\x07" "key-dir"
#define MOD_SETTING   "\x07" "setting"

static int check_setting(knotd_conf_check_args_t *args);

static const yp_item_t tdnskrs_conf[] = {
    { MOD_CONFIG, YP_TSTR, YP_VNONE },
    { MOD_STATE_DIR, YP_TSTR, YP_VNONE },
    { MOD_KEY_DIR, YP_TSTR, YP_VNONE },
    { MOD_SETTING, YP_TSTR, YP_VNONE, YP_FMULTI, { check_setting } },
    { NULL }
};

/* Defaults for a KRS hosted by knotd (key?=value); an operator's value for the same key
 * replaces them. */
static const char *const host_defaults[] = {
    "key_store?=knot",    /* keys go into Knot's KASP database (keymgr), not BIND K-files */
    "notify_listen?=none", /* knotd's own port receives the NOTIFYs (this module's hook) */
};

struct tdnskrs_mod {
    knotd_mod_t *mod;
    uint8_t version_owner[KNOT_DNAME_MAXLEN];
    uint8_t status_owner[KNOT_DNAME_MAXLEN];
    char version[TXT_MAX + 1];

    /* --- the KRS (krs == NULL: hosting only, or it failed: see krs_error) --- */
    krs_context_t *krs;
    int started;                              /* krs_start succeeded: NOTIFYs are taken */
    uint8_t control_zone[KNOT_DNAME_MAXLEN];  /* lower case wire form; [0] == 0: unknown */
    char krs_error[ERROR_MAX];                /* why there is no running KRS, for status */
};

/* --- configuration --------------------------------------------------------------------- */

/* `setting:` values go to krs_init verbatim; refuse what cannot be a key=value pair now,
 * at `knotc conf-check` time, rather than at load. */
static int check_setting(knotd_conf_check_args_t *args)
{
    const char *s = (const char *)args->data;
    const char *eq = memchr(s, '=', args->data_len);
    if (args->data_len == 0 || eq == NULL || eq == s) {
        args->err_str = "setting must be key=value";
        return KNOT_EINVAL;
    }
    return KNOT_EOK;
}

/* --- logging ---------------------------------------------------------------------------- */

static int syslog_level(int krs_level)
{
    switch (krs_level) {
    case KRS_LOG_ERROR:
        return LOG_ERR;
    case KRS_LOG_WARNING:
        return LOG_WARNING;
    case KRS_LOG_INFO:
        return LOG_INFO;
    default:
        return LOG_DEBUG;
    }
}

/* krs_host_ops_t.log: library lines (from its worker thread too) into knotd's log. The
 * library stops calling before krs_cleanup returns, so `mod` is valid here. */
static void host_log(void *user, int level, const char *message)
{
    struct tdnskrs_mod *ctx = user;
    knotd_mod_log(ctx->mod, syslog_level(level), "tdnskrs: %s", message != NULL ? message : "");
}

/* --- TXT answers ------------------------------------------------------------------------- */

/*
 * The status strings: those of krs_status_lines() (the same text as the BIND DLZ module's,
 * so that operators read one format in both servers; in knotd listening=no — knotd's port
 * receives the NOTIFYs — and running= is the library's worker). Without KRS settings:
 * "version=…" and "krs=not configured"; when the KRS could not be set up or started:
 * "krs=failed: <reason>" after what is known. Returns the number of strings in out.
 */
static int status_strings(const struct tdnskrs_mod *ctx, char out[MAX_STATUS][TXT_MAX + 1])
{
    int n = krs_status_lines(ctx->krs, out);
    if (ctx->krs == NULL) {
        snprintf(out[n++], TXT_MAX + 1, "krs=%s%.230s", ctx->krs_error[0] ? "failed: " : "not configured",
                 ctx->krs_error);
    } else if (!ctx->started && ctx->krs_error[0]) {
        snprintf(out[n++], TXT_MAX + 1, "krs=failed: %.230s", ctx->krs_error); /* clipped to a TXT string */
    }
    return n;
}

/* Answers the query with one TXT record per string (AA, NOERROR). */
static knotd_state_t answer_txt(knot_pkt_t *pkt, knotd_qdata_t *qdata, uint32_t ttl,
                                char strings[][TXT_MAX + 1], int count)
{
    /* Owner taken from the response's question (keeps the client's case, compresses to it). */
    knot_rrset_t *rr = knot_rrset_new(knot_pkt_qname(pkt), KNOT_RRTYPE_TXT, KNOT_CLASS_IN, ttl, &pkt->mm);
    if (rr == NULL) {
        goto servfail;
    }
    for (int i = 0; i < count; i++) {
        uint8_t rdata[1 + TXT_MAX];
        size_t len = strlen(strings[i]); /* <= TXT_MAX by construction */
        rdata[0] = (uint8_t)len;
        memcpy(rdata + 1, strings[i], len);
        if (knot_rrset_add_rdata(rr, rdata, (uint16_t)(len + 1), &pkt->mm) != KNOT_EOK) {
            knot_rrset_free(rr, &pkt->mm);
            goto servfail;
        }
    }
    if (pkt->current != KNOT_ANSWER && knot_pkt_begin(pkt, KNOT_ANSWER) != KNOT_EOK) {
        knot_rrset_free(rr, &pkt->mm);
        goto servfail;
    }
    /* KNOT_PF_FREE: once put, the packet frees rr's owner and rdata; on failure we still own it.
     * The struct itself lives in the per-query pool (&pkt->mm). */
    if (knot_pkt_put(pkt, KNOT_COMPR_HINT_QNAME, rr, KNOT_PF_FREE) != KNOT_EOK) {
        knot_rrset_free(rr, &pkt->mm);
        goto servfail;
    }
    knot_wire_set_aa(pkt->wire);
    qdata->rcode = KNOT_RCODE_NOERROR;
    return KNOTD_STATE_DONE;

servfail:
    qdata->rcode = KNOT_RCODE_SERVFAIL;
    return KNOTD_STATE_FAIL;
}

/* --- NOTIFY ----------------------------------------------------------------------------- */

/*
 * Hands a NOTIFY for the control zone to the library and answers with its decision.
 * knotd has already built its response (ID, opcode, question in the client's case) and
 * will add OPT and TSIG itself when the query asked for them; the library's answer
 * contributes what only it knows: the RCODE (NOERROR, or FORMERR/REFUSED) and AA. Taking
 * those two rather than pasting the library's bytes over knotd's keeps the packet knotd
 * holds consistent with its wire, so EDNS, TSIG and END-stage modules work as for any
 * other answer.
 */
static knotd_state_t handle_notify(struct tdnskrs_mod *ctx, knot_pkt_t *pkt, knotd_qdata_t *qdata)
{
    const knot_pkt_t *query = qdata->query;
    uint8_t *msg = malloc(query->size);
    if (msg == NULL) {
        goto servfail;
    }
    memcpy(msg, query->wire, query->size);
    /* knotd lower-cases the query's QNAME in place before the hooks run; the response still
     * holds it as received, so the library sees the message the KDC sent. */
    if (pkt->qname_size == query->qname_size && pkt->size >= (size_t)KNOT_WIRE_HEADER_SIZE + query->qname_size) {
        memcpy(msg + KNOT_WIRE_HEADER_SIZE, pkt->wire + KNOT_WIRE_HEADER_SIZE, query->qname_size);
    }
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = krs_handle_notify(ctx->krs, msg, query->size, &resp, &resp_len);
    free(msg);
    if (rc != KRS_OK || resp == NULL || resp_len < KNOT_WIRE_HEADER_SIZE) {
        knotd_mod_log(ctx->mod, LOG_WARNING, "tdnskrs: NOTIFY not handled (%d): %s", rc,
                      rc != KRS_OK ? krs_last_error(ctx->krs) : "short answer");
        krs_free(resp);
        goto servfail;
    }
    uint8_t rcode = knot_wire_get_rcode(resp);
    int aa = knot_wire_get_aa(resp) != 0;
    krs_free(resp);

    if (aa) {
        knot_wire_set_aa(pkt->wire);
    }
    qdata->rcode = rcode;
    return KNOTD_STATE_DONE;

servfail:
    qdata->rcode = KNOT_RCODE_SERVFAIL;
    return KNOTD_STATE_FAIL;
}

/* --- the hook ---------------------------------------------------------------------------- */

static knotd_state_t tdnskrs_begin(knotd_state_t state, knot_pkt_t *pkt, knotd_qdata_t *qdata,
                                   knotd_mod_t *mod)
{
    /* An earlier hook has already settled this query: leave it alone. */
    if (state == KNOTD_STATE_NOOP || state == KNOTD_STATE_DONE || state == KNOTD_STATE_FAIL ||
        state == KNOTD_STATE_FINAL) {
        return state;
    }
    struct tdnskrs_mod *ctx = knotd_mod_ctx(mod);
    const knot_pkt_t *query = qdata->query;
    if (ctx == NULL || knot_pkt_qname(query) == NULL) {
        return state;
    }

    /* The QNAME is already lower case here (knotd folds it before the hooks). */
    if (qdata->type == KNOTD_QUERY_TYPE_NOTIFY) {
        if (ctx->started && ctx->control_zone[0] != 0 &&
            knot_dname_in_bailiwick(knot_pkt_qname(query), ctx->control_zone) >= 0) {
            return handle_notify(ctx, pkt, qdata);
        }
        return state;
    }

    if (qdata->type != KNOTD_QUERY_TYPE_NORMAL || knot_pkt_qtype(query) != KNOT_RRTYPE_TXT ||
        knot_pkt_qclass(query) != KNOT_CLASS_IN) {
        return state;
    }
    char strings[MAX_STATUS][TXT_MAX + 1];
    if (knot_dname_is_equal(knot_pkt_qname(query), ctx->version_owner)) {
        snprintf(strings[0], sizeof(strings[0]), "%s", ctx->version);
        return answer_txt(pkt, qdata, RECORD_TTL, strings, 1);
    }
    if (knot_dname_is_equal(knot_pkt_qname(query), ctx->status_owner)) {
        int n = status_strings(ctx, strings);
        return answer_txt(pkt, qdata, STATUS_TTL, strings, n);
    }
    return state;
}

/* --- instance lifetime ------------------------------------------------------------------- */

/* Records why the KRS does not run (for the status record) and logs it. */
static void krs_failed(struct tdnskrs_mod *ctx, const char *what, int rc, const char *reason)
{
    snprintf(ctx->krs_error, sizeof(ctx->krs_error), "%s (%s): %s", what, krs_strerror(rc),
             reason != NULL ? reason : "");
    knotd_mod_log(ctx->mod, LOG_ERR, "tdnskrs: %s; the module stays loaded without a running KRS",
                  ctx->krs_error);
}

/* The control zone from the library's status, as a lower-case wire name. */
static void load_control_zone(struct tdnskrs_mod *ctx)
{
    char zone[KNOT_DNAME_TXT_MAXLEN + 1];
    ctx->control_zone[0] = 0;
    if (!krs_status_member(ctx->krs, "control_zone", zone, sizeof(zone)) ||
        knot_dname_from_str(ctx->control_zone, zone, sizeof(ctx->control_zone)) == NULL) {
        ctx->control_zone[0] = 0;
        return;
    }
    knot_dname_to_lower(ctx->control_zone);
}

/*
 * Builds krs_init's argv from the module section: the host defaults, then config=,
 * state_dir=, key_dir=, then every `setting:` in order. The strings
 * live in *storage (free with free()). Returns argc, 0 when the section sets nothing
 * (hosting only), or -1 (logged).
 */
static int build_argv(struct tdnskrs_mod *ctx, const char **argv, char **storage)
{
    knotd_mod_t *mod = ctx->mod;
    knotd_conf_t config = knotd_conf_mod(mod, MOD_CONFIG);
    knotd_conf_t state_dir = knotd_conf_mod(mod, MOD_STATE_DIR);
    knotd_conf_t key_dir = knotd_conf_mod(mod, MOD_KEY_DIR);
    knotd_conf_t settings = knotd_conf_mod(mod, MOD_SETTING);
    *storage = NULL;

    int argc = 0;
    if (config.count == 0 && state_dir.count == 0 && key_dir.count == 0 && settings.count == 0) {
        knotd_conf_free(&settings);
        return 0;
    }
    if (settings.count > MAX_SETTINGS - 8) {
        knotd_mod_log(mod, LOG_ERR, "tdnskrs: more than %d settings", MAX_SETTINGS - 8);
        knotd_conf_free(&settings);
        return -1;
    }

    /* One buffer for every string: "config=", "state_dir=", "key_dir=" + values, and copies
     * of the `setting:` values (knotd's configuration is only read here, in load()). */
    const char *cfg = config.count > 0 ? config.single.string : NULL;
    const char *sd = state_dir.count > 0 ? state_dir.single.string : NULL;
    const char *kd = key_dir.count > 0 ? key_dir.single.string : NULL;
    size_t need = 3 * 16 + (cfg ? strlen(cfg) : 0) + (sd ? strlen(sd) : 0) + (kd ? strlen(kd) : 0);
    for (size_t i = 0; i < settings.count; i++) {
        need += strlen(settings.multi[i].string) + 1;
    }
    char *buf = malloc(need);
    if (buf == NULL) {
        knotd_conf_free(&settings);
        return -1;
    }
    *storage = buf;

    /* The host defaults (key?=value: krs_init puts the operator's argv and config file above
     * them), then the operator's values. */
    for (size_t i = 0; i < sizeof(host_defaults) / sizeof(host_defaults[0]); i++) {
        argv[argc++] = host_defaults[i];
    }
    char *p = buf;
    if (cfg != NULL) {
        argv[argc++] = p;
        p += sprintf(p, "config=%s", cfg) + 1;
    }
    if (sd != NULL) {
        argv[argc++] = p;
        p += sprintf(p, "state_dir=%s", sd) + 1;
    }
    if (kd != NULL) {
        argv[argc++] = p;
        p += sprintf(p, "key_dir=%s", kd) + 1;
    }
    for (size_t i = 0; i < settings.count; i++) {
        argv[argc++] = p;
        p += sprintf(p, "%s", settings.multi[i].string) + 1;
    }
    knotd_conf_free(&settings);
    return argc;
}

static void start_krs(struct tdnskrs_mod *ctx)
{
    const char *argv[MAX_SETTINGS];
    char *storage = NULL;
    int argc = build_argv(ctx, argv, &storage);
    if (argc <= 0) {
        if (argc < 0) {
            snprintf(ctx->krs_error, sizeof(ctx->krs_error), "module settings refused");
        }
        free(storage);
        return;
    }

    int rc = krs_init(&ctx->krs, argc, argv);
    free(storage);
    if (rc != KRS_OK) {
        ctx->krs = NULL;
        krs_failed(ctx, "krs_init failed", rc, krs_last_error(NULL));
        return;
    }
    krs_host_ops_t ops;
    memset(&ops, 0, sizeof(ops));
    ops.version = KRS_HOST_OPS_VERSION;
    ops.size = sizeof(ops);
    ops.user = ctx;
    ops.log = host_log;
    if ((rc = krs_set_host_ops(ctx->krs, &ops)) != KRS_OK) {
        krs_failed(ctx, "krs_set_host_ops failed", rc, krs_last_error(ctx->krs));
        krs_cleanup(ctx->krs);
        ctx->krs = NULL;
        return;
    }
    load_control_zone(ctx);
    if (ctx->control_zone[0] == 0) {
        /* Keep the context for status (enrolled=no shows why), but take no NOTIFYs. */
        krs_failed(ctx, "no control zone (not enrolled?)", KRS_ECONFIG, "");
        return;
    }
    if ((rc = krs_start(ctx->krs)) != KRS_OK) {
        krs_failed(ctx, "krs_start failed", rc, krs_last_error(ctx->krs));
        return;
    }
    ctx->started = 1;
    char zone[KNOT_DNAME_TXT_MAXLEN + 1];
    knotd_mod_log(ctx->mod, LOG_INFO, "tdnskrs: KRS started, NOTIFYs for %s are taken on knotd's port",
                  knot_dname_to_str(zone, ctx->control_zone, sizeof(zone)) != NULL ? zone : "?");
}

static int tdnskrs_load(knotd_mod_t *mod)
{
    const char *version = krs_version();
    if (version == NULL) {
        knotd_mod_log(mod, LOG_ERR, "krs_version() returned NULL");
        return KNOT_ERROR;
    }
    if (strlen(version) > TXT_MAX) {
        knotd_mod_log(mod, LOG_ERR, "library version does not fit a TXT string");
        return KNOT_ERANGE;
    }

    struct tdnskrs_mod *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return KNOT_ENOMEM;
    }
    ctx->mod = mod;
    snprintf(ctx->version, sizeof(ctx->version), "%s", version);
    if (knot_dname_from_str(ctx->version_owner, VERSION_OWNER, sizeof(ctx->version_owner)) == NULL ||
        knot_dname_from_str(ctx->status_owner, STATUS_OWNER, sizeof(ctx->status_owner)) == NULL) {
        free(ctx);
        return KNOT_EINVAL;
    }

    start_krs(ctx);

    /* The context is set before the hook so that a query never sees the hook without it. */
    knotd_mod_ctx_set(mod, ctx);
    int ret = knotd_mod_hook(mod, KNOTD_STAGE_BEGIN, tdnskrs_begin);
    if (ret != KNOT_EOK) {
        knotd_mod_ctx_set(mod, NULL);
        krs_cleanup(ctx->krs);
        free(ctx);
        return ret;
    }
    knotd_mod_log(mod, LOG_INFO, "tdnskrs module loaded, libtdnskrs %s", version);
    return KNOT_EOK;
}

static void tdnskrs_unload(knotd_mod_t *mod)
{
    struct tdnskrs_mod *ctx = knotd_mod_ctx(mod);
    int had_krs = ctx != NULL && ctx->started;
    if (ctx != NULL) {
        /* Joins the worker: no library thread of this instance runs after this. */
        krs_cleanup(ctx->krs);
        free(ctx);
    }
    knotd_mod_ctx_set(mod, NULL);
    knotd_mod_log(mod, LOG_INFO, "%s", had_krs ? "tdnskrs module unloaded (KRS stopped)" : "tdnskrs module unloaded");
}

KNOTD_MOD_API(tdnskrs, KNOTD_MOD_FLAG_SCOPE_ANY | KNOTD_MOD_FLAG_OPT_CONF, tdnskrs_load,
              tdnskrs_unload, tdnskrs_conf, NULL);
