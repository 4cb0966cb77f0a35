"""node_preflight_info's ccg.exe plugin check (pure Python)."""

from __future__ import annotations

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import preflight

AKV = '{CCC2A336-D7F3-4818-A213-272B7924213E}'
AWS = '{859E1386-BDB4-49E8-85C7-3070B13920E1}'
CUSTOM = '{0D2A3E4F-1111-2222-3333-444455556666}'


def facts(classes=None, key=True, plugins=None, ccg_exe=True):
    return {'ccg': {'com_classes_key': key, 'com_classes': classes or [], 'ccg_exe': ccg_exe,
                    'plugins': plugins or []}}


@pytest.mark.parametrize('value, guid', [
    ('azure_key_vault', AKV), ('AWS', AWS), ('akv', AKV), ('aws_secrets_manager', AWS), (CUSTOM.lower(), CUSTOM), (CUSTOM.strip('{}'), CUSTOM),
])
def test_plugin_names_and_guids(value, guid):
    assert preflight.ccg_plugin_guid(value) == guid


@pytest.mark.parametrize('value', ['gcp', '{CCC2A336-D7F3-4818-A213-272B7924213E', 'x' * 36, '',
                                   AKV + '; Remove-Item C:\\', '{CCC2A336-D7F3-4818-A213-272B7924213E}\\..'])
def test_bad_plugin_values_name_the_option(value):
    with pytest.raises(ValueError, match='ccg_plugins'):
        preflight.ccg_plugin_guid(value)


def test_portable_node_needs_each_named_plugin():
    result = preflight.check_ccg(facts([AKV]), 'non_domain_joined', [AKV, AWS])
    assert result['status'] == 'fail' and AWS in result['detail'] and AKV not in result['detail']
    assert 'Amazon' in result['fix'] and 'aks' not in result['fix']
    assert preflight.check_ccg(facts([AKV.lower()]), 'non_domain_joined', [AKV])['status'] == 'pass'
    # the per-GUID answer counts as well as the subkey list
    answered = facts([], plugins=[{'guid': CUSTOM, 'registered': True}])
    assert preflight.check_ccg(answered, 'non_domain_joined', [CUSTOM])['status'] == 'pass'
    missing = preflight.check_ccg(facts(key=False, ccg_exe=False), 'non_domain_joined', [CUSTOM])
    assert missing['status'] == 'fail' and CUSTOM in missing['fix'] and 'ccg.exe is missing' in missing['detail']


def test_portable_node_without_any_plugin_fails():
    result = preflight.check_ccg(facts(key=False), 'non_domain_joined', [])
    assert result['status'] == 'fail' and 'does not exist' in result['detail'] and result['fix']
    assert preflight.check_ccg(facts([AWS]), 'non_domain_joined', [])['status'] == 'pass'


def test_domain_joined_node():
    assert preflight.check_ccg(facts(key=False), 'domain_joined', [])['status'] == 'skip'
    warn = preflight.check_ccg(facts(key=False), 'domain_joined', [AKV])
    assert warn['status'] == 'warn' and warn['fix']
    assert preflight.check_ccg({}, 'non_domain_joined', [AKV])['status'] == 'skip'  # an old script's facts


def test_evaluate_includes_the_check():
    result = preflight.evaluate(dict(facts(key=False), domain={'joined': False}), mode='non_domain_joined',
                                ccg_plugins=[AKV])
    assert {c['name']: c for c in result['checks']}['ccg_plugin']['status'] == 'fail'
    assert result['verdict'] == 'fail'
