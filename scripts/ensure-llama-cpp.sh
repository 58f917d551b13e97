#!/usr/bin/env bash
# Installs the peer, llama.cpp (npm node-llama-cpp, prebuilt binaries from the npm registry), into .llama-cpp/ beside
# the project's own node_modules (never a dependency: installing it there with --omit=optional would remove
# esbuild's platform binary). The tests that compare against llama.cpp (quant-llama-cpp, bench logits) use it.
# Linux x64 only (the binary package named here); elsewhere, or when the install fails, those tests skip and say so.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || { echo "ensure-llama-cpp: not Linux x64; the llama.cpp comparisons will skip" >&2; exit 0; }
[ -f .llama-cpp/node_modules/node-llama-cpp/package.json ] && [ -d .llama-cpp/node_modules/@node-llama-cpp/linux-x64 ] && exit 0
echo "ensure-llama-cpp: installing node-llama-cpp 3.21.1 into .llama-cpp/ (the llama.cpp peer of the comparison tests)" >&2
mkdir -p .llama-cpp
if ! npm i --prefix .llama-cpp --no-save --no-package-lock --no-audit --no-fund --ignore-scripts -E node-llama-cpp@3.21.1 @node-llama-cpp/linux-x64@3.21.1 --omit=optional >/dev/null 2>.llama-cpp/install.log; then
  echo "ensure-llama-cpp: install failed (see .llama-cpp/install.log); the llama.cpp comparisons will skip" >&2
fi
exit 0
