"""The node agent (winkube.gmsa.node_agent) against the lab's real API server, controllers and kwok fake nodes.

What runs for real: kube-apiserver (RBAC authorizer, Pod Security admission, server-side apply), the DaemonSet
controller and kube-scheduler placing the agent's pods, kwok marking them Running. What does not: kwok runs no
container, so no HostProcess container and no PowerShell ran here. The reports are written by this test the way
the agent writes them (server-side apply of its report ConfigMap with the agent's own service-account token), so
the agent's RBAC and the collection's reading of reports are real, the agent's PowerShell is not.
"""

from __future__ import annotations

import datetime
import json
import ssl
import time
import urllib.request

import pytest

from kubernetes import client
from kubernetes.client.rest import ApiException

# The tests create gMSA pods on kwok nodes; a gMSA webhook configuration an earlier test left active would
# judge them (and refuse a pod naming a credential spec its service account may not use).
pytestmark = pytest.mark.usefixtures('without_gmsa_webhooks')

NS = 'winkube-gmsa-node-agent'
AGENT = 'gmsa-node-agent'
HEADER = """
- hosts: localhost
  gather_facts: false
  environment:
    K8S_AUTH_KUBECONFIG: "{{ kubeconfig }}"
  tasks:
"""
HOSTILE_DOMAIN = "contoso.test'; Remove-Item C:\\ -Recurse; $(whoami) `\""


def play(tasks):
    return HEADER + '\n'.join('    ' + line for line in tasks.strip('\n').splitlines()) + '\n'


def wait_for(predicate, timeout=60, what='condition'):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f'timed out after {timeout}s waiting for {what} (last: {last!r})')


@pytest.fixture(scope='module')
def api(k8s_lab):
    return k8s_lab.api_client()


@pytest.fixture
def run(run_playbook, k8s_lab):
    def _run(tasks, extra=None, **kwargs):
        variables = dict(k8s_lab.ansible_vars())
        variables.update(extra or {})
        return run_playbook(play(tasks), extra_vars=variables, **kwargs)
    return _run


def agent_pods(api):
    pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector='app.kubernetes.io/name=' + AGENT).items
    return {p.spec.node_name: p for p in pods if p.spec.node_name and not p.metadata.deletion_timestamp}


def fake_node(name, os_name):
    return {'apiVersion': 'v1', 'kind': 'Node',
            'metadata': {'name': name, 'annotations': {'kwok.x-k8s.io/node': 'fake'},
                         'labels': {'kubernetes.io/os': os_name, 'kubernetes.io/arch': 'amd64',
                                    'kubernetes.io/hostname': name, 'type': 'kwok'}},
            'status': {'allocatable': {'cpu': '8', 'memory': '16Gi', 'pods': '110'},
                       'capacity': {'cpu': '8', 'memory': '16Gi', 'pods': '110'}}}


def allowed(api, namespace, verb, resource, name=None):
    review = {'apiVersion': 'authorization.k8s.io/v1', 'kind': 'SubjectAccessReview',
              'spec': {'user': f'system:serviceaccount:{NS}:{AGENT}',
                       'groups': ['system:serviceaccounts', f'system:serviceaccounts:{NS}', 'system:authenticated'],
                       'resourceAttributes': {'namespace': namespace, 'verb': verb, 'resource': resource,
                                              'name': name}}}
    answer = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return answer.status.allowed


def agent_token(api):
    request = {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenRequest', 'spec': {'expirationSeconds': 600}}
    return client.CoreV1Api(api).create_namespaced_service_account_token(AGENT, NS, request).status.token


def publish_report(k8s_lab, token, node, report):
    """What the agent's Invoke-WinkubeApi 'PATCH' does: server-side apply of report.<node> with its own token."""
    name = 'report.' + node
    body = {'apiVersion': 'v1', 'kind': 'ConfigMap',
            'metadata': {'name': name, 'namespace': NS,
                         'labels': {'winkube.gmsa/node-agent-report': 'v1', 'app.kubernetes.io/managed-by': 'winkube.gmsa'}},
            'data': {'report.json': json.dumps(report)}}
    url = f'{k8s_lab.api_url}/api/v1/namespaces/{NS}/configmaps/{name}?fieldManager=winkube-gmsa-node-agent&force=true'
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method='PATCH', headers={
        'Authorization': 'Bearer ' + token, 'Content-Type': 'application/apply-patch+yaml'})
    context = ssl.create_default_context(cafile=k8s_lab.ca_cert)
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        assert answer.status in (200, 201)


def now(offset=0):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def healthy_facts(computer, ubr=1817):
    return {'computer_name': computer, 'dns_host_name': computer.lower(),
            'os': {'caption': 'Microsoft Windows Server 2019 Datacenter', 'version': '10.0.17763', 'build': 17763,
                   'ubr': ubr, 'installation_type': 'Server Core'},
            'domain': {'joined': True, 'name': 'contoso.test'}, 'hns_compartment_namespace': 1,
            'services': [{'name': 'containerd', 'state': 'Running', 'start_mode': 'Auto',
                          'version': 'containerd github.com/containerd/containerd v1.7.13 7c3a'}],
            'dns': {'name': 'contoso.test', 'addresses': ['10.0.0.4'], 'error': None},
            'dc_srv': {'name': '_ldap._tcp.dc._msdcs.contoso.test', 'targets': ['dc1.contoso.test'], 'error': None},
            'ports': [{'target': 'dc1.contoso.test', 'port': p, 'open': True, 'error': None} for p in (88, 389, 636)],
            'ccg': {'com_classes_key': True, 'com_classes': [], 'plugins': [], 'ccg_exe': True}}


def report(node, digest, facts, fixed_at=None, refresh=None):
    return {'version': 'v1', 'node': node, 'config_digest': digest, 'error': None, 'computer_name': facts['computer_name'],
            'registry': {'changed': True, 'written': True, 'before': None, 'after': {'type': 'DWord', 'value': 1}},
            'facts': facts, 'fixed_at': fixed_at, 'refresh': refresh, 'reported_at': now()}


@pytest.fixture
def clean(api, k8s_lab):
    """No agent and no extra nodes before and after the test."""
    core = client.CoreV1Api(api)

    def remove():
        for name in ('kwok-windows-late', 'kwok-linux-late'):
            try:
                core.delete_node(name)
            except ApiException as exc:
                assert exc.status == 404
        try:
            core.delete_namespace(NS)
        except ApiException as exc:
            assert exc.status == 404

        def gone():
            try:
                core.read_namespace(NS)
                return False
            except ApiException as exc:
                return exc.status == 404
        wait_for(gone, 120, 'namespace deletion')
    remove()
    yield
    remove()


INSTALL = """
- name: agent
  winkube.gmsa.node_agent:
    domain: "{{ domain }}"
    wait: false
"""


def test_install_objects_rbac_scheduling_late_nodes_and_removal(run, api, k8s_lab, clean):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    check = run(INSTALL, {'domain': HOSTILE_DOMAIN}, check=True)
    assert check.rc == 0, check
    assert check.results['agent']['changed'] is True
    with pytest.raises(ApiException) as missing:
        core.read_namespace(NS)
    assert missing.value.status == 404, 'check mode created the namespace'

    first = run(INSTALL, {'domain': HOSTILE_DOMAIN}, diff=True)
    assert first.rc == 0, first
    assert first.results['agent']['changed'] is True
    assert {o['kind'] for o in first.results['agent']['objects'] if o['action'] == 'created'} == {
        'Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'DaemonSet'}
    again = run(INSTALL, {'domain': HOSTILE_DOMAIN})
    assert again.rc == 0 and again.results['agent']['changed'] is False, again

    # objects as docs/node-agent.md describes them
    daemonset = apps.read_namespaced_daemon_set(AGENT, NS)
    pod = daemonset.spec.template.spec
    assert pod.node_selector == {'kubernetes.io/os': 'windows'}
    assert pod.host_network is True
    assert pod.security_context.windows_options.host_process is True
    assert pod.security_context.windows_options.run_as_user_name == 'NT AUTHORITY\\SYSTEM'
    assert pod.containers[0].image == 'mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:v1.0.0'
    config = core.read_namespaced_config_map('gmsa-node-agent-config', NS).data
    assert config['domain'] == HOSTILE_DOMAIN
    scripts = core.read_namespaced_config_map('gmsa-node-agent-scripts', NS).data
    assert set(scripts) == {'agent.ps1', 'registry_dword.ps1', 'preflight_facts.ps1', 'node_refresh.ps1'}
    assert all('Remove-Item C:' not in text for text in scripts.values())
    assert core.read_namespace(NS).metadata.labels['pod-security.kubernetes.io/enforce'] == 'privileged'

    # least RBAC: its own namespace's ConfigMaps (get, create, patch), nothing else
    assert allowed(api, NS, 'patch', 'configmaps', 'report.kwok-windows-0')
    assert allowed(api, NS, 'create', 'configmaps')
    assert allowed(api, NS, 'get', 'configmaps', 'gmsa-node-agent-refresh')
    for namespace, verb, resource in ((NS, 'list', 'configmaps'), (NS, 'delete', 'configmaps'),
                                      (NS, 'get', 'secrets'), ('default', 'patch', 'configmaps'),
                                      (None, 'patch', 'nodes'), (None, 'patch', 'nodes/status'),
                                      ('kube-system', 'get', 'configmaps'), (NS, 'update', 'daemonsets')):
        assert not allowed(api, namespace, verb, resource), (namespace, verb, resource)

    # scheduling: every Windows node, never a Linux node
    windows, linux = set(k8s_lab.windows_nodes), set(k8s_lab.linux_nodes)
    wait_for(lambda: set(agent_pods(api)) == windows, 60, 'agent pods on the Windows nodes')
    # a node that joins later gets the agent without any playbook run; a Linux node does not
    core.create_node(fake_node('kwok-windows-late', 'windows'))
    core.create_node(fake_node('kwok-linux-late', 'linux'))
    placed = wait_for(lambda: (set(agent_pods(api)) == windows | {'kwok-windows-late'}) and agent_pods(api), 90,
                      'an agent pod on the late Windows node')
    assert not (set(placed) & (linux | {'kwok-linux-late'}))
    wait_for(lambda: agent_pods(api)['kwok-windows-late'].status.phase == 'Running', 60, 'kwok runs the pod')

    removed = run("""
- name: agent
  winkube.gmsa.node_agent:
    state: absent
""")
    assert removed.rc == 0 and removed.results['agent']['changed'] is True, removed
    with pytest.raises(ApiException):
        apps.read_namespaced_daemon_set(AGENT, NS)


REPORTS = """
- name: agent
  winkube.gmsa.node_agent:
    domain: contoso.test
    wait_timeout: "{{ timeout }}"
    fail_on: "{{ fail_on }}"
  register: agent
  ignore_errors: true
"""


def test_reports_are_read_checked_and_pods_before_the_fix_listed(run, api, k8s_lab, clean):
    core = client.CoreV1Api(api)
    installed = run(INSTALL, {'domain': 'contoso.test'})
    assert installed.rc == 0, installed
    node = k8s_lab.windows_nodes[0]
    digest = apps_digest(api)

    # no report yet: the module waits, then names the node
    waiting = run(REPORTS, {'timeout': 3, 'fail_on': 'fail'})
    assert waiting.results['agent']['failed'] is True
    assert node in waiting.results['agent']['msg'] and 'no current report' in waiting.results['agent']['msg']

    # a gMSA pod started before the agent's fix on that node must be listed; kube-system is outside the webhook
    pod = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'agent-gmsa-pod', 'namespace': 'kube-system'},
           'spec': {'nodeName': node, 'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': 'gmsa-webapp1'}},
                    'containers': [{'name': 'app', 'image': 'example/iis:ltsc2019'}]}}
    try:
        core.delete_namespaced_pod('agent-gmsa-pod', 'kube-system', grace_period_seconds=0)
    except ApiException:
        pass
    wait_for(lambda: not [p for p in core.list_namespaced_pod('kube-system').items
                          if p.metadata.name == 'agent-gmsa-pod'], 60, 'old pod gone')
    core.create_namespaced_pod('kube-system', pod)
    try:
        time.sleep(1.5)
        token = agent_token(api)
        publish_report(k8s_lab, token, node, report(node, digest, healthy_facts('KWOK-WIN0'), fixed_at=now(1)))
        good = run(REPORTS, {'timeout': 30, 'fail_on': 'fail'})
        result = good.results['agent']
        assert not result.get('failed'), good
        entry = {n['node_name']: n for n in result['nodes']}[node]
        assert entry['verdict'] == 'pass' and entry['current'] is True
        # every running gMSA pod on the node started before the fix: this test's, and any an earlier test left there
        listed = {(p['namespace'], p['name']) for p in result['pods_to_recreate']}
        assert ('kube-system', 'agent-gmsa-pod') in listed
        assert listed == gmsa_pods_on(core, node)

        # a failing node: each failing check with its fix
        publish_report(k8s_lab, token, node, report(node, digest, healthy_facts('KWOK-WIN0', ubr=1000)))
        bad = run(REPORTS, {'timeout': 30, 'fail_on': 'fail'})
        assert bad.results['agent']['failed'] is True
        assert f'{node}: os_build:' in bad.results['agent']['msg'] and 'KB5000822' in bad.results['agent']['msg']
    finally:
        core.delete_namespaced_pod('agent-gmsa-pod', 'kube-system', grace_period_seconds=0)


def gmsa_pods_on(core, node):
    """(namespace, name) of the pods on node, not finished, that name a credential spec (pod or container level)."""
    def names_gmsa(pod):
        options = [(pod.spec.security_context.windows_options if pod.spec.security_context else None)]
        options += [c.security_context.windows_options if c.security_context else None for c in pod.spec.containers]
        return any(o is not None and o.gmsa_credential_spec_name for o in options)

    return {(p.metadata.namespace, p.metadata.name)
            for p in core.list_pod_for_all_namespaces(field_selector='spec.nodeName=%s' % node).items
            if p.status.phase not in ('Succeeded', 'Failed') and names_gmsa(p)}


def apps_digest(api):
    daemonset = client.AppsV1Api(api).read_namespaced_daemon_set(AGENT, NS)
    return daemonset.spec.template.metadata.annotations['winkube.gmsa/config-digest']


REFRESH = """
- name: agent
  winkube.gmsa.node_agent:
    domain: contoso.test
    wait_timeout: 3
    refresh:
      computers: ["KWOK-WIN0$"]
      gmsas: "{{ gmsas }}"
      request_id: "{{ request_id }}"
  register: agent
  ignore_errors: true
"""


def test_refresh_request_reaches_the_agents_as_data_and_answers_are_reported_per_node_and_gmsa(run, api, k8s_lab, clean):
    """After a grant: the request (computers, gMSAs) is a ConfigMap the agents read; the module waits only for the
    listed computers' answers and reports per node and gMSA. The answer is written by the test as the agent would."""
    core = client.CoreV1Api(api)
    assert run(INSTALL, {'domain': 'contoso.test'}).rc == 0
    node = k8s_lab.windows_nodes[0]
    digest = apps_digest(api)
    token = agent_token(api)
    gmsas = ['WebApp1', HOSTILE_DOMAIN]
    publish_report(k8s_lab, token, node, report(node, digest, healthy_facts('KWOK-WIN0')))

    unanswered = run(REFRESH, {'gmsas': gmsas, 'request_id': 'grant-1'})
    assert unanswered.results['agent']['failed'] is True and node in unanswered.results['agent']['msg'], unanswered
    request = core.read_namespaced_config_map('gmsa-node-agent-refresh', NS).data
    assert request == {'request_id': 'grant-1', 'computers': '["KWOK-WIN0$"]', 'gmsas': json.dumps(gmsas), 'purge': 'true'}

    answer = {'request_id': 'grant-1', 'computer_name': 'KWOK-WIN0', 'listed': True, 'changed': True, 'purged': True,
              'tests': [{'gmsa': 'WebApp1', 'ok': True, 'error': None},
                        {'gmsa': HOSTILE_DOMAIN, 'ok': False, 'error': 'Cannot find an object with identity'}]}
    publish_report(k8s_lab, token, node, report(node, digest, healthy_facts('KWOK-WIN0'), refresh=answer))
    answered = run(REFRESH, {'gmsas': gmsas, 'request_id': 'grant-1'})
    result = answered.results['agent']
    assert not result.get('failed'), answered
    assert result['refresh'] == [
        {'node_name': node, 'computer_name': 'KWOK-WIN0', 'purged': True, 'gmsa': 'WebApp1', 'ok': True, 'error': None},
        {'node_name': node, 'computer_name': 'KWOK-WIN0', 'purged': True, 'gmsa': HOSTILE_DOMAIN, 'ok': False,
         'error': 'Cannot find an object with identity'}]
