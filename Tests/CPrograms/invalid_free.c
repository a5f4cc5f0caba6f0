// invalid_free.c — frees a pointer that the allocator never returned.
//
// Usage: invalid_free MODE [free|realloc|usable]
//   MODE: stack|large-interior|mmap|mmap-interior|small-interior|
//         small-misaligned|small-slack|freed-large|double
//   double: a 48-byte block, freed once before (the message is then
//   "free(): double free 0x<hex>").
//   small-slack: where a 2nd 18000-byte block would start in the span of
//   one (18 KiB objects, 20 KiB spans: a multiple of the object size
//   inside the span, but past its last object).
//
// Prints "address 0x<hex>" (the pointer about to be passed) on stdout,
// flushes, then calls free() on it (or realloc(p, 24), or
// malloc_usable_size(p)). Under libSwiftMalloc.so the process must stop with
// SIGABRT and "swiftmalloc: free(): invalid pointer 0x<hex>" (realloc(),
// malloc_usable_size()) on stderr. If the call returns, the program prints
// "free returned" and exits with 3 (for the small modes it first shows
// whether the next two malloc(64) calls hand out memory that overlaps the
// still-live block).
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void *volatile sink;

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s stack|large-interior|mmap|mmap-interior|small-interior|small-misaligned|small-slack|double|"
                        "freed-large [free|realloc|usable]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    const char *call = argc == 3 ? argv[2] : "free";
    // Warm the allocator up first so that its structures exist.
    for (int i = 0; i < 100; i++) {
        void *p = malloc((size_t)i * 33 + 1);
        sink = p;
        free(p);
    }
    char stackBuffer[256];
    memset(stackBuffer, 1, sizeof stackBuffer);
    sink = stackBuffer;
    void *target;
    char *small = NULL;
    if (strcmp(mode, "stack") == 0) {
        target = stackBuffer + 16;
    } else if (strcmp(mode, "large-interior") == 0) {
        size_t size = (size_t)4 << 20;
        char *big = malloc(size);
        if (!big) return 4;
        memset(big, 7, size);
        target = big + size / 2 + 48;
    } else if (strcmp(mode, "freed-large") == 0) {
        // A 4 MiB block, freed: its mapping stays in the library's cache,
        // but it is no allocation any more, so freeing it again is invalid.
        size_t size = (size_t)4 << 20;
        char *big = malloc(size);
        if (!big) return 4;
        memset(big, 3, size);
        free(big);
        target = big;
    } else if (strcmp(mode, "small-interior") == 0) {
        small = malloc(64);
        if (!small) return 4;
        memset(small, 5, 64);
        target = small + 16;
    } else if (strcmp(mode, "double") == 0) {
        // Another block of the class stays live, so that p's span stays with
        // its class: were p its only object, freeing p would give the span's
        // pages back, and printf's buffer below could be carved from them,
        // starting at p (then the second free frees that buffer, a block the
        // allocator really handed out).
        static char *keep;
        keep = malloc(48);
        if (!keep) return 4;
        char *p = malloc(48);
        if (!p) return 4;
        memset(p, 4, 48);
        free(p);
        target = p;
    } else if (strcmp(mode, "small-slack") == 0) {
        small = malloc(18000);
        if (!small) return 4;
        memset(small, 6, 18000);
        target = small + malloc_usable_size(small);
    } else if (strcmp(mode, "small-misaligned") == 0) {
        small = malloc(64);
        if (!small) return 4;
        memset(small, 5, 64);
        target = small + 1;
    } else if (strcmp(mode, "mmap") == 0 || strcmp(mode, "mmap-interior") == 0) {
        size_t size = 1 << 16;
        char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return 4;
        memset(m, 9, size);
        target = strcmp(mode, "mmap") == 0 ? m : m + 4096 + 32;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("address %p\n", target);
    fflush(stdout);
    sink = target;
    if (strcmp(call, "realloc") == 0) {
        sink = realloc(sink, 24);
    } else if (strcmp(call, "usable") == 0) {
        printf("usable size %zu\n", malloc_usable_size(sink));
    } else {
        free(sink);
    }
    printf("free returned\n");
    if (small) {
        char *a = malloc(64), *b = malloc(64);
        int overlap = (a > small - 64 && a < small + 64) || (b > small - 64 && b < small + 64);
        printf("live block %p; next malloc(64) calls: %p %p%s\n", (void *)small, (void *)a, (void *)b,
               overlap ? " (overlapping the live block)" : "");
    }
    fflush(stdout);
    return 3;
}
