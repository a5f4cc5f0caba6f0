// The statistics the allocator reports: struct swiftmalloc_stats, which
// swiftmalloc_get_stats fills, and the same counters by index, which the
// stats JSON writes in a loop. Both come from the one list of counters,
// SWIFTMALLOC_STATS_FIELDS in the public header: a counter added there
// reaches the struct, the JSON and its key without another list to edit;
// only the code that computes it (StatsSnapshot.take) names it. The list is
// an X-macro in C because C is where both the public struct and a table of
// names can be generated from it, and it is in the public header because
// that header stands alone for the programs that include it.
#ifndef SWIFTMALLOC_STATS_H
#define SWIFTMALLOC_STATS_H

#include <stddef.h>
#include <stdint.h>

// Outside the hidden region below: these are the library's exported names.
#include "../../Exports/include/swiftmalloc.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(hidden)

// How many counters struct swiftmalloc_stats has after `version`.
#define SM_STATS_ONE(name, meaning) + 1
enum { SM_STATS_COUNTERS = 0 SWIFTMALLOC_STATS_FIELDS(SM_STATS_ONE) };
#undef SM_STATS_ONE

// The index-th counter (0 ..< SM_STATS_COUNTERS, list order): its name, the
// JSON key, and its value in *stats.
const char *sm_stats_counter_name(size_t index);
uint64_t sm_stats_counter_value(const struct swiftmalloc_stats *stats, size_t index);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
