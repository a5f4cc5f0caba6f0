// The per-tier lock counters (lock_acquisitions_*, lock_contended_*) count
// real acquisitions. Run preloaded, under any front end:
//
//   lock_counters [pairs] [threads]
//
// Phase 1, one thread: `pairs` malloc/free pairs of small sizes. No other
// thread exists, so no acquisition can have waited: every tier's contended
// count stays where it was. Under the global front end the pairs are served
// by its one cache: the central lists are asked far fewer times than pairs.
// Phase 2, `threads` threads doing the same: under the global front end every
// call takes the global cache's lock, so its acquisitions grow by at least
// 2 x pairs x threads; in every
// tier, contended <= acquisitions. Whether a wait happened is timing: it is
// printed, not checked.
// Exits 1 with a message on stderr on a failed check.
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <swiftmalloc.h>

typedef int (*sized_stats_fn)(struct swiftmalloc_stats *, size_t);
static sized_stats_fn getStatsSized;
static int failures;

#define CHECK(cond, ...)                                                                                    \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            fprintf(stderr, __VA_ARGS__);                                                                   \
            fputc('\n', stderr);                                                                            \
            failures++;                                                                                     \
        }                                                                                                   \
    } while (0)

// The tiers, as (name, acquisitions, contended) of a snapshot.
#define TIERS(X)  \
    X(transfer)   \
    X(central)    \
    X(page_heap)  \
    X(registry)   \
    X(arenas)     \
    X(global)     \
    X(metadata)

static void take(struct swiftmalloc_stats *s) {
    memset(s, 0, sizeof *s);
    if (getStatsSized(s, sizeof *s) != 0) {
        fprintf(stderr, "FAIL: swiftmalloc_get_stats_sized\n");
        exit(1);
    }
}

// Threads in this process (/proc/self/status), 0 if unknown.
static int threadCount(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0) n = atoi(line + 8);
    fclose(f);
    return n;
}

static long pairs;

static void *hammer(void *arg) {
    (void)arg;
    static const size_t sizes[] = {16, 32, 64, 128, 256};
    volatile unsigned char sink = 0;
    for (long i = 0; i < pairs; i++) {
        unsigned char *p = malloc(sizes[i % 5]);
        if (!p) abort();
        p[0] = (unsigned char)i;
        sink ^= p[0];
        free(p);
    }
    return NULL;
}

static void report(const char *phase, const struct swiftmalloc_stats *a, const struct swiftmalloc_stats *b) {
#define PRINT(tier)                                                                                         \
    printf("%s %s acquisitions %llu contended %llu\n", phase, #tier,                                        \
           (unsigned long long)(b->lock_acquisitions_##tier - a->lock_acquisitions_##tier),                 \
           (unsigned long long)(b->lock_contended_##tier - a->lock_contended_##tier));
    TIERS(PRINT)
#undef PRINT
}

static void checkMonotonic(const char *phase, const struct swiftmalloc_stats *a, const struct swiftmalloc_stats *b) {
#define MONO(tier)                                                                                          \
    CHECK(b->lock_acquisitions_##tier >= a->lock_acquisitions_##tier &&                                     \
              b->lock_contended_##tier >= a->lock_contended_##tier,                                         \
          "%s: %s counters went down", phase, #tier);                                                       \
    CHECK(b->lock_contended_##tier <= b->lock_acquisitions_##tier, "%s: %s contended %llu > acquisitions %llu", \
          phase, #tier, (unsigned long long)b->lock_contended_##tier,                                       \
          (unsigned long long)b->lock_acquisitions_##tier);
    TIERS(MONO)
#undef MONO
}

int main(int argc, char **argv) {
    pairs = argc > 1 ? atol(argv[1]) : 100000;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    getStatsSized = (sized_stats_fn)dlsym(RTLD_DEFAULT, "swiftmalloc_get_stats_sized");
    if (!getStatsSized) {
        fprintf(stderr, "FAIL: not running under SwiftMalloc\n");
        return 1;
    }
    const char *frontEnd = ((const char *(*)(void))dlsym(RTLD_DEFAULT, "swiftmalloc_frontend_name"))();
    int global = strcmp(frontEnd, "global") == 0;
    printf("frontend %s\n", frontEnd);

    struct swiftmalloc_stats a, b, c;
    take(&a);
    CHECK(a.version == SWIFTMALLOC_STATS_VERSION && a.version >= 3, "stats version %llu",
          (unsigned long long)a.version);
    // Start-up took the page heap's and the metadata's locks at least.
    CHECK(a.lock_acquisitions_page_heap > 0, "no page heap acquisitions after start-up");

    int alone = threadCount() == 1;
    hammer(NULL);
    alone = alone && threadCount() == 1;
    take(&b);
    report("single", &a, &b);
    checkMonotonic("single", &a, &b);
    if (alone) {
#define UNCONTENDED(tier)                                                                                   \
    CHECK(b.lock_contended_##tier == a.lock_contended_##tier, "single thread: %s contended grew by %llu", #tier, \
          (unsigned long long)(b.lock_contended_##tier - a.lock_contended_##tier));
        TIERS(UNCONTENDED)
#undef UNCONTENDED
    } else {
        printf("single: not alone in the process, contention not checked\n");
    }
    if (global) {
        // One cache for the process: the pairs are served from it, and the
        // central lists are asked only when it runs dry or overflows. (Alone,
        // the process skips the cache's lock, as glibc skips its own.)
        CHECK(b.lock_acquisitions_central - a.lock_acquisitions_central < (uint64_t)pairs,
              "central locks taken %llu times for %ld pairs: the global cache does not cache",
              (unsigned long long)(b.lock_acquisitions_central - a.lock_acquisitions_central), pairs);
    }

    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    for (int i = 0; i < threads; i++)
        if (pthread_create(&ids[i], NULL, hammer, NULL) != 0) return 2;
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    free(ids);
    take(&c);
    report("threads", &b, &c);
    checkMonotonic("threads", &b, &c);
    if (global) {
        CHECK(c.lock_acquisitions_global - b.lock_acquisitions_global >= 2 * (uint64_t)pairs * (uint64_t)threads,
              "global lock taken %llu times for %ld pairs in %d threads",
              (unsigned long long)(c.lock_acquisitions_global - b.lock_acquisitions_global), pairs, threads);
    }
    // Threads registered and left: the registry's lock was taken.
    CHECK(c.lock_acquisitions_registry > b.lock_acquisitions_registry || threads == 0,
          "thread registry lock not taken by %d threads", threads);
    printf("lock_counters %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
