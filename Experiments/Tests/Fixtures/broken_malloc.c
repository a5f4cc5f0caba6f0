// A deliberately broken allocator for malloc-lab's tests (compiled by the
// test with `cc -shared -fPIC` and preloaded into a workload).
//
// It is a bump allocator that never reuses memory, except that once the
// process is past start-up (BROKEN_MALLOC_AFTER calls, default 20000) every
// 61st malloc returns the block it returned just before — a second pointer
// to a block that is still live. A workload that checks its objects must
// notice and fail; one that only measures time would look fast.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_BYTES (64ull << 30)   /* reserved, not committed */

static char *arena;
static size_t used;
static unsigned long calls;
static unsigned long broken_after = 20000;
static void *last_block;
static size_t last_size;
static int lock_word;

static void lock(void) { while (__atomic_exchange_n(&lock_word, 1, __ATOMIC_ACQUIRE)) { } }
static void unlock(void) { __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE); }

static void init_arena(void) {
    if (arena) return;
    void *p = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) abort();
    arena = p;
    const char *env = getenv("BROKEN_MALLOC_AFTER");   /* getenv does not allocate */
    if (env) broken_after = strtoul(env, NULL, 10);
}

/* Each block is preceded by 16 bytes holding its size. */
static void *bump(size_t n, size_t align) {
    if (align < 16) align = 16;
    size_t rounded = (n + 15) & ~(size_t)15;
    uintptr_t start = (uintptr_t)arena + used + 16;
    start = (start + align - 1) & ~(uintptr_t)(align - 1);
    size_t end = start - (uintptr_t)arena + rounded;
    if (end > ARENA_BYTES) { errno = ENOMEM; return NULL; }
    used = end;
    ((size_t *)start)[-2] = rounded;
    return (void *)start;
}

static void *allocate(size_t n, size_t align) {
    lock();
    init_arena();
    calls++;
    void *p;
    if (calls > broken_after && calls % 61 == 0 && last_block && n <= last_size && align <= 16) {
        p = last_block;   /* the bug: the previous block, still live, again */
    } else {
        p = bump(n, align);
        if (p) { last_block = p; last_size = ((size_t *)p)[-2]; }
    }
    unlock();
    return p;
}

static size_t block_size(void *p) { return p ? ((size_t *)p)[-2] : 0; }

void *malloc(size_t n) { return allocate(n, 16); }
void free(void *p) { (void)p; }
void cfree(void *p) { (void)p; }

void *calloc(size_t a, size_t b) {
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) { errno = ENOMEM; return NULL; }
    void *p = allocate(n, 16);
    if (p) memset(p, 0, n);
    return p;
}

void *realloc(void *old, size_t n) {
    if (!old) return allocate(n, 16);
    void *p = allocate(n, 16);
    if (p && p != old) {
        size_t keep = block_size(old);
        memmove(p, old, keep < n ? keep : n);
    }
    return p;
}

void *reallocarray(void *old, size_t a, size_t b) {
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) { errno = ENOMEM; return NULL; }
    return realloc(old, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = allocate(n, align);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n) { return allocate(n, align); }
void *memalign(size_t align, size_t n) { return allocate(n, align); }
void *valloc(size_t n) { return allocate(n, 4096); }
void *pvalloc(size_t n) { return allocate((n + 4095) & ~(size_t)4095, 4096); }
size_t malloc_usable_size(void *p) { return block_size(p); }
