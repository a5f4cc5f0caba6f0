// api_semantics.c — checks the C semantics that <swiftmalloc.h> promises for
// the standard malloc family: return values, errno, alignment, overflow,
// contents preserved by realloc, zeroed calloc memory.
//
// Run it under LD_PRELOAD=libSwiftMalloc.so. It prints one line starting with
// "FAIL" per failed check, then a summary line
//   "checks: N failures: M preloaded: yes|no frontend: NAME"
// and exits 1 if any check failed, 0 otherwise.
//
// Sizes and alignments go through `opaque()` so that the compiler cannot fold
// or drop the calls (GCC knows malloc's semantics and would otherwise be free
// to assume, for example, that malloc(SIZE_MAX) returns NULL).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <swiftmalloc.h>
#include <unistd.h>

// A failed realloc leaves the old block valid; GCC cannot know that it failed.
#pragma GCC diagnostic ignored "-Wuse-after-free"

static unsigned long checks;
static unsigned long failures;

#define CHECK(cond, ...)                                             \
    do {                                                             \
        checks++;                                                    \
        if (!(cond)) {                                               \
            failures++;                                              \
            printf("FAIL line %d: %s: ", __LINE__, #cond);           \
            printf(__VA_ARGS__);                                     \
            printf("\n");                                            \
        }                                                            \
    } while (0)

// Hides a value from the optimiser.
static size_t opaque(size_t v) {
    __asm__ volatile("" : "+r"(v));
    return v;
}
// Keeps the compiler from removing an allocation it can see is unused.
static void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static int aligned(const void *p, size_t alignment) {
    return ((uintptr_t)p & (alignment - 1)) == 0;
}

static unsigned char pattern(size_t i, unsigned seed) {
    return (unsigned char)((i * 131u) ^ (i >> 8) ^ (i >> 16) ^ seed);
}
static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = pattern(i, seed);
}
// Returns the index of the first byte that differs from the pattern, or n.
static size_t verify(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern(i, seed)) return i;
    return n;
}

#define HUGE_62 ((size_t)1 << 62)

static void test_malloc_overflow(void) {
    size_t sizes[] = {SIZE_MAX, HUGE_62, SIZE_MAX - 4096, SIZE_MAX / 2 + 1, (size_t)1 << 48};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        void *p = malloc(opaque(sizes[i]));
        int e = errno;
        CHECK(p == NULL, "malloc(%zu) returned %p", sizes[i], p);
        CHECK(e == ENOMEM, "malloc(%zu) errno=%d, want ENOMEM", sizes[i], e);
        free(p);
    }
}

static void test_calloc_overflow(void) {
    struct { size_t n, m; } cases[] = {
        {SIZE_MAX / 2, 3}, {3, SIZE_MAX / 2}, {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 31, (size_t)1 << 33}, {SIZE_MAX, 2},
        {1, SIZE_MAX}, {HUGE_62, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errno = 0;
        void *p = calloc(opaque(cases[i].n), opaque(cases[i].m));
        int e = errno;
        CHECK(p == NULL, "calloc(%zu, %zu) returned %p", cases[i].n, cases[i].m, p);
        CHECK(e == ENOMEM, "calloc(%zu, %zu) errno=%d, want ENOMEM", cases[i].n, cases[i].m, e);
        free(p);
    }
}

static void test_reallocarray_overflow(void) {
    size_t oldSizes[] = {100, 5000, 300000};
    for (size_t s = 0; s < sizeof oldSizes / sizeof oldSizes[0]; s++) {
        size_t n = oldSizes[s];
        unsigned char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu) failed", n);
        if (!p) continue;
        fill(p, n, 0x5A);
        errno = 0;
        void *q = reallocarray(p, opaque(SIZE_MAX / 2), opaque(3));
        int e = errno;
        CHECK(q == NULL, "reallocarray(p[%zu], SIZE_MAX/2, 3) returned %p", n, q);
        CHECK(e == ENOMEM, "reallocarray(p[%zu], SIZE_MAX/2, 3) errno=%d, want ENOMEM", n, e);
        errno = 0;
        q = reallocarray(p, opaque((size_t)1 << 33), opaque((size_t)1 << 33));
        e = errno;
        CHECK(q == NULL, "reallocarray(p[%zu], 2^33, 2^33) returned %p", n, q);
        CHECK(e == ENOMEM, "reallocarray(p[%zu], 2^33, 2^33) errno=%d", n, e);
        size_t bad = verify(p, n, 0x5A);
        CHECK(bad == n, "old block of %zu bytes changed at offset %zu after failed reallocarray", n, bad);
        CHECK(malloc_usable_size(p) >= n, "old block usable size %zu < %zu", malloc_usable_size(p), n);
        // The old block is still a valid block: it can grow through reallocarray.
        unsigned char *r = reallocarray(p, opaque(n), 2);
        CHECK(r != NULL, "reallocarray(p[%zu], %zu, 2) failed", n, n);
        if (r) {
            bad = verify(r, n, 0x5A);
            CHECK(bad == n, "reallocarray(p, %zu, 2) lost contents at %zu", n, bad);
            p = r;
        }
        free(p);
    }
    errno = 0;
    void *q = reallocarray(NULL, opaque(SIZE_MAX / 2), 3);
    CHECK(q == NULL && errno == ENOMEM, "reallocarray(NULL, overflow) = %p errno=%d", q, errno);
    q = reallocarray(NULL, opaque(10), 10);
    CHECK(q != NULL && malloc_usable_size(q) >= 100, "reallocarray(NULL, 10, 10) = %p", q);
    free(q);
}

static void test_realloc_huge(void) {
    size_t oldSizes[] = {1, 24, 1000, 40000, 2000000};
    size_t huge[] = {SIZE_MAX, HUGE_62, SIZE_MAX - 16};
    for (size_t s = 0; s < sizeof oldSizes / sizeof oldSizes[0]; s++) {
        size_t n = oldSizes[s];
        unsigned char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu) failed", n);
        if (!p) continue;
        fill(p, n, 0xC3);
        for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
            errno = 0;
            void *q = realloc(p, opaque(huge[h]));
            int e = errno;
            CHECK(q == NULL, "realloc(p[%zu], %zu) returned %p", n, huge[h], q);
            CHECK(e == ENOMEM, "realloc(p[%zu], %zu) errno=%d, want ENOMEM", n, huge[h], e);
            size_t bad = verify(p, n, 0xC3);
            CHECK(bad == n, "realloc(p[%zu], %zu) failed but changed the old block at %zu", n, huge[h], bad);
        }
        CHECK(malloc_usable_size(p) >= n, "old block usable size %zu < %zu", malloc_usable_size(p), n);
        free(p);
    }
}

static void test_posix_memalign_einval(void) {
    size_t bad[] = {0, 1, 2, 3, 4, 5, 12, 24, 40, 48, 96, 4095, 4097, 65536 + 8, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *sentinel = (void *)(uintptr_t)0x1234567;
        void *p = sentinel;
        errno = 4242;
        int rc = posix_memalign(&p, opaque(bad[i]), opaque(64));
        CHECK(rc == EINVAL, "posix_memalign(align=%zu) returned %d, want EINVAL", bad[i], rc);
        CHECK(errno == 4242, "posix_memalign(align=%zu) changed errno to %d", bad[i], errno);
        CHECK(p == sentinel, "posix_memalign(align=%zu) wrote *memptr=%p on failure", bad[i], p);
    }
}

static void test_posix_memalign_success(void) {
    size_t sizes[] = {1, 100, 5000, 100000};
    for (size_t a = 8; a <= ((size_t)1 << 20); a <<= 1) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            void *p = NULL;
            errno = 4242;
            int rc = posix_memalign(&p, opaque(a), opaque(sizes[s]));
            CHECK(rc == 0, "posix_memalign(align=%zu, size=%zu) returned %d", a, sizes[s], rc);
            CHECK(errno == 4242, "posix_memalign(align=%zu, size=%zu) changed errno to %d", a, sizes[s], errno);
            if (rc != 0 || p == NULL) continue;
            CHECK(aligned(p, a), "posix_memalign(align=%zu, size=%zu) = %p misaligned", a, sizes[s], p);
            CHECK(malloc_usable_size(p) >= sizes[s], "posix_memalign(%zu, %zu): usable %zu", a, sizes[s],
                  malloc_usable_size(p));
            fill(p, sizes[s], (unsigned)a);
            size_t bad = verify(p, sizes[s], (unsigned)a);
            CHECK(bad == sizes[s], "posix_memalign(%zu, %zu) block not writable at %zu", a, sizes[s], bad);
            free(p);
        }
    }
    // Many live aligned blocks at once: distinct, aligned, intact.
    enum { N = 200 };
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        size_t a = (size_t)16 << (i % 9);
        size_t n = 1 + (size_t)i * 37;
        blocks[i] = NULL;
        int rc = posix_memalign(&blocks[i], a, n);
        CHECK(rc == 0 && aligned(blocks[i], a), "posix_memalign(%zu, %zu) = %d %p", a, n, rc, blocks[i]);
        if (blocks[i]) fill(blocks[i], n, (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        size_t n = 1 + (size_t)i * 37;
        if (!blocks[i]) continue;
        size_t bad = verify(blocks[i], n, (unsigned)i);
        CHECK(bad == n, "aligned block %d (size %zu) overwritten at %zu", i, n, bad);
        free(blocks[i]);
    }
}

// The usable size of an aligned block is all the caller's: fill every usable
// byte of many live aligned blocks, then check that none overwrote another.
static void test_aligned_usable_bytes_are_owned(void) {
    enum { N = 3000 };
    static unsigned char *blocks[N];
    static size_t usable[N];
    for (int i = 0; i < N; i++) {
        size_t a = (size_t)8 << (i % 12);
        size_t n = 1 + ((size_t)i * 7919) % 9000;
        void *p = NULL;
        if (i % 3 == 0) p = memalign(opaque(a), opaque(n));
        else if (i % 3 == 1) { if (posix_memalign(&p, opaque(a), opaque(n)) != 0) p = NULL; }
        else p = aligned_alloc(opaque(a), opaque(n));
        CHECK(p != NULL && aligned(p, a), "aligned allocation #%d (%zu, %zu) = %p", i, a, n, p);
        blocks[i] = p;
        usable[i] = p ? malloc_usable_size(p) : 0;
        CHECK(usable[i] >= n, "aligned allocation #%d (%zu, %zu): usable %zu", i, a, n, usable[i]);
        if (p) memset(p, (unsigned char)(i * 7 + 1), usable[i]);
    }
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < usable[i]; k++)
            if (blocks[i][k] != (unsigned char)(i * 7 + 1)) {
                CHECK(0, "aligned block #%d (%p, usable %zu) overwritten at byte %zu", i, (void *)blocks[i],
                      usable[i], k);
                break;
            }
        free(blocks[i]);
    }
}

static void test_posix_memalign_enomem(void) {
    struct { size_t a, n; } cases[] = {
        {64, SIZE_MAX}, {64, SIZE_MAX - 64}, {4096, HUGE_62}, {(size_t)1 << 20, SIZE_MAX - (1 << 19)},
        {16, SIZE_MAX / 2 + 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        void *sentinel = (void *)(uintptr_t)0x7654321;
        void *p = sentinel;
        errno = 4242;
        int rc = posix_memalign(&p, opaque(cases[i].a), opaque(cases[i].n));
        CHECK(rc == ENOMEM, "posix_memalign(%zu, %zu) returned %d, want ENOMEM", cases[i].a, cases[i].n, rc);
        CHECK(errno == 4242, "posix_memalign(%zu, %zu) changed errno to %d", cases[i].a, cases[i].n, errno);
        CHECK(p == sentinel, "posix_memalign(%zu, %zu) wrote *memptr=%p on failure", cases[i].a, cases[i].n, p);
    }
}

static void test_aligned_alloc(void) {
    size_t bad[] = {3, 0, 5, 24, 48, 100, 4097};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = aligned_alloc(opaque(bad[i]), opaque(16));
        int e = errno;
        CHECK(p == NULL, "aligned_alloc(%zu, 16) returned %p, want NULL", bad[i], p);
        CHECK(e == EINVAL, "aligned_alloc(%zu, 16) errno=%d, want EINVAL", bad[i], e);
        free(p);
    }
    size_t sizes[] = {1, 16, 100, 4096, 5000, 100000, 1 << 20};
    for (size_t a = 1; a <= ((size_t)1 << 20); a <<= 1) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            unsigned char *p = aligned_alloc(opaque(a), opaque(sizes[s]));
            CHECK(p != NULL, "aligned_alloc(%zu, %zu) returned NULL", a, sizes[s]);
            if (!p) continue;
            CHECK(aligned(p, a), "aligned_alloc(%zu, %zu) = %p misaligned", a, sizes[s], p);
            CHECK(malloc_usable_size(p) >= sizes[s], "aligned_alloc(%zu, %zu) usable %zu", a, sizes[s],
                  malloc_usable_size(p));
            memset(p, 0xEE, sizes[s]);
            CHECK(p[sizes[s] - 1] == 0xEE, "aligned_alloc(%zu, %zu) not writable", a, sizes[s]);
            free(p);
        }
    }
    errno = 0;
    void *p = aligned_alloc(opaque(64), opaque(SIZE_MAX));
    CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(64, SIZE_MAX) = %p errno=%d", p, errno);
}

static void test_memalign(void) {
    size_t sizes[] = {1, 16, 100, 5000, 100000, 1 << 20};
    for (size_t a = 1; a <= ((size_t)1 << 20); a <<= 1) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            unsigned char *p = memalign(opaque(a), opaque(sizes[s]));
            CHECK(p != NULL, "memalign(%zu, %zu) returned NULL", a, sizes[s]);
            if (!p) continue;
            CHECK(aligned(p, a), "memalign(%zu, %zu) = %p misaligned", a, sizes[s], p);
            CHECK(malloc_usable_size(p) >= sizes[s], "memalign(%zu, %zu) usable %zu", a, sizes[s],
                  malloc_usable_size(p));
            memset(p, 0x11, sizes[s]);
            free(p);
        }
    }
    // Not a power of two: glibc rounds the alignment up to the next one.
    struct { size_t asked, want; } round[] = {{24, 32}, {3, 4}, {100, 128}, {48, 64}, {1000, 1024},
                                              {4097, 8192}, {65537, 131072}};
    for (size_t i = 0; i < sizeof round / sizeof round[0]; i++) {
        // Several in a row: one lucky address would not prove anything.
        void *live[16];
        for (int k = 0; k < 16; k++) {
            size_t n = 8 + (size_t)k * 40;
            live[k] = memalign(opaque(round[i].asked), opaque(n));
            CHECK(live[k] != NULL, "memalign(%zu, %zu) returned NULL", round[i].asked, n);
            if (live[k]) {
                CHECK(aligned(live[k], round[i].want), "memalign(%zu, %zu) = %p not aligned to %zu",
                      round[i].asked, n, live[k], round[i].want);
                CHECK(malloc_usable_size(live[k]) >= n, "memalign(%zu, %zu) usable %zu", round[i].asked, n,
                      malloc_usable_size(live[k]));
                memset(live[k], 0x22, n);
            }
        }
        for (int k = 0; k < 16; k++) free(live[k]);
    }
    errno = 0;
    void *p = memalign(opaque(SIZE_MAX / 2 + 2), opaque(16));
    CHECK(p == NULL, "memalign(SIZE_MAX/2+2, 16) returned %p", p);
    CHECK(errno == EINVAL, "memalign(SIZE_MAX/2+2, 16) errno=%d, want EINVAL", errno);
    errno = 0;
    p = memalign(opaque(64), opaque(SIZE_MAX));
    CHECK(p == NULL && errno == ENOMEM, "memalign(64, SIZE_MAX) = %p errno=%d", p, errno);
}

static void test_valloc_pvalloc(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t sizes[] = {1, 100, 4095, 4096, 4097, 10000, 65536, 1000000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        unsigned char *v = valloc(opaque(n));
        CHECK(v != NULL && aligned(v, page), "valloc(%zu) = %p not page-aligned", n, v);
        if (v) {
            CHECK(malloc_usable_size(v) >= n, "valloc(%zu) usable %zu", n, malloc_usable_size(v));
            memset(v, 0x33, n);
            free(v);
        }
        size_t rounded = (n + page - 1) / page * page;
        unsigned char *pv = pvalloc(opaque(n));
        CHECK(pv != NULL && aligned(pv, page), "pvalloc(%zu) = %p not page-aligned", n, pv);
        if (pv) {
            CHECK(malloc_usable_size(pv) >= rounded, "pvalloc(%zu) usable %zu < rounded %zu", n,
                  malloc_usable_size(pv), rounded);
            memset(pv, 0x44, rounded);  // the whole rounded size belongs to the caller
            free(pv);
        }
    }
    errno = 0;
    void *p = pvalloc(opaque(SIZE_MAX - 10));
    CHECK(p == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX-10) = %p errno=%d", p, errno);
    errno = 0;
    p = valloc(opaque(SIZE_MAX));
    CHECK(p == NULL && errno == ENOMEM, "valloc(SIZE_MAX) = %p errno=%d", p, errno);
}

static void test_malloc_zero_and_null(void) {
    enum { N = 256 };
    void *zeros[N];
    for (int i = 0; i < N; i++) {
        zeros[i] = malloc(opaque(0));
        CHECK(zeros[i] != NULL, "malloc(0) #%d returned NULL", i);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (zeros[i] && zeros[i] == zeros[j]) {
                CHECK(zeros[i] != zeros[j], "malloc(0) returned %p twice (#%d and #%d)", zeros[i], i, j);
            }
    for (int i = 0; i < N; i++) free(zeros[i]);
    void *r = realloc(NULL, opaque(0));
    CHECK(r != NULL, "realloc(NULL, 0) returned NULL (should act as malloc(0))");
    free(r);
    void *c0 = calloc(opaque(0), 8), *c1 = calloc(8, opaque(0));
    CHECK(c0 != NULL && c1 != NULL && c0 != c1, "calloc(0, 8) = %p, calloc(8, 0) = %p", c0, c1);
    free(c0);
    free(c1);

    free(NULL);
    free(NULL);
    checks++;  // reaching this line is the check: free(NULL) is a no-op

    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));
}

static void test_usable_size_and_alignment(void) {
    // Every size 1..20000, then sparser up to 8 MiB; a handful live at once.
    enum { LIVE = 64 };
    void *live[LIVE] = {0};
    size_t liveSize[LIVE] = {0};
    size_t n = 1;
    unsigned long k = 0;
    while (n <= ((size_t)8 << 20)) {
        unsigned char *p = malloc(opaque(n));
        CHECK(p != NULL, "malloc(%zu) returned NULL", n);
        if (p) {
            size_t u = malloc_usable_size(p);
            CHECK(u >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
            CHECK(aligned(p, 8), "malloc(%zu) = %p not 8-byte aligned", n, p);
            if (n >= 9) CHECK(aligned(p, 16), "malloc(%zu) = %p not 16-byte aligned", n, p);
            p[0] = 1;
            p[n - 1] = 2;
            if (u > n) p[u - 1] = 3;  // usable bytes are the caller's too
            size_t slot = k++ % LIVE;
            free(live[slot]);
            live[slot] = p;
            liveSize[slot] = n;
        }
        if (n < 20000) n += 1;
        else n += n / 7 + 13;
    }
    for (int i = 0; i < LIVE; i++) {
        (void)liveSize[i];
        free(live[i]);
    }
    // Alignment holds for many live objects of one class too (not only the first).
    size_t classes[] = {16, 24, 32, 48, 80, 112, 144, 1000, 3000};
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        void *many[500];
        for (int i = 0; i < 500; i++) {
            many[i] = malloc(opaque(classes[c]));
            CHECK(many[i] && aligned(many[i], 16), "malloc(%zu) #%d = %p not 16-byte aligned", classes[c], i,
                  many[i]);
        }
        for (int i = 0; i < 500; i++) free(many[i]);
    }
}

static void test_calloc_zero_on_reuse(void) {
    size_t sizes[64];
    size_t ns = 0;
    for (size_t s = 1; s <= 65536; s *= 2) {
        sizes[ns++] = s;
        if (s > 2) sizes[ns++] = s - 1;
        sizes[ns++] = s + s / 2 + 3;
    }
    sizes[ns++] = 300000;
    sizes[ns++] = 1 << 20;
    sizes[ns++] = (3 << 20) + 5;
    for (size_t s = 0; s < ns; s++) {
        size_t n = sizes[s];
        int rounds = n >= 200000 ? 6 : 40;
        for (int r = 0; r < rounds; r++) {
            // Dirty blocks of this size and give them back, then calloc it.
            unsigned char *dirty[4];
            for (int d = 0; d < 4; d++) {
                dirty[d] = malloc(opaque(n));
                if (dirty[d]) memset(dirty[d], 0xAA, malloc_usable_size(dirty[d]));
            }
            for (int d = 0; d < 4; d++) free(dirty[d]);
            unsigned char *z = calloc(1, opaque(n));
            CHECK(z != NULL, "calloc(1, %zu) returned NULL", n);
            if (!z) continue;
            size_t firstBad = n;
            for (size_t i = 0; i < n; i++)
                if (z[i] != 0) { firstBad = i; break; }
            CHECK(firstBad == n, "calloc(1, %zu) round %d: byte %zu is 0x%02x, not zero", n, r, firstBad,
                  firstBad < n ? z[firstBad] : 0);
            memset(z, 0xAA, n);
            free(z);
        }
        // calloc(n, m) with the same total in the other order.
        if (n % 4 == 0) {
            unsigned char *z = calloc(opaque(n / 4), 4);
            int allZero = z != NULL;
            for (size_t i = 0; z && i < n; i++) allZero &= z[i] == 0;
            CHECK(allZero, "calloc(%zu, 4) not zeroed", n / 4);
            free(z);
        }
    }
}

// Grows one block across every size-class boundary (found with
// malloc_usable_size: the next size is usable+1) up to 4 MiB, then shrinks it
// back through every boundary, checking the contents each step.
static void test_realloc_contents(void) {
    const size_t limit = (size_t)4 << 20;
    const unsigned seed = 0x77;
    size_t boundaries[4096];
    size_t nb = 0;
    unsigned char *p = realloc(NULL, opaque(1));
    CHECK(p != NULL, "realloc(NULL, 1) returned NULL");
    if (!p) return;
    fill(p, 1, seed);
    size_t n = 1;
    for (;;) {
        size_t u = malloc_usable_size(p);
        CHECK(u >= n, "usable %zu < %zu", u, n);
        if (nb < 4096 && (nb == 0 || boundaries[nb - 1] != u)) boundaries[nb++] = u;
        size_t next;
        if (u < 256 * 1024) next = u + 1;             // every class boundary
        else next = u + u / 3 + 4093;                 // large: grows faster
        if (next > limit) next = limit;
        if (next <= n) break;
        unsigned char *q = realloc(p, opaque(next));
        CHECK(q != NULL, "realloc grow %zu -> %zu returned NULL", n, next);
        if (!q) break;
        size_t bad = verify(q, n, seed);
        CHECK(bad == n, "realloc grow %zu -> %zu lost contents at offset %zu", n, next, bad);
        fill(q, next, seed);
        p = q;
        n = next;
        if (n == limit) break;
    }
    CHECK(n == limit, "growth stopped at %zu", n);
    CHECK(nb > 20, "only %zu distinct usable sizes seen", nb);
    // Shrink through every boundary seen on the way up: u+1, then u.
    for (size_t b = nb; b-- > 0;) {
        size_t targets[2] = {boundaries[b] + 1, boundaries[b]};
        for (int t = 0; t < 2; t++) {
            size_t next = targets[t];
            if (next >= n) continue;
            unsigned char *q = realloc(p, opaque(next));
            CHECK(q != NULL, "realloc shrink %zu -> %zu returned NULL", n, next);
            if (!q) { free(p); return; }
            size_t bad = verify(q, next, seed);
            CHECK(bad == next, "realloc shrink %zu -> %zu lost contents at offset %zu", n, next, bad);
            CHECK(malloc_usable_size(q) >= next, "after shrink to %zu usable is %zu", next,
                  malloc_usable_size(q));
            p = q;
            n = next;
        }
    }
    CHECK(n <= 32, "shrinking ended at %zu", n);
    free(p);

    // Straight jumps between small and large, both directions.
    size_t jumps[] = {10, 4 << 20, 7, 300000, 100, 2 << 20, 1, 70000, 5000, 4 << 20, 33};
    p = malloc(10);
    fill(p, 10, 9);
    n = 10;
    for (size_t j = 1; j < sizeof jumps / sizeof jumps[0]; j++) {
        size_t next = jumps[j];
        unsigned char *q = realloc(p, opaque(next));
        CHECK(q != NULL, "realloc %zu -> %zu returned NULL", n, next);
        if (!q) break;
        size_t keep = n < next ? n : next;
        size_t bad = verify(q, keep, 9);
        CHECK(bad == keep, "realloc %zu -> %zu lost contents at %zu", n, next, bad);
        fill(q, next, 9);
        p = q;
        n = next;
    }
    free(p);

    // realloc keeps the contents of memalign'd blocks too.
    unsigned char *a = memalign(4096, 1000);
    fill(a, 1000, 3);
    unsigned char *b = realloc(a, opaque(200000));
    CHECK(b && verify(b, 1000, 3) == 1000, "realloc of a memalign block lost contents");
    free(b);

    // realloc(p, 0) frees p and returns NULL (glibc behaviour, documented).
    void *z = malloc(100);
    void *r = realloc(z, opaque(0));
    CHECK(r == NULL, "realloc(p, 0) returned %p, documented to free and return NULL", r);
    free(r);
}

static void test_trim(void) {
    enum { N = 2000 };
    static void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(opaque(((size_t)i * 97) % 70000 + 1));
        if (blocks[i]) memset(blocks[i], 1, 1);
    }
    void *big = malloc(opaque(8 << 20));
    memset(big, 1, 8 << 20);
    escape(big);
    for (int i = 0; i < N; i++) free(blocks[i]);
    free(big);
    int rc = malloc_trim(opaque(0));
    CHECK(rc == 0 || rc == 1, "malloc_trim(0) returned %d", rc);
    rc = malloc_trim(opaque(1 << 20));
    CHECK(rc == 0 || rc == 1, "malloc_trim(1 MiB) returned %d", rc);
    // Memory works after trimming: allocate, fill, verify.
    for (int i = 0; i < N; i++) {
        size_t n = ((size_t)i * 389) % 100000 + 1;
        blocks[i] = malloc(opaque(n));
        CHECK(blocks[i] != NULL, "malloc(%zu) after trim returned NULL", n);
        if (blocks[i]) fill(blocks[i], n, (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        size_t n = ((size_t)i * 389) % 100000 + 1;
        if (!blocks[i]) continue;
        size_t bad = verify(blocks[i], n, (unsigned)i);
        CHECK(bad == n, "block %d of %zu bytes after trim corrupted at %zu", i, n, bad);
        free(blocks[i]);
    }
    big = calloc(1, opaque(8 << 20));
    int allZero = big != NULL;
    for (size_t i = 0; big && i < (8 << 20); i += 4096) allZero &= ((unsigned char *)big)[i] == 0;
    CHECK(allZero, "calloc(8 MiB) after trim not zero");
    free(big);
}

// The introspection calls of <swiftmalloc.h> (resolved with dlsym so that
// the program also runs without the library).
typedef int (*sized_stats_fn)(struct swiftmalloc_stats *, size_t);
static sized_stats_fn getStatsSized;

// swiftmalloc_get_stats as a program compiled against <swiftmalloc.h> calls
// it (the header's macro passes the struct's size).
static int getStats(struct swiftmalloc_stats *out) { return getStatsSized(out, out ? sizeof *out : 0); }

// A program built against version 1 of the header calls the symbol
// swiftmalloc_get_stats with a 14-word struct: nothing past it is written.
static void test_stats_version_one_callers(void) {
    int (*legacy)(void *) = (int (*)(void *))dlsym(RTLD_DEFAULT, "swiftmalloc_get_stats");
    if (!legacy) return;
    uint64_t words[14 + 4];
    memset(words, 0xA5, sizeof words);
    CHECK(legacy(words) == 0, "swiftmalloc_get_stats (version 1) failed");
    CHECK(words[0] == 1, "version 1 caller got version %llu", (unsigned long long)words[0]);
    CHECK(words[1] > 0, "version 1 caller got no allocations");
    for (int i = 14; i < 18; i++) {
        CHECK(words[i] == 0xA5A5A5A5A5A5A5A5ull, "word %d past a version 1 struct was written", i);
    }
    struct swiftmalloc_stats half;
    memset(&half, 0xA5, sizeof half);
    CHECK(getStatsSized(&half, 3 * sizeof(uint64_t)) == 0, "swiftmalloc_get_stats_sized failed");
    // Three words: version, allocations, frees.
    CHECK(half.fast_path_hits == 0xA5A5A5A5A5A5A5A5ull && half.allocations > 0, "a 3-word size wrote past 3 words");
}

static void test_introspection(void) {
    int (*writeStats)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "swiftmalloc_write_stats");
    if (!getStatsSized || !writeStats) return;
    errno = 0;
    int rc = getStats(NULL);
    int e = errno;
    CHECK(rc == -1 && e == EINVAL, "swiftmalloc_get_stats(NULL) = %d errno=%d, want -1/EINVAL", rc, e);
    struct swiftmalloc_stats a, b;
    CHECK(getStats(&a) == 0, "swiftmalloc_get_stats failed");
    CHECK(a.version == SWIFTMALLOC_STATS_VERSION, "stats version %llu", (unsigned long long)a.version);
    enum { N = 1000 };
    static void *blocks[N];
    for (int i = 0; i < N; i++) blocks[i] = malloc(opaque(64));
    void *big = malloc(opaque(3 << 20));
    escape(big);
    for (int i = 0; i < N; i++) escape(blocks[i]);
    CHECK(getStats(&b) == 0, "swiftmalloc_get_stats failed");
    CHECK(b.allocations - a.allocations == N + 1, "allocations grew by %llu for %d mallocs",
          (unsigned long long)(b.allocations - a.allocations), N + 1);
    CHECK(b.large_allocations - a.large_allocations >= 1, "a 3 MiB block did not count as large");
    CHECK(b.in_use_bytes - a.in_use_bytes >= (uint64_t)N * 64 + (3 << 20), "in_use grew by only %llu",
          (unsigned long long)(b.in_use_bytes - a.in_use_bytes));
    CHECK(b.mapped_bytes >= b.in_use_bytes, "mapped %llu < in use %llu", (unsigned long long)b.mapped_bytes,
          (unsigned long long)b.in_use_bytes);
    for (int i = 0; i < N; i++) free(blocks[i]);
    free(big);
    CHECK(getStats(&b) == 0, "swiftmalloc_get_stats failed");
    CHECK(b.frees - a.frees == N + 1, "frees grew by %llu for %d frees", (unsigned long long)(b.frees - a.frees),
          N + 1);
    CHECK(b.in_use_bytes == a.in_use_bytes, "in_use %llu after freeing everything, was %llu",
          (unsigned long long)b.in_use_bytes, (unsigned long long)a.in_use_bytes);
    errno = 0;
    rc = writeStats("/nonexistent-directory/swiftmalloc/stats.json");
    e = errno;
    CHECK(rc == -1 && e != 0, "swiftmalloc_write_stats(bad path) = %d errno=%d", rc, e);
}

// The stats JSON and struct swiftmalloc_stats come from one list of counters
// (SWIFTMALLOC_STATS_FIELDS): every counter is a JSON key, in list order,
// with the struct's value, and the JSON has no other keys than those and
// frontend, rseq_available, percpu_id, requested_bytes and pid.
static void test_stats_json_matches_struct(void) {
    int (*writeStats)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "swiftmalloc_write_stats");
    if (!getStatsSized || !writeStats) return;
    char path[] = "/tmp/swiftmalloc-api-stats-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp: errno %d", errno);
    if (fd < 0) return;
    // Nothing allocates between the two snapshots: a counter equal in both
    // is the value the JSON must show.
    struct swiftmalloc_stats before, after;
    CHECK(getStats(&before) == 0, "swiftmalloc_get_stats failed");
    int rc = writeStats(path);
    CHECK(getStats(&after) == 0, "swiftmalloc_get_stats failed");
    CHECK(rc == 0, "swiftmalloc_write_stats(%s) = %d errno=%d", path, rc, errno);
    static char json[8192];
    ssize_t length = read(fd, json, sizeof json - 1);
    close(fd);
    unlink(path);
    CHECK(length > 0 && (size_t)length < sizeof json - 1, "stats JSON read %zd bytes", length);
    if (length <= 0) return;
    json[length] = 0;

    size_t keys = 0;
    for (const char *p = json; (p = strstr(p, "\":")) != NULL; p += 2) keys++;
    size_t counters = 0;
    const char *previous = json;
#define CHECK_COUNTER(name, meaning)                                                                       \
    {                                                                                                      \
        counters++;                                                                                        \
        const char *at = strstr(json, "\"" #name "\":");                                                   \
        CHECK(at != NULL && at > previous, "stats JSON: " #name " missing or out of order: %s", json);     \
        if (at) {                                                                                          \
            unsigned long long value = strtoull(at + sizeof("\"" #name "\":") - 1, NULL, 10);              \
            CHECK(before.name != after.name || value == before.name, "stats JSON " #name " = %llu, "       \
                  "struct %llu", value, (unsigned long long)before.name);                                  \
            previous = at;                                                                                 \
        }                                                                                                  \
    }
    SWIFTMALLOC_STATS_FIELDS(CHECK_COUNTER)
#undef CHECK_COUNTER
    CHECK(sizeof(struct swiftmalloc_stats) == (1 + counters) * sizeof(uint64_t),
          "struct swiftmalloc_stats is %zu bytes for %zu counters", sizeof(struct swiftmalloc_stats), counters);
    // Besides the counters: frontend, rseq_available, percpu_id, config,
    // size_classes, class_sizes, requested_bytes and pid.
    CHECK(keys == counters + 8, "stats JSON has %zu keys for %zu counters: %s", keys, counters, json);
}

static void test_prefixed_twins(void) {
    const char *names[] = {"swiftmalloc_malloc", "swiftmalloc_free", "swiftmalloc_calloc", "swiftmalloc_realloc",
                           "swiftmalloc_reallocarray", "swiftmalloc_posix_memalign", "swiftmalloc_aligned_alloc",
                           "swiftmalloc_memalign", "swiftmalloc_valloc", "swiftmalloc_pvalloc",
                           "swiftmalloc_usable_size", "swiftmalloc_trim", "swiftmalloc_get_stats", "swiftmalloc_get_stats_sized",
                           "swiftmalloc_page_alloc", "swiftmalloc_page_free", "swiftmalloc_page_size",
                           "swiftmalloc_frontend_name", "swiftmalloc_write_stats",
                           "swiftmalloc_release_free_memory"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(dlsym(RTLD_DEFAULT, names[i]) != NULL, "symbol %s not found", names[i]);
    // The standard names resolve to the library (the preload took effect).
    void *sm = dlsym(RTLD_DEFAULT, "swiftmalloc_malloc");
    void *std = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info a, b;
    if (sm && std && dladdr(sm, &a) && dladdr(std, &b))
        CHECK(a.dli_fname && b.dli_fname && strcmp(a.dli_fname, b.dli_fname) == 0,
              "malloc comes from %s, swiftmalloc_malloc from %s", b.dli_fname, a.dli_fname);
}

int main(void) {
    void *library = dlsym(RTLD_DEFAULT, "swiftmalloc_get_stats");
    getStatsSized = (sized_stats_fn)dlsym(RTLD_DEFAULT, "swiftmalloc_get_stats_sized");
    const char *(*frontendName)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "swiftmalloc_frontend_name");
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("api_semantics: start\n");  // stdio allocates its buffer now, not between two stats snapshots

    test_malloc_overflow();
    test_calloc_overflow();
    test_reallocarray_overflow();
    test_realloc_huge();
    test_posix_memalign_einval();
    test_posix_memalign_success();
    test_posix_memalign_enomem();
    test_aligned_usable_bytes_are_owned();
    test_aligned_alloc();
    test_memalign();
    test_valloc_pvalloc();
    test_malloc_zero_and_null();
    test_usable_size_and_alignment();
    test_calloc_zero_on_reuse();
    test_realloc_contents();
    test_trim();
    if (library) test_prefixed_twins();
    test_introspection();
    test_stats_json_matches_struct();
    test_stats_version_one_callers();
    escape(library);

    printf("checks: %lu failures: %lu preloaded: %s frontend: %s\n", checks, failures, library ? "yes" : "no",
           frontendName ? frontendName() : "none");
    return failures ? 1 : 0;
}
