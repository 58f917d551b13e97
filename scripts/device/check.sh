#!/usr/bin/env bash
# The GPU check of issue 7 §5, for a session lent a GPU machine by the `device` tool (no internet there, maybe no
# Node). Here first: `node scripts/device/bundle.mjs` (makes .device/, ~35 MiB). Then one call:
#   device run  command: "bash scripts/device/check.sh"  carry: [".device"]  timeout_s: 570
# It unpacks the bundle, finds the GPU through Dawn/Vulkan, and runs, each step under its own time limit so a hang
# costs that step only (about 8 minutes in all on an H200, estimated; nothing here has run on one yet):
#   1. bench kernels at real shapes (Qwen2.5-Coder-1.5B's 1536/8960 rows), f32 and --f16 side by side;
#   2. the GPU test suites (webgpu-ops, webgpu-golden, webgpu-transformer, bench-kernels) against the CPU and golden;
#   3. make-model qwen2.5-coder-0.5b, then bench kernels' model figures (prefill / decode tokens/s) on that file;
#   4. bench star on that file (Star vs global encoding, warm vs cold, edit vs full).
# Results land in $OUT (env.txt, steps.log, kernels.json, tests.log, model.json, star.json, make-model.log).
# STAR_DEVICE_QUICK=1 shrinks every shape: a dry run of the script on SwiftShader, here.
set -uo pipefail
OUT=${OUT:-/tmp/star-device-out}
mkdir -p "$OUT"
root=$(pwd)
work=/tmp/star-device
rm -rf "$work" && mkdir -p "$work"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/steps.log"; }
# step NAME SECONDS OUTFILE -- command...: runs with a time limit, stdout to OUTFILE, stderr appended to steps.log.
step() {
  local name=$1 limit=$2 outfile=$3; shift 4
  log "$name: start (limit ${limit}s)"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$outfile" 2>> "$OUT/steps.log"
  local rc=$?
  log "$name: exit $rc after $((SECONDS - t0))s"
  return $rc
}

tar -xJf "$root/.device/bundle.tar.xz" -C "$work" || { log "cannot unpack .device/bundle.tar.xz (run scripts/device/bundle.mjs here first)"; exit 1; }
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" != 20 ]; then
  xz -dc "$root/.device/node.xz" > "$work/node" && chmod +x "$work/node" && export PATH="$work:$PATH"
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  for f in "$root"/.device/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export XDG_RUNTIME_DIR="$work/xdg" XDG_CACHE_HOME="$work/cache"
mkdir -p "$XDG_RUNTIME_DIR" "$XDG_CACHE_HOME"
cd "$work/app"
{ date; uname -a; node --version; nvidia-smi 2>&1 | head -15; ldconfig -p | grep -i vulkan; } > "$OUT/env.txt" 2>&1

probe() { timeout 90 node dist/cli.mjs bench kernels --backend webgpu --types Q8_0 --gemv 64x256 --matmul 16x64x256 --reps 1 --prefill 4 --decode 1 --json; }
if ! probe > "$OUT/probe.json" 2>> "$OUT/steps.log"; then
  # The driver's Vulkan ICD where the loader does not find it by itself (device README).
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VK_ICD_FILENAMES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  probe > "$OUT/probe.json" 2>> "$OUT/steps.log" || { log "no WebGPU adapter: see steps.log"; exit 1; }
fi
log "adapter: $(node -e "const b=JSON.parse(require('fs').readFileSync('$OUT/probe.json','utf8')).backends[0]; console.log(b.device, JSON.stringify(b.kernels), 'peak', JSON.stringify(b.peak))")"
rm -f "$OUT/probe.json"

if [ "${STAR_DEVICE_QUICK:-}" = 1 ]; then
  gemv=256x256 matmul=64x256x256 types=Q8_0,Q4_K shape=qwen2.5-coder-0.5b prefill=16 decode=2 sizes=256 repo=256 tests_limit=900
else
  gemv=1536x1536,8960x1536,1536x8960 matmul=512x1536x1536,512x8960x1536 types=Q4_K,Q5_0,Q6_K,Q8_0 shape=qwen2.5-coder-0.5b
  prefill=512 decode=32 sizes=1024,4096 repo=4096 tests_limit=200
fi

step kernels 120 "$OUT/kernels.json" -- node dist/cli.mjs bench kernels --backend webgpu --f16 --types "$types" --gemv "$gemv" --matmul "$matmul" --reps 5 --json
step tests "$tests_limit" "$OUT/tests.log" -- node --test --test-concurrency=1 dist/test/
step make-model 150 "$OUT/make-model.log" -- node dist/cli.mjs make-model --shape "$shape" --json
model=$(ls "$XDG_CACHE_HOME"/star-ask/models/*.gguf 2>/dev/null | head -1)
if [ -n "$model" ]; then
  step model 120 "$OUT/model.json" -- node dist/cli.mjs bench kernels --backend webgpu --f16 --model "$model" --types Q4_K --gemv 896x896 --matmul 64x896x896 --prefill "$prefill" --decode "$decode" --reps 3 --json
  step star 150 "$OUT/star.json" -- node dist/cli.mjs bench star --backend webgpu --model "$model" --sizes "$sizes" --repo-tokens "$repo" --json
fi
log "done"
