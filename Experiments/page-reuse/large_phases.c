// large_phases.c — the two phases of malloc-lab's `largerealloc`, timed
// apart, with the page faults of each:
//   blocks: BLOCKS blocks of 64 KiB–4 MiB, four live at a time, every page
//           written, each freed when its slot is reused;
//   growth: ROUNDS rounds of 16 buffers grown by realloc, round-robin, by a
//           quarter at a time from 16 bytes to 4 MiB, each new page written.
//   large_phases [BLOCKS [ROUNDS]]   (default 600 2)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long faults(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_minflt;
}

static uint64_t state = 88172645463325252ull;
static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

int main(int argc, char **argv) {
    int blocks = argc > 1 ? atoi(argv[1]) : 600, rounds = argc > 2 ? atoi(argv[2]) : 2;
    const size_t maxGrow = 4u << 20;
    char *window[4] = {0};
    double t0 = now();
    long f0 = faults();
    for (int i = 0; i < blocks; i++) {
        uint64_t r = next();
        int k = (int)(r % 4);
        free(window[k]);
        size_t base = (size_t)65536 << ((r >> 8) % 6), size = base + (r >> 16) % base;
        char *p = malloc(size);
        if (!p) return 1;
        for (size_t o = 0; o < size; o += 4096) p[o] = 1;
        p[size - 1] = 2;
        window[k] = p;
    }
    for (int k = 0; k < 4; k++) free(window[k]);
    double t1 = now();
    long f1 = faults();
    for (int round = 0; round < rounds; round++) {
        char *buffers[16];
        size_t sizes[16];
        for (int b = 0; b < 16; b++) {
            buffers[b] = malloc(16);
            if (!buffers[b]) return 1;
            sizes[b] = 16;
        }
        for (int growing = 1; growing;) {
            growing = 0;
            for (int b = 0; b < 16; b++) {
                size_t old = sizes[b];
                if (old >= maxGrow) continue;
                growing = 1;
                size_t size = old + old / 4 + 16;
                if (size > maxGrow) size = maxGrow;
                char *p = realloc(buffers[b], size);
                if (!p) return 1;
                for (size_t o = (old + 4095) & ~(size_t)4095; o < size; o += 4096) p[o] = 3;
                p[size - 1] = 4;
                buffers[b] = p;
                sizes[b] = size;
            }
        }
        for (int b = 0; b < 16; b++) free(buffers[b]);
    }
    double t2 = now();
    long f2 = faults();
    printf("blocks %.1f ms %ld faults | growth %.1f ms %ld faults\n", (t1 - t0) * 1e3, f1 - f0, (t2 - t1) * 1e3, f2 - f1);
    return 0;
}
