/* tcpflood — a small TCP load generator for the soak suite (Tests/soak/run.sh).
 *
 * Modes:
 *   flood  N connections, C at a time: connect, send one length-prefixed DNS query
 *          (RFC 1035 §4.2.2), read the answer (or the server's close), close with an RST
 *          (SO_LINGER 0: no TIME_WAIT, so 100,000 connections do not exhaust ports).
 *   drip   keep N connections open for D seconds, each sending one byte of a 512-byte message
 *          every I seconds (a slowloris); a connection the server closes is opened again at
 *          once, as a persistent attacker would.
 *   query  one connection, one query; prints the time to the answer; exit 0 when answered
 *          within the per-connection timeout.
 *
 * Source addresses: -S A.B.C.D/K binds connection i to A.B.C.(D + i % K) (loopback only:
 * 127.0.0.0/8 is all local), so that a per-source connection limit is or is not hit on purpose.
 *
 * Output: one line "tcpflood: mode=… started=… answered=… closed=… refused=… timeouts=…
 * elapsed=…" on stdout. Exit status 0, except: query mode without an answer (1), bad usage (2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum phase { IDLE, CONNECTING, READING, DRIPPING };

struct slot {
    int fd;
    enum phase phase;
    double deadline;   /* flood/query: the connection gives up then */
    double next_drip;  /* drip: when the next byte goes out */
    int dripped;       /* drip: bytes of the message sent so far */
    unsigned char buf[4096];
    size_t have;
    double started;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct in_addr server_ip, source_base;
static int server_port, source_count;
static unsigned char query[512];
static size_t query_len;
static unsigned long seq;

static void usage(void) {
    fprintf(stderr,
            "usage: tcpflood [-m flood|drip|query] [-n N] [-c C] [-q QNAME] [-S A.B.C.D/K]\n"
            "                [-w CONN_TIMEOUT] [-T TOTAL_LIMIT] [-d DRIP_SECONDS] [-i DRIP_INTERVAL] HOST PORT\n");
    exit(2);
}

/* A QUERY for QNAME/SOA/IN with a random ID, framed with its 2-byte length. */
static void build_query(const char *qname) {
    unsigned char *p = query + 2;
    unsigned id = (unsigned)rand() & 0xFFFF;
    unsigned char header[12] = {(unsigned char)(id >> 8), (unsigned char)id, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(p, header, 12);
    p += 12;
    const char *label = qname;
    while (*label) {
        const char *dot = strchr(label, '.');
        size_t len = dot ? (size_t)(dot - label) : strlen(label);
        if (len == 0 || len > 63 || (size_t)(p - query) + len + 8 > sizeof query) break;
        *p++ = (unsigned char)len;
        memcpy(p, label, len);
        p += len;
        label += len + (dot ? 1 : 0);
    }
    *p++ = 0;
    *p++ = 0; *p++ = 6;  /* SOA */
    *p++ = 0; *p++ = 1;  /* IN */
    size_t msg = (size_t)(p - query) - 2;
    query[0] = (unsigned char)(msg >> 8);
    query[1] = (unsigned char)msg;
    query_len = msg + 2;
}

/* Opens a non-blocking connection; -1 when the socket cannot even be created or bound. */
static int open_connection(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (source_count > 0) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
        src.sin_addr.s_addr = htonl(ntohl(source_base.s_addr) + (uint32_t)(seq % (unsigned long)source_count));
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            return -1;
        }
    }
    seq++;
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server_port), .sin_addr = server_ip};
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -2;
    }
    return fd;
}

int main(int argc, char **argv) {
    const char *mode = "flood", *qname = ".";
    long total = 1000, conc = 32;
    double conn_timeout = 2, total_limit = 600, drip_seconds = 10, drip_interval = 1;
    int opt;
    while ((opt = getopt(argc, argv, "m:n:c:q:S:w:T:d:i:")) != -1) {
        switch (opt) {
        case 'm': mode = optarg; break;
        case 'n': total = atol(optarg); break;
        case 'c': conc = atol(optarg); break;
        case 'q': qname = optarg; break;
        case 'S': {
            char base[64];
            const char *slash = strchr(optarg, '/');
            if (!slash || (size_t)(slash - optarg) >= sizeof base) usage();
            memcpy(base, optarg, (size_t)(slash - optarg));
            base[slash - optarg] = 0;
            if (inet_pton(AF_INET, base, &source_base) != 1) usage();
            source_count = atoi(slash + 1);
            if (source_count < 1) usage();
            break;
        }
        case 'w': conn_timeout = atof(optarg); break;
        case 'T': total_limit = atof(optarg); break;
        case 'd': drip_seconds = atof(optarg); break;
        case 'i': drip_interval = atof(optarg); break;
        default: usage();
        }
    }
    if (optind + 2 != argc || inet_pton(AF_INET, argv[optind], &server_ip) != 1) usage();
    server_port = atoi(argv[optind + 1]);
    int drip = strcmp(mode, "drip") == 0, single = strcmp(mode, "query") == 0;
    if (!drip && !single && strcmp(mode, "flood") != 0) usage();
    if (single) total = conc = 1;
    if (drip) conc = total;
    if (total < 1 || conc < 1 || conc > 100000 || server_port <= 0 || server_port > 65535) usage();
    srand((unsigned)(now() * 1e6));
    build_query(qname);

    struct slot *slots = calloc((size_t)conc, sizeof *slots);
    struct pollfd *fds = calloc((size_t)conc, sizeof *fds);
    if (!slots || !fds) return 2;
    for (long i = 0; i < conc; i++) slots[i].fd = -1;

    long started = 0, answered = 0, closed = 0, refused = 0, timeouts = 0, reopened = 0;
    double t0 = now(), end = t0 + (drip ? drip_seconds : total_limit), answer_time = -1;
    for (;;) {
        double t = now();
        if (t >= end) break;
        /* Fill free slots. */
        for (long i = 0; i < conc; i++) {
            struct slot *s = &slots[i];
            if (s->fd >= 0 || (!drip && started >= total)) continue;
            int fd = open_connection();
            if (fd < 0) {
                refused++;
                if (!drip) started++;
                continue;
            }
            if (drip && started >= total) reopened++;
            started++;
            s->fd = fd;
            s->phase = CONNECTING;
            s->have = 0;
            s->dripped = 0;
            s->started = t;
            s->deadline = t + conn_timeout;
            s->next_drip = t;
        }
        long open = 0;
        int wait_ms = 100;
        for (long i = 0; i < conc; i++) {
            struct slot *s = &slots[i];
            fds[i].fd = s->fd;
            fds[i].revents = 0;
            fds[i].events = 0;
            if (s->fd < 0) continue;
            open++;
            if (s->phase == CONNECTING) fds[i].events = POLLOUT;
            else if (s->phase == READING) fds[i].events = POLLIN;
            else {
                fds[i].events = POLLIN;  /* the server's close */
                int ms = (int)((s->next_drip - t) * 1000) + 1;
                if (ms < wait_ms) wait_ms = ms < 0 ? 0 : ms;
            }
        }
        if (open == 0 && !drip && started >= total) break;
        poll(fds, (nfds_t)conc, wait_ms);
        t = now();
        for (long i = 0; i < conc; i++) {
            struct slot *s = &slots[i];
            if (s->fd < 0) continue;
            int done = 0;  /* 1 answered, 2 closed by the server, 3 refused, 4 timeout */
            if (s->phase == CONNECTING && fds[i].revents) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) done = 3;
                else if (drip) s->phase = DRIPPING;
                else if (send(s->fd, query, query_len, MSG_NOSIGNAL) == (ssize_t)query_len) s->phase = READING;
                else done = 2;
            } else if (s->phase == READING && fds[i].revents) {
                ssize_t n = recv(s->fd, s->buf + s->have, sizeof s->buf - s->have, 0);
                if (n > 0) {
                    s->have += (size_t)n;
                    if (s->have >= 2 && s->have >= 2 + (size_t)(s->buf[0] << 8 | s->buf[1])) done = 1;
                    else if (s->have == sizeof s->buf) done = 1;  /* a long answer: enough of it */
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    done = 2;
                }
            } else if (s->phase == DRIPPING) {
                if (fds[i].revents) {
                    char junk[256];
                    ssize_t n = recv(s->fd, junk, sizeof junk, MSG_DONTWAIT);
                    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) done = 2;
                }
                if (!done && t >= s->next_drip) {
                    /* A 512-byte message announced, then its bytes one at a time. */
                    unsigned char b = s->dripped == 0 ? 0x02 : 0x00;
                    if (send(s->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) s->dripped++;
                    else if (errno != EAGAIN) done = 2;
                    s->next_drip = t + drip_interval;
                }
            }
            if (!done && s->phase != DRIPPING && t >= s->deadline) done = 4;
            if (!done && s->phase == CONNECTING && t >= s->deadline) done = 4;
            if (done) {
                if (done == 1) {
                    answered++;
                    answer_time = t - s->started;
                } else if (done == 2) closed++;
                else if (done == 3) refused++;
                else timeouts++;
                close(s->fd);
                s->fd = -1;
            }
        }
    }
    long still_open = 0;
    for (long i = 0; i < conc; i++) {
        if (slots[i].fd >= 0) {
            still_open++;
            close(slots[i].fd);
        }
    }
    printf("tcpflood: mode=%s started=%ld answered=%ld closed=%ld refused=%ld timeouts=%ld open=%ld reopened=%ld elapsed=%.2f",
           mode, started, answered, closed, refused, timeouts, still_open, reopened, now() - t0);
    if (single) printf(" answer_time=%.3f", answer_time);
    printf("\n");
    free(slots);
    free(fds);
    return single && answered != 1 ? 1 : 0;
}
