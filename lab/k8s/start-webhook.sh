#!/usr/bin/env bash
# Run upstream's windows-gmsa admission webhook (v0.13.0, built by build-webhook.sh) as a local HTTPS process
# that kube-apiserver really calls (clientConfig.url).
#   start-webhook.sh [TLS_CRT TLS_KEY]
# Without arguments a serving certificate (SAN 127.0.0.1, localhost) is issued by the lab CA.
# The webhook gets in-cluster configuration as in a pod: inside `unshare -m`, a tmpfs over /run
# holds /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}, the token coming
# from the TokenRequest API for service account gmsa-webhook-lab/gmsa-webhook, bound to a
# ClusterRole with get on gmsacredentialspecs and create on localsubjectaccessreviews;
# KUBERNETES_SERVICE_HOST/PORT point at the loopback API server.
# Writes $STATE/webhook.env (see README.md) and prints its path. stop-webhook.sh / stop.sh stop it.
# GMSA_WEBHOOK_BIN overrides the binary; GMSA_WEBHOOK_PORT picks the port (default: a free one);
# GMSA_WEBHOOK_ARGS adds arguments (e.g. --cert-reload=true); QPS, BURST, RANDOM_HOSTNAME, LOG_LEVEL (default
# info) pass through to the webhook. To run it from the Deployment and Secret the collection's webhook module
# created, use kubelet-imitation.sh instead (see README.md).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ "$(id -u)" = 0 ] || { echo "start-webhook.sh needs root (unshare -m, mount)" >&2; exit 1; }
[ -f "$STATE/env" ] || { echo "the lab is not running: run lab/k8s/start.sh first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$STATE/env"
BIN=${GMSA_WEBHOOK_BIN:-$GMSA_WEBHOOK_BIN_DIR/gmsa-webhook}
[ -x "$BIN" ] || { echo "missing webhook binary $BIN: run lab/k8s/build.sh (or lab/k8s/build-webhook.sh)" >&2; exit 1; }
if [ -f "$STATE/pids/gmsa-webhook.pgid" ] && kill -0 -- "-$(cat "$STATE/pids/gmsa-webhook.pgid")" 2>/dev/null; then
    echo "the webhook already runs; stop it with lab/k8s/stop-webhook.sh" >&2
    exit 1
fi
WH=$STATE/webhook
mkdir -p "$WH/serviceaccount"
NS=gmsa-webhook-lab
SA=gmsa-webhook

api() { curl -sS --fail-with-body --cacert "$K8S_CA_CERT" --cert "$K8S_ADMIN_CERT" --key "$K8S_ADMIN_KEY" "$@"; }
apply() { # path json : server-side apply, idempotent
    api -o /dev/null -X PATCH -H 'Content-Type: application/apply-patch+yaml' \
        "$K8S_API_URL$1?fieldManager=winkube-lab&force=true" -d "$2"
}

# --- TLS ------------------------------------------------------------------------------------------
if [ $# -ge 2 ]; then
    TLS_CRT=$(readlink -f "$1"); TLS_KEY=$(readlink -f "$2")
    CA_BUNDLE=${GMSA_WEBHOOK_CA_BUNDLE:-$TLS_CRT}
else
    TLS_CRT=$WH/tls.crt; TLS_KEY=$WH/tls.key; CA_BUNDLE=$K8S_CA_CERT
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=gmsa-webhook" \
        -keyout "$TLS_KEY" -out "$WH/tls.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:$SA.$NS.svc,DNS:$SA.$NS.svc.cluster.local" >"$WH/tls.ext"
    openssl x509 -req -in "$WH/tls.csr" -CA "$K8S_CA_CERT" -CAkey "$K8S_CA_KEY" -CAcreateserial \
        -days 365 -extfile "$WH/tls.ext" -out "$TLS_CRT" 2>/dev/null
    rm -f "$WH/tls.csr" "$WH/tls.ext"
    chmod 600 "$TLS_KEY"
fi

# --- identity: namespace, service account, RBAC, token ------------------------------------------
apply "/api/v1/namespaces/$NS" "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$NS\"}}"
apply "/api/v1/namespaces/$NS/serviceaccounts/$SA" \
    "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"$SA\",\"namespace\":\"$NS\"}}"
apply "/apis/rbac.authorization.k8s.io/v1/clusterroles/winkube-lab-gmsa-webhook" '{
  "apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"winkube-lab-gmsa-webhook"},
  "rules":[{"apiGroups":["windows.k8s.io"],"resources":["gmsacredentialspecs"],"verbs":["get"]},
           {"apiGroups":["authorization.k8s.io"],"resources":["localsubjectaccessreviews"],"verbs":["create"]}]}'
apply "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/winkube-lab-gmsa-webhook" "{
  \"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"winkube-lab-gmsa-webhook\"},
  \"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"winkube-lab-gmsa-webhook\"},
  \"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"$SA\",\"namespace\":\"$NS\"}]}"
api -X POST -H 'Content-Type: application/json' \
    "$K8S_API_URL/api/v1/namespaces/$NS/serviceaccounts/$SA/token" \
    -d '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":172800}}' \
    | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["status"]["token"])' \
    >"$WH/serviceaccount/token"
cp "$K8S_CA_CERT" "$WH/serviceaccount/ca.crt"
printf '%s' "$NS" >"$WH/serviceaccount/namespace"
chmod 600 "$WH/serviceaccount/token"

# --- process --------------------------------------------------------------------------------------
# A free port below 49152, where Samba's RPC server takes its dynamic ports (as lab/k8s/start.sh does).
PORT=${GMSA_WEBHOOK_PORT:-$(python3 -c '
import random, socket
while True:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randint(20000, 32000)))
    except OSError:
        continue
    print(s.getsockname()[1])
    break')}
# shellcheck disable=SC2016,SC2086
setsid env TLS_CRT="$TLS_CRT" TLS_KEY="$TLS_KEY" HTTPS_PORT="$PORT" \
    LOG_LEVEL="${LOG_LEVEL:-info}" KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$K8S_API_PORT" \
    SA_SRC="$WH/serviceaccount" BIN="$BIN" \
    unshare -m --propagation private sh -c '
        set -e
        mount -t tmpfs -o mode=755 tmpfs /run
        mkdir -p /run/secrets/kubernetes.io/serviceaccount
        cp "$SA_SRC/token" "$SA_SRC/ca.crt" "$SA_SRC/namespace" /run/secrets/kubernetes.io/serviceaccount/
        exec "$BIN" "$@"
    ' sh ${GMSA_WEBHOOK_ARGS:-} </dev/null >"$STATE/logs/gmsa-webhook.log" 2>&1 &
pgid=$!
echo "$pgid" >"$STATE/pids/gmsa-webhook.pgid"
URL=https://127.0.0.1:$PORT
wait_group "$pgid" || { echo "the webhook exited:" >&2; tail -20 "$STATE/logs/gmsa-webhook.log" >&2; exit 1; }
for _ in $(seq 1 100); do
    kill -0 -- "-$pgid" 2>/dev/null || {
        echo "the webhook exited:" >&2; tail -20 "$STATE/logs/gmsa-webhook.log" >&2; exit 1; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA_BUNDLE" "$URL/health" || true)" = 204 ] && break
    sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA_BUNDLE" "$URL/health" || true)" = 204 ] \
    || { echo "the webhook did not answer $URL/health" >&2; tail -20 "$STATE/logs/gmsa-webhook.log" >&2; exit 1; }
cat >"$STATE/webhook.env" <<ENV
GMSA_WEBHOOK_URL=$URL
GMSA_WEBHOOK_MUTATE_URL=$URL/mutate
GMSA_WEBHOOK_VALIDATE_URL=$URL/validate
GMSA_WEBHOOK_PORT=$PORT
GMSA_WEBHOOK_CA_BUNDLE=$CA_BUNDLE
GMSA_WEBHOOK_TLS_CRT=$TLS_CRT
GMSA_WEBHOOK_TLS_KEY=$TLS_KEY
GMSA_WEBHOOK_NAMESPACE=$NS
GMSA_WEBHOOK_SERVICE_ACCOUNT=$SA
GMSA_WEBHOOK_BINARY=$BIN
GMSA_WEBHOOK_LOG=$STATE/logs/gmsa-webhook.log
ENV
log "webhook $BIN at $URL"
echo "$STATE/webhook.env"
