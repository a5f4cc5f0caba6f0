// past_limit.c — a multi-threaded program frees 96 MiB of 64 KiB blocks,
// three times the 32 MiB of free pages the page heap keeps at first, then
// keeps calling the allocator lightly (one large malloc/free every 50 ms,
// so it never idles) for 1.5 s. Prints the resident bytes right after the
// free and at the end, and the page faults of allocating the 96 MiB again
// right after the free (a second program, "again"):
//   "after_free <bytes> at_end <bytes>"   or   "after_free <bytes> refaults <count>"
// While the library's idle-release thread runs, runs freed past the limit
// stay resident (a program that comes back for them faults nothing in) and
// go back once they have stayed free for decay_ms.
#define _GNU_SOURCE
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "test_support.h"

enum { SIZE = 64 << 10, COUNT = (96 << 20) / SIZE };

static void fill(void **blocks) {
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = malloc(SIZE);
        if (!blocks[i]) exit(1);
        memset(blocks[i], i, SIZE);
    }
}

static long minor_faults(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

int main(int argc, char **argv) {
    static void *blocks[COUNT];
    become_multithreaded();
    fill(blocks);
    for (int i = 0; i < COUNT; i++) free(blocks[i]);
    long afterFree = resident_bytes();
    if (argc > 1 && strcmp(argv[1], "again") == 0) {
        long before = minor_faults();
        fill(blocks);
        printf("after_free %ld refaults %ld\n", afterFree, minor_faults() - before);
        return 0;
    }
    for (int i = 0; i < 30; i++) {
        free(malloc(100000));
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    }
    printf("after_free %ld at_end %ld\n", afterFree, resident_bytes());
    return 0;
}
