// liburcu glue: the memb flavour (membarrier-based), see docs/rcu.md.
//
// Readers are threads registered at their first allocation and unregistered
// at their exit. A thread liburcu itself registered (the call_rcu worker) is
// left alone: registering twice would corrupt liburcu's registry.
#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>

#include "swiftmalloc_shims.h"

static __thread int sm_rcu_registered_here __attribute__((tls_model("initial-exec")));
// Set while this thread is inside a liburcu call that may allocate: the
// allocator then defers its own calls into liburcu (no re-entry).
static __thread int sm_rcu_inside __attribute__((tls_model("initial-exec")));

bool sm_rcu_busy(void) { return sm_rcu_inside != 0; }
#define SM_INSIDE(body) do { sm_rcu_inside++; body; sm_rcu_inside--; } while (0)

int sm_rcu_init(void) {
    // Creates the default call_rcu worker now, outside any allocator lock:
    // it allocates, and starts a thread that will call free from callbacks.
    struct call_rcu_data *data;
    SM_INSIDE(data = urcu_memb_get_default_call_rcu_data());
    return data != NULL ? 0 : -1;
}

void sm_rcu_register_thread(void) {
    if (URCU_TLS(urcu_memb_reader).registered) return;
    SM_INSIDE(urcu_memb_register_thread());
    sm_rcu_registered_here = 1;
}

void sm_rcu_unregister_thread(void) {
    if (!sm_rcu_registered_here) return;
    sm_rcu_registered_here = 0;
    SM_INSIDE(urcu_memb_unregister_thread());
}

bool sm_rcu_thread_is_registered(void) { return URCU_TLS(urcu_memb_reader).registered != 0; }

void sm_rcu_read_lock(void) { urcu_memb_read_lock(); }
void sm_rcu_read_unlock(void) { urcu_memb_read_unlock(); }

void sm_rcu_call(void *head, void (*callback)(void *)) {
    SM_INSIDE(urcu_memb_call_rcu((struct rcu_head *)head, (void (*)(struct rcu_head *))callback));
}

void sm_rcu_synchronize(void) { SM_INSIDE(urcu_memb_synchronize_rcu()); }
void sm_rcu_barrier(void) { SM_INSIDE(urcu_memb_barrier()); }

// The memb flavour has no fork hooks of its own (its grace periods need no
// helper thread); the call_rcu worker does: it is paused before fork and,
// in the child, its state is rebuilt (a new worker starts on demand).
void sm_rcu_before_fork(void) { SM_INSIDE(urcu_memb_call_rcu_before_fork()); }
void sm_rcu_after_fork_parent(void) { SM_INSIDE(urcu_memb_call_rcu_after_fork_parent()); }
void sm_rcu_after_fork_child(void) { SM_INSIDE(urcu_memb_call_rcu_after_fork_child()); }
