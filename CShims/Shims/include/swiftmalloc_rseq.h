// Restartable sequences: per-CPU operations without atomics or locks.
//
// A restartable sequence is a short instruction range that the kernel aborts
// (jumping to its abort handler) if the thread is preempted, migrated or
// signalled while inside it. Reading the current CPU id and committing with a
// single store at the end therefore makes "read CPU, touch that CPU's data,
// commit" atomic with respect to everything else on that CPU.
//
// The per-CPU slab: one region per CPU (or per mm_cid) of 2^SM_SLAB_SHIFT
// bytes, in 8-byte units ("slots"). It starts with two arrays of
// SM_SLAB_MAX_CLASSES 8-byte entries, indexed by size class:
//     the list word     current (bits 0-15) | pops (bits 16-63)
//     the list limits   { uint16 end, uint16 begin, uint32 unused }
// (the limits SM_SLAB_LIMITS_OFFSET bytes after the word), then the object
// slots, from slot SM_SLAB_FIRST_SLOT on: class c owns slots [begin, end);
// [begin, current) hold cached objects. pop takes slot current-1, push
// writes slot current; each commits by storing the new list word (one
// 64-bit store): a pop adds 0xffff to it (current - 1, pops + 1), a push
// adds 1. So the word also counts the class's single pops on that CPU (the
// malloc calls it served) at no extra cost: no counter of its own to load
// and store. Batch operations, and writers outside the critical sections,
// store only `current` (the word's low 16 bits) and leave pops alone.
// (Measured: the single operations must load and store the word at one
// width, 64 bits: a 64-bit load of a word just written by a 16-bit store
// cannot be forwarded from the store and stalls. Compares take `begin` and
// `end` into a register first: `cmpw mem, reg` cost a cycle per call.)
//
// A list is *stopped* by setting begin = 0xffff and end = 0: pops see
// current <= begin, pushes see current >= end, so both fail and the caller
// takes its slow path. Stopping, then fencing the CPU (membarrier restarts
// any critical section running there) makes the slots safe to drain or
// resize from another thread.
//
// Each operation below is one critical section with its __rseq_cs
// descriptor, the abort signature and an abort path that counts the abort
// and retries.
#ifndef SWIFTMALLOC_RSEQ_H
#define SWIFTMALLOC_RSEQ_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#pragma GCC visibility push(hidden)

#define SM_RSEQ_SIG 0x53053053
#define SM_SLAB_SHIFT 18
#define SM_SLAB_STOPPED_BEGIN 0xffff

#define SM_SLAB_MAX_CLASSES 128
#define SM_SLAB_LIMITS_OFFSET (8 * SM_SLAB_MAX_CLASSES)
#define SM_SLAB_FIRST_SLOT (2 * SM_SLAB_MAX_CLASSES)
_Static_assert(SM_SLAB_LIMITS_OFFSET == 1024, "the critical sections below address the limits as 1024(...)");

typedef struct sm_slab_limits {
    uint16_t end;
    uint16_t begin;
    uint32_t unused;
} sm_slab_limits_t;

// The list word and limits of class `cl` in the slab at `slab`, for code
// outside the critical sections (set-up, drains, statistics).
static inline uint64_t *sm_slab_word(char *slab, size_t cl) { return (uint64_t *)(slab + 8 * cl); }
static inline sm_slab_limits_t *sm_slab_limits(char *slab, size_t cl) {
    return (sm_slab_limits_t *)(slab + SM_SLAB_LIMITS_OFFSET + 8 * cl);
}
static inline uint16_t sm_slab_current(char *slab, size_t cl) {
    return __atomic_load_n((uint16_t *)sm_slab_word(slab, cl), __ATOMIC_ACQUIRE);
}
// Sets `current` alone (a 16-bit store: the pops above it stay).
static inline void sm_slab_set_current(char *slab, size_t cl, uint16_t current) {
    __atomic_store_n((uint16_t *)sm_slab_word(slab, cl), current, __ATOMIC_RELEASE);
}
static inline uint64_t sm_slab_pops(char *slab, size_t cl) {
    return __atomic_load_n(sm_slab_word(slab, cl), __ATOMIC_RELAXED) >> 16;
}
static inline uint16_t sm_slab_begin(char *slab, size_t cl) {
    return __atomic_load_n(&sm_slab_limits(slab, cl)->begin, __ATOMIC_ACQUIRE);
}
static inline void sm_slab_set_limits(char *slab, size_t cl, uint16_t begin, uint16_t end) {
    __atomic_store_n(&sm_slab_limits(slab, cl)->end, end, __ATOMIC_RELEASE);
    __atomic_store_n(&sm_slab_limits(slab, cl)->begin, begin, __ATOMIC_RELEASE);
}
// A new, empty list [first, first + capacity) with no pops counted.
static inline void sm_slab_init_list(char *slab, size_t cl, uint16_t first, uint16_t capacity) {
    __atomic_store_n(sm_slab_word(slab, cl), (uint64_t)first, __ATOMIC_RELAXED);
    sm_slab_set_limits(slab, cl, first, (uint16_t)(first + capacity));
}

// Where the calling thread's rseq fields are, relative to %fs (the same for
// every thread: glibc's area and the shim's own are at fixed TLS offsets).
// The critical sections read cpu_offset at offset 0 and cs_offset at offset 8
// straight from this structure, by name.
typedef struct sm_rseq_config {
    intptr_t cpu_offset;      // the id field used (cpu_id, or mm_cid)
    intptr_t cs_offset;       // rseq_cs
    int32_t mode;             // SM_RSEQ_NONE / _GLIBC / _OWN
    int32_t mm_cid_available;
    int32_t membarrier_ready; // MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ registered
    int32_t use_mm_cid;
} sm_rseq_config_t;

enum { SM_RSEQ_NONE = 0, SM_RSEQ_GLIBC = 1, SM_RSEQ_OWN = 2 };

extern sm_rseq_config_t sm_rseq_config;

static inline int32_t sm_rseq_mode(void) { return sm_rseq_config.mode; }
static inline bool sm_rseq_uses_mm_cid(void) { return sm_rseq_config.use_mm_cid != 0; }
static inline bool sm_rseq_can_fence(void) { return sm_rseq_config.membarrier_ready != 0; }
static inline bool sm_rseq_mm_cid_available(void) { return sm_rseq_config.mm_cid_available != 0; }

// Process-wide set-up: finds glibc's registration or registers the calling
// thread's own area; registers for membarrier rseq fences. `use_mm_cid`:
// 1 to index slabs by mm_cid where the kernel provides it, 0 for cpu_id.
// Returns the mode. Safe to call once, from the first allocation.
int32_t sm_rseq_init(int32_t use_mm_cid);
// Per thread, at its first allocation: own mode registers the thread's area
// (unregistered at exit); glibc mode checks that glibc's registration of the
// thread worked. Either way, a thread without a working registration gets
// ids that every per-CPU operation refuses (it is then served by the
// middle). Return 0 on success or when nothing is to be done, -1 if the
// thread has no working registration.
int32_t sm_rseq_thread_register(void);
int32_t sm_rseq_thread_unregister(void);
// The calling thread's current slab index (cpu id or mm_cid), or -1.
int32_t sm_rseq_current_id(void);
// The calling thread's current slab index where rseq works for it, else
// its CPU from sched_getcpu, else 0: an id to group CPUs by (the middle's
// transfer-cache shards), never negative.
int32_t sm_current_cpu(void);
// Restart any critical section running on `cpu` (cpu mode), or on every CPU
// this process runs on (cpu < 0, or mm_cid mode). Returns 0 on success.
int32_t sm_rseq_fence(int32_t cpu);

// --- the per-CPU operations -------------------------------------------------

// Pops one object of class `cl` from the current CPU's slab. `ok` says
// whether one was popped (false: the list is empty or stopped, the CPU has
// no slab, or the section was aborted: counted, and the caller's slow path
// retries with sm_percpu_pop), so that the caller's success branch knows
// the object is not NULL without testing it again (an out-parameter would
// cost a stack slot and Swift's stack protector).
typedef struct sm_pop_result {
    void *object;
    bool ok;
} sm_pop_result_t;

// What sm_percpu_push_checked returns (described there).
#define SM_PUSH_FULL 0
#define SM_PUSH_DONE 1
#define SM_PUSH_TWICE 2

#if defined(__x86_64__)

// --- the critical sections (x86-64) -----------------------------------------

#define SM_RSEQ_CS_BEGIN                                                        \
    ".pushsection __rseq_cs, \"aw\"\n\t"                                        \
    ".balign 32\n\t"                                                            \
    "3:\n\t"                                                                    \
    ".long 0x0, 0x0\n\t"                                                        \
    ".quad 1f, (2f - 1f), 4f\n\t"                                               \
    ".popsection\n\t"                                                           \
    ".pushsection __rseq_cs_ptr_array, \"aw\"\n\t"                              \
    ".quad 3b\n\t"                                                              \
    ".popsection\n\t"                                                           \
    "leaq 3b(%%rip), %%rax\n\t"                                                 \
    "movq sm_rseq_config+8(%%rip), %%rcx\n\t"  /* cs_offset */                   \
    "movq %%rax, %%fs:(%%rcx)\n\t"                                              \
    "1:\n\t"                                                                    \
    /* rax = this CPU's region, or leave for the slow path */                   \
    "movq sm_rseq_config(%%rip), %%rcx\n\t"    /* cpu_offset */                  \
    "movl %%fs:(%%rcx), %%eax\n\t"                                              \
    "cmpl %[nslabs], %%eax\n\t"                                                 \
    "jae %l[unavailable]\n\t"                                                   \
    "shlq $18, %%rax\n\t"                                                       \
    "addq %[base], %%rax\n\t"

// The end of a critical section and its abort handler, out of line in
// __rseq_failure after the signature; `abort_action` is what the handler
// does (it must leave by a jump).
#define SM_RSEQ_CS_END_THEN(abort_action)                                       \
    "2:\n\t"                                                                    \
    ".pushsection __rseq_failure, \"ax\"\n\t"                                   \
    /* the signature: ud1 <sig>(%rip),%edi, so disassemblers stay in step */     \
    ".byte 0x0f, 0xb9, 0x3d\n\t"                                                \
    ".long 0x53053053\n\t"                                                      \
    "4:\n\t"                                                                    \
    abort_action                                                                \
    ".popsection\n\t"

// Slow-path sections retry after an abort (the C code counts it and loops).
#define SM_RSEQ_CS_END SM_RSEQ_CS_END_THEN("jmp %l[aborted]\n\t")

// Fast-path sections do not loop: the handler counts the abort in the
// thread's counter (the `aborts` memory operand) and leaves by `fail`, the
// same way out as an empty or full list, so the caller's slow path retries.
// This keeps the fast path straight: no loop head to align, no jump over the
// retry block.
#define SM_RSEQ_CS_END_FAILING_TO(fail)                                         \
    SM_RSEQ_CS_END_THEN("incq %[aborts]\n\t" "jmp %l[" #fail "]\n\t")

// The body of a pop, after SM_RSEQ_CS_BEGIN left the CPU's region in rax:
// take slot current-1 of class `cl` unless the list is empty (or stopped),
// commit by storing the list word with current-1 and one more pop.
#define SM_PERCPU_POP_BODY                                                      \
    "movq (%%rax,%[cl],8), %%rdx\n\t"        /* list word */                    \
    "movzwl 1026(%%rax,%[cl],8), %%r8d\n\t"  /* begin */                        \
    "movzwl %%dx, %%ecx\n\t"                  /* current */                      \
    "cmpl %%r8d, %%ecx\n\t"                                                     \
    "jbe %l[empty]\n\t"                                                         \
    "movq -8(%%rax,%%rcx,8), %[object]\n\t"                                     \
    "addq $0xffff, %%rdx\n\t"                                                   \
    "movq %%rdx, (%%rax,%[cl],8)\n\t"        /* commit */

// The malloc fast path's pop (see sm_pop_result_t). `base` and `nslabs` are
// read through pointers, as memory operands: with a global's address
// (sm_fast_percpu_pop) each is folded into the instruction that uses it as
// a RIP-relative operand.
static inline __attribute__((always_inline))
sm_pop_result_t sm_percpu_pop_fast(char *const *base, const uint32_t *nslabs, size_t cl, uint64_t *aborts) {
    void *object;
    __asm__ __volatile__ goto(
        SM_RSEQ_CS_BEGIN
        SM_PERCPU_POP_BODY
        SM_RSEQ_CS_END_FAILING_TO(empty)
        : [object] "=&r"(object)
        : [nslabs] "m"(*nslabs), [base] "m"(*base), [cl] "r"(cl), [aborts] "m"(*aborts)
        : "memory", "cc", "rax", "rcx", "rdx", "r8"
        : empty, unavailable);
    return (sm_pop_result_t){object, true};
empty:
unavailable:
    return (sm_pop_result_t){NULL, false};
}

// Pops one object, retrying after an abort; the object or NULL.
static inline __attribute__((always_inline))
void *sm_percpu_pop(char *base, uint32_t nslabs, size_t cl, uint64_t *aborts) {
    void *object;
retry:
    __asm__ __volatile__ goto(
        SM_RSEQ_CS_BEGIN
        SM_PERCPU_POP_BODY
        SM_RSEQ_CS_END
        : [object] "=&r"(object)
        : [nslabs] "r"(nslabs), [base] "r"(base), [cl] "r"(cl)
        : "memory", "cc", "rax", "rcx", "rdx", "r8"
        : aborted, empty, unavailable);
    return object;
aborted:
    (*aborts)++;
    goto retry;
empty:
unavailable:
    return NULL;
}

// Inside a push, after `current` (ecx) was loaded: if the list is not empty
// and its top slot already holds the object being pushed, the object is
// being freed twice in a row; leave by `label` instead of pushing it again
// (which would hand it out twice). Slots below `begin` may hold stale
// pointers from an earlier layout, so an empty list is not compared.
#define SM_PERCPU_REFUSE_TOP(label)                                             \
    "movzwl 1026(%%rax,%[cl],8), %%r8d\n\t"  /* begin */                        \
    "cmpl %%r8d, %%ecx\n\t"                                                     \
    "jbe 6f\n\t"                                                                \
    "cmpq %[object], -8(%%rax,%%rcx,8)\n\t"                                     \
    "je %l[" #label "]\n\t"                                                     \
    "6:\n\t"

// The body of a push: write the object to slot `current` of class `cl`
// unless the list is full (or stopped) or `refuse_top` (one of the two
// below) leaves, commit by storing the list word with current+1.
#define SM_PERCPU_PUSH_BODY_WITH(refuse_top)                                    \
    "movq (%%rax,%[cl],8), %%rdx\n\t"        /* list word */                    \
    "movzwl 1024(%%rax,%[cl],8), %%r8d\n\t"  /* end */                          \
    "movzwl %%dx, %%ecx\n\t"                  /* current */                      \
    "cmpl %%r8d, %%ecx\n\t"                                                     \
    "jae %l[full]\n\t"                                                          \
    refuse_top                                                                  \
    "movq %[object], (%%rax,%%rcx,8)\n\t"                                       \
    "incq %%rdx\n\t"                                                            \
    "movq %%rdx, (%%rax,%[cl],8)\n\t"        /* commit */

#define SM_PERCPU_PUSH_BODY(twice_label) SM_PERCPU_PUSH_BODY_WITH(SM_PERCPU_REFUSE_TOP(twice_label))

// The fast path's double-free test, without the emptiness test: it compares
// the slot below `current` even when the list is empty, where a stale
// pointer may sit. So it may refuse a push that is fine; it then leaves by
// `label` to the slow path, whose exact test (SM_PERCPU_REFUSE_TOP) decides.
#define SM_PERCPU_MAYBE_TOP(label)                                              \
    "cmpq %[object], -8(%%rax,%%rcx,8)\n\t"                                     \
    "je %l[" #label "]\n\t"

// Pushes one object of class `cl` onto the current CPU's slab, retrying
// after an abort. SM_PUSH_DONE; SM_PUSH_FULL when the list is full or
// stopped, or the CPU has no slab; SM_PUSH_TWICE when the object is already
// on top of the list (a double free; nothing is pushed).
static inline __attribute__((always_inline))
int32_t sm_percpu_push_checked(char *base, uint32_t nslabs, size_t cl, void *object, uint64_t *aborts) {
retry:
    __asm__ __volatile__ goto(
        SM_RSEQ_CS_BEGIN
        SM_PERCPU_PUSH_BODY(twice)
        SM_RSEQ_CS_END
        :
        : [nslabs] "r"(nslabs), [base] "r"(base), [cl] "r"(cl), [object] "r"(object)
        : "memory", "cc", "rax", "rcx", "rdx", "r8"
        : aborted, full, unavailable, twice);
    return SM_PUSH_DONE;
aborted:
    (*aborts)++;
    goto retry;
full:
unavailable:
    return SM_PUSH_FULL;
twice:
    return SM_PUSH_TWICE;
}

// Pushes one object, retrying after an abort: false when the list is full or
// stopped, the CPU has no slab, or the object is already on top.
static inline __attribute__((always_inline))
bool sm_percpu_push(char *base, uint32_t nslabs, size_t cl, void *object, uint64_t *aborts) {
    return sm_percpu_push_checked(base, nslabs, cl, object, aborts) == SM_PUSH_DONE;
}

// The free fast path's push: false when the list is full or stopped, the
// CPU has no slab, the slot below `current` holds the object (freed twice,
// or a stale copy below an empty list), or the section was aborted
// (counted); the caller's slow path then retries with
// sm_percpu_push_checked, which tells these apart. `base` and `nslabs` as
// for sm_percpu_pop_fast.
static inline __attribute__((always_inline))
bool sm_percpu_push_fast(char *const *base, const uint32_t *nslabs, size_t cl, void *object, uint64_t *aborts) {
    __asm__ __volatile__ goto(
        SM_RSEQ_CS_BEGIN
        SM_PERCPU_PUSH_BODY_WITH(SM_PERCPU_MAYBE_TOP(full))
        SM_RSEQ_CS_END_FAILING_TO(full)
        :
        : [nslabs] "m"(*nslabs), [base] "m"(*base), [cl] "r"(cl), [object] "r"(object), [aborts] "m"(*aborts)
        : "memory", "cc", "rax", "rcx", "rdx", "r8"
        : full, unavailable);
    return true;
full:
unavailable:
    return false;
}

// Pops up to `n` (>= 1) objects into out[0..<k]; returns k (0 when empty).
static inline __attribute__((always_inline))
uint32_t sm_percpu_pop_batch(char *base, uint32_t nslabs, size_t cl, void **out, uint32_t n, uint64_t *aborts) {
    uint32_t count;
retry:
    __asm__ __volatile__ goto(
        SM_RSEQ_CS_BEGIN
        "movzwl (%%rax,%[cl],8), %%edx\n\t"      /* current */
        "movzwl 1026(%%rax,%[cl],8), %%ecx\n\t"  /* begin */
        "cmpl %%ecx, %%edx\n\t"
        "jbe %l[empty]\n\t"
        "movl %%edx, %%r8d\n\t"
        "subl %%ecx, %%r8d\n\t"                  /* available */
        "cmpl %[n], %%r8d\n\t"
        "cmoval %[n], %%r8d\n\t"                 /* k = min(available, n) */
        "xorl %%r9d, %%r9d\n\t"
        "5:\n\t"
        "movq -8(%%rax,%%rdx,8), %%rcx\n\t"
        "movq %%rcx, (%[out],%%r9,8)\n\t"
        "decl %%edx\n\t"
        "incl %%r9d\n\t"
        "cmpl %%r8d, %%r9d\n\t"
        "jb 5b\n\t"
        "movl %%r9d, %[count]\n\t"
        "movw %%dx, (%%rax,%[cl],8)\n\t"         /* commit: current alone */
        SM_RSEQ_CS_END
        :
        : [nslabs] "r"(nslabs), [base] "r"(base), [cl] "r"(cl), [out] "r"(out), [n] "r"(n),
          [count] "m"(count)
        : "memory", "cc", "rax", "rcx", "rdx", "r8", "r9"
        : aborted, empty, unavailable);
    return count;
aborted:
    (*aborts)++;
    goto retry;
empty:
unavailable:
    return 0;
}

// Pushes up to `n` (>= 1) objects from in[0..<n]; returns how many were
// pushed (0 when full): the caller keeps in[k..<n].
static inline __attribute__((always_inline))
uint32_t sm_percpu_push_batch(char *base, uint32_t nslabs, size_t cl, void *const *in, uint32_t n, uint64_t *aborts) {
    uint32_t count;
retry:
    __asm__ __volatile__ goto(
        SM_RSEQ_CS_BEGIN
        "movzwl (%%rax,%[cl],8), %%edx\n\t"      /* current */
        "movzwl 1024(%%rax,%[cl],8), %%ecx\n\t"  /* end */
        "cmpl %%ecx, %%edx\n\t"
        "jae %l[full]\n\t"
        "movl %%ecx, %%r8d\n\t"
        "subl %%edx, %%r8d\n\t"                  /* room */
        "cmpl %[n], %%r8d\n\t"
        "cmoval %[n], %%r8d\n\t"                 /* k = min(room, n) */
        "xorl %%r9d, %%r9d\n\t"
        "5:\n\t"
        "movq (%[in],%%r9,8), %%rcx\n\t"
        "movq %%rcx, (%%rax,%%rdx,8)\n\t"
        "incl %%edx\n\t"
        "incl %%r9d\n\t"
        "cmpl %%r8d, %%r9d\n\t"
        "jb 5b\n\t"
        "movl %%r9d, %[count]\n\t"
        "movw %%dx, (%%rax,%[cl],8)\n\t"         /* commit: current alone */
        SM_RSEQ_CS_END
        :
        : [nslabs] "r"(nslabs), [base] "r"(base), [cl] "r"(cl), [in] "r"(in), [n] "r"(n),
          [count] "m"(count)
        : "memory", "cc", "rax", "rcx", "rdx", "r8", "r9"
        : aborted, full, unavailable);
    return count;
aborted:
    (*aborts)++;
    goto retry;
full:
unavailable:
    return 0;
}

// Adds `value` to counters[id << stride_shift] for the current CPU id:
// a per-CPU counter without atomics. Returns false if the id is >= n.
static inline __attribute__((always_inline))
bool sm_percpu_add(uint64_t *counters, uint32_t n, uint32_t stride_shift, uint64_t value, uint64_t *aborts) {
retry:
    __asm__ __volatile__ goto(
        ".pushsection __rseq_cs, \"aw\"\n\t"
        ".balign 32\n\t"
        "3:\n\t"
        ".long 0x0, 0x0\n\t"
        ".quad 1f, (2f - 1f), 4f\n\t"
        ".popsection\n\t"
        ".pushsection __rseq_cs_ptr_array, \"aw\"\n\t"
        ".quad 3b\n\t"
        ".popsection\n\t"
        "leaq 3b(%%rip), %%rax\n\t"
        "movq sm_rseq_config+8(%%rip), %%rcx\n\t"
        "movq %%rax, %%fs:(%%rcx)\n\t"
        "1:\n\t"
        "movq sm_rseq_config(%%rip), %%rcx\n\t"
        "movl %%fs:(%%rcx), %%eax\n\t"
        "cmpl %[n], %%eax\n\t"
        "jae %l[unavailable]\n\t"
        "movl %[shift], %%ecx\n\t"
        "shlq %%cl, %%rax\n\t"
        "movq (%[counters],%%rax,8), %%rdx\n\t"
        "addq %[value], %%rdx\n\t"
        "movq %%rdx, (%[counters],%%rax,8)\n\t"  /* commit */
        SM_RSEQ_CS_END
        :
        : [n] "r"(n), [shift] "r"(stride_shift), [counters] "r"(counters), [value] "r"(value)
        : "memory", "cc", "rax", "rcx", "rdx"
        : aborted, unavailable);
    return true;
aborted:
    (*aborts)++;
    goto retry;
unavailable:
    return false;
}

#else

// The critical sections above are x86-64 assembly. Elsewhere sm_rseq_init
// reports SM_RSEQ_NONE, so the per-CPU front end is never chosen and nothing
// calls these; they compile, and fail the way an empty or full list does
// (the caller takes its slow path).
static inline sm_pop_result_t sm_percpu_pop_fast(char *const *base, const uint32_t *nslabs, size_t cl, uint64_t *aborts) {
    return (sm_pop_result_t){NULL, false};
}
static inline void *sm_percpu_pop(char *base, uint32_t nslabs, size_t cl, uint64_t *aborts) { return NULL; }
static inline int32_t sm_percpu_push_checked(char *base, uint32_t nslabs, size_t cl, void *object, uint64_t *aborts) {
    return SM_PUSH_FULL;
}
static inline bool sm_percpu_push(char *base, uint32_t nslabs, size_t cl, void *object, uint64_t *aborts) { return false; }
static inline bool sm_percpu_push_fast(char *const *base, const uint32_t *nslabs, size_t cl, void *object, uint64_t *aborts) {
    return false;
}
static inline uint32_t sm_percpu_pop_batch(char *base, uint32_t nslabs, size_t cl, void **out, uint32_t n, uint64_t *aborts) {
    return 0;
}
static inline uint32_t sm_percpu_push_batch(char *base, uint32_t nslabs, size_t cl, void *const *in, uint32_t n, uint64_t *aborts) {
    return 0;
}
static inline bool sm_percpu_add(uint64_t *counters, uint32_t n, uint32_t stride_shift, uint64_t value, uint64_t *aborts) {
    return false;
}

#endif

#pragma GCC visibility pop
#endif
