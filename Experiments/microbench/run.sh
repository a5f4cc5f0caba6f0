#!/usr/bin/env bash
# Experiments/microbench/run.sh: single-threaded malloc/free microbenchmark,
# SwiftMalloc against glibc, jemalloc, mimalloc and tcmalloc (gperftools
# tcmalloc_minimal), side by side in one run. See docs/benchmarks.md.
#
# Timing mode (default): each repetition runs microbench once per allocator,
# round-robin (the starting allocator rotates each repetition), so noise hits
# every allocator alike; prints machine facts and a Markdown table of the
# medians with ratios against the fastest peer.
#
# Callgrind mode (--callgrind): counts instructions per malloc+free pair (or
# per object for batch64) under valgrind --tool=callgrind, counting only the
# measured loop (--toggle-collect=mb_measure_*). Deterministic, independent of
# machine noise.
#
# Options (environment variable in brackets):
#   --lib PATH        libSwiftMalloc.so to test [SWIFTMALLOC_LIB]
#                     default: <repo>/.build/release/libSwiftMalloc.so
#   --frontends LIST  SwiftMalloc front ends, space- or comma-separated
#                     [FRONTENDS], default "thread"
#   --reps R          repetitions [REPS], default 7
#   --ops N           operations per workload per run [OPS], default 20000000
#   --cg-ops N        operations per workload under callgrind [CG_OPS],
#                     default 200000
#   --trial N         operations per timed trial inside a run [TRIAL],
#                     default 200000 (a few ms: shorter than a time slice)
#   --stat S          per-run statistic over its trials [STAT]: wall-min
#                     (default: fastest trial by CLOCK_MONOTONIC),
#                     wall-median, cpu-min, cpu-median (CPU time of the
#                     thread, CLOCK_THREAD_CPUTIME_ID: ignores preemption).
#                     The table shows the median over repetitions of it.
#   --cpu C           pin microbench to CPU C, -1 = no pinning [CPU],
#                     default: the last CPU the process may use
#   --workloads LIST  workload:size specs [WORKLOADS], default
#                     "pairs:16 pairs:64 pairs:256 batch64-fifo:16 batch64-lifo:16"
#   --callgrind       instruction counts instead of timings
#   --annotate        with --callgrind: also print callgrind_annotate's
#                     per-function breakdown (exclusive Ir) for SwiftMalloc
#   --only LIST       allocators to run (glibc jemalloc mimalloc tcmalloc
#                     swiftmalloc), default all
#   --out DIR         keep raw results (and callgrind files) in DIR
#   --install         apt-get install the missing peer allocators first
#   -h, --help        this text
# Peer libraries can be overridden with JEMALLOC_LIB, MIMALLOC_LIB,
# TCMALLOC_LIB.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

SWIFTMALLOC_LIB="${SWIFTMALLOC_LIB:-$REPO/.build/release/libSwiftMalloc.so}"
FRONTENDS="${FRONTENDS:-thread}"
REPS="${REPS:-7}"
OPS="${OPS:-20000000}"
CG_OPS="${CG_OPS:-200000}"
CPU="${CPU:-}"
TRIAL="${TRIAL:-200000}"
STAT="${STAT:-wall-min}"
WORKLOADS="${WORKLOADS:-pairs:16 pairs:64 pairs:256 batch64-fifo:16 batch64-lifo:16}"
MODE=time
ANNOTATE=0
INSTALL=0
ONLY="glibc jemalloc mimalloc tcmalloc swiftmalloc"
OUT=""

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
    --lib) SWIFTMALLOC_LIB="$2"; shift 2 ;;
    --frontends) FRONTENDS="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --ops) OPS="$2"; shift 2 ;;
    --cg-ops) CG_OPS="$2"; shift 2 ;;
    --cpu) CPU="$2"; shift 2 ;;
    --trial) TRIAL="$2"; shift 2 ;;
    --stat) STAT="$2"; shift 2 ;;
    --workloads) WORKLOADS="$2"; shift 2 ;;
    --callgrind) MODE=callgrind; shift ;;
    --annotate) ANNOTATE=1; shift ;;
    --only) ONLY="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --install) INSTALL=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage 2 ;;
    esac
done
case "$STAT" in
wall-min) STATCOL=4 ;; wall-median) STATCOL=5 ;; cpu-min) STATCOL=6 ;; cpu-median) STATCOL=7 ;;
*) echo "run.sh: --stat must be wall-min, wall-median, cpu-min or cpu-median" >&2; exit 2 ;;
esac
FRONTENDS="${FRONTENDS//,/ }"
WORKLOADS="${WORKLOADS//,/ }"
ONLY="${ONLY//,/ }"

log() { echo "$@" >&2; }
wants() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/microbench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
if [ -n "$OUT" ]; then mkdir -p "$OUT"; OUT="$(cd "$OUT" && pwd)"; fi
RAW="${OUT:-$WORK}"

# ---------------------------------------------------------------- build
CC="${CC:-cc}"
"$CC" -O2 -fno-builtin -Wall -o "$WORK/microbench" "$HERE/microbench.c"
cat >"$WORK/rseqcheck.c" <<'EOF'
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/rseq.h>
#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif
int main(void) {
    printf("%u %ld %lu\n", __rseq_size, (long)__rseq_offset, getauxval(AT_RSEQ_FEATURE_SIZE));
    return 0;
}
EOF
RSEQ_FACT="unknown (rseq check did not compile)"
if "$CC" -O2 -o "$WORK/rseqcheck" "$WORK/rseqcheck.c" 2>/dev/null; then
    read -r rs_size rs_off rs_feat < <(env -u LD_PRELOAD "$WORK/rseqcheck")
    if [ "$rs_size" -gt 0 ]; then
        RSEQ_FACT="yes (glibc registered rseq: __rseq_size=$rs_size, __rseq_offset=$rs_off; AT_RSEQ_FEATURE_SIZE=$rs_feat, mm_cid $([ "$rs_feat" -ge 28 ] && echo available || echo absent))"
    else
        RSEQ_FACT="no (__rseq_size=0: glibc did not register rseq; AT_RSEQ_FEATURE_SIZE=$rs_feat)"
    fi
fi

# ---------------------------------------------------------------- allocators
find_lib() { # soname, fallback path
    local p
    p="$(ldconfig -p 2>/dev/null | awk -v s="$1" '$1 == s && /x86-64/ { print $NF; exit }')"
    [ -z "$p" ] && [ -e "$2" ] && p="$2"
    echo "$p"
}
ARCHDIR=/usr/lib/x86_64-linux-gnu
JEMALLOC_LIB="${JEMALLOC_LIB:-$(find_lib libjemalloc.so.2 $ARCHDIR/libjemalloc.so.2)}"
MIMALLOC_LIB="${MIMALLOC_LIB:-$(find_lib libmimalloc.so.2 $ARCHDIR/libmimalloc.so.2)}"
TCMALLOC_LIB="${TCMALLOC_LIB:-$(find_lib libtcmalloc_minimal.so.4 $ARCHDIR/libtcmalloc_minimal.so.4)}"

if [ "$INSTALL" = 1 ] && { [ -z "$JEMALLOC_LIB" ] || [ -z "$MIMALLOC_LIB" ] || [ -z "$TCMALLOC_LIB" ]; }; then
    log "installing peer allocators: apt-get install -y libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4"
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 >&2
    JEMALLOC_LIB="$(find_lib libjemalloc.so.2 $ARCHDIR/libjemalloc.so.2)"
    MIMALLOC_LIB="$(find_lib libmimalloc.so.2 $ARCHDIR/libmimalloc.so.2)"
    TCMALLOC_LIB="$(find_lib libtcmalloc_minimal.so.4 $ARCHDIR/libtcmalloc_minimal.so.4)"
fi

# Parallel arrays: name, preload path ("" = none), extra environment.
NAMES=(); LIBS=(); ENVS=(); PEER=()
add() { NAMES+=("$1"); LIBS+=("$2"); ENVS+=("$3"); PEER+=("$4"); }
SKIPPED=()
wants glibc && add glibc "" "" 1
for pair in "jemalloc:$JEMALLOC_LIB:libjemalloc2" "mimalloc:$MIMALLOC_LIB:libmimalloc2.0" "tcmalloc:$TCMALLOC_LIB:libtcmalloc-minimal4"; do
    IFS=: read -r name lib pkg <<<"$pair"
    wants "$name" || continue
    if [ -n "$lib" ] && [ -e "$lib" ]; then
        add "$name" "$lib" "" 1
    else
        log "SKIP $name: library not found (apt-get install -y $pkg, or run.sh --install, or set ${name^^}_LIB)"
        SKIPPED+=("$name (not installed)")
    fi
done
if wants swiftmalloc; then
    if [ ! -e "$SWIFTMALLOC_LIB" ]; then
        log "run.sh: $SWIFTMALLOC_LIB not found: build it (swift build -c release) or pass --lib / SWIFTMALLOC_LIB"
        exit 1
    fi
    SWIFTMALLOC_LIB="$(cd "$(dirname "$SWIFTMALLOC_LIB")" && pwd)/$(basename "$SWIFTMALLOC_LIB")"
    for fe in $FRONTENDS; do add "swiftmalloc-$fe" "$SWIFTMALLOC_LIB" "SWIFTMALLOC_FRONTEND=$fe" 0; done
fi
N=${#NAMES[@]}
[ "$N" -gt 0 ] || { log "run.sh: nothing to run"; exit 1; }

# Runs one command for allocator index $1 with the remaining arguments,
# preloading its library and setting its environment.
run_for() {
    local i=$1; shift
    local -a envs=()
    [ -n "${LIBS[$i]}" ] && envs+=("LD_PRELOAD=${LIBS[$i]}")
    [ -n "${ENVS[$i]}" ] && envs+=(${ENVS[$i]})
    env -u LD_PRELOAD -u SWIFTMALLOC_FRONTEND "${envs[@]}" "$@"
}

# ---------------------------------------------------------------- facts
CPU_MODEL="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
HYPER="$(lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ { print " (virtual machine, " $2 ")" }')"
GITREV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY=""
if [ -n "$(git -C "$REPO" status --porcelain -- Sources CShims Package.swift 2>/dev/null)" ]; then
    DIRTY=" + uncommitted changes under Sources/CShims"
fi
LIBSUM=""
[ -e "$SWIFTMALLOC_LIB" ] && LIBSUM="$(sha256sum "$SWIFTMALLOC_LIB" | cut -c1-12)"
peer_version() { # package name
    dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"
}

facts() {
    echo "## Machine"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- CPU: $CPU_MODEL$HYPER, $(nproc) CPUs online ($(getconf _NPROCESSORS_CONF) configured)"
    echo "- Kernel: $(uname -r)"
    echo "- glibc: $(ldd --version | head -1)"
    echo "- rseq: $RSEQ_FACT"
    echo "- Compiler for microbench: $("$CC" --version | head -1) (-O2 -fno-builtin)"
    echo "- SwiftMalloc: git $GITREV$DIRTY; $SWIFTMALLOC_LIB (sha256 $LIBSUM)"
    echo "- Peers: jemalloc $(peer_version libjemalloc2), mimalloc $(peer_version libmimalloc2.0), tcmalloc_minimal (gperftools) $(peer_version libtcmalloc-minimal4)"
    if [ "$MODE" = time ]; then
        echo "- Run: $REPS repetitions, round-robin across allocators (one process per allocator per repetition); $OPS ops per workload per run after a warm-up of ops/10, in trials of $TRIAL ops; statistic per run: $STAT; pinned CPU: ${CPU:-last allowed}"
        echo "- Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    else
        echo "- Run: valgrind --tool=callgrind ($(valgrind --version)), $CG_OPS ops per workload, counting only the measured loop"
    fi
    [ ${#SKIPPED[@]} -gt 0 ] && echo "- Skipped: ${SKIPPED[*]}"
    echo
}

# ---------------------------------------------------------------- verification
# Each allocator must actually be the one that `malloc` resolves to; for
# SwiftMalloc, the front end must be the one asked for (stats file).
verify() { # index, malloc_from line, stats file or ""
    local i=$1 from=$2 stats=$3 want got
    if [ -z "${LIBS[$i]}" ]; then
        case "$from" in *libc.so*) ;; *) log "run.sh: glibc run resolved malloc to '$from'"; return 1 ;; esac
    else
        want="$(readlink -f "${LIBS[$i]}")"
        got="$(readlink -f "$from" 2>/dev/null || echo "$from")"
        if [ "$want" != "$got" ]; then
            log "run.sh: ${NAMES[$i]}: malloc resolved to '$from', not ${LIBS[$i]}"
            return 1
        fi
    fi
    if [ -n "$stats" ]; then
        local fe="${ENVS[$i]#SWIFTMALLOC_FRONTEND=}"
        if ! grep -q "\"frontend\":\"$fe\"" "$stats"; then
            log "run.sh: ${NAMES[$i]}: SwiftMalloc reports front end $(grep -o '"frontend":"[a-z]*"' "$stats" || echo '?'), not $fe"
            return 1
        fi
    fi
    return 0
}

WARGS=()
for w in $WORKLOADS; do WARGS+=(-w "$w"); done
CPUARG=()
[ -n "$CPU" ] && CPUARG=(-c "$CPU")

VERIFIED=()
log "verifying that each allocator is the one in use..."
for ((i = 0; i < N; i++)); do
    stats=""
    [ "${PEER[$i]}" = 0 ] && stats="$WORK/stats.$i.json"
    out="$(run_for "$i" env ${stats:+SWIFTMALLOC_STATS_FILE=$stats} "$WORK/microbench" -n 1000 -w pairs:16 2>"$WORK/verify.$i.err")"
    from="$(awk -F'\t' '$1 == "malloc_from" { print $2 }' <<<"$out")"
    if [ -s "$WORK/verify.$i.err" ]; then log "  ${NAMES[$i]} stderr: $(cat "$WORK/verify.$i.err")"; fi
    if verify "$i" "$from" "$stats"; then
        VERIFIED+=("${NAMES[$i]}: malloc from $from${stats:+, front end ${ENVS[$i]#SWIFTMALLOC_FRONTEND=} confirmed by SWIFTMALLOC_STATS_FILE}")
    else
        log "run.sh: ${NAMES[$i]} is not loaded as expected; stopping"
        exit 1
    fi
done

# ---------------------------------------------------------------- tables
# Input on stdin: "allocator<TAB>workload<TAB>size<TAB>value" rows, possibly
# several per (allocator, workload, size). Prints a Markdown table of the
# medians, each with its ratio to the fastest peer, plus the spread.
table() { # unit label, decimals, 1 = mark the 1.5× goal
    local names peers
    names="$(printf '%s ' "${NAMES[@]}")"
    peers=""
    for ((i = 0; i < N; i++)); do [ "${PEER[$i]}" = 1 ] && peers+="${NAMES[$i]} "; done
    awk -F'\t' -v names="$names" -v peers="$peers" -v unit="$1" -v dec="$2" -v marks="${3:-0}" '
    function median(key,   n, i, j, t, a) {
        n = split(vals[key], a, " ")
        for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        lo[key] = a[1]; hi[key] = a[n]
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        key = $1 SUBSEP $2 ":" $3
        vals[key] = vals[key] " " $4
        w = $2 ":" $3
        if (!(w in seenw)) { seenw[w] = 1; order[++nw] = w }
    }
    END {
        na = split(names, an, " ")
        np = split(peers, pn, " ")
        for (k = 1; k <= np; k++) ispeer[pn[k]] = 1
        hdr = "| workload (" unit ") |"; sep = "|---|"
        for (a = 1; a <= na; a++) { hdr = hdr " " an[a] " |"; sep = sep "---:|" }
        hdr = hdr " fastest peer |"; sep = sep "---|"
        for (a = 1; a <= na; a++) if (!(an[a] in ispeer)) { hdr = hdr " " an[a] " ÷ fastest peer |"; sep = sep "---:|" }
        print hdr; print sep
        for (x = 1; x <= nw; x++) {
            w = order[x]; best = ""; bestv = 0
            for (a = 1; a <= na; a++) {
                key = an[a] SUBSEP w
                if (!(key in vals)) continue
                med[key] = median(key)
                if ((an[a] in ispeer) && (best == "" || med[key] < bestv)) { best = an[a]; bestv = med[key] }
            }
            split(w, ws, ":")
            line = "| " ws[1] " " ws[2] " B |"
            for (a = 1; a <= na; a++) {
                key = an[a] SUBSEP w
                if (!(key in med)) { line = line " – |"; continue }
                cell = sprintf("%." dec "f", med[key])
                if (bestv > 0) cell = cell sprintf(" (%.2f×)", med[key] / bestv)
                line = line " " cell " |"
            }
            line = line " " (best == "" ? "–" : best) " |"
            for (a = 1; a <= na; a++) if (!(an[a] in ispeer)) {
                key = an[a] SUBSEP w
                if ((key in med) && bestv > 0) {
                    r = med[key] / bestv
                    line = line sprintf(" **%.2f×**%s |", r, marks ? (r <= 1.5 ? " ✅" : " ❌") : "")
                } else line = line " – |"
            }
            print line
        }
        print ""
    }'
}

spread_table() { # decimals
    local names
    names="$(printf '%s ' "${NAMES[@]}")"
    awk -F'\t' -v names="$names" -v dec="$1" '
    { key = $1 SUBSEP $2 ":" $3
      if (!(key in mn) || $4 + 0 < mn[key]) mn[key] = $4 + 0
      if (!(key in mx) || $4 + 0 > mx[key]) mx[key] = $4 + 0
      w = $2 ":" $3; if (!(w in seenw)) { seenw[w] = 1; order[++nw] = w } }
    END {
        na = split(names, an, " ")
        hdr = "| workload: min–max over repetitions |"; sep = "|---|"
        for (a = 1; a <= na; a++) { hdr = hdr " " an[a] " |"; sep = sep "---:|" }
        print hdr; print sep
        for (x = 1; x <= nw; x++) {
            w = order[x]; split(w, ws, ":"); line = "| " ws[1] " " ws[2] " B |"
            for (a = 1; a <= na; a++) {
                key = an[a] SUBSEP w
                line = line ((key in mn) ? sprintf(" %." dec "f–%." dec "f |", mn[key], mx[key]) : " – |")
            }
            print line
        }
        print ""
    }'
}

verdict() { # input: same rows; prints the acceptance line for each SwiftMalloc front end
    local names peers
    names="$(printf '%s ' "${NAMES[@]}")"
    peers=""
    for ((i = 0; i < N; i++)); do [ "${PEER[$i]}" = 1 ] && peers+="${NAMES[$i]} "; done
    awk -F'\t' -v names="$names" -v peers="$peers" '
    function median(key,   n, i, j, t, a) {
        n = split(vals[key], a, " ")
        for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { key = $1 SUBSEP $2 ":" $3; vals[key] = vals[key] " " $4
      w = $2 ":" $3; if (!(w in seenw)) { seenw[w] = 1; order[++nw] = w } }
    END {
        na = split(names, an, " "); np = split(peers, pn, " ")
        for (k = 1; k <= np; k++) ispeer[pn[k]] = 1
        if (np == 0) exit
        for (a = 1; a <= na; a++) {
            if (an[a] in ispeer) continue
            worst = 0; worstw = ""; fails = ""
            for (x = 1; x <= nw; x++) {
                w = order[x]; bestv = 0
                for (k = 1; k <= np; k++) { key = pn[k] SUBSEP w; if (key in vals) { m = median(key); if (bestv == 0 || m < bestv) bestv = m } }
                key = an[a] SUBSEP w
                if (!(key in vals) || bestv == 0) continue
                r = median(key) / bestv
                if (r > worst) { worst = r; worstw = w }
                if (r > 1.5) fails = fails " " w sprintf(" (%.2f×)", r)
            }
            if (fails == "") printf("- %s: within 1.5× of the fastest peer on every workload (worst %.2f× on %s). Goal met.\n", an[a], worst, worstw)
            else printf("- %s: NOT within 1.5× of the fastest peer on:%s. Goal not met.\n", an[a], fails)
        }
        # The per-CPU front end has its own goal: within 1.1× of tcmalloc.
        for (a = 1; a <= na; a++) {
            if (an[a] != "swiftmalloc-percpu") continue
            worst = 0; worstw = ""; fails = ""; seen = 0
            for (x = 1; x <= nw; x++) {
                w = order[x]; kp = an[a] SUBSEP w; kt = "tcmalloc" SUBSEP w
                if (!(kp in vals) || !(kt in vals)) continue
                seen = 1
                r = median(kp) / median(kt)
                if (r > worst) { worst = r; worstw = w }
                if (r > 1.1) fails = fails " " w sprintf(" (%.3f×)", r)
            }
            if (!seen) continue
            if (fails == "") printf("- swiftmalloc-percpu: within 1.1× of tcmalloc on every workload (worst %.3f× on %s). Goal met.\n", worst, worstw)
            else printf("- swiftmalloc-percpu: NOT within 1.1× of tcmalloc on:%s. Goal not met.\n", fails)
        }
        print ""
    }'
}

# ---------------------------------------------------------------- timing mode
if [ "$MODE" = time ]; then
    facts
    echo "Loaded libraries (checked with dladdr(malloc) inside microbench):"
    echo
    for v in "${VERIFIED[@]}"; do echo "- $v"; done
    echo
    : >"$RAW/raw.tsv"
    total=$((REPS * N)); done_=0
    for ((r = 0; r < REPS; r++)); do
        for ((k = 0; k < N; k++)); do
            i=$(((r + k) % N)) # rotate the starting allocator each repetition
            done_=$((done_ + 1))
            log "[$done_/$total] rep $((r + 1)) ${NAMES[$i]}"
            run_for "$i" "$WORK/microbench" -q -n "$OPS" -t "$TRIAL" "${CPUARG[@]}" "${WARGS[@]}" 2>>"$WORK/run.err" |
                awk -F'\t' -v a="${NAMES[$i]}" -v r="$((r + 1))" '$1 == "result" { print a "\t" $2 "\t" $3 "\t" $5 "\t" $6 "\t" $7 "\t" $8 "\t" r }' >>"$RAW/raw.tsv"
        done
    done
    if [ -s "$WORK/run.err" ]; then log "stderr from the runs:"; sort -u "$WORK/run.err" >&2; fi
    echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    # The chosen statistic as column 4 for the table functions.
    awk -F'\t' -v c="$STATCOL" '{ print $1 "\t" $2 "\t" $3 "\t" $c }' "$RAW/raw.tsv" >"$WORK/stat.tsv"
    echo "## Results: ns per malloc+free ($STAT per run, median of $REPS runs)"
    echo
    echo "pairs: ns per malloc+free pair. batch64: ns per object (64 mallocs then 64 frees, divided by 64). Ratio in parentheses: to the fastest peer (glibc, jemalloc, mimalloc, tcmalloc) on that row; lower is better. ✅ = within the 1.5× goal."
    echo
    table "ns" 2 1 <"$WORK/stat.tsv"
    spread_table 2 <"$WORK/stat.tsv"
    echo "## Acceptance (SwiftMalloc within 1.5× of the fastest peer; per-CPU within 1.1× of tcmalloc)"
    echo
    verdict <"$WORK/stat.tsv"
    [ -n "$OUT" ] && log "raw results: $OUT/raw.tsv (allocator, workload, size, wall_min, wall_median, cpu_min, cpu_median [ns/op], repetition)"
    exit 0
fi

# ---------------------------------------------------------------- callgrind mode
command -v valgrind >/dev/null || { log "run.sh: valgrind not installed (apt-get install -y valgrind)"; exit 1; }
facts
echo "Loaded libraries under valgrind (checked with dladdr(malloc) inside microbench):"
echo
# valgrind 3.19 cannot read the DWARF 5 debug info that Swift's clang emits
# ("unhandled dwarf2 abbrev form code 0x25 ... Giving up"), so callgrind runs
# a copy of libSwiftMalloc.so with the debug sections stripped (symbols kept).
CGLIBS=()
for ((i = 0; i < N; i++)); do
    lib="${LIBS[$i]}"
    if [ "${PEER[$i]}" = 0 ] && [ -n "$lib" ]; then
        lib="$WORK/nodebug/$(basename "$lib")"
        if [ ! -e "$lib" ]; then mkdir -p "$WORK/nodebug"; objcopy --strip-debug "${LIBS[$i]}" "$lib"; fi
    fi
    CGLIBS+=("$lib")
done
: >"$RAW/callgrind.tsv"
CGNOTES=()
for ((i = 0; i < N; i++)); do
    for w in $WORKLOADS; do
        name="${w%%:*}"; size="${w##*:}"
        cgout="$RAW/callgrind.${NAMES[$i]}.$name.$size.out"
        log "callgrind: ${NAMES[$i]} $w"
        envs=()
        [ -n "${CGLIBS[$i]}" ] && envs+=("LD_PRELOAD=${CGLIBS[$i]}")
        [ -n "${ENVS[$i]}" ] && envs+=(${ENVS[$i]})
        [ "${PEER[$i]}" = 0 ] && envs+=("SWIFTMALLOC_STATS_FILE=$WORK/cgstats.json")
        rm -f "$WORK/cgstats.json"
        out="$(env -u LD_PRELOAD -u SWIFTMALLOC_FRONTEND "${envs[@]}" valgrind --tool=callgrind \
            --callgrind-out-file="$cgout" --toggle-collect='mb_measure_*' \
            "$WORK/microbench" -c -1 -n "$CG_OPS" -w "$w" 2>"$WORK/cg.err")" || { cat "$WORK/cg.err" >&2; exit 1; }
        from="$(awk -F'\t' '$1 == "malloc_from" { print $2 }' <<<"$out")"
        want="${CGLIBS[$i]:-libc.so}"
        case "$from" in *"$(basename "$want")"*) ;; *) log "run.sh: under callgrind ${NAMES[$i]} resolved malloc to $from"; exit 1 ;; esac
        grep -q '^swiftmalloc:' "$WORK/cg.err" && log "  $(grep '^swiftmalloc:' "$WORK/cg.err")"
        if [ "${PEER[$i]}" = 0 ] && ! grep -q "\"frontend\":\"${ENVS[$i]#SWIFTMALLOC_FRONTEND=}\"" "$WORK/cgstats.json" 2>/dev/null; then
            # e.g. percpu: valgrind does not implement rseq, so SwiftMalloc
            # falls back to the thread front end; those counts would be
            # another front end's.
            got="$(grep -o '"frontend":"[a-z]*"' "$WORK/cgstats.json" 2>/dev/null | cut -d'"' -f4)"
            CGNOTES+=("${NAMES[$i]}: not measured: under valgrind SwiftMalloc ran front end '${got:-?}' instead ($(grep '^swiftmalloc:' "$WORK/cg.err" | head -1 || true))")
            log "  ${NAMES[$i]}: skipped under callgrind (front end ${got:-?} in use)"
            rm -f "$cgout"
            continue 2
        fi
        ops="$(awk -F'\t' '$1 == "result" { print $4 }' <<<"$out")"
        ir="$(awk '/Collected :/ { print $NF }' "$WORK/cg.err")"
        [ "$w" = "${WORKLOADS%% *}" ] && echo "- ${NAMES[$i]}: malloc from $from"
        awk -v a="${NAMES[$i]}" -v w="$name" -v s="$size" -v ir="$ir" -v ops="$ops" \
            'BEGIN { printf("%s\t%s\t%s\t%.2f\n", a, w, s, ir / ops) }' >>"$RAW/callgrind.tsv"
    done
done
for note in "${CGNOTES[@]}"; do echo "- $note"; done
echo
echo "## Instructions per malloc+free (callgrind, Ir in the measured loop)"
echo
echo "pairs: instructions per malloc+free pair; batch64: per object. The counts include the benchmark's own loop and the two PLT jumps, the same for every allocator: 13 instructions per pair, about 17–18 per batch64 object (gcc 12 -O2). Ratio in parentheses: to the peer with the fewest instructions."
echo
table "Ir" 1 <"$RAW/callgrind.tsv"

if [ "$ANNOTATE" = 1 ] && command -v callgrind_annotate >/dev/null; then
    demangle=cat
    command -v swift-demangle >/dev/null && demangle="swift-demangle --simplified"
    for ((i = 0; i < N; i++)); do
        [ "${PEER[$i]}" = 0 ] || continue
        for w in $WORKLOADS; do
            name="${w%%:*}"; size="${w##*:}"
            cgout="$RAW/callgrind.${NAMES[$i]}.$name.$size.out"
            [ -e "$cgout" ] || continue
            echo "### ${NAMES[$i]}, $name $size B: exclusive instructions by function"
            echo
            echo '```'
            callgrind_annotate --inclusive=no "$cgout" 2>/dev/null | awk '/file:function/ { p = 1; getline; next } p && NF' | head -15 | $demangle
            echo '```'
            echo
        done
    done
fi
[ -n "$OUT" ] && log "callgrind files and callgrind.tsv kept in $OUT"
exit 0
