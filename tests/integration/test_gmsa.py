"""winkube.gmsa.gmsa and gmsa_info against the real Samba AD DC; every result is read back over LDAP."""

from __future__ import annotations

import importlib.util
import secrets
import struct
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(relative):
    """Import a pure model file of this checkout by path (no ansible_collections tree needed)."""
    spec = importlib.util.spec_from_file_location('winkube_' + Path(relative).stem, REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SD_MODEL = _load('plugins/module_utils/models/security_descriptor.py')
SecurityDescriptor = SD_MODEL.GroupMSAMembership

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: task
      winkube.gmsa.{module}: "{{{{ module_args }}}}"
      register: out
      ignore_errors: true
"""


def uid():
    return secrets.token_hex(3)


@pytest.fixture
def run_module(run_playbook, samba_lab):
    def _run(module='gmsa', check=False, diff=False, no_syslog=False, **args):
        params = samba_lab.module_args(**args)
        started = time.monotonic()
        extra = {'module_args': params}
        if no_syslog:  # Ansible itself refuses NUL characters in module arguments when logging them to syslog
            extra['ansible_no_target_syslog'] = True
        result = run_playbook(PLAY.format(module=module), extra_vars=extra, check=check, diff=diff)
        assert 'task' in result.results, result
        task = result.results['task']
        task['_seconds'] = time.monotonic() - started
        task['_result'] = result
        return task

    return _run


def read(samba_lab, ldap_filter, attributes=('*',)):
    conn = samba_lab.ldap()
    try:
        conn.search(samba_lab.base_dn, ldap_filter, attributes=list(attributes))
        return [e for e in conn.response if e.get('type') == 'searchResEntry']
    finally:
        conn.unbind()


def gmsa_entry(samba_lab, sam):
    found = read(samba_lab, '(sAMAccountName=%s)' % sam,
                 ['objectClass', 'sAMAccountName', 'dNSHostName', 'servicePrincipalName', 'description',
                  'msDS-SupportedEncryptionTypes', 'msDS-ManagedPasswordInterval', 'userAccountControl',
                  'msDS-GroupMSAMembership', 'objectSid'])
    assert len(found) <= 1
    return found[0] if found else None


def attrs_of(entry):
    """Attributes decoded from the raw values (the test connection has no schema): name -> list or value."""
    out = {}
    for key, values in entry['raw_attributes'].items():
        decoded = []
        for value in values:
            try:
                decoded.append(value.decode('utf-8'))
            except UnicodeDecodeError:
                decoded.append(value)
        out[key] = decoded
    return out


def allowed_sids(entry):
    raw = entry['raw_attributes'].get('msDS-GroupMSAMembership')
    if not raw:
        return []
    sd = SecurityDescriptor.from_bytes(raw[0])
    assert sd.owner == 'S-1-5-32-544'
    assert all(ace.mask == 0xF01FF for ace in sd.aces)
    return sd.allowed_sids


def make_computer(samba_lab, name):
    """A computer account with a known password (set over LDAPS as the admin)."""
    password = 'Pc-%s-9aZ' % secrets.token_hex(8)
    dn = 'CN=%s,CN=Computers,%s' % (name, samba_lab.base_dn)
    conn = samba_lab.ldap()
    try:
        conn.add(dn, ['top', 'person', 'organizationalPerson', 'user', 'computer'],
                 {'sAMAccountName': name + '$', 'userAccountControl': '4096',
                  'dNSHostName': '%s.%s' % (name.lower(), samba_lab.dns_domain)})
        conn.modify(dn, {'unicodePwd': [('MODIFY_REPLACE', [('"%s"' % password).encode('utf-16-le')])]})
        conn.search(dn, '(objectClass=*)', search_scope='BASE', attributes=['objectSid'])
        sid = SD_MODEL.sid_from_bytes(conn.response[0]['raw_attributes']['objectSid'][0])
    finally:
        conn.unbind()
    return dn, password, sid


def delete(samba_lab, *dns):
    conn = samba_lab.ldap()
    try:
        for dn in dns:
            try:
                conn.delete(dn)
            except Exception:  # pylint: disable=broad-except
                pass
    finally:
        conn.unbind()


def read_managed_password(samba_lab, dn, password, gmsa_sam):
    """Bind as the computer (simple bind over LDAPS) and read msDS-ManagedPassword of the gMSA."""
    conn = samba_lab.ldap(user=dn, password=password)
    try:
        conn.search(samba_lab.base_dn, '(sAMAccountName=%s)' % gmsa_sam, attributes=['msDS-ManagedPassword'])
        entries = [e for e in conn.response if e.get('type') == 'searchResEntry']
        assert len(entries) == 1
        values = entries[0]['raw_attributes'].get('msDS-ManagedPassword') or []
        return values[0] if values else None
    finally:
        conn.unbind()


def test_create_exact_idempotent_check_and_diff(run_module, samba_lab):
    name = 'gm%s' % uid()
    sam = name + '$'
    pc_dn, _pw, pc_sid = make_computer(samba_lab, 'pc%s' % uid())
    args = dict(name=name, description='web app', service_principal_names={'set': ['HTTP/%s.contoso.test' % name]},
                allowed_to_retrieve_password={'add': [pc_dn.split(',')[0][3:] + '$']})
    try:
        # check mode: reports the creation, writes nothing
        res = run_module(check=True, diff=True, **args)
        assert res.get('changed') is True, res
        assert res['diff']['before'] == {name: {'state': 'absent'}}, res['diff']
        assert gmsa_entry(samba_lab, sam) is None

        res = run_module(**args)
        assert res.get('changed') is True, res
        entry = gmsa_entry(samba_lab, sam)
        attrs = attrs_of(entry)
        assert [c.lower() for c in attrs['objectClass']][-1] == 'msds-groupmanagedserviceaccount'
        assert attrs['sAMAccountName'] == [sam]
        assert attrs['dNSHostName'] == ['%s.%s' % (name, samba_lab.dns_domain)]
        assert attrs['servicePrincipalName'] == ['HTTP/%s.contoso.test' % name]
        assert attrs['description'] == ['web app']
        assert attrs['msDS-SupportedEncryptionTypes'] == ['24']
        assert attrs['msDS-ManagedPasswordInterval'] == ['30']
        assert attrs['userAccountControl'] == ['4096']
        assert allowed_sids(entry) == [pc_sid]
        account = res['accounts'][0]
        assert account['sid'] == SD_MODEL.sid_from_bytes(entry['raw_attributes']['objectSid'][0])
        assert account['allowed_to_retrieve_password'][0]['sid'] == pc_sid
        # by sAMAccountName, by cn (not found so), the principal, the new SPN, the new SID
        assert res['ldap_operations']['searches'] <= 5 and res['ldap_operations']['writes'] == 1

        # second run: nothing to do
        again = run_module(**args)
        assert again.get('changed') is False, again
        assert again['ldap_operations'] == {'searches': 2, 'writes': 0}

        # a change in check mode with --diff: shown, not written
        more = dict(args, service_principal_names={'add': ['HTTP/%s-alt.contoso.test' % name]})
        res = run_module(check=True, diff=True, **more)
        assert res.get('changed') is True
        diff = res['diff']
        assert 'HTTP/%s-alt.contoso.test' % name in diff['after'][name]['service_principal_names']
        assert 'HTTP/%s-alt.contoso.test' % name not in diff['before'][name]['service_principal_names']
        assert attrs_of(gmsa_entry(samba_lab, sam))['servicePrincipalName'] == ['HTTP/%s.contoso.test' % name]

        # and for real
        res = run_module(**more)
        assert res.get('changed') is True
        assert sorted(attrs_of(gmsa_entry(samba_lab, sam))['servicePrincipalName']) == sorted(
            ['HTTP/%s.contoso.test' % name, 'HTTP/%s-alt.contoso.test' % name])

        # gmsa_info reads it back with the resolved principal
        info = run_module(module='gmsa_info', name=[name, 'nosuch%s' % uid()])
        assert info['missing'][0].startswith('nosuch')
        (facts,) = info['accounts']
        assert facts['allowed_to_retrieve_password'][0]['distinguished_name'].lower() == pc_dn.lower()
        assert facts['kerberos_encryption_types'] == ['aes128', 'aes256']

        # the interval can only be set at creation
        res = run_module(**dict(args, managed_password_interval_days=10))
        assert res.get('failed') and 'managed_password_interval_days' in res['msg']

        # absent removes it; a second absent is unchanged
        res = run_module(name=name, state='absent')
        assert res.get('changed') is True
        assert gmsa_entry(samba_lab, sam) is None
        assert run_module(name=name, state='absent').get('changed') is False
    finally:
        delete(samba_lab, 'CN=%s,CN=Managed Service Accounts,%s' % (name, samba_lab.base_dn), pc_dn)


def test_several_accounts_one_task(run_module, samba_lab):
    names = ['gl%s' % uid() for _index in range(3)]
    try:
        res = run_module(accounts=[{'name': n} for n in names], description='shared',
                         kerberos_encryption_types={'set': ['aes256']})
        assert res.get('changed') is True, res
        # the accounts by sAMAccountName and, not found so, by cn; principals (none here: skipped); the new SIDs
        assert res['ldap_operations'] == {'searches': 3, 'writes': 3}
        for n in names:
            attrs = attrs_of(gmsa_entry(samba_lab, n + '$'))
            assert attrs['description'] == ['shared']
            assert attrs['msDS-SupportedEncryptionTypes'] == ['16']
        again = run_module(accounts=[{'name': n} for n in names], description='shared',
                           kerberos_encryption_types={'set': ['aes256']})
        assert again.get('changed') is False
        res = run_module(accounts=[{'name': n, 'state': 'absent'} for n in names])
        assert res.get('changed') is True
        assert all(gmsa_entry(samba_lab, n + '$') is None for n in names)
    finally:
        delete(samba_lab, *['CN=%s,CN=Managed Service Accounts,%s' % (n, samba_lab.base_dn) for n in names])


def test_return_unchanged_false_lists_only_the_accounts_acted_on(run_module, samba_lab):
    """The roles ask for the accounts that changed only: thousands of unchanged ones made a large result."""
    names = ['gr%s' % uid() for _index in range(3)]
    try:
        assert run_module(accounts=[{'name': n} for n in names]).get('changed') is True
        changed = [{'name': names[0], 'description': 'edited'}] + [{'name': n} for n in names[1:]]
        res = run_module(accounts=changed, return_unchanged=False)
        assert res.get('changed') is True and [a['name'] for a in res['accounts']] == [names[0]], res
        assert res['accounts'][0]['description'] == 'edited' and res['accounts'][0]['sid'].startswith('S-1-5-21-')
        assert attrs_of(gmsa_entry(samba_lab, names[0] + '$'))['description'] == ['edited']  # read back from the DC
        again = run_module(accounts=changed, return_unchanged=False)
        assert again.get('changed') is False and again['accounts'] == [], again
        full = run_module(accounts=changed)  # the default lists every account
        assert full.get('changed') is False and [a['name'] for a in full['accounts']] == names, full
        one = run_module(name=names[1], return_unchanged=False)  # with name, its identity is returned all the same
        assert one['accounts'] == [] and one['sid'] == full['accounts'][1]['sid'], one
    finally:
        delete(samba_lab, *['CN=%s,CN=Managed Service Accounts,%s' % (n, samba_lab.base_dn) for n in names])


def test_bad_input_fails_before_any_write(run_module, samba_lab):
    owner = 'go%s' % uid()
    try:
        # 15 characters before the $: too long, message names the rule and the fix
        res = run_module(name='abcdefghijklmno')
        assert res.get('failed') and '15 characters' in res['msg'] and 'sam_account_name' in res['msg'], res
        assert gmsa_entry(samba_lab, 'abcdefghijklmno$') is None
        res = run_module(name='x' + uid(), sam_account_name='abcdefghijklmno$')
        assert res.get('failed') and 'sam_account_name' in res['msg']
        # the long name is fine with a short sam_account_name
        long_name = 'LongServiceName%s' % uid()
        short = 'ls%s$' % uid()
        res = run_module(name=long_name, sam_account_name=short)
        assert res.get('changed') is True, res
        assert attrs_of(gmsa_entry(samba_lab, short))['sAMAccountName'] == [short]
        run_module(name=long_name, sam_account_name=short, state='absent')

        res = run_module(name='web[1]')
        assert res.get('failed') and 'not allowed' in res['msg'] and 'name' in res['failed_options'], res

        # SPN already owned by another account
        spn = 'HTTP/%s.contoso.test' % owner
        assert run_module(name=owner, service_principal_names={'set': [spn]}).get('changed') is True
        thief = 'gt%s' % uid()
        res = run_module(name=thief, service_principal_names={'add': [spn.lower()]})
        assert res.get('failed') and 'service_principal_names' in res['msg'] and owner in res['msg'], res
        assert gmsa_entry(samba_lab, thief + '$') is None

        # unknown principal: names the option and the value, nothing created
        res = run_module(name=thief, allowed_to_retrieve_password={'add': ['nosuch%s$' % uid()]})
        assert res.get('failed') and 'allowed_to_retrieve_password' in res['msg'] and 'nosuch' in res['msg']
        assert gmsa_entry(samba_lab, thief + '$') is None

        # several accounts: one bad one stops all writes
        res = run_module(accounts=[{'name': thief}, {'name': 'abcdefghijklmnop'}])
        assert res.get('failed')
        assert gmsa_entry(samba_lab, thief + '$') is None
    finally:
        run_module(name=owner, state='absent')


def test_injection_is_escaped(run_module, samba_lab):
    before = len(read(samba_lab, '(objectClass=msDS-GroupManagedServiceAccount)', ['cn']))
    odd = 'odd*()\\%s' % uid()
    sam = 'odd%s$' % uid()
    try:
        # a name full of filter characters creates exactly that object, found again by the same name
        res = run_module(name=odd, sam_account_name=sam, dns_host_name='odd.contoso.test')
        assert res.get('changed') is True, res.get('msg')
        matches = read(samba_lab, '(sAMAccountName=%s)' % sam, ['cn'])
        assert [attrs_of(m)['cn'] for m in matches] == [[odd]]
        assert run_module(name=odd, sam_account_name=sam, dns_host_name='odd.contoso.test').get('changed') is False
        # wildcards and filter syntax match nothing
        info = run_module(module='gmsa_info', name=['*', '*)(cn=*', 'x\\2a'])
        assert info['accounts'] == [] and len(info['missing']) == 3, info
        res = run_module(name='p' + uid(), allowed_to_retrieve_password={'add': ['*']})
        assert res.get('failed') and 'allowed_to_retrieve_password' in res['msg']
        res = run_module(name='p' + uid(), allowed_to_retrieve_password={'add': ['Domain Admins)(cn=*']})
        assert res.get('failed') and 'matches no object' in res['msg']
        # NUL characters are refused with the field named (with syslog logging on, Ansible refuses them first)
        res = run_module(name='nul\x00x')
        assert res.get('failed')
        res = run_module(name='nul\x00x', no_syslog=True)
        assert res.get('failed') and 'name' in res['failed_options'] and 'control characters' in res['msg'], res
        res = run_module(name='n' + uid(), description='a\x00b', no_syslog=True)
        assert res.get('failed') and 'description' in res['msg'] and 'NUL' in res['msg'], res
        after = len(read(samba_lab, '(objectClass=msDS-GroupManagedServiceAccount)', ['cn']))
        assert after == before + 1
    finally:
        run_module(name=odd, sam_account_name=sam, state='absent')
    assert read(samba_lab, '(sAMAccountName=%s)' % sam, ['cn']) == []


def test_disable_and_encryption_warning(run_module, samba_lab):
    name = 'gd%s' % uid()
    try:
        res = run_module(name=name, enabled=False, kerberos_encryption_types={'set': ['aes256', 'rc4']})
        assert res.get('changed') is True
        assert any('weak' in w for w in res.get('warnings', [])), res
        attrs = attrs_of(gmsa_entry(samba_lab, name + '$'))
        assert attrs['userAccountControl'] == [str(4096 | 2)]
        assert attrs['msDS-SupportedEncryptionTypes'] == ['20']
        res = run_module(name=name, enabled=True, kerberos_encryption_types={'remove': ['rc4']})
        assert res.get('changed') is True
        attrs = attrs_of(gmsa_entry(samba_lab, name + '$'))
        assert attrs['userAccountControl'] == ['4096']
        assert attrs['msDS-SupportedEncryptionTypes'] == ['16']
    finally:
        run_module(name=name, state='absent')


def test_one_account_writes_once_and_the_noop_not_at_all(run_module, samba_lab):
    """Create, no-op and delete of one account: one LDAP write each for create and delete, none on the
    no-op, as the module reports it and as the DC shows it (the account's uSNChanged stays). Timings are
    the benchmark's business (bench/), not a test's."""
    name = 'gt%s' % uid()

    def usn_changed():
        found = read(samba_lab, '(sAMAccountName=%s$)' % name, ['uSNChanged'])
        return found[0]['raw_attributes']['uSNChanged'] if found else None

    try:
        res = run_module(name=name)
        assert res.get('changed') is True and res['ldap_operations']['writes'] == 1, res
        before = usn_changed()
        assert before is not None
        again = run_module(name=name)
        assert again.get('changed') is False and again['ldap_operations']['writes'] == 0, again
        assert usn_changed() == before
        gone = run_module(name=name, state='absent')
        assert gone.get('changed') is True and gone['ldap_operations']['writes'] == 1, gone
        assert usn_changed() is None
    finally:
        run_module(name=name, state='absent')


def test_password_blob_version(samba_lab, run_module):
    """A computer allowed directly reads a version-1 MSDS-MANAGEDPASSWORD_BLOB; another gets nothing."""
    name = 'gp%s' % uid()
    yes_dn, yes_pw, _sid = make_computer(samba_lab, 'py%s' % uid())
    no_dn, no_pw, _sid2 = make_computer(samba_lab, 'pn%s' % uid())
    try:
        res = run_module(name=name, allowed_to_retrieve_password={'set': [yes_dn]})
        assert res.get('changed') is True, res
        blob = read_managed_password(samba_lab, yes_dn, yes_pw, name + '$')
        assert blob is not None
        version, = struct.unpack('<H', blob[:2])
        assert version == 1 and len(blob) >= 256
        assert read_managed_password(samba_lab, no_dn, no_pw, name + '$') is None
    finally:
        run_module(name=name, state='absent')
        delete(samba_lab, yes_dn, no_dn)
