"""Two converges of the same inventory at the same time: two ansible-playbook processes started together,
each creating the same 25 gMSAs (one gmsa call) and the same RBAC for 25 credential specs in 2 namespaces
that do not exist yet (credential_spec_rbac with missing_namespace=create).

Both must end successfully; the directory then holds each gMSA exactly once with the declared attributes
(no duplicate, no second object under another name), and every RoleBinding has exactly the declared
subjects. The gmsa module meets "entry already exists" when the other process added an account between its
read and its add; it then reads the account again and continues (see GmsaTask.adopt).

Whether the two runs really overlapped is measured, not assumed: the json callback's task start/end
times of the gmsa tasks must intersect, else the attempt is repeated (up to 4 times) and the test fails
if the runs never overlapped.
"""

from __future__ import annotations

import datetime
import json

import pytest

kubernetes = pytest.importorskip('kubernetes')
from kubernetes import client  # noqa: E402

from test_faults import finish, start_playbook  # noqa: E402
from test_gmsa import allowed_sids, attrs_of, read, uid  # noqa: E402

N = 25

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: gmsa
      winkube.gmsa.gmsa: "{{ ad | combine({'accounts': accounts}) }}"
    - name: rbac
      winkube.gmsa.credential_spec_rbac:
        kubeconfig: "{{ kubeconfig }}"
        missing_namespace: create
        bindings: "{{ bindings }}"
"""


def run_pair(ansible_env, tmp_path, extra, label):
    started = datetime.datetime.now(datetime.timezone.utc)
    procs = [start_playbook(ansible_env, tmp_path, PLAY, extra, '%s-%d' % (label, i)) for i in range(2)]
    outcomes = []
    for proc in procs:
        outcomes.append(finish(proc) + ((started, datetime.datetime.now(datetime.timezone.utc)),))
    return outcomes


def task_windows(out):
    doc = json.loads(out)
    for task in doc['plays'][0]['tasks']:
        if task['task']['name'] == 'gmsa':
            duration = task['task'].get('duration') or task['hosts']['localhost'].get('duration')
            if not duration:
                return None
            parse = datetime.datetime.fromisoformat
            return parse(duration['start'].replace('Z', '+00:00')), parse(duration['end'].replace('Z', '+00:00'))
    return None


def test_two_converges_of_the_same_inventory_at_once(samba_lab, k8s_lab, ansible_env, tmp_path, run_playbook):
    api = k8s_lab.api_client()
    rbac, core = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
    overlapped, attempts, tags = 0, 0, []
    try:
        while attempts < 4 and not overlapped:
            attempts += 1
            tag = 'rc%s' % uid()
            tags.append(tag)
            namespaces = ['race-%s-a' % tag, 'race-%s-b' % tag]
            accounts = [{'name': '%s%02d' % (tag, i), 'description': 'race %d' % i,
                         'allowed_to_retrieve_password': {'set': ['Domain Admins']},
                         'service_principal_names': {'set': ['HTTP/%s%02d.%s' % (tag, i, samba_lab.dns_domain)]}}
                        for i in range(N)]
            specs = ['gmsa-%s-%02d' % (tag, i) for i in range(N)]
            bindings = [{'credential_spec': s, 'use_by': [{'namespace': ns, 'service_accounts': ['app-%d' % i, 'web']}
                                                          for ns in namespaces]} for i, s in enumerate(specs)]
            extra = {'ad': samba_lab.module_args(), 'accounts': accounts, 'kubeconfig': k8s_lab.kubeconfig,
                     'bindings': bindings}
            outcomes = run_pair(ansible_env, tmp_path, extra, 'attempt%d' % attempts)
            for rc, results, out, err, _window in outcomes:
                assert rc == 0, (results, err[-2000:])
            windows = [task_windows(o[2]) for o in outcomes]
            source = 'gmsa task durations (json callback)'
            if None in windows:  # the callback did not report durations: whole-process windows (coarser)
                windows, source = [o[4] for o in outcomes], 'process lifetimes'
            (a_start, a_end), (b_start, b_end) = windows
            overlap = (min(a_end, b_end) - max(a_start, b_start)).total_seconds()
            print('\nattempt %d: overlap %.2f s (%s)' % (attempts, overlap, source))
            if overlap > 0:
                overlapped += 1
            created = [sum(1 for acct in o[1]['gmsa']['accounts'] if acct['changed']) for o in outcomes]
            print('accounts reported created/changed by each run: %s' % created)

            # AD: each account exactly once, with the declared attributes
            entries = read(samba_lab, '(|(sAMAccountName=%s*)(cn=%s*))' % (tag, tag),
                           ['sAMAccountName', 'description', 'servicePrincipalName', 'msDS-GroupMSAMembership', 'cn'])
            sams = sorted(attrs_of(e)['sAMAccountName'][0] for e in entries)
            assert sams == sorted('%s$' % a['name'] for a in accounts), sams
            admins = None
            for entry in entries:
                attrs = attrs_of(entry)
                name = attrs['cn'][0]
                assert attrs['description'] == ['race %d' % int(name[-2:])]
                assert attrs['servicePrincipalName'] == ['HTTP/%s.%s' % (name, samba_lab.dns_domain)]
                sids = allowed_sids(entry)
                assert len(sids) == 1
                admins = admins or sids[0]
                assert sids == [admins]
            # Kubernetes: every binding with exactly its subjects, in both namespaces
            for ns in namespaces:
                found = {b.metadata.name: b for b in rbac.list_namespaced_role_binding(ns).items}
                assert sorted(found) == sorted('winkube-gmsa-use-%s' % s for s in specs)
                for i, spec in enumerate(specs):
                    subjects = sorted((s.name, s.namespace) for s in found['winkube-gmsa-use-%s' % spec].subjects)
                    assert subjects == sorted([('app-%d' % i, ns), ('web', ns)])
            roles = [r for r in rbac.list_cluster_role().items if '-%s-' % tag in r.metadata.name]
            assert len(roles) == N
            again = run_playbook(PLAY, extra_vars=extra)
            assert again.rc == 0 and not again.changed, again
        assert overlapped, 'the two runs never overlapped in %d attempts: the race was not tested' % attempts
    finally:
        conn = samba_lab.ldap()
        try:
            for tag in tags:
                for entry in read(samba_lab, '(sAMAccountName=%s*)' % tag, ['cn']):
                    conn.delete(entry['dn'])
        finally:
            conn.unbind()
        for tag in tags:
            for role in rbac.list_cluster_role().items:
                if '-%s-' % tag in role.metadata.name:
                    rbac.delete_cluster_role(role.metadata.name)
            for ns in ('race-%s-a' % tag, 'race-%s-b' % tag):
                try:
                    core.delete_namespace(ns)
                except client.ApiException:
                    pass
