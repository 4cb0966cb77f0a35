"""The Docker credential spec pieces without a server: the one serialisation (Go's encoding/json form), the
module's checks of names, data roots and content, the script's data contract, and the lab's imitation."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.winkube.gmsa.plugins.module_utils.models import credential_spec as cs
from ansible_collections.winkube.gmsa.plugins.module_utils.models.crd import build_credential_spec as build_resource
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.docker_scripts import DOCKER_CREDENTIAL_SPEC, SCRIPTS
from ansible_collections.winkube.gmsa.plugins.module_utils import docker_credspec as module

REPO = Path(__file__).resolve().parents[4]
DOMAIN = {'dns_name': 'contoso.com', 'netbios_name': 'CONTOSO', 'forest_dns_name': 'contoso.com',
          'domain_guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
          'domain_sid': 'S-1-5-21-2126449477-2524075714-3094792973'}

# What Go's json.Marshal writes for the credspec map of the WebApp1 example (keys sorted, compact).
GO_WEBAPP1 = ('{"ActiveDirectoryConfig":{"GroupManagedServiceAccounts":[{"Name":"WebApp1","Scope":"contoso.com"},'
              '{"Name":"WebApp1","Scope":"CONTOSO"}]},"CmsPlugins":["ActiveDirectory"],"DomainJoinConfig":'
              '{"DnsName":"contoso.com","DnsTreeName":"contoso.com","Guid":"244818ae-87ac-4fcd-92ec-e79e5252348a",'
              '"MachineAccountName":"WebApp1","NetBiosName":"CONTOSO","Sid":"S-1-5-21-2126449477-2524075714-3094792973"}}')


def test_serialisation_is_gos_json_marshal_form():
    spec = cs.build_credential_spec(DOMAIN, 'WebApp1')
    assert cs.to_json(spec) == GO_WEBAPP1
    assert cs.to_bytes(spec) == GO_WEBAPP1.encode('ascii')


def test_serialisation_escapes_like_go_and_keeps_utf8():
    spec = {'CmsPlugins': ['a<b>&c\u2028\u2029', 'ü漢🚀', 'q"\\\n\t\x01\x7f']}
    assert cs.to_json(spec) == ('{"CmsPlugins":["a\\u003cb\\u003e\\u0026c\\u2028\\u2029","ü漢🚀",'
                                '"q\\"\\\\\\n\\t\\u0001\x7f"]}')
    assert cs.to_bytes(spec).decode('utf-8') == cs.to_json(spec) and not cs.to_bytes(spec).startswith(b'\xef\xbb\xbf')
    assert cs.to_json({'CmsPlugins': ['x\ud800y']}) == '{"CmsPlugins":["x\ufffdy"]}'  # Go has no lone surrogates


def test_serialisation_keeps_what_the_crd_keeps():
    spec = cs.build_credential_spec(DOMAIN, 'WebApp1')
    spec['DomainJoinConfig']['Extra'] = 'dropped by the API server'
    spec['ActiveDirectoryConfig']['GroupManagedServiceAccounts'][0]['Extra'] = 1
    spec['ActiveDirectoryConfig']['HostAccountConfig'] = {'PortableCcgVersion': 1, 'PluginGUID': '{X}',
                                                          'PluginInput': None}
    text = cs.to_json(spec)
    assert 'Extra' not in text and 'PluginInput' not in text and '"PortableCcgVersion":"1"' in text
    # the Kubernetes resource built from the same input serialises to the same text
    assert cs.to_json(build_resource('gmsa-webapp1', spec)['credspec']) == text


def test_every_input_form_gives_the_same_bytes():
    spec = cs.build_credential_spec(DOMAIN, 'WebApp1')
    params = dict(credspec=None, domain=DOMAIN, account='WebApp1$', additional_accounts=[], host_account_config=None)
    built = cs.to_bytes(module.credential_spec_from(params))
    for form in (spec, json.dumps(spec, indent=2), yaml.safe_dump(spec),
                 {'apiVersion': 'windows.k8s.io/v1', 'kind': 'GMSACredentialSpec', 'credspec': spec}):
        got = module.credential_spec_from(dict(params, credspec=form, domain=None, account=None))
        assert cs.to_bytes(got) == built == GO_WEBAPP1.encode()


@pytest.mark.parametrize('params, message', [
    ({'credspec': {'CmsPlugins': ['ActiveDirectory']}}, 'credspec: ActiveDirectoryConfig is missing'),
    ({'credspec': '[1]'}, 'credspec: credential spec content must be a mapping'),
    ({'credspec': {'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': [{'Name': 'x', 'Scope': 'y'}]},
                   'Bad': 1}}, "unknown top-level key 'Bad'"),
    ({'domain': dict(DOMAIN, domain_sid='S-1-5-18'), 'account': 'A'}, 'domain/account: '),
    ({'domain': DOMAIN, 'account': 'bad/name'}, "domain/account: invalid gMSA account name 'bad/name'"),
])
def test_bad_content_names_the_option(params, message):
    full = dict(dict(credspec=None, domain=None, account=None, additional_accounts=[], host_account_config=None),
                **params)
    with pytest.raises(ValueError) as exc:
        module.credential_spec_from(full)
    assert message in str(exc.value)


@pytest.mark.parametrize('name', ['gmsa-webapp1', 'WebApp1', 'a', 'a.b_c-d', 'x' * 64, 'con1', 'nullable'])
def test_good_names(name):
    assert module.name_error('name', name) is None


@pytest.mark.parametrize('name', ['', '..', 'a..b', '../x', '..\\x', 'a/b', 'a\\b', 'C:x', '-a', 'a-', '.a', 'a.',
                                  'x' * 65, 'a b', 'ä', 'CON', 'nul', 'Com1', 'lpt9.json', 'aux.x', None, 5])
def test_bad_names_are_refused_with_the_option_named(name):
    message = module.name_error('swarm_config_name', name)
    assert message.startswith('swarm_config_name: ') and 'letters, digits' in message


@pytest.mark.parametrize('root', [None, 'C:\\ProgramData\\Docker', 'D:\\docker', 'E:\\Docker Data\\x',
                                  'd:/docker', '\\\\filer\\share\\docker'])
def test_good_data_roots(root):
    assert module.data_root_error(root) is None


@pytest.mark.parametrize('root', ['docker', 'C:docker', '/var/lib/docker', 'C:\\a\\..\\b', 'C:\\a"b', 'C:\\a|b',
                                  'C:\\a\nb', 'C:\\a:b', '\\\\server', ''])
def test_bad_data_roots(root):
    assert module.data_root_error(root).startswith('data_root: ')


def test_script_is_constant_and_takes_exactly_the_data_the_module_sends():
    text = DOCKER_CREDENTIAL_SPEC.text
    assert text.startswith('param($Data)\n') and SCRIPTS == {'docker_credential_spec': DOCKER_CREDENTIAL_SPEC}
    assert 'WriteAllBytes' in text and 'Set-Content' not in text and 'Out-File' not in text
    data = module.script_data('present', 'x.json', None, True, b'{}', False)
    assert set(re.findall(r'\$Data\.(\w+)', text)) == set(data)
    assert base64.b64decode(data['content']) == b'{}' and data['sha256'] == hashlib.sha256(b'{}').hexdigest()
    assert module.script_data('absent', 'x.json', None, False, None, True)['content'] is None


def _fake():
    spec = importlib.util.spec_from_file_location('fake_docker_unit', REPO / 'lab' / 'winrm' / 'fake_docker.py')
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    return fake


def test_lab_imitation_follows_the_script_contract():
    fake = _fake()
    host = {'computer_name': 'WIN-X'}
    data = module.script_data('present', 'a.json', None, True, b'{"x":1}', False)
    first = fake.FAKE_SCRIPTS['docker_credential_spec'](host, data)
    assert first['changed'] and first['path'] == 'C:\\ProgramData\\Docker\\CredentialSpecs\\a.json'
    assert [op[0] for op in host['file_ops']] == ['write', 'move']
    # NTFS is case-insensitive: the same file under another case is found, not duplicated
    again = fake.FAKE_SCRIPTS['docker_credential_spec'](host, dict(data, file_name='A.JSON'))
    assert again['changed'] is False and len(host['files']) == 1
    host['files']['C:\\ProgramData\\docker\\config\\daemon.json'] = base64.b64encode(b'{"data-root": "F:\\\\d"}').decode()
    moved = fake.FAKE_SCRIPTS['docker_credential_spec'](host, data)
    assert moved['data_root_source'] == 'daemon.json' and moved['path'] == 'F:\\d\\CredentialSpecs\\a.json'
    host['files']['C:\\ProgramData\\docker\\config\\daemon.json'] = base64.b64encode(b'{oops').decode()
    with pytest.raises(Exception) as exc:
        fake.FAKE_SCRIPTS['docker_credential_spec'](host, data)
    assert 'Invalid JSON primitive' in str(exc.value)


def test_swarm_file_holds_exactly_the_bytes_and_check_mode_touches_nothing(tmp_path):
    """The Swarm file of both forms (module and action plugin) comes from the bytes, never from a template."""
    content = cs.to_bytes(cs.build_credential_spec(DOMAIN, 'WebApp1'))
    path = tmp_path / 'out' / 'webapp1.json'
    assert module.write_swarm_file(str(path), content, check_mode=True) == (True, '')
    assert not (tmp_path / 'out').exists()
    assert module.write_swarm_file(str(path), content, check_mode=False) == (True, '')
    assert path.read_bytes() == content and path.stat().st_mode & 0o777 == 0o644
    assert module.write_swarm_file(str(path), content, check_mode=False) == (False, content.decode())
    respaced = json.dumps(json.loads(content)).encode()  # equal JSON, other bytes
    path.write_bytes(respaced)
    assert module.write_swarm_file(str(path), content, check_mode=True) == (True, respaced.decode())
    assert path.read_bytes() == respaced
    assert module.write_swarm_file(str(path), content, check_mode=False)[0] is True and path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == ['webapp1.json']  # no temporary file left
    assert module.write_swarm_file(str(path), None, check_mode=True)[0] is True and path.exists()
    assert module.write_swarm_file(str(path), None, check_mode=False)[0] is True and not path.exists()
    assert module.write_swarm_file(str(path), None, check_mode=False) == (False, '')


def test_both_forms_check_their_options_in_one_place():
    params = {'name': 'webapp1.JSON', 'state': 'present', 'credspec': None, 'domain': DOMAIN, 'account': 'WebApp1',
              'additional_accounts': [], 'host_account_config': None, 'data_root': 'D:\\docker',
              'discover_data_root': True, 'swarm_config_name': 'bad/name'}
    name, config_name, content, problems = module.check_params(params)
    assert (name, config_name) == ('webapp1', 'bad/name') and content == cs.to_bytes(cs.build_credential_spec(DOMAIN, 'WebApp1'))
    assert [p.split(':')[0] for p in problems] == ['swarm_config_name', 'data_root and discover_data_root=true exclude each other']
    assert module.check_params(dict(params, domain=None, data_root=None, swarm_config_name=None))[3] == [
        'state=present needs the credential spec: give credspec, or domain and account']
