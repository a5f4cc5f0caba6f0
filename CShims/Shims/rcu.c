// liburcu glue: the memb flavour (membarrier-based), see docs/rcu.md.
//
// Readers are threads registered at their first read-side section and
// unregistered at their exit. A thread that someone else registered (the
// program may use liburcu itself) is left alone: registering twice would
// corrupt liburcu's registry.
//
// Grace periods are waited for with synchronize_rcu by the thread that
// retires records, in batches; there is no call_rcu worker thread. A helper
// thread that never exits would change the process's life: glibc ends a
// process when its last thread exits, so a program whose main thread calls
// pthread_exit would never terminate (nor would such a fork child).
#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>
#include <pthread.h>

#include "swiftmalloc_shims.h"

static __thread int sm_rcu_registered_here __attribute__((tls_model("initial-exec")));
// Set while this thread is inside a liburcu call: the allocator then defers
// its own calls into liburcu (no re-entry should liburcu allocate).
static __thread int sm_rcu_inside __attribute__((tls_model("initial-exec")));

// Serialises our calls that take liburcu's internal mutexes (registration,
// grace periods), so that the fork handlers can hold them all: a child
// forked while another thread was inside such a call would otherwise
// inherit liburcu's mutex locked forever. Taken with no allocator lock
// held; the fork prepare handler takes it before the allocator's locks.
static pthread_mutex_t sm_rcu_gate = PTHREAD_MUTEX_INITIALIZER;

bool sm_rcu_busy(void) { return sm_rcu_inside != 0; }
#define SM_INSIDE(body) do { sm_rcu_inside++; body; sm_rcu_inside--; } while (0)

void sm_rcu_init(void) {
    // The memb flavour initialises itself (a library constructor registers
    // for membarrier); the first grace period finishes its set-up.
    SM_INSIDE(pthread_mutex_lock(&sm_rcu_gate); urcu_memb_synchronize_rcu(); pthread_mutex_unlock(&sm_rcu_gate));
}

void *sm_rcu_register_thread(void) {
    if (URCU_TLS(urcu_memb_reader).registered) return NULL;
    SM_INSIDE(pthread_mutex_lock(&sm_rcu_gate); urcu_memb_register_thread(); pthread_mutex_unlock(&sm_rcu_gate));
    sm_rcu_registered_here = 1;
    return &URCU_TLS(urcu_memb_reader);
}

// In a fork child, a thread that did not come along is still in liburcu's
// registry: its reader record (in its TLS, copied into the child) may say it
// is inside a read-side section forever, and glibc will reuse its stack and
// TLS for a new thread, zeroing the record's list links. Either would break
// every later grace period, so it is taken out of the registry. Only the
// child's single thread runs, and the fork handlers hold the gate.
void sm_rcu_forget_reader(void *reader) {
    struct urcu_reader *r = reader;
    if (r == NULL || r == &URCU_TLS(urcu_memb_reader)) return;
    cds_list_del(&r->node);
    r->ctr = 0;
    r->registered = 0;
}

void sm_rcu_unregister_thread(void) {
    if (!sm_rcu_registered_here) return;
    sm_rcu_registered_here = 0;
    SM_INSIDE(pthread_mutex_lock(&sm_rcu_gate); urcu_memb_unregister_thread(); pthread_mutex_unlock(&sm_rcu_gate));
}

bool sm_rcu_thread_is_registered(void) { return URCU_TLS(urcu_memb_reader).registered != 0; }

bool sm_rcu_in_read_section(void) {
    return (URCU_TLS(urcu_memb_reader).ctr & URCU_GP_CTR_NEST_MASK) != 0;
}

void sm_rcu_read_lock(void) { urcu_memb_read_lock(); }
void sm_rcu_read_unlock(void) { urcu_memb_read_unlock(); }

bool sm_rcu_try_synchronize(void) {
    // Inside a read-side section a grace period would wait for ourselves.
    if (sm_rcu_in_read_section()) return false;
    if (pthread_mutex_trylock(&sm_rcu_gate) != 0) return false;
    SM_INSIDE(urcu_memb_synchronize_rcu());
    pthread_mutex_unlock(&sm_rcu_gate);
    return true;
}

// Fork: our gate, then liburcu's own fork calls for the flavour. The memb
// library's are the call_rcu ones: with no call_rcu use they only take and
// release liburcu's call_rcu mutex; should the program itself use call_rcu,
// its workers (whose callbacks may free) are paused across the fork and
// rebuilt in the child. (A program that also calls them from its own
// pthread_atfork handlers would take that mutex twice: documented in
// docs/rcu.md.)
void sm_rcu_before_fork(void) {
    pthread_mutex_lock(&sm_rcu_gate);
    SM_INSIDE(urcu_memb_call_rcu_before_fork());
}
void sm_rcu_after_fork_parent(void) {
    SM_INSIDE(urcu_memb_call_rcu_after_fork_parent());
    pthread_mutex_unlock(&sm_rcu_gate);
}
void sm_rcu_after_fork_child(void) {
    SM_INSIDE(urcu_memb_call_rcu_after_fork_child());
    pthread_mutex_init(&sm_rcu_gate, NULL);
}
