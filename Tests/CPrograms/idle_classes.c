// idle_classes.c — a program that stops asking for one size and grows with
// another, the pattern of the lab's `fragmentation` phases.
//
// Phase 1 allocates 16 MiB of 2048-byte objects and frees them all, in
// random order; phase 2 allocates 32 MiB of 3072-byte objects and holds
// them. Nothing allocates 2048 bytes again, so the objects of that class
// that the caches kept are idle from then on, while the heap grows by
// 32 MiB. Prints the resident set after each phase:
// "rss_after_phase1 <bytes> rss_after_phase2 <bytes>".
//
// Usage: idle_classes [threaded]
//   threaded: first start and join a thread, so that the process is
//   multi-threaded (the library's idle-release thread runs the scavenger's
//   passes then).
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "test_support.h"

int main(int argc, char **argv) {
    enum { OLD = 2048, OLD_COUNT = (16 << 20) / OLD, NEW = 3072, NEW_COUNT = (32 << 20) / NEW };
    if (argc == 2 && strcmp(argv[1], "threaded") == 0) {
        become_multithreaded();
    } else if (argc != 1) {
        fprintf(stderr, "usage: idle_classes [threaded]\n");
        return 2;
    }
    static void *old[OLD_COUNT];
    for (int i = 0; i < OLD_COUNT; i++) {
        old[i] = malloc(OLD);
        if (!old[i]) return 1;
        memset(old[i], i, OLD);
    }
    // Free in random order (a fixed xorshift sequence: Fisher-Yates).
    uint64_t x = 88172645463325252ull;
    for (int i = OLD_COUNT - 1; i > 0; i--) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int j = (int)(x % (uint64_t)(i + 1));
        void *t = old[i]; old[i] = old[j]; old[j] = t;
    }
    for (int i = 0; i < OLD_COUNT; i++) free(old[i]);
    long after_phase1 = resident_bytes();
    static void *held[NEW_COUNT];
    for (int i = 0; i < NEW_COUNT; i++) {
        held[i] = malloc(NEW);
        if (!held[i]) return 1;
        memset(held[i], i, NEW);
    }
    printf("rss_after_phase1 %ld rss_after_phase2 %ld\n", after_phase1, resident_bytes());
    for (int i = 0; i < NEW_COUNT; i++) free(held[i]);
    return 0;
}
