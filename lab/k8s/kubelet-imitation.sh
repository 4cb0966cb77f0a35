#!/usr/bin/env bash
# Run upstream's windows-gmsa webhook from the Deployment and TLS Secret the collection's webhook module
# created, through the lab's kubelet imitation (kubelet_imitation.py: NOT a kubelet, see its docstring and
# README.md "Running the webhook the way the module deploys it").
#   kubelet-imitation.sh start NAMESPACE DEPLOYMENT   prints the path of its status.json once the webhook is ready
#   kubelet-imitation.sh stop  NAMESPACE DEPLOYMENT
# Needs root (unshare -m; the ClusterIP address on lo only inside a private network namespace).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# = 3 ] || { echo "usage: $0 start|stop NAMESPACE DEPLOYMENT" >&2; exit 2; }
action=$1 ns=$2 name=$3
id=kubelet-imitation-$ns-$name
pidf=$STATE/pids/$id.pgid
dir=$STATE/$id

stop_it() {
    [ -f "$pidf" ] || return 0
    local pgid
    pgid=$(cat "$pidf")
    case $pgid in '' | *[!0-9]*) rm -f "$pidf"; return 0 ;; esac
    if kill -TERM -- "-$pgid" 2>/dev/null; then
        for _ in $(seq 1 100); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    rm -f "$pidf"
    log "kubelet imitation for $ns/$name stopped"
}

case $action in
stop) stop_it; exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop NAMESPACE DEPLOYMENT" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "kubelet-imitation.sh needs root (unshare -m, mount)" >&2; exit 1; }
[ -f "$STATE/env" ] || { echo "the lab is not running: run lab/k8s/start.sh first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$STATE/env"
BIN=${GMSA_WEBHOOK_BIN:-$GMSA_WEBHOOK_BIN_DIR/gmsa-webhook}
[ -x "$BIN" ] || { echo "missing webhook binary $BIN: run lab/k8s/build.sh (or lab/k8s/build-webhook.sh)" >&2; exit 1; }
stop_it
rm -rf "$dir"
mkdir -p "$dir"
setsid python3 "$K8S_DIR/kubelet_imitation.py" --namespace "$ns" --deployment "$name" --dir "$dir" --binary "$BIN" \
    --api-url "$K8S_API_URL" --ca "$K8S_CA_CERT" --cert "$K8S_ADMIN_CERT" --key "$K8S_ADMIN_KEY" \
    --api-port "$K8S_API_PORT" </dev/null >"$STATE/logs/$id.log" 2>&1 &
pgid=$!
echo "$pgid" >"$pidf"
wait_group "$pgid" || { echo "the kubelet imitation exited:" >&2; tail -20 "$STATE/logs/$id.log" >&2; exit 1; }
for _ in $(seq 1 "${WAIT_SECONDS:-60}0"); do
    kill -0 -- "-$pgid" 2>/dev/null || { echo "the kubelet imitation exited:" >&2; tail -20 "$STATE/logs/$id.log" >&2; exit 1; }
    python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["ready"] else 1)' "$dir/status.json" 2>/dev/null \
        && { log "webhook of $ns/$name ready (kubelet imitation, log $dir/webhook.log)"; echo "$dir/status.json"; exit 0; }
    sleep 0.1
done
echo "the webhook of $ns/$name did not become ready; last lines of $STATE/logs/$id.log and $dir/webhook.log:" >&2
tail -10 "$STATE/logs/$id.log" "$dir/webhook.log" >&2 || true
exit 1
