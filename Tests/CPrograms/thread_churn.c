// Many short-lived threads that allocate, free each other's objects and
// exit. Prints the library's mapped bytes after the first and the last
// round, so a test can check that they stay bounded (nothing per thread is
// lost). Without the library the numbers print as 0.
//     thread_churn [threads=10000] [per round=50]
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swiftmalloc.h"

#define SLOTS 256
static void *shared[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 200; i++) {
        size_t size = 1 + rand_r(&seed) % (i % 50 == 0 ? 100000 : 1024);
        unsigned char *p = malloc(size);
        if (!p) abort();
        p[0] = (unsigned char)size;
        p[size - 1] = (unsigned char)size;
        int slot = (int)(rand_r(&seed) % SLOTS);
        pthread_mutex_lock(&lock);
        void *old = shared[slot];   // another thread's object
        shared[slot] = p;
        pthread_mutex_unlock(&lock);
        free(old);
        if (i % 3 == 0) free(malloc(size));
    }
    return NULL;
}

static uint64_t mapped_bytes(void) {
    int (*get)(struct swiftmalloc_stats *) = (int (*)(struct swiftmalloc_stats *))dlsym(RTLD_DEFAULT, "swiftmalloc_get_stats");
    struct swiftmalloc_stats s;
    if (!get || get(&s) != 0) return 0;
    return s.mapped_bytes;
}

int main(int argc, char **argv) {
    int total = argc > 1 ? atoi(argv[1]) : 10000;
    int round = argc > 2 ? atoi(argv[2]) : 50;
    pthread_t tids[256];
    uint64_t first = 0;
    for (int done = 0; done < total; done += round) {
        int n = total - done < round ? total - done : round;
        for (int i = 0; i < n; i++)
            if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)(done + i + 1)) != 0) { perror("pthread_create"); return 1; }
        for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
        if (done == 0) first = mapped_bytes();
    }
    for (int i = 0; i < SLOTS; i++) free(shared[i]);
    printf("threads %d mapped_first %llu mapped_last %llu\n", total, (unsigned long long)first,
           (unsigned long long)mapped_bytes());
    return 0;
}
