#!/usr/bin/env bash
# Shared helpers for scripts/: interpreter discovery, cached virtual environments, progress output.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WINKUBE_GMSA_CACHE=${WINKUBE_GMSA_CACHE:-/var/cache/winkube-gmsa}
mkdir -p "$WINKUBE_GMSA_CACHE"

# Supported ansible-core range; meta/runtime.yml and README state the same.
NEWEST_CORE=${NEWEST_CORE:-2.21.5}
OLDEST_CORE=${OLDEST_CORE:-2.17.14}

step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# find_python MIN MAX: print the path of a Python whose minor version is within 3.MIN..3.MAX,
# preferring the newest. Looks on PATH and under pyenv.
find_python() {
  local min=$1 max=$2 minor candidate
  for ((minor = max; minor >= min; minor--)); do
    for candidate in "python3.$minor" \
      "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3."$minor".*/bin/python3 \
      /usr/bin/python3."$minor" /usr/local/bin/python3."$minor"; do
      if command -v "$candidate" >/dev/null 2>&1 && \
        "$candidate" -c "import sys, venv; sys.exit(sys.version_info[:2] != (3, $minor))" 2>/dev/null; then
        command -v "$candidate"
        return 0
      fi
    done
  done
  return 1
}

# ensure_venv NAME PYTHON CORE [EXTRA_REQUIREMENTS...]: a cached venv with ansible-core==CORE plus the
# collection's and the tests' requirements; rebuilt only when a requirement file changes.
ensure_venv() {
  local name=$1 python=$2 core=$3 venv stamp req
  shift 3
  local -a reqs=("$REPO/requirements.txt" "$REPO/tests/requirements.txt" "$@") pip_args=()
  for req in "${reqs[@]}"; do pip_args+=(-r "$req"); done
  stamp=$(cat "${reqs[@]}" | sha256sum | cut -c1-16)-$core-$("$python" -V 2>&1 | tr -d ' ')
  # One folder per requirement set, so a checkout with other requirements never rebuilds a venv that
  # another checkout's run is using; venv-NAME points at the one made last (the lab scripts use it).
  venv="$WINKUBE_GMSA_CACHE/venv-$name-${stamp%%-*}"
  # An older layout kept the venv itself at venv-NAME.
  if [ -d "$WINKUBE_GMSA_CACHE/venv-$name" ] && [ ! -L "$WINKUBE_GMSA_CACHE/venv-$name" ]; then
    rm -rf "$WINKUBE_GMSA_CACHE/venv-$name"
  fi
  if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp" ]; then
    ln -sfn "$venv" "$WINKUBE_GMSA_CACHE/venv-$name"
    echo "$venv"; return 0
  fi
  step "creating $venv (ansible-core $core, $("$python" -V 2>&1))" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "ansible-core==$core" \
    "${pip_args[@]}" >&2
  echo "$stamp" >"$venv/.stamp"
  ln -sfn "$venv" "$WINKUBE_GMSA_CACHE/venv-$name"
  echo "$venv"
}

newest_venv() {
  local py
  py=$(find_python 12 13) || die "ansible-core $NEWEST_CORE needs Python 3.12 or 3.13 and none was found on PATH or under pyenv. Install one (for example 'pyenv install 3.13') and run again."
  ensure_venv newest "$py" "$NEWEST_CORE" "$REPO/tests/requirements-tools.txt"
}

oldest_venv() {
  local py
  py=$(find_python 10 12) || die "ansible-core $OLDEST_CORE needs Python 3.10 to 3.12 and none was found on PATH or under pyenv."
  ensure_venv oldest "$py" "$OLDEST_CORE" "$REPO/tests/requirements-oldest-tools.txt"
}
