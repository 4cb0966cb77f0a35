"""msDS-GroupMSAMembership model: build, parse, round trip, add/remove/set."""

from __future__ import annotations

import base64
import struct

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.models import security_descriptor as sdm
from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import (
    GMSA_ACCESS_MASK,
    OWNER_SID,
    Ace,
    GroupMSAMembership,
    SecurityDescriptorError,
)

DOM = 'S-1-5-21-1004336348-1177238915-682003330'
A, B, C = DOM + '-1105', DOM + '-1106', DOM + '-1107'


def manual_sd(sids, owner=OWNER_SID, extra_aces=b'', extra_count=0, revision=4):
    """The binary form written out by hand from [MS-DTYP] 2.4.6 in the layout Windows writes for
    msDS-GroupMSAMembership: header, owner, DACL (ACL revision 4)."""
    aces = b''
    for sid in sids:
        body = struct.pack('<L', GMSA_ACCESS_MASK) + sdm.sid_to_bytes(sid)
        aces += struct.pack('<BBH', 0, 0, 4 + len(body)) + body
    aces += extra_aces
    dacl = struct.pack('<BBHHH', revision, 0, 8 + len(aces), len(sids) + extra_count, 0) + aces
    owner_bytes = sdm.sid_to_bytes(owner)
    header = struct.pack('<BBHLLLL', 1, 0, 0x8004, 20, 0, 0, 20 + len(owner_bytes))
    return header + owner_bytes + dacl


# msDS-GroupMSAMembership of a gMSA as Windows wrote it (ldapsearch output published in a write-up of a
# practice domain): owner at offset 20, DACL of revision 4 right after it, two allow ACEs.
WINDOWS_VALUE = base64.b64decode(
    'AQAEgBQAAAAAAAAAAAAAACQAAAABAgAAAAAABSAAAAAgAgAABABQAAIAAAAAACQA/wEPAAEFAAAAAAAFFQAAAEaG8fp0Fw3KRmPkzOgDAAAA'
    'ACQA/wEPAAEFAAAAAAAFFQAAAEaG8fp0Fw3KRmPkzHYEAAA=')
WINDOWS_DOMAIN = 'S-1-5-21-4210132550-3389855604-3437519686'


def test_windows_written_value_parses_and_is_rebuilt_byte_for_byte():
    sd = GroupMSAMembership.from_bytes(WINDOWS_VALUE)
    assert sd.owner == OWNER_SID and sd.group is None
    assert sd.allowed_sids == [WINDOWS_DOMAIN + '-1000', WINDOWS_DOMAIN + '-1142']
    assert sd.to_bytes() == WINDOWS_VALUE
    assert GroupMSAMembership.for_principals(sd.allowed_sids).to_bytes() == WINDOWS_VALUE


def test_older_layout_still_read():
    """Values written by earlier versions of the collection (DACL before the owner, revision 2) are read;
    the ACEs, not the layout, decide whether a change is needed."""
    sd = GroupMSAMembership.for_principals([A, B])
    owner = sdm.sid_to_bytes(OWNER_SID)
    body = sd.to_bytes()[20 + len(owner):]
    dacl = b'\x02' + body[1:]
    old = struct.pack('<BBHLLLL', 1, 0, 0x8004, 20 + len(dacl), 0, 0, 20) + dacl + owner
    parsed = GroupMSAMembership.from_bytes(old)
    assert parsed == sd and parsed.allowed_sids == [A, B] and parsed.acl_revision == 2


def test_sid_round_trip():
    for sid in (OWNER_SID, A, 'S-1-1-0', 'S-1-5-11'):
        assert sdm.sid_from_bytes(sdm.sid_to_bytes(sid)) == sid
    assert sdm.sid_to_bytes('S-1-5-32-544') == bytes.fromhex('01020000000000052000000020020000')


@pytest.mark.parametrize('bad', ['', 'S-1', 'S-1-5-', 'X-1-5-21', 'S-1-5-21-abc', 'S-1-5-99999999999', None, 5])
def test_bad_sids(bad):
    # 'S-1-5-99999999999' has the shape of a SID, but its sub-authority does not fit in 32 bits
    assert sdm.is_sid(bad) is (bad == 'S-1-5-99999999999')
    with pytest.raises(SecurityDescriptorError):
        sdm.normalize_sid(bad)


def test_lower_case_sid_normalized():
    assert sdm.normalize_sid('s-1-5-32-544') == 'S-1-5-32-544'


def test_build_matches_hand_written_bytes():
    assert GroupMSAMembership.for_principals([A, B]).to_bytes() == manual_sd([A, B])
    assert GroupMSAMembership.for_principals([]).to_bytes() == manual_sd([])


def test_parse_hand_written_bytes():
    sd = GroupMSAMembership.from_bytes(manual_sd([A, B]))
    assert sd.owner == OWNER_SID
    assert sd.group is None
    assert sd.allowed_sids == [A, B]
    assert all(ace.mask == GMSA_ACCESS_MASK for ace in sd.aces)
    assert sd.sddl() == 'O:%sD:(A;;0xf01ff;;;%s)(A;;0xf01ff;;;%s)' % (OWNER_SID, A, B)


def test_round_trip_bytes_identical():
    raw = manual_sd([A, B, C])
    assert GroupMSAMembership.from_bytes(raw).to_bytes() == raw


def test_for_principals_deduplicates():
    assert GroupMSAMembership.for_principals([A, A.lower(), B]).allowed_sids == [A, B]


def test_add_is_idempotent_and_preserves():
    sd = GroupMSAMembership.for_principals([A])
    assert sd.add([A]) == sd
    after = sd.add([B, A])
    assert after.allowed_sids == [A, B]
    assert sd.allowed_sids == [A]  # original untouched


def test_remove_only_named():
    sd = GroupMSAMembership.for_principals([A, B, C])
    assert sd.remove([B]).allowed_sids == [A, C]
    assert sd.remove(['S-1-5-11']) == sd


def test_set_replaces():
    sd = GroupMSAMembership.for_principals([A, B])
    assert sd.set([C]).allowed_sids == [C]
    assert sd.set([B, A]).allowed_sids == [A, B]  # existing ACEs kept in place: no change
    assert sd.set([B, A]) == sd
    assert sd.set([]).allowed_sids == []
    assert sd.set([]).to_bytes() == manual_sd([])


def test_apply_order():
    sd = GroupMSAMembership.for_principals([A])
    assert sd.apply(set=[B], add=[C], remove=[B]).allowed_sids == [C]
    assert sd.apply().allowed_sids == [A]


def deny_ace(sid):
    body = struct.pack('<L', 0x10) + sdm.sid_to_bytes(sid)
    return struct.pack('<BBH', 1, 0, 4 + len(body)) + body


def object_ace(sid):
    guid = bytes(range(16))
    body = struct.pack('<LL', 0x100, 1) + guid + sdm.sid_to_bytes(sid)
    return struct.pack('<BBH', 5, 0, 4 + len(body)) + body


def test_unmanaged_aces_preserved_by_add_remove_set():
    raw = manual_sd([A, B], extra_aces=deny_ace(C) + object_ace(C), extra_count=2)
    sd = GroupMSAMembership.from_bytes(raw)
    assert sd.to_bytes() == raw
    assert sd.allowed_sids == [A, B]
    assert sd.denied_sids == [C]
    assert len(sd.unmanaged_aces) == 2
    for changed in (sd.add([C]), sd.remove([A]), sd.set([C])):
        assert len(changed.unmanaged_aces) == 2
        again = GroupMSAMembership.from_bytes(changed.to_bytes())
        assert again == changed
        assert again.unmanaged_aces == sd.unmanaged_aces
    assert sd.set([C]).allowed_sids == [C]
    # a revision-2 DACL goes to revision 4 when an object ACE is present
    two = GroupMSAMembership.from_bytes(manual_sd([A], revision=2))
    assert two.to_bytes() == manual_sd([A], revision=2)
    assert two.copy().add([B]).to_bytes()[36] == 2
    two.aces.append(sdm.Ace.from_bytes(object_ace(C)))
    assert two.to_bytes()[36] == 4


def test_flagged_allow_ace_kept_raw():
    body = struct.pack('<L', GMSA_ACCESS_MASK) + sdm.sid_to_bytes(C)
    inherit_only = struct.pack('<BBH', 0, 0x0A, 4 + len(body)) + body
    raw = manual_sd([A], extra_aces=inherit_only, extra_count=1)
    sd = GroupMSAMembership.from_bytes(raw)
    assert sd.allowed_sids == [A]  # inherit-only ACE does not grant on the object itself
    assert sd.set([]).aces == [sd.aces[1]]
    assert sd.to_bytes() == raw


def test_garbage_raises():
    for data in (b'', b'\x01\x00', b'\x01' * 7, b'\x02' + manual_sd([A])[1:], manual_sd([A])[:-3],
                 manual_sd([A])[:4] + struct.pack('<L', 999) + manual_sd([A])[8:]):
        with pytest.raises(SecurityDescriptorError):
            GroupMSAMembership.from_bytes(data)


def test_equality_and_repr():
    assert GroupMSAMembership.for_principals([A]) != GroupMSAMembership.for_principals([B])
    assert A in repr(GroupMSAMembership.for_principals([A]))
    assert Ace.allow(A) == Ace.allow(A)
    assert len({Ace.allow(A), Ace.allow(A)}) == 1
