"""lab/k8s/common.sh wait_group: after `setsid CMD &` the process group exists only once the child has called
setsid(2), so checking `kill -0 -- -$!` at once reports a starting service as gone (issue 14). These run bash."""

from __future__ import annotations

import subprocess
from pathlib import Path

COMMON = Path(__file__).resolve().parents[2] / 'lab' / 'k8s' / 'common.sh'


def _bash(script):
    return subprocess.run(['bash', '-c', '. "$1"; ' + script, 'bash', str(COMMON)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_group_of_a_starting_service_is_found_every_time():
    out = _bash('ok=0; for i in $(seq 1 20); do setsid sleep 3 </dev/null >/dev/null 2>&1 & p=$!; '
                'wait_group "$p" && kill -0 -- "-$p" && ok=$((ok+1)); kill -- "-$p" 2>/dev/null; done; echo $ok')
    assert out.stdout.strip() == '20', out


def test_a_service_that_exits_at_once_is_reported():
    out = _bash('setsid sh -c "exit 3" </dev/null >/dev/null 2>&1 & p=$!; sleep 0.3; wait_group "$p"; echo rc=$?')
    assert out.stdout.strip() == 'rc=1', out
