// swiftmalloc.h — the public C interface of libSwiftMalloc.so.
//
// Two ways to use the library:
//   * LD_PRELOAD=.../libSwiftMalloc.so program   — the standard names below
//     (malloc, free, ...) replace the C library's for the whole process;
//   * link against libSwiftMalloc.so — same, plus the swiftmalloc_* names.
//
// All functions follow the C / POSIX / glibc semantics of their standard
// counterpart; differences are stated where they exist.
#ifndef SWIFTMALLOC_H
#define SWIFTMALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------
// The standard malloc family (exported under these names too).
// ---------------------------------------------------------------------------

// malloc(n): at least n bytes, 16-byte aligned (8 for requests of 1–8 bytes).
// malloc(0) returns a unique pointer that may be freed. A size that cannot be
// served returns NULL with errno = ENOMEM.
void *swiftmalloc_malloc(size_t size);

// free(p): p must come from this allocator or be NULL (no-op). A pointer the
// allocator never returned (foreign, or inside or misaligned in a block it
// did return) stops the process with "swiftmalloc: free(): invalid pointer
// 0x…" on stderr and SIGABRT. realloc and malloc_usable_size check the same
// way ("realloc(): invalid pointer", "malloc_usable_size(): invalid pointer").
// Freeing a small block that is the last one freed to the same cache (a
// double free with nothing in between) stops the process with
// "swiftmalloc: free(): double free 0x…".
void swiftmalloc_free(void *ptr);

// calloc(n, m): n*m zeroed bytes; NULL/ENOMEM when n*m overflows.
void *swiftmalloc_calloc(size_t count, size_t size);

// realloc(p, n): contents preserved up to min(old, n). realloc(NULL, n) is
// malloc(n); realloc(p, 0) frees p and returns NULL (as glibc does). On
// failure returns NULL with errno = ENOMEM and leaves p untouched.
void *swiftmalloc_realloc(void *ptr, size_t size);

// reallocarray(p, n, m): realloc(p, n*m), NULL/ENOMEM on overflow (p intact).
void *swiftmalloc_reallocarray(void *ptr, size_t count, size_t size);

// posix_memalign: alignment must be a power of two and a multiple of
// sizeof(void *); returns EINVAL otherwise, ENOMEM when the size cannot be
// served; errno is not changed. *memptr is written only on success.
int swiftmalloc_posix_memalign(void **memptr, size_t alignment, size_t size);

// aligned_alloc: alignment must be a power of two, else NULL/EINVAL.
void *swiftmalloc_aligned_alloc(size_t alignment, size_t size);

// memalign (glibc): an alignment that is not a power of two is rounded up to
// the next one; an impossible alignment gives NULL/EINVAL.
void *swiftmalloc_memalign(size_t alignment, size_t size);

// valloc: page-aligned (system page size). pvalloc: also rounds size up to a
// whole number of pages (NULL/ENOMEM if that overflows).
void *swiftmalloc_valloc(size_t size);
void *swiftmalloc_pvalloc(size_t size);

// Usable size of a live block (>= the size asked for); 0 for NULL.
size_t swiftmalloc_usable_size(void *ptr);

// malloc_trim: gives free memory back to the OS (madvise). Returns 1 if any
// memory was released, else 0. The pad argument is accepted and ignored.
int swiftmalloc_trim(size_t pad);

// Gives every free page back to the OS; returns the number of bytes released.
size_t swiftmalloc_release_free_memory(void);

// ---------------------------------------------------------------------------
// The page-level allocator: whole pages of swiftmalloc_page_size() bytes
// (the span page: 8 KiB, or page_size of the configuration file), aligned to
// that size, straight from the page heap. Free with the
// same page count; a mismatch stops the process with a message.
// ---------------------------------------------------------------------------
size_t swiftmalloc_page_size(void);
void *swiftmalloc_page_alloc(size_t pages);
void swiftmalloc_page_free(void *ptr, size_t pages);

// ---------------------------------------------------------------------------
// Introspection.
// ---------------------------------------------------------------------------

// Snapshot of the allocator's counters, summed over live and exited threads.
//
// SWIFTMALLOC_STATS_FIELDS is the one list of the counters: X(name, meaning)
// for each, in order. struct swiftmalloc_stats is `version`
// (SWIFTMALLOC_STATS_VERSION) followed by one uint64_t per entry, in this
// order; the stats JSON (swiftmalloc_write_stats, SWIFTMALLOC_STATS_FILE)
// has one number per entry under the same name, in the same order, then
// "requested_bytes": the sum of the sizes asked for by every allocation
// counted, when SWIFTMALLOC_HISTOGRAM is set (the allocation histogram
// records them, docs/tuning.md), else null. A program can expand the list itself, to print every counter for instance:
//   #define PRINT(name, meaning) printf("%s %llu\n", #name, (unsigned long long)s.name);
//   SWIFTMALLOC_STATS_FIELDS(PRINT)
// The struct grows at its end from version to version, and fields keep
// their offsets (version 1 ended at metadata_bytes, version 2 at
// rcu_reclaimed_spans, version 3 at lock_contended_metadata, version 4 at
// peak_resident_bytes, version 5 at idle_released_bytes, version 6 at
// transfer_shards, version 7 at percpu_idle_drains):
// swiftmalloc_get_stats
// is a macro that passes the size of the caller's struct, and the library
// writes no more than that.
#define SWIFTMALLOC_STATS_VERSION 8
#define SWIFTMALLOC_STATS_FIELDS(X) \
    X(allocations, "successful allocation calls (all entry points)") \
    X(frees, "free calls with a non-NULL pointer") \
    X(fast_path_hits, "small allocations served from the front end's cache") \
    X(fast_path_misses, "small allocations that went to the middle") \
    X(rseq_aborts, "restarted per-CPU critical sections") \
    X(mapped_bytes, "bytes currently mapped from the OS (incl. metadata, less the flat class map's reserve)") \
    X(released_bytes, "free page-heap bytes not resident: given back (madvise) or never touched") \
    X(in_use_bytes, "bytes in live blocks (size-class or page-rounded sizes)") \
    X(threads_seen, "threads that ever allocated through the library") \
    X(threads_live, "of those, threads that have not exited") \
    X(large_allocations, "allocations above the largest size class") \
    X(page_heap_free_bytes, "free pages held by the page heap") \
    X(metadata_bytes, "bytes mapped for the allocator's own metadata") \
    X(percpu_rebalances, "moves of per-CPU cache capacity between size classes") \
    X(percpu_cached_bytes, "bytes of free objects in the per-CPU caches (0 unless percpu)") \
    X(large_cache_bytes, "bytes of freed large blocks kept mapped for reuse") \
    X(small_span_bytes, "bytes of spans carved into small objects") \
    X(central_free_bytes, "bytes of free objects in partly used spans (central free lists)") \
    X(transfer_cached_bytes, "bytes of free objects parked in the transfer caches") \
    X(scavenger_passes, "passes that gave idle memory back to the OS") \
    X(scavenged_bytes, "bytes those passes gave back") \
    X(large_cache_hits, "large allocations served from those kept blocks") \
    X(rcu_retired_spans, "span records retired, to be reused after an RCU grace period") \
    X(rcu_reclaimed_spans, "of those, records whose grace period has ended") \
    X(lock_acquisitions_transfer, "acquisitions of the transfer caches' locks (all size classes)") \
    X(lock_contended_transfer, "of those, acquisitions that found the lock held and waited") \
    X(lock_acquisitions_central, "acquisitions of the central free lists' locks (all size classes)") \
    X(lock_contended_central, "of those, acquisitions that found the lock held and waited") \
    X(lock_acquisitions_page_heap, "acquisitions of the page heap's lock") \
    X(lock_contended_page_heap, "of those, acquisitions that found the lock held and waited") \
    X(lock_acquisitions_registry, "acquisitions of the thread registry's lock") \
    X(lock_contended_registry, "of those, acquisitions that found the lock held and waited") \
    X(lock_acquisitions_arenas, "acquisitions of the arenas front end's cache locks (all caches)") \
    X(lock_contended_arenas, "of those, acquisitions that found the lock held and waited") \
    X(lock_acquisitions_global, "acquisitions of the global front end's lock") \
    X(lock_contended_global, "of those, acquisitions that found the lock held and waited") \
    X(lock_acquisitions_metadata, "acquisitions of the metadata arena's lock") \
    X(lock_contended_metadata, "of those, acquisitions that found the lock held and waited") \
    X(handed_out_bytes, "usable bytes of every allocation so far (size-class or page-rounded sizes)") \
    X(peak_resident_bytes, "the process's peak resident set size (VmHWM), read when the stats are taken") \
    X(idle_release_passes, "passes of the idle-release thread, each after a quiet idle_release_ms") \
    X(idle_released_bytes, "bytes those passes gave back to the OS") \
    X(class_map_pages, "pages the flat class map covers (free's one-load class lookup; 0 when the OS refused its 32 GiB reserve)") \
    X(scavenger_thread_passes, "of scavenger_passes, those the idle-release thread ran (slow paths leave passes to it while it runs)") \
    X(transfer_shards, "shards of the transfer caches, each serving a group of CPUs (transfer_shards)") \
    X(percpu_idle_drains, "per-CPU lists of size classes that served no malloc between two scavenger passes, handed back to the central lists") \
    X(thread_idle_returns, "objects of size classes a thread allocated none of between two scavenger passes, handed back from its cache to the middle (transfer caches, then central lists)") \
    X(page_heap_dirty_limit, "bytes of free pages the page heap keeps resident at most (32 MiB, grown for a program that cycles more)")

struct swiftmalloc_stats {
    uint64_t version;
#define SWIFTMALLOC_STATS_MEMBER(name, meaning) uint64_t name;
    SWIFTMALLOC_STATS_FIELDS(SWIFTMALLOC_STATS_MEMBER)
#undef SWIFTMALLOC_STATS_MEMBER
};
// Fills the first `size` bytes of *out (at most sizeof(struct
// swiftmalloc_stats)); returns 0, or -1 (EINVAL) if out is NULL.
int swiftmalloc_get_stats_sized(struct swiftmalloc_stats *out, size_t size);
// The function of this name fills version 1 of the struct (112 bytes): the
// symbol that programs built against version 1 call. Compiled against this
// header, a call passes the size of the caller's struct.
int swiftmalloc_get_stats(struct swiftmalloc_stats *out);
#define swiftmalloc_get_stats(out) swiftmalloc_get_stats_sized((out), sizeof *(out))

// The front end in use: "percpu", "thread", "arenas" or "global".
const char *swiftmalloc_frontend_name(void);

// Writes the stats JSON object (the one SWIFTMALLOC_STATS_FILE receives at
// exit) to path now. Returns 0 on success, -1 with errno on failure.
int swiftmalloc_write_stats(const char *path);

// ---------------------------------------------------------------------------
// Statistics for C programs, as glibc has them (malloc_stats, malloc_info,
// mallinfo2, mallinfo are exported under those names too; include
// <malloc.h> for their declarations). Each report is a snapshot taken first
// (locks taken and released one at a time), formatted into memory mapped
// for it, then written to the stream with no allocator lock held (stdio may
// allocate the stream's buffer). Figures from live threads are read without
// stopping them: exact when the process is quiescent.
// ---------------------------------------------------------------------------

// The readable summary malloc_stats() prints to stderr, written to stream:
// the front end (its name, hits, misses, rseq aborts, allocations, frees),
// one row per size class with spans or objects in use (class, size, objects
// in use, free objects cached anywhere in the allocator -- front-end caches,
// transfer caches, central lists, uncarved span tails -- and spans), then
// mapped, resident (mapped less released), in-use and free bytes, ending
// with glibc's "Total (incl. mmap):" lines. Returns 0; -1 with errno EINVAL
// if stream is NULL, or -1 if the text could not be written.
int swiftmalloc_stats_print(FILE *stream);

// malloc_info(options, stream): the same figures as XML in glibc's shape:
//   <malloc version="1"><heap nr="0"><sizes>
//     <size from="F" to="T" total="B" count="N" cached="C" spans="S"/> ...
//   </sizes><total type="fast" .../><total type="rest" .../>
//   <system type="current|max" .../><aspace type="total|mprotect" .../></heap>
//   <total .../> (process-wide, with type="mmap") <system .../> <aspace .../>
//   <swiftmalloc frontend="..." hits="..." misses="..." rseq_aborts="..." .../>
//   </malloc>
// One <size> per listed size class: sizes from..to (to = the class size);
// count = objects in use (glibc counts free chunks there), total = count *
// size; cached and spans as in swiftmalloc_stats_print. Totals: "fast" =
// free small objects, "rest" = free page-heap bytes and kept large blocks,
// "mmap" = live directly mapped blocks. system/aspace = bytes mapped (the
// heap: page-heap regions; the process: everything mapped); no peak is kept,
// so "max" equals "current". Returns 0; options != 0 or a NULL stream: -1
// with errno EINVAL (glibc: options must be 0).
int swiftmalloc_malloc_info(int options, FILE *stream);

// The layout of glibc's struct mallinfo2 (<malloc.h>), under our name so the
// two headers can be included together. mallinfo2() returns it:
//   arena     bytes mapped for the page heap's regions (small-object spans,
//             page-heap large blocks, free pages)
//   ordblks   0 (no free-chunk lists of glibc's kind)
//   smblks    0
//   hblks     live directly mapped (mmap) large blocks
//   hblkhd    their bytes
//   usmblks   0 (glibc: always 0)
//   fsmblks   bytes of free small objects held (caches, transfer, central)
//   uordblks  bytes in live blocks (in_use_bytes of swiftmalloc_stats)
//   fordblks  free bytes held: fsmblks + free page-heap pages (resident or
//             not) + freed large blocks kept mapped for reuse
//   keepcost  free page-heap bytes still resident: what malloc_trim could
//             give back
// mallinfo() returns the same in glibc's struct mallinfo, each field
// saturated at INT_MAX.
struct swiftmalloc_mallinfo2 {
    size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct swiftmalloc_mallinfo2 swiftmalloc_mallinfo2(void);

// ---------------------------------------------------------------------------
// Standard names. Defined by the library with the semantics above.
// ---------------------------------------------------------------------------
// void *malloc(size_t);  void free(void *);  void *calloc(size_t, size_t);
// void *realloc(void *, size_t);  void *reallocarray(void *, size_t, size_t);
// int posix_memalign(void **, size_t, size_t);  void *aligned_alloc(size_t, size_t);
// void *memalign(size_t, size_t);  void *valloc(size_t);  void *pvalloc(size_t);
// size_t malloc_usable_size(void *);  int malloc_trim(size_t);
// void cfree(void *);  (glibc compatibility alias of free)
// void malloc_stats(void);  (swiftmalloc_stats_print(stderr))
// int malloc_info(int, FILE *);  struct mallinfo2 mallinfo2(void);
// struct mallinfo mallinfo(void);  (declared in <malloc.h>)

#ifdef __cplusplus
}
#endif
#endif
