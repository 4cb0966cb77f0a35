"""The gmsa_nodes role against the WinRM test endpoint (lab/winrm), the Samba AD DC (the domain's DNS name for
preflight) and the Kubernetes lab (the nodes' Node objects and the gMSA pods to recreate).

The endpoint is no Windows host: it imitates the collection's PowerShell scripts (docs/winrm.md). What the
role wrote is read back from the fake hosts' state through the endpoint's control port.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

HNS_KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\hns\\State'
CCG_KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\CCG\\COMClasses'
ROLE = '- hosts: localhost\n  gather_facts: false\n  roles: [winkube.gmsa.gmsa_nodes]\n'
POD_NS = 'kube-system'  # outside the admission webhook's scope, so the pod needs no credential spec to exist
POD = 'nodes-role-gmsa-pod'


def _hns(winrm_lab):
    """EnableCompartmentNamespace per fake host, as the endpoint holds it (None when not set)."""
    return {name: (host['registry'].get(HNS_KEY) or {}).get('EnableCompartmentNamespace')
            for name, host in winrm_lab.state().items()}


def _task(result, suffix):
    """The registered result of the task whose name ends with suffix (callbacks may prefix the role name)."""
    for name, task in result.results.items():
        if name.endswith(suffix):
            return task
    raise AssertionError(f'no task {suffix!r} in {sorted(result.results)}')


def _changed_tasks(result):
    doc = json.loads(result.stdout)
    return sorted(task['task']['name'] for play in doc['plays'] for task in play['tasks']
                  if task['hosts'].get('localhost', {}).get('changed'))


@pytest.fixture
def nodes_vars(samba_lab, k8s_lab, winrm_lab):
    """The variable model with both fake hosts, registered in Kubernetes as the lab's kwok Windows node."""
    winrm_lab.reset()
    winrm = winrm_lab.module_args()
    windows_node = k8s_lab.windows_nodes[0]
    return {
        'gmsa_domain': samba_lab.module_args(),
        'gmsa_cluster': {'kubeconfig': k8s_lab.kubeconfig},
        'gmsa_nodes': {'host_group': 'NodesRoleHosts', 'winrm': winrm,
                       'node_names': {entry: windows_node for entry in winrm['hosts']}},
        'gmsa_accounts': [],
    }


@pytest.fixture
def gmsa_pod(k8s_lab, without_gmsa_webhooks):
    """A running pod on the Windows node that names a credential spec (must be recreated after the fix)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(k8s_lab.api_client())
    body = {'metadata': {'name': POD},
            'spec': {'nodeName': k8s_lab.windows_nodes[0],
                     'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': 'gmsa-nodes-role'}},
                     'tolerations': [{'operator': 'Exists'}],
                     'containers': [{'name': 'app', 'image': 'example/app:1'}]}}
    try:
        core.create_namespaced_pod(POD_NS, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
    yield POD
    core.delete_namespaced_pod(POD, POD_NS, grace_period_seconds=0)


def test_check_mode_then_twice(run_playbook, nodes_vars, winrm_lab, gmsa_pod):
    assert set(_hns(winrm_lab).values()) == {None}

    checked = run_playbook(ROLE, extra_vars=nodes_vars, check=True, diff=True)
    assert checked.rc == 0, checked
    assert _task(checked, 'Turn on EnableCompartmentNamespace on the nodes')['changed'], checked
    assert set(_hns(winrm_lab).values()) == {None}  # check mode wrote nothing

    first = run_playbook(ROLE, extra_vars=nodes_vars)
    assert first.rc == 0, first
    assert _task(first, 'Say that the Windows nodes are left alone').get('skipped'), first
    registry = _task(first, 'Turn on EnableCompartmentNamespace on the nodes')
    assert registry['changed'] and [n['changed'] for n in registry['nodes']] == [True, True], first
    assert _hns(winrm_lab) == {'WIN-NODE1': {'type': 'DWord', 'value': 1}, 'WIN-NODE2': {'type': 'DWord', 'value': 1}}
    # the gMSA pod on the changed node is reported for recreation (both hosts map to that node)
    # (other tests' gMSA pods on that node may be listed too)
    assert (POD_NS, gmsa_pod) in {(p['namespace'], p['name']) for p in registry['pods_to_recreate']}, registry
    report = _task(first, 'Report the gMSA pods that must be recreated to get the fix')
    assert f'{POD_NS}/{gmsa_pod}' in report['msg'], report
    preflight = _task(first, 'Check the nodes (read-only)')
    assert [n['verdict'] for n in preflight['nodes']] == ['pass', 'pass'], preflight
    checks = {c['name']: c['status'] for c in preflight['nodes'][0]['checks']}
    assert checks['kubernetes_node'] == 'pass' and checks['domain_membership'] == 'pass', checks

    second = run_playbook(ROLE, extra_vars=nodes_vars)
    assert second.rc == 0, second
    assert _changed_tasks(second) == [], second


def test_preflight_failure_fails_the_role_with_the_fix(run_playbook, nodes_vars, winrm_lab, k8s_lab):
    winrm_lab.put_state('WIN-NODE2', {'domain': {'joined': False, 'name': 'WORKGROUP'}})
    failed = run_playbook(ROLE, extra_vars=nodes_vars)
    assert failed.rc != 0, failed
    message = _task(failed, 'Fail when a node cannot run gMSA pods')['msg']
    assert message.startswith('gmsa_nodes: preflight failed: '), message
    assert 'domain_membership' in message and 'Add-Computer -DomainName contoso.test' in message, message
    assert winrm_lab.entry('WIN-NODE1') not in message  # only the failing node is named

    # only reporting
    report_only = json.loads(json.dumps(nodes_vars))
    report_only['gmsa_nodes']['preflight_fail'] = False
    reported = run_playbook(ROLE, extra_vars=report_only)
    assert reported.rc == 0, reported

    # a node that is not the Windows node of the cluster fails the Node check
    linux = json.loads(json.dumps(nodes_vars))
    winrm_lab.put_state('WIN-NODE2', {'domain': {'joined': True, 'name': 'contoso.test'}})
    linux['gmsa_nodes']['node_names'][winrm_lab.entry('WIN-NODE2')] = k8s_lab.linux_nodes[0]
    wrong_node = run_playbook(ROLE, extra_vars=linux)
    assert wrong_node.rc != 0, wrong_node
    message = _task(wrong_node, 'Fail when a node cannot run gMSA pods')['msg']
    assert 'kubernetes_node' in message and k8s_lab.linux_nodes[0] in message, message


def test_portable_mode_checks_the_ccg_plugin_and_accepts_nodes_outside_the_domain(run_playbook, nodes_vars, winrm_lab):
    guid = '{CCC2A336-D7F3-4818-A213-272B7924213E}'  # the Azure Key Vault ccg plugin
    portable = json.loads(json.dumps(nodes_vars))
    portable['gmsa_nodes'].update(mode='portable', host_account_config={
        'plugin': 'azure_key_vault', 'object_id': '11111111-2222-3333-4444-555555555555',
        'secret_uri': 'https://kv1.vault.azure.net/secrets/gmsa-user'})
    winrm_lab.put_state('WIN-NODE1', {'registry': {f'{CCG_KEY}\\{guid}': {}}})
    winrm_lab.put_state('WIN-NODE2', {'domain': {'joined': False, 'name': 'WORKGROUP'}})  # and without the plugin
    result = run_playbook(ROLE, extra_vars=portable)
    assert result.rc != 0, result
    message = _task(result, 'Fail when a node cannot run gMSA pods')['msg']
    assert 'ccg_plugin' in message and guid in message and winrm_lab.entry('WIN-NODE1') not in message, message

    winrm_lab.put_state('WIN-NODE2', {'registry': {f'{CCG_KEY}\\{guid}': {}}})
    result = run_playbook(ROLE, extra_vars=portable)
    assert result.rc == 0, result
    checks = {c['name']: c for c in _task(result, 'Check the nodes (read-only)')['nodes'][1]['checks']}
    assert checks['domain_membership']['status'] == 'pass' and 'not domain-joined' in checks['domain_membership']['detail']
    assert checks['ccg_plugin']['status'] == 'pass', checks


def test_without_winrm_the_nodes_are_left_alone(run_playbook, nodes_vars, winrm_lab):
    no_winrm = json.loads(json.dumps(nodes_vars))
    del no_winrm['gmsa_nodes']['winrm'], no_winrm['gmsa_nodes']['node_names']
    result = run_playbook(ROLE, extra_vars=no_winrm)
    assert result.rc == 0, result
    assert 'gmsa_nodes.access is none' in _task(result, 'Say that the Windows nodes are left alone')['msg']
    assert _changed_tasks(result) == [] and set(_hns(winrm_lab).values()) == {None}
    assert winrm_lab.journal() == [], 'a command reached the nodes'


def test_bad_variables_fail_before_anything_is_written(run_playbook, nodes_vars, winrm_lab):
    bad = json.loads(json.dumps(nodes_vars))
    bad['gmsa_nodes']['node_names'] = {'win-node1.contoso.test': 'kwok-windows-0'}  # not an entry of winrm.hosts
    result = run_playbook(ROLE, extra_vars=bad)
    assert result.rc != 0, result
    message = _task(result, 'Check the variables beyond their types')['msg']
    assert 'gmsa_nodes.node_names' in message and 'win-node1.contoso.test' in message, message
    typo = json.loads(json.dumps(nodes_vars))
    typo['gmsa_nodes']['winrm']['sheme'] = 'http'  # unknown key
    result = run_playbook(ROLE, extra_vars=typo)
    assert result.rc != 0 and "Validating arguments against arg spec 'main'" in result.stdout and 'sheme' in result.stdout, result
    assert set(_hns(winrm_lab).values()) == {None}


def _publish_agent_report(k8s_lab, node, digest, facts, fixed_at=None):
    """Write node's report as the node agent would (its own token, server-side apply): no HostProcess container
    runs in the lab (kwok runs no containers), so the test stands in for the agent's PowerShell."""
    from test_node_agent import agent_token, publish_report, report
    from kubernetes import client
    publish_report(k8s_lab, agent_token(k8s_lab.api_client()), node, report(node, digest, facts, fixed_at=fixed_at))
    assert client.CoreV1Api(k8s_lab.api_client()).read_namespaced_config_map('report.' + node, 'winkube-gmsa-node-agent')


def test_agent_mode_waits_reports_checks_and_pods(run_playbook, nodes_vars, winrm_lab, k8s_lab, gmsa_pod):
    """gmsa_nodes.access agent: the role installs the node agent, waits for each Windows node's report, fails with
    each failing check and its fix, and lists the gMSA pods started before the agent's fix on their node."""
    from kubernetes import client
    from test_node_agent import healthy_facts, now
    agent = json.loads(json.dumps(nodes_vars))
    del agent['gmsa_nodes']['winrm'], agent['gmsa_nodes']['node_names']
    agent['gmsa_nodes'].update(access='agent', agent={'wait_timeout': 3})
    node = k8s_lab.windows_nodes[0]
    core, apps = client.CoreV1Api(k8s_lab.api_client()), client.AppsV1Api(k8s_lab.api_client())
    try:
        silent = run_playbook(ROLE, extra_vars=agent)
        assert silent.rc != 0, silent
        assert f'no current report from the node agent on {node}' in _task(silent, 'Fail when a Windows node did not report')['msg']
        assert winrm_lab.journal() == [], 'agent mode used WinRM'
        daemonset = apps.read_namespaced_daemon_set('gmsa-node-agent', 'winkube-gmsa-node-agent')
        digest = daemonset.spec.template.metadata.annotations['winkube.gmsa/config-digest']

        _publish_agent_report(k8s_lab, node, digest, healthy_facts('KWOK-WIN0', ubr=1000))
        failing = run_playbook(ROLE, extra_vars=agent)
        assert failing.rc != 0, failing
        message = _task(failing, 'Fail when a node cannot run gMSA pods')['msg']
        assert f'preflight failed: {node}: os_build:' in message and 'KB5000822' in message, message

        _publish_agent_report(k8s_lab, node, digest, healthy_facts('KWOK-WIN0'), fixed_at=now(5))
        passing = run_playbook(ROLE, extra_vars=agent)
        assert passing.rc == 0, passing
        pods = _task(passing, "Report the gMSA pods that started before the agent's fix on their node")['msg']
        assert f'{POD_NS}/{gmsa_pod} on {node}' in pods, pods
        assert _changed_tasks(passing) == [], passing
    finally:
        core.delete_namespace('winkube-gmsa-node-agent')


# After a grant: gmsa_ad adds computers to the host group, gmsa_nodes purges the machine tickets of exactly those
# nodes and reports Test-ADServiceAccount per node and gMSA (host_group's members_added).
GRANT_ROLES = '- hosts: localhost\n  gather_facts: false\n  roles: [winkube.gmsa.gmsa_ad, winkube.gmsa.gmsa_nodes]\n'
GRANT_GROUP, GRANT_GMSA = 'NodesGrantHosts', 'NodesGrant1'
LAB_INVENTORY = str(Path(__file__).resolve().parents[2] / 'playbooks' / 'inventory' / 'lab.yml')


def _computer(samba_lab, name):
    """A computer account in the lab's Samba DC (the fake node's)."""
    if subprocess.run(['samba-tool', 'computer', 'show', name, '-H', samba_lab.env['SAMBA_SAM_LDB']],
                      capture_output=True, check=False).returncode != 0:
        subprocess.run(['samba-tool', 'computer', 'add', name, '-H', samba_lab.env['SAMBA_SAM_LDB']],
                       capture_output=True, check=True)


def _remove_grant_group(samba_lab):
    conn = samba_lab.ldap()
    conn.search(samba_lab.base_dn, f'(sAMAccountName={GRANT_GROUP})', attributes=['cn'])
    for entry in conn.entries:
        conn.delete(entry.entry_dn)


@pytest.fixture
def grant_vars(samba_lab, k8s_lab, winrm_lab):
    """gmsa_ad + gmsa_nodes with a host group this test owns (removed before and after) and one gMSA."""
    winrm_lab.reset()
    _remove_grant_group(samba_lab)
    yield {
        'gmsa_domain': dict(samba_lab.module_args(), kds_root_key={'lab_mode': True}),
        'gmsa_cluster': {'kubeconfig': k8s_lab.kubeconfig},
        'gmsa_nodes': {'host_group': GRANT_GROUP, 'computers': []},
        'gmsa_accounts': [{'name': GRANT_GMSA, 'spns': ['HTTP/nodesgrant1.contoso.test']}],
    }
    _remove_grant_group(samba_lab)


def _with_nodes(grant_vars, computers, **nodes):
    out = json.loads(json.dumps(grant_vars))
    out['gmsa_nodes'].update(computers=computers, **nodes)
    return out


def _commands(winrm_lab):
    return {name: host.get('commands', []) for name, host in winrm_lab.state().items()}


def test_inventory_hosts_purge_exactly_the_added_node_and_test_each_gmsa(run_playbook, grant_vars, winrm_lab, samba_lab):
    """access winrm with the lab inventory's windows_nodes (Ansible's winrm connection plugin): the registry fix and
    preflight on each host, then the ticket purge on exactly the node gmsa_ad just added and Test-ADServiceAccount
    per gMSA; a false answer fails naming node and gMSA; gmsa_nodes.refresh false turns it off."""
    for name in ('WIN-NODE1', 'WIN-NODE2'):
        _computer(samba_lab, name)
    inventory = ('-i', LAB_INVENTORY)
    one = _with_nodes(grant_vars, ['WIN-NODE1$'], access='winrm')

    checked = run_playbook(GRANT_ROLES, extra_vars=one, check=True, args=inventory)
    assert checked.rc == 0, checked
    assert _task(checked, 'Ensure the host group of the Windows nodes')['members_added'] == ['WIN-NODE1$'], checked
    assert set(_hns(winrm_lab).values()) == {None}, 'check mode wrote'
    # check mode: no purge; Test-ADServiceAccount (read-only) on the listed node only
    assert _commands(winrm_lab) == {'WIN-NODE1': [['Test-ADServiceAccount', '-Identity', GRANT_GMSA]], 'WIN-NODE2': []}, \
        [(e['host'], e.get('name')) for e in winrm_lab.journal()]
    winrm_lab.reset()

    first = run_playbook(GRANT_ROLES, extra_vars=one, args=inventory)
    assert first.rc == 0, first
    assert _task(first, 'Ensure the host group of the Windows nodes')['members_added'] == ['WIN-NODE1$']
    assert _hns(winrm_lab) == {'WIN-NODE1': {'type': 'DWord', 'value': 1}, 'WIN-NODE2': {'type': 'DWord', 'value': 1}}
    verdicts = _task(first, 'Check the Windows hosts of the inventory (read-only)')['results']
    assert [(r['item'], r['verdict']) for r in verdicts] == [('WIN-NODE1', 'pass'), ('WIN-NODE2', 'pass')], verdicts
    assert _commands(winrm_lab) == {'WIN-NODE1': ['klist.exe -li 0x3e7 purge', ['Test-ADServiceAccount', '-Identity', GRANT_GMSA]],
                                    'WIN-NODE2': []}
    report = _task(first, 'Report the new grant per node and gMSA (machine tickets purged, Test-ADServiceAccount)')
    assert [r['msg'] for r in report['results']] == [
        f'WIN-NODE1 (WIN-NODE1): tickets purged; Test-ADServiceAccount {GRANT_GMSA}: True'], report
    journal = [e for e in winrm_lab.journal() if e.get('name') == 'node_refresh']
    assert journal and all(e['bootstrap_recognised'] and e['data']['computers'] == ['WIN-NODE1$'] for e in journal)

    again = run_playbook(GRANT_ROLES, extra_vars=one, args=inventory)
    assert again.rc == 0, again
    assert _changed_tasks(again) == [], again
    assert len(_commands(winrm_lab)['WIN-NODE1']) == 2, 'a second run purged again'

    # WIN-NODE2 joins the group; its DC answer is false: the role fails naming node and gMSA, WIN-NODE1 untouched
    winrm_lab.put_state('WIN-NODE2', {'gmsa_access': {GRANT_GMSA: False}})
    both = _with_nodes(grant_vars, ['WIN-NODE1$', 'WIN-NODE2$'], access='winrm')
    failed = run_playbook(GRANT_ROLES, extra_vars=both, args=inventory)
    assert failed.rc != 0, failed
    message = _task(failed, 'Fail when a node just added to the host group cannot use a gMSA')['msg']
    assert f'WIN-NODE2 (WIN-NODE2) gMSA {GRANT_GMSA}' in message and 'WIN-NODE1' not in message, message
    assert 'klist -li 0x3e7 purge' in message and 'RSAT-AD-PowerShell' in message, message
    commands = _commands(winrm_lab)
    assert len(commands['WIN-NODE1']) == 2 and commands['WIN-NODE2'] == [
        'klist.exe -li 0x3e7 purge', ['Test-ADServiceAccount', '-Identity', GRANT_GMSA]], commands

    # refresh false: WIN-NODE2 leaves and joins again without a purge
    assert run_playbook(GRANT_ROLES, extra_vars=_with_nodes(grant_vars, ['WIN-NODE1$'], access='winrm', computers_mode='set',
                                                            refresh=False), args=inventory).rc == 0
    off = run_playbook(GRANT_ROLES, extra_vars=_with_nodes(grant_vars, ['WIN-NODE2$'], access='winrm', refresh=False),
                       args=inventory)
    assert off.rc == 0, off
    assert _task(off, 'Ensure the host group of the Windows nodes')['members_added'] == ['WIN-NODE2$']
    assert _commands(winrm_lab) == commands, 'refresh false purged'


class AgentImitation(threading.Thread):
    """Stands in for the node agents' PowerShell (kwok runs no containers, the lab no HostProcess pod): publishes each
    Windows node's report for the DaemonSet's current configuration and answers the refresh request as the agent
    would (listed when the node's computer is in the request; Test-ADServiceAccount from gmsa_access)."""

    def __init__(self, k8s_lab, gmsa_access):
        super().__init__(daemon=True)
        self.k8s_lab, self.gmsa_access, self.stop = k8s_lab, gmsa_access, threading.Event()
        self.requests = []

    def run(self):
        from kubernetes import client
        from kubernetes.client.rest import ApiException
        from test_node_agent import agent_token, healthy_facts, publish_report, report
        api = self.k8s_lab.api_client()
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        done = None
        while not self.stop.wait(0.5):
            try:
                daemonset = apps.read_namespaced_daemon_set('gmsa-node-agent', 'winkube-gmsa-node-agent')
            except ApiException:
                continue
            digest = daemonset.spec.template.metadata.annotations['winkube.gmsa/config-digest']
            try:
                request = core.read_namespaced_config_map('gmsa-node-agent-refresh', 'winkube-gmsa-node-agent').data
            except ApiException:
                request = None
            if (digest, request) == done:
                continue
            try:
                token = agent_token(api)
            except ApiException:
                continue
            for index, node in enumerate(self.k8s_lab.windows_nodes):
                computer = 'KWOK-WIN%d' % index
                answer = None
                if request:
                    listed = computer + '$' in [c.upper() for c in json.loads(request['computers'])]
                    tests = [{'gmsa': g, 'ok': self.gmsa_access.get(g, True), 'error': None}
                             for g in json.loads(request['gmsas'])] if listed else []
                    answer = {'request_id': request['request_id'], 'computer_name': computer, 'listed': listed,
                              'changed': listed, 'purged': listed, 'tests': tests}
                try:
                    publish_report(self.k8s_lab, token, node, report(node, digest, healthy_facts(computer), refresh=answer))
                except OSError:  # the namespace is being set up or removed
                    continue
            if request:
                self.requests.append(request)
            done = (digest, request)


def test_agent_mode_purges_the_added_node_and_fails_on_a_false_test(run_playbook, grant_vars, winrm_lab, samba_lab, k8s_lab):
    """access agent after a grant: the refresh request names exactly the computer gmsa_ad added; the agents' answers
    are reported per node and gMSA; a false Test-ADServiceAccount fails the role naming node and gMSA."""
    from kubernetes import client
    _computer(samba_lab, 'KWOK-WIN0')
    node = k8s_lab.windows_nodes[0]
    agent = _with_nodes(grant_vars, ['KWOK-WIN0$'], access='agent', agent={'wait_timeout': 60})
    imitation = AgentImitation(k8s_lab, {GRANT_GMSA: False})
    imitation.start()
    try:
        failed = run_playbook(GRANT_ROLES, extra_vars=agent)
        assert failed.rc != 0, failed
        message = _task(failed, 'Fail when a node just added to the host group cannot use a gMSA')['msg']
        assert f'{node} (KWOK-WIN0) gMSA {GRANT_GMSA}' in message, message
        assert imitation.requests and json.loads(imitation.requests[-1]['computers']) == ['KWOK-WIN0$']
        assert json.loads(imitation.requests[-1]['gmsas']) == [GRANT_GMSA]

        _remove_grant_group(samba_lab)  # so the next run adds the computer again
        imitation.gmsa_access[GRANT_GMSA] = True
        passed = run_playbook(GRANT_ROLES, extra_vars=agent)
        assert passed.rc == 0, passed
        rows = _task(passed, 'Report the new grant per node and gMSA (machine tickets purged, Test-ADServiceAccount)')
        assert [r['msg'] for r in rows['results']] == [
            f'{node} (KWOK-WIN0): tickets purged; Test-ADServiceAccount {GRANT_GMSA}: True'], rows
        assert winrm_lab.journal() == [], 'agent mode used WinRM'
    finally:
        imitation.stop.set()
        imitation.join(10)
        client.CoreV1Api(k8s_lab.api_client()).delete_namespace('winkube-gmsa-node-agent')
