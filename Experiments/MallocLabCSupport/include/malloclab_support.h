// malloclab_support.h — the few things the workload process needs from C:
// a cheap fenced timestamp counter, atomics on plain words, volatile stores
// the optimiser cannot merge, and /proc readers that never call malloc (so
// measuring memory does not disturb the allocator being measured).
#ifndef MALLOCLAB_SUPPORT_H
#define MALLOCLAB_SUPPORT_H

#include <stdint.h>
#include <stddef.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- time --------------------------------------------------------------

static inline uint64_t lab_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// Start and end stamps for timing one call. On x86-64: `lfence; rdtsc` before,
// `rdtscp; lfence` after, so the measured call neither starts early nor ends
// late. Elsewhere: CLOCK_MONOTONIC in nanoseconds (then ticks == ns).
static inline uint64_t lab_ticks_begin(void) {
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
#else
    return lab_monotonic_ns();
#endif
}

static inline uint64_t lab_ticks_end(void) {
#if defined(__x86_64__)
    uint32_t lo, hi, aux;
    __asm__ volatile("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi), "=c"(aux) : : "memory");
    (void)aux;
    return ((uint64_t)hi << 32) | lo;
#else
    return lab_monotonic_ns();
#endif
}

// 1 when the ticks above are TSC cycles (calibrate against the monotonic
// clock), 0 when they are already nanoseconds.
static inline int lab_ticks_are_tsc(void) {
#if defined(__x86_64__)
    return 1;
#else
    return 0;
#endif
}

// ---- atomics on plain 64-bit words ---------------------------------------

static inline uint64_t lab_load_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t lab_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void lab_store_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void lab_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t lab_exchange(uint64_t *p, uint64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
static inline uint64_t lab_fetch_add(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }

// ---- memory traffic the optimiser keeps -----------------------------------

// *p += v through a volatile pointer: one load and one store per call.
static inline void lab_volatile_add(uint64_t *p, uint64_t v) {
    volatile uint64_t *q = (volatile uint64_t *)p;
    *q = *q + v;
}
static inline void lab_volatile_store_byte(uint8_t *p, uint8_t v) { *(volatile uint8_t *)p = v; }
static inline uint8_t lab_volatile_load_byte(const uint8_t *p) { return *(const volatile uint8_t *)p; }
static inline void lab_cpu_relax(void) {
#if defined(__x86_64__)
    __asm__ volatile("pause" ::: "memory");
#else
    __asm__ volatile("" ::: "memory");
#endif
}

// ---- process facts, without malloc -----------------------------------------

// Resident set size now (bytes), from /proc/self/statm; 0 on error.
uint64_t lab_rss_bytes(void);
// VmHWM (peak resident set, bytes) from /proc/self/status; 0 on error.
uint64_t lab_peak_rss_bytes(void);
// Path of the object that defines the process's `malloc` (after LD_PRELOAD),
// copied into buf (NUL-terminated); returns 0, or -1 if unknown.
int lab_malloc_provider(char *buf, size_t len);
// glibc's rseq registration size (__rseq_size), or 0 if glibc did not
// register (or has no such symbol).
uint32_t lab_glibc_rseq_size(void);
// getauxval(AT_RSEQ_FEATURE_SIZE) (27), 0 when the kernel does not say.
uint64_t lab_rseq_feature_size(void);
// Whether the rseq system call exists (probe with an invalid call: ENOSYS
// means no).
int lab_rseq_syscall_exists(void);

// The workload name that lab_fail prints (the pointer is kept, not copied).
void lab_set_workload_name(const char *name);
// Writes "malloc-lab-workload: check failed [workload]: message" and the two
// numbers in hex to stderr with write(2) (no malloc: the allocator may be the
// thing that is broken), then exits the whole process with status 3.
void lab_fail(const char *message, uint64_t a, uint64_t b) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
#endif
