# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KDS (Group Key Distribution Service) root keys: reading, judging and creating them over LDAP.

A root key is an ``msKds-ProvRootKey`` object named by a GUID under
``CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,<configuration DN>``. Domain
controllers derive gMSA passwords from the most recently created key whose ``msKds-UseStartTime``
is not later than the start of the password's key interval ([MS-GKDI]; Samba's
``gkdi_most_recently_created_root_key`` does the same). Key intervals are 10 hours long, so a key is
usable for a new gMSA password once its use-start time lies before the start of the current 10-hour
interval.

The attributes written are those Windows' Add-KdsRootKey writes in a forest whose KDS configuration was never
changed, and they are Samba's own choices too (docs/kds-root-key.md, proven by tests/integration/test_kds_proof.py):
64 random bytes of root key data, version 1, the creating DC as msKds-DomainID, the SP800-108 CTR HMAC KDF with
SHA512, DH secret agreement over the RFC 5114 2048-bit group with 256-bit subgroup, public/private key lengths
2048/512. Values from the forest's ``msKds-ProvServerConfiguration`` object (Set-KdsConfiguration) take
precedence, as they do for Add-KdsRootKey. Sources:

- [MS-ADSC] 2.159 class msKds-ProvRootKey: the attributes a root key must carry (msKds-PrivateKeyLength,
  msKds-PublicKeyLength, msKds-SecretAgreementAlgorithmID, msKds-KDFAlgorithmID, ...).
- [MS-GKDI] 2.2.1 (KDF parameters), 2.2.2 (FFC DH parameters) and 3.1.4.1.2 (group keys from the root key
  with the KDF named in the key).
- Samba, source4/dsdb/gmsa/gkdi.c, gkdi_create_root_key(): the same KDF parameter and DH parameter blobs as
  defaults, 64 bytes of root key data, the DC's server reference as msKds-DomainID. It defaults
  msKds-PrivateKeyLength to 256 where Windows writes 512 (the value Windows-made keys carry, e.g. the defaults
  of DSInternals' KdsRootKey, which reads them); Samba does not use the public-key attributes.
"""

from __future__ import annotations

import datetime
import os
import struct
import uuid

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.entry import escape_filter_value
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.errors import ADError

ROOT_KEYS_RDN = 'CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services'
SERVER_CONFIG_RDN = ('CN=Group Key Distribution Service Server Configuration,CN=Server Configuration,'
                     'CN=Group Key Distribution Service,CN=Services')

KEY_CYCLE = datetime.timedelta(hours=10)  # GKDI key interval / replication wait
MAX_CLOCK_SKEW = datetime.timedelta(minutes=5)
LAB_BACKDATE = KEY_CYCLE + MAX_CLOCK_SKEW
# What Add-KdsRootKey writes in an unconfigured forest (sources in the module docstring)
ROOT_KEY_LENGTH = 64
KDF_ALGORITHM = 'SP800_108_CTR_HMAC'
KDF_HASH = 'SHA512'
SECRET_AGREEMENT_ALGORITHM = 'DH'
PUBLIC_KEY_LENGTH = 2048
PRIVATE_KEY_LENGTH = 512  # Windows; Samba's gkdi_create_root_key() falls back to 256

# RFC 5114 section 2.3: 2048-bit MODP group with 256-bit prime order subgroup (public constants).
_DH_P = (
    '87a8e61db4b6663cffbbd19c651959998ceef608660dd0f25d2ceed4435e3b00e00df8f1d61957d4faf7df4561b2aa30'
    '16c3d91134096faa3bf4296d830e9a7c209e0c6497517abd5a8a9d306bcf67ed91f9e6725b4758c022e0b1ef4275bf7b'
    '6c5bfc11d45f9088b941f54eb1e59bb8bc39a0bf12307f5c4fdb70c581b23f76b63acae1caa6b7902d52526735488a0e'
    'f13c6d9a51bfa4ab3ad8347796524d8ef6a167b5a41825d967e144e5140564251ccacb83e6b486f6b3ca3f7971506026'
    'c0b857f689962856ded4010abd0be621c3a3960a54e710c375f26375d7014103a4b54330c198af126116d2276e11715f'
    '693877fad7ef09cadb094ae91e1a1597')
_DH_G = (
    '3fb32c9b73134d0b2e77506660edbd484ca7b18f21ef205407f4793a1a0ba12510dbc15077be463fff4fed4aac0bb555'
    'be3a6c1b0c6b47b1bc3773bf7e8c6f62901228f8c28cbb18a55ae31341000a650196f931c77a57f2ddf463e5e9ec144b'
    '777de62aaab8a8628ac376d282d6ed3864e67982428ebc831d14348f6f2f9193b5045af2767164e1dfc967c1fb3f2e55'
    'a4bd1bffe83b9c80d052b985d182ea0adb2a3b7313d3fe14c8484b1e052588b9b7d2bbd2df016199ecd06e1557cd0915'
    'b3353bbb64e0ec377fd028370df92b52c7891428cdc67eb6184b523d1db246c32f63078490f00ef8d647d148d4795451'
    '5e2327cfef98c582664b4c0f6cc41659')

KEY_ATTRIBUTES = [
    'cn', 'msKds-Version', 'msKds-CreateTime', 'msKds-UseStartTime', 'msKds-KDFAlgorithmID', 'msKds-KDFParam',
    'msKds-RootKeyData', 'msKds-DomainID', 'msKds-SecretAgreementAlgorithmID', 'whenCreated',
]

_NT_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)


def ffc_dh_parameters_blob():
    """[MS-GKDI] 2.2.2 FFC DH parameters: length, 'DHPM', key length, p, g (big-endian)."""
    p = bytes.fromhex(_DH_P)
    g = bytes.fromhex(_DH_G)
    return struct.pack('<I4sI', 12 + len(p) + len(g), b'DHPM', len(p)) + p + g


def kdf_parameters_blob(hash_name=KDF_HASH):
    """[MS-GKDI] 2.2.1 KDF parameters: 0, 1, byte length of the UTF-16 hash name, 0, the name."""
    name = (hash_name + '\x00').encode('utf-16-le')
    return struct.pack('<IIII', 0, 1, len(name), 0) + name


def kdf_hash_name(blob):
    """Hash algorithm named in a KDF parameter blob, or None when the blob is malformed."""
    try:
        zero, one, length, zero2 = struct.unpack('<IIII', blob[:16])
        if (zero, one, zero2) != (0, 1, 0) or length != len(blob) - 16:
            return None
        return blob[16:].decode('utf-16-le').rstrip('\x00')
    except (struct.error, UnicodeDecodeError):
        return None


def nt_time(moment):
    """datetime (aware) -> Windows FILETIME integer (100 ns since 1601)."""
    delta = moment - _NT_EPOCH
    return (delta.days * 86400 + delta.seconds) * 10 ** 7 + delta.microseconds * 10


def from_nt_time(value):
    value = int(value)
    return _NT_EPOCH + datetime.timedelta(microseconds=value // 10)


def iso(moment):
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ') if moment else None


def interval_start(moment):
    """Start of the 10-hour GKDI key interval containing ``moment``."""
    ticks = nt_time(moment)
    cycle = int(KEY_CYCLE.total_seconds()) * 10 ** 7
    return from_nt_time(ticks - ticks % cycle)


def parse_time(text):
    """ISO 8601 (``2026-01-01T10:00:00Z``, ``2026-01-01 10:00:00+01:00``, date only) -> aware datetime (UTC)."""
    value = text.strip()
    if value.endswith(('Z', 'z')):
        value = value[:-1] + '+00:00'
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError('cannot parse %r as an ISO 8601 time such as 2026-01-31T08:00:00Z' % text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def root_keys_dn(directory):
    return '%s,%s' % (ROOT_KEYS_RDN, directory.config_dn)


def describe_key(entry, now):
    """Judge one msKds-ProvRootKey entry. Returns a dict (no secret material)."""
    problems = []
    key_id = entry.get('cn') or entry.dn.split(',', 1)[0].split('=', 1)[-1]
    try:
        uuid.UUID(key_id)
        if len(key_id) != 36:
            raise ValueError(key_id)
    except ValueError:
        problems.append('name %r is not a GUID' % key_id)
    version = entry.get('msKds-Version')
    if str(version) != '1':
        problems.append('msKds-Version is %s, only 1 is supported' % version)
    kdf = entry.get('msKds-KDFAlgorithmID')
    if kdf != KDF_ALGORITHM:
        problems.append('msKds-KDFAlgorithmID is %s, expected %s' % (kdf, KDF_ALGORITHM))
    param = entry.raw.get('msKds-KDFParam')
    if param and kdf_hash_name(param[0]) not in ('SHA1', 'SHA256', 'SHA384', 'SHA512'):
        problems.append('msKds-KDFParam names no supported hash')
    data = entry.raw.get('msKds-RootKeyData')
    if data is not None and len(data[0]) != ROOT_KEY_LENGTH:
        problems.append('msKds-RootKeyData is %d bytes, expected %d' % (len(data[0]), ROOT_KEY_LENGTH))
    create = entry.get('msKds-CreateTime')
    start = entry.get('msKds-UseStartTime')
    create_time = from_nt_time(create) if create else None
    use_start = from_nt_time(start) if start and int(start) > 0 else None
    if use_start is None:
        problems.append('msKds-UseStartTime is missing or zero')
    well_formed = not problems
    usable = bool(well_formed and use_start is not None and use_start <= interval_start(now))
    return dict(
        id=key_id,
        dn=entry.dn,
        effective_time=iso(use_start),
        create_time=iso(create_time),
        usable_from=iso(interval_start(use_start) + KEY_CYCLE if use_start and use_start > interval_start(use_start)
                        else use_start),
        effective=bool(use_start and use_start <= now),
        usable=usable,
        well_formed=well_formed,
        problems=problems,
        domain_id=entry.get('msKds-DomainID'),
        _create_ticks=int(create) if create else 0,
        _start=use_start,
    )


def public(key):
    return {k: v for k, v in key.items() if not k.startswith('_')} if key else None


def read_root_keys(directory, now=None):
    """All root keys, judged, newest created first."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        entries = directory.kds_root_key_entries(root_keys_dn(directory))  # an LDAP search or Get-KdsRootKey
    except ADError as exc:
        if getattr(exc, 'code', None) == 32:  # container missing: forest schema/config without KDS
            return []
        raise
    keys = [describe_key(entry, now) for entry in entries]
    keys.sort(key=lambda k: k['_create_ticks'], reverse=True)
    return keys


def current_key(keys, now=None):
    """The key DCs would use for a gMSA password now: newest created usable key (None when none)."""
    usable = [k for k in keys if k['usable']]
    return usable[0] if usable else None


def pending_key(keys):
    """A well-formed key that is not usable yet but will become so (newest first)."""
    pending = [k for k in keys if k['well_formed'] and not k['usable']]
    return pending[0] if pending else None


def server_configuration(directory):
    """KDS settings of the forest (msKds-ProvServerConfiguration); missing values get defaults."""
    entry = directory.get('%s,%s' % (SERVER_CONFIG_RDN, directory.config_dn), [
        'msKds-Version', 'msKds-KDFAlgorithmID', 'msKds-KDFParam', 'msKds-SecretAgreementAlgorithmID',
        'msKds-SecretAgreementParam', 'msKds-PublicKeyLength', 'msKds-PrivateKeyLength'])
    get = entry.get if entry is not None else (lambda name, default=None: default)
    raw = entry.raw.get if entry is not None else (lambda name, default=None: default)
    version = get('msKds-Version', '1')
    if str(version) != '1':
        raise ADError('the forest\'s KDS server configuration has msKds-Version %s; only version 1 is '
                      'supported' % version)
    return {
        'msKds-Version': 1,
        'msKds-KDFAlgorithmID': get('msKds-KDFAlgorithmID') or KDF_ALGORITHM,
        'msKds-KDFParam': (raw('msKds-KDFParam') or [kdf_parameters_blob()])[0],
        'msKds-SecretAgreementAlgorithmID': get('msKds-SecretAgreementAlgorithmID') or SECRET_AGREEMENT_ALGORITHM,
        'msKds-SecretAgreementParam': (raw('msKds-SecretAgreementParam') or [ffc_dh_parameters_blob()])[0],
        'msKds-PublicKeyLength': int(get('msKds-PublicKeyLength') or PUBLIC_KEY_LENGTH),
        'msKds-PrivateKeyLength': int(get('msKds-PrivateKeyLength') or PRIVATE_KEY_LENGTH),
    }


def dc_account_dn(directory):
    """DN of the computer account of the DC we are bound to (msKds-DomainID of keys it creates)."""
    server = directory.root_dse.get('serverName')
    if server:
        entry = directory.get(server, ['serverReference'])
        if entry is not None and entry.get('serverReference'):
            return entry.get('serverReference')
    host = directory.root_dse.get('dnsHostName') or ''
    found = directory.search(directory.base_dn, '(&(objectCategory=computer)(dNSHostName=%s))'
                             % escape_filter_value(host), ['distinguishedName'])
    if found:
        return found[0].dn
    raise ADError('cannot find the computer account of the domain controller %s' % host)


def create_root_key(directory, use_start, now=None, key_id=None):
    """Add a root key usable from ``use_start`` (over LDAP, or Add-KdsRootKey with backend winrm). Returns
    (key_id, dn)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    key_id = directory.add_kds_root_key(use_start, now, key_id=key_id)
    return key_id, 'CN=%s,%s' % (key_id, root_keys_dn(directory))


# The LDAP backend's side of the two operations (ldap_client.Directory.kds_root_key_entries / add_kds_root_key);
# the cmdlet backend's side is winrm_directory.WinRMDirectory's methods of the same names.

def root_key_entries_over_ldap(directory, container_dn):
    return directory.search(container_dn, '(objectClass=msKds-ProvRootKey)', KEY_ATTRIBUTES, scope='one')


def add_root_key_over_ldap(directory, use_start, now, key_id=None):
    """Write the msKds-ProvRootKey object Add-KdsRootKey would write. Returns its id."""
    key_id = key_id or str(uuid.uuid4())
    attributes = server_configuration(directory)
    attributes.update({
        'msKds-RootKeyData': os.urandom(ROOT_KEY_LENGTH),
        'msKds-CreateTime': nt_time(now),
        'msKds-UseStartTime': nt_time(use_start),
        'msKds-DomainID': dc_account_dn(directory),
    })
    directory.add('CN=%s,%s' % (key_id, root_keys_dn(directory)), 'msKds-ProvRootKey', attributes)
    return key_id
