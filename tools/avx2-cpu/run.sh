#!/usr/bin/env bash
# Runs a command as on an AVX2 + FMA CPU without AVX-512 (see avx2_cpu.c): builds the preload
# library into target/ on first use. Usage: tools/avx2-cpu/run.sh COMMAND [ARGS...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lib="$here/../../target/avx2-cpu/avx2_cpu.so"
if [ ! -f "$lib" ] || [ "$here/avx2_cpu.c" -nt "$lib" ]; then
    mkdir -p "$(dirname "$lib")"
    cc -O2 -shared -fPIC -o "$lib" "$here/avx2_cpu.c"
fi
# glibc chooses its string functions before the library loads: keep those off AVX-512 too.
export GLIBC_TUNABLES="glibc.cpu.hwcaps=-AVX512F,-AVX512BW,-AVX512VL,-AVX512DQ,-AVX512CD,-AVX512ER,-AVX512PF${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" exec "$@"
