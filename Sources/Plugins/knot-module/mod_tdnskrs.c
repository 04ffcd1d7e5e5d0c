/*
 * mod_tdnskrs.c — Knot DNS module hosting libtdnskrs inside knotd: a Key Receiver Service
 * that receives DNSSEC private keys from a KDC over DNS.
 *
 * Host glue only; the library decides and renders everything:
 *   - version.tdnskrs. 60 IN TXT "<krs_version()>" and status.tdnskrs. 0 IN TXT, one record
 *     per string of krs_status_text() (the same text as in named), answered with AA whether
 *     or not knotd serves a zone `tdnskrs.`;
 *   - every NOTIFY goes to krs_notify_decide(): a NOTIFY for the KRS's control zone is
 *     answered with the RCODE and AA the library returns (it has queued the distribution;
 *     its worker thread, never a knotd worker, fetches, installs through its Knot key store
 *     and confirms to the KDC); any other message passes on to knotd untouched.
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
 *
 * krs_init() gets the host defaults "key_store?=knot" and "notify_listen?=none" (krs.h: the
 * operator's values override them): knotd receives the NOTIFYs, and keys belong in Knot's
 * KASP database. A KRS that cannot start is logged, and the module stays loaded answering
 * version/status ("krs=failed: …"), so that knotd never fails to start because of it.
 * knotd loads the new instance before it unloads the old one on `knotc reload`: all state
 * is per instance (libtdnskrs serializes contexts sharing a state_dir); unload() joins the
 * instance's worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knot/module.h>

#include <tdnskrs/common.h>
#include <tdnskrs/krs.h>

#define VERSION_OWNER "version.tdnskrs."
#define STATUS_OWNER  "status.tdnskrs."
#define RECORD_TTL    60U
#define STATUS_TTL    0U /* the status changes at any moment: no caching */
#define TXT_MAX       255
#define MAX_ARGS      64

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

/* `setting:` values go to krs_init verbatim; refuse what cannot be key=value at
 * `knotc conf-check` time rather than at load. */
static int check_setting(knotd_conf_check_args_t *args)
{
    const char *eq = memchr(args->data, '=', args->data_len);
    if (eq == NULL || eq == (const char *)args->data) {
        args->err_str = "setting must be key=value";
        return KNOT_EINVAL;
    }
    return KNOT_EOK;
}

struct tdnskrs_mod {
    knotd_mod_t *mod;
    uint8_t version_owner[KNOT_DNAME_MAXLEN];
    uint8_t status_owner[KNOT_DNAME_MAXLEN];
    krs_context_t *krs; /* NULL: hosting only, or krs_init failed (see failed) */
    int started;        /* krs_start succeeded: NOTIFYs go to the library */
    char failed[TXT_MAX + 1]; /* "krs=failed: …" when the KRS does not run, else "" */
};

/* krs_host_ops_t.log: library lines (from its worker thread too) into knotd's log. */
static void host_log(void *user, int level, const char *message)
{
    static const int syslog_level[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    struct tdnskrs_mod *ctx = user;
    knotd_mod_log(ctx->mod, syslog_level[level >= KRS_LOG_ERROR && level <= KRS_LOG_DEBUG ? level : KRS_LOG_DEBUG],
                  "tdnskrs: %s", message);
}

/* Answers the query with one TXT record per string (AA, NOERROR). */
static knotd_state_t answer_txt(knot_pkt_t *pkt, knotd_qdata_t *qdata, uint32_t ttl,
                                const char *const *strings, size_t count)
{
    /* Owner taken from the response's question (keeps the client's case, compresses to it). */
    knot_rrset_t *rr = knot_rrset_new(knot_pkt_qname(pkt), KNOT_RRTYPE_TXT, KNOT_CLASS_IN, ttl, &pkt->mm);
    if (rr == NULL) {
        goto servfail;
    }
    for (size_t i = 0; i < count; i++) {
        uint8_t rdata[1 + TXT_MAX];
        size_t len = strnlen(strings[i], TXT_MAX);
        rdata[0] = (uint8_t)len;
        memcpy(rdata + 1, strings[i], len);
        if (knot_rrset_add_rdata(rr, rdata, (uint16_t)(len + 1), &pkt->mm) != KNOT_EOK) {
            goto free_rr;
        }
    }
    /* KNOT_PF_FREE: once put, the packet frees rr's owner and rdata; on failure we still own it. */
    if ((pkt->current != KNOT_ANSWER && knot_pkt_begin(pkt, KNOT_ANSWER) != KNOT_EOK) ||
        knot_pkt_put(pkt, KNOT_COMPR_HINT_QNAME, rr, KNOT_PF_FREE) != KNOT_EOK) {
        goto free_rr;
    }
    knot_wire_set_aa(pkt->wire);
    qdata->rcode = KNOT_RCODE_NOERROR;
    return KNOTD_STATE_DONE;
free_rr:
    knot_rrset_free(rr, &pkt->mm);
servfail:
    qdata->rcode = KNOT_RCODE_SERVFAIL;
    return KNOTD_STATE_FAIL;
}

/* status.tdnskrs.: the library's strings, then the module's own line when the KRS does not run. */
static knotd_state_t answer_status(struct tdnskrs_mod *ctx, knot_pkt_t *pkt, knotd_qdata_t *qdata)
{
    char **lines = NULL;
    size_t n = 0;
    if (krs_status_text(ctx->krs, &lines, &n) != KRS_OK) {
        qdata->rcode = KNOT_RCODE_SERVFAIL;
        return KNOTD_STATE_FAIL;
    }
    const char *strings[16];
    size_t count = 0;
    for (size_t i = 0; i < n && count < 15; i++) {
        strings[count++] = lines[i];
    }
    if (ctx->failed[0] != '\0') {
        strings[count++] = ctx->failed;
    } else if (ctx->krs == NULL) {
        strings[count++] = "krs=not configured";
    }
    knotd_state_t state = answer_txt(pkt, qdata, STATUS_TTL, strings, count);
    krs_free(lines);
    return state;
}

/*
 * A NOTIFY: the library says whether it is the KRS's and, if so, the RCODE and AA. knotd has
 * built its response (ID, opcode, question) and adds OPT and TSIG itself; taking only those
 * two keeps the packet knotd holds consistent with its wire.
 */
static knotd_state_t handle_notify(struct tdnskrs_mod *ctx, knotd_state_t state, knot_pkt_t *pkt,
                                   knotd_qdata_t *qdata)
{
    const knot_pkt_t *query = qdata->query;
    uint8_t *msg = malloc(query->size);
    if (msg == NULL) {
        return state;
    }
    memcpy(msg, query->wire, query->size);
    /* knotd lower-cases the query's QNAME in place before the hooks run; the response still
     * holds it as received, so the library sees the message the KDC sent (and signed). */
    if (pkt->qname_size == query->qname_size && pkt->size >= (size_t)KNOT_WIRE_HEADER_SIZE + query->qname_size) {
        memcpy(msg + KNOT_WIRE_HEADER_SIZE, pkt->wire + KNOT_WIRE_HEADER_SIZE, query->qname_size);
    }
    int for_krs = 0, rcode = 0, aa = 0;
    int rc = krs_notify_decide(ctx->krs, msg, query->size, &for_krs, &rcode, &aa);
    free(msg);
    if (rc != KRS_OK || !for_krs) {
        return state;
    }
    if (aa) {
        knot_wire_set_aa(pkt->wire);
    }
    qdata->rcode = (uint16_t)rcode;
    return KNOTD_STATE_DONE;
}

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
    if (qdata->type == KNOTD_QUERY_TYPE_NOTIFY) {
        return ctx->started ? handle_notify(ctx, state, pkt, qdata) : state;
    }
    if (qdata->type != KNOTD_QUERY_TYPE_NORMAL || knot_pkt_qtype(query) != KNOT_RRTYPE_TXT ||
        knot_pkt_qclass(query) != KNOT_CLASS_IN) {
        return state;
    }
    /* The QNAME is already lower case here (knotd folds it before the hooks). */
    if (knot_dname_is_equal(knot_pkt_qname(query), ctx->version_owner)) {
        const char *version = krs_version();
        return answer_txt(pkt, qdata, RECORD_TTL, &version, 1);
    }
    if (knot_dname_is_equal(knot_pkt_qname(query), ctx->status_owner)) {
        return answer_status(ctx, pkt, qdata);
    }
    return state;
}

/* Records why the KRS does not run (for the status record) and logs it. */
static void krs_failed(struct tdnskrs_mod *ctx, const char *what, int rc, const char *reason)
{
    char why[TXT_MAX + 1];
    snprintf(why, sizeof(why), "%s (%s): %s", what, krs_strerror(rc), reason);
    snprintf(ctx->failed, sizeof(ctx->failed), "krs=failed: %.230s", why);
    knotd_mod_log(ctx->mod, LOG_ERR, "tdnskrs: %s; the module stays loaded without a running KRS", why);
}

/* The module section as krs_init arguments: the host defaults, config=, state_dir=, key_dir=,
 * then every `setting:` verbatim. Nothing configured: hosting only, no KRS. */
static void start_krs(struct tdnskrs_mod *ctx)
{
    static const char *const items[][2] = {
        { MOD_CONFIG, "config=" }, { MOD_STATE_DIR, "state_dir=" }, { MOD_KEY_DIR, "key_dir=" },
    };
    const char *argv[MAX_ARGS] = { "key_store?=knot", "notify_listen?=none" };
    char *owned[3] = { NULL, NULL, NULL };
    int argc = 2, nomem = 0;
    for (int i = 0; i < 3; i++) {
        knotd_conf_t item = knotd_conf_mod(ctx->mod, items[i][0]);
        if (item.count > 0) {
            size_t len = strlen(items[i][1]) + strlen(item.single.string) + 1;
            if ((owned[i] = malloc(len)) == NULL) {
                nomem = 1; /* never start a KRS without a setting the operator gave */
                continue;
            }
            snprintf(owned[i], len, "%s%s", items[i][1], item.single.string);
            argv[argc++] = owned[i];
        }
    }
    knotd_conf_t settings = knotd_conf_mod(ctx->mod, MOD_SETTING);
    for (size_t i = 0; i < settings.count && argc < MAX_ARGS; i++) {
        argv[argc++] = settings.multi[i].string;
    }
    int rc = KRS_OK;
    if (nomem) {
        krs_failed(ctx, "module settings refused", KRS_ENOMEM, "out of memory");
    } else if (argc == 2) {
        /* No KRS settings: hosting only. */
    } else if (settings.count > MAX_ARGS - 5) {
        krs_failed(ctx, "module settings refused", KRS_ECONFIG, "too many settings");
    } else if ((rc = krs_init(&ctx->krs, argc, argv)) != KRS_OK) {
        krs_failed(ctx, "krs_init failed", rc, krs_last_error(NULL));
    } else {
        krs_host_ops_t ops = { .version = KRS_HOST_OPS_VERSION, .size = sizeof(ops), .user = ctx, .log = host_log };
        if ((rc = krs_set_host_ops(ctx->krs, &ops)) != KRS_OK) {
            krs_failed(ctx, "krs_set_host_ops failed", rc, krs_last_error(ctx->krs));
        } else if ((rc = krs_start(ctx->krs)) != KRS_OK) {
            krs_failed(ctx, "krs_start failed", rc, krs_last_error(ctx->krs));
        } else {
            ctx->started = 1;
            knotd_mod_log(ctx->mod, LOG_INFO, "tdnskrs: KRS started, NOTIFYs for its control zone are taken on knotd's port");
        }
    }
    knotd_conf_free(&settings);
    for (int i = 0; i < 3; i++) {
        free(owned[i]);
    }
}

static int tdnskrs_load(knotd_mod_t *mod)
{
    struct tdnskrs_mod *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return KNOT_ENOMEM;
    }
    ctx->mod = mod;
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
    knotd_mod_log(mod, LOG_INFO, "tdnskrs module loaded, libtdnskrs %s", krs_version());
    return KNOT_EOK;
}

static void tdnskrs_unload(knotd_mod_t *mod)
{
    struct tdnskrs_mod *ctx = knotd_mod_ctx(mod);
    int had_krs = ctx != NULL && ctx->started;
    if (ctx != NULL) {
        krs_cleanup(ctx->krs); /* joins the worker: no library thread of this instance runs after this */
        free(ctx);
    }
    knotd_mod_ctx_set(mod, NULL);
    knotd_mod_log(mod, LOG_INFO, "%s", had_krs ? "tdnskrs module unloaded (KRS stopped)" : "tdnskrs module unloaded");
}

KNOTD_MOD_API(tdnskrs, KNOTD_MOD_FLAG_SCOPE_ANY | KNOTD_MOD_FLAG_OPT_CONF, tdnskrs_load,
              tdnskrs_unload, tdnskrs_conf, NULL);
