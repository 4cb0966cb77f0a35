# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The security descriptor of a gMSA's ``msDS-GroupMSAMembership`` attribute (pure, no I/O).

Active Directory stores "who may retrieve the managed password" as a self-relative security
descriptor ([MS-DTYP] 2.4.6): owner BUILTIN\\Administrators (S-1-5-32-544) and a DACL with one
ACCESS_ALLOWED ACE (mask 0xF01FF) per allowed principal SID. That is what the AD cmdlets'
``-PrincipalsAllowedToRetrieveManagedPassword`` writes.

``GroupMSAMembership`` parses and builds that binary form with impacket's ``ldap.ldaptypes`` and
offers add/remove/set of allowed SIDs. ACEs the module does not manage (deny ACEs, object ACEs,
ACEs with unusual flags) are kept byte for byte by add and remove; ``set`` replaces only the
plain ACCESS_ALLOWED ACEs, so a deny ACE somebody put there on purpose survives.
"""

from __future__ import annotations

import re
import struct

try:
    from impacket.ldap import ldaptypes
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    ldaptypes = None
    HAS_IMPACKET = False
else:
    HAS_IMPACKET = True

OWNER_SID = 'S-1-5-32-544'
GMSA_ACCESS_MASK = 0xF01FF
ACCESS_ALLOWED_ACE_TYPE = 0x00
ACCESS_DENIED_ACE_TYPE = 0x01
ACL_REVISION = 2
SE_DACL_PRESENT = 0x0004
SE_SELF_RELATIVE = 0x8000

_SID_RE = re.compile(r'^S-1-(\d+)(-\d+){1,15}$', re.IGNORECASE)


class SecurityDescriptorError(ValueError):
    """The bytes are not a security descriptor this model can read, or a SID is malformed."""


def is_sid(value):
    """True when ``value`` looks like a SID string (S-1-...)."""
    return isinstance(value, str) and bool(_SID_RE.match(value))


def normalize_sid(value):
    """Upper-case ``S-`` prefix and validated numbers; raises SecurityDescriptorError."""
    if not is_sid(value):
        raise SecurityDescriptorError('%r is not a SID string (S-1-<authority>-<sub>...)' % (value,))
    parts = value.split('-')
    numbers = [int(p) for p in parts[1:]]
    if numbers[1] > 0xFFFFFFFFFFFF or any(n > 0xFFFFFFFF for n in numbers[2:]):
        raise SecurityDescriptorError('%r has a number out of range' % (value,))
    return 'S-' + '-'.join(str(n) for n in numbers)


def sid_to_bytes(sid):
    """Binary (little-endian sub-authorities) form of a SID string, as stored in objectSid."""
    numbers = [int(p) for p in normalize_sid(sid).split('-')[1:]]
    revision, authority, subs = numbers[0], numbers[1], numbers[2:]
    return (struct.pack('<BB', revision, len(subs)) + authority.to_bytes(6, 'big')
            + b''.join(struct.pack('<L', s) for s in subs))


def sid_from_bytes(data):
    """SID string of a binary SID (objectSid value)."""
    data = bytes(data)
    if len(data) < 8:
        raise SecurityDescriptorError('binary SID too short (%d bytes)' % len(data))
    revision, count = struct.unpack('<BB', data[:2])
    if len(data) < 8 + 4 * count:
        raise SecurityDescriptorError('binary SID truncated')
    authority = int.from_bytes(data[2:8], 'big')
    subs = struct.unpack('<%dL' % count, data[8:8 + 4 * count])
    return 'S-%d-%d' % (revision, authority) + ''.join('-%d' % s for s in subs)


def _require_impacket():
    if not HAS_IMPACKET:
        raise SecurityDescriptorError('impacket is required to read or write msDS-GroupMSAMembership')


class Ace:
    """One ACE. Managed ACEs are plain ACCESS_ALLOWED with no flags; others keep their raw bytes."""

    __slots__ = ('ace_type', 'flags', 'mask', 'sid', 'raw')

    def __init__(self, ace_type, flags, mask, sid, raw=None):
        self.ace_type = ace_type
        self.flags = flags
        self.mask = mask
        self.sid = sid
        self.raw = raw

    @classmethod
    def allow(cls, sid, mask=GMSA_ACCESS_MASK):
        return cls(ACCESS_ALLOWED_ACE_TYPE, 0, mask, normalize_sid(sid))

    @property
    def managed(self):
        """A plain allow ACE (the kind add/remove/set manage)."""
        return self.ace_type == ACCESS_ALLOWED_ACE_TYPE and not self.flags & 0x08  # not INHERIT_ONLY

    def key(self):
        return (self.ace_type, self.flags, self.mask, self.sid, self.raw if self.sid is None else None)

    def __eq__(self, other):
        return isinstance(other, Ace) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        return 'Ace(type=%d, flags=0x%x, mask=0x%x, sid=%s)' % (self.ace_type, self.flags, self.mask, self.sid)

    def sddl(self):
        kinds = {ACCESS_ALLOWED_ACE_TYPE: 'A', ACCESS_DENIED_ACE_TYPE: 'D'}
        if self.ace_type in kinds:
            return '(%s;%s;0x%x;;;%s)' % (kinds[self.ace_type], '0x%x' % self.flags if self.flags else '',
                                          self.mask, self.sid)
        return '(type 0x%x;0x%x;0x%x;;;%s)' % (self.ace_type, self.flags, self.mask, self.sid or '?')

    def to_impacket(self):
        if self.raw is not None:
            return ldaptypes.ACE(data=self.raw)
        ace = ldaptypes.ACE()
        ace['AceType'] = self.ace_type
        ace['AceFlags'] = self.flags
        body = ldaptypes.ACCESS_ALLOWED_ACE() if self.ace_type == ACCESS_ALLOWED_ACE_TYPE \
            else ldaptypes.ACCESS_DENIED_ACE()
        body['Mask'] = ldaptypes.ACCESS_MASK()
        body['Mask']['Mask'] = self.mask
        body['Sid'] = ldaptypes.LDAP_SID(data=sid_to_bytes(self.sid))
        ace['Ace'] = body
        return ace


class GroupMSAMembership:
    """msDS-GroupMSAMembership: owner, optional group, DACL of ACEs."""

    def __init__(self, aces=(), owner=OWNER_SID, group=None, control=SE_SELF_RELATIVE | SE_DACL_PRESENT,
                 sacl=None, acl_revision=ACL_REVISION):
        self.aces = list(aces)
        self.acl_revision = acl_revision
        self.owner = owner
        self.group = group
        self.control = control
        self.sacl = sacl  # raw bytes of a SACL, kept as is

    # construction -------------------------------------------------------------------------------
    @classmethod
    def for_principals(cls, sids):
        """A new descriptor allowing exactly ``sids`` (duplicates dropped, order kept)."""
        aces = []
        seen = set()
        for sid in sids:
            sid = normalize_sid(sid)
            if sid not in seen:
                seen.add(sid)
                aces.append(Ace.allow(sid))
        return cls(aces)

    @classmethod
    def from_bytes(cls, data):
        _require_impacket()
        data = bytes(data)
        try:
            sd = ldaptypes.SR_SECURITY_DESCRIPTOR(data=data)
        except Exception as exc:  # impacket raises bare Exception/struct.error on garbage
            raise SecurityDescriptorError('not a self-relative security descriptor: %s' % exc)
        owner = sd['OwnerSid'].formatCanonical() if sd['OffsetOwner'] else None
        group = sd['GroupSid'].formatCanonical() if sd['OffsetGroup'] else None
        sacl = None
        if sd['OffsetSacl']:
            size = struct.unpack('<H', data[sd['OffsetSacl'] + 2:sd['OffsetSacl'] + 4])[0]
            sacl = data[sd['OffsetSacl']:sd['OffsetSacl'] + size]
        aces = []
        acl_revision = ACL_REVISION
        if sd['OffsetDacl']:
            offset = sd['OffsetDacl']
            acl_revision = data[offset]
            ace_count = struct.unpack('<H', data[offset + 4:offset + 6])[0]
            pos = offset + 8
            for _index in range(ace_count):
                if pos + 4 > len(data):
                    raise SecurityDescriptorError('DACL truncated')
                ace_type, flags, size = struct.unpack('<BBH', data[pos:pos + 4])
                raw = data[pos:pos + size]
                if size < 4 or len(raw) != size:
                    raise SecurityDescriptorError('ACE with bad size %d' % size)
                pos += size
                if ace_type in (ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE):
                    mask = struct.unpack('<L', raw[4:8])[0]
                    sid = sid_from_bytes(raw[8:])
                    exact = Ace(ace_type, flags, mask, sid)
                    # keep raw only if our encoding would differ (padding, odd sizes)
                    keep = raw if exact.ace_type == ACCESS_DENIED_ACE_TYPE or flags or len(raw) != 8 + len(
                        sid_to_bytes(sid)) else None
                    aces.append(Ace(ace_type, flags, mask, sid, keep))
                else:
                    aces.append(Ace(ace_type, flags, 0, None, raw))
        return cls(aces, owner=owner, group=group, control=sd['Control'], sacl=sacl, acl_revision=acl_revision)

    def to_bytes(self):
        _require_impacket()
        sd = ldaptypes.SR_SECURITY_DESCRIPTOR()
        sd['Revision'] = b'\x01'
        sd['Sbz1'] = b'\x00'
        sd['Control'] = self.control | SE_SELF_RELATIVE | SE_DACL_PRESENT
        sd['OwnerSid'] = ldaptypes.LDAP_SID(data=sid_to_bytes(self.owner)) if self.owner else b''
        sd['GroupSid'] = ldaptypes.LDAP_SID(data=sid_to_bytes(self.group)) if self.group else b''
        sd['Sacl'] = ldaptypes.ACL(data=self.sacl) if self.sacl else b''
        acl = ldaptypes.ACL()
        acl['AclRevision'] = max([self.acl_revision] + [4 for a in self.aces if a.ace_type in (5, 6, 7, 0x0B, 0x0C)])
        acl['Sbz1'] = 0
        acl['Sbz2'] = 0
        acl.aces = [ace.to_impacket() for ace in self.aces]
        sd['Dacl'] = acl
        return sd.getData()

    # queries ------------------------------------------------------------------------------------
    @property
    def allowed_sids(self):
        """SIDs with a plain allow ACE, in DACL order, without duplicates."""
        out = []
        for ace in self.aces:
            if ace.managed and ace.sid not in out:
                out.append(ace.sid)
        return out

    @property
    def denied_sids(self):
        return [ace.sid for ace in self.aces if ace.ace_type == ACCESS_DENIED_ACE_TYPE and ace.sid]

    @property
    def unmanaged_aces(self):
        return [ace for ace in self.aces if not ace.managed]

    def sddl(self):
        text = ''
        if self.owner:
            text += 'O:%s' % self.owner
        if self.group:
            text += 'G:%s' % self.group
        return text + 'D:' + ''.join(ace.sddl() for ace in self.aces)

    def __eq__(self, other):
        return (isinstance(other, GroupMSAMembership) and self.aces == other.aces and self.owner == other.owner
                and self.group == other.group and self.sacl == other.sacl)

    def __repr__(self):
        return 'GroupMSAMembership(%s)' % self.sddl()

    # edits (return new objects) -----------------------------------------------------------------
    def copy(self):
        return GroupMSAMembership(self.aces, self.owner, self.group, self.control, self.sacl, self.acl_revision)

    def add(self, sids):
        """Allow ``sids`` too; a SID that already has a plain allow ACE is left as it is."""
        new = self.copy()
        have = set(new.allowed_sids)
        for sid in sids:
            sid = normalize_sid(sid)
            if sid not in have:
                new.aces.append(Ace.allow(sid))
                have.add(sid)
        return new

    def remove(self, sids):
        """Drop the plain allow ACEs of ``sids``; every other ACE is kept."""
        drop = set(normalize_sid(s) for s in sids)
        new = self.copy()
        new.aces = [ace for ace in new.aces if not (ace.managed and ace.sid in drop)]
        return new

    def set(self, sids):
        """Allow exactly ``sids``: plain allow ACEs of others go, ACEs of other kinds stay."""
        wanted = []
        for sid in sids:
            sid = normalize_sid(sid)
            if sid not in wanted:
                wanted.append(sid)
        new = self.copy()
        kept = []
        seen = set()
        for ace in new.aces:
            if not ace.managed:
                kept.append(ace)
            elif ace.sid in wanted and ace.sid not in seen:
                kept.append(ace)
                seen.add(ace.sid)
        kept.extend(Ace.allow(sid) for sid in wanted if sid not in seen)
        new.aces = kept
        return new

    def apply(self, add=None, remove=None, set=None):  # pylint: disable=redefined-builtin
        """add/remove/set as the module options express them (set wins over add/remove)."""
        new = self
        if set is not None:
            new = new.set(set)
        if add:
            new = new.add(add)
        if remove:
            new = new.remove(remove)
        return new
