#!/usr/bin/env bash
# python-ldap for the bench's community.general side (ldap_cg), kept out of the test venvs: it builds against the
# libldap and libsasl2 headers. Run it once, outside scripts/isolated (it needs Debian's archive and PyPI):
#   bash bench/install-python-ldap.sh     -> $WINKUBE_GMSA_CACHE/bench-python-ldap, which run.sh passes on
set -euo pipefail
CACHE=${WINKUBE_GMSA_CACHE:-/var/cache/winkube-gmsa}
PY=${BENCH_PYTHON:-$CACHE/venv-newest/bin/python}
TARGET=${BENCH_LDAP_PYTHONPATH:-$CACHE/bench-python-ldap}
if PYTHONPATH=$TARGET "$PY" -c 'import ldap' >/dev/null 2>&1; then
  echo "python-ldap is already in $TARGET"
  exit 0
fi
missing=()
for pkg in libldap-dev libsasl2-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian's archive"
  # a fresh machine has no package lists yet
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  }
fi
echo "installing python-ldap 3.4.8 into $TARGET for $PY"
"$PY" -m pip install -q --target "$TARGET" python-ldap==3.4.8
