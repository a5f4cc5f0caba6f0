#!/usr/bin/env bash
# Experiments/page-reuse/run.sh — the page-reuse programs of docs/scaling.md
# ("Decay by time, and what a cycled block costs"; "Large blocks") under
# SwiftMalloc and the peers, alternating, REPS runs each.
#
#   bash Experiments/page-reuse/run.sh [LIBRARY]     (default .build/release/libSwiftMalloc.so)
#   REPS=5 SIZES="256 1024 4096 8192" MIB=48 bash Experiments/page-reuse/run.sh
#
# Prints one line per run: program, allocator, and what the program printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
lib=${1:-.build/release/libSwiftMalloc.so}
[ -e "$lib" ] || { echo "no $lib: swift build -c release first" >&2; exit 1; }
reps=${REPS:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -o "$out/cycle" Experiments/page-reuse/cycle.c
cc -O2 -o "$out/large_phases" Experiments/page-reuse/large_phases.c
allocators=("swiftmalloc=$(realpath "$lib")")
for name in jemalloc:libjemalloc.so.2 mimalloc:libmimalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4; do
    path=$(ldconfig -p | awk -v so="${name#*:}" '$1 == so { print $NF; exit }')
    if [ -n "$path" ]; then allocators+=("${name%%:*}=$path"); else echo "(${name%%:*} not installed: skipped)"; fi
done
allocators+=("glibc=")
run() {
    for ((i = 0; i < reps; i++)); do
        for entry in "${allocators[@]}"; do
            printf '%-28s %-12s %s\n' "$1" "${entry%%=*}" "$(LD_PRELOAD="${entry#*=}" "${@:2}")"
        done
    done
}
for size in ${SIZES:-256 1024 4096 8192}; do run "cycle $size B x ${MIB:-48} MiB" "$out/cycle" "$size" "${MIB:-48}" 30; done
run "large_phases" "$out/large_phases"
