"""reconciler.py: the AD loop's own decisions (counting, adopting a concurrent create, re-planning a guarded
modify, the failure after writes). The directory here is an in-memory imitation of a Directory (no server);
the modules' behaviour against the real Samba DC is in tests/integration/test_gmsa.py, test_host_group.py,
test_portable_identity.py, test_races.py and test_faults.py."""

from __future__ import annotations

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import engine, reconciler
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.ldap_client import ADAlreadyExists, ADError, Entry

BASE = 'DC=contoso,DC=test'
GROUP_READS = ['cn', 'objectClass', 'sAMAccountName', 'groupType', 'description', 'member']
GROUP = reconciler.ObjectType('group', engine.HOST_GROUP_ROWS, ['top', 'group'], GROUP_READS, classes=['group'])


class MemoryDirectory:
    """Imitation of a Directory: a dict of DN -> attributes; ``raise_on_add`` makes the next add fail like a DC
    answering entryAlreadyExists after ``objects[dn]`` was created by "another run"."""

    base_dn = BASE

    def __init__(self):
        self.objects = {}
        self.raise_on_add = None
        self.calls = []

    def get(self, dn, attributes):
        self.calls.append(('get', dn))
        raw = self.objects.get(dn)
        return Entry(dn, raw) if raw is not None else None

    def search(self, base, ldap_filter, attributes):
        self.calls.append(('search', base))
        return [Entry(dn, raw) for dn, raw in self.objects.items()]

    def add(self, dn, object_class, attributes):
        self.calls.append(('add', dn))
        if self.raise_on_add is not None:
            self.objects[dn] = self.raise_on_add
            self.raise_on_add = None
            raise ADAlreadyExists('cannot add %s: entryAlreadyExists' % dn, code=68, dn=dn)
        self.objects[dn] = dict(attributes, objectClass=[c.encode() for c in object_class])

    def modify(self, dn, changes):
        self.calls.append(('modify', dn))
        for name, ops in changes.items():
            for op, values in ops:
                assert op == 'replace', op
                self.objects[dn][name] = [v.encode() if isinstance(v, str) else v for v in values]

    def delete(self, dn):
        self.calls.append(('delete', dn))
        del self.objects[dn]

    # the plan's operations, carried out as the LDAP writer does (ldap_client.Directory)
    def create(self, dn, object_type, attributes, values):
        self.add(dn, object_type.object_class, attributes)

    def update(self, dn, object_type, changes, password=None):
        self.modify(dn, changes)

    def remove(self, dn, object_type):
        self.delete(dn)


class Module:
    """Imitation of AnsibleModule: records exit_json/fail_json instead of exiting the process."""

    check_mode = False
    _diff = False

    def __init__(self, params=None):
        self.params = params or {}
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)

    def fail_json(self, **kwargs):
        raise Failed(kwargs)

    def exit_json(self, **kwargs):
        raise Exited(kwargs)


class Failed(Exception):
    pass


class Exited(Exception):
    pass


def group_target(task, desired):
    target = task.target(GROUP, 'Hosts', dn='CN=Hosts,CN=Users,' + BASE)
    task.plan_target(target, desired=desired)
    return target


def new_task(directory):
    task = reconciler.Reconciler(Module())
    task.directory = reconciler.CountingDirectory(directory)
    return task


def test_counting_directory_counts_searches_sent_and_writes_done():
    directory = MemoryDirectory()
    counted = reconciler.CountingDirectory(directory)
    counted.search(BASE, '(cn=x)', ['cn'])
    counted.get('CN=x,' + BASE, ['cn'])
    counted.add('CN=x,' + BASE, ['top', 'group'], {'sAMAccountName': [b'x']})
    directory.raise_on_add = {'objectClass': [b'group']}
    with pytest.raises(ADAlreadyExists):
        counted.add('CN=y,' + BASE, ['top', 'group'], {})
    assert (counted.searches, counted.writes) == (2, 1)  # the refused add is not a write
    assert counted.base_dn == BASE  # everything else passes through


def test_create_that_finds_the_same_object_adopts_and_converges_it():
    directory = MemoryDirectory()
    directory.raise_on_add = {'objectClass': [b'top', b'group'], 'sAMAccountName': [b'Hosts'],
                              'groupType': [b'-2147483644'], 'description': [b'made by the other run']}
    task = new_task(directory)
    target = group_target(task, {'sam_account_name': 'Hosts', 'description': 'ours'})
    assert task.create(target) is False
    assert task.created_concurrently == ['Hosts']
    assert directory.objects[target['dn']]['description'] == [b'ours']
    assert [c[0] for c in directory.calls] == ['add', 'get', 'modify']
    assert task.operations == {'searches': 1, 'writes': 1}


@pytest.mark.parametrize('there', [
    {'objectClass': [b'top', b'group'], 'sAMAccountName': [b'Other']},  # another group at our DN
    {'objectClass': [b'top', b'person', b'user'], 'sAMAccountName': [b'Hosts']},  # not a group
])
def test_create_that_finds_another_object_keeps_the_error(there):
    directory = MemoryDirectory()
    directory.raise_on_add = there
    task = new_task(directory)
    target = group_target(task, {'sam_account_name': 'Hosts'})
    with pytest.raises(ADAlreadyExists):
        task.create(target)
    assert task.created_concurrently == [] and task.operations['writes'] == 0


def test_create_without_adoption_keeps_the_error():
    directory = MemoryDirectory()
    directory.raise_on_add = {'objectClass': [b'top', b'group'], 'sAMAccountName': [b'Hosts']}
    task = new_task(directory)
    task.adopt = False
    with pytest.raises(ADAlreadyExists):
        task.create(group_target(task, {'sam_account_name': 'Hosts'}))
    assert [c[0] for c in directory.calls] == ['add']


def test_errors_are_reported_together_before_anything_is_written():
    task = reconciler.Reconciler(Module())
    task.error('name', 'name is bad')
    task.error('path', 'path is bad')
    with pytest.raises(Failed) as info:
        task.raise_errors()
    failed = info.value.args[0]
    assert failed['msg'] == 'name is bad; path is bad (nothing was changed)'
    assert failed['failed_options'] == ['name', 'path']
    assert failed['ldap_operations'] == {'searches': 0, 'writes': 0}


def test_a_failed_write_after_others_reports_changed_and_the_count():
    directory = MemoryDirectory()
    task = new_task(directory)
    task.directory.add('CN=a,' + BASE, ['top', 'group'], {})
    with pytest.raises(Failed) as info:
        task.write_failed(ADError('modify of CN=b refused'))
    failed = info.value.args[0]
    assert failed['changed'] is True
    assert 'writes done before the failure: 1; a rerun completes the rest' in failed['msg']


def test_target_replanned_when_a_guarded_value_changed_under_it():
    """modify() goes through engine.modify_guarded with read_again as the re-read; the names of re-planned targets
    are the result's ``replanned``."""
    from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import GroupMSAMembership

    dom = 'S-1-5-21-1-2-3'
    gmsa_dn = 'CN=web,CN=Managed Service Accounts,' + BASE

    class Racing(MemoryDirectory):
        raced = False

        def modify(self, dn, changes):
            self.calls.append(('modify', dn))
            if not self.raced:  # another run grants -1107 just before our first modify
                self.raced = True
                self.objects[dn]['msDS-GroupMSAMembership'] = [
                    GroupMSAMembership.for_principals([dom + '-1105', dom + '-1107']).to_bytes()]
                raise ADError('modify of %s failed: noSuchAttribute' % dn, code=16)
            ops = dict(changes['msDS-GroupMSAMembership'])
            self.objects[dn]['msDS-GroupMSAMembership'] = ops['add']

    directory = Racing()
    directory.objects[gmsa_dn] = {'objectClass': [b'top', b'msDS-GroupManagedServiceAccount'],
                                  'msDS-GroupMSAMembership': [GroupMSAMembership.for_principals([dom + '-1105']).to_bytes()]}
    task = new_task(directory)
    target = task.target(reconciler.PASSWORD_READER, 'web', entry=directory.get(gmsa_dn, []))
    task.targets.append(target)
    task.plan_target(target, desired={'allowed_to_retrieve_password': {'add': [dom + '-1106']}})
    task.modify(target)
    stored = GroupMSAMembership.from_bytes(directory.objects[gmsa_dn]['msDS-GroupMSAMembership'][0])
    assert stored.allowed_sids == [dom + '-1105', dom + '-1107', dom + '-1106']  # neither grant lost
    assert task.replanned == ['web'] and task.operations == {'searches': 1, 'writes': 1}


def test_writes_hand_the_backend_the_object_type_and_the_option_values():
    """The backend's writer gets the module's ObjectType and the plan's option values (the cmdlet writer builds
    New-ADGroup -GroupScope from them), not only LDAP attributes."""
    class Recording(MemoryDirectory):
        def create(self, dn, object_type, attributes, values):
            self.calls.append(('create', object_type, values))
            super(Recording, self).create(dn, object_type, attributes, values)

        def update(self, dn, object_type, changes, password=None):
            self.calls.append(('update', object_type, password))
            super(Recording, self).update(dn, object_type, changes)

        def remove(self, dn, object_type):
            self.calls.append(('remove', object_type))
            super(Recording, self).remove(dn, object_type)

    directory = Recording()
    task = new_task(directory)
    target = group_target(task, {'sam_account_name': 'Hosts', 'scope': 'global'})
    task.write_target(target)
    (_kind, object_type, values), = [c for c in directory.calls if c[0] == 'create']
    assert object_type is GROUP and (values['sam_account_name'], values['scope']) == ('Hosts', 'global')
    directory.objects[target['dn']] = {'objectClass': [b'top', b'group'], 'sAMAccountName': [b'Hosts']}
    target = task.target(GROUP, 'Hosts', entry=directory.get(target['dn'], []))
    task.plan_target(target, desired={'description': 'x'})
    task.write_target(target)
    target['state'] = 'absent'
    task.write_target(target)
    assert [c[:2] for c in directory.calls if c[0] in ('update', 'remove')] == [('update', GROUP), ('remove', GROUP)]
    assert task.operations['writes'] == 3
