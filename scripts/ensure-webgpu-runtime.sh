#!/usr/bin/env bash
# Makes sure WebGPU can run here. On Linux without a usable GPU driver, Dawn needs a Vulkan driver
# it accepts: SwiftShader, which Debian's `chromium` package ships (Mesa lavapipe is rejected).
# Chromium is also the headless browser for the webview tests. Installs it with apt when missing.
set -euo pipefail
[ "$(uname -s)" = Linux ] || exit 0
icd=/usr/lib/chromium/vk_swiftshader_icd.json
if [ -f "$icd" ] && command -v chromium >/dev/null && ldconfig -p | grep libvulkan.so.1 >/dev/null; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "ensure-webgpu-runtime: need chromium (for SwiftShader) and libvulkan1; install them with your package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "ensure-webgpu-runtime: installing chromium and libvulkan1 with apt (SwiftShader WebGPU and the headless browser)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium libvulkan1 >/dev/null
