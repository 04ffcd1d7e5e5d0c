/*
 * krs_status_example.c — a Key Receiver Service in a C host, from enrollment to status.
 *
 * Enrolls this node with the KDC of an enrollment package (unless the state directory says it
 * is enrolled already), starts the NOTIFY listener, lets the library receive, install and
 * confirm distributions until it is told to stop, then prints the node's status and exits.
 *
 *   krs_status_example [-n IP:PORT] [-s KEY=VALUE]... [-t SECONDS] [-c COUNT]
 *                      STATE_DIR PACKAGE_FILE [KEY_DIR]
 *
 *   STATE_DIR      the KRS's state directory (state_dir=): keys, enrollment, replay record
 *   PACKAGE_FILE   the package from `tdns-kdc enroll generate`; only read when not enrolled yet
 *   KEY_DIR        where BIND key files go (key_store=bind, key_dir=); default: the directory
 *                  given at enrollment (kept in STATE_DIR/krs.conf)
 *   -n, --notify IP:PORT          where the KDC sends NOTIFYs (notify_listen=); needed to enroll
 *   -s, --set KEY=VALUE           any other krs_init setting (see tdnskrs/krs.h); repeatable
 *   -t, --seconds SECONDS         stop after this many seconds (default: at SIGINT or SIGTERM)
 *   -c, --wait-confirmed COUNT    stop once COUNT distributions received during this run have
 *                                 been installed and confirmed to the KDC
 *
 * Exit status: 0 done; 1 a library call failed, or -c COUNT was not reached within -t SECONDS;
 * 2 usage.
 *
 * Build: cc -std=c11 krs_status_example.c $(pkg-config --cflags --libs tdnskrs json-c)
 */
#define _POSIX_C_SOURCE 200809L /* sigaction, nanosleep, clock_gettime, gmtime_r */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <tdnskrs/tdnskrs.h>

#define MAX_SETTINGS     64
#define MAX_PACKAGE_SIZE (1024 * 1024)
#define POLL_INTERVAL_MS 200
#define LABEL_WIDTH      32

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: krs_status_example [-n IP:PORT] [-s KEY=VALUE]... [-t SECONDS] [-c COUNT]\n"
            "                          STATE_DIR PACKAGE_FILE [KEY_DIR]\n"
            "  -n, --notify IP:PORT        where the KDC sends NOTIFYs (needed to enroll)\n"
            "  -s, --set KEY=VALUE         extra krs_init setting (see tdnskrs/krs.h), repeatable\n"
            "  -t, --seconds SECONDS       stop after SECONDS (default: at SIGINT/SIGTERM)\n"
            "  -c, --wait-confirmed COUNT  stop once COUNT distributions are confirmed to the KDC\n"
            "  -h, --help                  this text\n");
}

/* Reports a failed library call with both the code's text and the library's reason. */
static int report(const char *call, int rc, krs_context_t *ctx)
{
    fprintf(stderr, "krs_status_example: %s: %s (%d): %s\n", call, krs_strerror(rc), rc, krs_last_error(ctx));
    return 1;
}

/* Library log lines go to stderr; debug chatter is left out. */
static void log_line(void *user, int level, const char *message)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    (void)user;
    if (level >= KRS_LOG_ERROR && level <= KRS_LOG_INFO) {
        fprintf(stderr, "krs: %s: %s\n", names[level], message);
    }
}

/* Called after the key store changed a key and told the server (key_store=bind with rndc=:
 * `rndc loadkeys ZONE`); a host that serves the zone itself would reload it here. */
static void key_changed(void *user, const char *zone, uint16_t key_tag, uint8_t algorithm, int change)
{
    const char *what = change == KRS_KEY_INSTALLED ? "installed"
                       : change == KRS_KEY_RETIRED ? "retired"
                       : change == KRS_KEY_REMOVED ? "removed"
                                                   : "changed";
    (void)user;
    fprintf(stderr, "krs: key %s: zone %s, key tag %u, algorithm %u\n", what, zone, (unsigned)key_tag,
            (unsigned)algorithm);
}

/* Reads a whole file of at most MAX_PACKAGE_SIZE bytes; free it with wipe_and_free. */
static char *read_file(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    setvbuf(f, NULL, _IONBF, 0); /* unbuffered: no copy of the token left in stdio's buffer */
    char *buf = malloc(MAX_PACKAGE_SIZE + 1);
    size_t len = buf != NULL ? fread(buf, 1, MAX_PACKAGE_SIZE + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || len > MAX_PACKAGE_SIZE;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    *out_len = len;
    return buf;
}

/* The package holds a one-time enrollment token: overwrite it before freeing.
 * (volatile, so that the compiler cannot drop stores to memory that is freed next) */
static void wipe_and_free(char *buf, size_t len)
{
    volatile char *p = buf;
    for (size_t i = 0; p != NULL && i < len; i++) {
        p[i] = 0;
    }
    free(buf);
}

/* The node's status as a parsed JSON object, or NULL (then the reason is on stderr). */
static json_object *fetch_status(krs_context_t *ctx)
{
    char *text = NULL;
    int rc = krs_status_json(ctx, &text);
    if (rc != KRS_OK) {
        report("krs_status_json", rc, ctx);
        return NULL;
    }
    json_object *status = json_tokener_parse(text);
    krs_free(text);
    if (status == NULL || !json_object_is_type(status, json_type_object)) {
        fprintf(stderr, "krs_status_example: krs_status_json returned no JSON object\n");
        json_object_put(status);
        return NULL;
    }
    return status;
}

static int is_true(json_object *object, const char *member)
{
    json_object *value = NULL;
    return json_object_object_get_ex(object, member, &value) && json_object_get_boolean(value);
}

/* A string member, or "-" when it is missing or null. */
static const char *text_of(json_object *object, const char *member)
{
    json_object *value = NULL;
    return json_object_object_get_ex(object, member, &value) && json_object_is_type(value, json_type_string)
               ? json_object_get_string(value)
               : "-";
}

/* How many distributions of this run were installed and confirmed to the KDC (the list holds
 * what this context handled, latest first). */
static int count_confirmed(json_object *status)
{
    json_object *list = NULL;
    int n = 0;
    if (json_object_object_get_ex(status, "distributions", &list) && json_object_is_type(list, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            n += is_true(json_object_array_get_idx(list, i), "confirmed");
        }
    }
    return n;
}

/* One aligned "name: value" line; booleans as yes/no, null and "" as "-", Unix times also in UTC. */
static void print_field(const char *prefix, const char *name, json_object *value)
{
    char label[128];
    snprintf(label, sizeof label, "%s%s:", prefix, name);
    printf("%-*s ", LABEL_WIDTH, label);
    switch (json_object_get_type(value)) {
    case json_type_null:
        printf("-\n");
        break;
    case json_type_boolean:
        printf("%s\n", json_object_get_boolean(value) ? "yes" : "no");
        break;
    case json_type_string:
        printf("%s\n", json_object_get_string_len(value) > 0 ? json_object_get_string(value) : "-");
        break;
    case json_type_int: {
        long long n = (long long)json_object_get_int64(value);
        char when[32];
        time_t t = (time_t)n;
        struct tm tm;
        if (strcmp(name, "time") == 0 && gmtime_r(&t, &tm) != NULL &&
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0) {
            printf("%lld (%s)\n", n, when);
        } else {
            printf("%lld\n", n);
        }
        break;
    }
    default:
        printf("%s\n", json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN));
        break;
    }
}

/* The status JSON (see krs_status_json in tdnskrs/krs.h) as name: value lines. Members are
 * printed as they come, so fields a newer library adds show up without a change here. */
static void print_status(json_object *status)
{
    json_object *distributions = NULL, *keys = NULL, *counters = NULL, *audit = NULL;
    json_object_object_foreach(status, name, value) {
        if (strcmp(name, "distributions") == 0) {
            distributions = value;
        } else if (strcmp(name, "audit") == 0) {
            audit = value;
        } else if (strcmp(name, "keys") == 0) {
            keys = value;
        } else if (strcmp(name, "counters") == 0) {
            counters = value;
        } else {
            print_field("", name, value);
        }
    }
    if (json_object_is_type(keys, json_type_array)) {
        size_t n = json_object_array_length(keys);
        printf("%-*s %zu\n", LABEL_WIDTH, "keys:", n);
        for (size_t i = 0; i < n; i++) {
            json_object *key = json_object_array_get_idx(keys, i), *tag = NULL, *alg = NULL;
            json_object_object_get_ex(key, "key_tag", &tag);
            json_object_object_get_ex(key, "algorithm", &alg);
            printf("%-*s %s key tag %d algorithm %d\n", LABEL_WIDTH, "key:", text_of(key, "zone"),
                   json_object_get_int(tag), json_object_get_int(alg));
        }
    }
    if (json_object_is_type(distributions, json_type_array)) {
        printf("%-*s %zu\n", LABEL_WIDTH, "distributions:", json_object_array_length(distributions));
        /* Latest first: element 0 is the last distribution. */
        json_object *last = json_object_array_get_idx(distributions, 0);
        if (json_object_is_type(last, json_type_object)) {
            json_object_object_foreach(last, dname, dvalue) {
                print_field("last_distribution.", dname, dvalue);
            }
        }
    }
    if (json_object_is_type(audit, json_type_array) && json_object_array_length(audit) > 0) {
        /* The audit log's last records, oldest first: the newest is what happened last. */
        size_t n = json_object_array_length(audit);
        json_object *newest = json_object_array_get_idx(audit, n - 1);
        printf("%-*s %zu records, newest: %s %s\n", LABEL_WIDTH, "audit:", n, text_of(newest, "result"),
               text_of(newest, "distribution_id"));
    }
    if (json_object_is_type(counters, json_type_object)) {
        json_object_object_foreach(counters, cname, cvalue) {
            print_field("counters.", cname, cvalue);
        }
    }
}

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A non-negative decimal number, or -1. */
static long parse_count(const char *text)
{
    char *end = NULL;
    long n = strtol(text, &end, 10);
    return (end == text || *end != '\0' || n < 0) ? -1 : n;
}

/* Enrolls if needed, starts, waits, prints the status, stops. Returns the exit status. */
static int run(krs_context_t *ctx, const char *package_file, long seconds, long wait_confirmed)
{
    const krs_host_ops_t ops = {
        .version = KRS_HOST_OPS_VERSION, .size = sizeof ops, .log = log_line, .key_changed = key_changed};
    int rc = krs_set_host_ops(ctx, &ops);
    if (rc != KRS_OK) {
        return report("krs_set_host_ops", rc, ctx);
    }

    /* Enroll once: afterwards STATE_DIR/krs.conf holds the node's identity and keys. */
    json_object *status = fetch_status(ctx);
    if (status == NULL) {
        return 1;
    }
    int enrolled = is_true(status, "enrolled");
    json_object_put(status);
    if (!enrolled) {
        size_t len = 0;
        char *package = read_file(package_file, &len);
        if (package == NULL) {
            fprintf(stderr, "krs_status_example: cannot read %s (missing, unreadable or over %d bytes)\n",
                    package_file, MAX_PACKAGE_SIZE);
            return 1;
        }
        rc = krs_enroll(ctx, package, len);
        wipe_and_free(package, len);
        if (rc != KRS_OK) {
            return report("krs_enroll", rc, ctx);
        }
    }

    /* Handlers before krs_start, so that a signal arriving while it starts is not lost. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if ((rc = krs_start(ctx)) != KRS_OK) {
        return report("krs_start", rc, ctx);
    }
    if ((status = fetch_status(ctx)) == NULL) {
        return 1;
    }
    printf("started: node %s, listening for NOTIFYs on %s\n", text_of(status, "node_id"),
           text_of(status, "notify_listen"));
    fflush(stdout); /* a supervising script waits for this line */
    json_object_put(status);

    /* The library's threads do the work; this thread only watches the clock and the status. */
    const double deadline = monotonic_seconds() + (double)seconds;
    const struct timespec pause = {0, POLL_INTERVAL_MS * 1000000L};
    int reached = wait_confirmed < 0;
    while (!stop_requested && !reached && (seconds < 0 || monotonic_seconds() < deadline)) {
        if (wait_confirmed >= 0) {
            if ((status = fetch_status(ctx)) == NULL) {
                return 1;
            }
            reached = count_confirmed(status) >= wait_confirmed;
            json_object_put(status);
        }
        if (!reached) {
            nanosleep(&pause, NULL);
        }
    }

    /* The status while still listening, then an orderly stop. */
    if ((status = fetch_status(ctx)) == NULL) {
        return 1;
    }
    print_status(status);
    json_object_put(status);
    if ((rc = krs_stop(ctx)) != KRS_OK) {
        return report("krs_stop", rc, ctx);
    }
    if (!reached && !stop_requested) {
        fprintf(stderr, "krs_status_example: %ld confirmed distribution(s) not reached within %ld s\n",
                wait_confirmed, seconds);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"notify", required_argument, NULL, 'n'},  {"set", required_argument, NULL, 's'},
        {"seconds", required_argument, NULL, 't'}, {"wait-confirmed", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *extra[MAX_SETTINGS];
    int nextra = 0;
    const char *notify = NULL;
    long seconds = -1, wait_confirmed = -1;
    int opt;
    while ((opt = getopt_long(argc, argv, "n:s:t:c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'n':
            notify = optarg;
            break;
        case 's':
            if (nextra == MAX_SETTINGS || strchr(optarg, '=') == NULL) {
                fprintf(stderr, "krs_status_example: -s wants KEY=VALUE (at most %d)\n", MAX_SETTINGS);
                return 2;
            }
            extra[nextra++] = optarg;
            break;
        case 't':
            if ((seconds = parse_count(optarg)) < 0) {
                fprintf(stderr, "krs_status_example: -t wants a number of seconds\n");
                return 2;
            }
            break;
        case 'c':
            if ((wait_confirmed = parse_count(optarg)) < 1) {
                fprintf(stderr, "krs_status_example: -c wants a count of at least 1\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind < 2 || argc - optind > 3) {
        usage(stderr);
        return 2;
    }
    const char *state_dir = argv[optind], *package_file = argv[optind + 1];
    const char *key_dir = argc - optind == 3 ? argv[optind + 2] : NULL;

    /* krs_init copies its settings: these buffers only have to live through the call. */
    char state_setting[4096], key_setting[4096], notify_setting[256];
    const char *settings[MAX_SETTINGS + 4];
    int n = 0;
    snprintf(state_setting, sizeof state_setting, "state_dir=%s", state_dir);
    settings[n++] = state_setting;
    if (key_dir != NULL) {
        snprintf(key_setting, sizeof key_setting, "key_dir=%s", key_dir);
        settings[n++] = "key_store=bind";
        settings[n++] = key_setting;
    }
    if (notify != NULL) {
        snprintf(notify_setting, sizeof notify_setting, "notify_listen=%s", notify);
        settings[n++] = notify_setting;
    }
    for (int i = 0; i < nextra; i++) {
        settings[n++] = extra[i]; /* after ours: a later setting overrides an earlier one */
    }

    krs_context_t *ctx = NULL;
    int rc = krs_init(&ctx, n, settings);
    if (rc != KRS_OK) {
        return report("krs_init", rc, NULL); /* NULL: the reason of this thread's failed krs_init */
    }
    int status = run(ctx, package_file, seconds, wait_confirmed);
    krs_cleanup(ctx); /* also stops the listener when run() returned early */
    return status;
}
