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
# python-ldap for the community.general side (ldap_cg) comes from bench/install-python-ldap.sh, run once outside
# scripts/isolated (no network inside); bench.py says so when that side is asked for and it is missing.
export BENCH_LDAP_PYTHONPATH=${BENCH_LDAP_PYTHONPATH:-$CACHE/bench-python-ldap}
exec "$PY" "$BENCH/bench.py" --python "$PY" "$@"
