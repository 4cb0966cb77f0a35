"""The node-side tasks on Windows hosts of the inventory, through Ansible's own winrm connection plugin (pywinrm).

The lab's WinRM endpoint (lab/winrm/server.py) is an imitation, not Windows: it speaks WS-Management with real
NTLM/TLS, recognises the collection's constant bootstrap in the command line Ansible's connection plugin builds
(``PowerShell ... -ExecutionPolicy Unrestricted -EncodedCommand <bootstrap>``), decodes the data from stdin and
answers as the scripts would, journalling what arrived. No PowerShell runs here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import scripts

HNS_KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\hns\\State'
HOSTILE = ["WebApp1'; Remove-Item C:\\ -Recurse -Force; '", '$(Stop-Computer)', '`"; exit 1; "', 'Ünïcødé\u2028名前',
           '@{a=1}|iex', "\r\nklist purge"]


def inventory(winrm_lab, tmp_path, names=None, **extra):
    hosts = {}
    for name in names or sorted(winrm_lab.hosts):
        hosts[name] = dict({
            'ansible_host': '127.0.0.1', 'ansible_port': winrm_lab.hosts[name]['https_port'],
            'ansible_connection': 'winrm', 'ansible_winrm_scheme': 'https', 'ansible_winrm_transport': 'ntlm',
            'ansible_user': winrm_lab.username, 'ansible_password': winrm_lab.password,
            'ansible_winrm_server_cert_validation': 'validate', 'ansible_winrm_ca_trust_path': winrm_lab.ca_file,
        }, **extra)
    path = tmp_path / 'inventory.yml'
    path.write_text(yaml.safe_dump({'windows_nodes': {'hosts': hosts}}))
    return path


def run(ansible_env, tmp_path, inventory_path, tasks, check=False, diff=False):
    playbook = tmp_path / 'play.yml'
    playbook.write_text('- hosts: windows_nodes\n  gather_facts: false\n  tasks:\n'
                        + textwrap.indent(textwrap.dedent(tasks).strip('\n'), '    ') + '\n')
    cmd = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(inventory_path), str(playbook)]
    cmd += ['--check'] if check else []
    cmd += ['--diff'] if diff else []
    proc = subprocess.run(cmd, env=ansible_env, capture_output=True, text=True, timeout=600, check=False)
    results = {}
    doc = json.loads(proc.stdout)
    for play in doc['plays']:
        for task in play['tasks']:
            results[task['task']['name']] = task['hosts']
    return proc, results


@pytest.fixture
def lab(winrm_lab):
    winrm_lab.reset()
    return winrm_lab


def test_registry_fix_through_the_winrm_connection_plugin(ansible_env, tmp_path, lab):
    inv = inventory(lab, tmp_path)
    task = """
    - name: fix
      winkube.gmsa.node_registry:
    """
    proc, check = run(ansible_env, tmp_path, inv, task, check=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert all(r['changed'] for r in check['fix'].values()) and len(check['fix']) == 2
    assert all(((h['registry'].get(HNS_KEY) or {}).get('EnableCompartmentNamespace')) is None
               for h in lab.state().values()), 'check mode wrote'
    proc, first = run(ansible_env, tmp_path, inv, task, diff=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert {name: r['changed'] for name, r in first['fix'].items()} == {'WIN-NODE1': True, 'WIN-NODE2': True}
    assert first['fix']['WIN-NODE1']['computer_name'] == 'WIN-NODE1'
    assert first['fix']['WIN-NODE1']['diff']['after'] == 'EnableCompartmentNamespace = 1 (REG_DWORD)\n'
    assert all(h['registry'][HNS_KEY]['EnableCompartmentNamespace'] == {'type': 'DWord', 'value': 1}
               for h in lab.state().values())
    proc, second = run(ansible_env, tmp_path, inv, task)
    assert proc.returncode == 0 and not any(r['changed'] for r in second['fix'].values())
    # what reached the endpoint: Ansible's PowerShell command line around the collection's constant bootstrap
    journal = [e for e in lab.journal() if e.get('name') == 'registry_dword']
    assert journal and all(e['bootstrap_recognised'] for e in journal)
    assert all(e['options'][:2] == ['-NoProfile', '-NonInteractive'] and 'Unrestricted' in e['options'] for e in journal)
    assert {e['script'] for e in journal} == {scripts.REGISTRY_DWORD.text}


def test_hostile_values_arrive_intact_as_data(ansible_env, tmp_path, lab):
    inv = inventory(lab, tmp_path, names=['WIN-NODE1'])
    proc, result = run(ansible_env, tmp_path, inv, """
    - name: refresh
      winkube.gmsa.node_refresh:
        computers: ['WIN-NODE1$']
        gmsas: "{{ hostile }}"
      vars:
        hostile: %s
    """ % json.dumps(HOSTILE))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    answer = result['refresh']['WIN-NODE1']
    assert [t['gmsa'] for t in answer['tests']] == HOSTILE
    entry = [e for e in lab.journal() if e.get('name') == 'node_refresh'][-1]
    assert entry['data']['gmsas'] == HOSTILE
    assert entry['data_in_command_line'] is False and entry['data_in_script_text'] is False
    assert entry['script'] == scripts.NODE_REFRESH.text


def test_new_grant_purges_exactly_the_added_nodes_and_tests_each_gmsa(ansible_env, tmp_path, lab):
    lab.put_state('WIN-NODE1', {'gmsa_access': {'WebApp1': True, 'Reports1': False}})
    inv = inventory(lab, tmp_path)
    proc, result = run(ansible_env, tmp_path, inv, """
    - name: refresh
      winkube.gmsa.node_refresh:
        computers: ['win-node1$']
        gmsas: [WebApp1, Reports1]
      ignore_errors: true
    """)
    assert proc.returncode == 0, proc.stdout[-3000:]
    node1, node2 = result['refresh']['WIN-NODE1'], result['refresh']['WIN-NODE2']
    assert node1['purged'] is True and node1['changed'] is True and node1['failed'] is True
    assert [(t['gmsa'], t['ok']) for t in node1['tests']] == [('WebApp1', True), ('Reports1', False)]
    assert 'Reports1' in node1['msg'] and 'WebApp1' not in node1['msg']
    assert node2['listed'] is False and node2['purged'] is False and node2['changed'] is False and node2['tests'] == []
    state = lab.state()
    assert state['WIN-NODE1']['commands'] == [
        'klist.exe -li 0x3e7 purge', ['Test-ADServiceAccount', '-Identity', 'WebApp1'],
        ['Test-ADServiceAccount', '-Identity', 'Reports1']]
    assert 'commands' not in state['WIN-NODE2']


def test_preflight_through_the_connection_and_a_wrong_connection_is_refused(ansible_env, tmp_path, lab):
    lab.put_state('WIN-NODE2', {'os': {'caption': 'Windows Server 2019', 'version': '10.0.17763', 'build': 17763,
                                       'ubr': 1000, 'installation_type': 'Server Core'}})
    inv = inventory(lab, tmp_path)
    proc, result = run(ansible_env, tmp_path, inv, """
    - name: preflight
      winkube.gmsa.node_preflight_info:
        domain: contoso.test
      ignore_errors: true
    """)
    assert proc.returncode == 0, proc.stdout[-3000:]
    node1 = result['preflight']['WIN-NODE1']
    assert node1['verdict'] != 'fail' and not node1.get('failed'), [(c['name'], c['status'], c['detail']) for c in node1['checks']]
    assert {c['name']: c['status'] for c in node1['checks']}['os_build'] == 'pass'
    assert result['preflight']['WIN-NODE2']['failed'] is True and 'KB5000822' in result['preflight']['WIN-NODE2']['msg']
    local = tmp_path / 'local.yml'
    local.write_text(yaml.safe_dump({'windows_nodes': {'hosts': {'notwindows': {'ansible_connection': 'local'}}}}))
    proc, result = run(ansible_env, tmp_path, local, """
    - name: fix
      winkube.gmsa.node_registry:
      ignore_errors: true
    """)
    assert "uses the 'local' connection" in result['fix']['notwindows']['msg']


def test_lab_inventory_reaches_the_endpoint_as_windows_hosts(ansible_env, tmp_path, lab):
    """playbooks/inventory/lab.yml: the endpoint's fake nodes are inventory hosts with ansible_connection winrm."""
    repo = Path(__file__).resolve().parents[2]
    proc, result = run(ansible_env, tmp_path, repo / 'playbooks' / 'inventory' / 'lab.yml', """
    - name: fix
      winkube.gmsa.node_registry:
    """)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(result['fix']) == ['WIN-NODE1', 'WIN-NODE2']
    assert {r['computer_name'] for r in result['fix'].values()} == {'WIN-NODE1', 'WIN-NODE2'}


def test_docker_credential_spec_through_the_connection_with_hostile_content(ansible_env, tmp_path, lab):
    import base64
    from ansible_collections.winkube.gmsa.plugins.module_utils.models.credential_spec import build_credential_spec
    from ansible_collections.winkube.gmsa.plugins.module_utils.models.credential_spec import to_bytes
    from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.docker_scripts import DOCKER_CREDENTIAL_SPEC
    domain = {'dns_name': 'contoso.test', 'netbios_name': 'CONTOSO', 'forest_dns_name': 'contoso.test',
              'domain_guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
              'domain_sid': 'S-1-5-21-2126449477-2524075714-3094792973'}
    host_config = {'plugin_guid': '{859E1386-BDB4-49E8-85C7-3070B13920E1}', 'plugin_input': HOSTILE[0] + HOSTILE[2]}
    expected = to_bytes(build_credential_spec(domain, 'WebApp1', host_account=host_config))
    inv = inventory(lab, tmp_path, names=['WIN-NODE2'])
    task = """
    - name: spec
      winkube.gmsa.docker_credential_spec:
        name: gmsa-webapp1
        domain: %s
        account: WebApp1
        host_account_config: %s
    """ % (json.dumps(domain), json.dumps(host_config))
    proc, result = run(ansible_env, tmp_path, inv, task, diff=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    answer = result['spec']['WIN-NODE2']
    assert answer['changed'] is True and answer['security_opt'] == 'credentialspec=file://gmsa-webapp1.json'
    path = 'C:\\ProgramData\\Docker\\CredentialSpecs\\gmsa-webapp1.json'
    assert {k: base64.b64decode(v) for k, v in lab.state()['WIN-NODE2']['files'].items() if k.endswith('.json')} == {path: expected}
    entry = [e for e in lab.journal() if e.get('name') == DOCKER_CREDENTIAL_SPEC.name][-1]
    assert entry['script'] == DOCKER_CREDENTIAL_SPEC.text and entry['bootstrap_recognised']
    assert entry['data_in_command_line'] is False and entry['data_in_script_text'] is False
    proc, again = run(ansible_env, tmp_path, inv, task)
    assert proc.returncode == 0 and again['spec']['WIN-NODE2']['changed'] is False
