"""backend=winrm without a server: the WinRMDirectory (searches <-> the cmdlet scripts' data and answers; the plan's
operations create/update/remove with the module's ObjectType -> New-/Set-/Remove-AD* data), the LDAP writer's side
of the same operations, the mapping of cmdlet errors, the option rules between the backends, and the scripts as
constants."""

from __future__ import annotations

import base64
import datetime

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import engine, kds, reconciler
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import (
    AD_CONNECTION_SPEC, AD_WINRM_OPTIONS, check_backend)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.ldap_client import (
    ADAlreadyExists, ADConnectionError, ADConstraintViolation, ADError, ADInsufficientAccess, ADNoSuchObject, Directory,
    Entry)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.winrm_directory import (
    WinRMDirectory, split_rdn, to_data, to_entry, value_types)
from ansible_collections.winkube.gmsa.plugins.modules import host_group, portable_identity
from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import (
    GroupMSAMembership, sid_to_bytes)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import cmdlets as ad_scripts
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import scripts
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import WINRM_CONNECTION_SPEC
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import PowerShellError, WinRMRunError

DOMAIN_SID = 'S-1-5-21-1-2-3'
GUID = 'd84a141f-2b99-4f08-9da0-ed2d26864ba1'
BASE = 'DC=contoso,DC=test'
HOSTILE = "a'; $(x) `y` \r\n ü 🚀"


def b64(raw):
    return {'b': base64.b64encode(raw).decode('ascii')}


class FakeRunner:
    """Records (host, script name, data) and answers from a queue (a value, or a Fail)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def run(self, host, script, data):
        assert script is ad_scripts.AD_SCRIPTS[script.name]
        self.calls.append((host, script.name, data))
        answer = self.answers.pop(0) if self.answers else {}
        if isinstance(answer, Fail):
            raise answer.error
        return answer


class Fail:
    """An answer of FakeRunner: the command fails with this WinRMRunError (PowerShellError is one)."""

    def __init__(self, error):
        self.error = error


FACTS = {
    'root_dse': {'defaultNamingContext': [BASE], 'configurationNamingContext': ['CN=Configuration,' + BASE],
                 'rootDomainNamingContext': [BASE], 'domainFunctionality': ['7'], 'dnsHostName': ['dc1.contoso.test']},
    'domain': {'distinguished_name': BASE, 'netbios_name': 'CONTOSO', 'dns_root': 'contoso.test',
               'objectSid': b64(sid_to_bytes(DOMAIN_SID)), 'objectGUID': b64(bytes(16))},
    'user': 'CONTOSO\\winrm-admin',
}


def directory(*answers, server=None):
    runner = FakeRunner(FACTS, *answers)
    result = WinRMDirectory(runner, 'dc1:5986', server=server)
    result.load_facts()
    return result, runner


def test_facts_in_one_command_match_the_ldap_backend_properties():
    d, runner = directory(server='dc1.contoso.test')
    assert (d.base_dn, d.config_dn) == (BASE, 'CN=Configuration,' + BASE)
    assert (d.dns_domain, d.forest_dns) == ('contoso.test', 'contoso.test')
    assert d.domain_sid == DOMAIN_SID and d.domain_guid == '00000000-0000-0000-0000-000000000000'
    assert d.netbios_name == 'CONTOSO' and d.root_dse.get('domainFunctionality') == '7'
    assert d.bound_as == 'CONTOSO\\winrm-admin'
    assert d.search('', '(objectClass=*)', ['x'], scope='base') == [d.root_dse]
    assert [(c[1], c[2]['server']) for c in runner.calls] == [('ad_facts', 'dc1.contoso.test')]


def test_search_passes_the_filter_as_data_and_decodes_like_ldap():
    sd = GroupMSAMembership().apply(add=['S-1-5-21-1-2-3-1104'])
    answer = {'objects': [{'dn': 'CN=W1,CN=Managed Service Accounts,' + BASE, 'attributes': {
        'objectClass': ['msDS-GroupManagedServiceAccount'], 'objectSid': [b64(sid_to_bytes(DOMAIN_SID + '-1105'))],
        'sAMAccountName': ['W1$'], 'msDS-GroupMSAMembership': [b64(sd.to_bytes())],
        'msDS-SupportedEncryptionTypes': ['24'], 'userAccountControl': ['4096'], 'description': [HOSTILE]}}]}
    d, runner = directory(answer)
    ldap_filter = '(|(sAMAccountName=W1$)(cn=a\\2a\\28\\29))'
    entries = d.search(BASE, ldap_filter, engine.GMSA_READ_ATTRIBUTES)
    data = runner.calls[-1][2]
    assert data['filter'] == ldap_filter and data['scope'] == 'Subtree' and data['base'] == BASE
    entry = entries[0]
    assert engine.is_gmsa(entry) and 'computer' in entry.values('objectClass')  # the class chain, as LDAP has it
    assert entry.sid() == DOMAIN_SID + '-1105'
    facts = engine.gmsa_facts(entry)
    assert facts['allowed_to_retrieve_password'] == ['S-1-5-21-1-2-3-1104']
    assert facts['kerberos_encryption_types'] == ['aes128', 'aes256'] and facts['enabled'] is True
    assert facts['description'] == HOSTILE
    # the same answer through an LDAP-shaped Entry gives the same plan
    ldap_entry = Entry(entry.dn, dict((k, v) for k, v in entry.raw.items()))
    assert engine.plan(engine.GMSA_ROWS, {}, ldap_entry).before == engine.plan(engine.GMSA_ROWS, {}, entry).before


def test_create_gmsa_takes_the_cmdlet_from_the_object_type_and_its_parameters_from_the_option_values():
    sid = sid_to_bytes(DOMAIN_SID + '-1200')
    d, runner = directory({'dn': 'CN=a\\,b,OU=x,' + BASE, 'objectSid': b64(sid), 'objectGUID': b64(bytes(16))})
    sd = GroupMSAMembership().apply(add=['S-1-5-11'])
    desired = {'sam_account_name': 'ab$', 'dns_host_name': 'ab.contoso.test', 'description': HOSTILE,
               'service_principal_names': ['HTTP/ab'], 'allowed_to_retrieve_password': {'set': ['S-1-5-11']},
               'enabled': False}
    plan = engine.plan(engine.GMSA_ROWS, desired, None)
    d.create('CN=a\\,b,OU=x,' + BASE, reconciler.GMSA, plan.create, plan.after)
    data = runner.calls[-1][2]
    assert data['kind'] == 'service_account' and data['name'] == 'a,b' and data['path'] == 'OU=x,' + BASE
    assert (data['sam_account_name'], data['dns_host_name'], data['enabled']) == ('ab$', 'ab.contoso.test', False)
    other = dict((a['name'], a['values']) for a in data['other_attributes'])
    assert set(other) == {'description', 'servicePrincipalName', 'msDS-GroupMSAMembership',
                          'msDS-SupportedEncryptionTypes', 'msDS-ManagedPasswordInterval'}  # the rest are parameters
    assert other['description'] == [HOSTILE]
    assert other['msDS-GroupMSAMembership'] == [{'sd': base64.b64encode(sd.to_bytes()).decode()}]
    assert other['msDS-SupportedEncryptionTypes'] == [{'i': '24'}] and other['msDS-ManagedPasswordInterval'] == [{'i': '30'}]
    calls = len(runner.calls)
    found = d.get('CN=a\\,b,OU=x,' + BASE, ['objectSid', 'objectGUID'])
    assert found.sid() == DOMAIN_SID + '-1200' and len(runner.calls) == calls  # no second round trip


def test_create_group_user_and_other_objects_from_option_values_not_ldap_encodings():
    d, runner = directory({}, {}, {})
    plan = engine.plan(engine.HOST_GROUP_ROWS, {'sam_account_name': 'G', 'scope': 'universal',
                                                'members': {'set': ['CN=W1,' + BASE]}}, None)
    d.create('CN=G,CN=Users,' + BASE, host_group.GROUP, plan.create, plan.after)
    group = runner.calls[-1][2]
    assert (group['kind'], group['sam_account_name'], group['group_scope'], group['group_category']) == \
        ('group', 'G', 'Universal', 'Security')
    assert group['other_attributes'] == [{'name': 'member', 'values': ['CN=W1,' + BASE]}]
    plan = engine.plan(engine.USER_ROWS, {'sam_account_name': 'U', 'user_principal_name': 'U@contoso.test',
                                          'enabled': True, 'password_never_expires': False}, None)
    d.create('CN=U,CN=Users,' + BASE, portable_identity.USER, plan.create, dict(plan.after, password=HOSTILE))
    user = runner.calls[-1][2]
    assert (user['kind'], user['password'], user['enabled'], user['password_never_expires']) == ('user', HOSTILE, True, False)
    assert user['other_attributes'] == [] and user['user_principal_name'] == 'U@contoso.test'
    keys = reconciler.ObjectType('key', [engine.Row('version', 'msKds-Version', engine.IntCodec())],
                                 ['top', 'msKds-ProvRootKey'], [])  # no cmdlet noun: New-ADObject; rows type values
    d.create('CN=k,CN=Keys,' + BASE, keys, {'msKds-Version': ['7'], 'msKds-RootKeyData': b'\x00\x01'}, {})
    other = runner.calls[-1][2]
    assert other['kind'] == 'object' and other['object_class'] == 'msKds-ProvRootKey'
    assert other['other_attributes'] == [{'name': 'msKds-Version', 'values': [{'i': '7'}]},
                                         {'name': 'msKds-RootKeyData', 'values': [{'b': 'AAE='}]}]


def test_update_and_remove_take_the_set_and_remove_cmdlet_from_the_object_type_without_a_search():
    d, runner = directory({}, {}, {}, {})
    d.update('CN=W1,' + BASE, reconciler.GMSA, {'servicePrincipalName': [('delete', ['HTTP/old']), ('add', ['HTTP/new'])],
                                                'description': ('replace', []), 'userAccountControl': [('replace', ['4098'])]})
    data = runner.calls[-1][2]
    assert data['kind'] == 'service_account' and data['identity'] == 'CN=W1,' + BASE
    assert data['remove'] == [{'name': 'servicePrincipalName', 'values': ['HTTP/old']}]
    assert data['add'] == [{'name': 'servicePrincipalName', 'values': ['HTTP/new']}]
    assert data['replace'] == [{'name': 'userAccountControl', 'values': [{'i': '4098'}]}]
    assert data['clear'] == ['description'] and data['password'] is None
    d.update('CN=U,' + BASE, portable_identity.USER, {}, password=HOSTILE)
    data = runner.calls[-1][2]
    assert data['kind'] == 'object' and data['password'] == HOSTILE and data['replace'] == []
    d.remove('CN=W1,' + BASE, reconciler.GMSA)
    assert runner.calls[-1][1:] == ('ad_remove', {'kind': 'service_account', 'identity': 'CN=W1,' + BASE, 'server': None})
    d.remove('CN=G,' + BASE, host_group.GROUP)
    assert runner.calls[-1][2]['kind'] == 'object'
    assert [c[1] for c in runner.calls] == ['ad_facts', 'ad_set', 'ad_set', 'ad_remove', 'ad_remove']


def test_ldap_shaped_writes_are_refused_by_the_cmdlet_writer():
    d, runner = directory()
    for write in (lambda: d.add('CN=x,' + BASE, ['top', 'group'], {}), lambda: d.modify('CN=x,' + BASE, {}),
                  lambda: d.delete('CN=x,' + BASE)):
        with pytest.raises(ADError, match='backend winrm'):
            write()
    assert [c[1] for c in runner.calls] == ['ad_facts']


class RecordingLDAP(Directory):
    """The LDAP writer with its three LDAP operations recorded instead of sent (no server)."""

    def __init__(self):
        super(RecordingLDAP, self).__init__(None, base_dn=BASE)
        self.calls = []

    def add(self, dn, object_class, attributes):
        self.calls.append(('add', dn, object_class, attributes))

    def modify(self, dn, changes):
        self.calls.append(('modify', dn, changes))

    def delete(self, dn):
        self.calls.append(('delete', dn))


def test_the_ldap_writer_carries_out_the_same_operations_as_add_modify_delete():
    d = RecordingLDAP()
    plan = engine.plan(engine.USER_ROWS, {'sam_account_name': 'U', 'enabled': True}, None)
    d.create('CN=U,' + BASE, portable_identity.USER, plan.create, dict(plan.after, password=HOSTILE))
    d.update('CN=U,' + BASE, portable_identity.USER, {'description': [('replace', ['x'])]}, password=HOSTILE)
    d.remove('CN=U,' + BASE, portable_identity.USER)
    pwd = ('"%s"' % HOSTILE).encode('utf-16-le')
    assert d.calls == [
        ('add', 'CN=U,' + BASE, engine.USER_OBJECT_CLASS, dict(plan.create, unicodePwd=[pwd])),
        ('modify', 'CN=U,' + BASE, {'description': [('replace', ['x'])], 'unicodePwd': [('replace', [pwd])]}),
        ('delete', 'CN=U,' + BASE)]


def test_guarded_grant_is_one_set_call_with_remove_of_the_old_and_add_of_the_new_value():
    """The plan's delete-old/add-new of msDS-GroupMSAMembership becomes one Set-ADServiceAccount with -Remove of
    the exact value read and -Add of the new one (never -Replace), so a concurrent change makes it fail."""
    old = GroupMSAMembership.for_principals([DOMAIN_SID + '-1105']).to_bytes()
    entry = {'sAMAccountName': [b'W1$'], 'msDS-GroupMSAMembership': [old]}
    plan = engine.plan(engine.PASSWORD_READER_ROWS, {'allowed_to_retrieve_password': {'add': [DOMAIN_SID + '-1106']}},
                       entry)
    d, runner = directory({})
    d.update('CN=W1,' + BASE, reconciler.PASSWORD_READER, plan.changes)
    data = runner.calls[-1][2]
    assert data['kind'] == 'service_account' and data['replace'] == [] and data['clear'] == []
    assert data['remove'] == [{'name': 'msDS-GroupMSAMembership', 'values': [{'sd': base64.b64encode(old).decode()}]}]
    (added,) = data['add']
    assert GroupMSAMembership.from_bytes(base64.b64decode(added['values'][0]['sd'])).allowed_sids == [
        DOMAIN_SID + '-1105', DOMAIN_SID + '-1106']


def cmdlet_error(exception, category, command='New-ADServiceAccount', message='boom'):
    return PowerShellError('%s: %s' % (command, message), details={
        'message': message, 'category': category, 'exception': exception, 'command': command,
        'error_id': 'ActiveDirectoryCmdlet:%s,Microsoft.ActiveDirectory.Management.Commands.X' % exception})


@pytest.mark.parametrize('exception, category, cls, code, words', [
    ('Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException', 'ObjectNotFound', ADNoSuchObject, 32,
     'no such object (New-ADServiceAccount: boom)'),
    ('Microsoft.ActiveDirectory.Management.ADIdentityAlreadyExistsException', 'ResourceExists', ADAlreadyExists, 68,
     'already exists'),
    ('System.UnauthorizedAccessException', 'PermissionDenied', ADInsufficientAccess, 50, 'Create Child'),
    ('Microsoft.ActiveDirectory.Management.ADPasswordComplexityException', 'InvalidData', ADConstraintViolation, 19,
     'constraint violation'),
    ('Microsoft.ActiveDirectory.Management.ADException', 'NotSpecified', ADError, None, 'add of CN=W1'),
])
def test_cmdlet_errors_become_the_ldap_backend_error_classes(exception, category, cls, code, words):
    d, dummy = directory(Fail(cmdlet_error(exception, category)))
    with pytest.raises(ADError) as info:
        d.create('CN=W1,' + BASE, reconciler.GMSA, {'sAMAccountName': ['W1$'], 'dNSHostName': ['w1']},
                 {'sam_account_name': 'W1$', 'dns_host_name': 'w1', 'enabled': True})
    assert info.value.__class__.__name__ == cls.__name__ and isinstance(info.value, cls) and info.value.code == code
    assert words in str(info.value) and 'New-ADServiceAccount: boom' in str(info.value)


def test_unreachable_dc_and_winrm_failures_name_the_option():
    d, dummy = directory(Fail(cmdlet_error('Microsoft.ActiveDirectory.Management.ADServerDownException',
                                           'ResourceUnavailable', 'Get-ADObject', 'Unable to contact the server.')),
                         server='dc9')
    with pytest.raises(ADConnectionError) as info:
        d.search(BASE, '(cn=x)', ['cn'])
    assert info.value.field == 'server' and 'dc9' in str(info.value)
    d, dummy = directory(Fail(WinRMRunError('rejected the credentials', kind='authentication')))
    with pytest.raises(ADConnectionError) as info:
        d.remove('CN=x,' + BASE, reconciler.GMSA)
    assert info.value.field == 'winrm.password'
    d, dummy = directory(Fail(cmdlet_error('Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException',
                                           'ObjectNotFound', 'Get-ADObject')))
    assert d.get('CN=gone,' + BASE, ['cn']) is None  # as the LDAP backend's get


def test_kds_keys_from_get_kdsrootkey_are_judged_like_ldap_entries():
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - kds.LAB_BACKDATE
    key = {'id': GUID, 'version': '1', 'create_time': str(kds.nt_time(now)), 'use_start_time': str(kds.nt_time(start)),
           'kdf_algorithm': 'SP800_108_CTR_HMAC', 'kdf_parameters': b64(kds.kdf_parameters_blob()), 'key_length': 64,
           'domain_controller': 'CN=DC1,OU=Domain Controllers,' + BASE}
    d, runner = directory({'keys': [key]}, {'id': GUID})
    keys = kds.read_root_keys(d, now)
    assert keys[0]['well_formed'] is True and keys[0]['usable'] is True and keys[0]['id'] == GUID
    assert keys[0]['dn'].startswith('CN=%s,CN=Master Root Keys' % GUID)
    assert kds.create_root_key(d, now, now=now)[0] == GUID
    assert runner.calls[-1][2]['effective_immediately'] is True
    d.runner.answers = [{'id': GUID}]
    kds.create_root_key(d, start, now=now)
    assert runner.calls[-1][2] == {'effective_immediately': False, 'effective_time': str(kds.nt_time(start)),
                                   'server': None}


def test_rdn_unescaping_and_value_encoding():
    assert split_rdn('CN=a\\,b\\+c\\3Dd\\c3\\bc,OU=x,DC=y') == ('a,b+c=dü', 'OU=x,DC=y')
    assert to_data('-2147483644', 'i') == {'i': '-2147483644'}
    assert to_data('12') == '12' and to_data(12) == {'i': '12'} and to_data(b'\x01') == {'b': 'AQ=='}
    assert to_data(b'\x01', 'sd') == {'sd': 'AQ=='}
    assert value_types(reconciler.GMSA) == {'msds-groupmsamembership': 'sd', 'msds-supportedencryptiontypes': 'i',
                                            'msds-managedpasswordinterval': 'i', 'useraccountcontrol': 'i'}
    assert to_entry('CN=x', {'objectClass': ['group'], 'member': []}).values('objectClass') == ['top', 'group']


def test_backend_rules_name_the_option():
    ldap = dict(backend='ldap', server='dc1', auth_method='simple', username='u', password='p', encryption='ldaps',
                validate_certs=True, timeout=10)
    assert check_backend(ldap) == []
    assert check_backend(dict(ldap, username=None, password=None))[0][1] == \
        'auth_method is simple but all of the following are missing: username, password'
    assert check_backend(dict(ldap, auth_method='kerberos', username=None, password=None)) == []
    assert [o for o, _m in check_backend(dict(ldap, winrm={'hosts': ['x']}))] == ['winrm']
    winrm = dict(backend='winrm', winrm={'hosts': ['dc1']}, encryption='ldaps', auth_method='simple',
                 validate_certs=True, timeout=10, server='dc1.contoso.test')
    assert check_backend(winrm) == []
    errors = check_backend(dict(winrm, username='u', password='p', port=636, ca_file='/x', encryption='starttls',
                                validate_certs=False))
    assert [o for o, _m in errors] == ['port', 'encryption', 'username', 'password', 'ca_file', 'validate_certs']
    assert 'GMSA_AD_USERNAME' in dict(errors)['username'] and 'winrm.username' in dict(errors)['username']


def test_spec_nests_the_winrm_options_and_keeps_secrets_no_log():
    assert AD_CONNECTION_SPEC['backend']['default'] == 'ldap'
    assert AD_CONNECTION_SPEC['winrm']['options'] is AD_WINRM_OPTIONS
    assert set(AD_WINRM_OPTIONS) == set(WINRM_CONNECTION_SPEC) - {'concurrency'}
    assert AD_WINRM_OPTIONS['password']['no_log'] is True and AD_WINRM_OPTIONS['validate_certs']['default'] is True
    assert 'required' not in AD_CONNECTION_SPEC['server']


def test_ad_scripts_are_constants_taking_data_only():
    assert set(ad_scripts.AD_SCRIPTS).isdisjoint(scripts.SCRIPTS)
    for script in ad_scripts.AD_SCRIPTS.values():
        assert script.text.startswith('param($Data)\n')
        assert '{0}' not in script.text and '%s' not in script.text
        assert scripts.RESULT_MARKER not in script.text
        assert 'Invoke-Expression' not in script.text and 'iex ' not in script.text.lower()
    assert 'LDAPFilter = [string]$Data.filter' in ad_scripts.AD_SEARCH.text  # the filter arrives as data
    for cmdlet in ('New-ADServiceAccount', 'New-ADGroup', 'New-ADUser', 'New-ADObject'):
        assert cmdlet in ad_scripts.AD_NEW.text
    for cmdlet in ('Set-ADServiceAccount', 'Set-ADObject', 'Set-ADAccountPassword'):
        assert cmdlet in ad_scripts.AD_SET.text
