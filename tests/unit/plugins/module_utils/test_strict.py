"""The shared AnsibleModule (module_utils/strict.py): a list or dict for a text option is refused, naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import ad_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.strict import wrong_types

SPEC = dict(
    name=dict(type='str'),
    untyped=dict(),
    file=dict(type='path', aliases=['path']),
    tags=dict(type='list', elements='str'),
    anything=dict(type='raw'),
    count=dict(type='int'),
    nested=dict(type='dict', options=dict(user=dict(type='str'), port=dict(type='int'))),
    items=dict(type='list', elements='dict', options=dict(name=dict(type='str'))),
)


def names(params):
    return [name for name, _msg in wrong_types(SPEC, params)]


def test_text_values_and_scalars_pass():
    assert names(dict(name='a', untyped='b', file='/x', tags=['a', 'b'], anything=[1], count=3,
                      nested=dict(user='u', port=1), items=[dict(name='n')])) == []
    assert names(dict(name=5, tags=[True, 1.5], nested=None)) == []  # Ansible's scalar-to-text conversion stays


def test_lists_and_dicts_are_named():
    assert names(dict(name=['a', 'b'])) == ['name']
    assert names(dict(untyped={'a': 1})) == ['untyped']
    assert names(dict(path=['x'])) == ['path']  # an alias is named as the user wrote it
    assert names(dict(tags=['a', ['b']])) == ['tags[1]']
    assert names(dict(nested=dict(user=['u']))) == ['nested.user']
    assert names(dict(items=[dict(name='ok'), dict(name={'x': 1})])) == ['items[1].name']
    message = wrong_types(SPEC, dict(name=['a', 'b']))[0][1]
    assert 'option name must be a single text value' in message and 'a list was given' in message


def test_connection_spec_nested_winrm_options():
    spec = ad_argument_spec(description=dict(type='str'))
    found = wrong_types(spec, dict(description=['a', 'b'], winrm=dict(hosts=['h'], username=['x'])))
    assert sorted(name for name, _msg in found) == ['description', 'winrm.username']


def test_module_fails_naming_the_field(tmp_path):
    """A real module run (domain_info, which would connect next): it stops before connecting."""
    import ansible_collections.winkube.gmsa.plugins.modules.domain_info as module
    args = tmp_path / 'args.json'
    args.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {'server': ['dc1', 'dc2'], 'username': 'u', 'password': 'secret-not-in-output'}}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, str(Path(module.__file__)), str(args)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    result = json.loads(proc.stdout)
    assert result['failed'] is True, result
    assert result['failed_option'] == 'server', result
    assert 'option server must be a single text value (str), but a list was given' in result['msg'], result


SCRIPT = '''
import json, sys
from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
module = AnsibleModule(argument_spec=k8s_argument_spec())
sys.stderr.write('NO_LOG_VALUES %s\\n' % json.dumps(sorted(module.no_log_values)))
'''


def test_structured_masking_is_narrowed_with_and_without_the_invocation_log(tmp_path):
    """strict.AnsibleModule narrows the masking of a kubeconfig given as a dict to its credentials whether Ansible
    logs the invocation (it is narrowed before the log line) or the task is no_log (no log line): the token stays
    masked, the plain strings (the server's address) do not."""
    script = tmp_path / 'module.py'
    script.write_text(SCRIPT)
    kubeconfig = {'apiVersion': 'v1', 'kind': 'Config',
                  'clusters': [{'name': 'lab', 'cluster': {'server': 'https://127.0.0.1:6443'}}],
                  'users': [{'name': 'u', 'user': {'token': 'token-secret-123'}}]}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), HOME=str(tmp_path))
    for no_log in (False, True):
        args = tmp_path / 'args.json'
        args.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {'kubeconfig': kubeconfig, '_ansible_no_log': no_log}}))
        proc = subprocess.run([sys.executable, str(script), str(args)], capture_output=True, text=True, env=env,
                              timeout=60, check=False)
        lines = [line for line in proc.stderr.splitlines() if line.startswith('NO_LOG_VALUES ')]
        assert len(lines) == 1, proc.stderr
        values = json.loads(lines[0].split(' ', 1)[1])
        assert 'token-secret-123' in values and 'https://127.0.0.1:6443' not in values, (no_log, values)
