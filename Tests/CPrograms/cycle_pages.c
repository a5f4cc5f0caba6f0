// cycle_pages.c — a program that allocates 64 MiB of 8 KiB blocks, frees
// them all, and does it again, round after round: more memory than the page
// heap keeps of free pages at first (32 MiB). Prints the page faults
// (minor, from getrusage) of each round: "faults <round 1> <round 2> ...".
// After the first rounds the allocator should keep the pages the program
// comes back for instead of giving them back and faulting them in again.
#define _GNU_SOURCE
#include <string.h>
#include <sys/resource.h>

#include "test_support.h"

static long minor_faults(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

int main(void) {
    enum { SIZE = 8192, COUNT = (64 << 20) / SIZE, ROUNDS = 8 };
    static void *blocks[COUNT];
    printf("faults");
    for (int round = 0; round < ROUNDS; round++) {
        long before = minor_faults();
        for (int i = 0; i < COUNT; i++) {
            blocks[i] = malloc(SIZE);
            if (!blocks[i]) return 1;
            memset(blocks[i], round, SIZE);
        }
        for (int i = 0; i < COUNT; i++) free(blocks[i]);
        printf(" %ld", minor_faults() - before);
    }
    printf("\n");
    return 0;
}
