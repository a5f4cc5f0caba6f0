// rseq registration and membarrier fences (see swiftmalloc_rseq.h).
#include "swiftmalloc_rseq.h"
#include "swiftmalloc_shims.h"

#include <sched.h>

sm_rseq_config_t sm_rseq_config = {0};

#if defined(__x86_64__)

#include <linux/membarrier.h>
#include <sys/auxv.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif
#ifndef MEMBARRIER_CMD_FLAG_CPU
#define MEMBARRIER_CMD_FLAG_CPU (1 << 0)
#endif

// The shim's own area, used when glibc did not register one (for example
// GLIBC_TUNABLES=glibc.pthread.rseq=0). 32 bytes, 32-byte aligned, as the
// ABI requires; mm_cid lives at offset 24.
struct sm_rseq_area {
    uint32_t cpu_id_start;
    uint32_t cpu_id;
    uint64_t rseq_cs;
    uint32_t flags;
    uint32_t node_id;
    uint32_t mm_cid;
    uint32_t padding;
} __attribute__((aligned(32)));

// Both ids start out of range (UINT32_MAX): the critical sections bound-check
// the id they use, so a thread whose area the kernel never filled in (its
// registration failed) gets "unavailable" from every per-CPU operation and
// is served by the middle, instead of using slab 0 without protection.
static __thread struct sm_rseq_area sm_own_area __attribute__((tls_model("initial-exec"))) = {
    .cpu_id = (uint32_t)-1,
    .mm_cid = (uint32_t)-1,
};
static __thread int sm_own_registered __attribute__((tls_model("initial-exec")));

static long sm_sys_rseq(void *area, uint32_t len, int flags, uint32_t sig) {
    return syscall(__NR_rseq, area, len, flags, sig);
}

static intptr_t sm_tp_offset(void *p) { return (intptr_t)((char *)p - (char *)__builtin_thread_pointer()); }

int32_t sm_rseq_thread_register(void) {
    if (sm_rseq_config.mode == SM_RSEQ_GLIBC) {
        // glibc registered the thread at its start, or failed to: then its
        // cpu_id is negative (-1 uninitialised, -2 registration failed) and
        // mm_cid reads 0, a valid slab. Put mm_cid out of range too (the
        // kernel does not own an unregistered area), so that the per-CPU
        // operations refuse this thread whichever id they use.
        struct sm_rseq_area *area = (struct sm_rseq_area *)((char *)__builtin_thread_pointer()
                                                             + (sm_rseq_config.cs_offset - 8));
        if ((int32_t)__atomic_load_n(&area->cpu_id, __ATOMIC_RELAXED) >= 0) return 0;
        if (sm_rseq_config.mm_cid_available) area->mm_cid = (uint32_t)-1;
        return -1;
    }
    if (sm_rseq_config.mode != SM_RSEQ_OWN || sm_own_registered) return 0;
    sm_own_area.cpu_id = (uint32_t)-1;
    sm_own_area.mm_cid = (uint32_t)-1;
    if (sm_sys_rseq(&sm_own_area, sizeof sm_own_area, 0, SM_RSEQ_SIG) != 0) return -1;
    sm_own_registered = 1;
    return 0;
}

int32_t sm_rseq_thread_unregister(void) {
    if (sm_rseq_config.mode != SM_RSEQ_OWN || !sm_own_registered) return 0;
    // RSEQ_FLAG_UNREGISTER = 1
    if (sm_sys_rseq(&sm_own_area, sizeof sm_own_area, 1, SM_RSEQ_SIG) != 0) return -1;
    sm_own_registered = 0;
    // The kernel no longer updates the area: make the ids unusable again.
    sm_own_area.cpu_id = (uint32_t)-1;
    sm_own_area.mm_cid = (uint32_t)-1;
    return 0;
}

int32_t sm_rseq_init(int32_t use_mm_cid) {
    intptr_t area_offset;
    int32_t mode;
    if (__rseq_size > 0) {
        mode = SM_RSEQ_GLIBC;
        area_offset = __rseq_offset;
    } else {
        mode = SM_RSEQ_OWN;
        area_offset = sm_tp_offset(&sm_own_area);
        sm_rseq_config.mode = SM_RSEQ_OWN;
        if (sm_rseq_thread_register() != 0) {
            sm_rseq_config.mode = SM_RSEQ_NONE;
            return SM_RSEQ_NONE;
        }
    }
    // mm_cid exists where the kernel's rseq feature size covers it (offset 24 + 4).
    unsigned long feature_size = getauxval(AT_RSEQ_FEATURE_SIZE);
    sm_rseq_config.mm_cid_available = feature_size >= 28;
    sm_rseq_config.use_mm_cid = use_mm_cid && sm_rseq_config.mm_cid_available;
    sm_rseq_config.cpu_offset = area_offset + (sm_rseq_config.use_mm_cid ? 24 : 4);
    sm_rseq_config.cs_offset = area_offset + 8;
    sm_rseq_config.membarrier_ready =
        syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) == 0;
    sm_rseq_config.mode = mode;
    return mode;
}

int32_t sm_rseq_current_id(void) {
    if (sm_rseq_config.mode == SM_RSEQ_NONE) return -1;
    return *(volatile int32_t *)((char *)__builtin_thread_pointer() + sm_rseq_config.cpu_offset);
}

int32_t sm_rseq_fence(int32_t cpu) {
    if (!sm_rseq_config.membarrier_ready) return -1;
    if (cpu < 0 || sm_rseq_config.use_mm_cid)
        return (int32_t)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0);
    return (int32_t)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_FLAG_CPU, cpu);
}

#else

// The critical sections (swiftmalloc_rseq.h) are x86-64 assembly: elsewhere
// there is no rseq, and the allocator picks a front end that needs none.
int32_t sm_rseq_init(int32_t use_mm_cid) { return SM_RSEQ_NONE; }
int32_t sm_rseq_thread_register(void) { return 0; }
int32_t sm_rseq_thread_unregister(void) { return 0; }
int32_t sm_rseq_current_id(void) { return -1; }
int32_t sm_rseq_fence(int32_t cpu) { return -1; }

#endif

int32_t sm_current_cpu(void) {
    int32_t id = sm_rseq_current_id();
    if (id >= 0) return id;
    id = sched_getcpu();
    return id >= 0 ? id : 0;
}
