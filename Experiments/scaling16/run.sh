#!/usr/bin/env bash
# Experiments/scaling16/run.sh — issue 12's 16-CPU table in one call of the
# lent machine (docs/scaling.md, "The 16-CPU run").
#
#   ../shared/device-kit/pack.sh                      # here, once: fills .devkit/
#   OUT=/tmp/s16 bash Experiments/scaling16/run.sh    # here, to try it (2 CPUs: slow, small)
#   device tool: command `bash Experiments/scaling16/run.sh`, carry [".devkit"], timeout_s 500
#
# Three `malloc-lab compare` runs through the kit's run-lab.sh, each into a
# folder of its own under $OUT (lab.tgz and log.txt in each):
#   table/    every multi-threaded workload at 4 and 16 threads, all front
#             ends and peers, 3 repetitions (the issue's table);
#   oversub/  oversub at 64 and 256 threads, 2 repetitions;
#   shards1/  the SwiftMalloc front ends alone on the workloads whose objects
#             cross CPUs, at 16 threads, with one transfer-cache shard
#             (SWIFTMALLOC_TRANSFER_SHARDS=1): against table/, what the
#             default shards (2 on 16 CPUs) change, with the lock counters.
# QUICK=1 runs the small (quick) sizes instead of the full ones.
set -u
cd "$(dirname "$0")/../.."
kit=.devkit/run-lab.sh
[ -x "$kit" ] || { echo "no $kit: run ../shared/device-kit/pack.sh first" >&2; exit 2; }
OUT=${OUT:-/tmp/scaling16}
size=()
[ "${QUICK:-0}" = 1 ] && size=(--quick)
status=0
run() {
    local name=$1; shift
    echo "== $name: malloc-lab compare $*"
    OUT="$OUT/$name" bash "$kit" "${size[@]}" "$@" || status=1
}
run table -r 3 -t 4,16 -w larson,prodcons,threadchurn,falseshare,fragmentation,largerealloc,swiftprog
run oversub -r 2 -t 64,256 -w oversub
SWIFTMALLOC_TRANSFER_SHARDS=1 run shards1 -r 3 -t 16 -a swiftmalloc -w larson,prodcons,fragmentation
exit $status
