// What several test programs need: running threads to completion, and the
// number of threads the process has. Included by the programs in this folder.
#ifndef SWIFTMALLOC_TEST_SUPPORT_H
#define SWIFTMALLOC_TEST_SUPPORT_H

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
