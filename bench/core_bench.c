/* core_bench.c -- the library against what people would use instead, timed
 * in one run over loopback TCP to a sink in another process.
 *
 * Workloads (page-cache-warm files, every connection TCP_NODELAY):
 *   large         one transfer of 1 GiB, no head: vs "the limit" (the faster
 *                 of a blocking sendfile loop and poll() + sendfile 2 MiB),
 *                 plus knob variants (max_chunk, copy path, copy buffer size)
 *   SIZE xC       10,000 transfers of SIZE (4 KiB, 16 KiB, 64 KiB, 1 MiB),
 *                 each after a 200-byte HTTP-like head, over C connections on
 *                 one event loop (1, 64, 10,000): a connection starts its next
 *                 transfer when the previous one is done
 *   crossover     raw read+writev vs send(MSG_MORE)+sendfile per body size,
 *                 one blocking connection: where SF_SMALL_BODY_MAX belongs;
 *                 once with the sink discarding, once with it read()ing
 * The sink discards with recv(MSG_TRUNC) (no copy: the sender's costs
 * stand out) except in the "read" crossover.
 * Every cell is checked against the sink's byte counts per connection.
 * Contenders of a workload are interleaved round by round, their order
 * rotating; the table shows medians and the median of per-round ratios.
 * CPU is the sending thread's (getrusage RUSAGE_THREAD, user + system), per
 * GB sent and per transfer.
 *
 * Usage: core_bench [--rounds N] [--quick] [--transfers N] [--large-mib N]
 *                   [--only SUBSTRING] [--contender NAME] [--csv FILE] [--dir DIR]
 *   --only: workloads whose name contains SUBSTRING ("large", "x64", "crossover"),
 *           or, with a leading '=', the one named exactly so ("=64K x1")
 *   --contender: just one contender (for strace -c / perf; ratios then meaningless)
 */
#define _GNU_SOURCE
#include "core_bench.h"

#include <evsendfile.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 64
#define MAX_IN_WORKLOAD 16

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double tmp[MAX_ROUNDS];
    memcpy(tmp, v, (size_t)n * sizeof *v);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static int make_file(const char *dir, uint64_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/core_bench.%llu.XXXXXX", dir, (unsigned long long)size);
    int fd = mkstemp(path);
    if (fd < 0) die(path);
    unlink(path);
    static char block[1 << 20];
    for (size_t i = 0; i < sizeof block; i++) block[i] = (char)(i * 131 + 7);
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < sizeof block ? (size_t)(size - off) : sizeof block;
        if (pwrite(fd, block, n, (off_t)off) != (ssize_t)n) die("pwrite");
        off += n;
    }
    return fd; /* just written: in the page cache */
}

/* An HTTP-like response head of exactly 200 bytes. */
static void make_head(char *h, uint64_t size) {
    int n = snprintf(h, 201,
                     "HTTP/1.1 200 OK\r\nServer: core_bench\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %llu\r\nConnection: keep-alive\r\nX-Pad: ",
                     (unsigned long long)size);
    memset(h + n, 'x', (size_t)(200 - n - 4));
    memcpy(h + 196, "\r\n\r\n", 4);
}

enum ref_kind { REF_LIMIT, REF_BASELINE, REF_CROSSOVER };

struct workload {
    char name[48];
    uint64_t size;
    int transfers, conns, with_head, sink_reads;
    enum ref_kind ref;
    int members[MAX_IN_WORKLOAD];
    int n_members;
};

struct cell {
    double gbps[MAX_ROUNDS], tps[MAX_ROUNDS], cpu[MAX_ROUNDS], cpu_xfer[MAX_ROUNDS]; /* s/GB, us/transfer */
    long note;
};

static void add(struct workload *w, const char *name) {
    int i = contender_index(name);
    if (i < 0) {
        fprintf(stderr, "no contender %s\n", name);
        exit(1);
    }
    w->members[w->n_members++] = i;
}

/* One contender, one round of a workload; checks the sink's counts. */
static void measure(const struct workload *w, int which, int file_fd, struct sink *sk, int *socks,
                    int *per_conn, struct cell *out, int round) {
    const struct contender *k = &contenders[which];
    char head[201];
    make_head(head, w->size);
    uint64_t unit = w->size + (w->with_head ? 200 : 0);
    struct sink_cmd cmd = {w->conns, unit, w->sink_reads};
    sink_expect(sk, &cmd, socks);
    struct spec s = {file_fd, w->size, head, w->with_head ? 200 : 0, w->conns, socks, per_conn,
                     k->evsf_flags, k->max_chunk, k->buf_size};
    long note = 0;
    double c0 = thread_cpu(), t0 = now();
    if (k->run(&s, &note) != 0) {
        fprintf(stderr, "%s failed in %s\n", k->name, w->name);
        exit(1);
    }
    struct sink_report rep;
    sink_wait(sk, &rep);
    double wall = now() - t0, cpu = thread_cpu() - c0;
    for (int i = 0; i < w->conns; i++) close(socks[i]);
    uint64_t want = (uint64_t)w->transfers * unit;
    uint64_t lo = (uint64_t)(w->transfers / w->conns) * unit;
    uint64_t hi = (uint64_t)((w->transfers + w->conns - 1) / w->conns) * unit;
    if (rep.conns != w->conns || rep.not_a_multiple || rep.sum != want || rep.min < lo || rep.max > hi) {
        fprintf(stderr, "%s in %s: the sink got %llu bytes (want %llu) on %d connections, min %llu max %llu\n",
                k->name, w->name, (unsigned long long)rep.sum, (unsigned long long)want, rep.conns,
                (unsigned long long)rep.min, (unsigned long long)rep.max);
        exit(1);
    }
    out->gbps[round] = (double)want / wall / 1e9;
    out->tps[round] = w->transfers / wall;
    out->cpu[round] = cpu / ((double)want / 1e9);
    out->cpu_xfer[round] = cpu / w->transfers * 1e6;
    out->note += note;
}

/* Index (into w->members) of the reference contender in one round. */
static int reference(const struct workload *w, struct cell *cells, int round) {
    int best = -1;
    for (int m = 0; m < w->n_members; m++) {
        const char *n = contenders[w->members[m]].name;
        int eligible = w->ref == REF_LIMIT      ? !strncmp(n, "limit-", 6)
                       : w->ref == REF_BASELINE ? !strncmp(n, "evbuf-", 6) || !strcmp(n, "copy")
                                                : !strcmp(n, "raw-sendfile");
        if (eligible && (best < 0 || cells[m].gbps[round] > cells[best].gbps[round])) best = m;
    }
    return best;
}

static void report(const struct workload *w, struct cell *cells, int rounds, FILE *csv) {
    static const char *ref_name[] = {"the limit (faster of limit-*)",
                                     "the better of evbuf-sendfile, evbuf-mmap, copy", "raw-sendfile"};
    printf("\n== %s: %d x %llu B%s over %d connection%s%s; ratios vs %s, per round ==\n", w->name,
           w->transfers, (unsigned long long)w->size, w->with_head ? " + 200 B head" : "", w->conns,
           w->conns > 1 ? "s" : "", w->sink_reads ? ", sink read()s" : "", ref_name[w->ref]);
    printf("%-19s %8s %7s %12s %9s %10s %9s %9s %s\n", "contender", "GB/s", "spread", "transfers/s", "CPU s/GB",
           "CPU µs/xfer", "GB/s÷ref", "CPU÷ref", "note");
    for (int m = 0; m < w->n_members; m++) {
        double ratio[MAX_ROUNDS], cratio[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) {
            int ref = reference(w, cells, r);
            ratio[r] = ref < 0 ? 0 : cells[m].gbps[r] / cells[ref].gbps[r];
            cratio[r] = ref < 0 ? 0 : cells[m].cpu[r] / cells[ref].cpu[r];
        }
        double g = median(cells[m].gbps, rounds), lo = g, hi = g;
        for (int r = 0; r < rounds; r++) {
            if (cells[m].gbps[r] < lo) lo = cells[m].gbps[r];
            if (cells[m].gbps[r] > hi) hi = cells[m].gbps[r];
        }
        const char *name = contenders[w->members[m]].name;
        char note[64] = "";
        if (cells[m].note && !strncmp(name, "evbuf-", 6))
            snprintf(note, sizeof note, "%ld false EOFs", cells[m].note);
        printf("%-19s %8.3f %6.0f%% %12.0f %9.3f %11.2f %9.3f %9.3f %s\n", name, g, 100 * (hi - lo) / g,
               median(cells[m].tps, rounds), median(cells[m].cpu, rounds), median(cells[m].cpu_xfer, rounds),
               median(ratio, rounds), median(cratio, rounds), note);
        if (csv)
            for (int r = 0; r < rounds; r++)
                fprintf(csv, "%s,%llu,%d,%d,%s,%d,%.6f,%.1f,%.6f,%.3f\n", w->name, (unsigned long long)w->size,
                        w->conns, w->transfers, name, r, cells[m].gbps[r], cells[m].tps[r], cells[m].cpu[r],
                        cells[m].cpu_xfer[r]);
    }
    fflush(stdout);
}

static void run_workload(const struct workload *w, int rounds, const char *dir, struct sink *sk, FILE *csv) {
    int fd = make_file(dir, w->size);
    int *socks = malloc((size_t)w->conns * sizeof *socks);
    int *per_conn = malloc((size_t)w->conns * sizeof *per_conn);
    for (int i = 0; i < w->conns; i++)
        per_conn[i] = w->transfers / w->conns + (i < w->transfers % w->conns);
    struct cell *cells = calloc(MAX_IN_WORKLOAD, sizeof *cells);
    if (w->ref == REF_LIMIT) { /* one untimed pass: page cache and TCP warm */
        struct cell scratch;
        measure(w, w->members[0], fd, sk, socks, per_conn, &scratch, 0);
    }
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < w->n_members; k++) {
            int m = (k + r) % w->n_members; /* rotate the order every round */
            measure(w, w->members[m], fd, sk, socks, per_conn, &cells[m], r);
        }
    report(w, cells, rounds, csv);
    free(cells);
    free(per_conn);
    free(socks);
    close(fd);
}

int main(int argc, char **argv) {
    int rounds = 5, transfers = 10000, quick = 0;
    uint64_t large_mib = 1024;
    const char *only = NULL, *csv_path = NULL, *only_contender = NULL;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            quick = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "usage: %s [--rounds N] [--quick] [--transfers N] [--large-mib N] "
                            "[--only SUBSTRING] [--csv FILE] [--dir DIR]\n", argv[0]);
            return 2;
        }
        if (!strcmp(a, "--rounds")) rounds = atoi(v);
        else if (!strcmp(a, "--transfers")) transfers = atoi(v);
        else if (!strcmp(a, "--large-mib")) large_mib = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--only")) only = v;
        else if (!strcmp(a, "--contender")) only_contender = v;
        else if (!strcmp(a, "--csv")) csv_path = v;
        else if (!strcmp(a, "--dir")) dir = v;
        i++;
    }
    if (quick) {
        rounds = 1;
        transfers = 1000;
        large_mib = 128;
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || transfers < 1) return 2;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile); /* 10,000 connections here, 10,000 in the sink */

    static struct workload ws[64];
    int n_ws = 0;
    struct workload *w = &ws[n_ws++];
    snprintf(w->name, sizeof w->name, "large");
    w->size = large_mib << 20;
    w->transfers = w->conns = 1;
    w->ref = REF_LIMIT;
    static const char *large_members[] = {"limit-blocking", "limit-poll", "evsf-async", "evsf-step",
                                          "evbuf-sendfile", "evbuf-mmap", "copy", "evsf-chunk-256K",
                                          "evsf-chunk-16M", "evsf-nosendfile", "copy-64K", "copy-1M",
                                          "evsf-sendfile", "evsf-sendfile-inline"};
    for (size_t i = 0; i < sizeof large_members / sizeof *large_members; i++) add(w, large_members[i]);
    /* The same transfer to a sink that reads (copies) every byte, as a real
     * same-host peer does: where the per-peer choice (copy path) pays. */
    w = &ws[n_ws++];
    snprintf(w->name, sizeof w->name, "large read");
    w->size = large_mib << 20;
    w->transfers = w->conns = 1;
    w->sink_reads = 1;
    w->ref = REF_LIMIT;
    static const char *large_read_members[] = {"limit-blocking", "limit-poll", "evsf-async", "evsf-sendfile",
                                               "evsf-sendfile-inline", "evsf-nosendfile", "copy"};
    for (size_t i = 0; i < sizeof large_read_members / sizeof *large_read_members; i++) add(w, large_read_members[i]);

    static const uint64_t sizes[] = {4096, 16384, 65536, 1 << 20};
    const int conns[] = {1, 64, quick ? 1000 : 10000};
    for (int c = 0; c < 3; c++)
        for (int z = 0; z < 4; z++) {
            w = &ws[n_ws++];
            snprintf(w->name, sizeof w->name, "%lluK x%d", (unsigned long long)(sizes[z] >> 10), conns[c]);
            w->size = sizes[z];
            w->transfers = transfers;
            w->conns = conns[c] < transfers ? conns[c] : transfers;
            w->with_head = 1;
            w->ref = REF_BASELINE;
            add(w, "evsf-async");
            add(w, "evsf-trusted");
            add(w, "evsf-known");
            if (sizes[z] > SF_SMALL_BODY_MAX) add(w, "evsf-peer-once"); /* the method is asked for larger bodies only */
            add(w, "evsf-handover");
            add(w, "evsf-step");
            if (conns[c] > 64) add(w, "evsf-step-lateshut");
            if (conns[c] > 64) add(w, "evsf-shut"); /* one transfer per connection: the FIN's timing counts */
            add(w, "evbuf-sendfile");
            add(w, "evbuf-mmap");
            add(w, "copy");
            if (sizes[z] > SF_SMALL_BODY_MAX) add(w, "evsf-ownhead");
            if (sizes[z] == 1 << 20) add(w, "evsf-known-sendfile");
        }
    /* 1 MiB again, the sink reading (copying) every byte as a real peer does:
     * the receiver the per-peer rule is made for.  The discarding sink above
     * is the one receiver for which sendfile is cheapest. */
    for (int c = 0; c < 2; c++) {
        w = &ws[n_ws++];
        snprintf(w->name, sizeof w->name, "1024K x%d read", conns[c]);
        w->size = 1 << 20;
        w->transfers = transfers;
        w->conns = conns[c];
        w->with_head = 1;
        w->sink_reads = 1;
        w->ref = REF_BASELINE;
        static const char *read_members[] = {"evsf-async", "evsf-known", "evsf-known-sendfile",
                                             "evbuf-sendfile", "evbuf-mmap", "copy"};
        for (size_t i = 0; i < sizeof read_members / sizeof *read_members; i++) add(w, read_members[i]);
    }
    static const uint64_t xsizes[] = {4096, 8192, 16384, 32768, 65536, 131072, 262144};
    enum { NX = sizeof xsizes / sizeof *xsizes };
    for (int z = 0; z < 2 * NX; z++) { /* the sink discarding, then the sink reading */
        w = &ws[n_ws++];
        snprintf(w->name, sizeof w->name, "crossover %lluK%s", (unsigned long long)(xsizes[z % NX] >> 10),
                 z < NX ? "" : " read");
        w->sink_reads = z >= NX;
        w->size = xsizes[z % NX];
        w->transfers = transfers;
        w->conns = 1;
        w->with_head = 1;
        w->ref = REF_CROSSOVER;
        add(w, "raw-writev");
        add(w, "raw-sendfile");
    }

    if (only_contender) /* for strace/perf: one contender (the reference may be missing) */
        for (int i = 0; i < n_ws; i++) {
            int k = 0;
            for (int m = 0; m < ws[i].n_members; m++)
                if (!strcmp(contenders[ws[i].members[m]].name, only_contender)) ws[i].members[k++] = ws[i].members[m];
            ws[i].n_members = k;
        }
    FILE *csv = NULL;
    if (csv_path) {
        csv = fopen(csv_path, "w");
        if (!csv) die(csv_path);
        fprintf(csv, "workload,size,conns,transfers,contender,round,gbps,tps,cpu_s_per_gb,cpu_us_per_transfer\n");
    }
    struct sink sk;
    sink_start(&sk);
    time_t t = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&t));
    printf("core_bench: %s, evsendfile %s, %d rounds, %d transfers per workload, large %llu MiB, %ld cores\n",
           when, sf_version_text(), rounds, transfers, (unsigned long long)large_mib,
           sysconf(_SC_NPROCESSORS_ONLN));
    for (int i = 0; i < n_ws; i++)
        if (ws[i].n_members && (!only || (only[0] == '=' ? !strcmp(ws[i].name, only + 1) : !!strstr(ws[i].name, only))))
            run_workload(&ws[i], rounds, dir, &sk, csv);
    sink_stop(&sk);
    if (csv) fclose(csv);
    return 0;
}
