"""The read-only modules' first names (meta/runtime.yml plugin_routing) still run the *_info modules, with a
deprecation warning: credential_spec_access against the real kube-apiserver, and node_preflight, whose action
plugin must follow the rename too, on the lab's WinRM endpoint (an imitation of Windows nodes, not Windows) as
inventory hosts. module_defaults of the module's group reach the module under its old name."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

ACCESS = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/winkube.gmsa.k8s:
      kubeconfig: "{{ kubeconfig }}"
  tasks:
    - name: access
      winkube.gmsa.credential_spec_access:
        bindings: [{credential_spec: gmsa-redirect, use_by: [{namespace: redirect-web, service_accounts: [nobody]}]}]
"""


def _deprecation(output: str, old: str, new: str) -> bool:
    flat = ' '.join(output.split())  # the warning is wrapped to the terminal width
    return 'DEPRECATION WARNING' in flat and old in flat and new in flat


def test_credential_spec_access_old_name(run_playbook, k8s_lab):
    result = run_playbook(ACCESS, extra_vars={'kubeconfig': k8s_lab.kubeconfig})
    assert result.rc == 0, result
    access = result.results['access']
    assert access['changed'] is False and access['all_allowed'] is False
    assert [(a['credential_spec'], a['service_account'], a['allowed']) for a in access['results']] == \
        [('gmsa-redirect', 'nobody', False)]
    assert _deprecation(result.stdout + result.stderr, 'winkube.gmsa.credential_spec_access',
                        'winkube.gmsa.credential_spec_access_info'), result.stderr


def test_node_preflight_old_name_runs_the_action_plugin(ansible_env, tmp_path, winrm_lab):
    winrm_lab.reset()
    # a build too old for gMSA with containerd: a failing verdict, which fails the task unless fail_on says never
    winrm_lab.put_state('WIN-NODE2', {'os': {'caption': 'Windows Server 2019', 'version': '10.0.17763', 'build': 17763,
                                             'ubr': 1000, 'installation_type': 'Server Core'}})
    hosts = {name: {'ansible_host': '127.0.0.1', 'ansible_port': winrm_lab.hosts[name]['https_port'],
                    'ansible_connection': 'winrm', 'ansible_winrm_scheme': 'https', 'ansible_winrm_transport': 'ntlm',
                    'ansible_user': winrm_lab.username, 'ansible_password': winrm_lab.password,
                    'ansible_winrm_server_cert_validation': 'validate', 'ansible_winrm_ca_trust_path': winrm_lab.ca_file}
             for name in sorted(winrm_lab.hosts)}
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(yaml.safe_dump({'windows_nodes': {'hosts': hosts}}))
    playbook = tmp_path / 'play.yml'
    playbook.write_text(textwrap.dedent("""
        - hosts: windows_nodes
          gather_facts: false
          module_defaults:
            group/winkube.gmsa.winrm:
              fail_on: never
          tasks:
            - name: preflight
              winkube.gmsa.node_preflight:
                domain: contoso.test
        """))
    proc = subprocess.run([str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(inventory), str(playbook)],
                          env=ansible_env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = {task['task']['name']: task['hosts'] for play in json.loads(proc.stdout)['plays'] for task in play['tasks']}
    # the action plugin's answer, read through each host's own connection (the module alone cannot run there)
    assert {r['computer_name'] for r in results['preflight'].values()} == set(winrm_lab.hosts)
    assert all(r['changed'] is False and r['verdict'] in ('pass', 'warn', 'fail') and r['checks'] for r in results['preflight'].values())
    # fail_on never came from the group's module_defaults: WIN-NODE2's verdict fails, the task does not
    assert results['preflight']['WIN-NODE2']['verdict'] == 'fail'
    assert not any(r.get('failed') for r in results['preflight'].values())
    assert _deprecation(proc.stdout + proc.stderr, 'winkube.gmsa.node_preflight', 'winkube.gmsa.node_preflight_info'), proc.stderr
