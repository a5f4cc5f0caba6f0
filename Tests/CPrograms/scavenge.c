// scavenge.c — memory freed in one phase goes back to the OS while the
// program goes on allocating something else, without malloc_trim.
//
// Phase 1 allocates 48 MiB of 512-byte objects and frees them all; phase 2
// then churns small objects of another size (the slow-path calls that drive
// the library's scavenger). Prints the resident set after each phase:
// "rss_after_free <bytes> rss_after_churn <bytes>".
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long rss_bytes(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

int main(void) {
    enum { BIG = 512, COUNT = (48 << 20) / 512, SMALL = 64, BATCH = 20000 };
    static void *objects[COUNT];
    for (int i = 0; i < COUNT; i++) {
        objects[i] = malloc(BIG);
        if (!objects[i]) return 1;
        memset(objects[i], i, BIG);
    }
    for (int i = 0; i < COUNT; i++) free(objects[i]);
    long after_free = rss_bytes();
    static void *small[BATCH];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < BATCH; i++) { small[i] = malloc(SMALL); if (!small[i]) return 1; *(char *)small[i] = 1; }
        for (int i = 0; i < BATCH; i++) free(small[i]);
    }
    printf("rss_after_free %ld rss_after_churn %ld\n", after_free, rss_bytes());
    return 0;
}
