#!/usr/bin/env bash
# Makes sure clang and wasm-ld (lld) can build the CPU kernels for wasm32 (scripts/build-cpu-kernels.sh), and that
# one clang can build their relaxed-SIMD variant (clang 16 or newer: Debian 12 ships clang-19 beside its default 14).
# Installs Debian's packages with apt when missing. Exits non-zero when no wasm32 toolchain can be had at all; the
# build then still succeeds and the `cpu` backend runs the JS reference, saying why. A missing relaxed-capable clang
# is only said: the kernels are then built without relaxed SIMD (same results, slower).
set -euo pipefail
have_clang() { for c in clang clang-14 clang-15 clang-16 clang-17 clang-18 clang-19; do command -v "$c" >/dev/null && return 0; done; return 1; }
have_ld() { for l in wasm-ld wasm-ld-14 wasm-ld-15 wasm-ld-16 wasm-ld-17 wasm-ld-18 wasm-ld-19; do command -v "$l" >/dev/null && return 0; done; return 1; }
. "$(dirname "$0")/relaxedClang.sh"
have_relaxed() { relaxed_clang >/dev/null; }
if have_clang && have_ld && have_relaxed; then exit 0; fi
. "$(dirname "$0")/aptInstall.sh"
if ! have_relaxed; then
  for v in 19 18 17 16; do
    if command -v apt-cache >/dev/null && apt-cache show "clang-$v" >/dev/null 2>&1; then
      (apt_install ensure-wasm-toolchain "the relaxed-SIMD CPU kernels" "clang-$v" "lld-$v") && break
    fi
  done
  have_relaxed || echo "ensure-wasm-toolchain: no clang 16+ to be had: the CPU kernels are built without relaxed SIMD" >&2
fi
if ! (have_clang && have_ld); then
  apt_install ensure-wasm-toolchain "the WebAssembly CPU kernels" clang lld
fi
