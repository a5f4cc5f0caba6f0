// rseq_refused.c — threads whose rseq registration fails must still get
// correct memory under the per-CPU front end.
//
// The main thread allocates first (the library starts with per-CPU caches),
// then installs a seccomp filter that makes the rseq system call fail with
// EPERM for every thread created afterwards. Those threads (8 of them, on
// both CPUs at once) allocate, fill, check and free small objects. A thread
// without a working registration must not touch the per-CPU slabs (they
// would be unprotected: two threads could pop the same object); the library
// serves it from the middle instead. Prints "ok" and the number of
// pattern mismatches (0), and exits 0, when all went well.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 8
#define SLOTS 256
#define OPS 200000

static _Atomic long mismatches;

static void *worker(void *arg) {
    uintptr_t id = (uintptr_t)arg;
    unsigned char *slot[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    uint64_t x = 0x9E3779B97F4A7C15ull * (id + 1);
    for (int i = 0; i < OPS; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int k = (int)(x % SLOTS);
        if (slot[k]) {
            unsigned char tag = (unsigned char)((uintptr_t)slot[k] >> 4 ^ id);
            for (size_t j = 0; j < size[k]; j++)
                if (slot[k][j] != tag) { mismatches++; break; }
            free(slot[k]);
        }
        size[k] = (size_t)(x >> 20) % 300 + 1;
        slot[k] = malloc(size[k]);
        if (!slot[k]) { mismatches++; size[k] = 0; continue; }
        memset(slot[k], (unsigned char)((uintptr_t)slot[k] >> 4 ^ id), size[k]);
    }
    for (int k = 0; k < SLOTS; k++) free(slot[k]);
    return NULL;
}

int main(void) {
    free(malloc(64));   // the library is up, with this thread registered
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rseq, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("seccomp");
        return 2;
    }
    // The filter works: a registration attempt now fails.
    if (syscall(__NR_rseq, NULL, 0, 0, 0) != -1 || errno != EPERM) { printf("filter not effective\n"); return 2; }
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("ok mismatches %ld\n", (long)mismatches);
    return mismatches == 0 ? 0 : 1;
}
