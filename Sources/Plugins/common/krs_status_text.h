/*
 * krs_status_text.h — the status.tdnskrs. TXT strings both server plugins serve (BIND DLZ
 * module, Knot module), made from krs_status_json(), so that operators read one format in
 * both servers. Compiled into each plugin (hidden symbols); uses only the public C API.
 */
#ifndef TDNSKRS_PLUGIN_STATUS_TEXT_H
#define TDNSKRS_PLUGIN_STATUS_TEXT_H

#include <stddef.h>

#include <tdnskrs/krs.h>

/* A TXT character-string holds at most 255 bytes. */
#define KRS_STATUS_TEXT_MAX 255
/* The most strings krs_status_lines() writes. */
#define KRS_STATUS_LINES 5

/*
 * Writes the status strings into out[0..] and returns how many (1..KRS_STATUS_LINES):
 *   "version=0.1.0"
 *   "node_id=edge1.example.net. enrolled=yes listening=yes running=yes"
 *   "last_distribution=ID result=installed confirmed=yes"   (or "last_distribution=none")
 *   "keys=2 keys_installed=2 notifies=3 fetches=2 refused=0"
 * With ctx NULL only the version; "krs=status unavailable" when the library gives no status.
 * Longer text is clipped to KRS_STATUS_TEXT_MAX bytes.
 */
__attribute__((visibility("hidden")))
int krs_status_lines(krs_context_t *ctx, char out[KRS_STATUS_LINES][KRS_STATUS_TEXT_MAX + 1]);

/* Copies the string member `key` of the library's status (e.g. "control_zone") into out;
 * returns 1, or 0 (out = "") when there is none. */
__attribute__((visibility("hidden")))
int krs_status_member(krs_context_t *ctx, const char *key, char *out, size_t cap);

#endif
