/**
 * @file tdnskrs/krs.h
 * @brief The Key Receiver Service: from the KDC's NOTIFY and the CHUNK records of a
 *   distribution to installed DNSSEC key files.
 *
 * A context (krs_context_t) holds one node's settings and keys. It is opaque: the library
 * allocates it in krs_init() and frees it in krs_cleanup() (the design's DLZ skeleton
 * mallocs a krs_context_t itself; see README, "Where the API differs from the design").
 * Every function is thread-safe; distributions processed through contexts that share a
 * state_dir are serialized by a lock file, so a host may create a new context before
 * destroying the old one (BIND and Knot reload that way). A context pointer that is not
 * live (cleaned up, or never made by the library) gives KRS_EINVAL; it is never
 * dereferenced.
 *
 * What a server plugin needs besides its host glue:
 *   krs_init / krs_set_host_ops / krs_start   load
 *   krs_notify_decide                         a host that receives the NOTIFYs itself (knotd)
 *   krs_status_text                           the status.tdnskrs. TXT strings
 *   krs_cleanup                               unload
 */
#ifndef TDNSKRS_KRS_H
#define TDNSKRS_KRS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque KRS context: made by krs_init(), released by krs_cleanup(). */
typedef struct krs_context krs_context_t;

/** @name Log levels passed to krs_host_ops_t.log
 *  @{ */
#define KRS_LOG_ERROR   0 /**< the KRS cannot do its job (a key not installed, a setting refused) */
#define KRS_LOG_WARNING 1 /**< a distribution refused or dropped, a retry, a legacy format accepted */
#define KRS_LOG_INFO    2 /**< keys installed, retired or removed; what the server tools ran */
#define KRS_LOG_DEBUG   3 /**< detail for developers */
/** @} */

/** The host-operations ABI version this header describes. */
#define KRS_HOST_OPS_VERSION 1

/** @name krs_host_ops_t.key_changed: what happened to the key
 *  @{ */
#define KRS_KEY_REMOVED   0 /**< deleted (`delete_key`): gone from the key store */
#define KRS_KEY_INSTALLED 1 /**< installed: published and signing */
#define KRS_KEY_RETIRED   2 /**< retired by a newer key of its role: published, no longer signing */
/** @} */

/**
 * @brief Callbacks a host gives the library, so that logs go into the host's own logging,
 *   "now" comes from the host's clock, and the host learns when keys changed (to reload).
 *
 * Every callback member may be NULL. Callbacks may be called from any thread, but never
 * concurrently for one context; they must not call back into the library for the same
 * context. None is called after krs_cleanup() returns.
 */
typedef struct krs_host_ops {
    uint32_t version;   /**< KRS_HOST_OPS_VERSION */
    uint32_t size;      /**< sizeof(krs_host_ops_t) */
    void *user;         /**< passed as the first argument of every callback */
    /** A log line (never key material); message is valid only during the call. */
    void (*log)(void *user, int level, const char *message);
    /** The current time in Unix seconds; used for every freshness check. */
    int64_t (*clock)(void *user);
    /** The key store changed a key, and the server was told: `change` is KRS_KEY_INSTALLED,
     *  KRS_KEY_RETIRED (stopped signing, still published) or KRS_KEY_REMOVED; zone is valid
     *  only during the call. */
    void (*key_changed)(void *user, const char *zone, uint16_t key_tag, uint8_t algorithm, int change);
} krs_host_ops_t;

/**
 * @brief Creates a context from "key=value" settings (the design's krs_init).
 *
 * argv may also hold "config=PATH": the file's
 * lines (one key=value per line, '#' comments) are read first and argv entries override them.
 * A host's own defaults go in argv as "key?=value": the operator's argv entries and config
 * file override them; they override what enrollment stored in state_dir/krs.conf.
 *
 *   node_id=edge1.example.net.        this node's ID, FQDN with trailing dot (required)
 *   control_zone=kdc.example.com.     the KDC's control zone (required)
 *   state_dir=/var/lib/tdnskrs        replay record, audit log, pending record, lock (required;
 *                                     created 0700 when missing, tightened to 0700 — logged —
 *                                     when group or other bits are set)
 *   key_store=bind|knot|nsd|none      where keys go and how the server is told (default bind):
 *                                     bind: K-files in key_dir, then `rndc loadkeys ZONE`;
 *                                     knot: `keymgr ZONE import-bind`, `knotc zone-keys-load`
 *                                     (a zone served unsigned until it has an active KSK and
 *                                     ZSK: `knotc conf-set zone[ZONE].dnssec-signing on`);
 *                                     nsd: K-files, dnssec-signzone, `nsd-control reload ZONE`.
 *                                     A server that refuses puts everything back; the keys
 *                                     are then reported to the KDC as failed.
 *   key_dir=/var/cache/bind/keys      key-file directory (required but for key_store=none;
 *                                     created or tightened to 0700 like state_dir)
 *   rndc=/usr/sbin/rndc|none          bind: rndc to run after a change (default none: files only)
 *   rndc_conf=/etc/bind/rndc.conf     bind: rndc -c FILE (default: rndc's own)
 *   keymgr=, knotc=                   knot: tool paths (default /usr/sbin/keymgr, /usr/sbin/knotc)
 *   knot_conf=, knot_socket=          knot: -c knot.conf for both, -s socket for knotc
 *                                     (knot_conf= is needed unless knotd runs from
 *                                     /etc/knot/knot.conf: the tools act on that file's
 *                                     KASP database and socket)
 *   zone_dir=DIR                      nsd: unsigned zone files DIR/\<zone>zone (required)
 *   signed_dir=DIR                    nsd: signed output DIR/\<zone>zone.signed (default zone_dir)
 *   signer=/usr/bin/dnssec-signzone   nsd: the signer
 *   nsd_control=PATH|none, nsd_conf=  nsd: nsd-control [-c nsd.conf] (default /usr/sbin/nsd-control)
 *   command_timeout=30                seconds any of these tools may run (1-300)
 *   notify_listen=IP:PORT|none        where NOTIFYs are received (none: the host passes them
 *                                     to krs_handle_notify; krs_start then runs only the worker)
 *   metrics_listen=IP:PORT|none       Prometheus metrics: krs_start serves HTTP GET /metrics
 *                                     there (one thread, 16 connections, 4 per source, 5 s per
 *                                     request); default none (off)
 *   hpke_private_key=HEX|PATH         node's HPKE key: 64 hex characters or a tdns key file
 *   jose_private_key=JWK|PATH         node's JOSE key: private JWK JSON or a file holding it
 *                                     (at least one of the two keys is required)
 *   kdc_signing_pubkey=JWK|PATH       the KDC's ES256 public key (from enrollment)
 *   require_signature=yes|no          yes: accept only distributions whose manifest the KDC
 *                                     signed (Format 2, a JWT verified with
 *                                     kdc_signing_pubkey) and that bind this node, the
 *                                     distribution ID, the time and the payload hash; a
 *                                     Format 1 (HMAC) manifest is refused before any data
 *                                     chunk is fetched, even when its ciphertext is a JWS
 *                                     (that covers the ciphertext only). no: Format 1 is
 *                                     accepted too, with a warning — the Go KDC's format,
 *                                     whose HMAC is keyed with this node's public key.
 *                                     Default: yes when kdc_signing_pubkey is set, else no.
 *   kdc_sig0_pubkey=KEYRR|PATH        the KDC's SIG(0) KEY RR ("kdc.example. 3600 IN KEY 256
 *                                     3 15 …"), or a file holding it (from enrollment)
 *   require_notify_signature=yes|no   yes: a NOTIFY without a valid SIG(0) by kdc_sig0_pubkey
 *                                     (signer name = the control zone) is REFUSED and nothing
 *                                     is queued (default: yes when kdc_sig0_pubkey is set)
 *   now=UNIX_SECONDS                  fixed clock, for tests (default: the system clock)
 *   max_skew=60s                      tolerated clock skew (seconds or a Go duration)
 *   chunk_rrtype=65288|65015          CHUNK type code of the KDC's build, used for the
 *                                     enrollment UPDATE, the CHUNK queries and the
 *                                     confirmations (default 65288; the Go KDC of 2026: 65015)
 *   max_distribution_size=BYTES       cap on one distribution (default 67108864)
 *   supported_crypto=hpke,jose        the backends this node enrolls with (comma-separated;
 *                                     default hpke,jose): enrollment makes node keys only for
 *                                     those the package offers too (its supported_crypto, or
 *                                     the KDC keys it carries), and fails when none is left
 *   preferred_crypto=hpke|jose        sent in the enrollment request ("preferred_crypto",
 *                                     PROTOCOL §19) as the backend this node would rather
 *                                     receive with; one of supported_crypto; empty: none
 *                                     stated (default). A Go KDC ignores the member.
 *   previous_hpke_private_key=HEX|PATH, previous_jose_private_key=JWK|PATH
 *                                     the node's keys from before a re-enrollment (`tdns-krs
 *                                     enroll --reenroll` writes them into krs.conf): they still
 *                                     open distributions made for them, until the first
 *                                     distribution the new keys open is processed or
 *                                     previous_keys_until passes; then they are removed
 *   previous_keys_until=UNIX_SECONDS  end of the previous keys (re-enrollment + 7 days)
 *
 * A running context reads state_dir/krs.conf again before each distribution when the file
 * changed (its mtime or inode): a re-enrollment beside it takes effect without a restart.
 *
 * @param out_ctx  receives the new context
 * @param argc     number of entries in argv (0–1024)
 * @param argv     the settings; a host's `char **argv` needs a cast in C:
 *                 (const char *const *)argv
 * @return KRS_OK, KRS_EINVAL (NULL out_ctx, NULL in argv), KRS_ECONFIG (unknown, missing or
 *   malformed setting; unreadable key file; state_dir or key_dir is not a directory or cannot
 *   be created), KRS_ESTORAGE (state_dir cannot be written).
 * Log lines of krs_init itself (a directory created or tightened) reach the host's log
 * callback once krs_set_host_ops installs one.
 * On failure krs_last_error(NULL) tells why, naming the setting, in the calling thread.
 * Ownership: *out_ctx with krs_cleanup; argv stays the caller's (copied).
 */
int krs_init(krs_context_t **out_ctx, int argc, const char *const *argv);

/**
 * @brief Destroys a context, stopping its listener and worker first (krs_stop): no library
 *   thread of it runs and no callback of it is called after this returns.
 * @param ctx  the context, or NULL (ignored); a context cleaned up before is ignored too
 * Ownership: frees the context (do not free() it); ctx is invalid afterwards.
 */
void krs_cleanup(krs_context_t *ctx);

/**
 * @brief Processes one distribution for this node: the RDATAs of its CHUNK records — the manifest
 * (sequence 0) and the data chunks, in any order; identical duplicates are tolerated.
 *
 * The RDATAs are parsed once, here. The manifest is authenticated first — a Format 2 JWT
 * with kdc_signing_pubkey, or (only with require_signature=no) a Format 1 HMAC — and checked
 * to be for this node and this distribution_id, fresh, and within max_distribution_size
 * (chunk_count × chunk_size, 65535 when absent); then it must not be a replay; the payload is
 * reassembled (no chunk larger than chunk_size), compared with the JWT's chunk_hash, a JWS
 * around the ciphertext verified when present (it binds nothing), and decrypted (for crypto
 * "hpke" also the Go KDC's E ‖ E ‖ AEAD, with an audit line saying so); every operation is
 * validated; then all keys are installed atomically. On any failure nothing is installed and
 * nothing is recorded.
 *
 * @param ctx              the context
 * @param distribution_id  the distribution ID as in the NOTIFY's first label: 4 to 16 hex
 *                         digits, an even number of them (the Go KDC's rule, PROTOCOL §1);
 *                         upper case is taken as lower case; anything else is KRS_EMALFORMED
 * @param rdata            count pointers to RDATA
 * @param rdata_len        count lengths (each at most 65535)
 * @param count            number of records
 * @param out_report_json  receives the report
 * @return KRS_OK with *out_report_json set to the status report of the confirmation
 * ({"successful_keys":[{"zone_name":…,"key_id":…}]} or a component report). KRS_OK also
 * when the keys could not be installed because the server refused them or key_dir could not
 * be written: then nothing was installed, the distribution is recorded as processed
 * (install-failed) and the report lists every key in "failed_keys" with its "error" (the
 * tool's message, or "storage: \<reason\>") — the report the KDC receives. KRS_OK too for a
 * distribution encrypted for a backend this node has no key for (a JOSE-only node given
 * crypto "hpke", or the reverse): it is recorded as processed and audited
 * (backend-mismatch), and the report is {"failed_keys":[{"zone_name":"","key_id":"\*",
 * "error":"backend mismatch: jose node received an hpke distribution"}]} — a final answer
 * for the KDC, which marks the distribution failed with that reason. Each distribution
 * processed logs "Distribution \<id\> processed successfully (backend: hpke, duration:
 * 15ms)". Otherwise:
 *   KRS_EINVAL        NULL arguments, count 0, NULL rdata with non-zero length
 *   KRS_EMALFORMED    malformed records, manifest, chunks, base64, payload or key material
 *   KRS_ETOOBIG       over max_distribution_size (also as announced by the manifest) or
 *                     another limit
 *   KRS_EAUTH         manifest HMAC, JWT or JWS signature does not verify; the JWT's
 *                     chunk_hash differs from the payload, or a chunked JWT has none
 *   KRS_EUNSIGNED     Format 1 (HMAC) manifest while require_signature=yes
 *   KRS_EWRONGNODE    for another node, or the manifest names another distribution_id
 *   KRS_ESTALE        timestamp outside distribution_ttl ± max_skew; JWT expired
 *   KRS_EREPLAY       this distribution_id was processed before
 *   KRS_ECRYPTO       decryption failed
 *   KRS_EKEYTYPE      a key of the wrong type (a backend mismatch is KRS_OK, above)
 *   KRS_EPOLICY       unknown crypto, content type or DNSSEC algorithm; JOSE header refused
 *   KRS_EKEYMISMATCH  key tag differs from key_id, or the private key is not the DNSKEY's
 *   KRS_ESTORAGE      the state (replay record, audit log) could not be written (nothing
 *                     was installed)
 * krs_last_error(ctx) gives the reason in words.
 * Ownership: *out_report_json with krs_free; the RDATA stays the caller's.
 */
int krs_process_distribution(krs_context_t *ctx, const char *distribution_id,
                             const uint8_t *const *rdata, const size_t *rdata_len, size_t count,
                             char **out_report_json);

/**
 * @brief Enrolls this node with the KDC named in the enrollment package (PROTOCOL §11): package[0..len)
 * is the package file's contents (base64 JSON; '#' lines and whitespace ignored). Generates
 * the node's keys for the package's backend(s) and an Ed25519 SIG(0) key, sends the encrypted,
 * SIG(0)-signed UPDATE to the KDC — its CHUNK RR of type chunk_rrtype (a Go KDC built with
 * 65015 answers FORMERR to 65288), the request announcing "capabilities":["jws-es256","sig0"]
 * — checks its answer, and stores keys (0600) and settings in state_dir/krs.conf, which
 * later krs_init calls read; also the package's kdc_signing_pubkey and kdc_sig0_pubkey, so
 * require_signature and require_notify_signature default to yes. The context uses them at
 * once. A kdc_enrollment_address of the form host:port is resolved here, once (the first
 * IPv4 address, else the first), logged, and stored as kdc_address=IP:port.
 * Needs notify_listen (the address the KDC will NOTIFY, whose IP identifies the node).
 * Keys are made only for the backends in supported_crypto that the package offers, and the
 * request carries "preferred_crypto" when that setting names one of them. Both package
 * formats are read: the Go one (base64 JSON, above; our KDC adds supported_crypto,
 * default_crypto, reenroll) and the seed's ("version":"2.0", crypto, auth_token,
 * kdc_encryption_key, kdc_signing_key, kdc_address + kdc_port, control_zone, valid_until,
 * capabilities; JSON as it is or base64), which names no node: node_id= gives it. A seed
 * package has no KDC SIG(0) key: NOTIFYs are then not verified unless kdc_sig0_pubkey= is
 * given (logged). A node enrolled already (state_dir/krs.conf names it and a key) is
 * refused with KRS_ECONFIG "already enrolled as NODE; use --reenroll": re-enrollment is
 * `tdns-krs enroll --reenroll`.
 * @param ctx      the context
 * @param package  the package file's contents (need not be NUL-terminated)
 * @param len      its length, at most 65536
 * @return KRS_OK, KRS_EINVAL, KRS_ETOOBIG, KRS_EMALFORMED (package), KRS_ECONFIG,
 *   KRS_ENETWORK (also: the KDC's host name does not resolve), KRS_ETIMEOUT, KRS_EDNS (the
 *   KDC refused: bad or used token, outside the window, another CHUNK type), KRS_EAUTH (the
 *   KDC's answer does not authenticate), KRS_ESTORAGE.
 * Ownership: package stays the caller's; nothing is returned.
 */
int krs_enroll(krs_context_t *ctx, const char *package, size_t len);

/**
 * @brief Starts the NOTIFY listener (UDP and TCP on notify_listen, SO_REUSEPORT so that a new context
 * may start before the old one stops) and the worker thread that fetches, installs and
 * confirms announced distributions. The threads belong to the library, and their number is
 * fixed whatever the traffic: one for UDP, one event loop for every TCP connection, four
 * handlers. TCP is bounded: 64 connections, 8 per source address, 5 s for each message to
 * arrive or be sent, 10 s idle. With metrics_listen, one more thread serves GET /metrics
 * (Prometheus text format 0.0.4). Idempotent.
 * Distributions in state_dir/pending (announced, not handled before a stop or crash) are
 * queued again; entries older than 24 hours or beyond the 256 newest are dropped (audit
 * line). A fetch that fails (network, timeout, malformed answer) or a confirmation the KDC
 * does not acknowledge is tried again after 5, 10, 20, 40, 80, 160, then every 300 seconds,
 * for at most 24 hours after the first NOTIFY (then dropped with an audit line); a new
 * NOTIFY for it tries at once.
 * With notify_listen=none only the worker is started (NOTIFYs come through krs_handle_notify).
 * @param ctx  the context
 * @return KRS_OK, KRS_EINVAL, KRS_ECONFIG (not enrolled), KRS_ENETWORK (cannot bind).
 * Ownership: the threads are the library's; krs_stop or krs_cleanup joins them.
 */
int krs_start(krs_context_t *ctx);

/**
 * @brief Stops the listener and the worker and joins them; a fetch in progress is abandoned
 *   at its next step (nothing is half-installed: installation is atomic). Idempotent.
 *   krs_cleanup stops a running context too.
 * @param ctx  the context
 * @return KRS_OK or KRS_EINVAL.
 * Ownership: nothing changes hands; the context stays valid (krs_start may run it again).
 */
int krs_stop(krs_context_t *ctx);

/**
 * @brief Answers a NOTIFY a host received on a socket of its own: msg[0..len) is answered
 *   at once and the announced distribution queued for the worker (krs_start must have been
 *   called for it to be fetched). Hosts with a DNS engine of their own (knotd) use
 *   krs_notify_decide() instead, which also tells them which NOTIFYs are not the KRS's.
 *
 * The answer's RCODE:
 *   NOERROR   a NOTIFY for <distribution-id>.\<control_zone>: queued, and recorded in
 *             state_dir/pending before this answer; or already queued, being fetched, or
 *             handled and confirmed (nothing is fetched again)
 *   REFUSED   not a NOTIFY; this context is not enrolled; the QNAME is not below the control
 *             zone or its first label is no distribution ID; require_notify_signature and no
 *             valid SIG(0) by kdc_sig0_pubkey; the queue (256) or the source's share (16) is
 *             full — the KDC sends it again; state_dir/pending cannot be written. Nothing is
 *             queued.
 *   FORMERR   a NOTIFY without exactly one question of class IN, or with a malformed option
 * The message carries no peer address, so all NOTIFYs a host hands over count as one source
 * for the per-source share. AA is set, as RFC 1996 answers are.
 * @param ctx           the context
 * @param msg           the DNS message as received
 * @param len           its length, at most 65535
 * @param out_resp      receives the answer (DNS wire format)
 * @param out_resp_len  receives its length
 * @return KRS_OK with the answer in *out_resp, KRS_EINVAL, or KRS_EMALFORMED when msg is
 *   no DNS request at all (then there is no answer).
 * Ownership: *out_resp with krs_free; msg stays the caller's.
 */
int krs_handle_notify(krs_context_t *ctx, const uint8_t *msg, size_t len, uint8_t **out_resp, size_t *out_resp_len);

/**
 * @brief For hosts with a DNS engine of their own (the Knot module): decides whether a
 *   message the host received is a NOTIFY for the KRS and, if it is, answers it as
 *   krs_handle_notify() does (queueing the distribution) and says which RCODE and AA bit the
 *   host's response should carry. The host copies them onto its own response; it checks
 *   nothing itself.
 *
 * For the KRS (*out_for_krs = 1) is a request (QR clear) with opcode NOTIFY and exactly one
 * question, of class IN, whose name is the control zone or below it. The RCODE is then the
 * one krs_handle_notify() documents: NOERROR (queued, or known already), REFUSED (the apex
 * or another name that is not <distribution-id>.\<control_zone>, SIG(0) required and
 * missing, queue full, pending record not written), FORMERR (a malformed CHUNK option);
 * AA is set. Everything else — another opcode, another class, a name outside the control
 * zone (a NOTIFY for a zone the host is secondary for), a node that is not enrolled — is
 * not the KRS's (*out_for_krs = 0): the host processes the message as it would without
 * the library, and the library neither counts nor logs it.
 *
 * @param ctx          the context
 * @param msg          the DNS message as received (the QNAME in the sender's case: a SIG(0)
 *                     covers it)
 * @param len          its length, at most 65535
 * @param out_for_krs  receives 1 (a NOTIFY for the KRS, answered) or 0 (not the KRS's)
 * @param out_rcode    receives the RCODE for the response (0 NOERROR, 1 FORMERR,
 *                     2 SERVFAIL, 5 REFUSED) when *out_for_krs is 1, else 0
 * @param out_aa       receives 1 when the response is to carry AA, else 0
 * @return KRS_OK (the verdict is in the out-parameters), KRS_EINVAL (unknown context, a NULL
 *   argument), or KRS_EMALFORMED (msg is not a DNS message: the host handles it as usual).
 * Ownership: msg stays the caller's; nothing is allocated.
 */
int krs_notify_decide(krs_context_t *ctx, const uint8_t *msg, size_t len,
                      int *out_for_krs, int *out_rcode, int *out_aa);

/**
 * @brief Fetches, processes and confirms one distribution synchronously (tools, tests): the
 * manifest over TCP, authenticated before any data chunk is requested (so KRS_EUNSIGNED and
 * KRS_ETOOBIG come without fetching them), data chunks pipelined over one TCP connection,
 * three quick attempts (no retry timer: the caller decides). A distribution installed whose
 * confirmation the KDC never acknowledged is confirmed again instead.
 * @param ctx              the context
 * @param distribution_id  the distribution ID (4 to 16 hex digits, even; else KRS_EMALFORMED)
 * @return KRS_OK or the codes of krs_process_distribution, plus KRS_ENETWORK, KRS_ETIMEOUT,
 * KRS_EDNS (also: the KDC answered FORMERR/REFUSED — is chunk_rrtype the KDC's?),
 * KRS_EWRONGNODE when the KDC has no such distribution for this node (NXDOMAIN, SERVFAIL),
 * and KRS_EREPLAY when it was processed (and confirmed) before: nothing is fetched.
 * Ownership: nothing is returned; krs_status_json shows the outcome.
 */
int krs_fetch(krs_context_t *ctx, const char *distribution_id);

/**
 * @brief Status as JSON: node_id, control_zone, enrolled, kdc_address, notify_listen, listening (the
 * library's NOTIFY listener), running (its worker), require_signature, distributions handled
 * by this context (latest first: id, time, result — installed, install failed, refused, fetch
 * failed, not for us, interrupted, already processed —, detail, keys_changed, confirmed),
 * require_notify_signature, pending (the distribution IDs waiting in the queue), keys
 * (zone, key_tag, algorithm, ksk, state: active|retired), audit (the audit log's last
 * records, oldest first, whichever process wrote them), counters (notifies,
 * notifies_ignored, notifies_refused, fetches, fetch_failures, keys_installed, refused,
 * confirmations, confirmation_failures, pending_dropped), crypto (the backends this node
 * has keys for), previous_keys_until (Unix time while keys from before a re-enrollment are
 * kept, else null), backends ({"hpke":{"processed":N,"failed":N,"processing_ms":{"median":
 * MS,"p95":MS}},"jose":{…}}: distributions by the manifest's crypto — processed: installed;
 * failed: refused or not installed once the backend was known, a backend mismatch
 * included; processing_ms over the last 1024 of either, from the start of the fetch or of
 * krs_process_distribution to the installed keys, 0 while there are none).
 * @param ctx       the context
 * @param out_json  receives the NUL-terminated JSON text
 * @return KRS_OK, KRS_EINVAL or KRS_ENOMEM.
 * Ownership: *out_json with krs_free.
 */
int krs_status_json(krs_context_t *ctx, char **out_json);

/**
 * @brief The status.tdnskrs. TXT strings the server plugins serve, one per TXT record — the
 *   same text in every host, so that operators read one format:
 *
 *     version=0.2.0
 *     node_id=edge1.example.net. enrolled=yes listening=yes running=yes
 *     last_distribution=6a2f0001 result=installed confirmed=yes   (or last_distribution=none)
 *     keys=2 keys_installed=2 notifies=3 fetches=2 refused=0
 *     key_changes installed=2 retired=0 removed=0
 *
 * listening: the library's own NOTIFY listener (no when the host receives the NOTIFYs);
 * running: its worker; last_distribution: the latest one this context handled (result as
 * in krs_status_json); keys: the keys in key_dir; keys_installed, notifies, fetches,
 * refused: the counters of krs_status_json; key_changes: the key changes this context made
 * (each one a key_changed callback). Every string is at most 255 bytes (one TXT
 * character-string). With ctx NULL — a host running no KRS — only the version line.
 *
 * @param ctx        the context, or NULL
 * @param out_lines  receives an array of *out_count NUL-terminated strings, followed by a
 *                   NULL pointer
 * @param out_count  receives the number of strings (1 with ctx NULL, else 5)
 * @return KRS_OK, KRS_EINVAL (a context that is not live, a NULL out-parameter) or
 *   KRS_ENOMEM.
 * Ownership: *out_lines with krs_free — one block holding the array and its strings, so a
 *   single krs_free(*out_lines) releases everything (krs_free of one string is ignored).
 */
int krs_status_text(krs_context_t *ctx, char ***out_lines, size_t *out_count);

/**
 * @brief Installs host callbacks on a context (replacing earlier ones; NULL removes them).
 *   A host clock overrides the now= setting.
 * @param ctx  the context
 * @param ops  the callbacks, or NULL
 * @return KRS_OK, KRS_EINVAL (unknown context, or a version/size this library does not
 *   know: the host was built against another ABI).
 * Ownership: the structure is copied; ops->user and the functions must stay valid until
 *   the callbacks are replaced or krs_cleanup returns.
 */
int krs_set_host_ops(krs_context_t *ctx, const krs_host_ops_t *ops);

/**
 * @brief The human-readable reason of the last failure on ctx, or "" if there was none. With
 * ctx == NULL: the reason of the last failed krs_init in the calling thread.
 * @param ctx  the context, or NULL
 * @return Never NULL; never contains key material.
 * Ownership: owned by the library; valid until the next failing call on the same context
 * (or, for NULL, the next krs_init in this thread) or krs_cleanup. Copy it to keep it.
 */
const char *krs_last_error(krs_context_t *ctx);

#ifdef __cplusplus
}
#endif

#endif /* TDNSKRS_KRS_H */
