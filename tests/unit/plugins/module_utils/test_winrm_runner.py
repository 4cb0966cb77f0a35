"""The PowerShell runner without a server: payload encoding, output decoding, host parsing."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import runner, scripts
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import (
    PowerShellError, WinRMRunError, decode_output, encode_payload, endpoint_url, parse_host)

HOSTILE = "x'; Remove-Item C:\\ -Recurse; \"$(whoami)\" `n @' \r\n ü 🚀 ]]> %PATH%"


def test_payload_is_base64_of_json_and_carries_data_and_script_unchanged():
    data = {'domain': HOSTILE, 'list': [HOSTILE, None, 3, True]}
    payload = encode_payload(scripts.REGISTRY_DWORD, data)
    assert set(payload.decode('ascii')) <= set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=')
    document = json.loads(base64.b64decode(payload).decode('utf-8'))
    assert document['data'] == data
    assert document['name'] == 'registry_dword'
    assert base64.b64decode(document['script']).decode('utf-8') == scripts.REGISTRY_DWORD.text


def test_command_line_is_constant_and_fits_cmd_limit():
    decoded = base64.b64decode(runner.BOOTSTRAP_ENCODED).decode('utf-16-le')
    assert decoded == scripts.BOOTSTRAP
    command = ' '.join([runner.POWERSHELL] + list(runner.POWERSHELL_ARGS) + [runner.BOOTSTRAP_ENCODED])
    assert len(command) < 8000  # cmd.exe's command line limit is 8191
    assert '$input' in scripts.BOOTSTRAP and 'ConvertFrom-Json' in scripts.BOOTSTRAP


def test_scripts_take_their_data_as_a_parameter_only():
    for script in scripts.SCRIPTS.values():
        assert script.text.startswith('param($Data)\n')
        assert '{0}' not in script.text and '%s' not in script.text  # no formatting placeholders
        assert scripts.RESULT_MARKER not in script.text  # only the bootstrap writes the result line


def _line(document):
    return (scripts.RESULT_MARKER + base64.b64encode(json.dumps(document).encode()).decode() + '\r\n').encode()


def test_decode_output_result_and_noise():
    stdout = b'some noise\r\n' + _line({'ok': True, 'result': {'a': HOSTILE}})
    assert decode_output(stdout, b'', 0) == {'a': HOSTILE}


def test_decode_output_powershell_error_keeps_the_cmdlet_message():
    error = {'message': 'Cannot find path because it does not exist.', 'category': 'ObjectNotFound',
             'error_id': 'PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand', 'command': 'Get-Item',
             'exception': 'System.Management.Automation.ItemNotFoundException', 'line': 3}
    with pytest.raises(PowerShellError) as info:
        decode_output(_line({'ok': False, 'error': error}), b'', 1)
    assert str(info.value) == 'Get-Item: Cannot find path because it does not exist.'
    assert info.value.kind == 'powershell'
    assert info.value.details['category'] == 'ObjectNotFound'


def test_decode_output_clixml_stderr():
    stderr = (b'#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
              b'<S S="Error">Access is denied._x000D__x000A_</S><S S="Error">At line:1</S></Objs>')
    with pytest.raises(PowerShellError) as info:
        decode_output(b'', stderr, 1)
    assert 'Access is denied.\r\nAt line:1' in str(info.value)


def test_decode_output_without_result():
    with pytest.raises(WinRMRunError) as info:
        decode_output(b'hello', b'', 0)
    assert info.value.kind == 'protocol'
    with pytest.raises(WinRMRunError):
        decode_output(scripts.RESULT_MARKER.encode() + b'!!notbase64', b'', 0)


@pytest.mark.parametrize('entry, expected', [
    ('win1', ('win1', 5986)),
    ('win1.contoso.com:5985', ('win1.contoso.com', 5985)),
    ('10.0.0.5', ('10.0.0.5', 5986)),
    ('[fd00::5]:1234', ('fd00::5', 1234)),
    ('fd00::5', ('fd00::5', 5986)),
])
def test_parse_host(entry, expected):
    assert parse_host(entry, 5986) == expected


@pytest.mark.parametrize('entry', ['', 'a b', 'win1:0', 'win1:99999', 'win1:x', 'http://win1', 'u@win1', '[fd00::5'])
def test_parse_host_rejects(entry):
    with pytest.raises(ValueError):
        parse_host(entry, 5986)


def test_endpoint_url():
    assert endpoint_url('https', 'win1', 5986) == 'https://win1:5986/wsman'
    assert endpoint_url('http', 'fd00::5', 5985) == 'http://[fd00::5]:5985/wsman'


def test_errors_never_carry_the_password(monkeypatch):
    params = dict(hosts=['win1'], scheme='https', transport='ntlm', username='u', password='S3cret-pw')
    instance = runner.Runner(params)

    def boom(url, script, data):
        raise WinRMRunError('failed with S3cret-pw inside')

    monkeypatch.setattr(instance, '_run', boom)
    outcome = instance.run_all(scripts.REGISTRY_DWORD, lambda entry: {})
    assert outcome[0]['ok'] is False
    assert 'S3cret-pw' not in outcome[0]['error'] and '********' in outcome[0]['error']
