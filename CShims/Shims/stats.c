// The counters of struct swiftmalloc_stats by index (swiftmalloc_stats.h),
// from SWIFTMALLOC_STATS_FIELDS: names and offsets rather than an index into
// the struct as an array, so nothing assumes how the struct is laid out.
#include "swiftmalloc_stats.h"

static const struct {
    const char *name;
    size_t offset;
} sm_stats_counters[] = {
#define SM_STATS_COUNTER(field, meaning) {#field, offsetof(struct swiftmalloc_stats, field)},
    SWIFTMALLOC_STATS_FIELDS(SM_STATS_COUNTER)
#undef SM_STATS_COUNTER
};

const char *sm_stats_counter_name(size_t index) { return sm_stats_counters[index].name; }

uint64_t sm_stats_counter_value(const struct swiftmalloc_stats *stats, size_t index) {
    return *(const uint64_t *)((const char *)stats + sm_stats_counters[index].offset);
}
