// idle_release.c — memory a program freed goes back to the OS while the
// program idles, without another call into the allocator (the library's
// idle-release thread, SWIFTMALLOC_IDLE_RELEASE_MS).
//
// Usage: idle_release threads|single|fork IDLE_MS
//   threads: two threads each allocate about 100 MB in small (16 B to 1 KiB)
//            and mid-size (4 KiB to 28 KiB) objects, write them, free them
//            all and end; main then sleeps 3 x IDLE_MS without allocating.
//   single:  the same work in main alone, the process never having a
//            second thread.
//   fork:    main starts and joins a thread (the process is multi-threaded,
//            its idle-release thread running), then forks; the child does
//            what `threads` does and the parent exits with its status.
// Prints, for the process that did the work:
//   rss_after_free N    resident bytes once everything was freed
//   rss_after_idle N    resident bytes after the idle time
//   tasks N             threads the process has then (/proc/self/task)
//   sigblk NAME HEX     for each of them, its name and its blocked signals
//                       (SigBlk in /proc/self/task/TID/status)
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test_support.h"

enum { BYTES_PER_WORKER = 100 << 20 };

static void print_signal_masks(void) {
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char path[300], name[64] = "", line[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", entry->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "Name:", 5) == 0) sscanf(line + 5, "%63s", name);
            if (strncmp(line, "SigBlk:", 7) == 0) {
                char mask[32] = "";
                sscanf(line + 7, "%31s", mask);
                printf("sigblk %s %s\n", name, mask);
            }
        }
        fclose(f);
    }
    closedir(dir);
}

static void *work(void *arg) {
    unsigned seed = (unsigned)(size_t)arg + 1;   // the thread's index + 1
    size_t capacity = BYTES_PER_WORKER / 256;
    void **objects = malloc(capacity * sizeof *objects);
    if (!objects) abort();
    size_t count = 0, bytes = 0;
    while (bytes < BYTES_PER_WORKER && count < capacity) {
        seed = seed * 1103515245u + 12345u;
        // Half the bytes in small objects, half in mid-size ones.
        size_t size = (count & 1) ? 4096 + (seed >> 8) % (24 << 10) : 16 + (seed >> 8) % 1009;
        if ((count & 1) && bytes >= BYTES_PER_WORKER / 2) size = 16 + (seed >> 8) % 1009;
        char *p = malloc(size);
        if (!p) abort();
        memset(p, (int)count, size);
        objects[count++] = p;
        bytes += size;
    }
    for (size_t i = 0; i < count; i++) free(objects[i]);
    free(objects);
    return NULL;
}

static void report_after_idle(long idle_ms) {
    printf("rss_after_free %ld\n", resident_bytes());
    fflush(stdout);
    usleep((useconds_t)(3 * idle_ms * 1000));
    printf("rss_after_idle %ld\n", resident_bytes());
    printf("tasks %d\n", task_count());
    print_signal_masks();
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: idle_release threads|single|fork IDLE_MS\n");
        return 2;
    }
    long idle_ms = atol(argv[2]);
    if (strcmp(argv[1], "threads") == 0) {
        run_threads(2, work);
        report_after_idle(idle_ms);
        return 0;
    }
    if (strcmp(argv[1], "single") == 0) {
        work((void *)1);
        work((void *)2);
        report_after_idle(idle_ms);
        return 0;
    }
    if (strcmp(argv[1], "fork") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, work, (void *)3) != 0) abort();
        pthread_join(t, NULL);
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            run_threads(2, work);
            report_after_idle(idle_ms);
            exit(0);
        }
        int status = -1;
        if (waitpid(pid, &status, 0) != pid) {
            perror("waitpid");
            return 2;
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
