#!/usr/bin/env bash
# Makes sure clang and wasm-ld (lld) can build the CPU kernels for wasm32 (scripts/build-cpu-kernels.sh).
# Installs Debian's clang and lld with apt when missing. Exits non-zero when they cannot be had; the build then
# still succeeds and the `cpu` backend runs the JS reference, saying why.
set -euo pipefail
have_clang() { for c in clang clang-14 clang-15 clang-16 clang-17 clang-18 clang-19; do command -v "$c" >/dev/null && return 0; done; return 1; }
have_ld() { for l in wasm-ld wasm-ld-14 wasm-ld-15 wasm-ld-16 wasm-ld-17 wasm-ld-18 wasm-ld-19; do command -v "$l" >/dev/null && return 0; done; return 1; }
if have_clang && have_ld; then exit 0; fi
. "$(dirname "$0")/aptInstall.sh"
apt_install ensure-wasm-toolchain "the WebAssembly CPU kernels" clang lld
