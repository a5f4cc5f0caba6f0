// config_sizes.c — malloc_usable_size under the size classes in use.
//
// For each size given on the command line: malloc, aligned_alloc(64, ...)
// and realloc blocks of that size, check that each is writable over its
// whole usable size and at least as large as asked, and print
// "size N usable U" (U from malloc in the second round, when the thread
// takes the fast paths). Sizes above the largest configured class but
// within the small range (32 KiB) must still work: they are large
// allocations then. Prints "ok" when all checks pass.
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(const char *what, size_t n, unsigned char *p, size_t alignment) {
    if (!p) { printf("FAIL %s(%zu) returned NULL\n", what, n); return 1; }
    size_t usable = malloc_usable_size(p);
    if (usable < n) { printf("FAIL %s(%zu): usable %zu\n", what, n, usable); return 1; }
    if ((uintptr_t)p % alignment != 0) { printf("FAIL %s(%zu): %p not aligned to %zu\n", what, n, (void *)p, alignment); return 1; }
    memset(p, 0xA5, usable);
    return 0;
}

int main(int argc, char **argv) {
    int failures = 0;
    for (int i = 1; i < argc; i++) {
        size_t n = strtoull(argv[i], NULL, 10);
        // malloc's alignment: 16 bytes, or 8 for blocks of at most 8 bytes.
        size_t alignment = n <= 8 ? 8 : 16;
        // Several rounds, so that caches are refilled and reused.
        for (int round = 0; round < 100; round++) {
            unsigned char *p = malloc(n);
            failures += check("malloc", n, p, alignment);
            if (round == 1) printf("size %zu usable %zu\n", n, malloc_usable_size(p));
            unsigned char *a = aligned_alloc(64, (n + 63) & ~(size_t)63);
            failures += check("aligned_alloc", (n + 63) & ~(size_t)63, a, 64);
            unsigned char *r = realloc(malloc(8), n);
            failures += check("realloc", n, r, alignment);
            free(p);
            free(a);
            free(r);
        }
    }
    if (failures) return 1;
    printf("ok\n");
    return 0;
}
