"""The invocation log line of credential_spec (Ansible's AnsibleModule._log_invocation, written to syslog or the
journal) is masked with the narrowed no_log values of its structured options, as results are: the PluginInput
is masked, the plain strings of the credential specs (domain, names) are not. Masking every string of every
credential spec in that line one by one took seconds with 2,000 specs (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

MODULE = Path(__file__).resolve().parents[4] / 'plugins' / 'modules' / 'credential_spec.py'


def credspec(name):
    return {'CmsPlugins': ['ActiveDirectory'],
            'DomainJoinConfig': {'Sid': 'S-1-5-21-1-2-3', 'MachineAccountName': name, 'Guid': '12345678-1234-1234-1234-123456789abc',
                                 'DnsTreeName': 'contoso.test', 'DnsName': 'contoso.test', 'NetBiosName': 'CONTOSO'},
            'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': [{'Name': name, 'Scope': 'contoso.test'}],
                                      'HostAccountConfig': {'PortableCcgVersion': '1', 'PluginGUID': '{GUID}',
                                                            'PluginInput': 'plugin-input-secret'}}}


def test_invocation_log_masks_only_the_secrets_of_credential_specs(tmp_path):
    args = tmp_path / 'args.json'
    args.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {
        'credential_specs': [{'name': 'webapp%02d' % i, 'credspec': credspec('WebApp%02d' % i)} for i in range(3)],
        'host': 'https://127.0.0.1:9', 'api_key': 'api-key-secret', 'validate_certs': False}}))
    runner = textwrap.dedent('''
        import runpy, sys
        from ansible.module_utils import basic
        def log(self, msg, log_args=None):
            sys.stderr.write('LOGGED: %%s\\n' %% msg)
        basic.AnsibleModule.log = log
        sys.argv = [%r, %r]
        runpy.run_path(%r, run_name='__main__')
    ''' % (str(MODULE), str(args), str(MODULE)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), HOME=str(tmp_path))
    env.pop('KUBECONFIG', None)
    proc = subprocess.run([sys.executable, '-c', runner], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    logged = [line for line in proc.stderr.splitlines() if line.startswith('LOGGED: Invoked with')]
    assert len(logged) == 1, proc.stderr
    line = logged[0]
    assert 'plugin-input-secret' not in line and 'api-key-secret' not in line
    assert 'NOT_LOGGING_PARAMETER' in line  # api_key itself is no_log
    # the plain strings of the credential specs stay readable (they were all masked before)
    assert "'DnsName': 'contoso.test'" in line and "'Name': 'WebApp01'" in line, line
    assert 'plugin-input-secret' not in proc.stdout  # the module's result (it fails: nothing listens on port 9)
    assert json.loads(proc.stdout)['failed'] is True
