#!/usr/bin/env bash
# Start the local Kubernetes lab: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# kwok (fake Windows and Linux nodes), all on 127.0.0.1, each in its own process group.
# State (certificates, kubeconfig, env file, pids, logs, etcd data): $WINKUBE_LAB_STATE/k8s.
# Needs the binaries from build.sh. Prints the env file path on success.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for b in kube-apiserver kube-controller-manager kube-scheduler etcd kwok; do
    [ -x "$BIN_DIR/$b" ] || { echo "missing $BIN_DIR/$b: run lab/k8s/build.sh first" >&2; exit 1; }
done
if [ -f "$STATE/pids/kube-apiserver.pgid" ] && kill -0 -- "-$(cat "$STATE/pids/kube-apiserver.pgid")" 2>/dev/null; then
    echo "the lab already runs (state $STATE); run lab/k8s/stop.sh first" >&2
    exit 1
fi
start=$SECONDS
rm -rf "$STATE"
mkdir -p "$STATE"/{pki,pids,logs,etcd}
chmod 700 "$STATE" "$STATE/etcd"
PKI=$STATE/pki

# N free TCP ports on 127.0.0.1, below 49152: Samba's RPC server takes its dynamic ports from 49152 up, so a
# Kubernetes lab started first must not hold them.
free_ports() {
    python3 - "$1" <<'PY'
import random, socket, sys
socks = []
while len(socks) < int(sys.argv[1]):
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', random.randint(20000, 32000)))
    except OSError:
        s.close()
        continue
    socks.append(s)
print(' '.join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT <<<"$(free_ports 6)"

# --- certificates --------------------------------------------------------------------------------
log "generating CA, serving and client certificates"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=winkube-gmsa-lab-ca" -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
issue() { # name subject extensions...
    local name=$1 subj=$2; shift 2
    ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subj" \
        -keyout "$PKI/$name.key" -out "$PKI/$name.csr"
    printf '%s\n' "$@" >"$PKI/$name.ext"
    ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 3650 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt"
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}
issue apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue admin "/O=system:masters/CN=lab-admin" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth"
# kwok's kubelet-like server (exec into pods on the fake nodes), verified by the API server with the lab CA.
issue kwok "/CN=kwok" "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost"
# Service-account token signing key pair.
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key"
ossl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
chmod 600 "$PKI"/*.key

API_URL=https://127.0.0.1:$API_PORT
KUBECONFIG_PATH=$STATE/admin.kubeconfig
cat >"$KUBECONFIG_PATH" <<KC
apiVersion: v1
kind: Config
clusters:
- name: winkube-lab
  cluster:
    server: $API_URL
    certificate-authority: $PKI/ca.crt
users:
- name: lab-admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: winkube-lab
  context: {cluster: winkube-lab, user: lab-admin, namespace: default}
current-context: winkube-lab
KC
chmod 600 "$KUBECONFIG_PATH"

# --- processes ----------------------------------------------------------------------------------
launch() { # name command... : own session/process group, pid file = process group id
    local name=$1; shift
    setsid "$@" </dev/null >"$STATE/logs/$name.log" 2>&1 &
    echo $! >"$STATE/pids/$name.pgid"
    wait_group $! || true  # alive() then tells a service that exited from one still calling setsid()
}
alive() { kill -0 -- "-$(cat "$STATE/pids/$1.pgid")" 2>/dev/null; }
fail() {
    echo "$1; last lines of $STATE/logs/$2.log:" >&2
    tail -25 "$STATE/logs/$2.log" >&2 || true
    "$K8S_DIR/stop.sh" >/dev/null 2>&1 || true
    exit 1
}
api() { # curl with the admin certificate
    curl -sS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"
}

log "starting etcd on 127.0.0.1:$ETCD_PORT"
launch etcd "$BIN_DIR/etcd" --name lab --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "lab=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn

log "starting kube-apiserver on $API_URL"
launch kube-apiserver "$BIN_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --authorization-mode RBAC \
    --enable-admission-plugins MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true --profiling=false --endpoint-reconciler-type none \
    --kubelet-preferred-address-types InternalIP --kubelet-certificate-authority "$PKI/ca.crt" \
    --v 1

for _ in $(seq 1 240); do
    alive kube-apiserver || fail "kube-apiserver exited" kube-apiserver
    alive etcd || fail "etcd exited" etcd
    [ "$(api -o /dev/null -w '%{http_code}' "$API_URL/readyz" 2>/dev/null || true)" = 200 ] && break
    sleep 0.25
done
[ "$(api -o /dev/null -w '%{http_code}' "$API_URL/readyz" || true)" = 200 ] || fail "kube-apiserver not ready after 60 s" kube-apiserver
log "kube-apiserver ready after $((SECONDS - start)) s"

log "starting kube-controller-manager, kube-scheduler, kwok"
launch kube-controller-manager "$BIN_DIR/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_PATH" --authentication-kubeconfig "$KUBECONFIG_PATH" \
    --authorization-kubeconfig "$KUBECONFIG_PATH" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
    --controllers '*,-node-lifecycle-controller,-cloud-node-lifecycle-controller' \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=false --concurrent-deployment-syncs 5 --v 1
launch kube-scheduler "$BIN_DIR/kube-scheduler" \
    --kubeconfig "$KUBECONFIG_PATH" --authentication-kubeconfig "$KUBECONFIG_PATH" \
    --authorization-kubeconfig "$KUBECONFIG_PATH" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false --v 1
# Pod exec (kubectl exec, the API server's pods/exec) runs on this host as a local process (kwok's
# ClusterExec), with the imitation nltest.exe/nslookup.exe of fake-windows-tools/ first on PATH; the
# container name picks the imitation's scenario (see fake-windows-tools/fake_tools.py).
FAKE_TOOLS_STATE=$STATE/fake-tools
mkdir -p "$FAKE_TOOLS_STATE"
{
    echo "apiVersion: kwok.x-k8s.io/v1alpha1"
    echo "kind: ClusterExec"
    echo "metadata: {name: winkube-lab-exec}"
    echo "spec:"
    echo "  execs:"
    for scenario in no-credspec dns-broken trust-broken trust-reset-fixes healthy; do
        echo "  - containers: [$scenario]"
        echo "    local: {workDir: $FAKE_TOOLS_STATE, envs: [{name: WINKUBE_FAKE_SCENARIO, value: $scenario}, {name: WINKUBE_FAKE_STATE, value: $FAKE_TOOLS_STATE}]}"
    done
    echo "  - local: {workDir: $FAKE_TOOLS_STATE, envs: [{name: WINKUBE_FAKE_SCENARIO, value: healthy}, {name: WINKUBE_FAKE_STATE, value: $FAKE_TOOLS_STATE}]}"
} >"$STATE/kwok-exec.yaml"
launch kwok env PATH="$K8S_DIR/fake-windows-tools:$PATH" "$BIN_DIR/kwok" --kubeconfig "$KUBECONFIG_PATH" \
    --config "$BIN_DIR/kwok-stages.yaml" --config "$STATE/kwok-exec.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr 10.244.0.1/16 --node-ip 127.0.0.1 --node-port "$KWOK_PORT" --server-address "127.0.0.1:$KWOK_PORT" \
    --tls-cert-file "$PKI/kwok.crt" --tls-private-key-file "$PKI/kwok.key"

# --- fake nodes -----------------------------------------------------------------------------------
NODES="kwok-windows-0 kwok-linux-0"
for node in $NODES; do
    os=${node#kwok-}; os=${os%-*}
    api -o /dev/null -X POST -H 'Content-Type: application/json' "$API_URL/api/v1/nodes" -d @- <<JSON
{"apiVersion": "v1", "kind": "Node",
 "metadata": {"name": "$node",
   "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
   "labels": {"kubernetes.io/os": "$os", "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": "$node",
              "type": "kwok", "node.kubernetes.io/windows-build": "$([ "$os" = windows ] && echo 10.0.17763 || echo none)"}},
 "spec": {},
 "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "nodeInfo": {"operatingSystem": "$os", "architecture": "amd64", "kubeletVersion": "fake",
                         "kubeProxyVersion": "fake", "containerRuntimeVersion": "kwok"}}}
JSON
    # The TaintNodesByCondition admission plugin adds node.kubernetes.io/not-ready at creation; the
    # node lifecycle controller (disabled here, so fake nodes are never tainted later) would lift it.
    api -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' "$API_URL/api/v1/nodes/$node" \
        -d '{"spec":{"taints":null}}'
done

# Ready: both nodes Ready (kwok) and the default service account (controller-manager) exists.
ready_nodes() {
    api "$API_URL/api/v1/nodes?labelSelector=type%3Dkwok" | python3 -c '
import json, sys
items = json.load(sys.stdin).get("items", [])
print(sum(1 for n in items for c in n.get("status", {}).get("conditions", []) if c["type"] == "Ready" and c["status"] == "True"))'
}
for _ in $(seq 1 240); do
    for p in kube-controller-manager kube-scheduler kwok; do alive $p || fail "$p exited" $p; done
    if [ "$(ready_nodes)" = 2 ] \
        && [ "$(api -o /dev/null -w '%{http_code}' "$API_URL/api/v1/namespaces/default/serviceaccounts/default")" = 200 ]; then
        break
    fi
    sleep 0.25
done
[ "$(ready_nodes)" = 2 ] || fail "the kwok nodes did not become Ready" kwok

version=$(api "$API_URL/version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')
cat >"$STATE/env" <<ENV
KUBECONFIG=$KUBECONFIG_PATH
K8S_LAB_STATE=$STATE
K8S_API_URL=$API_URL
K8S_API_HOST=127.0.0.1
K8S_API_PORT=$API_PORT
K8S_CA_CERT=$PKI/ca.crt
K8S_CA_KEY=$PKI/ca.key
K8S_ADMIN_CERT=$PKI/admin.crt
K8S_ADMIN_KEY=$PKI/admin.key
K8S_VERSION=$version
KWOK_VERSION=$KWOK_VERSION
ETCD_VERSION=$("$BIN_DIR/etcd" --version | sed -n 's/^etcd Version: //p')
K8S_BIN_DIR=$BIN_DIR
K8S_WINDOWS_NODES=kwok-windows-0
K8S_LINUX_NODES=kwok-linux-0
ENV
log "lab up in $((SECONDS - start)) s: Kubernetes $version at $API_URL"
echo "$STATE/env"
