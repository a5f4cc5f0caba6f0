// The standard malloc names, each a jump into the Swift entry point of the
// same meaning (swiftmalloc_*), except malloc, free and cfree on x86-64 (see
// below). Declaring those protected makes the jumps direct inside the
// library, with no PLT indirection, while the swiftmalloc_* names stay
// exported for programs that link against them.
#include "swiftmalloc.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>

#define SM_PROTECTED __attribute__((visibility("protected")))

void *swiftmalloc_malloc(size_t) SM_PROTECTED;
void swiftmalloc_free(void *) SM_PROTECTED;
void *swiftmalloc_calloc(size_t, size_t) SM_PROTECTED;
void *swiftmalloc_realloc(void *, size_t) SM_PROTECTED;
void *swiftmalloc_reallocarray(void *, size_t, size_t) SM_PROTECTED;
int swiftmalloc_posix_memalign(void **, size_t, size_t) SM_PROTECTED;
void *swiftmalloc_aligned_alloc(size_t, size_t) SM_PROTECTED;
void *swiftmalloc_memalign(size_t, size_t) SM_PROTECTED;
void *swiftmalloc_valloc(size_t) SM_PROTECTED;
void *swiftmalloc_pvalloc(size_t) SM_PROTECTED;
size_t swiftmalloc_usable_size(void *) SM_PROTECTED;
int swiftmalloc_trim(size_t) SM_PROTECTED;
// The library's constructor and destructor (Sources/SwiftMallocCore/API/
// Exports.swift): build the heap before main; write the files asked for at
// exit. Not exported (exports.map).
void sm_library_loaded(void);
void sm_library_exiting(void);

#if defined(__x86_64__)

// Each standard name is a single direct jump to its swiftmalloc_* twin
// (protected above, so the jump binds inside the library, no PLT). Written
// as assembly because a C wrapper would set up a frame for nothing.
#define SM_ALIAS(name, target)                                   \
    __asm__(".text\n"                                            \
            ".globl " #name "\n"                                 \
            ".type " #name ", @function\n"                       \
            ".p2align 4\n"                                       \
            #name ":\n"                                          \
            "\tjmp \"" #target "\"\n"                            \
            ".size " #name ", . - " #name "\n"                   \
            ".protected \"" #target "\"\n");

// malloc, free and cfree are not here: they are the Swift functions
// themselves, given the standard names at link time (Package.swift,
// --defsym), so a call from the program's PLT lands in Swift's fast path
// with no jump in between. (A jump here costs about one cycle per call;
// the @_cdecl thunks swiftmalloc_malloc/free set up a frame besides.) For
// these signatures (one integer or pointer argument, a pointer or nothing
// returned, no context or error register) the Swift calling convention
// passes and returns in the same registers as C and keeps the same
// registers.
SM_ALIAS(calloc, swiftmalloc_calloc)
SM_ALIAS(realloc, swiftmalloc_realloc)
SM_ALIAS(reallocarray, swiftmalloc_reallocarray)
SM_ALIAS(posix_memalign, swiftmalloc_posix_memalign)
SM_ALIAS(aligned_alloc, swiftmalloc_aligned_alloc)
SM_ALIAS(memalign, swiftmalloc_memalign)
SM_ALIAS(valloc, swiftmalloc_valloc)
SM_ALIAS(pvalloc, swiftmalloc_pvalloc)
SM_ALIAS(malloc_usable_size, swiftmalloc_usable_size)
SM_ALIAS(malloc_trim, swiftmalloc_trim)

#else

// Elsewhere, C functions that tail-call their twins (the jumps above are
// x86-64 assembly, and the link-time names in Package.swift are given on
// x86-64 hosts only).
void *malloc(size_t size) { return swiftmalloc_malloc(size); }
void free(void *ptr) { swiftmalloc_free(ptr); }
void cfree(void *ptr) { swiftmalloc_free(ptr); }
void *calloc(size_t count, size_t size) { return swiftmalloc_calloc(count, size); }
void *realloc(void *ptr, size_t size) { return swiftmalloc_realloc(ptr, size); }
void *reallocarray(void *ptr, size_t count, size_t size) { return swiftmalloc_reallocarray(ptr, count, size); }
int posix_memalign(void **memptr, size_t alignment, size_t size) {
    return swiftmalloc_posix_memalign(memptr, alignment, size);
}
void *aligned_alloc(size_t alignment, size_t size) { return swiftmalloc_aligned_alloc(alignment, size); }
void *memalign(size_t alignment, size_t size) { return swiftmalloc_memalign(alignment, size); }
void *valloc(size_t size) { return swiftmalloc_valloc(size); }
void *pvalloc(size_t size) { return swiftmalloc_pvalloc(size); }
size_t malloc_usable_size(void *ptr) { return swiftmalloc_usable_size(ptr); }
int malloc_trim(size_t pad) { return swiftmalloc_trim(pad); }

#endif

// Statistics for C programs (glibc's names; Sources/SwiftMallocCore/API/
// StatsReport.swift makes them): C functions on every architecture, since
// they take or return what the Swift entry points spell differently (a
// struct of glibc's type, stderr).
void malloc_stats(void) { (void)swiftmalloc_stats_print(stderr); }

int malloc_info(int options, FILE *stream) { return swiftmalloc_malloc_info(options, stream); }

struct mallinfo2 mallinfo2(void) {
    struct swiftmalloc_mallinfo2 s = swiftmalloc_mallinfo2();
    struct mallinfo2 m = {
        .arena = s.arena, .ordblks = s.ordblks, .smblks = s.smblks, .hblks = s.hblks, .hblkhd = s.hblkhd,
        .usmblks = s.usmblks, .fsmblks = s.fsmblks, .uordblks = s.uordblks, .fordblks = s.fordblks,
        .keepcost = s.keepcost,
    };
    return m;
}

static int sm_saturate(size_t v) { return v > (size_t)INT_MAX ? INT_MAX : (int)v; }

// The old int version, which programs still call: each field saturated.
struct mallinfo mallinfo(void) {
    struct swiftmalloc_mallinfo2 s = swiftmalloc_mallinfo2();
    struct mallinfo m = {
        .arena = sm_saturate(s.arena), .ordblks = sm_saturate(s.ordblks), .smblks = sm_saturate(s.smblks),
        .hblks = sm_saturate(s.hblks), .hblkhd = sm_saturate(s.hblkhd), .usmblks = sm_saturate(s.usmblks),
        .fsmblks = sm_saturate(s.fsmblks), .uordblks = sm_saturate(s.uordblks),
        .fordblks = sm_saturate(s.fordblks), .keepcost = sm_saturate(s.keepcost),
    };
    return m;
}

__attribute__((constructor(101))) static void swiftmalloc_load(void) { sm_library_loaded(); }
__attribute__((destructor(101))) static void swiftmalloc_unload(void) { sm_library_exiting(); }
