// Footprint under oversubscription: THREADS threads (default 64) churn small
// objects across many size classes, free everything, and park. The process
// prints how much its resident set grew from before the threads started to
// when all of them were parked holding nothing:
//     rss_growth_kb <n>
// A per-thread cache keeps each thread's freed objects; a per-CPU cache keeps
// only what the CPUs' slabs hold, whatever the number of threads.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rounds = 20;
static pthread_barrier_t parked, release;

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static void *churn(void *arg) {
    (void)arg;
    void *blocks[32];
    for (int r = 0; r < rounds; r++) {
        for (size_t size = 16; size <= 4096; size += size < 256 ? 16 : size / 8) {
            for (int i = 0; i < 32; i++) {
                blocks[i] = malloc(size);
                if (!blocks[i]) { fprintf(stderr, "malloc failed\n"); exit(2); }
                memset(blocks[i], 0x5a, size);
            }
            for (int i = 0; i < 32; i++) {
                if (((unsigned char *)blocks[i])[size - 1] != 0x5a) { fprintf(stderr, "corrupt\n"); exit(3); }
                free(blocks[i]);
            }
        }
    }
    pthread_barrier_wait(&parked);   // holding nothing
    pthread_barrier_wait(&release);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 64;
    if (argc > 2) rounds = atoi(argv[2]);
    pthread_t tids[1024];
    if (threads < 1 || threads > 1024) return 1;
    pthread_barrier_init(&parked, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&release, NULL, (unsigned)threads + 1);
    long before = rss_kb();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&tids[i], NULL, churn, NULL) != 0) return 1;
    pthread_barrier_wait(&parked);
    long after = rss_kb();
    pthread_barrier_wait(&release);
    for (int i = 0; i < threads; i++) pthread_join(tids[i], NULL);
    printf("rss_growth_kb %ld\n", after - before);
    return 0;
}
