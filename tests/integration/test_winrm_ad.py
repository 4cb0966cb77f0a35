"""The AD modules with backend=winrm, end to end: ansible-playbook -> the module -> pywinrm (HTTPS, NTLM) -> the
local WS-Management endpoint, whose lab/winrm/fake_ad.py imitates the ActiveDirectory cmdlet scripts against the
real Samba AD DC. Every change is read back over LDAP from Samba, and the same tasks with backend=ldap agree.

What this proves: the shared module logic with the WinRM backend (results, idempotence, check mode, diff), the
mapping between LDAP operations and the cmdlets' data, that user values travel as data only, and cmdlet errors
as module failures. What it cannot prove: that the PowerShell behaves on Windows as fake_ad.py imitates it.
"""

from __future__ import annotations

import secrets

import ldap3
import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import cmdlets as ad_scripts


PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: task
      winkube.gmsa.{module}: "{{{{ module_args }}}}"
      register: out
      ignore_errors: true
"""
HOSTILE = 'it\'s "quoted"; $(Stop-Computer) `whoami` @{a=1} ;\r\nline 2 ü 漢字 🚀 %PATH% ${x}'


@pytest.fixture
def ad(winrm_ad_lab, run_playbook):
    lab = winrm_ad_lab

    def run(module, backend='winrm', check=False, diff=False, **args):
        params = lab.module_args(**args) if backend == 'winrm' else lab.samba.module_args(**args)
        result = run_playbook(PLAY.format(module=module), extra_vars={'module_args': params}, check=check, diff=diff)
        assert 'task' in result.results, result
        output = result.stdout + result.stderr
        assert lab.winrm.password not in output and lab.samba.admin_password not in output
        task = result.results['task']
        task['_result'] = result
        return task

    lab.run = run
    return lab


def uid():
    return secrets.token_hex(3)


def ldap_read(lab, ldap_filter, attributes=('*',), base=None):
    conn = lab.samba.ldap()
    try:
        conn.search(base or lab.samba.base_dn, ldap_filter, attributes=list(attributes))
        return [e for e in conn.response if e.get('type') == 'searchResEntry']
    finally:
        conn.unbind()


def text(entry, name):
    values = entry['raw_attributes'].get(name) or []
    return [v.decode('utf-8') for v in values]


def ldap_delete(lab, *dns):
    conn = lab.samba.ldap()
    try:
        for dn in dns:
            try:
                conn.delete(dn)
            except ldap3.core.exceptions.LDAPException:
                pass  # already gone
    finally:
        conn.unbind()


def scripts_run(lab):
    return [e.get('name') for e in lab.journal()]


def leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, str):
        yield value


def assert_data_only(lab, *values):
    """Every command's script is the collection's constant, and each user value arrived as data, intact, in
    no command line, bootstrap or script text."""
    journal = lab.journal()
    assert journal
    for entry in journal:
        assert entry['script'] == ad_scripts.AD_SCRIPTS[entry['name']].text, entry['name']
        for value in values:
            assert value not in entry['script'] + entry['bootstrap'] + entry['arguments'], (entry['name'], value)
    for value in values:
        assert any(value in leaves(entry['data']) for entry in journal), value
    return journal


# ------------------------------------------------------------------------------------------------------------
def test_domain_info_and_gmsa_info_agree_with_ldap(ad):
    over_winrm = ad.run('domain_info')
    over_ldap = ad.run('domain_info', backend='ldap')
    assert over_winrm.get('failed') is not True, over_winrm['_result']
    for key in ('dns_name', 'netbios_name', 'domain_dn', 'domain_guid', 'domain_sid', 'forest_dns_name',
                'forest_dn', 'config_dn', 'domain_functional_level', 'forest_functional_level', 'dc_dns_hostname',
                'kds_root_key_usable', 'kds_root_key_count'):
        assert over_winrm[key] == over_ldap[key], key
    assert over_winrm['kds_root_key'] == over_ldap['kds_root_key']
    assert over_winrm['changed'] is False
    assert scripts_run(ad) == ['ad_facts', 'ad_kds_keys']
    assert_data_only(ad)


def test_gmsa_create_check_diff_idempotent_and_cross_backend(ad):
    name = 'w' + uid()
    computer = 'C' + uid()
    conn = ad.samba.ldap()
    computer_dn = 'CN=%s,CN=Computers,%s' % (computer, ad.samba.base_dn)
    conn.add(computer_dn, ['top', 'person', 'organizationalPerson', 'user', 'computer'],
             {'sAMAccountName': computer + '$', 'userAccountControl': '4096'})
    conn.unbind()
    args = dict(name=name, description=HOSTILE, service_principal_names={'set': ['HTTP/%s.contoso.test' % name]},
                allowed_to_retrieve_password={'set': [computer + '$', 'Domain Admins']},
                kerberos_encryption_types={'set': ['aes256']})
    try:
        # check mode: the change is predicted, nothing is written
        check = ad.run('gmsa', check=True, diff=True, **args)
        assert check['changed'] is True and check['accounts'][0]['sid'] is None, check['_result']
        assert check['diff']['before'] == {name: {'state': 'absent'}}
        assert sorted(check['diff']['after'][name]['allowed_to_retrieve_password']) == sorted(
            [computer + '$', 'Domain Admins'])
        assert ldap_read(ad, '(sAMAccountName=%s$)' % name) == []
        assert 'ad_new' not in scripts_run(ad)

        # create over WinRM; read back from Samba over LDAP
        ad.winrm.reset()
        ad.winrm.put_state(ad.host, {'ad': ad.ad_state()})
        created = ad.run('gmsa', diff=True, **args)
        assert created['changed'] is True, created['_result']
        entry = ldap_read(ad, '(sAMAccountName=%s$)' % name)[0]
        assert text(entry, 'description') == [HOSTILE]
        assert text(entry, 'servicePrincipalName') == ['HTTP/%s.contoso.test' % name]
        assert text(entry, 'msDS-SupportedEncryptionTypes') == ['16']
        assert text(entry, 'dNSHostName') == ['%s.contoso.test' % name]
        assert text(entry, 'msDS-ManagedPasswordInterval') == ['30']
        assert int(text(entry, 'userAccountControl')[0]) & 0x2 == 0
        assert 'msDS-GroupManagedServiceAccount' in text(entry, 'objectClass')
        assert created['sid'] and created['object_guid']
        journal = assert_data_only(ad, HOSTILE, name + '$', 'HTTP/%s.contoso.test' % name)
        new = [e for e in journal if e['name'] == 'ad_new']
        assert len(new) == 1 and new[0]['data']['kind'] == 'service_account'
        other = dict((a['name'], a['values']) for a in new[0]['data']['other_attributes'])
        assert other['description'] == [HOSTILE]  # arrived intact, as data
        assert created['diff']['after'][name]['description'] == HOSTILE

        # idempotent over WinRM, and the LDAP backend sees nothing to do either
        again = ad.run('gmsa', **args)
        assert again['changed'] is False, again['_result']
        assert again['accounts'][0] == created['accounts'][0] | {'changed': False}
        assert ad.run('gmsa', backend='ldap', **args)['changed'] is False

        # a change made over LDAP is undone over WinRM (modify: Set-ADServiceAccount), then both agree
        drift = dict(args, description='changed over ldap', service_principal_names={'add': ['HTTP/x' + name]})
        changed_ldap = ad.run('gmsa', backend='ldap', **drift)
        assert changed_ldap['changed'] is True
        ad.winrm.reset()
        ad.winrm.put_state(ad.host, {'ad': ad.ad_state()})
        back = ad.run('gmsa', diff=True, **args)
        assert back['changed'] is True and back['diff']['before'][name]['description'] == 'changed over ldap'
        sets = [e for e in ad.journal() if e['name'] == 'ad_set']
        assert len(sets) == 1 and sets[0]['data']['kind'] == 'service_account'
        assert sets[0]['data']['remove'] == [{'name': 'servicePrincipalName', 'values': ['HTTP/x' + name]}]
        entry = ldap_read(ad, '(sAMAccountName=%s$)' % name)[0]
        assert text(entry, 'description') == [HOSTILE]
        assert text(entry, 'servicePrincipalName') == ['HTTP/%s.contoso.test' % name]

        # gmsa_info over both backends returns the same facts
        info_winrm = ad.run('gmsa_info', name=[name])
        info_ldap = ad.run('gmsa_info', backend='ldap', name=[name])
        assert info_winrm['accounts'] == info_ldap['accounts'] and info_winrm['accounts'][0]['name'] == name

        # absent: Remove-ADServiceAccount; check mode first
        assert ad.run('gmsa', check=True, name=name, state='absent')['changed'] is True
        assert len(ldap_read(ad, '(sAMAccountName=%s$)' % name)) == 1
        gone = ad.run('gmsa', name=name, state='absent')
        assert gone['changed'] is True and ldap_read(ad, '(sAMAccountName=%s$)' % name) == []
        assert ad.run('gmsa', name=name, state='absent')['changed'] is False
    finally:
        found = ldap_read(ad, '(sAMAccountName=%s$)' % name, ['cn'])
        ldap_delete(ad, computer_dn, *[e['dn'] for e in found])


def test_converged_over_ldap_is_unchanged_over_winrm(ad):
    name = 'l' + uid()
    args = dict(name=name, description='made over LDAP', kerberos_encryption_types={'set': ['aes128', 'aes256']},
                service_principal_names={'set': ['HTTP/%s' % name]}, enabled=False)
    try:
        assert ad.run('gmsa', backend='ldap', **args)['changed'] is True
        over_winrm = ad.run('gmsa', diff=True, **args)
        assert over_winrm['changed'] is False, over_winrm['_result']
        assert over_winrm['diff']['before'] == over_winrm['diff']['after']
        assert scripts_run(ad) == ['ad_facts', 'ad_search']  # the facts, the account; no write
    finally:
        ad.run('gmsa', backend='ldap', name=name, state='absent')


def test_host_group_over_winrm(ad):
    gmsa = 'h' + uid()
    group = 'G,rp\'$(x)`y`;' + uid()  # a comma makes an escaped RDN; the rest is for PowerShell
    sam = 'grp' + uid()
    computer = 'N' + uid()
    conn = ad.samba.ldap()
    computer_dn = 'CN=%s,CN=Computers,%s' % (computer, ad.samba.base_dn)
    conn.add(computer_dn, ['top', 'person', 'organizationalPerson', 'user', 'computer'],
             {'sAMAccountName': computer + '$', 'userAccountControl': '4096'})
    conn.unbind()
    assert ad.run('gmsa', backend='ldap', name=gmsa)['changed'] is True
    args = dict(name=group, sam_account_name=sam, description=HOSTILE, members=[computer + '$'], gmsas=[gmsa])
    try:
        check = ad.run('host_group', check=True, diff=True, **args)
        assert check['changed'] is True and ldap_read(ad, '(sAMAccountName=%s)' % sam) == [], check['_result']
        made = ad.run('host_group', **args)
        assert made['changed'] is True, made['_result']
        entry = ldap_read(ad, '(sAMAccountName=%s)' % sam, ['cn', 'member', 'groupType', 'description', 'objectSid'])[0]
        assert text(entry, 'cn') == [group] and text(entry, 'description') == [HOSTILE]
        assert text(entry, 'member') == [computer_dn] and text(entry, 'groupType') == ['-2147483644']
        assert made['group']['sid'] and made['gmsas'][0]['changed'] is True
        info = ad.run('gmsa_info', backend='ldap', name=[gmsa])
        assert [p['sam_account_name'] for p in info['accounts'][0]['allowed_to_retrieve_password']] == [sam]
        new = [e for e in assert_data_only(ad, HOSTILE, group) if e['name'] == 'ad_new']
        assert new[0]['data']['kind'] == 'group' and new[0]['data']['name'] == group
        assert new[0]['data']['group_scope'] == 'DomainLocal' and new[0]['data']['group_category'] == 'Security'
        # the SID of the new group came with its creation: no read of it afterwards
        assert scripts_run(ad)[3:] == ['ad_facts', 'ad_search', 'ad_search', 'ad_new', 'ad_set']  # after check mode

        assert ad.run('host_group', **args)['changed'] is False
        assert ad.run('host_group', backend='ldap', **args)['changed'] is False
        removed = ad.run('host_group', name=group, sam_account_name=sam, gmsas=[gmsa], state='absent')
        assert removed['changed'] is True and ldap_read(ad, '(sAMAccountName=%s)' % sam) == []
        info = ad.run('gmsa_info', backend='ldap', name=[gmsa])
        assert info['accounts'][0]['allowed_to_retrieve_password'] == []
    finally:
        ad.run('gmsa', backend='ldap', name=gmsa, state='absent')
        found = ldap_read(ad, '(sAMAccountName=%s)' % sam, ['cn'])
        ldap_delete(ad, computer_dn, *[e['dn'] for e in found])


def bind_works(lab, dn, password):
    try:
        lab.samba.ldap(user=dn, password=password).unbind()
        return True
    except ldap3.core.exceptions.LDAPInvalidCredentialsResult:  # anything else (TLS, connection) raises
        return False


def test_portable_identity_over_winrm(ad):
    gmsa = 'p' + uid()
    user = 'ccg-' + uid()
    password = 'Pw-%s-9aZ!\'"$(x)`;' % secrets.token_hex(6)
    assert ad.run('gmsa', backend='ldap', name=gmsa)['changed'] is True
    args = dict(name=user, identity_password=password, gmsas=[gmsa], description=HOSTILE)
    dn = 'CN=%s,CN=Users,%s' % (user, ad.samba.base_dn)
    try:
        check = ad.run('portable_identity', check=True, diff=True, **args)
        assert check['changed'] is True and ldap_read(ad, '(sAMAccountName=%s)' % user) == [], check['_result']
        made = ad.run('portable_identity', **args)
        assert made['changed'] is True and made['user']['password_set'] is True, made['_result']
        assert 'credentials' not in made  # a given password is never returned
        assert bind_works(ad, dn, password)  # New-ADUser -AccountPassword: the password works over LDAP
        entry = ldap_read(ad, '(sAMAccountName=%s)' % user, ['userAccountControl', 'description', 'userPrincipalName'])
        assert text(entry[0], 'userAccountControl') == [str(0x200 | 0x10000)]
        assert text(entry[0], 'userPrincipalName') == ['%s@contoso.test' % user]
        new = [e for e in assert_data_only(ad, HOSTILE, password) if e['name'] == 'ad_new'][0]
        assert new['data']['kind'] == 'user' and new['data']['password'] == password  # data, not script text

        # update_password=always with the same password: the check says it works, nothing changes
        again = ad.run('portable_identity', update_password='always', **args)
        assert again['changed'] is False, again['_result']
        assert 'ad_test_password' in scripts_run(ad)
        assert ad.run('portable_identity', backend='ldap', update_password='always', **args)['changed'] is False

        # a new password: Set-ADAccountPassword -Reset
        other = password + 'x'
        reset = ad.run('portable_identity', **dict(args, identity_password=other, update_password='always'))
        assert reset['changed'] is True and bind_works(ad, dn, other)
        assert 'ad_set' in scripts_run(ad)

        gone = ad.run('portable_identity', name=user, gmsas=[gmsa], state='absent')
        assert gone['changed'] is True and ldap_read(ad, '(sAMAccountName=%s)' % user) == []
    finally:
        ad.run('gmsa', backend='ldap', name=gmsa, state='absent')
        ldap_delete(ad, dn)


def test_portable_identity_refused_password_leaves_no_account(ad):
    user = 'ccg-' + uid()
    failed = ad.run('portable_identity', name=user, identity_password='Zq1')
    assert failed.get('failed') is True
    assert 'New-ADUser' in failed['msg'] and 'password does not meet' in failed['msg'], failed['msg']
    assert 'policy' in failed['msg'] and 'password_length' in failed['msg'], failed['msg']  # the hint
    assert ldap_read(ad, '(sAMAccountName=%s)' % user) == []  # the half-made account was removed


def read_keys(lab):
    container = 'CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,' + lab.samba.config_dn
    conn = lab.samba.ldap()
    try:
        conn.search(container, '(objectClass=msKds-ProvRootKey)', search_scope=ldap3.LEVEL,
                    attributes=['cn', 'msKds-UseStartTime', 'msKds-RootKeyData', 'msKds-KDFParam'])
        return {e['dn']: e['raw_attributes'] for e in conn.response if e['type'] == 'searchResEntry'}
    finally:
        conn.unbind()


def test_kds_root_key_over_winrm(ad):
    keys = read_keys(ad)
    try:
        ldap_delete(ad, *keys)
        check = ad.run('kds_root_key', check=True, diff=True, lab_mode=True)
        assert check['changed'] is True and check['root_key']['id'] is None, check['_result']
        assert check['diff'] == {'before': {'root_keys': []}, 'after': {'root_keys': ['(new key)']}}
        assert read_keys(ad) == {}
        pending = ad.run('kds_root_key')  # -EffectiveImmediately: effective now, usable in 10 hours
        assert pending['changed'] is True and pending['usable'] is False, pending['_result']
        assert any('10 hours' in w for w in pending.get('warnings', []))
        made = ad.run('kds_root_key', lab_mode=True)  # -EffectiveTime 10 h 5 min ago
        assert made['changed'] is True and made['usable'] is True, made['_result']
        adds = [e['data'] for e in ad.journal() if e['name'] == 'ad_kds_add']
        assert [a['effective_immediately'] for a in adds] == [True, False]
        stored = read_keys(ad)
        assert {d.split(',', 1)[0][3:] for d in stored} == {pending['root_key']['id'], made['root_key']['id']}
        assert all(len(k['msKds-RootKeyData'][0]) == 64 for k in stored.values())
        assert made['root_key']['well_formed'] is True and made['root_key']['dn'] in stored
        again = ad.run('kds_root_key', lab_mode=True)
        assert again['changed'] is False and again['root_key']['id'] == made['root_key']['id']
        over_ldap = ad.run('kds_root_key', backend='ldap', lab_mode=True)
        assert over_ldap['changed'] is False and over_ldap['root_keys'] == again['root_keys']
    finally:
        if not any(k for k in read_keys(ad)):
            ad.run('kds_root_key', backend='ldap', lab_mode=True)


def test_cmdlet_errors_fail_the_task_clearly(ad):
    # -Server names a domain controller the host cannot reach: ADServerDownException, naming the option
    down = ad.run('domain_info', server='dc9.contoso.test')
    assert down.get('failed') is True
    assert 'Unable to contact the server' in down['msg'] and 'server' in down['msg'], down['msg']
    # a path that does not exist: New-ADServiceAccount's ADIdentityNotFoundException
    name = 'e' + uid()
    missing = ad.run('gmsa', name=name, path='OU=Nowhere,%s' % ad.samba.base_dn)
    assert missing.get('failed') is True
    assert 'New-ADServiceAccount: Directory object not found' in missing['msg'], missing['msg']
    # access denied (injected, as a cmdlet raises it): the message and the right that is missing
    ad.winrm.put_state(ad.host, {'errors': {'ad_new': {
        'message': 'Access is denied', 'category': 'PermissionDenied', 'command': 'New-ADServiceAccount',
        'exception': 'System.UnauthorizedAccessException',
        'error_id': 'ActiveDirectoryCmdlet:System.UnauthorizedAccessException,'
                    'Microsoft.ActiveDirectory.Management.Commands.NewADServiceAccount'}}})
    denied = ad.run('gmsa', name=name)
    assert denied.get('failed') is True
    assert 'New-ADServiceAccount: Access is denied' in denied['msg'] and 'Create Child' in denied['msg'], denied['msg']
    assert ldap_read(ad, '(sAMAccountName=%s$)' % name) == []


def test_conflicting_options_name_the_option(ad):
    ldap_only = ad.run('domain_info', username='someone@contoso.test')
    assert ldap_only.get('failed') is True and 'username' in ldap_only['msg'] and 'winrm.username' in ldap_only['msg']
    without = ad.run('domain_info', backend='ldap', winrm=ad.module_args()['winrm'])
    assert without.get('failed') is True and 'backend=winrm' in without['msg'], without['msg']
    no_winrm = ad.run('domain_info', winrm=None)
    assert no_winrm.get('failed') is True and 'winrm' in no_winrm['msg'], no_winrm['msg']
    two = ad.run('domain_info', winrm=dict(ad.module_args()['winrm'], hosts=['a', 'b']))
    assert two.get('failed') is True and 'one host' in two['msg'], two['msg']
    assert ad.journal() == []  # refused before any command


ROLE_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the gmsa_ad role
      ansible.builtin.include_role:
        name: winkube.gmsa.gmsa_ad
"""


def test_gmsa_ad_role_passes_the_backend_through(ad, run_playbook):
    group, gmsa, computer = 'rg' + uid(), 'rw' + uid(), 'RC' + uid()
    conn = ad.samba.ldap()
    computer_dn = 'CN=%s,CN=Computers,%s' % (computer, ad.samba.base_dn)
    conn.add(computer_dn, ['top', 'person', 'organizationalPerson', 'user', 'computer'],
             {'sAMAccountName': computer + '$', 'userAccountControl': '4096'})
    conn.unbind()
    domain = dict(ad.module_args(), kds_root_key={'manage': True, 'lab_mode': True})
    extra = {'gmsa_domain': domain, 'gmsa_nodes': {'host_group': group, 'computers': [computer + '$']},
             'gmsa_accounts': [{'name': gmsa, 'description': HOSTILE}]}
    try:
        first = run_playbook(ROLE_PLAY, extra_vars=extra)
        assert first.rc == 0, first
        assert ad.winrm.password not in first.stdout + first.stderr
        names = set(scripts_run(ad))
        assert {'ad_facts', 'ad_kds_keys', 'ad_new'} <= names  # the modules ran over WinRM
        entry = ldap_read(ad, '(sAMAccountName=%s$)' % gmsa, ['description', 'msDS-GroupMSAMembership'])[0]
        assert text(entry, 'description') == [HOSTILE] and entry['raw_attributes']['msDS-GroupMSAMembership']
        assert len(ldap_read(ad, '(sAMAccountName=%s)' % group, ['cn'])) == 1
        second = run_playbook(ROLE_PLAY, extra_vars=extra)
        assert second.rc == 0 and not second.changed, second
    finally:
        ad.run('gmsa', backend='ldap', name=gmsa, state='absent')
        found = ldap_read(ad, '(sAMAccountName=%s)' % group, ['cn'])
        ldap_delete(ad, computer_dn, *[e['dn'] for e in found])
