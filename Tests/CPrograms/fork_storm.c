// fork from a process whose threads are allocating: every child must be able
// to allocate, start a thread that allocates, and exit 0.
//     fork_storm [forks=1000] [busy threads=4]
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static void *busy(void *arg) {
    unsigned seed = (unsigned)(size_t)arg;
    void *keep[64] = {0};
    while (!atomic_load(&stop)) {
        int i = (int)(rand_r(&seed) % 64);
        free(keep[i]);
        size_t size = 1 + rand_r(&seed) % (i < 4 ? 200000 : 2000);
        keep[i] = malloc(size);
        if (!keep[i]) abort();
        memset(keep[i], i, size);
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(16 + (size_t)i);
        if (!p) return (void *)1;
        p[0] = 1;
        free(p);
    }
    return NULL;
}

static int child(void) {
    void *blocks[100];
    for (int i = 0; i < 100; i++) {
        blocks[i] = malloc((size_t)(i * 97 + 1));
        if (!blocks[i]) return 2;
        memset(blocks[i], 0xab, (size_t)(i * 97 + 1));
    }
    pthread_t t;
    void *result = (void *)1;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0) return 3;
    if (pthread_join(t, &result) != 0 || result != NULL) return 4;
    for (int i = 0; i < 100; i++) free(blocks[i]);
    return 0;
}

int main(int argc, char **argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 1000;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    pthread_t tids[64];
    for (int i = 0; i < threads; i++) pthread_create(&tids[i], NULL, busy, (void *)(size_t)(i + 1));
    int failures = 0;
    for (int f = 0; f < forks; f++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) exit(child());
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failures++;
            fprintf(stderr, "child %d failed: status 0x%x\n", f, status);
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++) pthread_join(tids[i], NULL);
    printf("forks %d failures %d\n", forks, failures);
    return failures == 0 ? 0 : 1;
}
