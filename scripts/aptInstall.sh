# Sourced by the ensure-* scripts: installs Debian packages with apt (through sudo when not root), or exits 1
# saying what is missing where there is no apt-get.
# usage: apt_install <script name> <what they are for> <package>...
apt_install() {
  local who=$1 why=$2
  shift 2
  if ! command -v apt-get >/dev/null; then
    echo "$who: need $* ($why); install them with your package manager" >&2
    exit 1
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "$who: installing $* with apt ($why)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
