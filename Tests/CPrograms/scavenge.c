// scavenge.c — memory freed in one phase goes back to the OS while the
// program goes on allocating something else, without malloc_trim.
//
// Phase 1 allocates 48 MiB of 512-byte objects and frees them all; phase 2
// then churns small objects of another size (the slow-path calls that drive
// the library's scavenger). Prints the resident set after each phase:
// "rss_after_free <bytes> rss_after_churn <bytes> churn_ms <milliseconds>".
//
// Usage: scavenge [threaded MS]
//   threaded MS: first start and join a thread, so that the process is
//   multi-threaded (the library's idle-release thread runs the scavenger's
//   passes then), and churn for at least MS milliseconds.
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include "test_support.h"

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    enum { BIG = 512, COUNT = (48 << 20) / 512, SMALL = 64, BATCH = 20000 };
    long churn_ms = 0;
    if (argc == 3 && strcmp(argv[1], "threaded") == 0) {
        churn_ms = atol(argv[2]);
        become_multithreaded();
    } else if (argc != 1) {
        fprintf(stderr, "usage: scavenge [threaded MS]\n");
        return 2;
    }
    static void *objects[COUNT];
    for (int i = 0; i < COUNT; i++) {
        objects[i] = malloc(BIG);
        if (!objects[i]) return 1;
        memset(objects[i], i, BIG);
    }
    for (int i = 0; i < COUNT; i++) free(objects[i]);
    long after_free = resident_bytes();
    static void *small[BATCH];
    long start = now_ms();
    for (int round = 0; round < 200 || now_ms() - start < churn_ms; round++) {
        for (int i = 0; i < BATCH; i++) { small[i] = malloc(SMALL); if (!small[i]) return 1; *(char *)small[i] = 1; }
        for (int i = 0; i < BATCH; i++) free(small[i]);
    }
    printf("rss_after_free %ld rss_after_churn %ld churn_ms %ld\n", after_free, resident_bytes(), now_ms() - start);
    return 0;
}
