// The standard malloc names, each a tail call into the Swift entry point of
// the same meaning (swiftmalloc_*). Declaring those protected makes the
// calls direct jumps inside the library, with no PLT indirection, while the
// swiftmalloc_* names stay exported for programs that link against them.
#include "swiftmalloc.h"

#include <errno.h>
#include <stddef.h>

#define SM_EXPORT __attribute__((visibility("default")))
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
void swiftmalloc_internal_on_load(void);
void swiftmalloc_internal_on_exit(void);

SM_EXPORT void *malloc(size_t size) { return swiftmalloc_malloc(size); }
SM_EXPORT void free(void *ptr) { swiftmalloc_free(ptr); }
SM_EXPORT void cfree(void *ptr) { swiftmalloc_free(ptr); }
SM_EXPORT void *calloc(size_t count, size_t size) { return swiftmalloc_calloc(count, size); }
SM_EXPORT void *realloc(void *ptr, size_t size) { return swiftmalloc_realloc(ptr, size); }
SM_EXPORT void *reallocarray(void *ptr, size_t count, size_t size) { return swiftmalloc_reallocarray(ptr, count, size); }
SM_EXPORT int posix_memalign(void **memptr, size_t alignment, size_t size) { return swiftmalloc_posix_memalign(memptr, alignment, size); }
SM_EXPORT void *aligned_alloc(size_t alignment, size_t size) { return swiftmalloc_aligned_alloc(alignment, size); }
SM_EXPORT void *memalign(size_t alignment, size_t size) { return swiftmalloc_memalign(alignment, size); }
SM_EXPORT void *valloc(size_t size) { return swiftmalloc_valloc(size); }
SM_EXPORT void *pvalloc(size_t size) { return swiftmalloc_pvalloc(size); }
SM_EXPORT size_t malloc_usable_size(void *ptr) { return swiftmalloc_usable_size(ptr); }
SM_EXPORT int malloc_trim(size_t pad) { return swiftmalloc_trim(pad); }

__attribute__((constructor(101))) static void swiftmalloc_load(void) { swiftmalloc_internal_on_load(); }
__attribute__((destructor(101))) static void swiftmalloc_unload(void) { swiftmalloc_internal_on_exit(); }
