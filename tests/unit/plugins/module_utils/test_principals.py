"""Principal resolution: one search, escaped filter, clear errors (with a fake directory)."""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import principals
from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import sid_to_bytes

DOM = 'S-1-5-21-1-2-3'
GUID = '6a1e54f5-0000-4b7a-9c1d-2e3f40506070'


class FakeEntry:
    def __init__(self, dn, sam, sid, guid=None, upn=None):
        self.dn = dn
        self._attrs = {'sAMAccountName': sam, 'userPrincipalName': upn}
        self._sid = sid
        self._guid = guid

    def get(self, name, default=None):
        return self._attrs.get(name) or default

    def values(self, name):
        return ['top', 'computer'] if name == 'objectClass' else []

    def sid(self):
        return self._sid

    def guid(self):
        return self._guid


class FakeDirectory:
    base_dn = 'DC=contoso,DC=test'

    def __init__(self, entries):
        self.entries = entries
        self.filters = []

    def search(self, base, ldap_filter, attributes, scope='subtree'):
        self.filters.append(ldap_filter)
        return self.entries


ENTRIES = [
    FakeEntry('CN=WIN1,CN=Computers,DC=contoso,DC=test', 'WIN1$', DOM + '-1101', GUID),
    FakeEntry('CN=Hosts,CN=Users,DC=contoso,DC=test', 'Hosts', DOM + '-1102', upn=None),
    FakeEntry('CN=Bob,CN=Users,DC=contoso,DC=test', 'bob', DOM + '-1103', upn='bob@contoso.test'),
]


@pytest.mark.parametrize('value, kind', [
    ('S-1-5-32-544', 'sid'), (GUID, 'guid'), ('{%s}' % GUID.upper(), 'guid'), ('CN=x,DC=y', 'dn'),
    ('bob@contoso.test', 'upn'), ('CONTOSO\\WIN1$', 'sam'), ('WIN1', 'sam'),
])
def test_classify(value, kind):
    assert principals.classify(value)[0] == kind


def test_classify_rejects_nul_and_empty():
    for bad in ('', ' ', 'a\x00b', None):
        with pytest.raises(ValueError):
            principals.classify(bad)


def test_filter_escapes_everything():
    flt = principals.build_filter([('o', 'a*)(cn=*'), ('o', DOM + '-5'), ('o', GUID)])
    assert '*' not in flt.replace(r'\2a', '')
    assert r'(sAMAccountName=a\2a\29\28cn=\2a)' in flt
    assert '(objectSid=%s)' % ''.join('\\%02x' % b for b in sid_to_bytes(DOM + '-5')) in flt
    assert '(objectGUID=%s)' % ''.join('\\%02x' % b for b in uuid.UUID(GUID).bytes_le) in flt
    assert principals.build_filter([]) is None


def test_resolve_all_forms_with_one_search():
    directory = FakeDirectory(ENTRIES)
    requests = [('allowed', 'WIN1'), ('allowed', 'hosts'), ('allowed', 'bob@CONTOSO.test'), ('allowed', GUID),
                ('allowed', 'cn=win1, cn=computers,dc=contoso,dc=test'), ('allowed', DOM + '-1103'),
                ('allowed', 'S-1-5-11'), ('allowed', 'CONTOSO\\bob')]
    result = principals.resolve(directory, requests, sids=[DOM + '-1102'])
    assert len(directory.filters) == 1 and result.searches == 1
    assert result.sid('allowed', 'WIN1') == DOM + '-1101'
    assert result.sid('allowed', 'hosts') == DOM + '-1102'
    assert result.dn('allowed', 'bob@CONTOSO.test') == 'CN=Bob,CN=Users,DC=contoso,DC=test'
    assert result.sid('allowed', GUID) == DOM + '-1101'
    assert result.sid('allowed', 'cn=win1, cn=computers,dc=contoso,dc=test') == DOM + '-1101'
    assert result.sid('allowed', 'S-1-5-11') == 'S-1-5-11'  # well-known SID without an object
    assert result.sid('allowed', 'CONTOSO\\bob') == DOM + '-1103'
    assert result.describe_sid(DOM + '-1102')['sam_account_name'] == 'Hosts'
    assert result.describe_sid('S-1-5-99')['distinguished_name'] is None


def test_exact_sam_wins_over_dollar_fallback():
    entries = [FakeEntry('CN=web,CN=Users,DC=x', 'web', DOM + '-1'), FakeEntry('CN=web2,DC=x', 'web$', DOM + '-2')]
    result = principals.resolve(FakeDirectory(entries), [('o', 'web')])
    assert result.sid('o', 'web') == DOM + '-1'


def test_unknown_names_the_option_and_value():
    with pytest.raises(principals.PrincipalError) as err:
        principals.resolve(FakeDirectory(ENTRIES), [('allowed_to_retrieve_password', 'nosuch$'),
                                                    ('members', DOM + '-999')])
    text = str(err.value)
    assert "allowed_to_retrieve_password: 'nosuch$' matches no object" in text
    assert 'members' in text and DOM + '-999' in text
    assert err.value.option == 'allowed_to_retrieve_password'


def test_a_name_asked_by_many_accounts_is_looked_up_and_reported_once():
    # 2,000 gMSAs naming one missing host group once made a 300 KB message: the same problem 2,000 times
    requests = [('allowed_to_retrieve_password', 'NoSuchHosts')] * 3 + [('allowed_to_retrieve_password', 'Hosts')] * 2
    with pytest.raises(principals.PrincipalError) as err:
        principals.resolve(FakeDirectory(ENTRIES), requests)
    assert err.value.problems == [('allowed_to_retrieve_password', 'NoSuchHosts',
                                   'matches no object in DC=contoso,DC=test (looked up as sAMAccountName, with and '
                                   'without a trailing $)')]
    invalid = [('members', 'bad\x00name')] * 2
    with pytest.raises(principals.PrincipalError) as err:
        principals.resolve(FakeDirectory(ENTRIES), invalid)
    assert len(err.value.problems) == 1


def test_no_search_without_names():
    directory = FakeDirectory(ENTRIES)
    principals.resolve(directory, [])
    assert directory.filters == []
