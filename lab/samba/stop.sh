#!/usr/bin/env bash
# Stop the lab's Samba DC by signalling the process group saved by start.sh (never by name).
# Usage: stop.sh [--purge]  (--purge also removes the state folder; without it the provisioned domain
# stays, and start.sh --keep starts that same domain again)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_ROOT=${WINKUBE_LAB_STATE:-$REPO/lab/.state}
STATE=$STATE_ROOT/samba
purge=no lock=yes
for arg in "$@"; do
  case $arg in
    --purge) purge=yes ;;
    --no-lock) lock=no ;;  # used by start.sh, which already holds the lock
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
  esac
done

if [ "$lock" = yes ] && [ -d "$STATE_ROOT" ]; then
  exec 9>"$STATE_ROOT/samba.lock"
  flock -w 300 9 || { echo "ERROR: timed out waiting for $STATE_ROOT/samba.lock" >&2; exit 1; }
fi

if [ -f "$STATE/pgid" ]; then
  pgid=$(cat "$STATE/pgid")
  case $pgid in ''|*[!0-9]*) echo "ERROR: bad process group id in $STATE/pgid" >&2; exit 1 ;; esac
  if kill -0 -- "-$pgid" 2>/dev/null; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 -- "-$pgid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 -- "-$pgid" 2>/dev/null; then
      kill -KILL -- "-$pgid" 2>/dev/null || true
      sleep 0.2
    fi
    echo "stopped samba (process group $pgid)" >&2
  fi
  rm -f "$STATE/pgid" "$STATE/env"
fi
if [ "$purge" = yes ]; then
  rm -rf "$STATE"
fi
