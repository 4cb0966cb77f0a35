# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Self-relative security descriptors ([MS-DTYP] 2.4.6), above all a gMSA's ``msDS-GroupMSAMembership`` (pure,
no I/O, no third-party library).

Active Directory stores "who may retrieve the managed password" as a self-relative security descriptor:
owner BUILTIN\\Administrators (S-1-5-32-544) and a DACL with one ACCESS_ALLOWED ACE (mask 0xF01FF) per allowed
principal SID. That is what the AD cmdlets' ``-PrincipalsAllowedToRetrieveManagedPassword`` writes.

``SecurityDescriptor`` reads and writes that binary form (any descriptor: owner, group, SACL kept as bytes,
DACL as ``Ace`` objects); ``GroupMSAMembership`` adds add/remove/set of allowed SIDs. The layout written is
the one Windows writes for msDS-GroupMSAMembership and Samba's NDR code packs: header, owner, group, SACL,
DACL, in that order; tests/unit checks it byte for byte against Samba's ``ndr_pack``. ACEs the module does
not manage (deny ACEs, object ACEs, ACEs with unusual flags) are kept byte for byte by add and remove;
``set`` replaces only the plain ACCESS_ALLOWED ACEs, so a deny ACE somebody put there on purpose survives.
"""

from __future__ import annotations

import re
import struct
import uuid

OWNER_SID = 'S-1-5-32-544'
GMSA_ACCESS_MASK = 0xF01FF
ACCESS_ALLOWED_ACE_TYPE = 0x00
ACCESS_DENIED_ACE_TYPE = 0x01
# ACE types whose body is mask + SID, and those whose body is mask, flags, [object GUID], [inherited GUID], SID
_BASIC_ACE_TYPES = (0x00, 0x01, 0x02, 0x03)
_OBJECT_ACE_TYPES = (0x05, 0x06, 0x07, 0x08)
ACE_OBJECT_TYPE_PRESENT = 0x1
ACE_INHERITED_OBJECT_TYPE_PRESENT = 0x2
INHERIT_ONLY_ACE = 0x08
ACL_REVISION = 2
ACL_REVISION_DS = 4  # what Windows writes in msDS-GroupMSAMembership; needed as soon as an object ACE is present
SE_DACL_PRESENT = 0x0004
SE_SACL_PRESENT = 0x0010
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


def _sid_length(data):
    return 8 + 4 * data[1] if len(data) >= 2 else 0


class Ace:
    """One ACE ([MS-DTYP] 2.4.4). Basic and object ACE types are decoded; any other type, or an ACE whose bytes
    our encoding would not reproduce (padding, application data), keeps its raw bytes and is written back as is.

    object_type / inherited_object_type: GUID strings of object ACEs (None when absent)."""

    __slots__ = ('ace_type', 'flags', 'mask', 'sid', 'object_type', 'inherited_object_type', 'raw')

    def __init__(self, ace_type, flags, mask, sid, raw=None, object_type=None, inherited_object_type=None):
        self.ace_type = ace_type
        self.flags = flags
        self.mask = mask
        self.sid = sid
        self.object_type = object_type
        self.inherited_object_type = inherited_object_type
        self.raw = raw

    @classmethod
    def allow(cls, sid, mask=GMSA_ACCESS_MASK):
        return cls(ACCESS_ALLOWED_ACE_TYPE, 0, mask, normalize_sid(sid))

    @classmethod
    def allow_object(cls, sid, mask, object_type=None, inherited_object_type=None, flags=0):
        """An ACCESS_ALLOWED_OBJECT_ACE (e.g. Create Child of one class, rights inherited by one class)."""
        return cls(0x05, flags, mask, normalize_sid(sid), object_type=object_type,
                   inherited_object_type=inherited_object_type)

    @classmethod
    def from_bytes(cls, raw):
        raw = bytes(raw)
        ace_type, flags, size = struct.unpack('<BBH', raw[:4])
        try:
            if ace_type in _BASIC_ACE_TYPES:
                mask = struct.unpack('<L', raw[4:8])[0]
                sid_bytes = raw[8:8 + _sid_length(raw[8:])]
                ace = cls(ace_type, flags, mask, sid_from_bytes(sid_bytes))
            elif ace_type in _OBJECT_ACE_TYPES:
                mask, object_flags = struct.unpack('<LL', raw[4:12])
                pos, guids = 12, []
                for bit in (ACE_OBJECT_TYPE_PRESENT, ACE_INHERITED_OBJECT_TYPE_PRESENT):
                    if object_flags & bit:
                        if len(raw) < pos + 16:
                            raise SecurityDescriptorError('object ACE truncated')
                        guids.append(str(uuid.UUID(bytes_le=raw[pos:pos + 16])))
                        pos += 16
                    else:
                        guids.append(None)
                sid_bytes = raw[pos:pos + _sid_length(raw[pos:])]
                ace = cls(ace_type, flags, mask, sid_from_bytes(sid_bytes), object_type=guids[0],
                          inherited_object_type=guids[1])
            else:
                return cls(ace_type, flags, 0, None, raw=raw)
        except (struct.error, SecurityDescriptorError):
            return cls(ace_type, flags, 0, None, raw=raw)
        if ace.to_bytes() != raw:
            ace.raw = raw  # trailing data or padding: written back exactly as read
        return ace

    def to_bytes(self):
        if self.raw is not None:
            return self.raw
        if self.ace_type in _OBJECT_ACE_TYPES:
            object_flags, guids = 0, b''
            for bit, guid in ((ACE_OBJECT_TYPE_PRESENT, self.object_type),
                              (ACE_INHERITED_OBJECT_TYPE_PRESENT, self.inherited_object_type)):
                if guid:
                    object_flags |= bit
                    guids += uuid.UUID(guid).bytes_le
            body = struct.pack('<LL', self.mask, object_flags) + guids + sid_to_bytes(self.sid)
        else:
            body = struct.pack('<L', self.mask) + sid_to_bytes(self.sid)
        return struct.pack('<BBH', self.ace_type, self.flags, 4 + len(body)) + body

    @property
    def managed(self):
        """A plain allow ACE (the kind add/remove/set manage)."""
        return self.ace_type == ACCESS_ALLOWED_ACE_TYPE and self.raw is None and not self.flags & INHERIT_ONLY_ACE

    def key(self):
        return (self.ace_type, self.flags, self.mask, self.sid, self.object_type, self.inherited_object_type,
                self.raw)

    def __eq__(self, other):
        return isinstance(other, Ace) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        return 'Ace(type=%d, flags=0x%x, mask=0x%x, sid=%s)' % (self.ace_type, self.flags, self.mask, self.sid)

    def sddl(self):
        kinds = {0x00: 'A', 0x01: 'D', 0x05: 'OA', 0x06: 'OD'}
        if self.ace_type in kinds and self.raw is None:
            return '(%s;%s;0x%x;%s;%s;%s)' % (kinds[self.ace_type], '0x%x' % self.flags if self.flags else '',
                                              self.mask, self.object_type or '', self.inherited_object_type or '',
                                              self.sid)
        return '(type 0x%x;0x%x;0x%x;;;%s)' % (self.ace_type, self.flags, self.mask, self.sid or '?')


def _acl_bytes(revision, aces):
    body = b''.join(ace.to_bytes() for ace in aces)
    return struct.pack('<BBHHH', revision, 0, 8 + len(body), len(aces), 0) + body


class SecurityDescriptor:
    """A self-relative security descriptor: control flags, owner, group (SID strings or None), the SACL as raw
    bytes (kept as is) and the DACL as a list of ``Ace`` (None: no DACL)."""

    def __init__(self, aces=(), owner=None, group=None, control=SE_SELF_RELATIVE | SE_DACL_PRESENT, sacl=None,
                 acl_revision=ACL_REVISION):
        self.aces = list(aces) if aces is not None else None
        self.acl_revision = acl_revision
        self.owner = owner
        self.group = group
        self.control = control
        self.sacl = sacl

    @classmethod
    def from_bytes(cls, data):
        data = bytes(data)
        if len(data) < 20:
            raise SecurityDescriptorError('not a self-relative security descriptor: %d bytes' % len(data))
        revision, _sbz1, control, off_owner, off_group, off_sacl, off_dacl = struct.unpack('<BBHLLLL', data[:20])
        if revision != 1 or not control & SE_SELF_RELATIVE:
            raise SecurityDescriptorError('not a self-relative security descriptor (revision %d, control 0x%04x)'
                                          % (revision, control))
        for offset in (off_owner, off_group, off_sacl, off_dacl):
            if offset and not 20 <= offset < len(data):
                raise SecurityDescriptorError('security descriptor offset %d outside its %d bytes' % (offset, len(data)))
        owner = sid_from_bytes(data[off_owner:]) if off_owner else None
        group = sid_from_bytes(data[off_group:]) if off_group else None
        sacl = None
        if off_sacl and control & SE_SACL_PRESENT:
            size = struct.unpack('<H', data[off_sacl + 2:off_sacl + 4])[0]
            sacl = data[off_sacl:off_sacl + size]
        aces, acl_revision = None, ACL_REVISION
        if off_dacl and control & SE_DACL_PRESENT:
            if off_dacl + 8 > len(data):
                raise SecurityDescriptorError('DACL truncated')
            acl_revision, _sbz, acl_size, ace_count, _sbz2 = struct.unpack('<BBHHH', data[off_dacl:off_dacl + 8])
            if off_dacl + acl_size > len(data):
                raise SecurityDescriptorError('DACL of %d bytes does not fit' % acl_size)
            aces, pos = [], off_dacl + 8
            for _index in range(ace_count):
                if pos + 4 > off_dacl + acl_size:
                    raise SecurityDescriptorError('DACL truncated')
                size = struct.unpack('<H', data[pos + 2:pos + 4])[0]
                if size < 4 or pos + size > off_dacl + acl_size:
                    raise SecurityDescriptorError('ACE with bad size %d' % size)
                aces.append(Ace.from_bytes(data[pos:pos + size]))
                pos += size
        return cls(aces, owner=owner, group=group, control=control, sacl=sacl, acl_revision=acl_revision)

    def to_bytes(self):
        control = self.control | SE_SELF_RELATIVE
        control = (control | SE_DACL_PRESENT) if self.aces is not None else (control & ~SE_DACL_PRESENT)
        control = (control | SE_SACL_PRESENT) if self.sacl else (control & ~SE_SACL_PRESENT)
        parts, offsets, pos = [], [], 20
        revision = self.acl_revision
        if self.aces and any(a.ace_type in _OBJECT_ACE_TYPES for a in self.aces):
            revision = max(revision, ACL_REVISION_DS)
        for part in (sid_to_bytes(self.owner) if self.owner else b'', sid_to_bytes(self.group) if self.group else b'',
                     self.sacl or b'', _acl_bytes(revision, self.aces) if self.aces is not None else b''):
            offsets.append(pos if part else 0)
            parts.append(part)
            pos += len(part)
        return struct.pack('<BBHLLLL', 1, 0, control, *offsets) + b''.join(parts)

    def sddl(self):
        text = ''
        if self.owner:
            text += 'O:%s' % self.owner
        if self.group:
            text += 'G:%s' % self.group
        return text + 'D:' + ''.join(ace.sddl() for ace in self.aces or [])

    def __eq__(self, other):
        return (isinstance(other, SecurityDescriptor) and self.aces == other.aces and self.owner == other.owner
                and self.group == other.group and self.sacl == other.sacl)

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, self.sddl())


class GroupMSAMembership(SecurityDescriptor):
    """msDS-GroupMSAMembership: owner BUILTIN\\Administrators, a DACL of allow ACEs (ACL revision 4, as Windows
    writes it)."""

    def __init__(self, aces=(), owner=OWNER_SID, group=None, control=SE_SELF_RELATIVE | SE_DACL_PRESENT,
                 sacl=None, acl_revision=ACL_REVISION_DS):
        super(GroupMSAMembership, self).__init__(list(aces or []), owner=owner, group=group, control=control,
                                                 sacl=sacl, acl_revision=acl_revision)

    @classmethod
    def for_principals(cls, sids):
        """A new descriptor allowing exactly ``sids`` (duplicates dropped, order kept)."""
        return cls().set(sids)

    @classmethod
    def from_bytes(cls, data):
        sd = SecurityDescriptor.from_bytes(data)
        return cls(sd.aces, owner=sd.owner, group=sd.group, control=sd.control, sacl=sd.sacl,
                   acl_revision=sd.acl_revision)

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
