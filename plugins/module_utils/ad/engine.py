# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative attribute table and planner for AD objects (pure: no I/O).

A module describes its object as a list of ``Row``: the module option, the LDAP attribute, a codec
(LDAP values <-> Python values), how the option is applied (``scalar``, ``list`` with add/remove/set
or ``flag`` bits of an integer attribute), whether values name principals (resolved to SIDs or DNs by
the caller before planning), whether it may only be set at creation, and a validator.

``plan(rows, desired, current)`` compares what the task asks with the object read from the directory
and returns a ``Plan``: the attributes to create the object with, or the LDAP changes to make
(``{attribute: [(op, values), ...]}`` as ``Directory.modify`` takes them), plus ``before``/``after``
per option for ``--diff`` and ``changed``. Check mode is simply: plan, report, do not write. The same
table can drive another backend (e.g. PowerShell AD cmdlets over WinRM), since the plan is data.
"""

from __future__ import annotations

import random
import time

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.dn import normalize_dn, parent_dn
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.errors import ADError
from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import (
    GroupMSAMembership,
    SecurityDescriptorError,
)

LIST_ACTIONS = ('add', 'remove', 'set')


class PlanError(ValueError):
    """The task asks for something that cannot be done; ``option`` names the module option at fault."""

    def __init__(self, message, option=None):
        super(PlanError, self).__init__(message)
        self.message = message
        self.option = option

    def __str__(self):
        return self.message


def _text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode('utf-8')
    return str(value)


# ------------------------------------------------------------------------------------------------
# Codecs: decode(list of LDAP values) -> native; encode(native) -> list of LDAP values
# ------------------------------------------------------------------------------------------------

class TextCodec:
    """Single-valued string. An empty string clears the attribute."""

    def __init__(self, case_insensitive=False):
        self.case_insensitive = case_insensitive

    def decode(self, values):
        return _text(values[0]) if values else None

    def encode(self, value):
        return [value] if value not in (None, '') else []

    def key(self, value):
        if value in (None, ''):
            return None
        return value.lower() if self.case_insensitive else value

    def display(self, value, labels=None):
        return value

    def empty(self):
        return None


class IntCodec(TextCodec):
    def decode(self, values):
        return int(_text(values[0])) if values else None

    def encode(self, value):
        return [str(int(value))] if value is not None else []

    def key(self, value):
        return None if value is None else int(value)


class ListCodec:
    """Multi-valued attribute as a list (order kept, duplicates by key dropped)."""

    multi_valued = True

    def __init__(self, case_insensitive=True, dn=False):
        self.case_insensitive = case_insensitive
        self.dn = dn

    def item_key(self, item):
        if self.dn:
            return normalize_dn(item)
        return item.lower() if self.case_insensitive else item

    def decode(self, values):
        return self.unique([_text(v) for v in values or []])

    def encode(self, value):
        return list(value or [])

    def unique(self, items):
        out, seen = [], set()
        for item in items:
            k = self.item_key(item)
            if k not in seen:
                seen.add(k)
                out.append(item)
        return out

    def key(self, value):
        return frozenset(self.item_key(i) for i in value or [])

    def apply(self, current, add=None, remove=None, set=None):  # pylint: disable=redefined-builtin
        items = list(current or [])
        if set is not None:
            wanted = {self.item_key(i) for i in set}
            items = [i for i in items if self.item_key(i) in wanted]
            have = {self.item_key(i) for i in items}
            items += [i for i in self.unique(set) if self.item_key(i) not in have]
        if add:
            have = {self.item_key(i) for i in items}
            for item in self.unique(add):
                if self.item_key(item) not in have:
                    items.append(item)
                    have.add(self.item_key(item))
        if remove:
            drop = {self.item_key(i) for i in remove}
            items = [i for i in items if self.item_key(i) not in drop]
        return items

    def display(self, value, labels=None):
        labels = labels or {}
        return [labels.get(self.item_key(i), i) for i in value or []]

    def empty(self):
        return []


class BitListCodec:
    """A list of names stored as bits of one integer (e.g. msDS-SupportedEncryptionTypes)."""

    multi_valued = False

    def __init__(self, bits):
        self.bits = dict(bits)  # name -> bit value (may be several bits)

    def decode(self, values):
        return int(_text(values[0])) if values else None

    def encode(self, value):
        return [str(int(value))] if value is not None else []

    def names(self, value):
        return [name for name, bit in self.bits.items() if value and value & bit == bit]

    def key(self, value):
        return None if value is None else int(value)

    def apply(self, current, add=None, remove=None, set=None):  # pylint: disable=redefined-builtin
        value = current or 0
        if set is not None:
            known = 0
            for bit in self.bits.values():
                known |= bit
            value &= ~known  # unknown bits (e.g. FAST/compound flags) are kept
            for name in set:
                value |= self.bits[name]
        for name in add or []:
            value |= self.bits[name]
        for name in remove or []:
            value &= ~self.bits[name]
        return value

    def display(self, value, labels=None):
        return None if value is None else self.names(value)

    def empty(self):
        return None


class SecurityDescriptorCodec:
    """msDS-GroupMSAMembership: a security descriptor edited as a list of allowed SIDs.

    guarded: written as "delete the exact value read, add the new one" in one modify, never as a replace, so
    a change another writer made since the read makes the write fail instead of being overwritten (see
    ``modify_guarded``)."""

    multi_valued = False
    guarded = True
    cache_size = 4096

    def __init__(self):
        # Most gMSAs of a task hold the same descriptor (the same host group), and a task decodes each one more than
        # once: each distinct value is decoded once. Callers get a copy (its own ACE list; ACEs are never changed).
        self._decoded = {}

    def decode(self, values):
        if not values:
            return None
        raw = values[0]
        if isinstance(raw, str):
            raw = raw.encode('latin-1')
        raw = bytes(raw)
        decoded = self._decoded.get(raw)
        if decoded is None:
            decoded = GroupMSAMembership.from_bytes(raw)  # raises on bad bytes: nothing is cached then
            if len(self._decoded) >= self.cache_size:
                self._decoded.clear()
            self._decoded[raw] = decoded
        return decoded.copy()

    def encode(self, value):
        return [value.to_bytes()] if value is not None else []

    def key(self, value):
        return None if value is None else tuple(a.key() for a in value.aces)

    def apply(self, current, add=None, remove=None, set=None):  # pylint: disable=redefined-builtin
        sd = current if current is not None else GroupMSAMembership()
        return sd.apply(add=add, remove=remove, set=set)

    def display(self, value, labels=None):
        labels = labels or {}
        return [labels.get(sid, sid) for sid in value.allowed_sids] if value is not None else []

    def empty(self):
        return None


# ------------------------------------------------------------------------------------------------
# Rows
# ------------------------------------------------------------------------------------------------

class Row:
    """One module option mapped to one LDAP attribute.

    kind: ``scalar`` (value or None = leave alone), ``list`` (dict with add/remove/set, or None),
    ``flag`` (bool for ``flag_bit`` of an integer attribute; ``flag_inverted`` when the bit means False).
    principals: ``None``, ``'sid'`` or ``'dn'``: values are principal names the caller resolves to that
    form before planning (see ``principal_names``/``resolve_principals``).
    create_only: the attribute may only be set when the object is created.
    default: the value used at creation when the option is not given (list options: a list = set).
    validate: callable(value) raising ValueError with a message that does not need the option name.
    """

    def __init__(self, option, attribute, codec, kind='scalar', principals=None, create_only=False,
                 default=None, validate=None, flag_bit=None, flag_inverted=False, create_value=None):
        if kind not in ('scalar', 'list', 'flag'):
            raise ValueError('unknown row kind %r' % kind)
        self.option = option
        self.attribute = attribute
        self.codec = codec
        self.kind = kind
        self.principals = principals
        self.create_only = create_only
        self.default = default
        self.validator = validate
        self.flag_bit = flag_bit
        self.flag_inverted = flag_inverted
        self.create_value = create_value  # flag rows: the integer the attribute starts from on create

    def __repr__(self):
        return 'Row(%s -> %s)' % (self.option, self.attribute)


class Plan:
    """What to do to one object. ``create`` is the attribute dict for a new object (else None)."""

    def __init__(self):
        self.create = None
        self.changes = {}
        self.seen = {}  # guarded attribute -> the exact values the plan was made from
        self.before = {}
        self.after = {}
        self.changed_options = []

    @property
    def changed(self):
        return self.create is not None or bool(self.changes)

    def __repr__(self):
        return 'Plan(create=%r, changes=%r)' % (self.create, self.changes)


def _lower_keys(current):
    if current is None:
        return None
    if hasattr(current, 'raw'):  # ldap_client.Entry
        current = current.raw
    return {str(k).lower(): list(v or []) for k, v in current.items()}


def list_value(value, option):
    """Normalize a list option (dict with add/remove/set, or a plain list meaning set)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return {'add': None, 'remove': None, 'set': list(value)}
    if not isinstance(value, dict):
        raise PlanError('%s must be a dict with add, remove or set (got %r)' % (option, value), option)
    unknown = set(value) - set(LIST_ACTIONS) - {'lookup_failure_action'}
    if unknown:
        raise PlanError('%s has unknown keys %s; use add, remove or set' % (option, ', '.join(sorted(unknown))),
                        option)
    out = {k: (list(value[k]) if value.get(k) is not None else None) for k in LIST_ACTIONS}
    if all(out[k] is None for k in LIST_ACTIONS):
        return None
    return out


def validate(rows, desired):
    """Run every row's validator; return a list of (option, message)."""
    errors = []
    for row in rows:
        value = desired.get(row.option)
        if value is None or row.validator is None:
            continue
        values = [value]
        if row.kind == 'list':
            spec = list_value(value, row.option) or {}
            values = [v for k in LIST_ACTIONS for v in (spec.get(k) or [])]
            try:
                for v in values:
                    row.validator(v)
            except ValueError as exc:
                errors.append((row.option, str(exc)))
            continue
        try:
            row.validator(value)
        except ValueError as exc:
            errors.append((row.option, str(exc)))
    return errors


def principal_names(rows, desired):
    """Every principal name the desired values mention: [(option, name)], in order."""
    out = []
    for row in rows:
        if not row.principals or desired.get(row.option) is None:
            continue
        spec = list_value(desired[row.option], row.option) if row.kind == 'list' else None
        names = [v for k in LIST_ACTIONS for v in (spec.get(k) or [])] if spec else [desired[row.option]]
        out.extend((row.option, name) for name in names)
    return out


def resolve_principals(rows, desired, resolve):
    """Return desired with principal names replaced by ``resolve(option, name)`` (a SID or a DN)."""
    out = dict(desired)
    for row in rows:
        if not row.principals or desired.get(row.option) is None:
            continue
        if row.kind == 'list':
            spec = list_value(desired[row.option], row.option)
            out[row.option] = {k: ([resolve(row.option, n) for n in spec[k]] if spec[k] is not None else None)
                               for k in LIST_ACTIONS}
        else:
            out[row.option] = resolve(row.option, desired[row.option])
    return out


def _desired_native(row, value, current_native, creating):
    """The native value the option asks for, given the current native value (None = unmanaged)."""
    if value is None and creating and row.default is not None:
        value = row.default
    if value is None:
        return current_native, False
    if row.kind == 'list':
        spec = list_value(value, row.option)
        if spec is None:
            return current_native, False
        try:
            return row.codec.apply(current_native, add=spec['add'], remove=spec['remove'], set=spec['set']), True
        except SecurityDescriptorError as exc:
            raise PlanError('%s: %s' % (row.option, exc), row.option)
        except KeyError as exc:
            raise PlanError('%s: unknown value %s' % (row.option, exc), row.option)
    return value, True


def plan(rows, desired, current=None, labels=None):
    """Plan the changes that make ``current`` (None = does not exist) match ``desired``.

    desired: option -> value (principal options already resolved to SIDs/DNs). current: mapping of
    attribute -> list of LDAP values (an ``Entry`` works). labels: display names for principal values
    (SID or normalized DN -> name) used in before/after.
    """
    cur = _lower_keys(current)
    creating = cur is None
    result = Plan()
    flag_values = {}
    for row in rows:
        attr = row.attribute.lower()
        raw = [] if creating else cur.get(attr, [])
        if getattr(row.codec, 'guarded', False) and not creating:
            result.seen[row.attribute] = [bytes(v) if isinstance(v, (bytes, bytearray)) else v for v in raw]
        if row.kind == 'flag':
            if attr not in flag_values:
                start = row.create_value if creating else (int(_text(raw[0])) if raw else 0)
                flag_values[attr] = [start, start, row.attribute]
            now = flag_values[attr][1]
            is_set = bool(now & row.flag_bit)
            before = None if creating else (is_set != row.flag_inverted)
            value = desired.get(row.option)
            if value is None and creating:
                value = row.default
            if value is not None:
                want_bit = bool(value) != row.flag_inverted
                flag_values[attr][1] = (now | row.flag_bit) if want_bit else (now & ~row.flag_bit)
            after_now = flag_values[attr][1]
            result.before[row.option] = before
            result.after[row.option] = bool(after_now & row.flag_bit) != row.flag_inverted
            if before != result.after[row.option]:
                result.changed_options.append(row.option)
            continue
        try:
            current_native = row.codec.decode(raw) if raw else row.codec.empty()
        except (ValueError, SecurityDescriptorError) as exc:
            raise PlanError('cannot read %s (%s) of the existing object: %s' % (row.attribute, row.option, exc),
                            row.option)
        target, managed = _desired_native(row, desired.get(row.option), current_native, creating)
        result.before[row.option] = None if creating else row.codec.display(current_native, labels)
        result.after[row.option] = row.codec.display(target, labels)
        if not managed or row.codec.key(target) == row.codec.key(current_native):
            if not creating:
                result.after[row.option] = result.before[row.option]  # equal: show the stored spelling
            if creating and managed and row.codec.encode(target):
                result.create = result.create or {}
                result.create[row.attribute] = row.codec.encode(target)
            continue
        result.changed_options.append(row.option)
        if creating:
            encoded = row.codec.encode(target)
            if encoded:
                result.create = result.create or {}
                result.create[row.attribute] = encoded
            continue
        if row.create_only:
            raise PlanError(
                '%s can only be set when the object is created (%s is %s, the task asks for %s); '
                'leave it out or delete and re-create the object'
                % (row.option, row.attribute, row.codec.display(current_native), row.codec.display(target)),
                row.option)
        result.changes[row.attribute] = _changes(row, current_native, target, raw)
    for attr, (start, end, name) in flag_values.items():
        if creating:
            result.create = result.create or {}
            result.create[name] = [str(end)]
        elif start != end:
            result.changes[name] = [('replace', [str(end)])]
    if creating and result.create is None:
        result.create = {}
    return result


def _changes(row, current_native, target, raw):
    codec = row.codec
    if getattr(codec, 'guarded', False):
        # Delete exactly the value read and add the new one, in one modify (atomic on the server): if another
        # writer changed the attribute in between, the delete finds no such value (noSuchAttribute), or the add
        # meets the other writer's value of this single-valued attribute, and nothing is written.
        ops = [('delete', list(raw))] if raw else []
        new = codec.encode(target)
        return ops + [('add', new)] if new else ops
    if getattr(codec, 'multi_valued', False):
        have = {codec.item_key(i) for i in current_native or []}
        want = {codec.item_key(i) for i in target or []}
        ops = []
        removed = [i for i in current_native or [] if codec.item_key(i) not in want]
        added = [i for i in target or [] if codec.item_key(i) not in have]
        if not target:
            return [('replace', [])]
        if removed:
            ops.append(('delete', removed))
        if added:
            ops.append(('add', added))
        return ops
    return [('replace', codec.encode(target))]


def diff_text(value):
    """Stable representation for --diff output (lists sorted case-insensitively)."""
    if isinstance(value, dict):
        return {k: diff_text(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((diff_text(v) for v in value), key=lambda x: str(x).lower())
    return value


# ------------------------------------------------------------------------------------------------
# The gMSA table (shared by winkube.gmsa.gmsa, gmsa_info and host_group)
# ------------------------------------------------------------------------------------------------

GMSA_OBJECT_CLASS = ['top', 'person', 'organizationalPerson', 'user', 'computer', 'msDS-GroupManagedServiceAccount']
WORKSTATION_TRUST_ACCOUNT = 0x1000
ACCOUNTDISABLE = 0x2
SAM_MAX_LENGTH = 15  # including the trailing $
SAM_FORBIDDEN = '"/\\[]:;|=,+*?<>@'
ENCRYPTION_TYPES = {'des': 0x3, 'rc4': 0x4, 'aes128': 0x8, 'aes256': 0x10}
WEAK_ENCRYPTION_TYPES = ('des', 'rc4')
DEFAULT_ENCRYPTION_TYPES = ['aes128', 'aes256']
DEFAULT_PASSWORD_INTERVAL_DAYS = 30


def _has_control(value):
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def check_sam_account_name(value):
    """Raise ValueError naming the rule a gMSA sAMAccountName (with its trailing $) breaks."""
    if not value.endswith('$'):
        raise ValueError('%r must end with $' % value)
    base = value[:-1]
    if not base:
        raise ValueError('%r is empty before the trailing $' % value)
    if len(value) > SAM_MAX_LENGTH:
        raise ValueError('%r has %d characters; a gMSA sAMAccountName is at most %d characters including '
                         'the trailing $ (%d before it)' % (value, len(value), SAM_MAX_LENGTH, SAM_MAX_LENGTH - 1))
    bad = sorted(set(c for c in base if c in SAM_FORBIDDEN or c == '$' or ord(c) < 32 or ord(c) == 127))
    if bad:
        raise ValueError('%r contains characters not allowed in a sAMAccountName: %s (not allowed: %s, $ '
                         'before the end, control characters)' % (value, ' '.join(repr(c) for c in bad),
                                                                  ' '.join(SAM_FORBIDDEN)))
    if base.strip('. ') == '' or base != base.strip() or base.endswith('.'):
        raise ValueError('%r must not start or end with a space, end with a dot or consist only of dots and '
                         'spaces' % value)


def sam_for(name, sam_account_name=None):
    """The sAMAccountName a gMSA gets: sam_account_name (with $ appended) or <name>$."""
    value = sam_account_name if sam_account_name else name
    return value if value.endswith('$') else value + '$'


def check_gmsa_name(name, sam_account_name=None):
    """Validate name (the object's CN) and the derived/explicit sAMAccountName; return [(option, msg)]."""
    errors = []
    if not name or _has_control(name) or name != name.strip():
        errors.append(('name', 'name %r must be non-empty, without control characters (NUL, newline) and '
                       'without leading or trailing spaces' % (name,)))
        return errors
    if len(name) > 64:
        errors.append(('name', 'name %r is longer than 64 characters (the limit of cn)' % name))
    sam = sam_for(name, sam_account_name)
    try:
        check_sam_account_name(sam)
    except ValueError as exc:
        if sam_account_name:
            errors.append(('sam_account_name', 'sam_account_name: %s' % exc))
        else:
            short = ''.join(c for c in name if c not in SAM_FORBIDDEN and ord(c) >= 32)[:SAM_MAX_LENGTH - 1]
            errors.append(('name', 'name %r cannot be used as the sAMAccountName: %s. Keep name as it is and set '
                           'sam_account_name to a valid short name (for example %r)'
                           % (name, exc, (short.strip('. ') or 'gmsa1') + '$')))
    return errors


def check_spn(value):
    """service/host[:port][/service_name]: no blanks or control characters, a service class and a host."""
    if not isinstance(value, str) or _has_control(value) or ' ' in value:
        raise ValueError('SPN %r must not contain blanks or control characters' % (value,))
    service, sep, rest = value.partition('/')
    if not sep or not service or not rest or rest.startswith('/'):
        raise ValueError('SPN %r must look like service/host[:port][/name], e.g. HTTP/web.contoso.com' % value)


def check_text(value):
    if '\x00' in value:
        raise ValueError('%r contains a NUL character' % value)


def check_interval(value):
    if not 1 <= int(value) <= 0x7FFFFFFF:
        raise ValueError('%r must be a number of days between 1 and 2147483647' % value)


GMSA_ROWS = [
    Row('sam_account_name', 'sAMAccountName', TextCodec(case_insensitive=True), validate=check_sam_account_name),
    Row('dns_host_name', 'dNSHostName', TextCodec(case_insensitive=True), validate=check_text),
    Row('description', 'description', TextCodec(), validate=check_text),
    Row('service_principal_names', 'servicePrincipalName', ListCodec(case_insensitive=True), kind='list',
        validate=check_spn),
    Row('allowed_to_retrieve_password', 'msDS-GroupMSAMembership', SecurityDescriptorCodec(), kind='list',
        principals='sid'),
    Row('kerberos_encryption_types', 'msDS-SupportedEncryptionTypes', BitListCodec(ENCRYPTION_TYPES), kind='list',
        default={'set': DEFAULT_ENCRYPTION_TYPES}),
    Row('managed_password_interval_days', 'msDS-ManagedPasswordInterval', IntCodec(), create_only=True,
        default=DEFAULT_PASSWORD_INTERVAL_DAYS, validate=check_interval),
    Row('enabled', 'userAccountControl', None, kind='flag', flag_bit=ACCOUNTDISABLE, flag_inverted=True,
        default=True, create_value=WORKSTATION_TRUST_ACCOUNT),
]

GMSA_READ_ATTRIBUTES = ['cn', 'distinguishedName', 'objectSid', 'objectGUID', 'objectClass'] + \
    [row.attribute for row in GMSA_ROWS]

GROUP_SCOPES = {'domainlocal': 0x4, 'global': 0x2, 'universal': 0x8}
GROUP_SECURITY = 0x80000000


def group_type(scope):
    """groupType of a security group of that scope, as the signed 32-bit integer AD stores."""
    value = GROUP_SCOPES[scope] | GROUP_SECURITY
    return value - (1 << 32) if value & 0x80000000 else value


def group_scope(value):
    value = int(value) & 0xFFFFFFFF
    for name, bit in GROUP_SCOPES.items():
        if value & bit:
            return name
    return None


class GroupScopeCodec(IntCodec):
    """groupType shown and compared as its scope name (security groups)."""

    def decode(self, values):
        return group_scope(_text(values[0])) if values else None

    def encode(self, value):
        return [str(group_type(value))] if value else []

    def key(self, value):
        return value


HOST_GROUP_ROWS = [
    Row('sam_account_name', 'sAMAccountName', TextCodec(case_insensitive=True)),
    Row('scope', 'groupType', GroupScopeCodec(), create_only=True, default='domainlocal'),
    Row('description', 'description', TextCodec(), validate=check_text),
    Row('members', 'member', ListCodec(dn=True), kind='list', principals='dn'),
]


# A standard user account (the portable identity of non-domain-joined nodes, winkube.gmsa.portable_identity).
NORMAL_ACCOUNT = 0x200
DONT_EXPIRE_PASSWORD = 0x10000
USER_OBJECT_CLASS = ['top', 'person', 'organizationalPerson', 'user']

USER_ROWS = [
    Row('sam_account_name', 'sAMAccountName', TextCodec(case_insensitive=True)),
    Row('user_principal_name', 'userPrincipalName', TextCodec(case_insensitive=True), validate=check_text),
    Row('description', 'description', TextCodec(), validate=check_text),
    Row('enabled', 'userAccountControl', None, kind='flag', flag_bit=ACCOUNTDISABLE, flag_inverted=True,
        default=True, create_value=NORMAL_ACCOUNT),
    Row('password_never_expires', 'userAccountControl', None, kind='flag', flag_bit=DONT_EXPIRE_PASSWORD,
        default=True, create_value=NORMAL_ACCOUNT),
]


# ------------------------------------------------------------------------------------------------
# Reading gMSAs (the only I/O here goes through a Directory passed in; one search per call)
# ------------------------------------------------------------------------------------------------

def gmsa_filter(escape, names=(), sams=()):
    """OR filter on cn and sAMAccountName (values escaped with ``escape``); None when nothing to find."""
    clauses = []
    seen = set()  # thousands of accounts: a list's `in` would make this quadratic
    for clause in ['(sAMAccountName=%s)' % escape(sam) for sam in sams] + ['(cn=%s)' % escape(name) for name in names]:
        if clause not in seen:
            seen.add(clause)
            clauses.append(clause)
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else '(|%s)' % ''.join(clauses)


def is_gmsa(entry):
    return any(c.lower() == 'msds-groupmanagedserviceaccount' for c in entry.values('objectClass'))


def find_account(entries, name, sam, path=None):
    """The entry a task's account refers to: same sAMAccountName, else cn=name directly under path (the first such
    entry in search order). For many accounts over the same entries use one ``AccountIndex``."""
    return AccountIndex(entries).find(name, sam, path)


class AccountIndex:
    """The entries of one search indexed once, so that finding each of N accounts among N entries is a look-up,
    not a scan (the scan made a no-op of 2,000 gMSAs quadratic). ``find`` answers as ``find_account`` is
    documented; ``named`` lists the entries whose cn is ``name``, in search order."""

    def __init__(self, entries):
        self.entries = list(entries)
        self.by_sam = {}
        for entry in self.entries:
            self.by_sam.setdefault((entry.get('sAMAccountName') or '').lower(), entry)
        self._by_cn = None  # cn -> entries, built on the first miss by sAMAccountName

    def named(self, name):
        if self._by_cn is None:
            self._by_cn = {}
            for entry in self.entries:
                self._by_cn.setdefault((entry.get('cn') or '').lower(), []).append(entry)
        return self._by_cn.get(name.lower(), [])

    def find(self, name, sam, path=None):
        entry = self.by_sam.get(sam.lower())
        if entry is not None or not path:
            return entry
        parent = normalize_dn(path)
        for entry in self.named(name):
            if normalize_dn(parent_dn(entry.dn)) == parent:
                return entry
        return None


def gmsa_facts(entry, rows=None):
    """Option-named facts of an existing gMSA entry (allowed principals as SIDs)."""
    current = plan(rows or GMSA_ROWS, {}, entry).before
    facts = {
        'name': entry.get('cn'),
        'distinguished_name': entry.dn,
        'sid': entry.sid(),
        'object_guid': entry.guid(),
    }
    facts.update(current)
    return facts


# ------------------------------------------------------------------------------------------------
# Granting one principal the right to retrieve gMSA passwords (reconciler.GrantingReconciler)
# ------------------------------------------------------------------------------------------------

PASSWORD_READER_ROWS = [row for row in GMSA_ROWS if row.option == 'allowed_to_retrieve_password']


# ------------------------------------------------------------------------------------------------
# Writing a plan whose guarded attributes another writer may change at the same time
# ------------------------------------------------------------------------------------------------

REPLAN_ATTEMPTS = 6


class ConcurrentChangeError(ADError):
    """A guarded attribute kept changing under this run; nothing of that object's plan was written."""


def modify_guarded(write, dn, current_plan, replan, attempts=REPLAN_ATTEMPTS, sleep=time.sleep):
    """Write ``current_plan.changes`` to ``dn`` with ``write(changes)`` (the backend's update of that object).
    When the write fails and a guarded attribute (msDS-GroupMSAMembership) is no longer what the plan was made
    from, another writer changed it in between: ``replan()`` reads the object again and returns a new Plan (None:
    the object is gone), which is written instead, at most ``attempts`` times.
    A failure with the value unchanged is a real error and is raised as it is.

    Returns (the plan written or None when nothing was left to write, number of re-plans)."""
    replans = 0
    while True:
        if not current_plan.changes:
            return None, replans
        try:
            write(current_plan.changes)
            return current_plan, replans
        except ADError as exc:
            if not current_plan.seen:
                raise
            fresh = replan()
            if fresh is None:
                raise
            if fresh.seen == current_plan.seen:
                raise  # nobody changed the value: the failure has another cause
            replans += 1
            if replans >= attempts:
                raise ConcurrentChangeError(
                    '%s of %s changed %d times while this run was writing it (another run grants or revokes at the '
                    'same time); this run wrote nothing to it, so no change was overwritten. A rerun completes it. '
                    '(last error: %s)' % (', '.join(sorted(fresh.seen)), dn, replans, exc), dn=dn)
            current_plan = fresh
            sleep(random.uniform(0.02, 0.2) * replans)  # the other writer goes first; spread out retries
