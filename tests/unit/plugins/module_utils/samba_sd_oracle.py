"""Run by Debian's /usr/bin/python3 (python3-samba), not by pytest: Samba's own NDR code as the reference for
the collection's security descriptor codec (tests/unit/plugins/module_utils/test_security_descriptor_samba.py).

stdin: JSON {"domain_sid": ..., "ours": [{"name", "hex", "sddl"}], "samba": [{"name", "sddl" | "default"}]}
stdout: JSON with, for each of "ours": Samba's ndr_pack of ndr_unpack of our bytes, Samba's SDDL of our bytes and
Samba's ndr_pack of the expected SDDL; for each of "samba": the bytes Samba packs and the fields it sees.
"""

import json
import sys

import samba.descriptor
from samba.dcerpc import security
from samba.ndr import ndr_pack, ndr_unpack


def fields(sd):
    def aces(acl):
        out = []
        for ace in acl.aces if acl is not None else []:
            item = {'type': ace.type, 'flags': ace.flags, 'mask': ace.access_mask, 'sid': str(ace.trustee),
                    'object_type': None, 'inherited_object_type': None}
            if ace.type in (5, 6, 7, 8):
                if ace.object.flags & 1:
                    item['object_type'] = str(ace.object.type)
                if ace.object.flags & 2:
                    item['inherited_object_type'] = str(ace.object.inherited_type)
            out.append(item)
        return out

    return {'owner': str(sd.owner_sid) if sd.owner_sid else None, 'group': str(sd.group_sid) if sd.group_sid else None,
            'control': sd.type, 'dacl': aces(sd.dacl) if sd.dacl is not None else None,
            'dacl_revision': sd.dacl.revision if sd.dacl is not None else None,
            'sacl_present': sd.sacl is not None}


def main():
    request = json.load(sys.stdin)
    domain = security.dom_sid(request['domain_sid'])
    answer = {'ours': [], 'samba': []}
    for case in request['ours']:
        ours = bytes.fromhex(case['hex'])
        parsed = ndr_unpack(security.descriptor, ours)
        expected = security.descriptor.from_sddl(case['sddl'], domain)
        answer['ours'].append({'name': case['name'], 'repacked': ndr_pack(parsed).hex(),
                               'sddl': parsed.as_sddl(domain), 'expected_sddl': expected.as_sddl(domain),
                               'expected_packed': ndr_pack(expected).hex(), 'fields': fields(parsed)})
    for case in request['samba']:
        if case.get('default'):
            packed = getattr(samba.descriptor, case['default'])(domain)
            sd = ndr_unpack(security.descriptor, packed)
        else:
            sd = security.descriptor.from_sddl(case['sddl'], domain)
            packed = ndr_pack(sd)
        answer['samba'].append({'name': case['name'], 'hex': packed.hex(), 'fields': fields(sd)})
    json.dump(answer, sys.stdout)


if __name__ == '__main__':
    main()
