/*
 * tdnskrs/krs.h — the Key Receiver Service: from the CHUNK records of a distribution to
 * installed DNSSEC key files.
 *
 * A context holds one node's settings and keys. Every function is thread-safe; distributions
 * processed through contexts that share a state_dir are serialized by a lock file, so a host
 * may create a new context before destroying the old one (BIND and Knot reload that way).
 */
#ifndef TDNSKRS_KRS_H
#define TDNSKRS_KRS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct krs_context krs_context_t;

/* Log levels passed to krs_host_ops_t.log. */
#define KRS_LOG_ERROR   0
#define KRS_LOG_WARNING 1
#define KRS_LOG_INFO    2
#define KRS_LOG_DEBUG   3

/* The host-operations ABI version this header describes. */
#define KRS_HOST_OPS_VERSION 1

/*
 * Callbacks a host gives the library, so that logs go into the host's own logging, "now"
 * comes from the host's clock, and the host learns when keys changed (to reload). Every
 * member may be NULL. Callbacks may be called from any thread, but never concurrently for
 * one context; they must not call back into the library for the same context.
 */
/* krs_host_ops_t.key_changed: what happened to the key. */
#define KRS_KEY_REMOVED   0
#define KRS_KEY_INSTALLED 1
#define KRS_KEY_RETIRED   2

typedef struct krs_host_ops {
    uint32_t version;   /* KRS_HOST_OPS_VERSION */
    uint32_t size;      /* sizeof(krs_host_ops_t) */
    void *user;         /* passed as the first argument of every callback */
    /* A log line (never key material); message is valid only during the call. */
    void (*log)(void *user, int level, const char *message);
    /* The current time in Unix seconds; used for every freshness check. */
    int64_t (*clock)(void *user);
    /* The key store changed a key, and the server was told: `change` is KRS_KEY_INSTALLED,
     * KRS_KEY_RETIRED (stopped signing, still published) or KRS_KEY_REMOVED. */
    void (*key_changed)(void *user, const char *zone, uint16_t key_tag, uint8_t algorithm, int change);
} krs_host_ops_t;

/*
 * Creates a context from "key=value" settings. argv may also hold "config=PATH": the file's
 * lines (one key=value per line, '#' comments) are read first and argv entries override them.
 * A host's own defaults go in argv as "key?=value": the operator's argv entries and config
 * file override them; they override what enrollment stored in state_dir/krs.conf.
 *
 *   node_id=edge1.example.net.        this node's ID, FQDN with trailing dot (required)
 *   control_zone=kdc.example.com.     the KDC's control zone (required)
 *   state_dir=/var/lib/tdnskrs        replay record, audit log, lock (required; created 0700)
 *   key_store=bind|knot|nsd|none      where keys go and how the server is told (default bind):
 *                                     bind: K-files in key_dir, then `rndc loadkeys ZONE`;
 *                                     knot: `keymgr ZONE import-bind`, `knotc zone-keys-load`;
 *                                     nsd: K-files, dnssec-signzone, `nsd-control reload ZONE`.
 *                                     A server that refuses puts everything back; the keys
 *                                     are then reported to the KDC as failed.
 *   key_dir=/var/cache/bind/keys      key-file directory (required but for key_store=none)
 *   rndc=/usr/sbin/rndc|none          bind: rndc to run after a change (default none: files only)
 *   rndc_conf=/etc/bind/rndc.conf     bind: rndc -c FILE (default: rndc's own)
 *   keymgr=, knotc=                   knot: tool paths (default /usr/sbin/keymgr, /usr/sbin/knotc)
 *   knot_conf=, knot_socket=          knot: -c knot.conf for both, -s socket for knotc
 *   zone_dir=DIR                      nsd: unsigned zone files DIR/<zone>zone (required)
 *   signed_dir=DIR                    nsd: signed output DIR/<zone>zone.signed (default zone_dir)
 *   signer=/usr/bin/dnssec-signzone   nsd: the signer
 *   nsd_control=PATH|none, nsd_conf=  nsd: nsd-control [-c nsd.conf] (default /usr/sbin/nsd-control)
 *   command_timeout=30                seconds any of these tools may run (1-300)
 *   notify_listen=IP:PORT|none        where NOTIFYs are received (none: the host passes them
 *                                     to krs_handle_notify; krs_start then runs only the worker)
 *   hpke_private_key=HEX|PATH         node's HPKE key: 64 hex characters or a tdns key file
 *   jose_private_key=JWK|PATH         node's JOSE key: private JWK JSON or a file holding it
 *                                     (at least one of the two keys is required)
 *   kdc_signing_pubkey=JWK|PATH       the KDC's ES256 public key (from enrollment)
 *   require_signature=yes|no          refuse HMAC-only distributions (default: yes when
 *                                     kdc_signing_pubkey is set, else no)
 *   now=UNIX_SECONDS                  fixed clock, for tests (default: the system clock)
 *   max_skew=60s                      tolerated clock skew (seconds or a Go duration)
 *   chunk_rrtype=65288|65015          CHUNK type code of the KDC (default 65288)
 *   max_distribution_size=BYTES       cap on one distribution (default 67108864)
 *
 * Returns KRS_OK, KRS_EINVAL (NULL out_ctx, NULL in argv), KRS_ECONFIG (unknown, missing or
 * malformed setting; unreadable key file), KRS_ESTORAGE (state_dir cannot be created).
 * On failure krs_last_error(NULL) tells why, naming the setting, in the calling thread.
 * Ownership: *out_ctx with krs_cleanup.
 */
int krs_init(krs_context_t **out_ctx, int argc, const char *const *argv);

/* Destroys a context, stopping its listener and worker first (krs_stop). NULL is ignored. */
void krs_cleanup(krs_context_t *ctx);

/*
 * Processes one distribution for this node: the RDATAs of its CHUNK records — the manifest
 * (sequence 0) and the data chunks, in any order; identical duplicates are tolerated.
 *
 * The manifest is authenticated (HMAC, or the KDC's JWT signature), checked to be for this
 * node and this distribution_id, fresh and not a replay; the payload is reassembled,
 * verified (KDC JWS when present) and decrypted; every operation is validated; then all keys
 * are installed atomically. On any failure nothing is installed and nothing is recorded.
 *
 * Returns KRS_OK with *out_report_json set to the status report of the confirmation
 * ({"successful_keys":[{"zone_name":…,"key_id":…}]} or a component report), or:
 *   KRS_EINVAL        NULL arguments, count 0, NULL rdata with non-zero length
 *   KRS_EMALFORMED    malformed records, manifest, chunks, base64, payload or key material
 *   KRS_ETOOBIG       over max_distribution_size or another limit
 *   KRS_EAUTH         manifest HMAC, JWT or JWS signature does not verify
 *   KRS_EUNSIGNED     HMAC-only distribution while require_signature=yes
 *   KRS_EWRONGNODE    for another node, or the manifest names another distribution_id
 *   KRS_ESTALE        timestamp outside distribution_ttl ± max_skew; JWT expired
 *   KRS_EREPLAY       this distribution_id was processed before
 *   KRS_ECRYPTO       decryption failed
 *   KRS_EKEYTYPE      encrypted for a backend this node has no key for
 *   KRS_EPOLICY       unknown crypto, content type or DNSSEC algorithm; JOSE header refused
 *   KRS_EKEYMISMATCH  key tag differs from key_id, or the private key is not the DNSKEY's
 *   KRS_ESTORAGE      key files or state could not be written (nothing was installed)
 * krs_last_error(ctx) gives the reason in words.
 * Ownership: *out_report_json with krs_free.
 */
int krs_process_distribution(krs_context_t *ctx, const char *distribution_id,
                             const uint8_t *const *rdata, const size_t *rdata_len, size_t count,
                             char **out_report_json);

/*
 * Enrolls this node with the KDC named in the enrollment package (PROTOCOL §11): package[0..len)
 * is the package file's contents (base64 JSON; '#' lines and whitespace ignored). Generates
 * the node's keys for the package's backend(s) and an Ed25519 SIG(0) key, sends the encrypted,
 * SIG(0)-signed UPDATE to the KDC, checks its answer, and stores keys (0600) and settings in
 * state_dir/krs.conf, which later krs_init calls read. The context uses them at once.
 * Needs notify_listen (the address the KDC will NOTIFY, whose IP identifies the node).
 * Returns KRS_OK, KRS_EINVAL, KRS_EMALFORMED (package), KRS_ECONFIG, KRS_ENETWORK,
 * KRS_ETIMEOUT, KRS_EDNS (the KDC refused: bad or used token, outside the window),
 * KRS_EAUTH (the KDC's answer does not authenticate), KRS_ESTORAGE.
 */
int krs_enroll(krs_context_t *ctx, const char *package, size_t len);

/*
 * Starts the NOTIFY listener (UDP and TCP on notify_listen, SO_REUSEPORT so that a new context
 * may start before the old one stops) and the worker thread that fetches, installs and
 * confirms announced distributions. The threads belong to the library, and their number is
 * fixed whatever the traffic: one for UDP, one event loop for every TCP connection, four
 * handlers. TCP is bounded: 64 connections, 8 per source address, 5 s for each message to
 * arrive or be sent, 10 s idle. Idempotent.
 * With notify_listen=none only the worker is started (NOTIFYs come through krs_handle_notify).
 * Returns KRS_OK, KRS_EINVAL, KRS_ECONFIG (not enrolled), KRS_ENETWORK
 * (cannot bind).
 */
int krs_start(krs_context_t *ctx);

/*
 * Stops the listener and the worker and joins them; a fetch in progress is abandoned at its
 * next step (nothing is half-installed: installation is atomic). Idempotent; KRS_OK or
 * KRS_EINVAL. krs_cleanup stops a running context too.
 */
int krs_stop(krs_context_t *ctx);

/*
 * For hosts that receive NOTIFYs themselves (the Knot module): answers msg[0..len) at once —
 * NOERROR for a NOTIFY below the control zone, REFUSED/FORMERR otherwise — and queues the
 * announced distribution for the worker (krs_start must have been called for it to be
 * fetched). Returns KRS_OK with the answer in *out_resp (free with krs_free), KRS_EINVAL,
 * or KRS_EMALFORMED when msg is no DNS message at all (then there is no answer).
 */
int krs_handle_notify(krs_context_t *ctx, const uint8_t *msg, size_t len, uint8_t **out_resp, size_t *out_resp_len);

/*
 * Fetches, processes and confirms one distribution synchronously (tools, tests): the
 * manifest over TCP, data chunks pipelined over one TCP connection, bounded retries.
 * Returns KRS_OK or the codes of krs_process_distribution, plus KRS_ENETWORK, KRS_ETIMEOUT,
 * KRS_EDNS, and KRS_EWRONGNODE when the KDC has no such distribution for this node.
 */
int krs_fetch(krs_context_t *ctx, const char *distribution_id);

/*
 * Status as JSON: node_id, control_zone, enrolled, kdc_address, notify_listen, listening (the
 * library's NOTIFY listener), running (its worker), require_signature, distributions handled
 * by this context (latest first: id, time, result, detail, keys_changed, confirmed), keys
 * (zone, key_tag, algorithm, ksk, state: active|retired), audit (the audit log's last
 * records, oldest first, whichever process wrote them), counters.
 * Returns KRS_OK or KRS_EINVAL. Ownership: *out_json with krs_free.
 */
int krs_status_json(krs_context_t *ctx, char **out_json);

/*
 * Installs host callbacks on a context (replacing earlier ones; NULL removes them). The
 * structure is copied. A host clock overrides the now= setting.
 * Returns KRS_OK, KRS_EINVAL (unknown context, or a version/size this library does not
 * know: the host was built against another ABI).
 */
int krs_set_host_ops(krs_context_t *ctx, const krs_host_ops_t *ops);

/*
 * The human-readable reason of the last failure on ctx, or "" if there was none. With
 * ctx == NULL: the reason of the last failed krs_init in the calling thread.
 * Never NULL; never contains key material.
 * Ownership: owned by the library; valid until the next failing call on the same context
 * (or, for NULL, the next krs_init in this thread) or krs_cleanup. Copy it to keep it.
 */
const char *krs_last_error(krs_context_t *ctx);

#ifdef __cplusplus
}
#endif

#endif /* TDNSKRS_KRS_H */
