/*
 * mod_tdnskrs.c — Knot DNS module hosting libtdnskrs inside knotd.
 *
 * Hosting proof: a BEGIN hook answers
 *   version.tdnskrs. 60 IN TXT "<krs_version()>"
 * with AA set, whether or not knotd serves a zone `tdnskrs.`; every other query is passed
 * on untouched. The module has no configuration of its own:
 *
 *   module:
 *     - id: mod-tdnskrs
 *       file: /usr/lib/x86_64-linux-gnu/knot/modules-3.2/mod-tdnskrs.so
 *   template:
 *     - id: default
 *       global-module: mod-tdnskrs
 *
 * knotd loads the new instance before it unloads the old one on `knotc reload`, so the
 * answer is built per instance in load() and freed in unload(); nothing is global.
 */
#include <stdlib.h>
#include <string.h>

#include <knot/module.h>

#include <tdnskrs/common.h>

#define VERSION_OWNER "version.tdnskrs."
#define RECORD_TTL    60U

struct tdnskrs_mod {
    uint8_t owner[KNOT_DNAME_MAXLEN]; /* wire form of VERSION_OWNER */
    uint8_t rdata[1 + 255];           /* one TXT character-string: length byte + text */
    uint16_t rdata_len;
};

static knotd_state_t tdnskrs_begin(knotd_state_t state, knot_pkt_t *pkt, knotd_qdata_t *qdata,
                                   knotd_mod_t *mod)
{
    /* An earlier hook has already settled this query: leave it alone. */
    if (state == KNOTD_STATE_NOOP || state == KNOTD_STATE_DONE || state == KNOTD_STATE_FAIL ||
        state == KNOTD_STATE_FINAL) {
        return state;
    }
    const struct tdnskrs_mod *ctx = knotd_mod_ctx(mod);
    const knot_pkt_t *query = qdata->query;
    if (ctx == NULL || qdata->type != KNOTD_QUERY_TYPE_NORMAL ||
        knot_pkt_qtype(query) != KNOT_RRTYPE_TXT || knot_pkt_qclass(query) != KNOT_CLASS_IN ||
        !knot_dname_is_case_equal(knot_pkt_qname(query), ctx->owner)) {
        return state;
    }

    /* Owner taken from the response's question (keeps the client's case, compresses to it). */
    knot_rrset_t *rr = knot_rrset_new(knot_pkt_qname(pkt), KNOT_RRTYPE_TXT, KNOT_CLASS_IN,
                                      RECORD_TTL, &pkt->mm);
    if (rr == NULL) {
        goto servfail;
    }
    if (knot_rrset_add_rdata(rr, ctx->rdata, ctx->rdata_len, &pkt->mm) != KNOT_EOK) {
        knot_rrset_free(rr, &pkt->mm);
        goto servfail;
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

static int tdnskrs_load(knotd_mod_t *mod)
{
    const char *version = krs_version();
    if (version == NULL) {
        knotd_mod_log(mod, LOG_ERR, "krs_version() returned NULL");
        return KNOT_ERROR;
    }
    size_t n = strlen(version);
    if (n > 255) {
        knotd_mod_log(mod, LOG_ERR, "library version does not fit a TXT string");
        return KNOT_ERANGE;
    }

    struct tdnskrs_mod *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return KNOT_ENOMEM;
    }
    if (knot_dname_from_str(ctx->owner, VERSION_OWNER, sizeof(ctx->owner)) == NULL) {
        free(ctx);
        return KNOT_EINVAL;
    }
    ctx->rdata[0] = (uint8_t)n;
    memcpy(ctx->rdata + 1, version, n);
    ctx->rdata_len = (uint16_t)(n + 1);

    int ret = knotd_mod_hook(mod, KNOTD_STAGE_BEGIN, tdnskrs_begin);
    if (ret != KNOT_EOK) {
        free(ctx);
        return ret;
    }
    knotd_mod_ctx_set(mod, ctx);
    knotd_mod_log(mod, LOG_INFO, "tdnskrs module loaded, libtdnskrs %s", version);
    return KNOT_EOK;
}

static void tdnskrs_unload(knotd_mod_t *mod)
{
    free(knotd_mod_ctx(mod));
    knotd_mod_ctx_set(mod, NULL);
    knotd_mod_log(mod, LOG_INFO, "tdnskrs module unloaded");
}

KNOTD_MOD_API(tdnskrs, KNOTD_MOD_FLAG_SCOPE_ANY | KNOTD_MOD_FLAG_OPT_CONF, tdnskrs_load,
              tdnskrs_unload, NULL, NULL);
