// pthread_exit_main.c — a process ends when its last thread ends, even when
// that thread ends with pthread_exit() instead of returning from main.
//
// Usage: pthread_exit_main main|fork-from-thread
//   main:             main() allocates, starts and joins a thread, then calls
//                     pthread_exit(NULL). The process must exit with status 0.
//                     Before that it writes "threads N" to stderr: the
//                     threads the process has then (/proc/self/task), so a
//                     test can see that a helper thread the allocator
//                     started is still running at the pthread_exit.
//   fork-from-thread: a second thread forks; the child (whose only thread is
//                     that one) allocates and ends with pthread_exit(NULL);
//                     the parent reaps it (this is what CPython's
//                     test_threading ThreadJoinOnShutdown.test_3 does) and
//                     prints "child exit status 0".
// Both print "done" last when all went well.
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test_support.h"

static void *volatile sink;

static void churn(void) {
    for (int i = 0; i < 1000; i++) {
        char *p = malloc((size_t)(i % 500) + 1);
        memset(p, i, (size_t)(i % 500) + 1);
        sink = p;
        free(p);
    }
}

static void *helper(void *arg) {
    churn();
    return arg;
}

static void *forker(void *arg) {
    (void)arg;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        churn();
        printf("child ends with pthread_exit\n");
        fflush(stdout);
        pthread_exit(NULL);
    }
    int status = -1;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        exit(2);
    }
    printf("child exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("done\n");
    fflush(stdout);
    exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "main";
    churn();
    pthread_t t;
    if (strcmp(mode, "fork-from-thread") == 0) {
        pthread_create(&t, NULL, forker, NULL);
        pthread_join(t, NULL);  // forker exits the process
        return 3;
    }
    pthread_create(&t, NULL, helper, NULL);
    pthread_join(t, NULL);
    fprintf(stderr, "threads %d\n", task_count());
    printf("main ends with pthread_exit\ndone\n");
    fflush(stdout);
    pthread_exit(NULL);
}
