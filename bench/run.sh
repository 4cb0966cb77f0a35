#!/usr/bin/env bash
# Scale benchmark of winkube.gmsa against the local lab: bash bench/run.sh [N ...] [--options]
# (default N=10; see bench/README.md). Results: bench/results/bench-<time>.json (git-ignored).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${WINKUBE_GMSA_CACHE:-/var/cache/winkube-gmsa}
PY=${BENCH_PYTHON:-$CACHE/venv-newest/bin/python}
if ! "$PY" -c 'import ansible, ldap3, kubernetes, ansible_collections.kubernetes.core' >/dev/null 2>&1; then
  echo "ERROR: $PY lacks ansible-core, ldap3, kubernetes or the kubernetes.core collection;" \
       "run 'bash scripts/run-tests' once to build the venvs, or set BENCH_PYTHON" >&2
  exit 2
fi
# python-ldap for the community.general side (ldap_entry/ldap_attrs), kept out of the test venvs (it builds
# against the libldap and libsasl2 headers); installed here once, into the cache, built for the bench's Python.
export BENCH_LDAP_PYTHONPATH=${BENCH_LDAP_PYTHONPATH:-$CACHE/bench-python-ldap}
if ! PYTHONPATH=$BENCH_LDAP_PYTHONPATH "$PY" -c 'import ldap' >/dev/null 2>&1; then
  echo "bench: installing python-ldap 3.4.8 into $BENCH_LDAP_PYTHONPATH for the ldap_cg side" >&2
  for pkg in libldap-dev libsasl2-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
  done
  "$PY" -m pip install -q --target "$BENCH_LDAP_PYTHONPATH" python-ldap==3.4.8
fi
exec "$PY" "$BENCH/bench.py" --python "$PY" "$@"
