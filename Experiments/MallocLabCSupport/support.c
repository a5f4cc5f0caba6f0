// See malloclab_support.h. Nothing here calls malloc.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "malloclab_support.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

static ssize_t read_file(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0) { if (errno == EINTR) continue; close(fd); return -1; }
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    return (ssize_t)got;
}

uint64_t lab_rss_bytes(void) {
    char buf[256];
    if (read_file("/proc/self/statm", buf, sizeof buf) <= 0) return 0;
    unsigned long long size = 0, resident = 0;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t lab_peak_rss_bytes(void) {
    char buf[8192];
    if (read_file("/proc/self/status", buf, sizeof buf) <= 0) return 0;
    const char *p = strstr(buf, "VmHWM:");
    if (!p) return 0;
    unsigned long long kb = 0;
    if (sscanf(p + 6, "%llu", &kb) != 1) return 0;
    return (uint64_t)kb * 1024ull;
}

int lab_malloc_provider(char *buf, size_t len) {
    if (len == 0) return -1;
    buf[0] = 0;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    if (!sym || !dladdr(sym, &info) || !info.dli_fname) return -1;
    snprintf(buf, len, "%s", info.dli_fname);
    return 0;
}

uint32_t lab_glibc_rseq_size(void) {
    const unsigned int *size = (const unsigned int *)dlsym(RTLD_DEFAULT, "__rseq_size");
    return size ? *size : 0;
}

uint64_t lab_rseq_feature_size(void) {
    return (uint64_t)getauxval(27 /* AT_RSEQ_FEATURE_SIZE */);
}

int lab_rseq_syscall_exists(void) {
#ifdef SYS_rseq
    // rseq(NULL, 0, 0, 0) with a bad length: EINVAL if the call exists.
    long r = syscall(SYS_rseq, NULL, 0, 0, 0);
    return !(r == -1 && errno == ENOSYS);
#else
    return 0;
#endif
}

static const char *lab_workload_name = "?";

void lab_set_workload_name(const char *name) { lab_workload_name = name ? name : "?"; }

void lab_fail(const char *message, uint64_t a, uint64_t b) {
    const char *workload = lab_workload_name;
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "malloc-lab-workload: check failed [%s]: %s (0x%llx, 0x%llx) — "
                     "the allocator returned overlapping, corrupted or unusable memory\n",
                     workload, message, (unsigned long long)a, (unsigned long long)b);
    if (n > 0) {
        size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
        ssize_t w = write(2, buf, len);
        (void)w;
    }
    _exit(3);
}
