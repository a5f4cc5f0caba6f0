// cycle.c — allocate MIB MiB of SIZE-byte blocks (writing the first 64
// bytes of each), free them all, ROUNDS times; prints the time and the
// process's minor page faults. An allocator that gives freed pages back
// between rounds faults them in again on every round.
//   cycle SIZE MIB ROUNDS        (default 8192 48 30)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int main(int argc, char **argv) {
    size_t size = argc > 1 ? strtoul(argv[1], 0, 0) : 8192;
    size_t mib = argc > 2 ? strtoul(argv[2], 0, 0) : 48;
    int rounds = argc > 3 ? atoi(argv[3]) : 30;
    size_t n = (mib << 20) / size;
    void **blocks = malloc(n * sizeof *blocks);
    if (!blocks) return 1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            blocks[i] = malloc(size);
            if (!blocks[i]) return 1;
            memset(blocks[i], (int)i, size < 64 ? size : 64);
        }
        for (size_t i = 0; i < n; i++) free(blocks[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%.3f s faults %ld\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9, ru.ru_minflt);
    return 0;
}
