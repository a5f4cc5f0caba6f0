// microbench.c (malloc-lab-micro): single-threaded malloc/free
// microbenchmark.
//
// Meant to be run with LD_PRELOAD=<allocator.so> (or nothing, for glibc) by
// `malloc-lab micro`, which interleaves allocators and takes medians. It
// stays C so that the timed loop is nothing but the calls and a byte
// written: no language runtime between the loop and the allocator.
// Workloads:
//
//   pairs    a loop of p = malloc(size); write a byte; free(p).
//            Reports ns per malloc+free pair.
//   batch64  allocate 64 objects of `size` bytes (writing a byte into each),
//            then free all 64, repeated. `fifo` frees them in allocation
//            order, `lifo` in reverse order. Reports ns per object, where one
//            object costs one malloc plus one free.
//
// A size is one number (every object that size) or a range LO-HI: sizes
// drawn uniformly from [LO, HI], from a table of RANDOM_SIZES entries filled
// before timing with a fixed seed, so every allocator gets the same sequence
// and drawing a size costs a load, not a random number generator.
//
// Each workload runs a warm-up (ops/10), then its measured operations split
// into short trials (-t, default 200000 operations, a few milliseconds each),
// each timed with CLOCK_MONOTONIC and with CLOCK_THREAD_CPUTIME_ID.
//
// Output, one line per workload (tab-separated), all times in ns per
// malloc+free pair (pairs) or per object (batch64):
//   result <workload> <size> <ops> <wall_min> <wall_median> <cpu_min> <cpu_median>
// where <size> is as given (16 or 16-256) and min and median are over the
// trials; and first lines naming the library that `malloc` and `free`
// resolve to (dladdr), the CPU it is pinned to and the compiler:
//   malloc_from <path>
//   free_from <path>
//   cpu <n>
//   compiler <version>
// `malloc-lab-micro --probe` prints the machine's rseq facts as JSON
// instead (the same fields as `malloc-lab-workload --probe`).
//
// Built by SwiftPM as the target MallocLabMicro, always with -O2
// -fno-builtin (Package.swift). -fno-builtin keeps the compiler from treating malloc/free as builtins (it
// may otherwise drop a malloc/free pair whose result is unused); the code
// also writes a byte through a volatile pointer into every block and folds
// the pointers into a volatile sink, so nothing can be elided even without
// that flag.
//
// Callgrind: the measured loops live in the noinline functions
// `mb_measure_pairs`, `mb_measure_batch` and their `_random` forms; the
// warm-up runs through `mb_warm_*`. `malloc-lab micro --callgrind` uses
// `valgrind --tool=callgrind --toggle-collect=mb_measure_*` so only the
// measured region is counted.

#define _GNU_SOURCE
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define RANDOM_SIZES 4096 // a power of two: the index is masked

static volatile uintptr_t sink;

static inline void touch(void *p, size_t i) {
    if (p == NULL) {
        fprintf(stderr, "malloc-lab-micro: malloc returned NULL\n");
        exit(2);
    }
    *(volatile unsigned char *)p = (unsigned char)i;
}

// The loop bodies, shared by the warm-up and the measured copies.
static inline __attribute__((always_inline)) void pairs_body(size_t size, size_t n) {
    uintptr_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        void *p = malloc(size);
        touch(p, i);
        acc ^= (uintptr_t)p;
        free(p);
    }
    sink ^= acc;
}

static inline __attribute__((always_inline)) void batch_body(size_t size, size_t rounds, int lifo) {
    void *a[BATCH];
    uintptr_t acc = 0;
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < BATCH; i++) {
            a[i] = malloc(size);
            touch(a[i], i);
            acc ^= (uintptr_t)a[i];
        }
        if (lifo) {
            for (size_t i = BATCH; i-- > 0;) free(a[i]);
        } else {
            for (size_t i = 0; i < BATCH; i++) free(a[i]);
        }
    }
    sink ^= acc;
}

static inline __attribute__((always_inline)) void pairs_random_body(const size_t *sizes, size_t n) {
    uintptr_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        void *p = malloc(sizes[i & (RANDOM_SIZES - 1)]);
        touch(p, i);
        acc ^= (uintptr_t)p;
        free(p);
    }
    sink ^= acc;
}

static inline __attribute__((always_inline)) void batch_random_body(const size_t *sizes, size_t rounds, int lifo) {
    void *a[BATCH];
    uintptr_t acc = 0;
    size_t k = 0;
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < BATCH; i++) {
            a[i] = malloc(sizes[k++ & (RANDOM_SIZES - 1)]);
            touch(a[i], i);
            acc ^= (uintptr_t)a[i];
        }
        if (lifo) {
            for (size_t i = BATCH; i-- > 0;) free(a[i]);
        } else {
            for (size_t i = 0; i < BATCH; i++) free(a[i]);
        }
    }
    sink ^= acc;
}

__attribute__((noinline)) void mb_warm_pairs(size_t size, size_t n) { pairs_body(size, n); }
__attribute__((noinline)) void mb_measure_pairs(size_t size, size_t n) { pairs_body(size, n); }
__attribute__((noinline)) void mb_warm_batch(size_t size, size_t rounds, int lifo) { batch_body(size, rounds, lifo); }
__attribute__((noinline)) void mb_measure_batch(size_t size, size_t rounds, int lifo) { batch_body(size, rounds, lifo); }
__attribute__((noinline)) void mb_warm_pairs_random(const size_t *sizes, size_t n) { pairs_random_body(sizes, n); }
__attribute__((noinline)) void mb_measure_pairs_random(const size_t *sizes, size_t n) { pairs_random_body(sizes, n); }
__attribute__((noinline)) void mb_warm_batch_random(const size_t *sizes, size_t rounds, int lifo) { batch_random_body(sizes, rounds, lifo); }
__attribute__((noinline)) void mb_measure_batch_random(const size_t *sizes, size_t rounds, int lifo) {
    batch_random_body(sizes, rounds, lifo);
}

// Fills `sizes` with values uniform in [lo, hi] (xorshift64*, fixed seed).
static void fill_random_sizes(size_t *sizes, size_t lo, size_t hi) {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < RANDOM_SIZES; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        sizes[i] = lo + (size_t)((x * 0x2545F4914F6CDD1Dull) >> 11) % (hi - lo + 1);
    }
}

static double clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return (n % 2) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static size_t trial_ops = 200000;

// Runs one workload: a warm-up of ~1/10 of the operations, then the measured
// operations split into trials of `trial_ops` each (so that a trial is a few
// milliseconds, shorter than a scheduler time slice: on a busy machine some
// trials run undisturbed). Each trial is timed with CLOCK_MONOTONIC (wall)
// and CLOCK_THREAD_CPUTIME_ID (CPU time of this thread: excludes time spent
// preempted). `ops` is malloc+free pairs (pairs) or objects (batch; trials
// are rounded down to a multiple of 64). `sizes` is NULL for the fixed
// `size`, else the random sizes table. Prints:
//   result <workload> <size label> <ops> <wall_min> <wall_median> <cpu_min> <cpu_median>
// all in ns per pair (pairs) or per object (batch).
static void run_workload(const char *name, const char *label, size_t size, const size_t *sizes, size_t ops) {
    int is_pairs = strcmp(name, "pairs") == 0;
    int is_fifo = strcmp(name, "batch64-fifo") == 0;
    int is_lifo = strcmp(name, "batch64-lifo") == 0;
    if (!is_pairs && !is_fifo && !is_lifo) {
        fprintf(stderr, "malloc-lab-micro: unknown workload %s (pairs, batch64-fifo, batch64-lifo)\n", name);
        exit(2);
    }
    size_t per = trial_ops < ops ? trial_ops : ops;
    if (!is_pairs) per = per / BATCH ? per / BATCH * BATCH : BATCH;
    size_t trials = ops / per ? ops / per : 1;
    double *wall = malloc(trials * sizeof *wall);
    double *cpu = malloc(trials * sizeof *cpu);
    if (!wall || !cpu) exit(2);

    size_t warm = ops / 10 + 1;
    if (sizes) {
        if (is_pairs) mb_warm_pairs_random(sizes, warm);
        else mb_warm_batch_random(sizes, warm / BATCH + 1, is_lifo);
    } else {
        if (is_pairs) mb_warm_pairs(size, warm);
        else mb_warm_batch(size, warm / BATCH + 1, is_lifo);
    }

    for (size_t t = 0; t < trials; t++) {
        double w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        if (sizes) {
            if (is_pairs) mb_measure_pairs_random(sizes, per);
            else mb_measure_batch_random(sizes, per / BATCH, is_lifo);
        } else {
            if (is_pairs) mb_measure_pairs(size, per);
            else mb_measure_batch(size, per / BATCH, is_lifo);
        }
        double c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID), w1 = clock_ns(CLOCK_MONOTONIC);
        wall[t] = (w1 - w0) / (double)per;
        cpu[t] = (c1 - c0) / (double)per;
    }
    // median_of sorts in place, so wall[0] and cpu[0] are then the minima.
    double wmed = median_of(wall, trials), cmed = median_of(cpu, trials);
    printf("result\t%s\t%s\t%zu\t%.3f\t%.3f\t%.3f\t%.3f\n", name, label, trials * per,
           wall[0], wmed, cpu[0], cmed);
    fflush(stdout);
    free(wall);
    free(cpu);
}

static void usage(void) {
    fprintf(stderr,
            "usage: malloc-lab-micro [-n OPS] [-t OPS] [-c CPU] [-q] [-w WORKLOAD:SIZE]...\n"
            "       malloc-lab-micro --probe\n"
            "  -n OPS   malloc+free pairs (or objects) per workload, default 20000000\n"
            "  -t OPS   operations per timed trial, default 200000\n"
            "  -c CPU   pin to this CPU (-1: do not pin); default: the last allowed CPU\n"
            "  -w W:S   workload and size, repeatable; W is pairs, batch64-fifo or\n"
            "           batch64-lifo, S a size in bytes or a range LO-HI of random\n"
            "           sizes. Default: pairs:16 pairs:64 pairs:256\n"
            "           batch64-fifo:16 batch64-lifo:16\n"
            "  -q       do not print the malloc_from line\n");
    exit(2);
}

// The machine's rseq facts, as `malloc-lab-workload --probe` prints them.
static int probe(void) {
    const unsigned int *rseq_size = (const unsigned int *)dlsym(RTLD_DEFAULT, "__rseq_size");
    // rseq(NULL, 0, 0, 0) has a bad length: EINVAL if the call exists.
    long r = syscall(SYS_rseq, NULL, 0, 0, 0);
    printf("{\"glibc_rseq_size\":%u,\"rseq_feature_size\":%lu,\"rseq_syscall\":%s,\"cpus\":%ld}\n",
           rseq_size ? *rseq_size : 0, getauxval(27 /* AT_RSEQ_FEATURE_SIZE */),
           (r == -1 && errno == ENOSYS) ? "false" : "true", sysconf(_SC_NPROCESSORS_ONLN));
    return 0;
}

// Parses "16" or "16-256" (1 <= lo <= hi); 0 on success.
static int parse_size(const char *text, size_t *lo, size_t *hi) {
    char *end;
    errno = 0;
    unsigned long long a = strtoull(text, &end, 10), b = a;
    if (end == text || errno) return -1;
    if (*end == '-') {
        const char *second = end + 1;
        b = strtoull(second, &end, 10);
        if (end == second || errno) return -1;
    }
    if (*end != 0 || a == 0 || b < a) return -1;
    *lo = (size_t)a;
    *hi = (size_t)b;
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--probe") == 0) return probe();
    size_t ops = 20000000;
    long cpu = -2; // -2: pick the last allowed CPU
    int quiet = 0;
    const char *specs[64];
    int nspecs = 0;
    int opt;
    while ((opt = getopt(argc, argv, "n:t:c:w:qh")) != -1) {
        switch (opt) {
        case 'n': ops = strtoull(optarg, NULL, 10); break;
        case 't': trial_ops = strtoull(optarg, NULL, 10); if (trial_ops == 0) usage(); break;
        case 'c': cpu = strtol(optarg, NULL, 10); break;
        case 'w':
            if (nspecs < 64) specs[nspecs++] = optarg;
            break;
        case 'q': quiet = 1; break;
        default: usage();
        }
    }
    if (nspecs == 0) {
        static const char *defaults[] = {"pairs:16", "pairs:64", "pairs:256", "batch64-fifo:16", "batch64-lifo:16"};
        for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) specs[nspecs++] = defaults[i];
    }

    if (cpu != -1) {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (cpu == -2) {
            cpu_set_t allowed;
            if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
                for (int c = CPU_SETSIZE - 1; c >= 0; c--)
                    if (CPU_ISSET(c, &allowed)) { cpu = c; break; }
            }
        }
        if (cpu >= 0) {
            CPU_SET((int)cpu, &set);
            if (sched_setaffinity(0, sizeof set, &set) != 0)
                fprintf(stderr, "malloc-lab-micro: sched_setaffinity(%ld): %s (running unpinned)\n", cpu, strerror(errno));
        }
    }

    if (!quiet) {
        // Which object does `malloc` resolve to in this process? With a
        // preloaded allocator it is that library; without, libc.
        Dl_info info;
        void *(*volatile m)(size_t) = malloc;
        void (*volatile f)(void *) = free;
        const char *mname = dladdr((void *)m, &info) && info.dli_fname ? info.dli_fname : "?";
        printf("malloc_from\t%s\n", mname);
        const char *fname = dladdr((void *)f, &info) && info.dli_fname ? info.dli_fname : "?";
        printf("free_from\t%s\n", fname);
        printf("cpu\t%ld\n", cpu);
        printf("compiler\t%s\n", __VERSION__);
        fflush(stdout);
    }

    static size_t sizes[RANDOM_SIZES];
    for (int i = 0; i < nspecs; i++) {
        char name[64];
        const char *colon = strchr(specs[i], ':');
        const char *label = colon ? colon + 1 : "16";
        size_t len = colon ? (size_t)(colon - specs[i]) : strlen(specs[i]);
        size_t lo, hi;
        if (len >= sizeof name || parse_size(label, &lo, &hi) != 0) {
            fprintf(stderr, "malloc-lab-micro: bad workload %s (WORKLOAD:SIZE or WORKLOAD:LO-HI, sizes from 1)\n", specs[i]);
            exit(2);
        }
        memcpy(name, specs[i], len);
        name[len] = 0;
        if (lo != hi) fill_random_sizes(sizes, lo, hi);
        run_workload(name, label, lo, lo != hi ? sizes : NULL, ops);
    }
    return 0;
}
