"""winkube.gmsa.portable_identity against the real Samba AD DC: the standard user that a ccg.exe plugin hands to
non-domain-joined nodes. Every result is read back from the directory; the generated password is captured
from a no_log registered result written by the playbook to a 0600 file, then used for a simple bind over LDAPS.
"""

from __future__ import annotations

import json
import os
import stat
import struct

import ldap3
import pytest

from test_gmsa import (  # noqa: F401  pylint: disable=unused-import
    allowed_sids,
    attrs_of,
    delete,
    gmsa_entry,
    read,
    read_managed_password,
    run_module,
    uid,
)

# The module's result is registered with no_log; only the file gets the credentials. The debug task shows
# the result without them, so the test can check it.
CAPTURE_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: identity
      winkube.gmsa.portable_identity: "{{ module_args }}"
      register: identity
      no_log: true
      ignore_errors: true
    - name: save
      ansible.builtin.copy:
        content: "{{ identity.credentials | default({}) | to_json }}"
        dest: "{{ creds_file }}"
        mode: "0600"
      no_log: true
      when: not ansible_check_mode
    - name: result
      ansible.builtin.debug:
        msg: "{{ identity | dict2items | rejectattr('key', 'equalto', 'credentials') | items2dict
                 | combine({'has_credentials': identity.credentials is defined}) }}"
"""


@pytest.fixture
def run_identity(run_playbook, samba_lab, tmp_path):
    """Run portable_identity with no_log; return (result without credentials, credentials or None, stdout)."""
    def _run(check=False, diff=False, **args):
        creds_file = tmp_path / ('creds-%s.json' % uid())
        params = samba_lab.module_args(**args)
        result = run_playbook(CAPTURE_PLAY, extra_vars={'module_args': params, 'creds_file': str(creds_file)},
                              check=check, diff=diff)
        assert 'result' in result.results, result
        out = result.results['result']['msg']
        creds = None
        if creds_file.exists():
            assert stat.S_IMODE(os.stat(creds_file).st_mode) == 0o600
            creds = json.loads(creds_file.read_text()) or None
            creds_file.unlink()
        return out, creds, result.stdout + result.stderr
    return _run


def user_entry(samba_lab, sam):
    found = read(samba_lab, '(&(objectCategory=person)(sAMAccountName=%s))' % sam,
                 ['objectClass', 'sAMAccountName', 'userPrincipalName', 'userAccountControl', 'objectSid',
                  'distinguishedName'])
    return found[0] if found else None


def pwd_last_set(samba_lab, sam):
    found = read(samba_lab, '(sAMAccountName=%s)' % sam, ['pwdLastSet'])
    return int(attrs_of(found[0])['pwdLastSet'][0])


def bind_works(samba_lab, dn, password):
    """True when the simple bind succeeds, False when the DC refuses the credentials; anything else raises."""
    try:
        conn = samba_lab.ldap(user=dn, password=password)
    except ldap3.core.exceptions.LDAPInvalidCredentialsResult:
        return False
    try:
        return bool(conn.bound)
    finally:
        conn.unbind()


def test_portable_identity_reads_the_gmsa_password(run_identity, run_module, samba_lab):
    gmsa = 'gp%s' % uid()
    name = 'ccg%s' % uid()
    other = 'ccx%s' % uid()
    try:
        res = run_module(accounts=[{'name': gmsa}])
        assert res.get('changed') is True, res.get('msg')

        # check mode: reports the user and the grant, writes nothing, returns no credentials
        out, creds, dummy = run_identity(check=True, diff=True, name=name, gmsas=[gmsa])
        assert out.get('changed') is True, out
        assert out['user']['password_set'] is True and out['has_credentials'] is False
        assert user_entry(samba_lab, name) is None
        assert allowed_sids(gmsa_entry(samba_lab, gmsa + '$')) == []
        assert out['diff']['after']['gmsas'][gmsa] == [name]
        assert out['diff']['after']['user']['password'] == 'changed (value not shown)'

        out, creds, stdout = run_identity(name=name, gmsas=[gmsa])
        assert out.get('changed') is True, out
        assert creds is not None and out["has_credentials"] is True, out
        assert creds['password'] not in stdout  # no_log kept it out of the output
        assert len(creds['password']) == 32
        entry = user_entry(samba_lab, name)
        attrs = attrs_of(entry)
        assert int(attrs['userAccountControl'][0]) == 0x200 | 0x10000  # normal account, password never expires
        assert attrs['userPrincipalName'] == ['%s@%s' % (name, samba_lab.dns_domain)]
        assert 'computer' not in [c.lower() for c in attrs['objectClass']]
        assert allowed_sids(gmsa_entry(samba_lab, gmsa + '$')) == [out['user']['sid']]
        # the store formats
        assert creds['azure_key_vault_secret'] == '%s\\%s:%s' % (samba_lab.dns_domain, name, creds['password'])
        assert json.loads(creds['aws_secrets_manager_secret']) == {
            'username': name, 'password': creds['password'], 'domainName': samba_lab.dns_domain}

        # the portable identity reads a version-1 managed password blob over LDAPS
        user_dn = entry['dn']
        blob = read_managed_password(samba_lab, user_dn, creds['password'], gmsa + '$')
        assert blob is not None and struct.unpack('<H', blob[:2])[0] == 1, blob

        # a user that was not granted gets nothing
        out2, other_creds, dummy = run_identity(name=other)
        assert out2.get('changed') is True and other_creds is not None, out2
        other_dn = user_entry(samba_lab, other)['dn']
        assert read_managed_password(samba_lab, other_dn, other_creds['password'], gmsa + '$') is None

        # second run: nothing changes, the password is not rotated, nothing secret is returned
        again, again_creds, dummy = run_identity(name=name, gmsas=[gmsa])
        assert again.get('changed') is False, again
        assert again_creds is None and again['has_credentials'] is False
        assert again['ldap_operations'] == {'searches': 1, 'writes': 0}
        assert bind_works(samba_lab, user_dn, creds['password'])

        # rotation on request: a new password is set (pwdLastSet moves) and works. (Samba still accepts the
        # previous password for its "old password allowed period", so the old one is not checked here.)
        set_before = pwd_last_set(samba_lab, name)
        rotated, new_creds, dummy = run_identity(name=name, gmsas=[gmsa], update_password='always')
        assert rotated.get('changed') is True and new_creds is not None, rotated
        assert new_creds['password'] != creds['password']
        assert pwd_last_set(samba_lab, name) > set_before
        assert bind_works(samba_lab, user_dn, new_creds['password'])
        assert read_managed_password(samba_lab, user_dn, new_creds['password'], gmsa + '$') is not None

        # attribute changes without touching the password
        res = run_module(module='portable_identity', name=name, enabled=False, password_never_expires=False)
        assert res.get('changed') is True and 'credentials' not in res, res
        assert int(attrs_of(user_entry(samba_lab, name))['userAccountControl'][0]) == 0x200 | 0x2

        # state=absent revokes the user from the gMSA and deletes it
        res = run_module(module='portable_identity', name=name, gmsas=[gmsa], state='absent')
        assert res.get('changed') is True, res.get('msg')
        assert user_entry(samba_lab, name) is None
        assert allowed_sids(gmsa_entry(samba_lab, gmsa + '$')) == []
        res = run_module(module='portable_identity', name=name, gmsas=[gmsa], state='absent')
        assert res.get('changed') is False, res
    finally:
        run_module(module='portable_identity', name=name, state='absent')
        run_module(module='portable_identity', name=other, state='absent')
        run_module(accounts=[{'name': gmsa}], state='absent')


def test_given_password_is_never_returned_and_checked_by_bind(run_module, samba_lab):
    name = 'ccp%s' % uid()
    password = 'Given-%s-Pw9!' % uid()
    try:
        res = run_module(module='portable_identity', name=name, identity_password=password, update_password='always')
        assert res.get('changed') is True and 'credentials' not in res, res
        dn = user_entry(samba_lab, name)['dn']
        assert bind_works(samba_lab, dn, password)
        # the same password again: the bind as the user works, so nothing is written
        res = run_module(module='portable_identity', name=name, identity_password=password, update_password='always')
        assert res.get('changed') is False and res['ldap_operations']['writes'] == 0, res
        # another password: set
        res = run_module(module='portable_identity', name=name, identity_password=password + 'x', update_password='always')
        assert res.get('changed') is True and res['user']['password_set'] is True, res
        assert bind_works(samba_lab, dn, password + 'x')
        # a password the domain refuses (too short for the policy) fails clearly, nothing else written
        res = run_module(module='portable_identity', name=name, identity_password='Zq1', update_password='always')
        assert res.get('failed') and 'complexity' in res['msg'] and 'unicodePwd' in res['msg'], res
    finally:
        run_module(module='portable_identity', name=name, state='absent')


@pytest.mark.parametrize('args, field, words', [
    ({'name': 'a)(cn=*'}, 'name', 'not allowed'),
    ({'name': 'x,CN=Administrator'}, 'name', 'not allowed'),
    ({'name': 'ok', 'sam_account_name': 'adm*'}, 'sam_account_name', 'not allowed'),
    ({'name': 'ok', 'sam_account_name': 'a' * 21}, 'sam_account_name', 'at most 20'),
    ({'name': 'ok', 'sam_account_name': 'node$'}, 'sam_account_name', 'computer accounts'),
    ({'name': 'bad\nname'}, 'name', 'control characters'),
    ({'name': 'ok', 'password_length': 8}, 'password_length', 'between 16'),
    ({'name': 'ok', 'gmsas': ['nosuch-gmsa-x']}, 'gmsas', 'matches no gMSA'),
    ({'name': 'ok', 'kubernetes_secret': {'name': 'Bad_Name', 'namespace': 'x'}}, 'kubernetes_secret', 'DNS-1123'),
])
def test_hostile_input_is_rejected_before_any_write(run_module, samba_lab, args, field, words):
    res = run_module(module='portable_identity', **args)
    assert res.get('failed'), res
    assert words in res['msg'] and 'nothing was changed' in res['msg'], res['msg']
    assert field in res.get('failed_options', []), res
    assert res.get('changed') is not True
    assert user_entry(samba_lab, 'ok') is None


FILTER_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: spec
      ansible.builtin.set_fact:
        spec: "{{ domain | winkube.gmsa.credential_spec('WebApp1', host_account_config=host) }}"
      ignore_errors: true
"""

DOMAIN = {'dns_name': 'contoso.com', 'netbios_name': 'CONTOSO', 'forest_dns_name': 'contoso.com',
          'domain_guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
          'domain_sid': 'S-1-5-21-2126449477-2524075714-3094792973'}


@pytest.mark.parametrize('host, words', [
    ({'plugin_guid': '{not-a-guid}', 'plugin_input': 'x'}, 'is not a GUID'),
    ({'plugin_guid': 'CCC2A336-D7F3-4818-A213-272B7924213E}', 'plugin_input': 'x'}, 'is not a GUID'),
    ({'plugin': 'azure_key_vault', 'object_id': '11111111-2222-3333-4444-555555555555',
      'secret_uri': 'http://kv1.vault.azure.net/secrets/gmsa'}, 'not a Key Vault secret URI'),
    ({'plugin': 'azure_key_vault', 'object_id': '11111111-2222-3333-4444-555555555555',
      'secret_uri': 'https://kv1.vault.azure.net/secrets/gmsa;ObjectId=evil'}, 'not a Key Vault secret URI'),
    ({'plugin': 'azure_key_vault', 'object_id': '11111111-2222-3333-4444-555555555555',
      'secret_uri': 'https://evil.example.com/secrets/gmsa'}, 'not a Key Vault secret URI'),
    ({'plugin': 'azure_key_vault', 'object_id': 'me', 'secret_uri': 'https://kv1.vault.azure.net/secrets/g'},
     'object_id'),
    ({'plugin': 'aws', 'credential_arn': 'arn:aws:s3:::bucket/key'}, 'credential_arn'),
    ({'plugin': 'aws', 'credential_arn': 'arn:aws:secretsmanager:us-east-1:1:secret:x', 'secret_uri': 'x'},
     'does not take secret_uri'),
    ({'plugin': 'gcp'}, 'unknown host account plugin'),
])
def test_hostile_host_account_config_is_rejected_by_the_filter(run_playbook, host, words):
    result = run_playbook(FILTER_PLAY, extra_vars={'domain': DOMAIN, 'host': host})
    res = result.results['spec']
    assert res.get('failed'), res
    assert 'winkube.gmsa.credential_spec' in res['msg'] and words in res['msg'], res['msg']


ROLE_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: gmsa_ad
      ansible.builtin.include_role:
        name: winkube.gmsa.gmsa_ad
        tasks_from: "{{ entry | default('main') }}"
    - name: save
      ansible.builtin.copy:
        content: "{{ gmsa_ad_portable_identity_credentials | default({}) | to_json }}"
        dest: "{{ creds_file }}"
        mode: "0600"
      no_log: true
      when: not ansible_check_mode
"""


def _changed(result):
    doc = json.loads(result.stdout)
    return sorted(task['task']['name'] for play in doc['plays'] for task in play['tasks']
                  if task['hosts'].get('localhost', {}).get('changed'))


def test_gmsa_ad_role_in_non_domain_joined_mode(run_playbook, run_module, samba_lab, tmp_path):
    """The role creates the portable identity, puts it in the host group, and the group is granted the gMSA:
    the identity reads the password blob through its group membership. Second run: nothing changes."""
    suffix = uid()
    group, gmsa, ident = 'PHosts%s' % suffix, 'pr%s' % suffix, 'ccgr%s' % suffix
    creds_file = tmp_path / 'role-creds.json'
    variables = {
        'gmsa_domain': dict(samba_lab.module_args(), kds_root_key={'lab_mode': True}),
        'gmsa_nodes': {'mode': 'non_domain_joined', 'host_group': group,
                       'portable_identity': {'name': ident, 'credentials_to_result': True},
                       'host_account_config': {'plugin': 'azure_key_vault',
                                               'object_id': '11111111-2222-3333-4444-555555555555',
                                               'secret_uri': 'https://kv1.vault.azure.net/secrets/gmsa-user'}},
        'gmsa_accounts': [{'name': gmsa}],
        'creds_file': str(creds_file),
    }
    try:
        check = run_playbook(ROLE_PLAY, extra_vars=variables, check=True)
        assert check.rc == 0, check
        assert user_entry(samba_lab, ident) is None and gmsa_entry(samba_lab, gmsa + '$') is None

        first = run_playbook(ROLE_PLAY, extra_vars=variables)
        assert first.rc == 0, first
        creds = json.loads(creds_file.read_text())
        assert creds['password'] not in first.stdout + first.stderr
        user_dn = user_entry(samba_lab, ident)['dn']
        members = read(samba_lab, '(sAMAccountName=%s)' % group, ['member'])[0]['raw_attributes']['member']
        assert [m.decode().lower() for m in members] == [user_dn.lower()]
        blob = read_managed_password(samba_lab, user_dn, creds['password'], gmsa + '$')
        assert blob is not None and struct.unpack('<H', blob[:2])[0] == 1

        creds_file.unlink()
        second = run_playbook(ROLE_PLAY, extra_vars=variables)
        assert second.rc == 0, second
        assert [t for t in _changed(second) if t != 'save'] == [], _changed(second)
        assert json.loads(creds_file.read_text()) == {}  # not rotated, nothing returned
        assert bind_works(samba_lab, user_dn, creds['password'])

        removed = run_playbook(ROLE_PLAY, extra_vars=dict(variables, entry='remove'))
        assert removed.rc == 0, removed
        assert user_entry(samba_lab, ident) is None
    finally:
        run_module(module='portable_identity', name=ident, state='absent')
        run_module(module='host_group', name=group, state='absent')
        run_module(accounts=[{'name': gmsa}], state='absent')
