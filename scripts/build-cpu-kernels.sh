#!/usr/bin/env bash
# Compiles the CPU kernels (kernels/cpu/*.c) to WebAssembly SIMD128 with clang + wasm-ld, twice: on a shared memory
# (threads) and on a private one (hosts that cannot share memory); then both again with relaxed SIMD (8-bit dot
# products) where a clang has its intrinsics (16 or newer), else those two files are empty and the runtime uses the
# first two. Output: build/cpu-kernels/{shared,single}{,-relaxed}.wasm, which scripts/build.mjs embeds in the
# bundles. Exits 3 (writing nothing) when no wasm32-capable clang/wasm-ld exists.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/cpu-kernels
clang=""
for c in clang clang-14 clang-15 clang-16 clang-17 clang-18 clang-19; do
  if command -v "$c" >/dev/null; then clang=$c; break; fi
done
[ -n "$clang" ] || { echo "build-cpu-kernels: no clang" >&2; exit 3; }
# clang finds wasm-ld by that name; Debian names it wasm-ld-NN, so hand it the versioned one where needed.
ld=""
for l in wasm-ld wasm-ld-14 wasm-ld-15 wasm-ld-16 wasm-ld-17 wasm-ld-18 wasm-ld-19; do
  if command -v "$l" >/dev/null; then ld=$(command -v "$l"); break; fi
done
[ -n "$ld" ] || { echo "build-cpu-kernels: no wasm-ld (Debian: apt-get install lld)" >&2; exit 3; }
mkdir -p "$out"
flags=(--target=wasm32 -O3 -msimd128 -mbulk-memory -mmutable-globals -nostdlib -ffreestanding -fno-builtin -Wall -Wextra -Werror
  "-fuse-ld=$ld" -Wl,--no-entry -Wl,--import-memory -Wl,--initial-memory=2097152 -Wl,--max-memory=4294967296
  -Wl,--export=__heap_base -Wl,--export=__stack_pointer -Wl,--stack-first -Wl,-z,stack-size=65536)
"$clang" "${flags[@]}" -matomics -Wl,--shared-memory -o "$out/shared.wasm.tmp" kernels/cpu/*.c
"$clang" "${flags[@]}" -o "$out/single.wasm.tmp" kernels/cpu/*.c
. scripts/relaxedClang.sh
relaxed=$(relaxed_clang || true)
if [ -n "$relaxed" ]; then
  # Its own lld where it has one (wasm-ld-19 beside clang-19).
  v=${relaxed#clang}; [ -n "$v" ] && command -v "wasm-ld$v" >/dev/null && flags=("${flags[@]/#-fuse-ld=*/-fuse-ld=$(command -v "wasm-ld$v")}")
  "$relaxed" "${flags[@]}" -mrelaxed-simd -matomics -Wl,--shared-memory -o "$out/shared-relaxed.wasm.tmp" kernels/cpu/*.c
  "$relaxed" "${flags[@]}" -mrelaxed-simd -o "$out/single-relaxed.wasm.tmp" kernels/cpu/*.c
else
  echo "build-cpu-kernels: no clang with relaxed SIMD (16 or newer): the kernels are built without it" >&2
  : > "$out/shared-relaxed.wasm.tmp"
  : > "$out/single-relaxed.wasm.tmp"
fi
for n in shared single shared-relaxed single-relaxed; do mv "$out/$n.wasm.tmp" "$out/$n.wasm"; done
