#!/usr/bin/env bash
# The README's main command: set up a fresh machine, build, and run the quick
# comparison of SwiftMalloc's front ends against glibc, jemalloc, mimalloc and
# tcmalloc. Writes report.md, results.json, results.csv and SVG charts.
#
#     scripts/experiment.sh [OUT_DIR]        (default: results/quick)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-results/quick}"

need_apt=()
[ -e /usr/include/x86_64-linux-gnu/urcu/urcu-memb.h ] || [ -e /usr/include/urcu/urcu-memb.h ] || need_apt+=(liburcu-dev)
for pkg in libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "experiment.sh: installing with apt-get: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "experiment.sh: building (swift build -c release)"
swift build -c release
echo "experiment.sh: running malloc-lab compare --quick --out $out"
.build/release/malloc-lab compare --quick --out "$out"
echo "experiment.sh: report in $out/report.md"
