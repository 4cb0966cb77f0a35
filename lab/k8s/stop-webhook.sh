#!/usr/bin/env bash
# Stop only the webhook started by start-webhook.sh (by its saved process group id).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
f=$STATE/pids/gmsa-webhook.pgid
[ -f "$f" ] || exit 0
pgid=$(cat "$f")
case $pgid in '' | *[!0-9]*) rm -f "$f"; exit 0 ;; esac
if kill -TERM -- "-$pgid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
fi
rm -f "$f" "$STATE/webhook.env"
log "webhook stopped"
