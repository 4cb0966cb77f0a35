#!/usr/bin/env bash
# Start a throw-away Samba AD DC for the domain CONTOSO.TEST on loopback.
#
# State (provisioned domain, TLS files, admin password, logs, pgid, env file) lives in
#   ${WINKUBE_LAB_STATE:-<repo>/lab/.state}/samba
# Each start provisions a fresh domain (about 4 s) unless a DC started from this state folder is still
# running, in which case it is reused. The admin password is random and stored in a 0600 file.
# Usage: start.sh [--keep]
#   --keep  restart the SAME domain: when the state folder holds a provisioned domain (stopped with
#           stop.sh, or killed), start samba on it again (same objects, password, TLS files) instead of
#           provisioning a new one. Without a provisioned domain it provisions as usual.
# The DC uses a CA and server certificate of our own (SAN 127.0.0.1, ::1, localhost, dc1.contoso.test)
# so clients validate TLS against $SAMBA_CA_FILE instead of turning validation off.
# Writes $STATE/env (shell syntax): SAMBA_SERVER, SAMBA_LDAP_PORT, SAMBA_LDAPS_PORT, SAMBA_BASE_DN, ...
set -euo pipefail

keep=no
for arg in "$@"; do
  case $arg in
    --keep) keep=yes ;;
    *) echo "usage: $0 [--keep]" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_ROOT=${WINKUBE_LAB_STATE:-$REPO/lab/.state}
STATE=$STATE_ROOT/samba
REALM=${SAMBA_LAB_REALM:-CONTOSO.TEST}
DOMAIN=${SAMBA_LAB_DOMAIN:-CONTOSO}
DC_NAME=${SAMBA_LAB_DC_NAME:-dc1}
SERVER=127.0.0.1
WAIT=${SAMBA_LAB_START_TIMEOUT:-90}
dns_domain=$(echo "$REALM" | tr '[:upper:]' '[:lower:]')
fqdn=$DC_NAME.$dns_domain

log() { printf '==> [samba %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/$SERVER/$1") 2>/dev/null; }

mkdir -p "$STATE_ROOT"
# Serialise concurrent starts/stops for this state folder.
exec 9>"$STATE_ROOT/samba.lock"
flock -w 300 9 || die "timed out waiting for $STATE_ROOT/samba.lock"

if ! command -v samba >/dev/null 2>&1 || ! command -v samba-tool >/dev/null 2>&1; then
  die "samba is not installed; run lab/samba/install.sh (as root)"
fi

running() {
  [ -f "$STATE/pgid" ] && [ -f "$STATE/env" ] && kill -0 -- "-$(cat "$STATE/pgid")" 2>/dev/null && port_open 636
}
if running; then
  log "reusing the running DC (process group $(cat "$STATE/pgid")), env: $STATE/env"
  echo "$STATE/env"
  exit 0
fi
if [ -f "$STATE/pgid" ] && kill -0 -- "-$(cat "$STATE/pgid")" 2>/dev/null; then
  log "stopping a half-started DC (process group $(cat "$STATE/pgid"))"
  "$REPO/lab/samba/stop.sh" --no-lock
fi
for port in 389 636 88; do
  if port_open "$port"; then
    die "port $port on $SERVER is already in use by another process (another Samba lab from a different WINKUBE_LAB_STATE?); stop it first"
  fi
done

pick_python() {
  local candidate
  for candidate in "${WINKUBE_LAB_PYTHON:-}" "${WINKUBE_GMSA_CACHE:-/var/cache/winkube-gmsa}/venv-newest/bin/python" python3; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import cryptography' >/dev/null 2>&1; then echo "$candidate"; return 0; fi
  done
  return 1
}
PY=$(pick_python) || die "no Python with the 'cryptography' package found (set WINKUBE_LAB_PYTHON)"

start_ts=$(date +%s.%N)
umask 077
if [ "$keep" = yes ] && [ -f "$STATE/dc/etc/smb.conf" ] && [ -f "$STATE/dc/private/sam.ldb" ] \
    && [ -s "$STATE/admin-password" ] && [ -f "$STATE/tls/ca.pem" ]; then
  log "--keep: starting the domain already provisioned in $STATE/dc again"
else
  rm -rf "$STATE"
  mkdir -p "$STATE"
  chmod 700 "$STATE"

  # A random password meeting AD complexity (upper, lower, digit, symbol).
  password="Lab-$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)-7a"
  printf '%s' "$password" >"$STATE/admin-password"
  chmod 600 "$STATE/admin-password"

  mkdir -p "$STATE/tls"
  "$PY" "$REPO/lab/samba/make_certs.py" "$STATE/tls" "$fqdn"

  log "provisioning $REALM into $STATE/dc"
  samba-tool domain provision --realm="$REALM" --domain="$DOMAIN" --server-role=dc \
    --dns-backend=SAMBA_INTERNAL --adminpass="$password" --targetdir="$STATE/dc" \
    --host-name="$DC_NAME" --host-ip=127.0.0.1 \
    --option='interfaces=lo' --option='bind interfaces only=yes' \
    --option="pid directory=$STATE/dc/run" --option="log file=$STATE/dc/log.%m" \
    --option="ncalrpc dir=$STATE/dc/run/ncalrpc" \
    --option="winbindd socket directory=$STATE/dc/run/winbindd" \
    --option="ntp signd socket directory=$STATE/dc/run/ntp_signd" \
    --option='server services=-nbt' \
    --option='tls enabled=yes' \
    --option="tls keyfile=$STATE/tls/key.pem" \
    --option="tls certfile=$STATE/tls/cert.pem" \
    --option="tls cafile=$STATE/tls/ca.pem" \
    --option='ad dc functional level = 2016' \
    --base-schema=2019 --function-level=2016 >"$STATE/provision.log" 2>&1 \
    || { tail -n 30 "$STATE/provision.log" >&2; die "samba-tool domain provision failed (log: $STATE/provision.log)"; }
  # Every runtime folder (pid files, sockets: samba's defaults are under /run/samba, which a package
  # install with service starts denied never creates) lives in the state folder. The NetBIOS name
  # server is off: its socket folder is compiled in (/run/samba/nmbd) and nothing here uses NetBIOS.
  mkdir -p "$STATE/dc/run"
  log "provisioned in $(printf '%.1f' "$(echo "$(date +%s.%N) - $start_ts" | bc 2>/dev/null || echo 0)") s"
fi

# setsid: samba becomes the leader of a new process group; stop.sh signals that group only.
# 9>&- : the lock must not be inherited by the long-running DC.
setsid samba -i -s "$STATE/dc/etc/smb.conf" </dev/null >"$STATE/samba.log" 2>&1 9>&- &
pgid=$!
echo "$pgid" >"$STATE/pgid"
# the group exists only once setsid(2) ran in the child: wait for it before testing it below
for _ in $(seq 1 100); do kill -0 -- "-$pgid" 2>/dev/null || ! kill -0 "$pgid" 2>/dev/null && break; sleep 0.05; done
log "samba started, process group $pgid; waiting for LDAPS on $SERVER:636"

deadline=$(( $(date +%s) + WAIT ))
until port_open 636 && port_open 389 && port_open 88; do
  if ! kill -0 -- "-$pgid" 2>/dev/null; then
    tail -n 30 "$STATE/samba.log" >&2
    die "samba exited during start (log: $STATE/samba.log)"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    tail -n 30 "$STATE/samba.log" >&2
    "$REPO/lab/samba/stop.sh" --no-lock || true
    die "samba did not listen on $SERVER:636 within ${WAIT}s (log: $STATE/samba.log)"
  fi
  sleep 0.3
done

base_dn=$(echo "$dns_domain" | sed 's/^/DC=/; s/\./,DC=/g')
q() { printf '%q' "$1"; }
cat >"$STATE/env" <<ENV
SAMBA_SERVER=$(q "$SERVER")
SAMBA_HOSTNAME=$(q "$fqdn")
SAMBA_LDAP_PORT=389
SAMBA_LDAPS_PORT=636
SAMBA_KERBEROS_PORT=88
SAMBA_REALM=$(q "$REALM")
SAMBA_DNS_DOMAIN=$(q "$dns_domain")
SAMBA_NETBIOS_DOMAIN=$(q "$DOMAIN")
SAMBA_BASE_DN=$(q "$base_dn")
SAMBA_ADMIN_USER=Administrator
SAMBA_ADMIN_UPN=$(q "Administrator@$dns_domain")
SAMBA_ADMIN_DN=$(q "CN=Administrator,CN=Users,$base_dn")
SAMBA_PASSWORD_FILE=$(q "$STATE/admin-password")
SAMBA_CA_FILE=$(q "$STATE/tls/ca.pem")
SAMBA_SMB_CONF=$(q "$STATE/dc/etc/smb.conf")
SAMBA_PRIVATE_DIR=$(q "$STATE/dc/private")
SAMBA_SAM_LDB=$(q "$STATE/dc/private/sam.ldb")
SAMBA_KRB5_CONF=$(q "$STATE/dc/private/krb5.conf")
SAMBA_PGID=$pgid
SAMBA_LOG=$(q "$STATE/samba.log")
ENV
chmod 600 "$STATE/env"
log "ready in $(( $(date +%s) - ${start_ts%.*} )) s; env: $STATE/env"
echo "$STATE/env"
