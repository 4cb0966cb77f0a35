# shellcheck shell=bash disable=SC2034
# Shared settings for the lab/k8s scripts (sourced, not run).
K8S_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$K8S_DIR/../.." && pwd)
# shellcheck source=versions.env
. "$K8S_DIR/versions.env"
CACHE=${WINKUBE_GMSA_CACHE:-/var/cache/winkube-gmsa}
# One folder per build recipe, so checkouts with different recipes never overwrite each other's binaries.
BUILD_STAMP=$(cat "$K8S_DIR/versions.env" "$K8S_DIR/wrapper/go.mod" "$K8S_DIR/wrapper/go.sum" \
    "$K8S_DIR/build.sh" | sha256sum | cut -c1-16)
BIN_DIR=$CACHE/bin/k8s-$K8S_VERSION-$BUILD_STAMP
# Upstream's release flags (admission-webhook/dockerfiles/Dockerfile, VERSION = the git tag), used by build-webhook.sh.
GMSA_WEBHOOK_LDFLAGS="-w -s -X main.version=$GMSA_WEBHOOK_VERSION"
# The webhook's folder is keyed by the source tarball's checksum and the build recipe.
GMSA_WEBHOOK_BIN_DIR=$CACHE/bin/gmsa-webhook-$GMSA_WEBHOOK_VERSION-$(printf '%s' "$GMSA_WEBHOOK_TARBALL_SHA256" | cut -c1-12)-$(
    printf 'CGO_ENABLED=0 -mod=vendor -ldflags=%s' "$GMSA_WEBHOOK_LDFLAGS" | sha256sum | cut -c1-8)
STATE_ROOT=${WINKUBE_LAB_STATE:-$REPO_ROOT/lab/.state}
STATE=$STATE_ROOT/k8s

go_env() {
    export GOPATH=$CACHE/go/path GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build
    export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
    # The machine's proxy setting, less the direct fallback: modules come from the proxy only.
    local proxy
    proxy=$(GOPROXY='' go env GOPROXY 2>/dev/null)
    proxy=${GOPROXY:-$proxy}
    proxy=$(printf '%s' "$proxy" | sed -e 's/[,|]direct//g' -e 's/^direct[,|]\{0,1\}//')
    [ -n "$proxy" ] || { echo "no Go module proxy configured (GOPROXY)" >&2; return 1; }
    export GOPROXY=$proxy
}

# wait_group PID: after `setsid CMD &`, wait until process group PID exists (setsid(2) may not have run yet);
# fails when the process exited first.
wait_group() {
    local i
    for i in $(seq 1 100); do
        kill -0 -- "-$1" 2>/dev/null && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

log() { printf '[k8s-lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
