"""pod_gmsa_check through ansible-playbook against the real API server, exec served by kwok.

The API server proxies each pods/exec to kwok (verified TLS, lab CA), which runs the imitation nltest.exe /
nslookup.exe of lab/k8s/fake-windows-tools on this host; the container name picks the imitation's scenario.
What the imitations print is shaped like the Kubernetes docs' examples; this proves the exec path, argv
handling, parsing and diagnosis, not the real Windows tools.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kubernetes import client  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

NS = 'gmsa-ladder'
DOMAIN = 'contoso.test'
CREDSPEC_JSON = '{"CmsPlugins":["ActiveDirectory"],"DomainJoinConfig":{"DnsName":"contoso.test"}}'
HEADER = """
- hosts: localhost
  gather_facts: false
  environment:
    K8S_AUTH_KUBECONFIG: "{{ kubeconfig }}"
  tasks:
"""
# pod name -> (container name = imitation scenario, credential spec: 'filled', 'name-only' or None)
PODS = {
    'healthy': ('healthy', 'filled'),
    'nocred': ('no-credspec', 'filled'),
    'nodns': ('dns-broken', 'filled'),
    'broken': ('trust-broken', 'filled'),
    'resettable': ('trust-reset-fixes', 'filled'),
    'plain': ('healthy', None),
    'unfilled': ('healthy', 'name-only'),
}


def play(tasks: str) -> str:
    return HEADER + '\n'.join('    ' + line for line in tasks.strip('\n').splitlines()) + '\n'


def pod_manifest(name, container, credspec):
    options = {}
    if credspec:
        options['gmsaCredentialSpecName'] = 'gmsa-webapp1'
    if credspec == 'filled':
        options['gmsaCredentialSpec'] = CREDSPEC_JSON
    spec = {'nodeSelector': {'kubernetes.io/os': 'windows'},
            'containers': [{'name': 'sidecar', 'image': 'mcr.microsoft.com/oss/kubernetes/pause:3.9'},
                           {'name': container, 'image': 'mcr.microsoft.com/windows/servercore:ltsc2022'}]}
    if options:
        spec['containers'][1]['securityContext'] = {'windowsOptions': options}
    return {'apiVersion': 'v1', 'kind': 'Pod',
            'metadata': {'name': name, 'labels': {'app': 'ladder', 'case': name}}, 'spec': spec}


@pytest.fixture(scope='module')
def core(k8s_lab, without_gmsa_webhooks):
    api = client.CoreV1Api(k8s_lab.api_client())
    try:
        api.create_namespace({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    for name, (container, credspec) in PODS.items():
        api.create_namespaced_pod(NS, pod_manifest(name, container, credspec))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        phases = [p.status.phase for p in api.list_namespaced_pod(NS, label_selector='app=ladder').items]
        if len(phases) == len(PODS) and set(phases) == {'Running'}:
            break
        time.sleep(0.5)
    else:
        raise AssertionError('the ladder pods did not run: %s' % phases)
    return api


@pytest.fixture
def run(run_playbook, k8s_lab):
    def _run(tasks, **kwargs):
        return run_playbook(play(tasks), extra_vars=k8s_lab.ansible_vars(), **kwargs)
    return _run


def check_task(extra, name='Check'):
    lines = ['- name: %s' % name, '  winkube.gmsa.pod_gmsa_check:', '    namespace: %s' % NS,
             '    domain: %s' % DOMAIN]
    lines += ['    %s' % line for line in extra.strip('\n').splitlines()]
    lines += ['  register: out', '  ignore_errors: true']
    return '\n'.join(lines)


def by_name(result):
    return dict((p['name'], p) for p in result['pods'])


def test_healthy_pod(core, run):
    res = run(check_task('pods: [healthy]'))
    out = res.results['Check']
    assert not out.get('failed'), res
    assert out['changed'] is False and out['healthy'] is True
    pod = out['pods'][0]
    assert pod['container'] == 'healthy'  # the container with its own credential spec, not the first one
    assert pod['credential_spec'] == 'gmsa-webapp1' and pod['credential_spec_filled'] is True
    assert pod['node'] == 'kwok-windows-0' and pod['phase'] == 'Running'
    assert [s['name'] for s in pod['steps']] == ['parent_domain', 'dns', 'secure_channel']
    assert [s['command'] for s in pod['steps']] == [['nltest.exe', '/parentdomain'], ['nslookup.exe', DOMAIN],
                                                    ['nltest.exe', '/query']]
    assert all(s['status'] == 'pass' and s['exit_code'] == 0 for s in pod['steps']), pod['steps']
    assert 'NERR_Success' in pod['steps'][2]['stdout']
    assert pod['steps'][0]['parsed']['domain'] == DOMAIN
    assert pod['steps'][1]['parsed']['addresses'] == ['10.245.0.10']
    assert pod['diagnosis']['status'] == 'healthy' and pod['diagnosis']['next_step'] is None


def test_selector_diagnoses_every_pod(core, run):
    res = run(check_task('label_selector: app=ladder\nfail_on: never'))
    out = res.results['Check']
    assert not out.get('failed'), res
    assert out['changed'] is False and out['healthy'] is False
    pods = by_name(out)
    assert sorted(pods) == sorted(PODS)
    stages = dict((name, pod['diagnosis']['stage']) for name, pod in pods.items())
    assert stages == {'healthy': 'healthy', 'nocred': 'credential_spec_not_applied', 'nodns': 'dns',
                      'broken': 'secure_channel', 'resettable': 'secure_channel', 'plain': 'no_credential_spec',
                      'unfilled': 'credential_spec_not_expanded'}
    nocred = pods['nocred']['steps']
    assert len(nocred) == 1 and nocred[0]['status'] == 'fail'
    assert nocred[0]['parsed']['status_code'] == 1722 and nocred[0]['parsed']['status'] == 'RPC_S_SERVER_UNAVAILABLE'
    assert 'node_preflight' in pods['nocred']['diagnosis']['next_step']
    assert [s['status'] for s in pods['nodns']['steps']] == ['pass', 'fail']
    assert "can't find" in pods['nodns']['diagnosis']['detail']
    assert pods['broken']['steps'][-1]['parsed']['status_code'] == 1722
    assert 'sc_reset: true' in pods['broken']['diagnosis']['next_step']
    assert pods['plain']['steps'] == [] and pods['unfilled']['steps'] == []  # decided from the pod, no exec


def test_fail_on_problem_names_the_next_step(core, run):
    res = run(check_task('pods: [healthy, nodns, missing]'))
    out = res.results['Check']
    assert out.get('failed') is True
    assert 'gmsa-ladder/nodns' in out['msg'] and 'cannot resolve contoso.test' in out['msg']
    assert 'gmsa-ladder/missing: the pod does not exist' in out['msg']
    assert 'gmsa-ladder/healthy' not in out['msg']
    assert by_name(out)['healthy']['diagnosis']['status'] == 'healthy'


def test_sc_reset_check_mode_then_repair(core, run, k8s_lab):
    marker = Path(k8s_lab.state_dir) / 'fake-tools' / 'fake-nltest-trust-reset-fixes.reset'
    if marker.exists():
        os.unlink(marker)
    res = run(check_task('pods: [resettable]\nsc_reset: true\nfail_on: never'), check=True)
    out = res.results['Check']
    assert not out.get('failed'), res
    pod = out['pods'][0]
    assert out['changed'] is False and pod['reset_performed'] is False
    assert pod['steps'][-1]['name'] == 'sc_reset' and pod['steps'][-1]['status'] == 'skip'
    assert pod['diagnosis']['stage'] == 'secure_channel'
    assert not marker.exists()  # the imitation's record of a reset: none happened

    res = run(check_task('pods: [resettable]\nsc_reset: true'))
    out = res.results['Check']
    assert not out.get('failed'), res
    pod = out['pods'][0]
    assert out['changed'] is True and pod['reset_performed'] is True and marker.exists()
    assert [s['name'] for s in pod['steps']] == ['parent_domain', 'dns', 'secure_channel', 'sc_reset',
                                                 'secure_channel_after_reset']
    assert pod['steps'][3]['command'] == ['nltest.exe', '/sc_reset:contoso.test']
    assert pod['steps'][3]['parsed']['trusted_dc'] == 'dc1.contoso.test'
    assert pod['diagnosis']['status'] == 'repaired' and 'netlogon_restart_hook' in pod['diagnosis']['next_step']

    # the secure channel is up now: a second run has nothing to reset
    res = run(check_task('pods: [resettable]\nsc_reset: true'))
    out = res.results['Check']
    assert out['changed'] is False and out['pods'][0]['diagnosis']['stage'] == 'healthy'


def test_sc_reset_that_does_not_help(core, run):
    res = run(check_task('pods: [broken]\nsc_reset: true\nfail_on: never'))
    out = res.results['Check']
    pod = out['pods'][0]
    assert out['changed'] is True and pod['reset_performed'] is True
    assert pod['steps'][3]['status'] == 'fail' and pod['steps'][3]['parsed']['status'] == 'ERROR_NO_LOGON_SERVERS'
    assert pod['diagnosis']['stage'] == 'secure_channel_reset_failed'
    assert 'retrieve the gMSA' in pod['diagnosis']['next_step']


def test_exec_failures_are_reported(core, run):
    # a container without the tools: the sidecar is matched by the lab's default rule (healthy), so use a
    # container that does not exist instead; and a namespace without pods for the selector
    res = run(check_task('pods: [healthy]\ncontainer: nosuch\nfail_on: never'))
    pod = res.results['Check']['pods'][0]
    assert pod['diagnosis']['stage'] == 'exec_failed' and 'no container nosuch' in pod['diagnosis']['detail']
    res = run(check_task('label_selector: app=nothing'))
    assert res.results['Check']['failed'] is True
    assert 'no pod in namespace gmsa-ladder matches' in res.results['Check']['msg']


@pytest.mark.parametrize('extra, message', [
    ('pods: [healthy]\ndomain: "contoso.test /sc_reset:evil"', 'is not the DNS name'),
    ('pods: [healthy]\ndomain: "-contoso.test"', 'is not the DNS name'),
    ('pods: [healthy]\ndomain: contoso', 'is not the DNS name'),
    ('pods: [healthy]\nlabel_selector: app=ladder', 'mutually exclusive'),
    ('pods: ["Bad_Name"]', 'pods'),
    ('pods: [healthy]\ntimeout: 0', 'timeout must be at least 1'),
])
def test_bad_input_runs_nothing(core, run, k8s_lab, extra, message):
    tasks = check_task(extra).replace('    domain: %s\n' % DOMAIN, '', 1 if 'domain:' in extra else 0)
    res = run(tasks)
    out = res.results['Check']
    assert out.get('failed') is True and message in out['msg'], out
    assert not out.get('pods')


# --- workload_gmsa's netlogon restart hook (the docs' fix when nltest /sc_reset repairs a pod) ----------------

HOOK_COMMAND = ['powershell.exe', '-command',
                "do { Restart-Service -Name netlogon } while ( $($Result = (nltest.exe /query); if ($Result -like "
                "'*0x0 NERR_Success*') {return $true} else {return $false}) -eq $false)"]


def deployment(name, containers):
    return {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': name, 'namespace': NS},
            'spec': {'replicas': 1, 'selector': {'matchLabels': {'app': name}}, 'template': {
                'metadata': {'labels': {'app': name}},
                'spec': {'nodeSelector': {'kubernetes.io/os': 'windows'}, 'containers': containers}}}}


def hooks_of(apps, name):
    dep = apps.read_namespaced_deployment(name, NS)
    return dict((c.name, c.lifecycle.post_start._exec.command if c.lifecycle and c.lifecycle.post_start else None)
                for c in dep.spec.template.spec.containers)


def workload_task(extra):
    return """
- name: Wire
  winkube.gmsa.workload_gmsa:
    workloads:
      - {namespace: %s, name: hooked, credential_spec: gmsa-webapp1%s}
  register: out
  ignore_errors: true
""" % (NS, extra)


def test_workload_netlogon_restart_hook(core, run, k8s_lab):
    apps = client.AppsV1Api(k8s_lab.api_client())
    apps.create_namespaced_deployment(NS, deployment('hooked', [{'name': 'iis', 'image': 'example/iis'},
                                                                {'name': 'log', 'image': 'example/log'}]))
    generation = apps.read_namespaced_deployment('hooked', NS).metadata.generation

    res = run(workload_task(', netlogon_restart_hook: true'), check=True, diff=True)
    out = res.results['Wire']
    assert not out.get('failed') and out['changed'] is True, res
    assert hooks_of(apps, 'hooked') == {'iis': None, 'log': None}  # check mode wrote nothing
    assert apps.read_namespaced_deployment('hooked', NS).metadata.generation == generation

    res = run(workload_task(', netlogon_restart_hook: true'), diff=True)
    out = res.results['Wire']
    assert not out.get('failed') and out['changed'] is True, res
    assert hooks_of(apps, 'hooked') == {'iis': HOOK_COMMAND, 'log': HOOK_COMMAND}
    after = out['diff']['after']['Deployment %s/hooked' % NS]['spec']['template']['spec']['containers']
    assert [c['lifecycle']['postStart']['exec']['command'] for c in after] == [HOOK_COMMAND, HOOK_COMMAND]
    assert 'lifecycle' not in out['diff']['before']['Deployment %s/hooked' % NS]['spec']['template']['spec'][
        'containers'][0]

    res = run(workload_task(', netlogon_restart_hook: true'))
    assert res.results['Wire']['changed'] is False, res
    assert res.results['Wire']['api_requests']['writes'] == 0

    # one container only: the hook this module put on the other one goes away
    res = run(workload_task(', container: iis, netlogon_restart_hook: true'))
    assert res.results['Wire']['changed'] is True, res
    assert hooks_of(apps, 'hooked') == {'iis': HOOK_COMMAND, 'log': None}

    # the default (false) removes it again
    res = run(workload_task(', container: iis'))
    assert res.results['Wire']['changed'] is True, res
    assert hooks_of(apps, 'hooked') == {'iis': None, 'log': None}


def test_workload_hook_does_not_take_over_a_foreign_hook(core, run, k8s_lab):
    apps = client.AppsV1Api(k8s_lab.api_client())
    own = {'exec': {'command': ['cmd.exe', '/c', 'echo mine']}}
    apps.create_namespaced_deployment(NS, deployment('foreign', [{'name': 'iis', 'image': 'example/iis',
                                                                  'lifecycle': {'postStart': own}}]))
    res = run(workload_task(', netlogon_restart_hook: true').replace('name: hooked', 'name: foreign'))
    out = res.results['Wire']
    assert out.get('failed') is True and 'conflict' in out['msg'] and 'force_conflicts' in out['msg'], out
    dep = apps.read_namespaced_deployment('foreign', NS)
    container = dep.spec.template.spec.containers[0]
    assert container.lifecycle.post_start._exec.command == ['cmd.exe', '/c', 'echo mine']
    assert container.security_context is None  # nothing of the task was written
