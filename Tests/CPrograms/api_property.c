// api_property.c — a randomized, multi-threaded property test of the C API
// against a shadow model.
//
// Usage: api_property [threads [operations-per-thread [seed]]]
//   defaults: 4 threads, 40,000 operations each, seed 1.
//
// Each thread runs a random sequence (xorshift PRNG seeded from the seed and
// the thread's number: a run is reproducible from its seed, which is printed
// first) of malloc, calloc, realloc (grow, shrink, to 0, from NULL), memalign,
// posix_memalign, aligned_alloc and free on a table of live blocks of its own,
// and hands blocks to other threads through a lock-protected mailbox.
//
// The shadow model keeps, for every live block, the size asked for, the
// alignment asked for and a tag derived from (thread, operation index); the
// block's bytes are a pattern of that tag. Checked on every step:
//   * a block the step touches (freed, reallocated, posted, taken) holds its
//     whole pattern; a realloc keeps min(old, new) bytes; calloc memory is zero;
//   * a new block is aligned (16 bytes, 8 for requests of 1–8 bytes, as
//     <swiftmalloc.h> documents; the alignment asked for by the memalign
//     family), malloc_usable_size(p) >= the size asked for;
//   * a new block's usable range overlaps no other live block of the thread
//     (a sorted interval array per thread);
// and every SWEEP_EVERY operations the thread checks the content of every
// block it holds, and every GLOBAL_EVERY operations one thread locks every
// table and the mailbox and checks that no two live blocks of the process
// overlap.
// realloc(p, 0) follows <swiftmalloc.h> (and glibc): it frees p and returns NULL.
//
// At the end every block is freed. Prints
//   "checks: N failures: F"
//   "ops: N handoffs: N"
// and, under libSwiftMalloc, "frontend: NAME" and
//   "in_use_before: N in_use_after: N allocations: N frees: N"
// A failure prints "FAIL seed S thread T step I: ..." (at most 30 such lines)
// and the program exits 1.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <swiftmalloc.h>
#include "test_support.h"

#pragma GCC diagnostic ignored "-Wuse-after-free"

#define MAX_THREADS 16
#define SLOTS 192
#define MAILBOX 64
#define SWEEP_EVERY 1024
#define GLOBAL_EVERY 4096
#define MAX_FAIL_LINES 30

typedef struct {
    unsigned char *ptr;
    size_t size;       // asked for
    size_t alignment;  // asked for (0: malloc alignment)
    uint64_t tag;      // pattern
    size_t usable;     // malloc_usable_size at allocation
} block_t;

typedef struct {
    pthread_mutex_t lock;  // held by its thread while it changes the table; by the global check
    block_t blocks[SLOTS];
    int count;
    // Sorted (by address) usable ranges of the live blocks, for overlap checks.
    uintptr_t starts[SLOTS];
    uintptr_t ends[SLOTS];
    int ranges;
    char pad[64];
} table_t;

static table_t tables[MAX_THREADS];
static pthread_mutex_t mailboxLock = PTHREAD_MUTEX_INITIALIZER;
static block_t mailbox[MAILBOX];
static int mailboxCount;

static uint64_t seed = 1;
static unsigned long opsPerThread = 40000;
static int threadCount = 4;
static atomic_ulong checks, failures, totalOps, handoffs;
static pthread_barrier_t startLine;

typedef struct {
    int thread;
    unsigned long step;
    const char *op;
    uint64_t rng;
} ctx_t;

static void fail(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(ctx_t *c, const char *fmt, ...) {
    unsigned long n = atomic_fetch_add(&failures, 1);
    if (n >= MAX_FAIL_LINES) return;
    char text[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    flockfile(stdout);
    printf("FAIL seed %" PRIu64 " thread %d step %lu (%s): %s\n", seed, c->thread, c->step, c->op, text);
    fflush(stdout);
    funlockfile(stdout);
}



static uint64_t next(ctx_t *c) {
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return x;
}
static uint64_t below(ctx_t *c, uint64_t n) { return next(c) % n; }

// ---------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------

static inline uint64_t patternWord(uint64_t tag, size_t index) {
    uint64_t x = tag ^ (index * 0x9E3779B97F4A7C15ull);
    x ^= x >> 29;
    return x;
}

static void fill(unsigned char *p, size_t size, uint64_t tag) {
    size_t words = size / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w = patternWord(tag, i);
        memcpy(p + i * 8, &w, 8);
    }
    if (size % 8) {
        uint64_t w = patternWord(tag, words);
        memcpy(p + words * 8, &w, size % 8);
    }
}

// Checks the first `size` bytes of p against the pattern of `tag`; reports
// the first wrong byte.
static int verifyPattern(ctx_t *c, const unsigned char *p, size_t size, uint64_t tag, const char *what) {
    atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);
    size_t words = size / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, p + i * 8, 8);
        if (w != patternWord(tag, i)) {
            uint64_t want = patternWord(tag, i);
            size_t b = 0;
            while (((const unsigned char *)&w)[b] == ((const unsigned char *)&want)[b]) b++;
            fail(c, "%s: block %p (size %zu) byte %zu is %02x, want %02x", what, (const void *)p, size, i * 8 + b,
                 ((const unsigned char *)&w)[b], ((const unsigned char *)&want)[b]);
            return 0;
        }
    }
    if (size % 8) {
        uint64_t want = patternWord(tag, words);
        for (size_t b = 0; b < size % 8; b++)
            if (p[words * 8 + b] != ((const unsigned char *)&want)[b]) {
                fail(c, "%s: block %p (size %zu) byte %zu is %02x, want %02x", what, (const void *)p, size,
                     words * 8 + b, p[words * 8 + b], ((const unsigned char *)&want)[b]);
                return 0;
            }
    }
    return 1;
}

static uint64_t makeTag(int thread, unsigned long step, int sub) {
    uint64_t x = seed * 0xD1B54A32D192ED03ull ^ ((uint64_t)thread << 48) ^ ((uint64_t)step << 4) ^ (uint64_t)sub;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    return x | 1;
}

// ---------------------------------------------------------------------------
// Sizes and alignments
// ---------------------------------------------------------------------------

// Skewed: mostly 1–1024 (more of them small), some up to 64 KiB, a few 1–4 MiB.
static size_t drawSize(ctx_t *c) {
    uint64_t r = below(c, 1000);
    if (r < 5) return 0;
    if (r < 600) return 1 + below(c, 128);
    if (r < 850) return 1 + below(c, 1024);
    if (r < 995) return 1025 + below(c, 64 * 1024 - 1024);
    return (1u << 20) + below(c, 3u << 20);
}

static size_t drawAlignment(ctx_t *c) { return (size_t)1 << (3 + below(c, 14)); }  // 8 ... 64 KiB

static size_t mallocAlignment(size_t size) { return size <= 8 ? 8 : 16; }

// ---------------------------------------------------------------------------
// The thread's table
// ---------------------------------------------------------------------------

static int rangeIndex(table_t *t, uintptr_t start) {  // first index with starts[i] >= start
    int lo = 0, hi = t->ranges;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t->starts[mid] < start) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static size_t extent(const block_t *b) { return b->usable ? b->usable : 1; }

// Checks that b overlaps no block of the table, then records its range.
static void addRange(ctx_t *c, table_t *t, const block_t *b) {
    uintptr_t s = (uintptr_t)b->ptr, e = s + extent(b);
    int i = rangeIndex(t, s);
    atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);
    if (i > 0 && t->ends[i - 1] > s)
        fail(c, "block %p..%#" PRIxPTR " overlaps live block %#" PRIxPTR "..%#" PRIxPTR, (void *)b->ptr, e,
             t->starts[i - 1], t->ends[i - 1]);
    if (i < t->ranges && t->starts[i] < e)
        fail(c, "block %p..%#" PRIxPTR " overlaps live block %#" PRIxPTR "..%#" PRIxPTR, (void *)b->ptr, e,
             t->starts[i], t->ends[i]);
    memmove(&t->starts[i + 1], &t->starts[i], (size_t)(t->ranges - i) * sizeof(uintptr_t));
    memmove(&t->ends[i + 1], &t->ends[i], (size_t)(t->ranges - i) * sizeof(uintptr_t));
    t->starts[i] = s;
    t->ends[i] = e;
    t->ranges++;
}

static void removeRange(ctx_t *c, table_t *t, const block_t *b) {
    uintptr_t s = (uintptr_t)b->ptr;
    int i = rangeIndex(t, s);
    if (i >= t->ranges || t->starts[i] != s) {
        fail(c, "model: no range for %p", (void *)b->ptr);
        return;
    }
    memmove(&t->starts[i], &t->starts[i + 1], (size_t)(t->ranges - i - 1) * sizeof(uintptr_t));
    memmove(&t->ends[i], &t->ends[i + 1], (size_t)(t->ranges - i - 1) * sizeof(uintptr_t));
    t->ranges--;
}

// Checks a block the allocator just returned (alignment, usable size), fills
// the model's fields and, when `fillIt`, its pattern.
static int accept(ctx_t *c, block_t *b, unsigned char *p, size_t size, size_t alignment, int fillIt, int step_sub) {
    atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);
    if (!p) {
        fail(c, "returned NULL for size %zu alignment %zu (errno %d)", size, alignment, errno);
        return 0;
    }
    size_t need = alignment ? alignment : mallocAlignment(size);
    if (alignment && need < mallocAlignment(size)) need = mallocAlignment(size);
    if ((uintptr_t)p % need != 0)
        fail(c, "%p is not %zu-byte aligned (size %zu, alignment asked %zu)", (void *)p, need, size, alignment);
    size_t usable = malloc_usable_size(p);
    if (usable < size) fail(c, "malloc_usable_size(%p) = %zu < %zu", (void *)p, usable, size);
    b->ptr = p;
    b->size = size;
    b->alignment = alignment;
    b->usable = usable;
    b->tag = makeTag(c->thread, c->step, step_sub);
    if (fillIt) fill(p, size, b->tag);
    return 1;
}

static void insertBlock(ctx_t *c, table_t *t, const block_t *b) {
    pthread_mutex_lock(&t->lock);
    addRange(c, t, b);
    t->blocks[t->count++] = *b;
    pthread_mutex_unlock(&t->lock);
}

static block_t takeBlock(ctx_t *c, table_t *t, int index) {
    pthread_mutex_lock(&t->lock);
    block_t b = t->blocks[index];
    t->blocks[index] = t->blocks[--t->count];
    removeRange(c, t, &b);
    pthread_mutex_unlock(&t->lock);
    return b;
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

static void opAllocate(ctx_t *c, table_t *t) {
    block_t b;
    size_t size = drawSize(c);
    unsigned char *p = NULL;
    size_t alignment = 0;
    switch (below(c, 10)) {
    case 0: case 1: case 2: case 3: case 4:
        c->op = "malloc";
        p = malloc(size);
        break;
    case 5: case 6: {
        c->op = "calloc";
        size_t n = 1 + below(c, 16), m = size / n + 1;
        if (size >= (1u << 20)) { n = 1; m = size; }
        size = n * m;
        p = calloc(n, m);
        if (p) {
            atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);
            for (size_t i = 0; i < size; i++)
                if (p[i] != 0) {
                    fail(c, "calloc(%zu, %zu) = %p: byte %zu is %02x, not 0", n, m, (void *)p, i, p[i]);
                    break;
                }
        }
        break;
    }
    case 7:
        c->op = "memalign";
        alignment = drawAlignment(c);
        p = memalign(alignment, size);
        break;
    case 8: {
        c->op = "posix_memalign";
        alignment = drawAlignment(c);
        void *q = NULL;
        int rc = posix_memalign(&q, alignment, size);
        if (rc != 0) fail(c, "posix_memalign(%zu, %zu) returned %d", alignment, size, rc);
        p = q;
        break;
    }
    default:
        c->op = "aligned_alloc";
        alignment = drawAlignment(c);
        p = aligned_alloc(alignment, size);
        break;
    }
    if (accept(c, &b, p, size, alignment, 1, 0)) insertBlock(c, t, &b);
}

// Reallocates b (already out of every table, content checked): to 0 (frees),
// else grows or shrinks it and puts it in the table.
static void reallocBlock(ctx_t *c, table_t *t, block_t b, const char *name) {
    c->op = name;
    size_t size;
    uint64_t r = below(c, 20);
    if (r == 0) size = 0;
    else if (r < 9) size = b.size + 1 + below(c, b.size < 4096 ? 2 * b.size + 64 : b.size);  // grow
    else if (r < 16) size = b.size ? below(c, b.size) + 1 : 1;                                 // shrink
    else size = drawSize(c);
    if (size > (5u << 20)) size = drawSize(c);
    if (size == 0) {
        // <swiftmalloc.h>: realloc(p, 0) frees p and returns NULL (as glibc).
        void *q = realloc(b.ptr, 0);
        atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);
        if (q != NULL) {
            fail(c, "realloc(%p, 0) returned %p, not NULL", (void *)b.ptr, q);
            free(q);
        }
        return;
    }
    unsigned char *q = realloc(b.ptr, size);
    if (!q) {
        fail(c, "realloc(%p, %zu) returned NULL (errno %d)", (void *)b.ptr, size, errno);
        free(b.ptr);
        return;
    }
    size_t kept = b.size < size ? b.size : size;
    verifyPattern(c, q, kept, b.tag, "realloc kept");
    block_t nb;
    // realloc's result has malloc's alignment for its size.
    accept(c, &nb, q, size, 0, 0, 1);
    nb.tag = b.tag;
    // The kept prefix has the old pattern; write the whole block afresh with it
    // (fill is a function of the offset, so the prefix is unchanged).
    if (size > kept) fill(q, size, nb.tag);
    insertBlock(c, t, &nb);
}

static void verifyBlock(ctx_t *c, const block_t *b, const char *what) {
    verifyPattern(c, b->ptr, b->size, b->tag, what);
    atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);
    size_t usable = malloc_usable_size(b->ptr);
    if (usable != b->usable)
        fail(c, "%s: malloc_usable_size(%p) changed from %zu to %zu", what, (void *)b->ptr, b->usable, usable);
}

static void sweep(ctx_t *c, table_t *t) {
    for (int i = 0; i < t->count; i++) verifyBlock(c, &t->blocks[i], "sweep");
}

static int compareRanges(const void *a, const void *b) {
    uintptr_t x = ((const uintptr_t *)a)[0], y = ((const uintptr_t *)b)[0];
    return x < y ? -1 : x > y;
}

// Every live block of the process (every table and the mailbox): no two overlap.
static void globalOverlapCheck(ctx_t *c) {
    static uintptr_t all[(MAX_THREADS * SLOTS + MAILBOX) * 2];
    static pthread_mutex_t globalLock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&globalLock);
    for (int i = 0; i < threadCount; i++) pthread_mutex_lock(&tables[i].lock);
    pthread_mutex_lock(&mailboxLock);
    int n = 0;
    for (int i = 0; i < threadCount; i++)
        for (int k = 0; k < tables[i].count; k++) {
            all[2 * n] = (uintptr_t)tables[i].blocks[k].ptr;
            all[2 * n + 1] = all[2 * n] + extent(&tables[i].blocks[k]);
            n++;
        }
    for (int k = 0; k < mailboxCount; k++) {
        all[2 * n] = (uintptr_t)mailbox[k].ptr;
        all[2 * n + 1] = all[2 * n] + extent(&mailbox[k]);
        n++;
    }
    pthread_mutex_unlock(&mailboxLock);
    for (int i = threadCount - 1; i >= 0; i--) pthread_mutex_unlock(&tables[i].lock);
    qsort(all, (size_t)n, 2 * sizeof(uintptr_t), compareRanges);
    atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);
    for (int k = 1; k < n; k++)
        if (all[2 * k - 1] > all[2 * k])
            fail(c, "global check: live blocks %#" PRIxPTR "..%#" PRIxPTR " and %#" PRIxPTR "..%#" PRIxPTR " overlap",
                 all[2 * k - 2], all[2 * k - 1], all[2 * k], all[2 * k + 1]);
    pthread_mutex_unlock(&globalLock);
}

static void *worker(void *arg) {
    ctx_t ctx = {.thread = (int)(intptr_t)arg, .step = 0, .op = "start"};
    ctx_t *c = &ctx;
    c->rng = makeTag(c->thread, 0xFFFFFF, 7);
    table_t *t = &tables[c->thread];
    pthread_barrier_wait(&startLine);
    for (unsigned long step = 0; step < opsPerThread; step++) {
        c->step = step;
        uint64_t r = below(c, 100);
        if (t->count == 0 || (t->count < SLOTS && r < 40)) {
            opAllocate(c, t);
        } else if (t->count == SLOTS || r < 62) {
            c->op = "free";
            block_t b = takeBlock(c, t, (int)below(c, (uint64_t)t->count));
            verifyBlock(c, &b, "before free");
            free(b.ptr);
        } else if (r < 78) {
            c->op = "realloc";
            block_t b = takeBlock(c, t, (int)below(c, (uint64_t)t->count));
            verifyBlock(c, &b, "before realloc");
            reallocBlock(c, t, b, "realloc");
        } else if (r < 82) {
            // realloc(NULL, n) is malloc(n).
            c->op = "realloc(NULL)";
            size_t size = drawSize(c);
            block_t b;
            if (accept(c, &b, realloc(NULL, size), size, 0, 1, 0)) insertBlock(c, t, &b);
        } else if (r < 91) {
            c->op = "post";
            int index = (int)below(c, (uint64_t)t->count);
            pthread_mutex_lock(&mailboxLock);
            int room = mailboxCount < MAILBOX;
            pthread_mutex_unlock(&mailboxLock);
            if (room) {
                block_t b = takeBlock(c, t, index);
                verifyBlock(c, &b, "before post");
                pthread_mutex_lock(&mailboxLock);
                if (mailboxCount < MAILBOX) {
                    mailbox[mailboxCount++] = b;
                    b.ptr = NULL;
                }
                pthread_mutex_unlock(&mailboxLock);
                if (b.ptr) insertBlock(c, t, &b);
            }
        } else if (r < 99) {
            c->op = "take";
            block_t b = {0};
            pthread_mutex_lock(&mailboxLock);
            if (mailboxCount > 0) {
                int index = (int)below(c, (uint64_t)mailboxCount);
                b = mailbox[index];
                mailbox[index] = mailbox[--mailboxCount];
            }
            pthread_mutex_unlock(&mailboxLock);
            if (b.ptr) {
                atomic_fetch_add_explicit(&handoffs, 1, memory_order_relaxed);
                verifyBlock(c, &b, "on receipt");
                if (below(c, 2) == 0) {
                    c->op = "take+free";
                    free(b.ptr);
                } else {
                    reallocBlock(c, t, b, "take+realloc");
                }
            }
        } else {
            c->op = "sweep";
            sweep(c, t);
        }
        if (step % SWEEP_EVERY == SWEEP_EVERY - 1) {
            c->op = "sweep";
            sweep(c, t);
        }
        if (step % GLOBAL_EVERY == (unsigned long)c->thread * (GLOBAL_EVERY / MAX_THREADS)) {
            c->op = "global";
            globalOverlapCheck(c);
        }
    }
    c->op = "final free";
    c->step = opsPerThread;
    sweep(c, t);
    while (t->count > 0) {
        block_t b = takeBlock(c, t, t->count - 1);
        free(b.ptr);
    }
    atomic_fetch_add(&totalOps, opsPerThread);
    return NULL;
}

static void *idle(void *arg) { return arg; }

int main(int argc, char **argv) {
    if (argc > 1) threadCount = atoi(argv[1]);
    if (argc > 2) opsPerThread = strtoul(argv[2], NULL, 10);
    if (argc > 3) seed = strtoull(argv[3], NULL, 10);
    if (threadCount < 1) threadCount = 1;
    if (threadCount > MAX_THREADS) threadCount = MAX_THREADS;
    int (*getStats)(struct swiftmalloc_stats *, size_t) =
        (int (*)(struct swiftmalloc_stats *, size_t))dlsym(RTLD_DEFAULT, "swiftmalloc_get_stats_sized");
    for (int i = 0; i < threadCount; i++) pthread_mutex_init(&tables[i].lock, NULL);
    pthread_barrier_init(&startLine, NULL, (unsigned)threadCount);

    // Warm-up: the stdout buffer and glibc's cached thread stacks (with their
    // TLS) exist before the first snapshot.
    printf("api_property: seed %" PRIu64 " threads %d operations %lu\n", seed, threadCount, opsPerThread);
    fflush(stdout);
    run_threads(threadCount, idle);

    struct swiftmalloc_stats before = {0}, after = {0};
    if (getStats && getStats(&before, sizeof before) != 0) {
        printf("swiftmalloc_get_stats failed\n");
        return 1;
    }
    run_threads(threadCount, worker);
    ctx_t mainCtx = {.thread = -1, .step = 0, .op = "final mailbox"};
    for (int k = 0; k < mailboxCount; k++) {
        verifyBlock(&mainCtx, &mailbox[k], "mailbox at exit");
        free(mailbox[k].ptr);
    }
    mailboxCount = 0;
    if (getStats && getStats(&after, sizeof after) != 0) {
        printf("swiftmalloc_get_stats failed\n");
        return 1;
    }
    unsigned long failed = atomic_load(&failures);
    printf("checks: %lu failures: %lu\n", atomic_load(&checks), failed);
    printf("ops: %lu handoffs: %lu\n", atomic_load(&totalOps), atomic_load(&handoffs));
    if (getStats) {
        const char *(*frontendName)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "swiftmalloc_frontend_name");
        printf("frontend: %s\n", frontendName ? frontendName() : "unknown");
        printf("in_use_before: %" PRIu64 " in_use_after: %" PRIu64 " allocations: %" PRIu64 " frees: %" PRIu64 "\n",
               before.in_use_bytes, after.in_use_bytes, after.allocations - before.allocations,
               after.frees - before.frees);
        if (before.in_use_bytes != after.in_use_bytes) {
            printf("FAIL seed %" PRIu64 ": in_use_bytes before %" PRIu64 " != after %" PRIu64 "\n", seed,
                   before.in_use_bytes, after.in_use_bytes);
            failed++;
        }
    } else {
        printf("stats: unavailable\n");
    }
    if (failed) printf("FAILED: seed %" PRIu64 " (rerun: api_property %d %lu %" PRIu64 ")\n", seed, threadCount,
                       opsPerThread, seed);
    return failed ? 1 : 0;
}
