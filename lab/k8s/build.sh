#!/usr/bin/env bash
# Build the Kubernetes lab binaries from the Go module proxy into the cache:
#   $WINKUBE_GMSA_CACHE/bin/k8s-<version>-<recipe>/{kube-apiserver,kube-controller-manager,kube-scheduler,etcd,kwok}
# Skips the build when those binaries exist for the pinned versions (a stamp records the wrapper's
# go.mod/go.sum hash). Go module and build caches live under $WINKUBE_GMSA_CACHE/go.
# Then build-webhook.sh builds upstream's windows-gmsa webhook from its source tarball (cached the same way).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
PACKAGES=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
          k8s.io/kubernetes/cmd/kube-scheduler ./cmd/etcd sigs.k8s.io/kwok/cmd/kwok)
# kwok's own stage definitions (from its module), written next to the binaries for start.sh.
KWOK_STAGES=(node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml pod/fast/pod-ready.yaml
             pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)

stamp_value=$BUILD_STAMP
stamp=$BIN_DIR/.stamp
have_all() {
    local b
    for b in "${BINARIES[@]}"; do [ -x "$BIN_DIR/$b" ] || return 1; done
    [ -s "$BIN_DIR/kwok-stages.yaml" ] || return 1
    [ "$(cat "$stamp" 2>/dev/null)" = "$stamp_value" ]
}
if [ "${1:-}" != "--force" ] && have_all; then
    log "binaries for Kubernetes $K8S_VERSION / kwok $KWOK_VERSION cached in $BIN_DIR"
    "$K8S_DIR/build-webhook.sh" >/dev/null
    exit 0
fi

command -v go >/dev/null || { echo "go is not installed" >&2; exit 1; }
go_env
grep -q "k8s.io/kubernetes $K8S_VERSION" "$K8S_DIR/wrapper/go.mod" \
    || { echo "wrapper/go.mod is not for $K8S_VERSION: run lab/k8s/update-wrapper.sh" >&2; exit 1; }
export GOFLAGS="-mod=readonly -buildvcs=false"
mkdir -p "$GOMODCACHE" "$GOCACHE" "$GOPATH" "$BIN_DIR"
cd "$K8S_DIR/wrapper"
start=$SECONDS
log "$(go version); proxy $GOPROXY; cache $CACHE"
log "downloading modules (Kubernetes $K8S_VERSION, kwok $KWOK_VERSION)"
go mod download
log "modules ready after $((SECONDS - start)) s; module cache $(du -sh "$GOMODCACHE" | cut -f1)"

# Upstream's ldflags (hack/lib/version.sh), so /version reports the real version.
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.info" 2>/dev/null || true)
build_date=${build_date:-1970-01-01T00:00:00Z}
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"

log "compiling ${BINARIES[*]} (one go build, $(nproc) cores; a cold build takes a while)"
tmp_out=$(mktemp -d "$BIN_DIR/.build.XXXXXX")
build_log=$tmp_out/build.log
go build -v -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$tmp_out/" "${PACKAGES[@]}" \
    >"$build_log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT INT TERM
ticks=0
while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    ticks=$((ticks + 1))
    [ $((ticks % 30)) = 0 ] || continue
    kill -0 "$pid" 2>/dev/null || break
    log "still compiling: $(wc -l <"$build_log") packages so far, $((SECONDS - start)) s elapsed, build cache $(du -sh "$GOCACHE" | cut -f1)"
done
set +e; wait "$pid"; rc=$?; set -e
trap - EXIT INT TERM
if [ "$rc" -ne 0 ]; then
    grep -v '^[a-zA-Z0-9._/-]*$' "$build_log" | tail -50 >&2
    echo "go build failed (rc $rc); full log: $build_log" >&2
    exit "$rc"
fi
for b in "${BINARIES[@]}"; do mv -f "$tmp_out/$b" "$BIN_DIR/$b"; done
kwok_dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
for f in "${KWOK_STAGES[@]}"; do echo '---'; cat "$kwok_dir/kustomize/stage/$f"; done >"$BIN_DIR/kwok-stages.yaml"
rm -rf "$tmp_out"
echo "$stamp_value" >"$stamp"
log "built in $((SECONDS - start)) s: $(cd "$BIN_DIR" && du -m "${BINARIES[@]}" | awk "{printf \"%s %s MB, \", \$2, \$1}")"
log "cache size: $(du -sh "$CACHE" | cut -f1)"
"$K8S_DIR/build-webhook.sh" >/dev/null
