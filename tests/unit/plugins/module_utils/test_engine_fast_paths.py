"""The fast paths of a task over thousands of gMSAs give the answers of the plain code they replace.

- ``engine.AccountIndex`` (one pass over the search's entries) against the linear scan ``find_account`` was
  before (one scan per account), written out here as the reference;
- the decoded-descriptor cache of ``SecurityDescriptorCodec`` against decoding every value anew.
"""

from __future__ import annotations

import random

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import engine
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.dn import normalize_dn, parent_dn
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.entry import Entry
from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import (
    GroupMSAMembership,
    SecurityDescriptorError,
)

DOM = 'S-1-5-21-1-2-3'


def scan_find_account(entries, name, sam, path=None):
    """find_account as it was: a scan of every entry per account (the reference)."""
    for entry in entries:
        if (entry.get('sAMAccountName') or '').lower() == sam.lower():
            return entry
    if path:
        for entry in entries:
            if (entry.get('cn') or '').lower() == name.lower() and normalize_dn(parent_dn(entry.dn)) == normalize_dn(path):
                return entry
    return None


PARENTS = ['CN=Managed Service Accounts,DC=contoso,DC=test', 'cn=managed service accounts, dc=Contoso,dc=test',
           'OU=gMSA,DC=contoso,DC=test', 'CN=Users,DC=contoso,DC=test']
NAMES = ['web', 'Web', 'app1', 'APP1', 'db', 'x,y', 'long-name-1']


def random_entries(rng, count):
    """Entries with colliding names, sAMAccountNames differing in case, entries without cn or sAMAccountName and
    the same cn under several parents: everything the two look-ups must agree on."""
    entries = []
    for _index in range(count):
        cn = rng.choice(NAMES)
        raw = {}
        if rng.random() < 0.9:
            raw['cn'] = [cn.encode()]
        if rng.random() < 0.85:
            sam = rng.choice([cn, rng.choice(NAMES), cn.upper()]) + rng.choice(['$', '$', ''])
            raw['sAMAccountName'] = [sam.encode()]
        rdn = cn.replace(',', '\\,')
        entries.append(Entry('CN=%s,%s' % (rdn, rng.choice(PARENTS)), raw))
    return entries


@pytest.mark.parametrize('seed', range(40))
def test_account_index_answers_as_the_scan(seed):
    rng = random.Random(seed)
    entries = random_entries(rng, rng.randint(0, 30))
    index = engine.AccountIndex(entries)
    for _round in range(60):
        name = rng.choice(NAMES + ['absent'])
        sam = rng.choice([name + '$', name.upper() + '$', rng.choice(NAMES) + '$', name, 'absent$'])
        path = rng.choice(PARENTS + [None, '', 'OU=Elsewhere,DC=contoso,DC=test'])
        expected = scan_find_account(entries, name, sam, path)
        assert index.find(name, sam, path) is expected, (name, sam, path)
        assert engine.find_account(entries, name, sam, path) is expected, (name, sam, path)
        assert index.named(name) == [e for e in entries if (e.get('cn') or '').lower() == name.lower()]


def test_account_index_prefers_the_first_entry_in_search_order():
    first = Entry('CN=web,CN=Users,DC=contoso,DC=test', {'cn': [b'web'], 'sAMAccountName': [b'WEB$']})
    second = Entry('CN=web2,CN=Users,DC=contoso,DC=test', {'cn': [b'web2'], 'sAMAccountName': [b'web$']})
    third = Entry('CN=web,CN=Users,DC=contoso,DC=test', {'cn': [b'web']})
    index = engine.AccountIndex([first, second, third])
    assert index.find('web', 'web$') is first
    assert index.find('web', 'other$', 'CN=Users,DC=contoso,DC=test') is first  # by cn under path, first match
    assert index.find('web', 'other$') is None  # no path: only the sAMAccountName counts
    assert index.named('WEB') == [first, third]


def descriptor(*rids):
    return GroupMSAMembership.for_principals(['%s-%d' % (DOM, rid) for rid in rids]).to_bytes()


def test_descriptor_cache_decodes_as_a_fresh_decode():
    codec = engine.SecurityDescriptorCodec()
    values = [descriptor(1105), descriptor(1105, 1106), descriptor(1105), descriptor()]
    for raw in values + values:
        cached = codec.decode([raw])
        fresh = GroupMSAMembership.from_bytes(raw)
        assert cached == fresh
        assert cached.allowed_sids == fresh.allowed_sids
        assert cached.to_bytes() == raw
        assert codec.key(cached) == codec.key(fresh)
    assert codec.decode([]) is None
    assert codec.decode([descriptor(1105).decode('latin-1')]) == GroupMSAMembership.from_bytes(descriptor(1105))


def test_descriptor_cache_hands_out_independent_values():
    """An edit of one account's decoded descriptor must not reach another account's (or the cache)."""
    codec = engine.SecurityDescriptorCodec()
    raw = descriptor(1105)
    first = codec.decode([raw])
    first.aces.append(GroupMSAMembership.for_principals([DOM + '-1107']).aces[0])
    changed = codec.apply(first, add=[DOM + '-1106'])
    assert changed.allowed_sids == [DOM + '-1105', DOM + '-1107', DOM + '-1106']
    second = codec.decode([raw])
    assert second.allowed_sids == [DOM + '-1105']
    assert second.to_bytes() == raw


def test_descriptor_cache_never_keeps_a_bad_value_and_stays_bounded():
    codec = engine.SecurityDescriptorCodec()
    codec.cache_size = 3
    for _attempt in range(2):
        with pytest.raises(SecurityDescriptorError):
            codec.decode([b'\x01\x00'])
    for rid in range(1100, 1110):
        assert codec.decode([descriptor(rid)]).allowed_sids == ['%s-%d' % (DOM, rid)]
        assert len(codec._decoded) <= 3  # pylint: disable=protected-access
