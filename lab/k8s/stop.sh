#!/usr/bin/env bash
# Stop the local Kubernetes lab (and the webhook) started by start.sh / start-webhook.sh: signal each
# saved process group id (never by name), wait for it to end, then remove the state folder
# (KEEP_STATE=1 keeps it, e.g. to read the logs).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -d "$STATE/pids" ] || exit 0
# Reverse start order: clients first, etcd last.
order="gmsa-webhook kwok kube-scheduler kube-controller-manager kube-apiserver etcd"
for name in $order; do
    f=$STATE/pids/$name.pgid
    [ -f "$f" ] || continue
    pgid=$(cat "$f")
    case $pgid in '' | *[!0-9]*) rm -f "$f"; continue ;; esac
    if kill -TERM -- "-$pgid" 2>/dev/null; then
        for _ in $(seq 1 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pgid" 2>/dev/null && log "$name (process group $pgid) killed after 5 s"
    fi
    rm -f "$f"
done
if [ "${KEEP_STATE:-0}" != 1 ]; then
    rm -rf "$STATE"
fi
log "k8s lab stopped"
