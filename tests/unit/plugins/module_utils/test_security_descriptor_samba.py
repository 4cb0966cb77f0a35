"""The security descriptor codec checked byte for byte against Samba's own NDR code.

Samba (python3-samba, Debian's /usr/bin/python3 on the lab machine) is the reference: every kind of descriptor
the collection writes or reads (msDS-GroupMSAMembership as built, edited and as Windows writes it; the
nTSecurityDescriptor DACLs the integration tests edit, with object ACEs, inherit flags and a SACL) is encoded by
our codec and decoded and re-packed by Samba, and packed by Samba from SDDL and decoded and re-encoded by ours.

The venv of the unit tests has no python3-samba, so samba_sd_oracle.py runs in /usr/bin/python3. A machine
without python3-samba fails this test (install python3-samba, e.g. lab/samba/install.sh); it is not skipped.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import (
    Ace,
    GroupMSAMembership,
    SecurityDescriptor,
)

SYSTEM_PYTHON = '/usr/bin/python3'
ORACLE = Path(__file__).with_name('samba_sd_oracle.py')
DOM = 'S-1-5-21-1004336348-1177238915-682003330'
A, B, C = DOM + '-1105', DOM + '-1106', DOM + '-1107'
GMSA_CLASS = '7b8b558a-93a5-4af7-adca-c017e67f1057'  # schemaIDGUID of msDS-GroupManagedServiceAccount
ROOT_KEY_CLASS = 'aa02fd41-17e0-4f18-8687-b2239649736b'  # schemaIDGUID of msKds-ProvRootKey
WINDOWS_VALUE = bytes.fromhex(
    '010004801400000000000000000000002400000001020000000000052000000020020000040050000200000000002400ff010f00'
    '01050000000000051500000046 86f1fa74170dca4663e4cce803000000002400ff010f0001050000000000051500000046'
    '86f1fa74170dca4663e4cc76040000'.replace(' ', ''))


def oracle(request):
    proc = subprocess.run([SYSTEM_PYTHON, str(ORACLE)], input=json.dumps(request), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, ('Samba reference failed (needs python3-samba for %s):\n%s'
                                  % (SYSTEM_PYTHON, proc.stderr[-3000:]))
    return json.loads(proc.stdout)


def our_fields(sd):
    return {'owner': sd.owner, 'group': sd.group,
            'dacl': None if sd.aces is None else [
                {'type': a.ace_type, 'flags': a.flags, 'mask': a.mask, 'sid': a.sid, 'object_type': a.object_type,
                 'inherited_object_type': a.inherited_object_type} for a in sd.aces],
            'dacl_revision': sd.acl_revision if sd.aces is not None else None}


def ours_cases():
    """(name, descriptor built with our API, the SDDL it must equal)."""
    base = GroupMSAMembership.for_principals([A, B])
    unmanaged = base.copy()
    unmanaged.aces += [Ace(1, 0, 0x10, C), Ace.allow_object(C, 0x100, object_type=GMSA_CLASS)]
    delegation = SecurityDescriptor([Ace.allow(A, 0x1F01FF)], owner=DOM + '-512', group=DOM + '-512')
    delegation.aces += [Ace.allow_object(B, 0x3, object_type=GMSA_CLASS),
                        Ace.allow_object(B, 0x20030, inherited_object_type=GMSA_CLASS, flags=0x0A),
                        Ace.allow_object(C, 0x130, inherited_object_type=ROOT_KEY_CLASS, flags=0x0A)]
    mask = '0xf01ff'
    return [
        ('empty', GroupMSAMembership.for_principals([]), 'O:BAD:'),
        ('one', GroupMSAMembership.for_principals([A]), 'O:BAD:(A;;%s;;;%s)' % (mask, A)),
        ('three', GroupMSAMembership.for_principals([A, B, C]),
         'O:BAD:(A;;%s;;;%s)(A;;%s;;;%s)(A;;%s;;;%s)' % (mask, A, mask, B, mask, C)),
        ('add', base.add([C, A]), 'O:BAD:(A;;%s;;;%s)(A;;%s;;;%s)(A;;%s;;;%s)' % (mask, A, mask, B, mask, C)),
        ('remove', base.remove([A]), 'O:BAD:(A;;%s;;;%s)' % (mask, B)),
        ('unmanaged kept', unmanaged.set([C]),
         'O:BAD:(D;;0x10;;;%s)(OA;;CR;%s;;%s)(A;;%s;;;%s)' % (C, GMSA_CLASS, C, mask, C)),
        ('windows value', GroupMSAMembership.from_bytes(WINDOWS_VALUE),
         'O:BAD:(A;;%s;;;S-1-5-21-4210132550-3389855604-3437519686-1000)'
         '(A;;%s;;;S-1-5-21-4210132550-3389855604-3437519686-1142)' % (mask, mask)),
        ('delegation', delegation,
         'O:DAG:DAD:(A;;0x1f01ff;;;%s)(OA;;CCDC;%s;;%s)(OA;CIIO;RPWPRC;;%s;%s)(OA;CIIO;RPWPCR;;%s;%s)'
         % (A, GMSA_CLASS, B, GMSA_CLASS, B, ROOT_KEY_CLASS, C)),
    ]


SAMBA_CASES = [
    {'name': 'gmsa sddl', 'sddl': 'O:BAD:(A;;0xf01ff;;;%s)(A;;0xf01ff;;;%s)' % (A, B)},
    {'name': 'group and a deny ACE with inherit flags', 'sddl': 'O:BAG:BAD:(A;;0xf01ff;;;%s)(D;CI;0x10;;;%s)' % (A, B)},
    {'name': 'sacl and flags',
     'sddl': 'O:DAG:DAD:PAI(A;;RPWP;;;%s)(OA;CIIO;RPWPCR;;%s;%s)S:AI(AU;SA;WP;;;WD)' % (A, ROOT_KEY_CLASS, C)},
    {'name': 'default domain descriptor', 'default': 'get_domain_descriptor'},
    {'name': 'default managed service accounts', 'default': 'get_managed_service_accounts_descriptor'},
    {'name': 'default configuration', 'default': 'get_config_descriptor'},
]


def test_our_encoding_is_samba_encoding_byte_for_byte():
    cases = ours_cases()
    answer = oracle({'domain_sid': DOM, 'samba': [],
                     'ours': [{'name': n, 'hex': sd.to_bytes().hex(), 'sddl': sddl} for n, sd, sddl in cases]})
    for (name, sd, _sddl), seen in zip(cases, answer['ours']):
        ours = sd.to_bytes().hex()
        assert seen['repacked'] == ours, name  # Samba decodes our bytes and packs them back identically
        assert seen['sddl'] == seen['expected_sddl'], name  # Samba reads what we meant
        assert seen['expected_packed'] == ours, name  # Samba's own encoding of that SDDL is our encoding
        assert seen['fields']['owner'] == sd.owner and seen['fields']['group'] == sd.group, name
        assert seen['fields']['dacl'] == our_fields(sd)['dacl'], name


def test_samba_encoding_decoded_and_reencoded_by_ours():
    answer = oracle({'domain_sid': DOM, 'ours': [], 'samba': SAMBA_CASES})
    assert len(answer['samba']) == len(SAMBA_CASES)
    for seen in answer['samba']:
        raw = bytes.fromhex(seen['hex'])
        sd = SecurityDescriptor.from_bytes(raw)
        assert sd.to_bytes() == raw, seen['name']
        fields = our_fields(sd)
        for key in ('owner', 'group', 'dacl', 'dacl_revision'):
            assert fields[key] == seen['fields'][key], (seen['name'], key)
        assert (sd.sacl is not None) == seen['fields']['sacl_present'], seen['name']
        gmsa = GroupMSAMembership.from_bytes(raw)
        assert gmsa.to_bytes() == raw, seen['name']
    big = [s for s in answer['samba'] if s['name'] == 'default domain descriptor'][0]
    assert len(big['fields']['dacl']) > 20 and any(a['object_type'] for a in big['fields']['dacl'])
