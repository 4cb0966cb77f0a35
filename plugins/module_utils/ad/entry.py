# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One directory object as both backends return it (``Entry``), how values are encoded for a write, and the
escaping of user values in LDAP filters and DNs (the ONLY way such values may enter a filter or a DN)."""

from __future__ import annotations

import uuid

try:
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn
    HAS_LDAP3 = True
except ImportError:
    HAS_LDAP3 = False

from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import sid_from_bytes

# Attributes whose values are binary in AD (octet strings / security descriptors). Everything else is
# decoded as UTF-8 in Entry.attributes; Entry.raw always has the bytes.
BINARY_ATTRIBUTES = frozenset(name.lower() for name in (
    'objectSid', 'objectGUID', 'sIDHistory', 'tokenGroups', 'nTSecurityDescriptor',
    'msDS-GroupMSAMembership', 'msDS-ManagedPassword', 'msDS-ManagedPasswordId',
    'msDS-ManagedPasswordPreviousId', 'msDS-AllowedToActOnBehalfOfOtherIdentity',
    'msKds-RootKeyData', 'msKds-KDFParam', 'msKds-SecretAgreementParam', 'msKds-PrivateKeyLength',
    'msKds-PublicKeyLength', 'msDS-GenerationId', 'userCertificate', 'cACertificate', 'thumbnailPhoto',
    'jpegPhoto', 'logonHours', 'replPropertyMetaData', 'replUpToDateVector', 'repsFrom', 'repsTo',
    'dnsRecord', 'dSASignature', 'schemaIDGUID', 'attributeSecurityGUID', 'rightsGuid',
    'msDS-AdditionalDnsHostName', 'unicodePwd', 'dBCSPwd', 'supplementalCredentials',
    'msDS-SecondaryKrbTgtNumber', 'invocationId', 'msDS-OptionalFeatureGUID', 'msDS-Behavior-Version',
    'msKds-DomainID', 'msDS-ManagedAccountPrecededByLink',
))
# msDS-Behavior-Version, msKds-PrivateKeyLength etc. are integers in AD; the list above is consulted
# only for values that are not valid UTF-8 text, except those below, which are always kept as bytes.
ALWAYS_BINARY = frozenset(name.lower() for name in (
    'objectSid', 'objectGUID', 'sIDHistory', 'tokenGroups', 'nTSecurityDescriptor',
    'msDS-GroupMSAMembership', 'msDS-ManagedPassword', 'msDS-ManagedPasswordId',
    'msDS-ManagedPasswordPreviousId', 'msDS-AllowedToActOnBehalfOfOtherIdentity',
    'msKds-RootKeyData', 'msKds-KDFParam', 'msKds-SecretAgreementParam', 'msDS-GenerationId',
    'userCertificate', 'cACertificate', 'thumbnailPhoto', 'jpegPhoto', 'logonHours',
    'replPropertyMetaData', 'replUpToDateVector', 'dnsRecord', 'schemaIDGUID',
    'attributeSecurityGUID', 'invocationId', 'unicodePwd', 'supplementalCredentials',
))

# Reading nTSecurityDescriptor without SeSecurityPrivilege needs the SD flags control without the SACL bit:
# ldap3.protocol.microsoft.security_descriptor_control(sdflags=0x07) (owner, group, DACL).


def escape_filter_value(value):
    """Escape a value for use inside an LDAP filter (RFC 4515). Bytes are hex-escaped byte by byte."""
    if isinstance(value, bytes):
        return ''.join('\\%02x' % b for b in bytearray(value))
    if not isinstance(value, str):
        value = str(value)
    if HAS_LDAP3:
        return escape_filter_chars(value)
    # Same rules as ldap3's escape_filter_chars, for import without ldap3.
    out = value.replace('\\', r'\5c').replace('*', r'\2a').replace('(', r'\28').replace(')', r'\29')
    return out.replace('\x00', r'\00')


def escape_rdn_value(value):
    """Escape a value used as an RDN value inside a DN (RFC 4514)."""
    if HAS_LDAP3:
        return escape_rdn(value)
    out = value.replace('\\', '\\\\')
    for char in ',+"<>;=':
        out = out.replace(char, '\\' + char)
    if out.startswith((' ', '#')):
        out = '\\' + out
    if out.endswith(' '):
        out = out[:-1] + '\\ '
    return out


def guid_to_str(raw):
    """Binary objectGUID (little-endian fields) -> 'xxxxxxxx-xxxx-...' (lower case)."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


class _CIDict(dict):
    """Minimal case-insensitive dict (keys keep the server's spelling)."""

    def __init__(self, *args, **kwargs):
        super(_CIDict, self).__init__(*args, **kwargs)
        self._keys = {k.lower(): k for k in self}

    def _real(self, key):
        return self._keys.get(key.lower(), key) if isinstance(key, str) else key

    def __getitem__(self, key):
        return super(_CIDict, self).__getitem__(self._real(key))

    def __contains__(self, key):
        return super(_CIDict, self).__contains__(self._real(key))

    def __setitem__(self, key, value):
        real = self._real(key)
        self._keys[real.lower()] = real
        super(_CIDict, self).__setitem__(real, value)

    def get(self, key, default=None):
        return super(_CIDict, self).get(self._real(key), default)


class Entry(object):
    """One directory object: ``dn``, ``attributes`` (decoded), ``raw`` (bytes)."""

    def __init__(self, dn, raw_attributes):
        self.dn = dn
        self.raw = _CIDict((name, [bytes(v) for v in values]) for name, values in raw_attributes.items())
        self.attributes = _CIDict((name, [_decode(name, v) for v in values]) for name, values in self.raw.items())

    def get(self, name, default=None):
        values = self.attributes.get(name)
        return values[0] if values else default

    def values(self, name):
        return list(self.attributes.get(name) or [])

    def sid(self, name='objectSid'):
        raw = self.raw.get(name)
        return sid_from_bytes(raw[0]) if raw else None

    def guid(self, name='objectGUID'):
        raw = self.raw.get(name)
        return guid_to_str(raw[0]) if raw else None

    def __repr__(self):
        return '<Entry %s %s>' % (self.dn, sorted(self.raw))


def _decode(name, value):
    if name.lower() in ALWAYS_BINARY:
        return value
    try:
        return value.decode('utf-8')
    except UnicodeDecodeError:
        return value


def _encode(value):
    if isinstance(value, bool):
        return 'TRUE' if value else 'FALSE'
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, int):
        return str(value)
    return value


def as_list(values):
    if values is None:
        return []
    if isinstance(values, (list, tuple, set, frozenset)):
        return [_encode(v) for v in values]
    return [_encode(values)]
