"""Credential spec model, checked field by field against the example in the Kubernetes
"Configure GMSA for Windows Pods and containers" task page and Microsoft's New-CredentialSpec."""

from __future__ import annotations

import json

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.models import credential_spec as cs

# The gmsa-WebApp1 credspec of the Kubernetes docs (credspec section of the GMSACredentialSpec).
K8S_DOCS_EXAMPLE = {
    'ActiveDirectoryConfig': {
        'GroupManagedServiceAccounts': [
            {'Name': 'WebApp1', 'Scope': 'CONTOSO'},
            {'Name': 'WebApp1', 'Scope': 'contoso.com'},
        ],
    },
    'CmsPlugins': ['ActiveDirectory'],
    'DomainJoinConfig': {
        'DnsName': 'contoso.com',
        'DnsTreeName': 'contoso.com',
        'Guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
        'MachineAccountName': 'WebApp1',
        'NetBiosName': 'CONTOSO',
        'Sid': 'S-1-5-21-2126449477-2524075714-3094792973',
    },
}

DOMAIN = {  # what winkube.gmsa.domain_info returns for that domain
    'dns_name': 'contoso.com',
    'netbios_name': 'CONTOSO',
    'domain_guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
    'domain_sid': 'S-1-5-21-2126449477-2524075714-3094792973',
    'forest_dns_name': 'contoso.com',
    'changed': False,
}


def test_matches_kubernetes_docs_field_by_field():
    spec = cs.build_credential_spec(DOMAIN, 'WebApp1')
    assert spec['CmsPlugins'] == K8S_DOCS_EXAMPLE['CmsPlugins']
    assert set(spec) == set(K8S_DOCS_EXAMPLE)
    for key, value in K8S_DOCS_EXAMPLE['DomainJoinConfig'].items():
        assert spec['DomainJoinConfig'][key] == value, key
    assert set(spec['DomainJoinConfig']) == set(K8S_DOCS_EXAMPLE['DomainJoinConfig'])
    ours = spec['ActiveDirectoryConfig']['GroupManagedServiceAccounts']
    theirs = K8S_DOCS_EXAMPLE['ActiveDirectoryConfig']['GroupManagedServiceAccounts']
    assert sorted(map(json.dumps, ours)) == sorted(map(json.dumps, theirs))
    assert 'HostAccountConfig' not in spec['ActiveDirectoryConfig']
    assert cs.validate_credential_spec(spec) == []


def test_order_is_new_credentialspec_dns_scope_first():
    accounts = cs.build_credential_spec(DOMAIN, 'WebApp1')['ActiveDirectoryConfig']['GroupManagedServiceAccounts']
    assert accounts == [{'Name': 'WebApp1', 'Scope': 'contoso.com'}, {'Name': 'WebApp1', 'Scope': 'CONTOSO'}]


def test_domain_join_config_style_input_and_normalisation():
    spec = cs.build_credential_spec(dict(K8S_DOCS_EXAMPLE['DomainJoinConfig'], Guid='{244818AE-87AC-4FCD-92EC-E79E5252348A}',
                                         DnsName='Contoso.COM.'), 'WebApp1$')
    assert spec['DomainJoinConfig']['Guid'] == '244818ae-87ac-4fcd-92ec-e79e5252348a'
    assert spec['DomainJoinConfig']['DnsName'] == 'contoso.com'
    assert spec['DomainJoinConfig']['MachineAccountName'] == 'WebApp1'


def test_child_domain_tree_name_is_forest_root():
    domain = dict(DOMAIN, dns_name='emea.contoso.com', netbios_name='emea', forest_dns_name='contoso.com')
    join = cs.build_credential_spec(domain, 'App')['DomainJoinConfig']
    assert (join['DnsName'], join['DnsTreeName'], join['NetBiosName']) == ('emea.contoso.com', 'contoso.com', 'EMEA')


def test_additional_accounts():
    spec = cs.build_credential_spec(DOMAIN, 'WebApp1', additional_accounts=[
        'Batch1$', {'name': 'Other', 'scope': 'fabrikam.com'}, 'WebApp1'])
    assert spec['ActiveDirectoryConfig']['GroupManagedServiceAccounts'] == [
        {'Name': 'WebApp1', 'Scope': 'contoso.com'},
        {'Name': 'WebApp1', 'Scope': 'CONTOSO'},
        {'Name': 'Batch1', 'Scope': 'contoso.com'},
        {'Name': 'Batch1', 'Scope': 'CONTOSO'},
        {'Name': 'Other', 'Scope': 'fabrikam.com'},
    ]
    assert spec['DomainJoinConfig']['MachineAccountName'] == 'WebApp1'


def test_host_account_config_azure_key_vault():
    spec = cs.build_credential_spec(DOMAIN, 'WebApp1', host_account={
        'plugin': 'azure_key_vault', 'object_id': '11111111-2222-3333-4444-555555555555',
        'secret_uri': 'https://kv1.vault.azure.net/secrets/gmsa-user'})
    assert spec['ActiveDirectoryConfig']['HostAccountConfig'] == {
        'PortableCcgVersion': '1',
        'PluginGUID': '{CCC2A336-D7F3-4818-A213-272B7924213E}',
        'PluginInput': 'ObjectId=11111111-2222-3333-4444-555555555555;'
                       'SecretUri=https://kv1.vault.azure.net/secrets/gmsa-user',
    }
    assert cs.validate_credential_spec(spec) == []


def test_host_account_config_aws_and_generic():
    aws = cs.build_credential_spec(DOMAIN, 'A', host_account={
        'plugin': 'aws', 'credential_arn': 'arn:aws:secretsmanager:us-east-1:111122223333:secret:x-AbCdEf'})
    host = aws['ActiveDirectoryConfig']['HostAccountConfig']
    assert host['PluginGUID'] == '{859E1386-BDB4-49E8-85C7-3070B13920E1}'
    assert json.loads(host['PluginInput']) == {
        'credentialArn': 'arn:aws:secretsmanager:us-east-1:111122223333:secret:x-AbCdEf'}
    generic = cs.build_credential_spec(DOMAIN, 'A', host_account={
        'plugin_guid': '859e1386-bdb4-49e8-85c7-3070b13920e1', 'plugin_input': {'k': 'v'}})
    assert generic['ActiveDirectoryConfig']['HostAccountConfig'] == {
        'PortableCcgVersion': '1', 'PluginGUID': '{859E1386-BDB4-49E8-85C7-3070B13920E1}', 'PluginInput': '{"k": "v"}'}
    assert 'HostAccountConfig' not in cs.build_credential_spec(DOMAIN, 'A', host_account={})['ActiveDirectoryConfig']


@pytest.mark.parametrize('domain, account, message', [
    (dict(DOMAIN, domain_sid='S-1-5-21-1-2-3-1105'), 'A', 'not a domain SID'),
    (dict(DOMAIN, domain_guid='nope'), 'A', 'invalid domain GUID'),
    ({k: v for k, v in DOMAIN.items() if k != 'netbios_name'}, 'A', 'netbios_name'),
    (DOMAIN, 'bad*name', 'invalid gMSA account name'),
    (DOMAIN, '', 'non-empty'),
    (dict(DOMAIN, dns_name='bad domain'), 'A', 'invalid domain DNS name'),
    ('not a dict', 'A', 'must be a dict'),
])
def test_bad_input(domain, account, message):
    with pytest.raises(cs.CredentialSpecError, match=message):
        cs.build_credential_spec(domain, account)


def test_validate_reports_crd_problems():
    assert cs.validate_credential_spec({'CmsPlugins': 'x', 'Extra': 1})[:1] == ['CmsPlugins must be a list of strings']
    problems = cs.validate_credential_spec({'CmsPlugins': [], 'DomainJoinConfig': {'Sid': 1},
                                            'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': []}})
    assert 'DomainJoinConfig.Sid must be a non-empty string' in problems
    assert any('GroupManagedServiceAccounts' in p for p in problems)


def test_compact_json():
    text = cs.to_json(cs.build_credential_spec(DOMAIN, 'WebApp1'))
    assert ' ' not in text and json.loads(text)['DomainJoinConfig']['NetBiosName'] == 'CONTOSO'
