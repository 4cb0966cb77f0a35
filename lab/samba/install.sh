#!/usr/bin/env bash
# Install Samba AD DC (>= 4.21, needed for gMSA and KDS root keys) from bookworm-backports.
# Idempotent: does nothing when a new enough samba is already installed.
set -euo pipefail

MIN_VERSION=${WINKUBE_SAMBA_MIN_VERSION:-4.21}
SOURCE_FILE=/etc/apt/sources.list.d/winkube-bookworm-backports.sources
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PACKAGES=(samba samba-ad-dc samba-ad-provision krb5-user winbind smbclient ldb-tools)

installed_version() {
  dpkg-query -W -f='${Status} ${Version}\n' samba 2>/dev/null | awk '$3 == "installed" {print $4}'
}

have=$(installed_version || true)
if [ -n "$have" ] && command -v samba >/dev/null 2>&1 && command -v samba-tool >/dev/null 2>&1 \
  && dpkg --compare-versions "${have#*:}" ge "$MIN_VERSION"; then
  echo "samba $have already installed (>= $MIN_VERSION)"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "ERROR: installing samba needs root" >&2; exit 1; }
[ -f "$KEYRING" ] || { echo "ERROR: $KEYRING missing (apt-get install debian-archive-keyring)" >&2; exit 1; }

# Reuse the mirror of the existing bookworm source so no host name is hard-coded here.
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  [ -n "$mirror" ] || { echo "ERROR: cannot find the Debian mirror of the existing bookworm source" >&2; exit 1; }
  cat >"$SOURCE_FILE" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: $KEYRING
SRC
  echo "added $SOURCE_FILE ($mirror bookworm-backports main)"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q -t bookworm-backports -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${PACKAGES[@]}"
# The distribution's own samba services are not wanted; the lab runs samba itself on loopback.
for unit in samba-ad-dc smbd nmbd winbind; do
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  fi
done
echo "installed samba $(installed_version)"
