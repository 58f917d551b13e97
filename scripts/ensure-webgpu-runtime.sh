#!/usr/bin/env bash
# Makes sure WebGPU can run here. On Linux without a usable GPU driver, Dawn needs a Vulkan driver
# it accepts: SwiftShader, which Debian's `chromium` package ships (Mesa lavapipe is rejected).
# Chromium is also the headless browser for the webview tests. Installs it with apt when missing.
set -euo pipefail
[ "$(uname -s)" = Linux ] || exit 0
icd=/usr/lib/chromium/vk_swiftshader_icd.json
if [ -f "$icd" ] && command -v chromium >/dev/null && ldconfig -p | grep libvulkan.so.1 >/dev/null; then exit 0; fi
. "$(dirname "$0")/aptInstall.sh"
apt_install ensure-webgpu-runtime "SwiftShader WebGPU and the headless browser" chromium libvulkan1
