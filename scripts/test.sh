#!/usr/bin/env bash
# scripts/test.sh — builds SwiftMalloc and runs its whole test suite.
#
#   bash scripts/test.sh
#
# On a fresh Debian machine with only the Swift toolchain it first installs
# what the tests need (with apt-get, saying what), then:
#   1. swift build -c release      -> .build/release/libSwiftMalloc.so
#      swift build --product SwiftMalloc -> .build/debug/libSwiftMalloc.so
#      the adoption demo (Examples/AdoptDemo, a package depending on this one)
#   2. swift test (in parallel)    with SWIFTMALLOC_LIB pointing at the release library:
#      the XCTest tests, then the Swift Testing ones
#   3. scripts/test-tsan.sh        the middle and back end's unit tests under
#      ThreadSanitizer (own build folder .build-tsan; about 70 s on 2 CPUs, build included)
# The integration tests start real programs (python3 -m test, sqlite3, git,
# C programs compiled with cc) under LD_PRELOAD=libSwiftMalloc.so.
#
# Environment:
#   SWIFTMALLOC_TEST_PARALLEL=0   run the tests one at a time (default: parallel)
#   SWIFTMALLOC_TEST_FILTER=REGEX pass --filter REGEX to swift test (and skip step 3,
#                                 unless SWIFTMALLOC_TEST_TSAN=1)
#   SWIFTMALLOC_TEST_TSAN=0|1     skip / force step 3 (default: run it when no filter is set)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
START=$SECONDS

say() { printf '==> %s\n' "$*"; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die() { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { printf '%ds' $((SECONDS - $1)); }

# ---------------------------------------------------------------------------
# 0. Prerequisites
# ---------------------------------------------------------------------------
say "checking prerequisites"
command -v swift >/dev/null 2>&1 || die "the Swift toolchain (swift) is not in PATH; install Swift 6 first"
say "swift: $(swift --version 2>/dev/null | head -n 1)"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi

have_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "missing $*, and there is no apt-get here to install them; install them by hand"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "running apt-get update"
        "${SUDO[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    say "installing with apt-get: $*"
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    have_package liburcu-dev || missing+=(liburcu-dev)
elif [ ! -e /usr/include/urcu.h ]; then
    missing+=(liburcu-dev)
fi
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
[ -e /usr/include/stdio.h ] || missing+=(libc6-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# For the lab's callgrind test (malloc-lab micro --callgrind; skipped without it).
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
# For the aarch64 cross-compile test (scripts/cross-compile-aarch64.sh).
command -v file >/dev/null 2>&1 || missing+=(file)
if command -v dpkg-query >/dev/null 2>&1; then
    have_package libc6-dev-arm64-cross || missing+=(libc6-dev-arm64-cross)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    say "missing: ${missing[*]}"
    apt_install "${missing[@]}"
else
    say "liburcu-dev, sqlite3, git, cc, python3, valgrind, file and libc6-dev-arm64-cross are present"
fi

# python3 -m test needs CPython's own `test` package (pyenv builds have it;
# Debian's python3 splits it into libpython3.X-testsuite).
if ! python3 -c 'import test.support' >/dev/null 2>&1; then
    py_version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    py_prefix=$(python3 -c 'import sys; print(sys.prefix)')
    if [ "$py_prefix" = "/usr" ]; then
        say "python3 $py_version (Debian's) lacks its test package"
        apt_install "libpython${py_version}-testsuite" || true
    fi
    if ! python3 -c 'import test.support' >/dev/null 2>&1; then
        warn "python3 ($(command -v python3), $py_version) has no 'test' package (import test.support fails)."
        warn "IntegrationRealProgramTests.testPythonRegressionTestsPass will fail; install a full CPython"
        warn "(a pyenv build includes it) or Debian's libpython${py_version}-testsuite."
    fi
else
    say "python3: $(python3 --version 2>&1) at $(python3 -c 'import sys; print(sys.executable)'), test package present"
fi

# ---------------------------------------------------------------------------
# 1. Release build: the library the tests preload
# ---------------------------------------------------------------------------
T=$SECONDS
say "swift build -c release"
swift build -c release
export SWIFTMALLOC_LIB="$ROOT/.build/release/libSwiftMalloc.so"
[ -f "$SWIFTMALLOC_LIB" ] || die "the release build did not produce $SWIFTMALLOC_LIB"
say "built $SWIFTMALLOC_LIB in $(elapsed "$T")"

# The debug library (tests check that it preloads) and the adoption demo.
T=$SECONDS
say "swift build --product SwiftMalloc (debug library)"
swift build --product SwiftMalloc
say "swift build -c release --package-path Examples/AdoptDemo"
if ! swift build -c release --package-path Examples/AdoptDemo; then
    # SwiftPM keeps the list of a path dependency's source files in the
    # dependent's build folder; after files moved here, start it afresh.
    warn "the demo's build failed; building it again from an empty build folder"
    rm -rf Examples/AdoptDemo/.build
    swift build -c release --package-path Examples/AdoptDemo
fi
say "built the debug library and the demo in $(elapsed "$T")"

# A first smoke check, so that a library that cannot even be preloaded says so plainly.
say "smoke check: LD_PRELOAD=$SWIFTMALLOC_LIB /bin/ls /"
LD_PRELOAD="$SWIFTMALLOC_LIB" /bin/ls / >/dev/null

# ---------------------------------------------------------------------------
# 2. Tests
# ---------------------------------------------------------------------------
T=$SECONDS
XUNIT="$ROOT/.build/test-results.xml"
XUNIT_SWIFT_TESTING="$ROOT/.build/test-results-swift-testing.xml"
rm -f "$XUNIT" "$XUNIT_SWIFT_TESTING"
# XCTest (most tests, in parallel), then Swift Testing (the property-based
# tests of the lab's optimiser): two runs, each with its own xUnit report.
filter_args=()
if [ -n "${SWIFTMALLOC_TEST_FILTER:-}" ]; then filter_args+=(--filter "$SWIFTMALLOC_TEST_FILTER"); fi
test_args=(--disable-swift-testing --xunit-output "$XUNIT" "${filter_args[@]}")
if [ "${SWIFTMALLOC_TEST_PARALLEL:-1}" != "0" ]; then test_args+=(--parallel); fi
say "swift test ${test_args[*]} (SWIFTMALLOC_LIB=$SWIFTMALLOC_LIB)"
status=0
swift test "${test_args[@]}" || status=$?
swift_testing_args=(--skip-build --disable-xctest --xunit-output "$XUNIT_SWIFT_TESTING" "${filter_args[@]}")
say "swift test ${swift_testing_args[*]}"
swift test "${swift_testing_args[@]}" || status=$?
test_seconds=$((SECONDS - T))

# ---------------------------------------------------------------------------
# 3. ThreadSanitizer: the unit tests that never enter rseq (scripts/test-tsan.sh)
# ---------------------------------------------------------------------------
tsan_default=1
if [ -n "${SWIFTMALLOC_TEST_FILTER:-}" ]; then tsan_default=0; fi
tsan_status=0
tsan_ran=0
if [ "${SWIFTMALLOC_TEST_TSAN:-$tsan_default}" != "0" ]; then
    T3=$SECONDS
    say "ThreadSanitizer step: scripts/test-tsan.sh"
    tsan_ran=1
    bash "$ROOT/scripts/test-tsan.sh" || tsan_status=$?
    say "ThreadSanitizer step finished with status $tsan_status in $(elapsed "$T3")"
fi

if [ "$tsan_ran" -eq 1 ] && [ "$tsan_status" -ne 0 ]; then
    warn "the ThreadSanitizer step (scripts/test-tsan.sh) failed with status $tsan_status"
fi

# The parallel runner prints only progress and failures: end with the counts.
if [ -f "$XUNIT" ]; then
    # One <testcase> per test; a failed one holds one or more <failure>.
    read -r total failed_tests skipped < <(awk '
        /<testcase /  { total++; inCase = 1; f = 0; s = 0 }
        /<failure/    { if (inCase && !f) { failed++; f = 1 } }
        /<skipped/    { if (inCase && !s) { skipped++; s = 1 } }
        /<\/testcase>/ { inCase = 0 }
        END { print total + 0, failed + 0, skipped + 0 }' "$XUNIT" $([ -f "$XUNIT_SWIFT_TESTING" ] && echo "$XUNIT_SWIFT_TESTING"))
    passed=$((total - failed_tests - skipped))
    if [ "$status" -ne 0 ] && [ "$failed_tests" -eq 0 ]; then failed_tests=1; fi
    # A failed ThreadSanitizer step counts as one failed test in the closing line.
    if [ "$tsan_status" -ne 0 ]; then failed_tests=$((failed_tests + 1)); fi
    say "swift test finished with status $status in ${test_seconds}s; total $(elapsed "$START")"
    if [ "$skipped" -gt 0 ]; then
        echo "tests: $passed passed, $failed_tests failed, $skipped skipped"
    else
        echo "tests: $passed passed, $failed_tests failed"
    fi
else
    say "swift test finished with status $status in ${test_seconds}s (no xUnit report at $XUNIT)"
fi
if [ "$tsan_status" -ne 0 ] && [ "$status" -eq 0 ]; then status=$tsan_status; fi
exit "$status"
