// Single-threaded small malloc/free pairs: the per-CPU fast path should
// serve nearly all of them (the stats file tells).
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    size_t sizes[] = {16, 32, 64, 128, 256};
    volatile unsigned char sink = 0;
    for (long i = 0; i < n; i++) {
        unsigned char *p = malloc(sizes[i % 5]);
        if (!p) return 2;
        p[0] = (unsigned char)i;
        sink ^= p[0];
        free(p);
    }
    printf("pairs %ld\n", n);
    return sink == 255 ? 0 : 0;
}
