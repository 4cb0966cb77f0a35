"""bench/bench.py's budget kill ends every process of a run: ansible's workers start sessions of their own (setsid),
so a kill of the process group alone left them behind (found as orphans after a benchmark run)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / 'bench' / 'bench.py'

# a parent that forks a child which leaves the process group with setsid, as ansible's WorkerProcess does; the
# child says its pid once it has left (the parent saying it right after fork raced with the setsid)
PARENT = """
import os, sys, time
pid = os.fork()
if pid == 0:
    os.setsid()
    print(os.getpid(), flush=True)
    time.sleep(120)
    os._exit(0)
time.sleep(120)
"""


def load_bench():
    spec = importlib.util.spec_from_file_location('winkube_bench', BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rpartition(')')[2].split()[0] != 'Z'
    except OSError:
        return False


def test_kill_tree_ends_a_child_that_left_the_process_group():
    bench = load_bench()
    proc = subprocess.Popen([sys.executable, '-c', PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child = int(proc.stdout.readline())
    try:
        assert os.getpgid(child) != proc.pid  # what a process-group kill misses
        assert set(bench.kill_tree(proc.pid)) == {proc.pid, child}
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        for pid in (child, proc.pid):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        proc.stdout.close()
