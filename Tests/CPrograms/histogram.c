// Every allocating entry point, from the main thread, from threads that
// exit, and from a thread-specific-data destructor that runs as a thread
// exits (after the library's own exit handler, or before it), with small,
// large and directly mapped sizes. Prints what it requested:
//     requested <sum of the sizes asked for by allocations that happened>
//     allocations <how many>
//     size <n> <how many requests of exactly n bytes>   (one line per size below)
// A realloc counts as an allocation when it returns another block. Run as
//     histogram            everything
//     histogram baseline   only what every run does (threads, output), for
//                          the allocations the C library makes on its own
//     histogram remap      also grows a mapped block with realloc, which the
//                          library may grow in place (then the program cannot
//                          tell whether it allocated: its request is not
//                          printed in the sum)
// Output goes through write(2) from a stack buffer: stdio would allocate.
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Sizes counted exactly by the test, each alone in its histogram bucket
// among the sizes this program asks for: 777 is in [777, 784], 12345 in
// (12288, 12800], 3000000 in (2883584, 3014656].
static const size_t tracked[] = {777, 12345, 3000000};
#define TRACKED (sizeof tracked / sizeof tracked[0])

static _Atomic uint64_t requested, allocations, tracked_count[TRACKED];
static int full = 1;

static void note(size_t size) {
    atomic_fetch_add(&requested, size);
    atomic_fetch_add(&allocations, 1);
    for (size_t i = 0; i < TRACKED; i++)
        if (tracked[i] == size) atomic_fetch_add(&tracked_count[i], 1);
}

static void *must(void *p) {
    if (!p) { write(2, "allocation failed\n", 18); abort(); }
    return p;
}

static void *counted_malloc(size_t n) { note(n); return must(malloc(n)); }

// realloc(p, n): noted when it returned another block.
static void *counted_realloc(void *p, size_t n) {
    void *q = must(realloc(p, n));
    if (q != p) note(n);
    return q;
}

// One of each entry point, at sizes small and large; everything is freed.
static void exercise(unsigned seed) {
    static const size_t sizes[] = {0, 1, 8, 9, 24, 100, 777, 1000, 1024, 1025, 5000, 12345,
                                   32768, 32769, 40000, 300000, 3000000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        free(counted_malloc(n));
        note(n * 3);
        void *c = must(calloc(3, n));
        free(c);
        void *p;
        note(n);
        if (posix_memalign(&p, 64, n) != 0) abort();
        free(p);
        note(n);
        free(must(memalign(256, n)));
        // A multiple of the alignment, as C11 asks (twice n: outside the
        // tracked sizes' buckets).
        size_t aligned = (2 * n + 127) & ~(size_t)127;
        note(aligned);
        free(must(aligned_alloc(128, aligned)));
        note(n);
        free(must(valloc(n)));
        note(n);
        free(must(pvalloc(n)));
    }
    // realloc: from NULL, growing across classes and into large, shrinking
    // in place, and to 0 (a free).
    char *r = counted_realloc(NULL, 16 + seed % 8);
    r = counted_realloc(r, 200);
    r = counted_realloc(r, 20000);
    r = counted_realloc(r, 19000);
    r = counted_realloc(r, 70000);
    r = counted_realloc(r, 100);
    if (realloc(r, 0) != NULL) abort();
    void *a = must(reallocarray(NULL, 7, 111));
    note(777);
    free(a);
}

static pthread_key_t late_key;

// Runs as a thread exits: allocates then, after or before the library's
// own exit handler (whichever glibc runs first).
static void late_destructor(void *value) {
    free(value);
    if (full) {
        free(counted_malloc(777));
        free(counted_malloc(12345));
    }
}

static void *worker(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    if (full) {
        exercise(seed);
        note(64);
        pthread_setspecific(late_key, must(malloc(64)));
    }
    return NULL;
}

static void print(const char *label, uint64_t value, uint64_t count, int with_count) {
    char line[128];
    int n = with_count ? snprintf(line, sizeof line, "%s %llu %llu\n", label, (unsigned long long)value,
                                  (unsigned long long)count)
                       : snprintf(line, sizeof line, "%s %llu\n", label, (unsigned long long)value);
    write(1, line, (size_t)n);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    full = strcmp(mode, "baseline") != 0;
    pthread_key_create(&late_key, late_destructor);
    if (full) exercise(1);
    if (strcmp(mode, "remap") == 0) {
        // Not noted: whether these allocate is up to the library.
        char *m = must(malloc(2 << 20));
        m = must(realloc(m, 8 << 20));
        m = must(realloc(m, 16 << 20));
        free(m);
    }
    // Threads: all started before any is joined, so that none reuses the
    // stack (and C library data) of one that exited.
    enum { THREADS = 6 };
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)(i + 2)) != 0) abort();
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    print("requested", atomic_load(&requested), 0, 0);
    print("allocations", atomic_load(&allocations), 0, 0);
    for (size_t i = 0; i < TRACKED; i++) print("size", tracked[i], atomic_load(&tracked_count[i]), 1);
    return 0;
}
