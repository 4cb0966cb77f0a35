#!/usr/bin/env bash
# Start the whole local lab: the Samba AD DC, the Kubernetes control plane with fake nodes and the gMSA
# admission webhook, and the WinRM test endpoint imitating two Windows nodes. Builds the Kubernetes binaries
# first when they are not cached yet.
# Env files: $STATE/samba/env, $STATE/k8s/env, $STATE/k8s/webhook.env, $STATE/winrm/lab.json.
set -euo pipefail
LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${WINKUBE_LAB_STATE:-$LAB/.state}

bash "$LAB/samba/start.sh" >/dev/null
# shellcheck disable=SC1091
. "$STATE/samba/env"
# Two domain-joined Windows nodes, as the computer accounts a real cluster's nodes would have.
for node in WIN-NODE1 WIN-NODE2; do
  samba-tool computer show "$node" -H "$SAMBA_SAM_LDB" >/dev/null 2>&1 \
    || samba-tool computer add "$node" -H "$SAMBA_SAM_LDB" >/dev/null
done

bash "$LAB/k8s/build.sh"
bash "$LAB/k8s/start.sh" >/dev/null
bash "$LAB/k8s/start-webhook.sh" >/dev/null
bash "$LAB/winrm/start.sh" >/dev/null
echo "lab running; env files under $STATE (samba/env, k8s/env, k8s/webhook.env, winrm/lab.json); stop with: bash $LAB/stop-all.sh"
