#!/usr/bin/env bash
# Build upstream's windows-gmsa admission webhook (kubernetes-sigs/windows-gmsa v0.13.0) from the source
# tarball with its Go dependencies vendored (offline, -mod=vendor), once, into the cache:
#   $WINKUBE_GMSA_CACHE/bin/gmsa-webhook-<version>-<key>/gmsa-webhook
# The tarball comes from $GMSA_WEBHOOK_TARBALL (default: ../shared/upstream/ beside the repository) and is
# copied into $WINKUBE_GMSA_CACHE/upstream/ first, so later builds need only the cache. Its sha256 must be
# the pinned one. Prints the binary's path on stdout.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cached=$CACHE/upstream/$GMSA_WEBHOOK_TARBALL_NAME
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -x "$GMSA_WEBHOOK_BIN_DIR/gmsa-webhook" ] && [ "${1:-}" != "--force" ]; then
    log "windows-gmsa webhook $GMSA_WEBHOOK_VERSION cached: $GMSA_WEBHOOK_BIN_DIR/gmsa-webhook"
    echo "$GMSA_WEBHOOK_BIN_DIR/gmsa-webhook"
    exit 0
fi

# --- source: the cached copy, else the tarball beside the repository ---------------------------
if [ ! -f "$cached" ] || [ "$(sha_of "$cached")" != "$GMSA_WEBHOOK_TARBALL_SHA256" ]; then
    src=${GMSA_WEBHOOK_TARBALL:-$REPO_ROOT/../shared/upstream/$GMSA_WEBHOOK_TARBALL_NAME}
    if [ ! -f "$src" ]; then
        echo "missing $src: upstream's windows-gmsa $GMSA_WEBHOOK_VERSION source tarball (with vendor/)." >&2
        echo "Put $GMSA_WEBHOOK_TARBALL_NAME there or set GMSA_WEBHOOK_TARBALL=/path/to/it (sha256 $GMSA_WEBHOOK_TARBALL_SHA256)." >&2
        exit 1
    fi
    got=$(sha_of "$src")
    if [ "$got" != "$GMSA_WEBHOOK_TARBALL_SHA256" ]; then
        echo "$src has sha256 $got, expected $GMSA_WEBHOOK_TARBALL_SHA256 (windows-gmsa $GMSA_WEBHOOK_VERSION)" >&2
        exit 1
    fi
    mkdir -p "$CACHE/upstream"
    cp "$src" "$cached.tmp.$$" && mv -f "$cached.tmp.$$" "$cached"
    log "copied $src into $cached (sha256 checked)"
fi

# --- build ---------------------------------------------------------------------------------------
command -v go >/dev/null || { echo "go is not installed" >&2; exit 1; }
export GOPATH=$CACHE/go/path GOCACHE=$CACHE/go/build GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=vendor -buildvcs=false" GOPROXY=off
mkdir -p "$GOCACHE" "$GOPATH" "$CACHE/bin" "$CACHE/src"
# One build at a time (checkouts share the cache); the source stays at a fixed path, so Go's build cache (keyed
# by source paths, upstream builds without -trimpath) makes a rebuild with other flags a link only.
exec 9>"$CACHE/bin/.gmsa-webhook.lock"
flock 9
if [ -x "$GMSA_WEBHOOK_BIN_DIR/gmsa-webhook" ] && [ "${1:-}" != "--force" ]; then
    echo "$GMSA_WEBHOOK_BIN_DIR/gmsa-webhook"
    exit 0
fi
src=$CACHE/src/windows-gmsa-$GMSA_WEBHOOK_VERSION-$(printf '%s' "$GMSA_WEBHOOK_TARBALL_SHA256" | cut -c1-12)
if [ ! -d "$src" ]; then
    rm -rf "$src.tmp"
    mkdir -p "$src.tmp"
    tar -xzf "$cached" -C "$src.tmp"
    mv "$src.tmp" "$src"
fi
work=$(mktemp -d "$CACHE/bin/.gmsa-webhook-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$SECONDS
log "compiling windows-gmsa webhook $GMSA_WEBHOOK_VERSION with $(go version | cut -d' ' -f3), offline (-mod=vendor); cold: about a minute"
# Upstream's release flags (common.sh), so /info and --version report the release.
(cd "$src/windows-gmsa-$GMSA_WEBHOOK_VERSION/admission-webhook" \
    && go build -ldflags="$GMSA_WEBHOOK_LDFLAGS" -o "$work/gmsa-webhook" .) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ $(((SECONDS - start) % 20)) = 0 ] && kill -0 "$pid" 2>/dev/null; then
        log "still compiling the webhook, $((SECONDS - start)) s"
    fi
done
wait "$pid" || { echo "go build of the windows-gmsa webhook failed (see above)" >&2; exit 1; }
"$work/gmsa-webhook" --version >&2
mkdir -p "$GMSA_WEBHOOK_BIN_DIR"
mv -f "$work/gmsa-webhook" "$GMSA_WEBHOOK_BIN_DIR/gmsa-webhook"
log "built in $((SECONDS - start)) s: $GMSA_WEBHOOK_BIN_DIR/gmsa-webhook"
echo "$GMSA_WEBHOOK_BIN_DIR/gmsa-webhook"
