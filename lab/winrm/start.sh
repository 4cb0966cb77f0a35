#!/usr/bin/env bash
# Start the local WS-Management test endpoint (lab/winrm/server.py) on 127.0.0.1.
#
# State (TLS files, password, journal log, pgid, lab.json) lives in
#   ${WINKUBE_LAB_STATE:-<repo>/lab/.state}/winrm
# A running endpoint from this state folder is reused. Prints the path of lab.json (ports per fake host,
# CA file, user name, password file, control URL and token) on stdout.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_ROOT=${WINKUBE_LAB_STATE:-$REPO/lab/.state}
STATE=$STATE_ROOT/winrm
HOSTS=${WINRM_LAB_HOSTS:-WIN-NODE1,WIN-NODE2}
WAIT=${WINRM_LAB_START_TIMEOUT:-30}

log() { printf '==> [winrm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$STATE"
chmod 700 "$STATE"
exec 9>"$STATE_ROOT/winrm.lock"
flock -w 120 9 || die "timed out waiting for $STATE_ROOT/winrm.lock"

running() { [ -f "$STATE/pgid" ] && [ -f "$STATE/lab.json" ] && kill -0 -- "-$(cat "$STATE/pgid")" 2>/dev/null; }
if running; then
  log "reusing the running endpoint (process group $(cat "$STATE/pgid"))"
  echo "$STATE/lab.json"
  exit 0
fi
if [ -f "$STATE/pgid" ]; then
  bash "$REPO/lab/winrm/stop.sh" --no-lock
fi

pick_python() {
  local candidate
  for candidate in "${WINKUBE_LAB_PYTHON:-}" "${WINKUBE_GMSA_CACHE:-/var/cache/winkube-gmsa}/venv-newest/bin/python" python3; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import cryptography, spnego' >/dev/null 2>&1; then echo "$candidate"; return 0; fi
  done
  return 1
}
PYTHON=$(pick_python) || die "no Python with the packages cryptography and pyspnego (set WINKUBE_LAB_PYTHON)"

rm -f "$STATE/lab.json"
setsid "$PYTHON" "$REPO/lab/winrm/server.py" --state-dir "$STATE" --hosts "$HOSTS" \
  >>"$STATE/stdout.log" 2>&1 < /dev/null 9>&- &
pid=$!
echo "$pid" > "$STATE/pgid"   # setsid makes the server the leader of its own process group
for _ in $(seq 1 $((WAIT * 10))); do
  [ -f "$STATE/lab.json" ] && break
  kill -0 "$pid" 2>/dev/null || die "the endpoint exited at start; see $STATE/stdout.log and $STATE/server.log"
  sleep 0.1
done
[ -f "$STATE/lab.json" ] || die "the endpoint did not come up within $WAIT s; see $STATE/server.log"
log "endpoint running (process group $pid)"
echo "$STATE/lab.json"
