// SwiftMallocShims: the few things the allocator needs from C.
//
// Everything here is either a `static inline` function (Swift inlines it into
// the allocator's fast paths) or a thin wrapper over a system call used on a
// slow path. Nothing in this header allocates memory.
//
//   - thread-local storage in the initial-exec model (one %fs-relative load);
//   - a futex-based lock that costs one atomic when uncontended;
//   - relaxed/acquire/release atomics on plain integers and pointers;
//   - mmap/madvise/munmap wrappers that report failure as NULL / -1;
//   - raw writes to stderr and abort, for messages that must not allocate.
#ifndef SWIFTMALLOC_SHIMS_H
#define SWIFTMALLOC_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <errno.h>
#include <sys/single_threaded.h>

#include "swiftmalloc_rseq.h"

#ifdef __cplusplus
extern "C" {
#endif

// Nothing of the shim is part of the library's interface.
#pragma GCC visibility push(hidden)

#define SM_HIDDEN __attribute__((visibility("hidden")))

// ---------------------------------------------------------------------------
// Lock: 0 free, 1 held, 2 held with waiters (Drepper, "Futexes are tricky").
//
// Each lock also counts its acquisitions and its contended acquisitions
// (those that went to sm_lock_slow: the lock was held when asked for). Only
// the holder writes them, so an increment is a relaxed load and store (no
// read-modify-write); readers (stats) load them relaxed without the lock and
// may see a value a few acquisitions old. `state` stays first: it is the
// word the atomics work on, and the counters share its cache line, which the
// holder owns anyway.
// ---------------------------------------------------------------------------
typedef struct sm_lock {
    uint32_t state;
    uint32_t reserved;
    uint64_t acquisitions;
    uint64_t contended;
} sm_lock_t;

void sm_lock_slow(sm_lock_t *lock);
void sm_lock_wake(sm_lock_t *lock);

// Called by the holder only.
static inline void sm_lock_count(uint64_t *counter) {
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static inline void sm_lock(sm_lock_t *lock) {
    uint32_t expected = 0;
    if (__builtin_expect(!__atomic_compare_exchange_n(&lock->state, &expected, 1, false,
                                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED), 0))
        sm_lock_slow(lock);
    sm_lock_count(&lock->acquisitions);
}

static inline bool sm_trylock(sm_lock_t *lock) {
    uint32_t expected = 0;
    bool taken = __atomic_compare_exchange_n(&lock->state, &expected, 1, false,
                                             __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    if (taken) sm_lock_count(&lock->acquisitions);
    return taken;
}

static inline void sm_unlock(sm_lock_t *lock) {
    if (__builtin_expect(__atomic_exchange_n(&lock->state, 0, __ATOMIC_RELEASE) == 2, 0))
        sm_lock_wake(lock);
}

// The counters, for stats (a relaxed read without the lock).
static inline uint64_t sm_lock_acquisitions(const sm_lock_t *lock) {
    return __atomic_load_n(&lock->acquisitions, __ATOMIC_RELAXED);
}
static inline uint64_t sm_lock_contended(const sm_lock_t *lock) {
    return __atomic_load_n(&lock->contended, __ATOMIC_RELAXED);
}

// Re-initialises a lock in a forked child (its holder, if any, is gone).
static inline void sm_lock_reset(sm_lock_t *lock) { __atomic_store_n(&lock->state, 0, __ATOMIC_RELAXED); }

// ---------------------------------------------------------------------------
// Process-wide root of the allocator's state. Set once by initialisation;
// read on every call. Kept in C so that Swift reads it with a plain load
// (a Swift global would go through a lazy-initialisation check).
// ---------------------------------------------------------------------------
extern void *sm_heap_root SM_HIDDEN;

// What the malloc and free fast paths read besides their arguments, set
// once by initialisation (before any thread has a record, so before any
// fast path runs) and never changed. Kept in one C global so that each
// value is one RIP-relative load, or a memory operand of the instruction
// that uses it, with no pointer chase through the heap.
typedef struct sm_fast_paths {
    const uint8_t *class_index;     // SizeClassTable.classIndex
    void *const *page_map_root;     // PageMap.root
    const uint8_t *class_map;       // PageMap.classMap (NULL without one)
    uintptr_t class_map_pages;      // pages it covers (0 without one)
    char *slab_base;                // the per-CPU slabs (NULL unless percpu)
    uint32_t slab_count;            // how many (0 unless percpu)
} sm_fast_paths_t;
extern sm_fast_paths_t sm_fast SM_HIDDEN;

static inline sm_fast_paths_t *sm_fast_get(void) { return &sm_fast; }
static inline uint8_t sm_fast_class(size_t index) { return sm_fast.class_index[index]; }
static inline void *const *sm_fast_page_map_root(void) { return sm_fast.page_map_root; }
// The size class of `page` from the flat class map (PageMap), for free's
// fast path: 0 for a page that is not a small span's, and for every page
// the map does not cover (above it, or all pages when there is no map), so
// that the caller's exact lookup decides. One load after the shift: the
// bound is a predicted branch, and the map's base a RIP-relative load.
// Acquire pairs with PageMap's release store of the class, made after the
// span's tree entry: a thread that sees the class sees the span.
static inline uintptr_t sm_fast_page_class(uintptr_t page) {
    if (__builtin_expect(page >= sm_fast.class_map_pages, 0)) return 0;
    return __atomic_load_n(&sm_fast.class_map[page], __ATOMIC_ACQUIRE);
}
// The per-CPU pop and push of the fast paths, on the process's slabs.
static inline __attribute__((always_inline))
sm_pop_result_t sm_fast_percpu_pop(size_t cl, uint64_t *aborts) {
    return sm_percpu_pop_fast(&sm_fast.slab_base, &sm_fast.slab_count, cl, aborts);
}
static inline __attribute__((always_inline))
bool sm_fast_percpu_push(size_t cl, void *object, uint64_t *aborts) {
    return sm_percpu_push_fast(&sm_fast.slab_base, &sm_fast.slab_count, cl, object, aborts);
}

// Serialises the one-time initialisation of the heap.
extern sm_lock_t sm_init_lock SM_HIDDEN;
static inline sm_lock_t *sm_init_lock_get(void) { return &sm_init_lock; }

static inline void *sm_heap_get(void) { return __atomic_load_n(&sm_heap_root, __ATOMIC_ACQUIRE); }
static inline void sm_heap_set(void *p) { __atomic_store_n(&sm_heap_root, p, __ATOMIC_RELEASE); }

// ---------------------------------------------------------------------------
// Thread-local storage, initial-exec model: the current thread's allocator
// state (counters and, under the per-thread front end, its cache), in two
// slots (ThreadState): sm_tls_thread selects malloc's and free's fast paths,
// sm_tls_record says whether the thread has a record and which.
// ---------------------------------------------------------------------------
extern __thread void *sm_tls_thread SM_HIDDEN __attribute__((tls_model("initial-exec")));
extern __thread void *sm_tls_record SM_HIDDEN __attribute__((tls_model("initial-exec")));

static inline uintptr_t sm_tls_thread_bits(void) { return (uintptr_t)sm_tls_thread; }
static inline void sm_tls_thread_set(void *p) { sm_tls_thread = p; }
static inline uintptr_t sm_tls_record_bits(void) { return (uintptr_t)sm_tls_record; }
static inline void sm_tls_record_set(void *p) { sm_tls_record = p; }

// Whether the process has never had a second thread (glibc's own test for
// skipping its locks): it turns false in pthread_create, before the new
// thread runs, so a thread that reads true is alone and stays alone until
// it creates a thread itself.
static inline bool sm_single_threaded(void) { return __libc_single_threaded != 0; }

// A pthread key whose destructor runs when a thread exits, so that the
// thread's cache goes back to the middle. Returns 0 on success.
int sm_thread_key_create(void (*destructor)(void *));
// Arms the destructor for the calling thread. Returns 0 on success.
int sm_thread_key_set(void *value);
// The kernel's id of the calling thread (gettid).
int32_t sm_gettid(void);

// The idle-release thread (idle_thread.c, Scavenger.swift). Starts a
// detached thread named "swiftmalloc", with every signal blocked, that runs
// `body`; 0, or -1 if it could not be created. Call with no allocator lock
// held: pthread_create allocates.
int sm_idle_thread_start(void (*body)(void));
// The thread's doorbell, a word in the heap: a slow path that leaves a
// scavenger pass to the thread rings it (a futex wake, only when it was not
// already ringing); the thread waits on it for at most `ms` milliseconds
// and learns whether it rang (which clears it).
void sm_idle_ring(uint32_t *bell);
bool sm_idle_wait(uint32_t *bell, uint32_t ms);
// CLOCK_MONOTONIC in milliseconds.
uint64_t sm_monotonic_ms(void);
// Whether a thread other than the caller is alive (a main thread that ended
// with pthread_exit is not): 1 or 0, or -1 when /proc cannot tell.
int sm_other_threads_alive(void);
// Ends the process as glibc does when its last thread exits: exit(0).
__attribute__((noreturn)) void sm_exit_as_last_thread(void);

// ---------------------------------------------------------------------------
// Atomics on plain memory: counters others read (relaxed) and the per-CPU
// slab layout's publication (release / acquire).
// ---------------------------------------------------------------------------
static inline uint64_t sm_atomic_load_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void sm_atomic_store_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
// The same on a word Swift sees as UInt (uintptr_t imports as UInt).
static inline uintptr_t sm_atomic_load_uptr(const uintptr_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void sm_atomic_store_uptr(uintptr_t *p, uintptr_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uint64_t sm_atomic_add_u64(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline uint64_t sm_atomic_exchange_u64(uint64_t *p, uint64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
static inline bool sm_atomic_cas_u64(uint64_t *p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}
static inline void *sm_atomic_load_ptr(void *const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void sm_atomic_store_ptr(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint8_t sm_atomic_load_u8(const uint8_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void sm_atomic_store_u8(uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

// ---------------------------------------------------------------------------
// Memory from the OS. sm_os_map returns NULL on failure (never MAP_FAILED).
// ---------------------------------------------------------------------------
void *sm_os_map(size_t bytes);
// Leaves a mapping out of core dumps (metadata that is mostly untouched).
int sm_os_exclude_from_dumps(void *p, size_t bytes);
int sm_os_unmap(void *p, size_t bytes);
// Gives pages back to the OS; they read as zero when touched again.
int sm_os_release(void *p, size_t bytes);
// Grows or moves a mapping (mremap with MREMAP_MAYMOVE); NULL on failure.
void *sm_os_remap(void *p, size_t old_bytes, size_t new_bytes);
size_t sm_os_page_size(void);
// Lets other threads run (sched_yield).
void sm_yield(void);
int sm_online_cpus(void);

// ---------------------------------------------------------------------------
// errno, messages and aborting, without allocating.
// ---------------------------------------------------------------------------
static inline void sm_set_errno(int e) { errno = e; }
static inline int sm_get_errno(void) { return errno; }
// Writes bytes to stderr with write(2), retrying on EINTR.
void sm_write_stderr(const char *bytes, size_t count);
// Writes "swiftmalloc: <message><hex pointer>\n" to stderr and aborts.
__attribute__((noreturn)) void sm_fatal_pointer(const char *message, const void *pointer);
__attribute__((noreturn)) void sm_fatal(const char *message);
// getenv without allocation (returns NULL when unset).
const char *sm_getenv(const char *name);

// Writes a whole buffer to a newly created file (O_TRUNC). Returns 0 on success.
int sm_write_file(const char *path, const char *bytes, size_t count);
// Reads the whole file at `path` into `buffer`: the byte count, or -errno
// (-EFBIG when the file holds more than `capacity` bytes). open/read only.
int64_t sm_read_file(const char *path, char *buffer, size_t capacity);
// The description of an errno value ("No such file or directory"), from
// glibc's static table: no allocation, no locale.
const char *sm_error_text(int error);
// strlen, for C strings the Swift core was handed.
size_t sm_string_length(const char *text);
// Writes count bytes to stream (a FILE *, opaque to Swift) with fwrite:
// 0, or -1 when fewer were written. Call it with no allocator lock held
// (stdio may allocate the stream's buffer).
int sm_write_stream(void *stream, const char *bytes, size_t count);

int32_t sm_getpid(void);

// The process's peak resident set size in bytes (VmHWM in /proc/self/status,
// read with open/read/close into a buffer on the stack); 0 if it cannot be read.
uint64_t sm_peak_resident_bytes(void);

// ---------------------------------------------------------------------------
// Read-copy-update (liburcu, memb flavour; rcu.c). Never call these while
// holding an allocator lock: liburcu takes its own locks and may allocate.
// ---------------------------------------------------------------------------
// Runs a first grace period (liburcu sets itself up on it), before any
// thread needs one.
void sm_rcu_init(void);
// Registers the calling thread as a reader (once; a thread liburcu already
// registered is left as it is): returns the thread's reader record, or NULL
// if it was registered already. Unregister only undoes our own registration.
void *sm_rcu_register_thread(void);
// Fork child only: removes a thread that did not come along from liburcu's
// registry, given the record its registration returned.
void sm_rcu_forget_reader(void *reader);
void sm_rcu_unregister_thread(void);
bool sm_rcu_thread_is_registered(void);
// True while the calling thread is inside one of the calls below.
bool sm_rcu_busy(void);
// True while the calling thread is inside a read-side section.
bool sm_rcu_in_read_section(void);
void sm_rcu_read_lock(void);
void sm_rcu_read_unlock(void);
// Waits for a grace period, unless another thread is already waiting for
// one or the caller is inside a read-side section: then returns false at
// once (the caller retries later).
bool sm_rcu_try_synchronize(void);
// Fork: hold, release, reset the lock around registrations and grace periods.
void sm_rcu_before_fork(void);
void sm_rcu_after_fork_parent(void);
void sm_rcu_after_fork_child(void);

// fork handlers (pthread_atfork). Returns 0 on success.
int sm_register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
