// large_cache.c — freed large blocks are reused, checked, and trimmed.
//
// Allocates, fills and frees blocks of 4–8 MiB (malloc maps its own from
// 4 MiB) in a loop (sizes repeat, so freed mappings can be reused), checking each new block is writable over
// its whole usable size and that calloc'd ones read as zero even when they
// reuse a dirty mapping. Then calls malloc_trim(0), which must unmap every
// cached mapping: the stats file written at exit shows large_cache_hits and
// large_cache_bytes (0 after the trim). Prints "ok" when all checks pass.
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const size_t sizes[] = {4 << 20, (6 << 20) + 100, 8 << 20, (4 << 20) + 4096};
    int failures = 0;
    for (int i = 0; i < 400; i++) {
        size_t n = sizes[i % 4];
        unsigned char *p = (i % 3 == 0) ? calloc(1, n) : malloc(n);
        if (!p) { printf("NULL for %zu\n", n); return 1; }
        if (i % 3 == 0) {
            for (size_t j = 0; j < n; j += 512)
                if (p[j] != 0) { printf("calloc byte %zu of %zu is 0x%02x\n", j, n, p[j]); failures++; break; }
        }
        size_t usable = malloc_usable_size(p);
        if (usable < n) { printf("usable %zu < %zu\n", usable, n); failures++; }
        memset(p, 0xC5, usable);
        free(p);
    }
    malloc_trim(0);
    if (failures) { printf("failures %d\n", failures); return 1; }
    printf("ok\n");
    return 0;
}
