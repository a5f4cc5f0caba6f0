#!/usr/bin/env bash
# scripts/test-tsan.sh — the middle and back end's unit tests under
# ThreadSanitizer.
#
#   bash scripts/test-tsan.sh
#
# Runs `swift test --sanitize=thread` (build folder .build-tsan, apart from
# the ordinary .build) on the unit tests that drive the middle and back end
# (central lists, transfer caches, object caches, page heap, page map, size
# classes) from one or several threads and never enter an rseq critical
# section: TSan does not model rseq's restart-on-preemption, so the per-CPU
# front end's tests (PerCPUShimTests) are left out. The test process's own
# Heap is put on the `thread` front end (SWIFTMALLOC_FRONTEND) so that
# nothing in it uses per-CPU caches: the tests that allocate and free
# through it from many threads run here too.
#
# Suppressions: scripts/tsan-suppressions.txt (each entry says why the
# access is racy on purpose). The script fails on any TSan report
# (halt_on_error) or failed test. Ends with a "tsan: ..." summary line.
#
# Environment:
#   SWIFTMALLOC_TSAN_FILTER=REGEX  run these tests instead of the default set
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
START=$SECONDS
say() { printf '==> %s\n' "$*"; }

# The tests that never enter rseq: the ones on a PrivateHeap
# (Tests/SwiftMallocTests/ComponentHeap.swift), the back end's own, and the
# concurrency tests on the test process's (thread front end) Heap.
DEFAULT_FILTER='UnitMiddleTests|UnitObjectCacheTests|UnitPageHeapTests|UnitPageMapTests|UnitSizeClassTests|UnitConfigurationTests|UnitConfigFileTests|UnitHistogramTests|UnitLockTests|UnitConcurrencyTests\.(testThreadsShareTheMiddle|testThreadsHandBatchesAcrossShards|testRemappedBlocksStayUsable|testThreadsAllocateAndFreeThenEverythingComesHome)'
FILTER=${SWIFTMALLOC_TSAN_FILTER:-$DEFAULT_FILTER}

export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/scripts/tsan-suppressions.txt ${TSAN_OPTIONS:-}"
export SWIFTMALLOC_FRONTEND=thread

say "swift build --sanitize=thread --build-tests --scratch-path .build-tsan"
T=$SECONDS
swift build --sanitize=thread --build-tests --scratch-path .build-tsan
say "built in $((SECONDS - T))s"

say "swift test --sanitize=thread --skip-build --filter '$FILTER' (TSAN_OPTIONS=$TSAN_OPTIONS)"
T=$SECONDS
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
status=0
swift test --sanitize=thread --scratch-path .build-tsan --skip-build --disable-swift-testing \
    --filter "$FILTER" 2>&1 | tee "$LOG" || status=$?
reports=$(grep -c '^WARNING: ThreadSanitizer' "$LOG" || true)
executed=$(grep -Eo 'Executed [0-9]+ tests?, with [0-9]+ failures?' "$LOG" | tail -n 1 || true)
say "swift test under TSan finished with status $status in $((SECONDS - T))s; total $((SECONDS - START))s"
echo "tsan: ${executed:-no test summary}; $reports ThreadSanitizer report(s)"
if [ "$reports" -ne 0 ] && [ "$status" -eq 0 ]; then status=1; fi
exit "$status"
