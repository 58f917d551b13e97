#!/usr/bin/env bash
# Makes sure code-server (VS Code in the browser, with a real Node extension host) is installed for the
# end-to-end tests, and prints the path of its executable as the last line of stdout (logs go to stderr).
#
# Why code-server: @vscode/test-electron downloads VS Code from the internet; code-server installs from npm.
# 4.100.3 is the last release that runs on Node 20 (newer ones need Node 22+).
# It lives in a cache folder OUTSIDE the repository, shared by every checkout:
#   ${STAR_CODE_SERVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/star-attention/code-server-4.100.3}
# A marker file is written only after a complete install that answers --version, so a second run is a
# few stat calls, and an interrupted install is redone from scratch.
#
# Exit status: 0 installed (path printed); 2 this machine cannot run it (reason printed; tests skip);
# anything else: the install failed (tests fail).
set -euo pipefail

version=4.100.3
ripgrep_pkg_version=1.15.11   # @vscode/ripgrep pinned by code-server 4.100.3's lib/vscode
ripgrep_asset_version=v13.0.0-10
dir="${STAR_CODE_SERVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/star-attention/code-server-$version}"
bin="$dir/node_modules/.bin/code-server"
marker="$dir/.installed"

log() { echo "ensure-code-server: $*" >&2; }
unsupported() { log "cannot run code-server here: $*"; exit 2; }

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo none)"
# Fast path: already installed by this script for this Node major.
if [ -f "$marker" ] && [ "$(cat "$marker")" = "node$node_major" ] && [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

[ "$(uname -s)" = Linux ] || unsupported "not Linux ($(uname -s)); the end-to-end setup is Linux-only"
case "$(uname -m)" in
  x86_64) rg_target=x86_64-unknown-linux-musl ;;
  aarch64) rg_target=aarch64-unknown-linux-musl ;;
  *) unsupported "unsupported CPU $(uname -m)" ;;
esac
[ "$node_major" = 20 ] || unsupported "code-server $version needs Node 20, this is Node $node_major"
command -v npm >/dev/null || unsupported "npm not found"

# apt packages for code-server's native modules (kerberos, node-pty, spdlog, ...) and ripgrep for search.
need=()
for pkg in build-essential python3 pkg-config libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev ripgrep; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || unsupported "missing ${need[*]} and no apt-get to install them"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || unsupported "missing ${need[*]}; not root and no sudo to install them"
    sudo="sudo"
  fi
  log "installing ${need[*]} with apt"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9   # two test runs at once: the second waits, then takes the fast path below
if [ -f "$marker" ] && [ "$(cat "$marker")" = "node$node_major" ] && [ -x "$bin" ]; then echo "$bin"; exit 0; fi

log "installing code-server $version into $dir (a few minutes: native modules are compiled)"
rm -rf "$dir"
mkdir -p "$dir/.tmp"
cd "$dir"
echo '{ "name": "star-attention-code-server", "private": true }' > package.json

# @vscode/ripgrep's postinstall downloads rg from GitHub (unreachable here); it skips the download when the
# asset is already in its cache under os.tmpdir(). Point TMPDIR at a private folder and put Debian's rg there.
rg_cache="$dir/.tmp/vscode-ripgrep-cache-$ripgrep_pkg_version"
mkdir -p "$rg_cache/stage"
cp "$(command -v rg)" "$rg_cache/stage/rg"
tar -czf "$rg_cache/ripgrep-$ripgrep_asset_version-$rg_target.tar.gz" -C "$rg_cache/stage" rg
rm -rf "$rg_cache/stage"

# node-gyp would download Node's headers from nodejs.org (unreachable); use the installed ones when present.
node_prefix="$(dirname "$(dirname "$(command -v node)")")"
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node.h" ]; then export npm_config_nodedir="$node_prefix"; fi

# code-server's postinstall runs `npm install` in lib/vscode and lib/vscode/extensions; settings reach those
# nested installs through the environment. unsafe_perm: its postinstall refuses to run as root without it.
# npm >= 11.19 skips dependency install scripts unless allowed, and an allow list set in any npm config is
# exported to the nested installs, where npm rejects it ("not allowed in project-scoped installs"). So this
# install (and only it) allows all scripts, as npm did before 11.19; older npm ignores the setting. The set is
# fixed: code-server ships lockfiles, whose packages with install scripts are argon2, @parcel/watcher,
# @vscode/deviceid, @vscode/ripgrep, @vscode/spdlog, kerberos, native-watchdog, node-pty and esbuild.
export TMPDIR="$dir/.tmp" npm_config_dangerously_allow_all_scripts=true npm_config_yes=true \
  npm_config_unsafe_perm=true npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
if ! npm install --no-save --omit=dev --loglevel=error "code-server@$version" >"$dir/install.log" 2>&1; then
  tail -40 "$dir/install.log" >&2
  log "npm install failed; full log: $dir/install.log"
  exit 1
fi
# code-server writes a config file and logs under XDG folders on any start; keep them out of $HOME.
XDG_CONFIG_HOME="$dir/.tmp" XDG_DATA_HOME="$dir/.tmp" "$bin" --version >/dev/null || { log "installed, but '$bin --version' fails"; exit 1; }
rm -rf "$dir/.tmp"
echo "node$node_major" > "$marker"
log "installed code-server $version"
echo "$bin"
