"""winkube.gmsa.gmsa reads its accounts with one search per ``accounts_per_search`` accounts, by sAMAccountName and then
by cn for those not found so: the accounts found, the errors and the warnings are those of one search for all. The
directory here is an in-memory imitation that evaluates the OR filters engine.gmsa_filter writes (no server); the
module against the real Samba DC is in tests/integration/test_gmsa.py."""

from __future__ import annotations

import re

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import reconciler
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.entry import Entry
from ansible_collections.winkube.gmsa.plugins.modules import gmsa

BASE = 'DC=contoso,DC=test'
MSA = 'CN=Managed Service Accounts,' + BASE
GMSA_CLASSES = [b'top', b'person', b'organizationalPerson', b'user', b'computer', b'msDS-GroupManagedServiceAccount']


class FakeModule:
    """Imitation of AnsibleModule: the params and the warnings, all read() uses."""

    check_mode = True
    _diff = False

    def __init__(self, accounts):
        self.params = dict({key: None for key in gmsa.ACCOUNT_KEYS}, accounts=accounts, state='present')
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


class FilterDirectory:
    """Imitation of a Directory: returns the objects an (|(sAMAccountName=...)(cn=...)) filter matches (no escapes
    in these names), in a fixed order, and records each search's clause count."""

    base_dn = BASE

    def __init__(self, objects):
        self.objects = objects
        self.clauses = []

    def search(self, base, ldap_filter, attributes):
        wanted = {(attr.lower(), value.lower()) for attr, value in re.findall(r'\((sAMAccountName|cn)=([^()]*)\)', ldap_filter)}
        self.clauses.append(len(wanted))
        return [Entry(e.dn, e.raw) for e in self.objects
                if ('samaccountname', (e.get('sAMAccountName') or '').lower()) in wanted
                or ('cn', (e.get('cn') or '').lower()) in wanted]


def entry(cn, sam, parent=MSA, classes=None):
    return Entry('CN=%s,%s' % (cn, parent), {'cn': [cn.encode()], 'sAMAccountName': [sam.encode()],
                                             'objectClass': classes or GMSA_CLASSES})


OBJECTS = [
    entry('app0', 'app0$'),
    entry('app1', 'APP1$'),
    entry('app2', 'other2$'),                     # found by cn under the path (its sAMAccountName differs)
    entry('app3', 'app5$'),                       # cn of one account, sAMAccountName of another: both searches match it
    entry('app4', 'app4$', parent='OU=Elsewhere,' + BASE),  # found by sAMAccountName outside the path: a warning
    entry('app6', 'app6$', classes=[b'top', b'user']),      # not a gMSA: an error
]


def read(per_search, count=9):
    accounts = [{'name': 'app%d' % i} for i in range(count)]
    task = gmsa.GmsaTask(FakeModule(accounts))
    task.accounts_per_search = per_search
    task.validate()
    assert not task.errors
    directory = FilterDirectory(OBJECTS)
    task.directory = reconciler.CountingDirectory(directory)
    task.read()
    found = [(t['name'], t['entry'].dn if t['entry'] is not None else None, t['dn']) for t in task.targets]
    return found, task.errors, task.module.warnings, task.directory.searches, directory.clauses


def test_chunked_read_finds_what_one_search_finds():
    one = read(per_search=500)
    # by sAMAccountName for all nine, then by cn only for the four not found so (app2, app3, app7, app8)
    assert one[3] == 2 and one[4] == [9, 4]
    for per_search in (1, 2, 4, 8):
        chunked = read(per_search)
        assert chunked[:3] == one[:3], per_search
        assert chunked[3] == -(-9 // per_search) + -(-4 // per_search)  # searches: one per per_search accounts
        assert max(chunked[4]) <= per_search


def test_a_reconverge_searches_no_cn():
    found, _errors, _warnings, searches, clauses = read(per_search=500, count=2)
    assert [dn for _name, dn, _new in found] == ['CN=app0,' + MSA, 'CN=app1,' + MSA]
    assert (searches, clauses) == (1, [2])


def test_the_read_itself():
    found, errors, warnings, _searches, _clauses = read(per_search=2)
    by_name = {name: dn for name, dn, _new in found}
    assert by_name['app2'] == 'CN=app2,' + MSA
    assert by_name['app5'] == 'CN=app3,' + MSA  # by sAMAccountName
    assert by_name['app4'] == 'CN=app4,OU=Elsewhere,' + BASE
    assert by_name['app6'] is None and by_name['app7'] is None
    assert [option for option, _message in errors] == ['name'] and 'app6' in errors[0][1]
    assert warnings == []  # the path is the default one: an account elsewhere is not warned about
