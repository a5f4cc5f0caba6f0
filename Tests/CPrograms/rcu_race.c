// Lock-free readers against retirement. For SECONDS (default 3):
//   4 owner threads allocate large blocks (page-heap spans and mapped ones),
//     check malloc_usable_size, and free them in random order, so spans
//     coalesce and their records are retired;
//   4 querier threads call malloc_usable_size on the owners' live blocks
//     (pinned by a per-slot mutex, so the program stays valid);
//   2 trimmer threads call malloc_trim(0): release to the OS, drains;
//   2 stats threads walk the thread registry (swiftmalloc_get_stats) while
//     short-lived threads come and go.
// Exits 0 when every check held. Run with SWIFTMALLOC_DEBUG=1 to poison
// retired metadata: a reader touching it after its grace period aborts.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "swiftmalloc.h"

#define SLOTS 64
struct slot { pthread_mutex_t lock; void *block; size_t size; };
static struct slot slots[SLOTS];
static atomic_int stop;
static atomic_long queries, frees, trims, walks, churned;
static atomic_int failures;
static int (*get_stats)(struct swiftmalloc_stats *);

static size_t pick_size(unsigned *seed) {
    switch (rand_r(seed) % 4) {
    case 0: return 33 * 1024 + rand_r(seed) % (64 * 1024);        // a few pages
    case 1: return 200 * 1024 + rand_r(seed) % (600 * 1024);      // many pages
    case 2: return (1 << 20) + rand_r(seed) % (1 << 20);          // mapped
    default: return 40 + rand_r(seed) % 4000;                      // small
    }
}

static void *owner(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&stop)) {
        int i = (int)(rand_r(&seed) % SLOTS);
        size_t size = pick_size(&seed);
        void *fresh = malloc(size);
        if (!fresh) { atomic_fetch_add(&failures, 1); continue; }
        memset(fresh, 0x3c, size < 64 ? size : 64);
        if (malloc_usable_size(fresh) < size) atomic_fetch_add(&failures, 1);
        pthread_mutex_lock(&slots[i].lock);
        void *old = slots[i].block;
        slots[i].block = fresh;
        slots[i].size = size;
        pthread_mutex_unlock(&slots[i].lock);
        free(old);
        atomic_fetch_add(&frees, 1);
    }
    return NULL;
}

static void *querier(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&stop)) {
        int i = (int)(rand_r(&seed) % SLOTS);
        pthread_mutex_lock(&slots[i].lock);
        if (slots[i].block && malloc_usable_size(slots[i].block) < slots[i].size) atomic_fetch_add(&failures, 1);
        pthread_mutex_unlock(&slots[i].lock);
        atomic_fetch_add(&queries, 1);
    }
    return NULL;
}

static void *trimmer(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        malloc_trim(0);
        atomic_fetch_add(&trims, 1);
        usleep(200);
    }
    return NULL;
}

static void *volatile sink;

static void *short_lived(void *arg) {
    (void)arg;
    char *p = malloc(100), *q = malloc(50000);
    if (!p || !q) atomic_fetch_add(&failures, 1);
    else { p[0] = 1; q[49999] = 2; sink = p; sink = q; }
    free(p);
    free(q);
    return NULL;
}

static void *walker(void *arg) {
    (void)arg;
    struct swiftmalloc_stats s;
    while (!atomic_load(&stop)) {
        if (get_stats && get_stats(&s) != 0) atomic_fetch_add(&failures, 1);
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, NULL) == 0) pthread_join(t, NULL);
        atomic_fetch_add(&walks, 1);
        atomic_fetch_add(&churned, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    get_stats = (int (*)(struct swiftmalloc_stats *))dlsym(RTLD_DEFAULT, "swiftmalloc_get_stats");
    for (int i = 0; i < SLOTS; i++) pthread_mutex_init(&slots[i].lock, NULL);
    pthread_t t[12];
    int n = 0;
    for (int i = 0; i < 4; i++) pthread_create(&t[n++], NULL, owner, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 4; i++) pthread_create(&t[n++], NULL, querier, (void *)(uintptr_t)(i + 11));
    for (int i = 0; i < 2; i++) pthread_create(&t[n++], NULL, trimmer, NULL);
    for (int i = 0; i < 2; i++) pthread_create(&t[n++], NULL, walker, NULL);
    struct timespec pause = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&pause, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < SLOTS; i++) free(slots[i].block);
    printf("queries %ld frees %ld trims %ld walks %ld threads %ld failures %d\n", atomic_load(&queries),
           atomic_load(&frees), atomic_load(&trims), atomic_load(&walks), atomic_load(&churned), atomic_load(&failures));
    return atomic_load(&failures) == 0 ? 0 : 1;
}
