#!/usr/bin/env bash
# Stop everything lab/start-all.sh started, by the process-group ids the start scripts saved.
set -euo pipefail
LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$LAB/winrm/stop.sh" || true
bash "$LAB/k8s/stop.sh" || true
bash "$LAB/samba/stop.sh" || true
