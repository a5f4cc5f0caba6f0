// Slow-path system glue for SwiftMallocShims (see swiftmalloc_shims.h).
#include <stdio.h>
#include "swiftmalloc_shims.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

void *sm_heap_root SM_HIDDEN = NULL;
sm_fast_paths_t sm_fast SM_HIDDEN = {0};
sm_lock_t sm_init_lock SM_HIDDEN = {0};
__thread void *sm_tls_thread SM_HIDDEN __attribute__((tls_model("initial-exec"))) = NULL;
__thread void *sm_tls_record SM_HIDDEN __attribute__((tls_model("initial-exec"))) = NULL;

static pthread_key_t sm_thread_key;

int sm_thread_key_create(void (*destructor)(void *)) {
    return pthread_key_create(&sm_thread_key, destructor);
}

int sm_thread_key_set(void *value) { return pthread_setspecific(sm_thread_key, value); }

int32_t sm_gettid(void) { return (int32_t)syscall(SYS_gettid); }

static long sm_futex(uint32_t *addr, int op, uint32_t val) {
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

// Tells the CPU that this is a spin-wait loop: it slows the loop down and
// yields resources to a sibling hardware thread.
static inline void sm_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

// Returns with the lock held; the caller (sm_lock) counts the acquisition,
// this counts it as contended.
void sm_lock_slow(sm_lock_t *lock) {
    // Spin briefly: critical sections are short, and a futex sleep costs a
    // system call on both sides.
    for (int i = 0; i < 64; i++) {
        uint32_t expected = 0;
        if (__atomic_load_n(&lock->state, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&lock->state, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            sm_lock_count(&lock->contended);
            return;
        }
        sm_spin_pause();
    }
    // Mark the lock contended and sleep until it is released.
    while (__atomic_exchange_n(&lock->state, 2, __ATOMIC_ACQUIRE) != 0)
        sm_futex(&lock->state, FUTEX_WAIT_PRIVATE, 2);
    sm_lock_count(&lock->contended);
}

void sm_lock_wake(sm_lock_t *lock) { sm_futex(&lock->state, FUTEX_WAKE_PRIVATE, 1); }

void *sm_os_map(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int sm_os_unmap(void *p, size_t bytes) { return munmap(p, bytes); }

int sm_os_exclude_from_dumps(void *p, size_t bytes) { return madvise(p, bytes, MADV_DONTDUMP); }

void sm_yield(void) { sched_yield(); }

int sm_os_release(void *p, size_t bytes) { return madvise(p, bytes, MADV_DONTNEED); }

void *sm_os_remap(void *p, size_t old_bytes, size_t new_bytes) {
    void *q = mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE);
    return q == MAP_FAILED ? NULL : q;
}

size_t sm_os_page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

int sm_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_CONF);
    return n > 0 ? (int)n : 1;
}

void sm_write_stderr(const char *bytes, size_t count) {
    while (count > 0) {
        ssize_t n = write(2, bytes, count);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        bytes += n;
        count -= (size_t)n;
    }
}

static size_t sm_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

// Stops the process with SIGABRT after a fatal message. The Swift runtime
// that this library brings into every program installs a crash backtracer
// as the SIGABRT handler; it would follow the library's one line with a
// Swift crash report about a C program's bug. Such a handler (found in
// libswiftCore, or in this library when the runtime is linked statically)
// is put back to the default first; a handler the program installed itself
// still runs.
static _Noreturn void sm_abort(void) {
    struct sigaction current;
    if (sigaction(SIGABRT, NULL, &current) == 0) {
        void *handler = (current.sa_flags & SA_SIGINFO) ? (void *)current.sa_sigaction
                                                        : (void *)current.sa_handler;
        if (handler != (void *)SIG_DFL && handler != (void *)SIG_IGN) {
            Dl_info theirs, ours;
            if (dladdr(handler, &theirs) && theirs.dli_fname &&
                (strstr(theirs.dli_fname, "libswiftCore") ||
                 (dladdr((void *)sm_abort, &ours) && ours.dli_fbase == theirs.dli_fbase))) {
                signal(SIGABRT, SIG_DFL);
            }
        }
    }
    abort();
}

void sm_fatal(const char *message) {
    sm_write_stderr("swiftmalloc: ", 13);
    sm_write_stderr(message, sm_strlen(message));
    sm_write_stderr("\n", 1);
    sm_abort();
}

void sm_fatal_pointer(const char *message, const void *pointer) {
    char buf[2 + 16];
    uintptr_t v = (uintptr_t)pointer;
    int digits = 1;
    for (uintptr_t t = v >> 4; t; t >>= 4) digits++;
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = digits - 1; i >= 0; i--) {
        buf[2 + i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    }
    sm_write_stderr("swiftmalloc: ", 13);
    sm_write_stderr(message, sm_strlen(message));
    sm_write_stderr(buf, 2 + (size_t)digits);
    sm_write_stderr("\n", 1);
    sm_abort();
}

const char *sm_getenv(const char *name) { return getenv(name); }

int sm_write_file(const char *path, const char *bytes, size_t count) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int rc = 0;
    while (count > 0) {
        ssize_t n = write(fd, bytes, count);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = -1;
            break;
        }
        bytes += n;
        count -= (size_t)n;
    }
    if (close(fd) != 0) rc = -1;
    return rc;
}

int64_t sm_read_file(const char *path, char *buffer, size_t capacity) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t count = 0;
    for (;;) {
        // One byte past the capacity tells a file that is too large.
        char extra;
        char *into = count < capacity ? buffer + count : &extra;
        size_t room = count < capacity ? capacity - count : 1;
        ssize_t n = read(fd, into, room);
        if (n < 0) {
            if (errno == EINTR) continue;
            int error = errno;
            close(fd);
            return -error;
        }
        if (n == 0) break;
        if (count >= capacity) {
            close(fd);
            return -EFBIG;
        }
        count += (size_t)n;
    }
    close(fd);
    return (int64_t)count;
}

size_t sm_string_length(const char *text) { return strlen(text); }

const char *sm_error_text(int error) {
    const char *text = strerrordesc_np(error);
    return text ? text : "unknown error";
}

int sm_write_stream(void *stream, const char *bytes, size_t count) {
    if (count == 0) return 0;
    return fwrite(bytes, 1, count, (FILE *)stream) == count ? 0 : -1;
}

uint64_t sm_peak_resident_bytes(void) {
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char text[4096];
    size_t length = 0;
    while (length < sizeof text - 1) {
        ssize_t n = read(fd, text + length, sizeof text - 1 - length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        length += (size_t)n;
    }
    close(fd);
    text[length] = 0;
    // The line reads "VmHWM:\t    1234 kB".
    const char *line = strstr(text, "\nVmHWM:");
    if (line == NULL) return 0;
    const char *p = line + 7;
    while (*p == ' ' || *p == '\t') p++;
    uint64_t kib = 0;
    while (*p >= '0' && *p <= '9') kib = kib * 10 + (uint64_t)(*p++ - '0');
    return kib * 1024;
}

int sm_register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
    return pthread_atfork(prepare, parent, child);
}


int32_t sm_getpid(void) { return (int32_t)getpid(); }
