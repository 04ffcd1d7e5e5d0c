/*
 * krs_status_text.c — status.tdnskrs. strings from krs_status_json(), shared by the server
 * plugins (see krs_status_text.h). The JSON comes from the library itself, so the reader is
 * minimal: it skips what it does not need and never reads past the terminating NUL.
 */
#include "krs_status_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tdnskrs/common.h>

/* --- a minimal JSON reader ---------------------------------------------------------------- */


static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    return p;
}

/* Skips a string starting at '"'; NULL if unterminated. */
static const char *json_skip_string(const char *p)
{
    for (p++; *p != '\0'; p++) {
        if (*p == '\\') {
            if (*++p == '\0') {
                return NULL;
            }
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* Skips one value (bounded nesting); NULL if malformed. */
static const char *json_skip(const char *p, int depth)
{
    p = json_ws(p);
    if (depth > 32) {
        return NULL;
    }
    if (*p == '"') {
        return json_skip_string(p);
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = json_ws(p + 1);
        if (*p == close) {
            return p + 1;
        }
        for (;;) {
            if (close == '}') {
                if (*p != '"' || (p = json_skip_string(p)) == NULL) {
                    return NULL;
                }
                p = json_ws(p);
                if (*p++ != ':') {
                    return NULL;
                }
            }
            if ((p = json_skip(p, depth + 1)) == NULL) {
                return NULL;
            }
            p = json_ws(p);
            if (*p == ',') {
                p = json_ws(p + 1);
            } else if (*p == close) {
                return p + 1;
            } else {
                return NULL;
            }
        }
    }
    /* number, true, false, null */
    const char *s = p;
    while (*p != '\0' && strchr(",}] \t\r\n", *p) == NULL) {
        p++;
    }
    return p > s ? p : NULL;
}

/* The value of member `key` of the object at obj, or NULL. */
static const char *json_member(const char *obj, const char *key)
{
    const char *p = obj != NULL ? json_ws(obj) : NULL;
    if (p == NULL || *p != '{') {
        return NULL;
    }
    p = json_ws(p + 1);
    size_t klen = strlen(key);
    while (*p == '"') {
        const char *name = p + 1;
        const char *end = json_skip_string(p);
        if (end == NULL) {
            return NULL;
        }
        int match = (size_t)(end - 1 - name) == klen && memcmp(name, key, klen) == 0;
        p = json_ws(end);
        if (*p++ != ':') {
            return NULL;
        }
        p = json_ws(p);
        if (match) {
            return p;
        }
        if ((p = json_skip(p, 1)) == NULL) {
            return NULL;
        }
        p = json_ws(p);
        if (*p != ',') {
            return NULL;
        }
        p = json_ws(p + 1);
    }
    return NULL;
}

/* Number of elements of the array at arr (-1 if not an array), and its first element. */
static int json_array(const char *arr, const char **first)
{
    const char *p = arr != NULL ? json_ws(arr) : NULL;
    if (first != NULL) {
        *first = NULL;
    }
    if (p == NULL || *p != '[') {
        return -1;
    }
    p = json_ws(p + 1);
    if (*p == ']') {
        return 0;
    }
    if (first != NULL) {
        *first = p;
    }
    int n = 0;
    for (;;) {
        if ((p = json_skip(p, 1)) == NULL) {
            return -1;
        }
        n++;
        p = json_ws(p);
        if (*p == ']') {
            return n;
        }
        if (*p != ',') {
            return -1;
        }
        p = json_ws(p + 1);
    }
}

/* Copies the string value at v (escapes decoded; non-ASCII \u becomes '?'); "" if none. */
static void json_string(const char *v, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    if (v == NULL || *v != '"') {
        return;
    }
    for (const char *p = v + 1; *p != '\0' && *p != '"' && o + 1 < cap; p++) {
        char c = *p;
        if (c == '\\') {
            c = *++p;
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v4 = 0;
                int k;
                for (k = 1; k <= 4 && p[k] != '\0'; k++) {
                    char h = p[k];
                    v4 = v4 * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
                }
                if (k <= 4) {
                    out[o] = '\0';
                    return;
                }
                p += 4;
                c = v4 < 0x80 ? (char)v4 : '?';
                break;
            }
            case '\0':
                out[o] = '\0';
                return;
            default:
                break; /* \" \\ \/ */
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
}

static const char *json_bool(const char *v)
{
    if (v != NULL && strncmp(v, "true", 4) == 0) {
        return "yes";
    }
    if (v != NULL && strncmp(v, "false", 5) == 0) {
        return "no";
    }
    return "?";
}

static long long json_int(const char *v)
{
    return v != NULL ? strtoll(v, NULL, 10) : -1;
}

/* --- the strings -------------------------------------------------------------------------- */

static void text_printf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, KRS_STATUS_TEXT_MAX + 1, fmt, ap);
    va_end(ap);
}

int krs_status_lines(krs_context_t *ctx, char out[KRS_STATUS_LINES][KRS_STATUS_TEXT_MAX + 1])
{
    int n = 0;
    const char *version = krs_version();
    text_printf(out[n++], "version=%s", version != NULL ? version : "?");
    if (ctx == NULL) {
        return n;
    }
    char *json = NULL;
    if (krs_status_json(ctx, &json) != KRS_OK || json == NULL) {
        text_printf(out[n++], "krs=status unavailable");
        return n;
    }
    char node[128], id[96], result[32];
    json_string(json_member(json, "node_id"), node, sizeof(node));
    /* listening: the library's own NOTIFY listener (off in knotd, whose port receives them);
     * running: the library's worker. */
    text_printf(out[n++], "node_id=%s enrolled=%s listening=%s running=%s", node[0] ? node : "-",
                json_bool(json_member(json, "enrolled")), json_bool(json_member(json, "listening")),
                json_bool(json_member(json, "running")));
    const char *last = NULL;
    if (json_array(json_member(json, "distributions"), &last) > 0 && last != NULL) {
        json_string(json_member(last, "id"), id, sizeof(id));
        json_string(json_member(last, "result"), result, sizeof(result));
        text_printf(out[n++], "last_distribution=%s result=%s confirmed=%s", id, result,
                    json_bool(json_member(last, "confirmed")));
    } else {
        text_printf(out[n++], "last_distribution=none");
    }
    const char *counters = json_member(json, "counters");
    text_printf(out[n++], "keys=%d keys_installed=%lld notifies=%lld fetches=%lld refused=%lld",
                json_array(json_member(json, "keys"), NULL), json_int(json_member(counters, "keys_installed")),
                json_int(json_member(counters, "notifies")), json_int(json_member(counters, "fetches")),
                json_int(json_member(counters, "refused")));
    krs_free(json);
    return n;
}

int krs_status_member(krs_context_t *ctx, const char *key, char *out, size_t cap)
{
    char *json = NULL;
    out[0] = '\0';
    if (ctx == NULL || krs_status_json(ctx, &json) != KRS_OK || json == NULL) {
        return 0;
    }
    json_string(json_member(json, key), out, cap);
    krs_free(json);
    return out[0] != '\0';
}
