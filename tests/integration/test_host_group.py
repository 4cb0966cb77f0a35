"""winkube.gmsa.host_group against the real Samba AD DC: node access to gMSA passwords, granted and revoked."""

from __future__ import annotations

import struct

from gmsa_kerberos import blob_password, kerberos_keys, kinit_with_keys
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


def test_kinit_with_retrieved_password(run_module, samba_lab, tmp_path):
    """The password a computer named in the gMSA's allowed principals retrieves gets a Kerberos TGT for the gMSA
    (keys derived from it, MIT kinit against the lab KDC: tests/integration/gmsa_kerberos.py)."""
    gmsa = 'gki%s' % uid()
    win_dn, win_pw, _win_sid = make_computer(samba_lab, 'wk%s' % uid())
    try:
        res = run_module(name=gmsa, allowed_to_retrieve_password={'set': [win_dn]})
        assert res.get('changed') is True, res.get('msg')
        blob = read_managed_password(samba_lab, win_dn, win_pw, gmsa + '$')
        assert blob is not None
        version, password = blob_password(blob)
        assert version == 1
        rc, err, listed = kinit_with_keys(samba_lab, tmp_path, gmsa + '$', kerberos_keys(samba_lab, gmsa + '$', password))
        assert rc == 0, err
        assert '%s$@%s' % (gmsa, samba_lab.realm) in listed
    finally:
        run_module(name=gmsa, state='absent')
        delete(samba_lab, win_dn)
