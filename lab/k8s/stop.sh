#!/usr/bin/env bash
# Stop the local Kubernetes lab (and the webhook) started by start.sh / start-webhook.sh: signal each
# saved process group id (never by name), wait for it to end, then remove the state folder
# (KEEP_STATE=1 keeps it, e.g. to read the logs).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -d "$STATE/pids" ] || exit 0

stop_groups() { # names... : SIGTERM every group at once, wait up to 10 s, then SIGKILL
    local name f pgid pgids=() names=()
    for name in "$@"; do
        f=$STATE/pids/$name.pgid
        [ -f "$f" ] || continue
        pgid=$(cat "$f")
        rm -f "$f"
        case $pgid in '' | *[!0-9]*) continue ;; esac
        kill -TERM -- "-$pgid" 2>/dev/null && { pgids+=("$pgid"); names+=("$name"); }
    done
    local i
    for _ in $(seq 1 100); do
        local left=0
        for pgid in "${pgids[@]}"; do kill -0 -- "-$pgid" 2>/dev/null && left=1; done
        [ "$left" = 0 ] && return 0
        sleep 0.1
    done
    for i in "${!pgids[@]}"; do
        kill -KILL -- "-${pgids[$i]}" 2>/dev/null && log "${names[$i]} (process group ${pgids[$i]}) killed after 10 s"
    done
    return 0
}
# Clients first, etcd last.
# shellcheck disable=SC2046
stop_groups $(cd "$STATE/pids" && for f in kubelet-imitation-*.pgid; do [ -f "$f" ] && echo "${f%.pgid}"; done) gmsa-webhook kwok kube-scheduler kube-controller-manager kube-apiserver
stop_groups etcd
if [ "${KEEP_STATE:-0}" != 1 ]; then
    rm -rf "$STATE"
fi
log "k8s lab stopped"
