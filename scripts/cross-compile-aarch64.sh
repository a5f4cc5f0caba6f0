#!/usr/bin/env bash
# Compiles the allocator for aarch64 Linux, to check that the x86-64 code is
# fenced (docs/architecture.md, "Other architectures"): each C file of CShims
# with clang, the Embedded Swift core with swiftc, then links them into a
# shared library and lists the names it exports. Nothing is run.
#
#     scripts/cross-compile-aarch64.sh [OUT_DIR]   (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out/include"
sysroot=/usr/aarch64-linux-gnu

urcu_dir() {
    for d in /usr/include/urcu /usr/include/*-linux-gnu/urcu; do
        if [ -e "$d/urcu-memb.h" ]; then echo "$d"; return; fi
    done
}
need_apt=()
dpkg -s libc6-dev-arm64-cross >/dev/null 2>&1 || need_apt+=(libc6-dev-arm64-cross)
[ -n "$(urcu_dir)" ] || need_apt+=(liburcu-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "cross-compile-aarch64.sh: installing with apt-get: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# liburcu's headers are installed for the host, in its multiarch folder; they
# pick their architecture code by compiler macros (urcu/arch.h), so they serve
# aarch64 too. Only the urcu folder is exposed, not the host's libc headers.
ln -sfn "$(urcu_dir)" "$out/include/urcu"

is_aarch64() { file "$1"; file -b "$1" | grep -q 'ARM aarch64'; }

objects=()
for src in CShims/Shims/*.c CShims/Exports/exports.c; do
    obj="$out/$(basename "$src" .c).o"
    objects+=("$obj")
    clang --target=aarch64-linux-gnu --sysroot="$sysroot" -isystem "$sysroot/include" -idirafter "$out/include" \
        -I CShims/Shims/include -I CShims/Exports/include -D_GNU_SOURCE -fPIC -O2 -Wall -c "$src" -o "$obj"
    is_aarch64 "$obj"
done

# The toolchain ships the Embedded standard library for aarch64-none-none-elf,
# not for aarch64-unknown-linux-gnu: Swift compiles for the former, and its
# Clang importer reads the shim's header as aarch64 Linux (-clang-target).
# The core has no OS-specific code; it reaches the system through the shim.
swiftc -target aarch64-none-none-elf -clang-target aarch64-unknown-linux-gnu \
    -enable-experimental-feature Embedded -wmo -parse-as-library -O -module-name SwiftMallocCore \
    -I CShims/Shims/include -Xcc -D_GNU_SOURCE -Xcc -fPIC \
    -Xcc --sysroot="$sysroot" -Xcc -isystem -Xcc "$sysroot/include" \
    -emit-object $(find Sources/SwiftMallocCore -name '*.swift' | sort) -o "$out/SwiftMallocCore.o"
is_aarch64 "$out/SwiftMallocCore.o"

# libc and liburcu stay undefined (there are no aarch64 libraries to link).
ld.lld -m aarch64linux -shared --gc-sections -o "$out/libSwiftMalloc.so" \
    "$out/SwiftMallocCore.o" "${objects[@]}" \
    --version-script=CShims/Exports/exports.map
is_aarch64 "$out/libSwiftMalloc.so"
echo "exported: $(nm -D --defined-only "$out/libSwiftMalloc.so" | awk '{ print $3 }' | tr '\n' ' ')"
echo "cross-compile-aarch64.sh: aarch64 objects in $out"
