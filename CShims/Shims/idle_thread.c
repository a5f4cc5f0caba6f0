// The idle-release thread's system glue (see Scavenger.swift): starting it
// with every signal blocked, telling whether any other thread is still
// alive, waiting on its doorbell, and ending the process as glibc does after
// its last thread. Nothing here allocates.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "swiftmalloc_shims.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void (*sm_idle_body)(void);

static void *sm_idle_entry(void *arg) {
    (void)arg;
    // So that ps, top and gdb show what the extra thread is.
    prctl(PR_SET_NAME, "swiftmalloc", 0, 0, 0);
    sm_idle_body();
    return NULL;
}

int sm_idle_thread_start(void (*body)(void)) {
    sm_idle_body = body;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) return -1;
    // Signals meant for the program must never be delivered to this thread:
    // it starts with all of them blocked (set in the attribute, so the
    // creating thread's mask is never touched).
    sigset_t all;
    sigfillset(&all);
    pthread_t thread;
    int rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0) rc = pthread_attr_setsigmask_np(&attr, &all);
    if (rc == 0) rc = pthread_create(&thread, &attr, sm_idle_entry, NULL);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

void sm_idle_ring(uint32_t *bell) {
    if (__atomic_exchange_n(bell, 1, __ATOMIC_RELEASE) == 0)
        syscall(SYS_futex, bell, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

bool sm_idle_wait(uint32_t *bell, uint32_t ms) {
    if (__atomic_exchange_n(bell, 0, __ATOMIC_ACQUIRE) != 0) return true;
    struct timespec timeout = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    // Returns when rung, at the timeout, or on a spurious wake-up: all fine,
    // the caller reads the clock.
    syscall(SYS_futex, bell, FUTEX_WAIT_PRIVATE, 0, &timeout, NULL, 0);
    return __atomic_exchange_n(bell, 0, __ATOMIC_ACQUIRE) != 0;
}

uint64_t sm_monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

// Reads up to capacity - 1 bytes of a small /proc file into `text`
// (NUL-terminated); the length, or -1.
static ssize_t sm_read_small(const char *path, char *text, size_t capacity) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t length = 0;
    while (length < capacity - 1) {
        ssize_t n = read(fd, text + length, capacity - 1 - length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        length += (size_t)n;
    }
    close(fd);
    text[length] = 0;
    return (ssize_t)length;
}

// The state letter of a /proc .../stat line: the field after the command
// name, which is in parentheses and may itself hold ')' or spaces.
static char sm_stat_state(const char *text) {
    const char *close = NULL;
    for (const char *p = text; *p; p++)
        if (*p == ')') close = p;
    return close && close[1] == ' ' ? close[2] : 0;
}

// The 20th field of /proc/self/stat, num_threads.
static long sm_stat_threads(const char *text) {
    const char *p = NULL;
    for (const char *q = text; *q; q++)
        if (*q == ')') p = q;
    if (!p) return -1;
    // After ") ": state is field 3; num_threads is field 20.
    int field = 2;
    while (*p && field < 20) {
        if (*p == ' ') field++;
        p++;
    }
    if (field != 20 || *p < '0' || *p > '9') return -1;
    long n = 0;
    while (*p >= '0' && *p <= '9') n = n * 10 + (*p++ - '0');
    return n;
}

struct sm_dirent64 {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

int sm_other_threads_alive(void) {
    char text[1024];
    if (sm_read_small("/proc/self/stat", text, sizeof text) <= 0) return -1;
    long threads = sm_stat_threads(text);
    if (threads < 0) return -1;
    // The kernel still counts a main thread that ended with pthread_exit
    // (a zombie until the whole process ends): with at most two threads,
    // look at each.
    if (threads > 2) return 1;
    int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -1;
    pid_t me = (pid_t)syscall(SYS_gettid);
    int alive = 0;
    _Alignas(8) char entries[1024];
    for (;;) {
        long n = syscall(SYS_getdents64, dir, entries, sizeof entries);
        if (n < 0) {
            alive = -1;
            break;
        }
        if (n == 0) break;
        for (long at = 0; at < n;) {
            struct sm_dirent64 *entry = (struct sm_dirent64 *)(entries + at);
            at += entry->reclen;
            long tid = 0;
            const char *c = entry->name;
            if (*c < '0' || *c > '9') continue;
            while (*c >= '0' && *c <= '9') tid = tid * 10 + (*c++ - '0');
            if (tid == me) continue;
            char path[64] = "/proc/self/task/";
            size_t length = 16;
            for (const char *s = entry->name; *s && length < sizeof path - 6; s++) path[length++] = *s;
            const char *tail = "/stat";
            while (*tail) path[length++] = *tail++;
            path[length] = 0;
            // A thread gone between the listing and here is not alive.
            if (sm_read_small(path, text, sizeof text) <= 0) continue;
            char state = sm_stat_state(text);
            if (state != 'Z' && state != 'X') alive = 1;
        }
        if (alive) break;
    }
    close(dir);
    return alive;
}

void sm_exit_as_last_thread(void) { exit(0); }
