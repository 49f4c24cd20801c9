/*
 * libgearman benchmark client and worker: the "libgearman" column of
 * benchmarks/run.py, which compiles this file on first use (cc ... -lgearman).
 *
 *   gmbench WORKLOAD PORT N WARMUP PAYLOAD_BYTES FUNCTION [ROUNDS [START_AT [PREFIX]]]
 *
 * Client workloads (the same arguments and JSON line as php/client.php):
 *   background  gearman_client_do_background N times (one round trip each)
 *   normal      gearman_client_do N times (a worker must serve FUNCTION)
 *   status      gearman_client_job_status of one queued handle N times
 *   tasks       per round, N/ROUNDS gearman_client_add_task_background with the
 *               library's own unique (a UUID per task), then one
 *               gearman_client_run_tasks; GEARMAN_CLIENT_FREE_TASKS is set, as
 *               PHP's extension does, so nothing is kept per task
 *   tasks-u     the same with caller-given uniques PREFIX0, PREFIX1, ...
 *   mem-tasks   add N background tasks (library uniques) and report VmRSS growth
 *               per pending task ("rss_pending_b"), then run them and report
 *               the peak over run_tasks per task ("rss_run_peak_b")
 *   payload     gearman_client_do N times with a PAYLOAD_BYTES workload, each
 *               result freed before the next call; adds "rss_base_kb" (VmRSS
 *               with the payload allocated, before the first call) and
 *               "rss_peak_kb" (VmHWM at the end)
 * Worker workloads:
 *   worker      serve FUNCTION forever, echoing each workload back (the
 *               workload buffer is handed back as the result: no copy)
 *   drain       take WARMUP jobs of FUNCTION untimed, then N timed; each job
 *               completes with an empty result.  The jobs must be queued.
 * Round-trip floor (no library: one blocking TCP socket, TCP_NODELAY, the packets
 * written by hand, replies read into a buffer; the least any client can do):
 *   raw-background  SUBMIT_JOB_BG (unique "r<i>", so nothing coalesces), read JOB_CREATED
 *   raw-normal      SUBMIT_JOB, read JOB_CREATED and packets up to WORK_COMPLETE
 *   raw-status      GET_STATUS of one queued handle, read STATUS_RES
 *
 * START_AT (Unix time, 0 = now) lets several processes start their timed
 * section together.  Prints one JSON line: client, workload, ops, seconds,
 * cpu_user, cpu_sys (getrusage over the timed section), version, and for the
 * pipelined ones run_seconds/run_cpu_* (the run_tasks part), rounds, t_start,
 * t_end, late.
 */
#define _GNU_SOURCE
#include <libgearman-1.0/gearman.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_unix(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void cpu(double *user, double *sys) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* A field of /proc/self/status in kB ("VmRSS", "VmHWM"), or -1. */
static long status_kb(const char *field) {
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "%s failed: %s\n", what, err ? err : "?");
    exit(1);
}

static void wait_until(double start_at) {
    if (start_at > 0) {
        double d = start_at - now_unix();
        if (d > 0) usleep((useconds_t)(d * 1e6));
    }
}

/* ---- worker ------------------------------------------------------------------------------- */

static long drained;

static void *echo_fn(gearman_job_st *job, void *context, size_t *result_size,
                     gearman_return_t *ret_ptr) {
    (void)context;
    void *w = gearman_job_take_workload(job, result_size);
    *ret_ptr = GEARMAN_SUCCESS;
    return w;
}

static void *drain_fn(gearman_job_st *job, void *context, size_t *result_size,
                      gearman_return_t *ret_ptr) {
    (void)job;
    (void)context;
    drained++;
    *result_size = 0;
    *ret_ptr = GEARMAN_SUCCESS;
    return NULL;
}

static int run_worker(const char *workload, int port, long n, long warmup, const char *fn) {
    gearman_worker_st *w = gearman_worker_create(NULL);
    if (!w) die("gearman_worker_create", "out of memory");
    if (gearman_worker_add_server(w, "127.0.0.1", (in_port_t)port) != GEARMAN_SUCCESS)
        die("gearman_worker_add_server", gearman_worker_error(w));
    int drain = strcmp(workload, "drain") == 0;
    if (gearman_worker_add_function(w, fn, 0, drain ? drain_fn : echo_fn, NULL) != GEARMAN_SUCCESS)
        die("gearman_worker_add_function", gearman_worker_error(w));
    if (!drain) {
        for (;;) {
            gearman_return_t rc = gearman_worker_work(w);
            if (rc != GEARMAN_SUCCESS && rc != GEARMAN_IO_WAIT && rc != GEARMAN_NO_JOBS)
                die("gearman_worker_work", gearman_worker_error(w));
        }
    }
    gearman_worker_set_timeout(w, 60000);
    while (drained < warmup) {
        if (gearman_worker_work(w) != GEARMAN_SUCCESS) die("gearman_worker_work", gearman_worker_error(w));
    }
    double u0, s0, u1, s1;
    cpu(&u0, &s0);
    double t0 = now_mono();
    while (drained < warmup + n) {
        if (gearman_worker_work(w) != GEARMAN_SUCCESS) die("gearman_worker_work", gearman_worker_error(w));
    }
    double t1 = now_mono();
    cpu(&u1, &s1);
    printf("{\"client\": \"libgearman\", \"workload\": \"drain\", \"ops\": %ld, \"seconds\": %.9f, "
           "\"cpu_user\": %.6f, \"cpu_sys\": %.6f, \"version\": \"libgearman %s\"}\n",
           n, t1 - t0, u1 - u0, s1 - s0, gearman_version());
    gearman_worker_free(w);
    return 0;
}

/* ---- round-trip floor: a hand-written client on one blocking socket ----------------------- */

static char rbuf[1 << 16];
static size_t rhave, rstart;

static void raw_write(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("send", strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
}

/* The next reply packet: its command; *body and *len point into rbuf. */
static uint32_t raw_read(int fd, const char **body, uint32_t *len) {
    for (;;) {
        size_t avail = rhave - rstart;
        if (avail >= 12) {
            uint32_t cmd, l;
            memcpy(&cmd, rbuf + rstart + 4, 4);
            memcpy(&l, rbuf + rstart + 8, 4);
            cmd = ntohl(cmd);
            l = ntohl(l);
            if (memcmp(rbuf + rstart, "\0RES", 4) != 0) die("raw read", "bad magic");
            if (12 + (size_t)l > sizeof rbuf) die("raw read", "packet too large");
            if (avail >= 12 + (size_t)l) {
                *body = rbuf + rstart + 12;
                *len = l;
                rstart += 12 + l;
                return cmd;
            }
        }
        if (rstart > 0) {
            memmove(rbuf, rbuf + rstart, rhave - rstart);
            rhave -= rstart;
            rstart = 0;
        }
        ssize_t k = recv(fd, rbuf + rhave, sizeof rbuf - rhave, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) die("recv", k == 0 ? "connection closed" : strerror(errno));
        rhave += (size_t)k;
    }
}

static size_t raw_packet(char *out, uint32_t cmd, const char *a, size_t al, const char *b, size_t bl,
                         const char *c, size_t cl, int nargs) {
    size_t len = al + (nargs > 1 ? 1 + bl : 0) + (nargs > 2 ? 1 + cl : 0);
    uint32_t ncmd = htonl(cmd), nlen = htonl((uint32_t)len);
    memcpy(out, "\0REQ", 4);
    memcpy(out + 4, &ncmd, 4);
    memcpy(out + 8, &nlen, 4);
    char *p = out + 12;
    memcpy(p, a, al);
    p += al;
    if (nargs > 1) { *p++ = 0; memcpy(p, b, bl); p += bl; }
    if (nargs > 2) { *p++ = 0; memcpy(p, c, cl); p += cl; }
    return (size_t)(p - out);
}

static int run_raw(const char *workload, int port, long n, long warmup, const char *payload,
                   size_t size, const char *fn) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    size_t cap = 64 + strlen(fn) + size + 64;
    char *pkt = malloc(cap);
    if (!pkt) die("malloc", "out of memory");
    char unique[64], handle[128];
    const char *body;
    uint32_t len, cmd;
    size_t hl = 0, pl = 0;
    int mode = strcmp(workload, "raw-background") == 0 ? 0 : strcmp(workload, "raw-normal") == 0 ? 1 : 2;
    if (mode == 2) {
        /* one queued job whose status is asked */
        pl = raw_packet(pkt, 18, fn, strlen(fn), "", 0, payload, size, 3);
        raw_write(fd, pkt, pl);
        if (raw_read(fd, &body, &len) != 8 || len >= sizeof handle) die("raw", "no JOB_CREATED");
        memcpy(handle, body, len);
        hl = len;
        pl = raw_packet(pkt, 15, handle, hl, NULL, 0, NULL, 0, 1);
    }
    double u0 = 0, s0 = 0, u1, s1, t0 = 0, t1;
    for (long i = 0; i < warmup + n; i++) {
        if (i == warmup) {
            cpu(&u0, &s0);
            t0 = now_mono();
        }
        if (mode == 2) {
            raw_write(fd, pkt, pl);
            if (raw_read(fd, &body, &len) != 20) die("raw", "no STATUS_RES");
            continue;
        }
        int ul = snprintf(unique, sizeof unique, "r%d-%ld", (int)getpid(), i);
        size_t m = raw_packet(pkt, mode == 0 ? 18 : 7, fn, strlen(fn), unique, (size_t)ul,
                              payload, size, 3);
        raw_write(fd, pkt, m);
        if (raw_read(fd, &body, &len) != 8) die("raw", "no JOB_CREATED");
        if (mode == 1) {
            do {
                cmd = raw_read(fd, &body, &len);
                if (cmd == 14 || cmd == 19) die("raw", "job failed");
            } while (cmd != 13);
        }
    }
    t1 = now_mono();
    cpu(&u1, &s1);
    printf("{\"client\": \"floor\", \"workload\": \"%s\", \"ops\": %ld, \"seconds\": %.9f, "
           "\"cpu_user\": %.6f, \"cpu_sys\": %.6f, \"version\": \"raw socket (C)\"}\n",
           workload + 4, n, t1 - t0, u1 - u0, s1 - s0);
    close(fd);
    free(pkt);
    return 0;
}

/* ---- client ------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc < 7 || argc > 10) {
        fprintf(stderr, "usage: gmbench WORKLOAD PORT N WARMUP PAYLOAD_BYTES FUNCTION"
                        " [ROUNDS [START_AT [PREFIX]]]\n");
        return 2;
    }
    const char *workload = argv[1];
    int port = atoi(argv[2]);
    long n = atol(argv[3]);
    long warmup = atol(argv[4]);
    size_t size = (size_t)atoll(argv[5]);
    const char *fn = argv[6];
    long rounds = argc > 7 ? atol(argv[7]) : 1;
    double start_at = argc > 8 ? atof(argv[8]) : 0.0;
    const char *prefix = argc > 9 ? argv[9] : "u";
    if (rounds < 1) rounds = 1;

    if (strcmp(workload, "worker") == 0 || strcmp(workload, "drain") == 0)
        return run_worker(workload, port, n, warmup, fn);

    char *payload = malloc(size ? size : 1);
    if (!payload) die("malloc", "out of memory");
    memset(payload, 'x', size);
    if (strncmp(workload, "raw-", 4) == 0)
        return run_raw(workload, port, n, warmup, payload, size, fn);
    long rss_base = status_kb("VmRSS");

    gearman_client_st *c = gearman_client_create(NULL);
    if (!c) die("gearman_client_create", "out of memory");
    if (gearman_client_add_server(c, "127.0.0.1", (in_port_t)port) != GEARMAN_SUCCESS)
        die("gearman_client_add_server", gearman_client_error(c));
    gearman_client_set_timeout(c, 60000);
    gearman_client_add_options(c, GEARMAN_CLIENT_FREE_TASKS);

    double u0 = 0, s0 = 0, u1 = 0, s1 = 0, t0 = 0, t1 = 0;
    char extra[512] = "";
    gearman_job_handle_t handle;
    gearman_return_t rc;

    if (strcmp(workload, "background") == 0) {
        for (long i = 0; i < warmup; i++)
            if (gearman_client_do_background(c, fn, NULL, payload, size, handle) != GEARMAN_SUCCESS)
                die("doBackground", gearman_client_error(c));
        cpu(&u0, &s0);
        t0 = now_mono();
        for (long i = 0; i < n; i++)
            if (gearman_client_do_background(c, fn, NULL, payload, size, handle) != GEARMAN_SUCCESS)
                die("doBackground", gearman_client_error(c));
        t1 = now_mono();
        cpu(&u1, &s1);
    } else if (strcmp(workload, "normal") == 0 || strcmp(workload, "payload") == 0) {
        int big = strcmp(workload, "payload") == 0;
        size_t got = 0;
        for (long i = 0; i < warmup + n; i++) {
            if (i == warmup) {
                cpu(&u0, &s0);
                t0 = now_mono();
            }
            void *r = gearman_client_do(c, fn, NULL, payload, size, &got, &rc);
            if (rc != GEARMAN_SUCCESS) die("doNormal", gearman_client_error(c));
            if (got != size || (size && memcmp(r, payload, size) != 0)) die("doNormal", "bad echo");
            free(r);
        }
        t1 = now_mono();
        cpu(&u1, &s1);
        if (big)
            snprintf(extra, sizeof extra, ", \"rss_base_kb\": %ld, \"rss_peak_kb\": %ld, \"bytes\": %zu",
                     rss_base, status_kb("VmHWM"), size);
    } else if (strcmp(workload, "status") == 0) {
        bool known = false, running = false;
        uint32_t num = 0, den = 0;
        if (gearman_client_do_background(c, fn, NULL, payload, size, handle) != GEARMAN_SUCCESS)
            die("doBackground", gearman_client_error(c));
        for (long i = 0; i < warmup + n; i++) {
            if (i == warmup) {
                cpu(&u0, &s0);
                t0 = now_mono();
            }
            if (gearman_client_job_status(c, handle, &known, &running, &num, &den) != GEARMAN_SUCCESS)
                die("jobStatus", gearman_client_error(c));
        }
        t1 = now_mono();
        cpu(&u1, &s1);
        if (!known) die("jobStatus", "job unknown");
    } else if (strcmp(workload, "tasks") == 0 || strcmp(workload, "tasks-u") == 0) {
        int own = strcmp(workload, "tasks-u") == 0;
        char unique[GEARMAN_MAX_UNIQUE_SIZE];
        long per = n / rounds;
        n = per * rounds;
        for (long i = 0; i < warmup; i++) {
            snprintf(unique, sizeof unique, "w%s%ld", prefix, i);
            if (!gearman_client_add_task_background(c, NULL, NULL, fn, own ? unique : NULL,
                                                    payload, size, &rc))
                die("addTaskBackground", gearman_client_error(c));
        }
        if (warmup > 0 && gearman_client_run_tasks(c) != GEARMAN_SUCCESS)
            die("runTasks (warmup)", gearman_client_error(c));
        double run_s = 0, run_u = 0, run_k = 0;
        wait_until(start_at);
        cpu(&u0, &s0);
        t0 = now_mono();
        double e0 = now_unix();
        for (long r = 0; r < rounds; r++) {
            for (long i = r * per; i < (r + 1) * per; i++) {
                const char *uq = NULL;
                if (own) {
                    snprintf(unique, sizeof unique, "%s%ld", prefix, i);
                    uq = unique;
                }
                if (!gearman_client_add_task_background(c, NULL, NULL, fn, uq, payload, size, &rc))
                    die("addTaskBackground", gearman_client_error(c));
            }
            double ru0, rk0, ru1, rk1;
            cpu(&ru0, &rk0);
            double ra = now_mono();
            if (gearman_client_run_tasks(c) != GEARMAN_SUCCESS) die("runTasks", gearman_client_error(c));
            run_s += now_mono() - ra;
            cpu(&ru1, &rk1);
            run_u += ru1 - ru0;
            run_k += rk1 - rk0;
        }
        t1 = now_mono();
        double e1 = now_unix();
        cpu(&u1, &s1);
        snprintf(extra, sizeof extra,
                 ", \"run_seconds\": %.9f, \"run_cpu_user\": %.6f, \"run_cpu_sys\": %.6f, "
                 "\"rounds\": %ld, \"t_start\": %.6f, \"t_end\": %.6f, \"late\": %.6f",
                 run_s, run_u, run_k, rounds, e0, e1,
                 start_at > 0 && e0 > start_at ? e0 - start_at : 0.0);
    } else if (strcmp(workload, "mem-tasks") == 0) {
        /* memory of N pending background tasks (library uniques): VmRSS before
           and after adding them, then the peak over run_tasks (VmHWM reset) */
        gearman_client_do_background(c, fn, NULL, payload, size, handle); /* connect */
        long r0 = status_kb("VmRSS");
        cpu(&u0, &s0);
        t0 = now_mono();
        for (long i = 0; i < n; i++)
            if (!gearman_client_add_task_background(c, NULL, NULL, fn, NULL, payload, size, &rc))
                die("addTaskBackground", gearman_client_error(c));
        t1 = now_mono();
        cpu(&u1, &s1);
        long r1 = status_kb("VmRSS");
        FILE *f = fopen("/proc/self/clear_refs", "w");
        if (f) { fputs("5", f); fclose(f); }
        long h0 = status_kb("VmRSS");
        if (gearman_client_run_tasks(c) != GEARMAN_SUCCESS) die("runTasks", gearman_client_error(c));
        snprintf(extra, sizeof extra, ", \"rss_pending_b\": %.1f, \"rss_run_peak_b\": %.1f",
                 1024.0 * (r1 - r0) / (n ? n : 1), 1024.0 * (status_kb("VmHWM") - h0) / (n ? n : 1));
    } else {
        fprintf(stderr, "unknown workload %s\n", workload);
        return 2;
    }
    printf("{\"client\": \"libgearman\", \"workload\": \"%s\", \"ops\": %ld, \"seconds\": %.9f, "
           "\"cpu_user\": %.6f, \"cpu_sys\": %.6f, \"version\": \"libgearman %s\"%s}\n",
           workload, n, t1 - t0, u1 - u0, s1 - s0, gearman_version(), extra);
    gearman_client_free(c);
    free(payload);
    return 0;
}
