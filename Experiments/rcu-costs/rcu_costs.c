// Measured costs of the RCU pieces SwiftMalloc uses (docs/rcu.md):
//   - a liburcu memb read-side section (lock + unlock), as the allocator's
//     readers pay it (through the shim's out-of-line wrappers: a call each);
//   - malloc_usable_size of a large block (page-map lookup + span record
//     read inside a read-side section) against a small one (no RCU);
//   - grace-period latency: urcu_memb_synchronize_rcu with 4 reader threads
//     looping in and out of read-side sections.
// Build: cc -O2 -pthread rcu_costs.c -o rcu_costs -lurcu-memb -lurcu-common
// Run under the library: LD_PRELOAD=.build/release/libSwiftMalloc.so ./rcu_costs
#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static atomic_int stop;

static void *reader(void *arg) {
    (void)arg;
    urcu_memb_register_thread();
    while (!atomic_load(&stop)) { urcu_memb_read_lock(); urcu_memb_read_unlock(); }
    urcu_memb_unregister_thread();
    return NULL;
}

static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

int main(void) {
    const long n = 20000000;
    urcu_memb_register_thread();
    double t0 = now();
    for (long i = 0; i < n; i++) { urcu_memb_read_lock(); urcu_memb_read_unlock(); }
    double section = (now() - t0) / n * 1e9;
    urcu_memb_unregister_thread();

    void *large = malloc(200 * 1024), *small = malloc(64);
    volatile size_t sink = 0;
    t0 = now();
    for (long i = 0; i < n / 10; i++) sink += malloc_usable_size(large);
    double usableLarge = (now() - t0) / (n / 10) * 1e9;
    t0 = now();
    for (long i = 0; i < n / 10; i++) sink += malloc_usable_size(small);
    double usableSmall = (now() - t0) / (n / 10) * 1e9;
    free(large);
    free(small);

    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, reader, NULL);
    double gp[200];
    for (int i = 0; i < 200; i++) { t0 = now(); urcu_memb_synchronize_rcu(); gp[i] = (now() - t0) * 1e6; }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    qsort(gp, 200, sizeof gp[0], cmp);
    printf("read-side section (inline lock+unlock): %.2f ns\n", section);
    printf("malloc_usable_size, large block (RCU section + span read): %.2f ns\n", usableLarge);
    printf("malloc_usable_size, small block (page map only): %.2f ns\n", usableSmall);
    printf("grace period (synchronize_rcu, 4 busy readers): median %.1f us, p90 %.1f us, max %.1f us\n", gp[100], gp[180], gp[199]);
    return 0;
}
