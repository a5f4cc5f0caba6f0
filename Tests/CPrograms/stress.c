// stress.c — multi-threaded allocation stress with content checks and
// cross-thread frees.
//
// Usage: stress [threads [operations-per-thread [seed [profile]]]]
//   defaults: 8 threads, 1,300,000 operations each (10.4 million in all), seed 1,
//   profile "small" (mostly small sizes); profile "large" makes about one
//   allocation in five larger than 64 KiB (page heap and large-block paths).
//
// Each thread keeps a table of live objects and, driven by a fixed-seed PRNG,
// allocates (malloc, calloc, aligned, realloc), checks and frees them. Sizes run
// from 1 byte to 1 MiB on a skewed distribution (mostly small). Every object
// is filled with a pattern derived from its address and size, and the pattern
// is checked before the object is freed or reallocated. About a fifth of the
// objects are swapped into a shared, lock-protected exchange instead of being
// freed; whichever thread takes them out later checks and frees them, so many
// objects are freed by a thread other than the one that allocated them.
//
// At the end, if the process runs under libSwiftMalloc (found with
// dlsym(RTLD_DEFAULT, "swiftmalloc_get_stats")), in_use_bytes must be the
// same as before the threads started. Prints a summary line
//   "ops: N cross_thread_frees: N errors: N"
// then, under the library, "frontend: NAME" and
//   "in_use_before: N in_use_after: N allocations: N frees: N threads_seen: N"
// (or "stats: unavailable" without it), and exits 1 on any mismatch.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <swiftmalloc.h>
#include "test_support.h"

// A failed realloc leaves the old block valid; GCC cannot know that it failed.
#pragma GCC diagnostic ignored "-Wuse-after-free"

#define LOCAL_SLOTS 2048
#define STRIPES 64
#define STRIPE_ENTRIES 16
#define MAX_SIZE ((size_t)1 << 20)

typedef struct {
    unsigned char *ptr;
    size_t size;
    int owner;  // thread that allocated it
} object_t;

typedef struct {
    pthread_mutex_t lock;
    object_t entries[STRIPE_ENTRIES];
    char pad[64];
} stripe_t;

static stripe_t exchange[STRIPES];
static atomic_ulong errors;
static atomic_ulong crossFrees;
static atomic_ulong totalOps;
static unsigned long opsPerThread = 1300000;
static uint64_t baseSeed = 1;
static pthread_barrier_t startLine;

static uint64_t next(uint64_t *s) {  // splitmix64
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int largeProfile;

// Mostly small: 85% 1..128, 12% 129..4096, ~3% 4 KiB..64 KiB, 1 in 4000 up to 1 MiB.
// Large profile: 40% 1..128, 20% 129..4096, 20% 4 KiB..64 KiB, 20% up to 1 MiB.
static size_t pickSize(uint64_t *s) {
    uint64_t r = next(s);
    unsigned bucket = (unsigned)(r % 4000);
    uint64_t v = r >> 16;
    if (largeProfile) {
        if (bucket < 1600) return 1 + v % 128;
        if (bucket < 2400) return 129 + v % (4096 - 128);
        if (bucket < 3200) return 4097 + v % (65536 - 4096);
        return 65537 + v % (MAX_SIZE - 65536);
    }
    if (bucket < 3400) return 1 + v % 128;
    if (bucket < 3880) return 129 + v % (4096 - 128);
    if (bucket < 3999) return 4097 + v % (65536 - 4096);
    return 65537 + v % (MAX_SIZE - 65536);
}

static uint64_t seedFor(const void *p, size_t n) {
    return ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)n << 17) ^ 0xA5A5A5A5u;
}

static void fill(unsigned char *p, size_t n) {
    uint64_t x = seedFor(p, n);
    size_t words = n / 8;
    uint64_t *w = (uint64_t *)(void *)p;
    for (size_t i = 0; i < words; i++) {
        uint64_t v = x + i * 0xD1B54A32D192ED03ull;
        memcpy(&w[i], &v, 8);
    }
    for (size_t i = words * 8; i < n; i++) p[i] = (unsigned char)(x >> (i % 8 * 8)) ^ (unsigned char)i;
}

// Checks the pattern written by fill(origin, n) — origin is the address the
// data was written at, which differs from p after realloc moved it.
static int check(const unsigned char *p, const void *origin, size_t originSize, size_t n, const char *what,
                 int thread) {
    uint64_t x = seedFor(origin, originSize);
    size_t words = n / 8;
    size_t fullWords = originSize / 8;
    for (size_t i = 0; i < words && i < fullWords; i++) {
        uint64_t v = x + i * 0xD1B54A32D192ED03ull, got;
        memcpy(&got, p + i * 8, 8);
        if (got != v) {
            printf("CORRUPT %s thread %d: object %p (size %zu) word %zu is %016" PRIx64 ", want %016" PRIx64 "\n",
                   what, thread, (void *)p, n, i, got, v);
            atomic_fetch_add(&errors, 1);
            return 0;
        }
    }
    size_t start = (words < fullWords ? words : fullWords) * 8;
    for (size_t i = start; i < n; i++) {
        unsigned char want = (unsigned char)(x >> (i % 8 * 8)) ^ (unsigned char)i;
        if (i < fullWords * 8) {
            uint64_t v = x + (i / 8) * 0xD1B54A32D192ED03ull;
            memcpy(&want, (unsigned char *)&v + i % 8, 1);
        }
        if (p[i] != want) {
            printf("CORRUPT %s thread %d: object %p (size %zu) byte %zu is %02x, want %02x\n", what, thread,
                   (void *)p, n, i, p[i], want);
            atomic_fetch_add(&errors, 1);
            return 0;
        }
    }
    return 1;
}

static void checkAndFree(object_t o, int thread) {
    check(o.ptr, o.ptr, o.size, o.size, "before free", thread);
    if (o.owner != thread) atomic_fetch_add(&crossFrees, 1);
    free(o.ptr);
}

static unsigned char *allocate(uint64_t *s, size_t n, int thread) {
    unsigned kind = (unsigned)(next(s) % 16);
    unsigned char *p;
    if (kind == 0) {
        p = calloc(1, n);
        if (p) {
            for (size_t i = 0; i < n; i++)
                if (p[i] != 0) {
                    printf("CORRUPT calloc thread %d: %p (size %zu) byte %zu is %02x\n", thread, (void *)p, n, i,
                           p[i]);
                    atomic_fetch_add(&errors, 1);
                    break;
                }
        }
    } else if (kind == 1) {
        size_t alignment = (size_t)16 << (next(s) % 9);  // 16 .. 4096
        void *q = NULL;
        if (posix_memalign(&q, alignment, n) != 0) q = NULL;
        p = q;
        if (p && ((uintptr_t)p & (alignment - 1)) != 0) {
            printf("MISALIGNED thread %d: posix_memalign(%zu, %zu) = %p\n", thread, alignment, n, (void *)p);
            atomic_fetch_add(&errors, 1);
        }
    } else {
        p = malloc(n);
        if (p && n >= 16 && ((uintptr_t)p & 15) != 0) {
            printf("MISALIGNED thread %d: malloc(%zu) = %p\n", thread, n, (void *)p);
            atomic_fetch_add(&errors, 1);
        }
    }
    if (!p) {
        printf("NULL thread %d: allocation of %zu bytes failed\n", thread, n);
        atomic_fetch_add(&errors, 1);
        return NULL;
    }
    if (malloc_usable_size(p) < n) {
        printf("USABLE thread %d: %p usable %zu < %zu\n", thread, (void *)p, malloc_usable_size(p), n);
        atomic_fetch_add(&errors, 1);
    }
    fill(p, n);
    return p;
}

static void *worker(void *arg) {
    int thread = (int)(intptr_t)arg;
    uint64_t s = baseSeed * 1000003u + (uint64_t)thread * 7919u;
    object_t *local = calloc(LOCAL_SLOTS, sizeof(object_t));
    unsigned long ops = 0;
    pthread_barrier_wait(&startLine);
    while (ops < opsPerThread) {
        uint64_t r = next(&s);
        size_t slot = r % LOCAL_SLOTS;
        unsigned action = (unsigned)((r >> 32) % 100);
        object_t *o = &local[slot];
        if (o->ptr == NULL) {
            size_t n = pickSize(&s);
            o->ptr = allocate(&s, n, thread);
            o->size = o->ptr ? n : 0;
            o->owner = thread;
            ops++;
        } else if (action < 20) {
            // Swap it into the exchange; free whatever was there (often
            // another thread's object).
            stripe_t *st = &exchange[(r >> 8) % STRIPES];
            size_t e = (r >> 20) % STRIPE_ENTRIES;
            pthread_mutex_lock(&st->lock);
            object_t old = st->entries[e];
            st->entries[e] = *o;
            pthread_mutex_unlock(&st->lock);
            o->ptr = NULL;
            if (old.ptr) {
                checkAndFree(old, thread);
                ops++;
            }
        } else if (action < 26) {
            // realloc to a new size: check, move, check the kept prefix.
            size_t n = pickSize(&s);
            if (!check(o->ptr, o->ptr, o->size, o->size, "before realloc", thread)) {
                free(o->ptr);
                o->ptr = NULL;
                continue;
            }
            unsigned char *oldPtr = o->ptr;
            unsigned char *q = realloc(o->ptr, n);
            ops++;
            if (!q) {
                printf("NULL thread %d: realloc(%p, %zu) failed\n", thread, (void *)oldPtr, n);
                atomic_fetch_add(&errors, 1);
                continue;
            }
            size_t keep = n < o->size ? n : o->size;
            check(q, oldPtr, o->size, keep, "after realloc", thread);
            fill(q, n);
            o->ptr = q;
            o->size = n;
        } else {
            checkAndFree(*o, thread);
            o->ptr = NULL;
            ops++;
        }
    }
    for (size_t i = 0; i < LOCAL_SLOTS; i++)
        if (local[i].ptr) {
            checkAndFree(local[i], thread);
            ops++;
        }
    free(local);
    atomic_fetch_add(&totalOps, ops);
    return NULL;
}

static void *idle(void *arg) { return arg; }

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 8;
    if (argc > 2) opsPerThread = strtoul(argv[2], NULL, 10);
    if (argc > 3) baseSeed = strtoull(argv[3], NULL, 10);
    if (argc > 4) largeProfile = strcmp(argv[4], "large") == 0;
    if (threads < 1) threads = 1;
    int (*getStats)(struct swiftmalloc_stats *) =
        (int (*)(struct swiftmalloc_stats *))dlsym(RTLD_DEFAULT, "swiftmalloc_get_stats");
    for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&exchange[i].lock, NULL);
    pthread_barrier_init(&startLine, NULL, (unsigned)threads);

    // Warm-up that allocates what the C library keeps for good: the stdout
    // buffer, and the thread stacks (with their TLS) that glibc caches and
    // reuses for the same number of threads of the same stack size.
    printf("stress: %d threads, %lu operations each, seed %" PRIu64 ", profile %s\n", threads, opsPerThread,
           baseSeed, largeProfile ? "large" : "small");
    fflush(stdout);
    run_threads(threads, idle);

    struct swiftmalloc_stats before = {0}, after = {0};
    if (getStats && getStats(&before) != 0) {
        printf("swiftmalloc_get_stats failed\n");
        return 1;
    }
    run_threads(threads, worker);
    // Whatever is left in the exchange is freed here, by the main thread.
    for (int i = 0; i < STRIPES; i++)
        for (int e = 0; e < STRIPE_ENTRIES; e++)
            if (exchange[i].entries[e].ptr) {
                checkAndFree(exchange[i].entries[e], -1);
                exchange[i].entries[e].ptr = NULL;
                atomic_fetch_add(&totalOps, 1);
            }
    if (getStats && getStats(&after) != 0) {
        printf("swiftmalloc_get_stats failed\n");
        return 1;
    }
    unsigned long failed = atomic_load(&errors);
    printf("ops: %lu cross_thread_frees: %lu errors: %lu\n", atomic_load(&totalOps), atomic_load(&crossFrees),
           failed);
    if (getStats) {
        const char *(*frontendName)(void) =
            (const char *(*)(void))dlsym(RTLD_DEFAULT, "swiftmalloc_frontend_name");
        printf("frontend: %s\n", frontendName ? frontendName() : "unknown");
        printf("in_use_before: %" PRIu64 " in_use_after: %" PRIu64 " allocations: %" PRIu64 " frees: %" PRIu64
               " threads_seen: %" PRIu64 "\n",
               before.in_use_bytes, after.in_use_bytes, after.allocations - before.allocations,
               after.frees - before.frees, after.threads_seen);
        if (before.in_use_bytes != after.in_use_bytes) {
            printf("LEAK in_use_bytes before %" PRIu64 " != after %" PRIu64 "\n", before.in_use_bytes,
                   after.in_use_bytes);
            failed++;
        }
    } else {
        printf("stats: unavailable\n");
    }
    return failed ? 1 : 0;
}
