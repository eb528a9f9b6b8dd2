# Shared by scripts/run, scripts/test and the test fixtures: package
# installation and the build. Sourced, not executed.

PC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

pc_log() { printf '%s\n' "$*" >&2; }
pc_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

pc_sudo() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages every command needs; installed only when missing.
PC_PACKAGES=(build-essential cmake pkg-config libmicrohttpd-dev libpq-dev libjansson-dev
             libcurl4-openssl-dev libsodium-dev libmbedtls-dev check postgresql-15
             postgresql-client-15 util-linux procps openssl)
PC_PACKAGES+=(wrk) # bench/tokens: HTTP load with keep-alive
PC_PACKAGES+=(python3-yaml) # scripts/check-openapi (a ctest)

pc_ensure_packages() {
  local missing=() p
  for p in "${PC_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  pc_log "installing Debian packages: ${missing[*]}"
  pc_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  pc_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
}

# pc_build DIR TYPE [cmake options...]: configure once, build every time.
pc_build() {
  local dir=$1 type=$2; shift 2
  cmake -S "$PC_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)" -- --no-print-directory >&2
}
