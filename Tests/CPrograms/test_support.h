// What several test programs need: running threads to completion, the
// number of threads the process has, its resident set, and turning it
// multi-threaded. Included by the programs in this folder.
#ifndef SWIFTMALLOC_TEST_SUPPORT_H
#define SWIFTMALLOC_TEST_SUPPORT_H

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

// Runs `body` on `n` threads (argument: the thread's index, 0 ... n-1) with
// small stacks, and waits for all of them. Exits with status 2 when a thread
// cannot be created.
static inline void run_threads(int n, void *(*body)(void *)) {
    pthread_t *ids = calloc((size_t)n, sizeof(pthread_t));
    if (!ids) {
        printf("calloc failed\n");
        exit(2);
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < n; i++)
        if (pthread_create(&ids[i], &attr, body, (void *)(intptr_t)i) != 0) {
            printf("pthread_create failed\n");
            exit(2);
        }
    for (int i = 0; i < n; i++) pthread_join(ids[i], NULL);
    pthread_attr_destroy(&attr);
    free(ids);
}

// The process's threads (entries of /proc/self/task), or -1.
static inline int task_count(void) {
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return -1;
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.') n++;
    closedir(dir);
    return n;
}

// The process's resident set in bytes (/proc/self/statm), or -1.
static inline long resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long pages = 0, resident = 0;
    int n = fscanf(f, "%ld %ld", &pages, &resident);
    fclose(f);
    return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

static inline void *allocate_once(void *arg) {
    free(malloc(64));
    return arg;
}

// Starts a thread that allocates once and joins it: the process is
// multi-threaded from then on (glibc's __libc_single_threaded is false),
// so the library's idle-release thread runs. Exits with status 2 when the
// thread cannot be created.
static inline void become_multithreaded(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, allocate_once, NULL) != 0 || pthread_join(t, NULL) != 0) {
        printf("pthread_create failed\n");
        exit(2);
    }
}

#endif
