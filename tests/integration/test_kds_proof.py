"""A KDS root key written by winkube.gmsa.kds_root_key works, end to end, against the real Samba AD DC.

On a domain with no root key at all (the key Samba provisions is deleted first), the collection creates the
root key (kds_root_key, lab_mode: usable at once on one DC), a gMSA (gmsa) and a host group with a node
computer account that may retrieve its password (host_group). Then:

- the node, bound as itself, reads msDS-ManagedPassword and gets a version-1 MSDS-MANAGEDPASSWORD_BLOB, and
  the gMSA's msDS-ManagedPasswordId names the collection's key (so the DC derived the password from it);
- the Samba KDC issues a TGT for the gMSA to MIT kinit holding only the AES keys derived from the password in
  that blob (tests/integration/gmsa_kerberos.py): the KDC derived the same password from the same key; keys of
  a different password are refused.

The key's attributes are also compared with what Windows' Add-KdsRootKey writes (see plugins/module_utils/ad/kds.py
for the sources) and with the key Samba's provisioning wrote (same algorithms and parameters; Samba writes
msKds-PrivateKeyLength 256 where Windows writes 512).
"""

from __future__ import annotations

import struct
import uuid

import ldap3

from gmsa_kerberos import AES256, blob_password, kerberos_keys, kinit_with_keys
from test_gmsa import delete, make_computer, read_managed_password, run_module, uid  # noqa: F401 pylint: disable=unused-import

ROOT_KEYS = 'CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,'
KDF_PARAM_SHA512 = bytes.fromhex('00000000010000000e000000000000005300480041003500310032000000')


def root_keys(samba_lab):
    conn = samba_lab.ldap()
    try:
        conn.search(ROOT_KEYS + samba_lab.config_dn, '(objectClass=msKds-ProvRootKey)', search_scope=ldap3.LEVEL,
                    attributes=['*'])
        return {e['dn']: e['raw_attributes'] for e in conn.response if e.get('type') == 'searchResEntry'}
    finally:
        conn.unbind()


def password_id(samba_lab, sam):
    conn = samba_lab.ldap()
    try:
        conn.search(samba_lab.base_dn, '(sAMAccountName=%s)' % sam, attributes=['msDS-ManagedPasswordId'])
        return conn.response[0]['raw_attributes']['msDS-ManagedPasswordId'][0]
    finally:
        conn.unbind()


def test_module_made_root_key_gives_nodes_a_password_the_kdc_accepts(run_module, samba_lab, tmp_path):
    # Samba's provisioning writes one root key; earlier tests may have replaced it (the fixture kept a copy)
    provisioned = samba_lab.provisioned_root_keys()
    assert len(provisioned) == 1, provisioned
    template = next(iter(provisioned.values()))
    conn = samba_lab.ldap()
    try:
        for dn in root_keys(samba_lab):
            assert conn.delete(dn), conn.result
    finally:
        conn.unbind()
    assert root_keys(samba_lab) == {}

    gmsa, group = 'kp%s' % uid(), 'KdsHosts%s' % uid()
    node_dn, node_pw, _node_sid = make_computer(samba_lab, 'kn%s' % uid())
    other_dn, other_pw, _other_sid = make_computer(samba_lab, 'ko%s' % uid())
    try:
        # a fresh domain: no key, so none is usable; the module says it would create one
        res = run_module(module='kds_root_key', check=True)
        assert res.get('failed') is not True and res['created'] is True and res['root_keys'] == [], res
        res = run_module(module='kds_root_key', lab_mode=True)
        assert res.get('failed') is not True and res['created'] is True and res['usable'] is True, res
        key_id = res['root_key']['id']
        keys = root_keys(samba_lab)
        assert [k['cn'][0].decode() for k in keys.values()] == [key_id]
        key = next(iter(keys.values()))

        # the attributes Windows' Add-KdsRootKey writes
        assert key['msKds-Version'] == [b'1']
        assert key['msKds-KDFAlgorithmID'] == [b'SP800_108_CTR_HMAC']
        assert key['msKds-KDFParam'] == [KDF_PARAM_SHA512]
        assert key['msKds-SecretAgreementAlgorithmID'] == [b'DH']
        param = key['msKds-SecretAgreementParam'][0]
        assert struct.unpack('<I4sI', param[:12]) == (12 + 256 + 256, b'DHPM', 256) and len(param) == 524
        assert key['msKds-PublicKeyLength'] == [b'2048'] and key['msKds-PrivateKeyLength'] == [b'512']
        assert len(key['msKds-RootKeyData'][0]) == 64
        # ... which are Samba's own choices too, but for the private key length
        for name in ('msKds-Version', 'msKds-KDFAlgorithmID', 'msKds-KDFParam', 'msKds-SecretAgreementAlgorithmID',
                     'msKds-SecretAgreementParam', 'msKds-PublicKeyLength', 'msKds-DomainID'):
            assert key[name] == template[name], name
        assert template['msKds-PrivateKeyLength'] == [b'256']
        again = run_module(module='kds_root_key', lab_mode=True)
        assert again['changed'] is False and again['root_key']['id'] == key_id, again

        # a gMSA and a host group with the node in it, both by the collection
        res = run_module(name=gmsa)
        assert res.get('failed') is not True and res['changed'] is True, res.get('msg')
        res = run_module(module='host_group', name=group, members=[node_dn], gmsas=[gmsa])
        assert res.get('failed') is not True and res['changed'] is True, res.get('msg')

        # the node retrieves a version-1 password blob derived from the collection's key; a non-member gets none
        blob = read_managed_password(samba_lab, node_dn, node_pw, gmsa + '$')
        assert blob is not None, 'the node got no msDS-ManagedPassword'
        version, password = blob_password(blob)
        assert version == 1
        assert read_managed_password(samba_lab, other_dn, other_pw, gmsa + '$') is None
        pwid = password_id(samba_lab, gmsa + '$')
        assert pwid[4:8] == b'KDSK' and str(uuid.UUID(bytes_le=pwid[24:40])) == key_id

        # the KDC issues a TGT for the gMSA to exactly the keys derived from that password ...
        keys = kerberos_keys(samba_lab, gmsa + '$', password)
        rc, err, listed = kinit_with_keys(samba_lab, tmp_path, gmsa + '$', keys)
        assert rc == 0, err
        assert 'krbtgt/%s@%s' % (samba_lab.realm, samba_lab.realm) in listed, listed
        assert '%s$@%s' % (gmsa, samba_lab.realm) in listed, listed
        # ... and refuses keys of another password (the check can fail)
        wrong = kerberos_keys(samba_lab, gmsa + '$', bytes(b ^ 0x55 for b in password))
        assert wrong[AES256] != keys[AES256]
        (tmp_path / 'wrong').mkdir()
        rc, err, _listed = kinit_with_keys(samba_lab, tmp_path / 'wrong', gmsa + '$', wrong)
        assert rc != 0 and ('preauth' in err.lower() or 'password' in err.lower() or 'decrypt' in err.lower()), err
    finally:
        run_module(module='host_group', name=group, gmsas=[gmsa], state='absent')
        run_module(name=gmsa, state='absent')
        delete(samba_lab, node_dn, other_dn)
