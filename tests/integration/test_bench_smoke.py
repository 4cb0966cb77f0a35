"""Smoke test of the scale benchmark (bench/): N=3 against the lab fixtures, both sides, every phase.

Asserts what the benchmark is for: our no-op reconverge writes nothing (Kubernetes API server counters and
LDAP operations seen on the wire) and LISTs each kind at most once per module call, and the JSON report has
the fields bench/RESULTS.md is written from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client

REPO = Path(__file__).resolve().parents[2]


def wait_until_no_namespace_is_terminating(k8s_lab, timeout=300):
    """The benchmark counts every request the API server serves (its /metrics); a namespace an earlier test
    deleted is still being emptied by the namespace controller, whose LISTs and DELETEs would be counted."""
    core = client.CoreV1Api(k8s_lab.api_client())
    deadline = time.monotonic() + timeout
    while True:
        terminating = [ns.metadata.name for ns in core.list_namespace().items if ns.metadata.deletion_timestamp]
        if not terminating:
            return
        assert time.monotonic() < deadline, 'namespaces still terminating after %d s: %s' % (timeout, terminating)
        time.sleep(2)


def test_bench_smoke(samba_lab, k8s_lab, tmp_path):
    wait_until_no_namespace_is_terminating(k8s_lab)
    output = tmp_path / 'bench.json'
    env = dict(os.environ)
    env.pop('ANSIBLE_CONFIG', None)
    proc = subprocess.run(
        [sys.executable, str(REPO / 'bench' / 'bench.py'), '3', '--python', sys.executable,
         '--samba-env', str(samba_lab.state_dir / 'env'), '--k8s-env', str(Path(k8s_lab.state_dir) / 'env'),
         '--baseline-sample', '0', '--output', str(output)],
        capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    report = json.loads(output.read_text())

    for key in ('date', 'machine', 'versions', 'rows', 'sizes', 'table'):
        assert key in report, key
    for key in ('nproc', 'memory_gb', 'cpu'):
        assert key in report['machine'], key
    size = report['sizes']['3']
    assert size['objects'] == {'gmsas': 3, 'host_groups': 1, 'ad_objects': 4, 'credential_specs': 3,
                               'cluster_roles': 3, 'role_bindings': 6, 'k8s_objects': 12}
    phases = ('converge', 'noop', 'change1')
    for side in ('ours', 'baseline'):
        assert set(size[side]) == set(phases), side
        for phase in phases:
            result = size[side][phase]
            assert not result['failed'], (side, phase, result['log'])
            for key in ('wall_seconds', 'max_rss_mb', 'tree_peak_pss_mb', 'k8s', 'ldap', 'reported', 'tasks'):
                assert key in result, (side, phase, key)
            for key in ('requests', 'writes', 'lists_by_resource', 'by_verb_resource'):
                assert key in result['k8s'], key
            for key in ('requests', 'searches', 'writes', 'by_operation', 'unanswered'):
                assert key in result['ldap'], key
    assert len(report['rows']) == 3
    for row in report['rows']:
        for key in ('n', 'phase', 'ours_wall_s', 'baseline_wall_s', 'ours_over_baseline', 'speedup',
                    'ours_k8s_requests', 'baseline_k8s_requests', 'ours_ldap_ops', 'baseline_ldap_ops',
                    'ours_tree_peak_pss_mb'):
            assert key in row, key
        assert row['baseline_extrapolated'] is False

    ours = size['ours']
    # first converge: every object written once, over both protocols
    assert ours['converge']['k8s']['writes'] == 12, ours['converge']['k8s']
    assert ours['converge']['ldap']['writes'] >= 4, ours['converge']['ldap']
    # no-op: zero writes (server-side counters and the wire), at most one LIST per kind per module call
    noop = ours['noop']
    assert noop['k8s']['writes'] == 0, noop['k8s']
    assert noop['ldap']['writes'] == 0, noop['ldap']
    assert noop['ldap']['unanswered'] == 0, noop['ldap']  # no LDAP request was retried
    assert noop['reported']['api_requests'].get('writes', 0) == 0
    assert noop['reported']['ldap_operations'].get('writes', 0) == 0
    assert noop['k8s']['lists_by_resource'], noop['k8s']
    assert all(count <= 1 for count in noop['k8s']['lists_by_resource'].values()), noop['k8s']
    assert set(noop['k8s']['by_verb_resource']) <= {'LIST %s' % kind for kind in (
        'gmsacredentialspecs', 'clusterroles', 'rolebindings', 'namespaces')}, noop['k8s']
    assert all(not task['changed_calls'] for task in noop['tasks']), noop['tasks']
    assert size['targets']['noop_zero_k8s_writes'] and size['targets']['noop_zero_ldap_writes']
    assert size['targets']['noop_at_most_one_list_per_kind_per_call']
    # one changed gMSA: one LDAP write and one Kubernetes write (its RoleBinding), nothing else
    change = ours['change1']
    assert change['ldap']['writes'] == 1, change['ldap']
    assert change['k8s']['writes'] == 1, change['k8s']
    # the server-side counts agree with what our modules report
    assert noop['k8s']['requests'] == noop['reported']['api_requests']['requests']
    assert noop['ldap']['searches'] == noop['reported']['ldap_operations']['searches']
