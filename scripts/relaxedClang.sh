#!/usr/bin/env bash
# The newest clang whose wasm_simd128.h has relaxed SIMD's 8-bit dot product (clang 16 or newer), for the relaxed
# build of the CPU kernels. Sourced (build-cpu-kernels.sh, ensure-wasm-toolchain.sh): defines relaxed_clang, which
# prints its name or fails. Run: prints it and exits 0, or exits 1 (scripts/build.mjs asks before rebuilding).
relaxed_clang() {
  local probe='#include <wasm_simd128.h>
v128_t f(v128_t a, v128_t b) { return wasm_i16x8_relaxed_dot_i8x16_i7x16(a, b); }'
  local c
  for c in clang-19 clang-18 clang-17 clang-16 clang; do
    if command -v "$c" >/dev/null && echo "$probe" | "$c" --target=wasm32 -msimd128 -mrelaxed-simd -x c -c -o /dev/null - 2>/dev/null; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
if [ "${BASH_SOURCE[0]}" = "$0" ]; then relaxed_clang; fi
