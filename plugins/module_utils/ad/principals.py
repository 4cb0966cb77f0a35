# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolve principal names to directory objects with one LDAP search per call.

A name may be a sAMAccountName (``WIN1$``, or ``WIN1`` which also tries ``WIN1$``), ``DOMAIN\\name``,
a distinguished name, a SID string, an objectGUID (with or without braces) or a user principal name.
Every value enters the filter through ``escape_filter_value`` (binary SIDs and GUIDs byte by byte).
"""

from __future__ import annotations

import re
import uuid

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.dn import normalize_dn
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.entry import escape_filter_value
from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import (
    is_sid,
    normalize_sid,
    sid_to_bytes,
)

PRINCIPAL_ATTRIBUTES = ['distinguishedName', 'objectSid', 'objectGUID', 'sAMAccountName', 'userPrincipalName',
                        'objectClass']
_GUID_RE = re.compile(r'^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$')
_DN_RE = re.compile(r'^[A-Za-z][A-Za-z0-9-]*\s*=')


class PrincipalError(ValueError):
    """Names that match no object (or several); ``problems`` is a list of (option, value, reason)."""

    def __init__(self, problems):
        self.problems = problems
        text = '; '.join('%s: %r %s' % (option, value, reason) for option, value, reason in problems)
        super(PrincipalError, self).__init__(text)
        self.message = text

    def __str__(self):
        return self.message

    @property
    def option(self):
        return self.problems[0][0] if self.problems else None


class Principal:
    __slots__ = ('dn', 'sid', 'guid', 'sam', 'upn', 'object_class')

    def __init__(self, dn=None, sid=None, guid=None, sam=None, upn=None, object_class=None):
        self.dn = dn
        self.sid = sid
        self.guid = guid
        self.sam = sam
        self.upn = upn
        self.object_class = list(object_class or [])

    @classmethod
    def from_entry(cls, entry):
        return cls(dn=entry.dn, sid=entry.sid(), guid=entry.guid(), sam=entry.get('sAMAccountName'),
                   upn=entry.get('userPrincipalName'), object_class=entry.values('objectClass'))

    def label(self):
        return self.sam or self.dn or self.sid

    def to_dict(self):
        return {'distinguished_name': self.dn, 'sid': self.sid, 'object_guid': self.guid,
                'sam_account_name': self.sam}

    def __repr__(self):
        return 'Principal(%s, %s)' % (self.label(), self.sid)


def classify(value):
    """(kind, normalized value) for a principal name; kind is sid, guid, dn, upn or sam."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError('a principal name must be a non-empty string')
    if '\x00' in value:
        raise ValueError('contains a NUL character')
    value = value.strip()
    if is_sid(value):
        return 'sid', normalize_sid(value)
    if _GUID_RE.match(value):
        return 'guid', str(uuid.UUID(value.strip('{}')))
    if _DN_RE.match(value):
        return 'dn', value
    if '\\' in value:
        return 'sam', value.split('\\', 1)[1]
    if '@' in value:
        return 'upn', value
    return 'sam', value


def filter_clauses(kind, value):
    if kind == 'sid':
        return ['(objectSid=%s)' % escape_filter_value(sid_to_bytes(value))]
    if kind == 'guid':
        return ['(objectGUID=%s)' % escape_filter_value(uuid.UUID(value).bytes_le)]
    if kind == 'dn':
        return ['(distinguishedName=%s)' % escape_filter_value(value)]
    if kind == 'upn':
        return ['(userPrincipalName=%s)' % escape_filter_value(value)]
    clauses = ['(sAMAccountName=%s)' % escape_filter_value(value)]
    if not value.endswith('$'):
        clauses.append('(sAMAccountName=%s)' % escape_filter_value(value + '$'))
    return clauses


def build_filter(requests, sids=()):
    """One OR filter for every (option, name) request and every extra SID; None when empty."""
    clauses = []
    for _option, name in requests:
        kind, value = classify(name)
        for clause in filter_clauses(kind, value):
            if clause not in clauses:
                clauses.append(clause)
    for sid in sids:
        clause = filter_clauses('sid', normalize_sid(sid))[0]
        if clause not in clauses:
            clauses.append(clause)
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else '(|%s)' % ''.join(clauses)


def match(kind, value, principals):
    """The principals among ``principals`` that ``value`` names (exact sAMAccountName before NAME$)."""
    if kind == 'sid':
        return [p for p in principals if p.sid == value]
    if kind == 'guid':
        return [p for p in principals if p.guid == value]
    if kind == 'dn':
        key = normalize_dn(value)
        return [p for p in principals if p.dn and normalize_dn(p.dn) == key]
    if kind == 'upn':
        return [p for p in principals if p.upn and p.upn.lower() == value.lower()]
    exact = [p for p in principals if p.sam and p.sam.lower() == value.lower()]
    if exact or value.endswith('$'):
        return exact
    return [p for p in principals if p.sam and p.sam.lower() == value.lower() + '$']


def is_domain_sid(sid):
    return sid.startswith('S-1-5-21-')


class Resolution:
    """Result of ``resolve``: ``by_name[(option, name)]`` and ``by_sid[sid]`` -> Principal."""

    def __init__(self):
        self.by_name = {}
        self.by_sid = {}
        self.by_dn = {}
        self.searches = 0

    def sid(self, option, name):
        return self.by_name[(option, name)].sid

    def dn(self, option, name):
        return self.by_name[(option, name)].dn

    def sid_labels(self):
        return {sid: p.label() for sid, p in self.by_sid.items()}

    def dn_labels(self):
        return {normalize_dn(p.dn): p.label() for p in self.by_sid.values() if p.dn}

    def describe_sid(self, sid):
        principal = self.by_sid.get(sid)
        return principal.to_dict() if principal else {'distinguished_name': None, 'sid': sid, 'object_guid': None,
                                                      'sam_account_name': None}


def resolve(directory, requests, sids=(), dns=(), need='sid'):
    """Resolve ``requests`` [(option, name)] plus ``sids`` (to describe) in one search.

    Raises PrincipalError listing every name that matches nothing (or several objects). A SID outside
    the domain (well-known, e.g. S-1-5-11) that has no object is accepted as is when ``need='sid'``.
    ``dns`` are distinguished names to describe as well (e.g. current group members).
    """
    requests = list(dict.fromkeys(requests))  # a name many accounts ask for is looked up and reported once
    problems = []
    classified = []
    for option, name in requests:
        try:
            classified.append((option, name) + classify(name))
        except ValueError as exc:
            problems.append((option, name, str(exc)))
    if problems:
        raise PrincipalError(problems)
    result = Resolution()
    ldap_filter = build_filter([(o, n) for o, n, _k, _v in classified], sids)
    dn_clauses = ''.join('(distinguishedName=%s)' % escape_filter_value(dn) for dn in dns)
    if dn_clauses:
        ldap_filter = '(|%s%s)' % (ldap_filter or '', dn_clauses)
    found = []
    if ldap_filter:
        entries = directory.search(directory.base_dn, ldap_filter, PRINCIPAL_ATTRIBUTES)
        result.searches += 1
        found = [Principal.from_entry(e) for e in entries]
    for principal in found:
        if principal.sid:
            result.by_sid[principal.sid] = principal
        result.by_dn[normalize_dn(principal.dn)] = principal
    for option, name, kind, value in classified:
        hits = match(kind, value, found)
        if len(hits) == 1:
            result.by_name[(option, name)] = hits[0]
        elif len(hits) > 1:
            problems.append((option, name, 'matches several objects: %s' % ', '.join(p.dn for p in hits)))
        elif kind == 'sid' and need == 'sid' and not is_domain_sid(value):
            result.by_name[(option, name)] = Principal(sid=value)
        else:
            problems.append((option, name, 'matches no object in %s (looked up as %s)'
                             % (directory.base_dn, _describe_kind(kind))))
    if problems:
        raise PrincipalError(problems)
    return result


def _describe_kind(kind):
    return {
        'sid': 'objectSid',
        'guid': 'objectGUID',
        'dn': 'distinguishedName',
        'upn': 'userPrincipalName',
        'sam': 'sAMAccountName, with and without a trailing $',
    }[kind]
