"""winkube.gmsa.host_group against the real Samba AD DC: node access to gMSA passwords, granted and revoked."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest

from test_gmsa import (  # noqa: F401  pylint: disable=unused-import
    SecurityDescriptor,
    allowed_sids,
    attrs_of,
    delete,
    gmsa_entry,
    make_computer,
    read,
    read_managed_password,
    run_module,
    uid,
)


def group_entry(samba_lab, sam):
    found = read(samba_lab, '(&(objectClass=group)(sAMAccountName=%s))' % sam,
                 ['member', 'groupType', 'objectSid', 'sAMAccountName'])
    return found[0] if found else None


def test_host_group_grants_and_revokes(run_module, samba_lab):
    group = 'Hosts%s' % uid()
    gmsa = 'gh%s' % uid()
    other = 'gk%s' % uid()
    win1_dn, win1_pw, _win1_sid = make_computer(samba_lab, 'w1%s' % uid())
    win2_dn, win2_pw, _win2_sid = make_computer(samba_lab, 'w2%s' % uid())
    win1 = win1_dn.split(',')[0][3:] + '$'
    try:
        # the gMSAs exist with another principal allowed, which must survive
        keep = run_module(accounts=[{'name': gmsa}, {'name': other}],
                          allowed_to_retrieve_password={'set': ['Domain Admins']})
        assert keep.get('changed') is True, keep.get('msg')
        admins_sid = keep['accounts'][0]['allowed_to_retrieve_password'][0]['sid']

        # check mode: nothing written
        res = run_module(module='host_group', check=True, diff=True, name=group, members=[win1], gmsas=[gmsa, other])
        assert res.get('changed') is True, res.get('msg')
        assert group_entry(samba_lab, group) is None
        assert allowed_sids(gmsa_entry(samba_lab, gmsa + '$')) == [admins_sid]
        assert res['diff']['after']['gmsas'][gmsa] == sorted([admins_sid, group])

        res = run_module(module='host_group', name=group, members=[win1], gmsas=[gmsa, other])
        assert res.get('changed') is True, res.get('msg')
        entry = group_entry(samba_lab, group)
        attrs = attrs_of(entry)
        assert [m.lower() for m in attrs['member']] == [win1_dn.lower()]
        assert int(attrs['groupType'][0]) == -2147483644  # security, domain local
        group_sid = res['group']['sid']
        for name in (gmsa, other):
            assert allowed_sids(gmsa_entry(samba_lab, name + '$')) == [admins_sid, group_sid]
        assert any('reboot' in w for w in res.get('warnings', []))

        again = run_module(module='host_group', name=group, members=[win1], gmsas=[gmsa, other])
        assert again.get('changed') is False, again
        assert again['ldap_operations'] == {'searches': 2, 'writes': 0}

        # the member reads a version-1 password blob over LDAPS; a non-member gets nothing
        blob = read_managed_password(samba_lab, win1_dn, win1_pw, gmsa + '$')
        assert blob is not None and struct.unpack('<H', blob[:2])[0] == 1, blob
        assert read_managed_password(samba_lab, win2_dn, win2_pw, gmsa + '$') is None

        # members_mode=set swaps the members: access moves from win1 to win2
        res = run_module(module='host_group', name=group, members=[win2_dn], members_mode='set')
        assert res.get('changed') is True
        assert [m.lower() for m in attrs_of(group_entry(samba_lab, group))['member']] == [win2_dn.lower()]
        assert read_managed_password(samba_lab, win1_dn, win1_pw, gmsa + '$') is None
        assert read_managed_password(samba_lab, win2_dn, win2_pw, gmsa + '$') is not None

        # remove the last member: nobody in the group reads it any more
        res = run_module(module='host_group', name=group, members=[win2_dn], members_mode='remove')
        assert res.get('changed') is True
        assert not attrs_of(group_entry(samba_lab, group)).get('member')
        assert read_managed_password(samba_lab, win2_dn, win2_pw, gmsa + '$') is None

        # unknown member / gMSA: fail before any write, naming the field
        res = run_module(module='host_group', name=group, members=['nosuch%s$' % uid()])
        assert res.get('failed') and 'members' in res['msg'] and 'nosuch' in res['msg']
        res = run_module(module='host_group', name=group, gmsas=['nosuch%s' % uid()])
        assert res.get('failed') and 'gmsas' in res['msg']

        # state=absent revokes the group from the gMSAs (others stay) and deletes it
        res = run_module(module='host_group', name=group, gmsas=[gmsa, other], state='absent')
        assert res.get('changed') is True, res.get('msg')
        assert group_entry(samba_lab, group) is None
        for name in (gmsa, other):
            assert allowed_sids(gmsa_entry(samba_lab, name + '$')) == [admins_sid]
    finally:
        run_module(module='host_group', name=group, state='absent')
        run_module(accounts=[{'name': gmsa}, {'name': other}], state='absent')
        delete(samba_lab, win1_dn, win2_dn)


@pytest.mark.skipif(not shutil.which('kinit'), reason='kinit (krb5-user) not installed')
def test_kinit_with_retrieved_password(run_module, samba_lab, tmp_path):
    """Stretch: the password derived from the blob gets a Kerberos TGT for the gMSA."""
    gmsa = 'gki%s' % uid()
    win_dn, win_pw, _win_sid = make_computer(samba_lab, 'wk%s' % uid())
    try:
        res = run_module(name=gmsa, allowed_to_retrieve_password={'set': [win_dn]})
        assert res.get('changed') is True, res.get('msg')
        blob = read_managed_password(samba_lab, win_dn, win_pw, gmsa + '$')
        assert blob is not None
        offset = struct.unpack('<H', blob[8:10])[0]
        password = blob[offset:offset + 256]  # 256 bytes of UTF-16 (not valid text): use a keytab of its NT form
        krb5_conf = tmp_path / 'krb5.conf'
        krb5_conf.write_text('[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n'
                             '[realms]\n %s = {\n  kdc = %s\n }\n' % (samba_lab.realm, samba_lab.realm, samba_lab.server))
        principal = '%s$@%s' % (gmsa, samba_lab.realm)
        keytab = tmp_path / 'gmsa.keytab'
        # Build a keytab from the AES keys derived from the UTF-16 password (salt: REALMhost<name>.realm).
        try:
            from impacket.krb5.crypto import _AES256CTS, string_to_key  # noqa: F401 pylint: disable=import-outside-toplevel
        except ImportError:
            pytest.skip('impacket.krb5 not available')
        from impacket.krb5 import constants  # pylint: disable=import-outside-toplevel
        from impacket.krb5.keytab import Keytab  # noqa: F401 pylint: disable=import-outside-toplevel,unused-import
        text = password.decode('utf-16-le', 'replace').encode('utf-8')
        salt = '%shost%s.%s' % (samba_lab.realm, gmsa.lower(), samba_lab.dns_domain)
        key = _AES256CTS.string_to_key(text, salt.encode(), None)
        _write_keytab(keytab, principal, samba_lab.realm, key.contents, constants.EncryptionTypes.aes256_cts_hmac_sha1_96.value)
        env = dict(os.environ, KRB5_CONFIG=str(krb5_conf), KRB5CCNAME='FILE:%s' % (tmp_path / 'cc'))
        proc = subprocess.run(['kinit', '-k', '-t', str(keytab), principal], env=env, capture_output=True, text=True,
                              timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
    finally:
        run_module(name=gmsa, state='absent')
        delete(samba_lab, win_dn)


def _write_keytab(path, principal, realm, key, etype):
    """Minimal MIT keytab (format 0x502) with one entry."""
    name = principal.split('@')[0]

    def counted(data):
        return struct.pack('>H', len(data)) + data

    body = struct.pack('>H', 1) + counted(realm.encode()) + counted(name.encode())
    body += struct.pack('>I', 1)  # KRB5_NT_PRINCIPAL
    body += struct.pack('>I', 0) + struct.pack('>B', 1)  # timestamp, kvno (8 bit)
    body += struct.pack('>H', etype) + counted(key)
    body += struct.pack('>I', 1)  # 32-bit kvno
    path.write_bytes(b'\x05\x02' + struct.pack('>i', len(body)) + body)
