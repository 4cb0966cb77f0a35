"""WinRM modules end to end: ansible-playbook -> pywinrm (HTTP(S), Basic/NTLM, message encryption, WS-Management)
-> the local test endpoint lab/winrm/server.py, whose fake hosts' state is read back after each run.

What this proves: the real client stack, the options, how data reaches the (imitated) PowerShell side, error
reporting, check mode, diff and idempotence. What it cannot prove: that the PowerShell scripts behave on
Windows as the endpoint imitates them (see docs/winrm.md).
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import scripts
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import Runner, WinRMRunError

HNS_KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\hns\\State'
HOSTILE = ('contoso.test\'; Remove-Item -Recurse C:\\ ; "$(Stop-Computer)" `$env:PATH` @{a=1} '
           '\r\n# ü ß 漢字 🚀 </rsp:Stream> ]]> %s %%PATH%% ${x}')


@pytest.fixture
def lab(winrm_lab):
    winrm_lab.reset()
    return winrm_lab


def playbook(module, args, name='run', register=True):
    """A playbook with one task; the password comes from the extra var winrm_password."""
    body = dict(args)
    if 'password' in body:
        body['password'] = '{{ winrm_password }}'
    return """
    - hosts: localhost
      gather_facts: false
      tasks:
        - name: %s
          winkube.gmsa.%s: %s
    """ % (name, module, json.dumps(body, ensure_ascii=False))


def run(run_playbook, lab, module, args, **kwargs):
    result = run_playbook(playbook(module, args), extra_vars={'winrm_password': lab.password}, **kwargs)
    assert lab.password not in result.stdout + result.stderr, 'the password leaked into the output'
    return result, result.results['run']


def registry_value(lab, host):
    return (lab.state()[host]['registry'].get(HNS_KEY) or {}).get('EnableCompartmentNamespace')


def test_node_registry_changed_then_unchanged(run_playbook, lab):
    args = lab.module_args(transport='ntlm')
    first, task = run(run_playbook, lab, 'node_registry', args)
    assert first.rc == 0, first
    assert task['changed'] is True
    assert [n['changed'] for n in task['nodes']] == [True, True]
    assert [n['computer_name'] for n in task['nodes']] == ['WIN-NODE1', 'WIN-NODE2']
    assert task['nodes'][0]['before'] is None
    assert task['nodes'][0]['after'] == {'type': 'REG_DWORD', 'value': 1}
    assert task['pods_checked'] is False and task['pods_to_recreate'] == []
    for host in ('WIN-NODE1', 'WIN-NODE2'):
        assert registry_value(lab, host) == {'type': 'DWord', 'value': 1}

    second, task = run(run_playbook, lab, 'node_registry', args)
    assert second.rc == 0, second
    assert task['changed'] is False
    assert [n['changed'] for n in task['nodes']] == [False, False]

    # the script text and the bootstrap are the collection's constants; the data travelled as data
    journal = lab.journal()
    assert len(journal) == 4
    for entry in journal:
        assert entry['bootstrap'] == scripts.BOOTSTRAP
        assert entry['script'] == scripts.REGISTRY_DWORD.text
        assert entry['options'] == ['-NoProfile', '-NonInteractive']
        assert entry['data'] == {'key': HNS_KEY, 'name': 'EnableCompartmentNamespace', 'value': 1,
                                 'check_mode': False}
        assert entry['data_in_command_line'] is False and entry['data_in_script_text'] is False


def test_node_registry_fixes_a_wrong_value_per_node(run_playbook, lab):
    lab.put_state('WIN-NODE1', {'registry': {HNS_KEY: {'EnableCompartmentNamespace': {'type': 'DWord', 'value': 1}}}})
    lab.put_state('WIN-NODE2', {'registry': {HNS_KEY: {'EnableCompartmentNamespace': {'type': 'String', 'value': '1'}}}})
    result, task = run(run_playbook, lab, 'node_registry', lab.module_args(transport='basic'))
    assert result.rc == 0, result
    assert [n['changed'] for n in task['nodes']] == [False, True]
    assert task['nodes'][1]['before'] == {'type': 'REG_SZ', 'value': '1'}
    assert registry_value(lab, 'WIN-NODE2') == {'type': 'DWord', 'value': 1}


def test_node_registry_check_mode_writes_nothing_and_diff(run_playbook, lab):
    lab.put_state('WIN-NODE2', {'registry': {HNS_KEY: {'EnableCompartmentNamespace': {'type': 'DWord', 'value': 0}}}})
    result, task = run(run_playbook, lab, 'node_registry', lab.module_args(), check=True, diff=True)
    assert result.rc == 0, result
    assert task['changed'] is True
    assert task['nodes'][0]['after'] == {'type': 'REG_DWORD', 'value': 1}
    # nothing written: read back from the endpoint's state
    assert registry_value(lab, 'WIN-NODE1') is None
    assert registry_value(lab, 'WIN-NODE2') == {'type': 'DWord', 'value': 0}
    assert all(entry['data']['check_mode'] is True for entry in lab.journal())
    diff = task['diff']
    assert [d['before'] for d in diff] == ['EnableCompartmentNamespace (not set)\n',
                                           'EnableCompartmentNamespace = 0 (REG_DWORD)\n']
    assert [d['after'] for d in diff] == ['EnableCompartmentNamespace = 1 (REG_DWORD)\n'] * 2
    assert diff[0]['before_header'].startswith(lab.entry('WIN-NODE1'))


def test_node_registry_over_http_with_ntlm_message_encryption(run_playbook, lab):
    result, task = run(run_playbook, lab, 'node_registry', lab.module_args(['WIN-NODE1'], scheme='http'))
    assert result.rc == 0, result
    assert task['changed'] is True
    assert registry_value(lab, 'WIN-NODE1') == {'type': 'DWord', 'value': 1}


def test_clear_text_over_http_is_refused_before_connecting(run_playbook, lab):
    for overrides in ({'message_encryption': 'never'}, {'transport': 'basic'}):
        result, task = run(run_playbook, lab, 'node_registry',
                           lab.module_args(['WIN-NODE1'], scheme='http', **overrides))
        assert result.rc != 0
        assert 'clear text' in task['msg']
    assert lab.journal() == []


def test_powershell_error_is_a_clear_failure(run_playbook, lab):
    error = {'message': 'Requested registry access is not allowed.', 'category': 'PermissionDenied',
             'error_id': 'System.Security.SecurityException,Microsoft.PowerShell.Commands.NewItemPropertyCommand',
             'exception': 'System.Security.SecurityException', 'command': 'New-ItemProperty', 'line': 21}
    lab.put_state('WIN-NODE2', {'errors': {'registry_dword': error}})
    result, task = run(run_playbook, lab, 'node_registry', lab.module_args())
    assert result.rc != 0
    assert task['failed'] is True
    assert '1 of 2 hosts failed' in task['msg']
    assert 'New-ItemProperty: Requested registry access is not allowed.' in task['msg']
    assert lab.entry('WIN-NODE2') in task['msg']
    node1, node2 = task['nodes']
    assert node1['changed'] is True and node1['failed'] is False  # the other node was still fixed
    assert task['changed'] is True
    assert node2['error_kind'] == 'powershell'
    assert node2['error_details']['category'] == 'PermissionDenied'
    assert node2['error_details']['error_id'].startswith('System.Security.SecurityException')


def test_powershell_crash_on_stderr_is_a_clear_failure(run_playbook, lab):
    lab.put_state('WIN-NODE1', {'errors': {'registry_dword': {
        'stderr': 'powershell.exe : The term \'ConvertFrom-Json\' is not recognized\nAt line:1 char:1', 'exit_code': 1}}})
    result, task = run(run_playbook, lab, 'node_registry', lab.module_args(['WIN-NODE1']))
    assert result.rc != 0
    assert "PowerShell failed (exit code 1): powershell.exe : The term 'ConvertFrom-Json' is not recognized" in task['msg']


def test_wrong_password_fails_clearly(run_playbook, lab):
    for scheme, transport in (('https', 'ntlm'), ('https', 'basic'), ('http', 'ntlm')):
        args = lab.module_args(['WIN-NODE1'], scheme=scheme, transport=transport)
        result = run_playbook(playbook('node_registry', args), extra_vars={'winrm_password': 'not-the-password'})
        task = result.results['run']
        assert result.rc != 0
        assert 'rejected the credentials of %s (transport %s)' % (lab.username, transport) in task['msg'], task['msg']
        assert task['nodes'][0]['error_kind'] == 'authentication'
        assert 'not-the-password' not in result.stdout
    assert lab.journal() == []


def test_tls_validation_is_on_by_default(run_playbook, lab):
    # an unrelated CA, and no CA at all (the default trust store): both refused
    for overrides in ({'ca_trust_path': lab.other_ca_file}, {}):
        args = lab.module_args(['WIN-NODE1'])
        args.pop('ca_trust_path')
        args.update(overrides)
        result, task = run(run_playbook, lab, 'node_registry', args)
        assert result.rc != 0
        assert 'TLS error' in task['msg'] and 'certificate verify failed' in task['msg'], task['msg']
        assert task['nodes'][0]['error_kind'] == 'tls'
    assert lab.journal() == []
    # turning validation off works, with a warning
    args = lab.module_args(['WIN-NODE1'], validate_certs=False)
    args.pop('ca_trust_path')
    result, task = run(run_playbook, lab, 'node_registry', args)
    assert result.rc == 0, result
    assert any('not verified' in w for w in task.get('warnings', []))


def test_unreachable_host_fails_clearly(run_playbook, lab):
    args = lab.module_args(['WIN-NODE1'], read_timeout=5, operation_timeout=2)
    args['hosts'] = ['127.0.0.1:9']
    result, task = run(run_playbook, lab, 'node_registry', args)
    assert result.rc != 0
    assert 'cannot reach the WinRM service at https://127.0.0.1:9/wsman' in task['msg']


def test_runner_carries_hostile_data_intact(lab):
    """The runner directly, over every transport: data comes back exactly as sent; script text is constant."""
    echo = scripts.Script('echo', 'param($Data)\n$Data\n')
    data = {'domain': HOSTILE, 'list': [HOSTILE, 1, None, True], 'nested': {'"key\'$()': 'v`'}}
    for scheme, transport, encryption in (('https', 'basic', 'auto'), ('https', 'ntlm', 'auto'),
                                          ('https', 'ntlm', 'always'), ('http', 'ntlm', 'auto')):
        params = lab.module_args(['WIN-NODE2'], scheme=scheme, transport=transport, message_encryption=encryption,
                                 validate_certs=True, operation_timeout=20, read_timeout=30, concurrency=1)
        outcome = Runner(params).run_all(echo, lambda entry: data)
        assert outcome[0]['ok'], outcome
        assert outcome[0]['result'] == {'computer_name': 'WIN-NODE2', 'data': data}
    journal = lab.journal()
    assert {entry['script'] for entry in journal} == {echo.text}
    assert {entry['bootstrap'] for entry in journal} == {scripts.BOOTSTRAP}
    assert all(entry['data'] == data and not entry['data_in_command_line'] for entry in journal)


def test_runner_concurrency_keeps_host_order(lab):
    params = lab.module_args(concurrency=4)
    params['hosts'] = [lab.entry('WIN-NODE1'), lab.entry('WIN-NODE2'), lab.entry('WIN-NODE1', 'http')]
    params['scheme'] = 'https'
    outcomes = Runner(params).run_all(scripts.Script('echo', 'param($Data)\n$Data\n'), lambda entry: {'e': entry})
    assert [o['host'] for o in outcomes] == params['hosts']
    assert outcomes[0]['result']['data'] == {'e': params['hosts'][0]}
    assert outcomes[2]['ok'] is False  # https against the plain HTTP port
    with pytest.raises(WinRMRunError):
        Runner(params).run('not a host', scripts.REGISTRY_DWORD, {})


def test_node_preflight_pass_warn_and_hostile_domain(run_playbook, lab):
    lab.put_state('WIN-NODE1', {'os': {'caption': 'Microsoft Windows Server 2019 Datacenter', 'version': '10.0.17763',
                                       'build': 17763, 'ubr': 1518, 'display_version': None,
                                       'installation_type': 'Server Core'}})
    lab.put_state('WIN-NODE2', {'registry': {HNS_KEY: {'EnableCompartmentNamespace': {'type': 'DWord', 'value': 1}}}})
    result, task = run(run_playbook, lab, 'node_preflight_info', lab.module_args(fail_on='never'))
    assert result.rc == 0, result
    assert task['changed'] is False
    node1, node2 = task['nodes']
    assert node1['verdict'] == 'fail' and node2['verdict'] == 'pass', node2['checks']
    assert task['verdict'] == 'fail'
    os_check = next(c for c in node1['checks'] if c['name'] == 'os_build')
    assert os_check['status'] == 'fail' and 'KB5000822' in os_check['fix']
    assert node2['runtime'] == {'name': 'containerd', 'version': '2.1.4', 'state': 'Running'}
    assert node2['kubelet_version'] == '1.36.3'
    assert node2['facts']['dns']['name'] == 'contoso.test'  # the node's own domain by default

    # fail_on=fail (the default) fails the task and names the fix
    result, task = run(run_playbook, lab, 'node_preflight_info', lab.module_args())
    assert result.rc != 0
    assert 'os_build' in task['msg'] and 'KB5000822' in task['msg']
    assert task['nodes'][1]['verdict'] == 'pass'

    # a hostile domain string reaches the node as data, byte for byte, and is reported back
    result, task = run(run_playbook, lab, 'node_preflight_info',
                       lab.module_args(['WIN-NODE2'], domain=HOSTILE, domain_controllers=[HOSTILE], fail_on='never'))
    assert result.rc == 0, result
    facts = task['nodes'][0]['facts']
    assert facts['dns']['name'] == HOSTILE
    assert {p['target'] for p in facts['ports']} == {HOSTILE}
    entry = lab.journal()[-1]
    assert entry['script'] == scripts.PREFLIGHT_FACTS.text
    assert entry['data'] == {'domain': HOSTILE, 'domain_controllers': [HOSTILE], 'ports': [389, 636, 88],
                             'timeout_ms': 3000, 'ccg_plugin_guids': []}
    assert entry['data_in_command_line'] is False and entry['data_in_script_text'] is False
    checks = {c['name']: c for c in task['nodes'][0]['checks']}
    assert checks['domain_membership']['status'] == 'fail'  # joined to contoso.test, not to the hostile name
    assert checks['domain_dns']['status'] == 'fail' and checks['dc_reachable']['status'] == 'fail'


def test_node_preflight_network_problems(run_playbook, lab):
    lab.put_state('WIN-NODE1', {'tcp': {'dc1.contoso.test:88': True, 'dc1.contoso.test:389': True,
                                        'dc1.contoso.test:636': 'actively refused'},
                                'registry': {HNS_KEY: {'EnableCompartmentNamespace': {'type': 'DWord', 'value': 1}}}})
    lab.put_state('WIN-NODE2', {'domain': {'joined': False, 'name': 'WORKGROUP'}, 'dns': {}})
    result, task = run(run_playbook, lab, 'node_preflight_info',
                       lab.module_args(domain='contoso.test', fail_on='warn'))
    assert result.rc != 0
    node1, node2 = task['nodes']
    checks1 = {c['name']: c for c in node1['checks']}
    checks2 = {c['name']: c for c in node2['checks']}
    assert node1['verdict'] == 'warn' and checks1['dc_reachable']['status'] == 'warn'
    assert checks2['domain_membership']['status'] == 'fail' and 'Add-Computer' in checks2['domain_membership']['fix']
    assert checks2['domain_dns']['status'] == 'fail'


def test_node_preflight_ccg_plugins(run_playbook, lab):
    ccg = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\CCG\\COMClasses'
    akv, aws = '{CCC2A336-D7F3-4818-A213-272B7924213E}', '{859E1386-BDB4-49E8-85C7-3070B13920E1}'
    for host in ('WIN-NODE1', 'WIN-NODE2'):
        lab.put_state(host, {'domain': {'joined': False, 'name': 'WORKGROUP'}})
    lab.put_state('WIN-NODE1', {'registry': {ccg + '\\' + akv: {}}})
    args = lab.module_args(mode='non_domain_joined', ccg_plugins=['azure_key_vault', aws.lower().strip('{}')],
                           fail_on='never')
    result, task = run(run_playbook, lab, 'node_preflight_info', args)
    assert result.rc == 0, result
    node1, node2 = ({c['name']: c for c in n['checks']}['ccg_plugin'] for n in task['nodes'])
    # the GUIDs travel as data, normalised; each node reports per GUID
    assert lab.journal()[-1]['data']['ccg_plugin_guids'] == [akv, aws]
    assert task['nodes'][0]['ccg']['com_classes'] == [akv] and task['nodes'][0]['ccg']['com_classes_key'] is True
    assert task['nodes'][0]['ccg']['plugins'] == [{'guid': akv, 'registered': True}, {'guid': aws, 'registered': False}]
    assert node1['status'] == 'fail' and aws in node1['detail'] and 'Amazon' in node1['fix']
    assert node2['status'] == 'fail' and task['nodes'][1]['ccg']['com_classes_key'] is False
    assert 'az aks update --enable-windows-gmsa' in node2['fix']

    # only the plugin the node has: pass; any plugin, none registered: fail; domain-joined: not checked
    result, task = run(run_playbook, lab, 'node_preflight_info', dict(args, ccg_plugins=['azure_key_vault']))
    statuses = [{c['name']: c for c in n['checks']}['ccg_plugin']['status'] for n in task['nodes']]
    assert statuses == ['pass', 'fail']
    result, task = run(run_playbook, lab, 'node_preflight_info', dict(args, ccg_plugins=[]))
    statuses = [{c['name']: c for c in n['checks']}['ccg_plugin']['status'] for n in task['nodes']]
    assert statuses == ['pass', 'fail']
    result, task = run(run_playbook, lab, 'node_preflight_info', dict(args, mode='domain_joined', ccg_plugins=[]))
    assert [{c['name']: c for c in n['checks']}['ccg_plugin']['status'] for n in task['nodes']] == ['skip', 'skip']

    # a value that is no GUID fails before any node is contacted
    before = len(lab.journal())
    result, task = run(run_playbook, lab, 'node_preflight_info', dict(args, ccg_plugins=['{CCC2A336}; Remove-Item C:\\']))
    assert result.rc != 0 and 'ccg_plugins' in task['msg'] and len(lab.journal()) == before


def _pod(name, node, gmsa=None, container_gmsa=None):
    pod = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': name},
           'spec': {'nodeName': node, 'containers': [{'name': 'app', 'image': 'mcr.microsoft.com/windows/nanoserver'}],
                    'tolerations': [{'operator': 'Exists'}]}}
    if gmsa:
        pod['spec']['securityContext'] = {'windowsOptions': {'gmsaCredentialSpecName': gmsa}}
    if container_gmsa:
        pod['spec']['containers'][0]['securityContext'] = {'windowsOptions': {'gmsaCredentialSpecName': container_gmsa}}
    return pod


def test_node_registry_lists_gmsa_pods_to_recreate_and_preflight_checks_the_node(run_playbook, lab, k8s_lab):
    from kubernetes import client

    api = client.CoreV1Api(k8s_lab.api_client())
    namespace = 'winrm-pods'
    labels = {'gmsa-webhook': 'disabled', 'windows.k8s.io/disabled': 'true'}
    try:
        api.create_namespace({'metadata': {'name': namespace, 'labels': labels}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    windows, linux = k8s_lab.windows_nodes[0], k8s_lab.linux_nodes[0]
    for pod in (_pod('with-gmsa', windows, gmsa='gmsa-webapp1'), _pod('container-gmsa', windows, container_gmsa='gmsa-b'),
                _pod('plain', windows), _pod('elsewhere', linux, gmsa='gmsa-webapp1')):
        try:
            api.create_namespaced_pod(namespace, pod)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    cluster = {'kubeconfig': k8s_lab.kubeconfig}
    node_names = {lab.entry('WIN-NODE1'): windows}
    result, task = run(run_playbook, lab, 'node_registry',
                       lab.module_args(['WIN-NODE1'], cluster=cluster, node_names=node_names))
    assert result.rc == 0, result
    assert task['pods_checked'] is True
    found = [(p['namespace'], p['name'], p['credential_spec_names'], p['node_name'])
             for p in task['pods_to_recreate'] if p['namespace'] == namespace]
    assert found == [(namespace, 'container-gmsa', ['gmsa-b'], windows),
                     (namespace, 'with-gmsa', ['gmsa-webapp1'], windows)]
    assert task['nodes'][0]['pods_to_recreate'] == task['pods_to_recreate']

    # unchanged now: no pod lookup
    result, task = run(run_playbook, lab, 'node_registry',
                       lab.module_args(['WIN-NODE1'], cluster=cluster, node_names=node_names))
    assert result.rc == 0 and task['changed'] is False and task['pods_to_recreate'] == []

    # preflight: the Windows Node passes, a Linux node named for the other host fails, with the fix
    node_names[lab.entry('WIN-NODE2')] = linux
    result, task = run(run_playbook, lab, 'node_preflight_info',
                       lab.module_args(cluster=cluster, node_names=node_names, fail_on='never'))
    assert result.rc == 0, result
    checks = [{c['name']: c for c in n['checks']}['kubernetes_node'] for n in task['nodes']]
    assert checks[0]['status'] == 'pass'
    assert checks[1]['status'] == 'fail' and 'kubernetes.io/os=linux' in checks[1]['detail']


def test_endpoint_requires_ntlm_channel_binding_over_https(lab):
    """The endpoint checks NTLM channel binding to its TLS certificate (as Windows with CbtHardeningLevel
    Strict): the runner's NTLM over HTTPS passes it (above); a client that does not send it is refused."""
    from winrm.exceptions import InvalidCredentialsError
    from winrm.protocol import Protocol

    url = 'https://%s/wsman' % lab.entry('WIN-NODE1')
    protocol = Protocol(url, transport='ntlm', username=lab.username, password=lab.password,
                        ca_trust_path=lab.ca_file, send_cbt=False, proxy=None)
    with pytest.raises(InvalidCredentialsError):
        protocol.open_shell()
