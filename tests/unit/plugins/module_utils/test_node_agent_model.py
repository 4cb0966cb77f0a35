"""The node agent's objects and the reading of its reports (module_utils/node_agent/model.py)."""

from __future__ import annotations

import json

from ansible_collections.winkube.gmsa.plugins.module_utils.node_agent import model
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import NODE_REFRESH, PREFLIGHT_FACTS, REGISTRY_DWORD

HOSTILE = "contoso.test'; Remove-Item C:\\ -Recurse; $(whoami) `\"\n"


def _by_kind(objects):
    return {(o['kind'], o['metadata']['name']): o for o in objects}


def test_daemonset_is_a_hostprocess_agent_pinned_to_windows():
    objects = _by_kind(model.desired_objects())
    daemonset = objects[('DaemonSet', model.NAME)]
    pod = daemonset['spec']['template']['spec']
    assert pod['nodeSelector'] == {'kubernetes.io/os': 'windows'}
    assert pod['hostNetwork'] is True
    assert pod['securityContext']['windowsOptions'] == {'hostProcess': True, 'runAsUserName': 'NT AUTHORITY\\SYSTEM'}
    assert pod['containers'][0]['image'] == model.DEFAULT_IMAGE
    assert objects[('Namespace', model.DEFAULT_NAMESPACE)]['metadata']['labels']['pod-security.kubernetes.io/enforce'] == 'privileged'


def test_least_rbac_is_own_namespace_configmaps_only():
    objects = _by_kind(model.desired_objects(namespace='agents'))
    role = objects[('Role', model.NAME)]
    assert role['metadata']['namespace'] == 'agents'
    assert role['rules'] == [{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get', 'create', 'patch']}]
    assert not any(o['kind'] in ('ClusterRole', 'ClusterRoleBinding') for o in objects.values())


def test_user_values_reach_the_agent_as_data_never_as_script_text():
    plain = _by_kind(model.desired_objects(config=model.agent_config(domain='contoso.test')))
    hostile = _by_kind(model.desired_objects(config=model.agent_config(domain=HOSTILE, mode='portable')))
    scripts = hostile[('ConfigMap', model.SCRIPTS_CONFIGMAP)]['data']
    assert scripts == plain[('ConfigMap', model.SCRIPTS_CONFIGMAP)]['data']
    assert scripts['registry_dword.ps1'] == REGISTRY_DWORD.text
    assert scripts['preflight_facts.ps1'] == PREFLIGHT_FACTS.text
    assert scripts['node_refresh.ps1'] == NODE_REFRESH.text
    assert all(HOSTILE not in text for text in scripts.values())
    assert hostile[('ConfigMap', model.CONFIG_CONFIGMAP)]['data']['domain'] == HOSTILE
    container = hostile[('DaemonSet', model.NAME)]['spec']['template']['spec']['containers'][0]
    assert HOSTILE not in json.dumps(container['command'])
    env = {e['name']: e for e in container['env']}
    assert env['WINKUBE_DOMAIN']['valueFrom']['configMapKeyRef'] == {'name': model.CONFIG_CONFIGMAP, 'key': 'domain'}


def test_config_change_rolls_the_pods():
    one = _by_kind(model.desired_objects(config=model.agent_config(domain='a.test')))
    two = _by_kind(model.desired_objects(config=model.agent_config(domain='b.test')))
    annotation = 'winkube.gmsa/config-digest'
    assert (one[('DaemonSet', model.NAME)]['spec']['template']['metadata']['annotations'][annotation]
            != two[('DaemonSet', model.NAME)]['spec']['template']['metadata']['annotations'][annotation])


def test_bad_options_are_named():
    errors = model.check_options('Bad_NS', 'has space', 5)
    assert len(errors) == 3 and 'namespace' in errors[0] and 'image' in errors[1] and 'interval' in errors[2]
    assert model.check_options(model.DEFAULT_NAMESPACE, model.DEFAULT_IMAGE, 300) == []


def _node(name):
    return {'metadata': {'name': name, 'labels': {'kubernetes.io/os': 'windows'}}}


def _facts(build=17763, ubr=1817):
    return {'computer_name': 'WIN1', 'os': {'build': build, 'ubr': ubr, 'caption': 'Windows Server'},
            'domain': {'joined': True, 'name': 'contoso.test'},
            'services': [{'name': 'containerd', 'state': 'Running', 'version': 'containerd v1.7.13'}],
            'dns': {'name': 'contoso.test', 'addresses': ['10.0.0.1'], 'error': None},
            'dc_srv': {'name': '_ldap._tcp.dc._msdcs.contoso.test', 'targets': ['dc1.contoso.test'], 'error': None},
            'ports': [{'target': 'dc1.contoso.test', 'port': p, 'open': True, 'error': None} for p in (88, 389, 636)],
            'hns_compartment_namespace': 1,
            'ccg': {'com_classes_key': True, 'com_classes': [], 'plugins': [], 'ccg_exe': True}}


def _report(node, digest, facts, fixed_at=None, refresh=None):
    return {'metadata': {'name': 'report.' + node},
            'data': {'report.json': json.dumps({'version': 'v1', 'node': node, 'config_digest': digest,
                                                'computer_name': node.upper(), 'facts': facts, 'error': None,
                                                'fixed_at': fixed_at, 'refresh': refresh})}}


def test_reports_give_checks_waiting_and_pods_started_before_the_fix():
    data, digest = model.agent_config()
    pods = [{'metadata': {'namespace': 'web', 'name': name},
             'spec': {'nodeName': 'win1', 'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': 'gmsa-web'}}},
             'status': {'phase': 'Running', 'startTime': started}}
            for name, started in (('old', '2026-12-05T10:00:00Z'), ('new', '2026-12-05T12:00:00Z'))]
    results, waiting = model.read_reports(
        [_node('win1'), _node('win2'), _node('win3')],
        [_report('win1', digest, _facts(), fixed_at='2026-12-05T11:00:00Z'),
         _report('win2', digest, _facts(ubr=1000)),
         _report('win3', 'stale', _facts())],
        digest, 'domain_joined', 'contoso.test', [], pods=pods)
    by_node = {r['node_name']: r for r in results}
    assert waiting == ['win3']
    assert by_node['win1']['verdict'] == 'pass'
    assert [p['name'] for p in by_node['win1']['pods_to_recreate']] == ['old']
    assert by_node['win2']['verdict'] == 'fail'
    problems = model.problems(results)
    assert len(problems) == 1 and problems[0].startswith('win2: os_build: ') and '(fix: ' in problems[0]


def test_refresh_waits_only_for_the_listed_computers():
    data, digest = model.agent_config()
    answered = {'request_id': 'r1', 'listed': True, 'purged': True, 'tests': [{'gmsa': 'WebApp1', 'ok': True}]}
    reports = [_report('win1', digest, _facts(), refresh=answered), _report('win2', digest, _facts())]
    nodes = [_node('win1'), _node('win2')]
    assert model.read_reports(nodes, reports, digest, 'domain_joined', None, [], request_id='r1',
                              computers=['WIN1$'])[1] == []
    assert model.read_reports(nodes, reports, digest, 'domain_joined', None, [], request_id='r1',
                              computers=['WIN1$', 'win2$'])[1] == ['win2']


def test_portable_mode_accepts_nodes_outside_the_domain():
    data, digest = model.agent_config(mode='portable')
    facts = dict(_facts(), domain={'joined': False, 'name': 'WORKGROUP'})
    reports = [_report('win1', digest, facts)]
    for mode, status in (('portable', 'pass'), ('domain_joined', 'fail')):
        results, waiting = model.read_reports([_node('win1')], reports, digest, mode, None, [])
        checks = {c['name']: c['status'] for c in results[0]['checks']}
        assert checks['domain_membership'] == status, (mode, checks)
