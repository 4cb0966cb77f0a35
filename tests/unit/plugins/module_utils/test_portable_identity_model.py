"""HostAccountConfig and the secret formats, compared field by field with the vendors' documented examples
(AKS "Enable Group Managed Service Accounts (GMSA) for your Windows Server nodes", Amazon ECS "Using Amazon ECS
Windows containers with domainless gMSA"), and the password generator."""

from __future__ import annotations

import json
import string

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.models import credential_spec as cs
from ansible_collections.winkube.gmsa.plugins.module_utils.models import portable_identity as pi

DOMAIN = {'dns_name': 'contoso.com', 'netbios_name': 'CONTOSO', 'forest_dns_name': 'contoso.com',
          'domain_guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
          'domain_sid': 'S-1-5-21-2126449477-2524075714-3094792973'}
OBJECT_ID = '11111111-2222-3333-4444-555555555555'
SECRET_URI = 'https://myGMSAVault.vault.azure.net/secrets/GMSADomainUserCred'
ARN = 'arn:aws:secretsmanager:us-west-2:111122223333:secret:gmsa-plugin-input'

# AKS: the GMSACredentialSpec of the AKS page with its placeholders filled in.
AKS_EXAMPLE = {
    'ActiveDirectoryConfig': {
        'GroupManagedServiceAccounts': [{'Name': 'WebApp1', 'Scope': 'CONTOSO'},
                                        {'Name': 'WebApp1', 'Scope': 'contoso.com'}],
        'HostAccountConfig': {
            'PluginGUID': '{CCC2A336-D7F3-4818-A213-272B7924213E}',
            'PortableCcgVersion': '1',
            'PluginInput': 'ObjectId=%s;SecretUri=%s' % (OBJECT_ID, SECRET_URI),
        },
    },
    'CmsPlugins': ['ActiveDirectory'],
    'DomainJoinConfig': {'DnsName': 'contoso.com', 'DnsTreeName': 'contoso.com',
                         'Guid': '244818ae-87ac-4fcd-92ec-e79e5252348a', 'MachineAccountName': 'WebApp1',
                         'NetBiosName': 'CONTOSO', 'Sid': 'S-1-5-21-2126449477-2524075714-3094792973'},
}

# Amazon ECS: the HostAccountConfig block of the domainless gMSA tutorial (PluginInput is a JSON string).
AWS_HOST_ACCOUNT = {
    'PortableCcgVersion': '1',
    'PluginGUID': '{859E1386-BDB4-49E8-85C7-3070B13920E1}',
    'PluginInput': '{"credentialArn": "%s"}' % ARN,
}


def _account_key(entry):
    return (entry['Name'], entry['Scope'])


def _same_accounts(a, b):
    return sorted(a, key=_account_key) == sorted(b, key=_account_key)


def test_azure_key_vault_matches_the_aks_example_field_by_field():
    spec = cs.build_credential_spec(DOMAIN, 'WebApp1', host_account={
        'plugin': 'azure_key_vault', 'object_id': OBJECT_ID, 'secret_uri': SECRET_URI})
    assert spec['CmsPlugins'] == AKS_EXAMPLE['CmsPlugins']
    for field, value in AKS_EXAMPLE['DomainJoinConfig'].items():
        assert spec['DomainJoinConfig'][field] == value, field
    # the same two entries (the AKS page lists the NetBIOS scope first, New-CredentialSpec the DNS scope)
    assert _same_accounts(spec['ActiveDirectoryConfig']['GroupManagedServiceAccounts'],
                          AKS_EXAMPLE['ActiveDirectoryConfig']['GroupManagedServiceAccounts'])
    for field, value in AKS_EXAMPLE['ActiveDirectoryConfig']['HostAccountConfig'].items():
        assert spec['ActiveDirectoryConfig']['HostAccountConfig'][field] == value, field
    assert set(spec['ActiveDirectoryConfig']['HostAccountConfig']) == {'PluginGUID', 'PortableCcgVersion', 'PluginInput'}
    assert cs.validate_credential_spec(spec) == []


def test_aws_matches_the_ecs_example_byte_for_byte():
    spec = cs.build_credential_spec(DOMAIN, 'WebApp1', host_account={'plugin': 'aws', 'credential_arn': ARN})
    host = spec['ActiveDirectoryConfig']['HostAccountConfig']
    assert host == AWS_HOST_ACCOUNT
    assert isinstance(host['PluginInput'], str)  # the CRD's leaves are strings
    assert json.loads(host['PluginInput']) == {'credentialArn': ARN}
    # an SSM Parameter Store ARN is documented as well
    ssm = 'arn:aws:ssm:us-west-2:111122223333:parameter/gmsa-plugin-input'
    assert json.loads(cs.aws_host_account(ssm)['PluginInput']) == {'credentialArn': ssm}


def test_custom_plugin():
    host = cs.build_credential_spec(DOMAIN, 'A', host_account={
        'plugin_guid': '{8019a64c-3f4e-4de3-ad2b-9a544290e2c3}', 'plugin_input': 'anything;at=all'})
    assert host['ActiveDirectoryConfig']['HostAccountConfig'] == {
        'PortableCcgVersion': '1', 'PluginGUID': '{8019A64C-3F4E-4DE3-AD2B-9A544290E2C3}',
        'PluginInput': 'anything;at=all'}


@pytest.mark.parametrize('host, words', [
    ({'plugin_guid': 'not-a-guid', 'plugin_input': 'x'}, 'not a GUID'),
    ({'plugin_guid': '{CCC2A336-D7F3-4818-A213-272B7924213E', 'plugin_input': 'x'}, 'not a GUID'),
    ({'plugin_guid': '{CCC2A336-D7F3-4818-A213-272B7924213E}', 'plugin_input': 'a\nb'}, 'control characters'),
    ({'plugin_guid': '{CCC2A336-D7F3-4818-A213-272B7924213E}', 'plugin_input': 'x',
      'portable_ccg_version': '2'}, 'must be "1"'),
    ({'plugin': 'azure_key_vault', 'object_id': OBJECT_ID, 'secret_uri': 'https://kv1.vault.azure.net/keys/k'},
     'not a Key Vault secret URI'),
    ({'plugin': 'azure_key_vault', 'object_id': OBJECT_ID,
      'secret_uri': 'https://kv1.vault.azure.net/secrets/s?api-version=7'}, 'not a Key Vault secret URI'),
    ({'plugin': 'azure_key_vault', 'object_id': OBJECT_ID, 'secret_uri': 'https://kv1.evil.net/secrets/s'},
     'not a Key Vault secret URI'),
    ({'plugin': 'azure_key_vault', 'object_id': 'x;SecretUri=y', 'secret_uri': SECRET_URI}, 'object_id'),
    ({'plugin': 'aws', 'credential_arn': 'arn:aws:secretsmanager:us-west-2:1:secret:x'}, 'credential_arn'),
    ({'plugin': 'aws', 'credential_arn': ARN + '"}'}, 'credential_arn'),
    ({'plugin': 'azure_key_vault', 'object_id': OBJECT_ID, 'secreturi': SECRET_URI}, 'does not take secreturi'),
])
def test_bad_host_account_config(host, words):
    with pytest.raises(cs.CredentialSpecError, match=words.replace('?', r'\?')):
        cs.build_credential_spec(DOMAIN, 'A', host_account=host)


def test_sovereign_cloud_and_versioned_secret_uri():
    for uri in ('https://kv1.vault.azure.cn/secrets/gmsa', 'https://kv1.vault.usgovcloudapi.net/secrets/gmsa',
                'https://kv1.vault.azure.net/secrets/gmsa/0123456789abcdef0123456789abcdef'):
        assert cs.check_secret_uri(uri) == uri


def test_secret_formats_of_the_stores():
    creds = pi.credentials('contoso.com', 'CONTOSO', 'ccg-nodes', 'P@ss:w;rd')
    # Key Vault (AKS page): "<domain FQDN>\<user>:<password>"
    assert creds['azure_key_vault_secret'] == 'contoso.com\\ccg-nodes:P@ss:w;rd'
    # Secrets Manager (ECS tutorial): {"username", "password", "domainName"}
    assert json.loads(creds['aws_secrets_manager_secret']) == {
        'username': 'ccg-nodes', 'password': 'P@ss:w;rd', 'domainName': 'contoso.com'}
    assert set(pi.secret_data(creds)) == {'username', 'password', 'domainName', 'azureKeyVaultSecret',
                                          'awsSecretsManagerSecret'}


def test_generated_passwords():
    seen = set()
    for dummy in range(200):
        value = pi.generate_password(32)
        assert len(value) == 32 and value not in seen
        seen.add(value)
        assert any(c in string.ascii_uppercase for c in value) and any(c in string.ascii_lowercase for c in value)
        assert any(c in string.digits for c in value) and any(c in pi.SYMBOLS for c in value)
        assert not set(value) & set(':;\\"\'{}%$# ')
    with pytest.raises(pi.IdentityError):
        pi.generate_password(8)
    assert pi.unicode_pwd('Ab1') == '"Ab1"'.encode('utf-16-le')


@pytest.mark.parametrize('sam, words', [
    ('a' * 21, 'at most 20'), ('x*', 'not allowed'), ('a)(cn=*', 'not allowed'), ('node$', 'computer accounts'),
    (' lead', 'blanks'), ('...', 'dots'),
])
def test_user_sam_rules(sam, words):
    with pytest.raises(pi.IdentityError, match=words.replace('(', r'\(')):
        pi.check_user_sam(sam)
