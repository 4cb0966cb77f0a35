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


SMOKE_SIDES = ('ours', 'baseline', 'k8s_list_apply', 'k8s_list_ssa', 'floor')


def by_verb(n, verbs):
    """{'VERB resource': count} for n gMSAs: n credential specs, n ClusterRoles, 2n RoleBindings."""
    out = {}
    for verb, per_object in verbs.items():
        for resource, objects in (('gmsacredentialspecs', n), ('clusterroles', n), ('rolebindings', 2 * n)):
            out['%s %s' % (verb, resource)] = per_object * objects
    return out


def test_bench_smoke(samba_lab, k8s_lab, tmp_path):
    """Our side, the typical per-item playbook, the two one-task kubernetes.core configurations and Ansible's
    floor under ours (the community.general side needs python-ldap, which the test venvs do not have: it runs
    in the full bench)."""
    wait_until_no_namespace_is_terminating(k8s_lab)
    output = tmp_path / 'bench.json'
    env = dict(os.environ)
    env.pop('ANSIBLE_CONFIG', None)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(REPO / 'bench' / 'bench.py'), '3', '--python', sys.executable,
         '--samba-env', str(samba_lab.state_dir / 'env'), '--k8s-env', str(Path(k8s_lab.state_dir) / 'env'),
         '--sides', ','.join(SMOKE_SIDES), '--output', str(output)],
        capture_output=True, text=True, timeout=900, env=env, check=False)
    print('bench smoke: %.1f s' % (time.monotonic() - started))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    report = json.loads(output.read_text())

    for key in ('date', 'machine', 'versions', 'rows', 'sizes', 'table', 'budget_s', 'sides'):
        assert key in report, key
    for key in ('nproc', 'memory_gb', 'cpu', 'loadavg_at_start', 'loadavg_at_end'):
        assert key in report['machine'], key
    size = report['sizes']['3']
    assert size['objects'] == {'gmsas': 3, 'host_groups': 1, 'ad_objects': 4, 'credential_specs': 3,
                               'cluster_roles': 3, 'role_bindings': 6, 'k8s_objects': 12}
    phases = ('converge', 'noop', 'change1')
    assert set(size['sides']) == set(SMOKE_SIDES)
    for side in SMOKE_SIDES:
        assert set(size['sides'][side]) == set(phases), side
        for phase in phases:
            result = size['sides'][side][phase]
            assert not result['failed'] and not result['did_not_finish'], (side, phase, result.get('log'))
            for key in ('wall_seconds', 'cpu_seconds', 'max_rss_mb', 'tree_peak_pss_mb', 'loadavg_before',
                        'loadavg_after', 'machine_cpu_busy', 'k8s', 'ldap', 'reported', 'tasks'):
                assert key in result, (side, phase, key)
            for key in ('requests', 'writes', 'lists_by_resource', 'by_verb_resource'):
                assert key in result['k8s'], key
            for key in ('requests', 'searches', 'writes', 'by_operation', 'unanswered'):
                assert key in result['ldap'], key
            assert result['ldap']['unanswered'] == 0, (side, phase, result['ldap'])  # no LDAP request retried
    assert len(report['rows']) == 3
    for row in report['rows']:
        for key in ('n', 'phase', 'sides', 'best_peers', 'ours_wall_s', 'baseline_wall_s', 'speedup',
                    'ours_k8s_requests', 'baseline_k8s_requests', 'ours_ldap_ops', 'baseline_ldap_ops',
                    'ours_tree_peak_pss_mb'):
            assert key in row, key
        assert set(row['sides']) == set(SMOKE_SIDES)
        assert row['best_peers'] is None  # the AD half of the best peers (community.general) did not run

    sides = size['sides']
    ours = sides['ours']
    lists = {'LIST %s' % kind: 1 for kind in ('gmsacredentialspecs', 'clusterroles', 'rolebindings', 'namespaces')}
    # Kubernetes, counted by the API server: ours LISTs each kind once and applies exactly what is missing
    assert ours['converge']['k8s']['by_verb_resource'] == dict(lists, **by_verb(3, {'APPLY': 1}))
    assert ours['noop']['k8s']['by_verb_resource'] == lists
    assert ours['change1']['k8s']['by_verb_resource'] == dict(lists, **{'APPLY rolebindings': 1})
    # LDAP, counted on the wire: per module call one bind, two searches, one unbind; the converge (as the gmsa_ad
    # role does it: the host group first) adds the group with its members, reads its SID back, looks the gMSAs
    # not found by sAMAccountName up by cn, checks the new SPNs, adds the 3 gMSAs with the group already in their
    # descriptor (N + 1 writes, not 2N + 1) and reads their SIDs; change1 one modify
    assert [ours[p]['ldap']['requests'] for p in phases] == [8 + 1 + 1 + 1 + 1 + 3 + 1, 8, 9]
    assert [ours[p]['ldap']['writes'] for p in phases] == [3 + 1, 0, 1]
    noop = ours['noop']
    assert noop['reported']['api_requests'].get('writes', 0) == 0
    assert noop['reported']['ldap_operations'].get('writes', 0) == 0
    assert all(not task['changed_calls'] for task in noop['tasks']), noop['tasks']
    assert size['targets']['noop_zero_k8s_writes'] and size['targets']['noop_zero_ldap_writes']
    assert size['targets']['noop_at_most_one_list_per_kind_per_call']
    # the server-side counts agree with what our modules report
    assert noop['k8s']['requests'] == noop['reported']['api_requests']['requests']
    assert noop['ldap']['searches'] == noop['reported']['ldap_operations']['searches']

    # kubernetes.core 6.x, one task for all objects: two GETs per object, then a write per object in every
    # phase (client-side apply PATCHes even when nothing changed; server-side apply always APPLYs)
    for phase, verb in (('converge', 'POST'), ('noop', 'PATCH'), ('change1', 'PATCH')):
        assert sides['k8s_list_apply'][phase]['k8s']['by_verb_resource'] == dict(
            by_verb(3, {'GET': 2}), **by_verb(3, {verb: 1})), phase
        assert sides['k8s_list_ssa'][phase]['k8s']['by_verb_resource'] == dict(
            by_verb(3, {'GET': 2}), **by_verb(3, {'APPLY': 1})), phase
    # the typical playbook: one GET per object, POST on converge; then PATCH per object (and a refused
    # strategic-merge PATCH per credential spec); winkube.gmsa.gmsa/host_group per account: bind, 2 searches,
    # unbind each (a new gMSA one search more: by cn, once not found by sAMAccountName)
    base = sides['baseline']
    assert [base[p]['k8s']['requests'] for p in phases] == [24, 27, 27]
    assert [base[p]['k8s']['writes'] for p in phases] == [12, 15, 15]
    assert [base[p]['ldap']['requests'] for p in phases] == [35 + 3, 24, 25]
    assert [base[p]['ldap']['writes'] for p in phases] == [7, 0, 1]
    # Ansible's floor (the same four tasks and arguments, the module doing nothing) reaches neither server, and
    # every row says what ours costs above it
    floor = sides['floor']
    assert [(floor[p]['k8s']['requests'], floor[p]['ldap']['requests']) for p in phases] == [(0, 0)] * 3
    assert [len(floor[p]['tasks']) for p in phases] == [4] * 3
    assert all(row['ours_above_floor_s'] is not None for row in report['rows'])
