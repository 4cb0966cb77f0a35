"""The attribute table and planner (pure)."""

from __future__ import annotations

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import dn, engine
from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import GroupMSAMembership

DOM = 'S-1-5-21-1-2-3'
A, B = DOM + '-1105', DOM + '-1106'


def existing(**overrides):
    attrs = {
        'sAMAccountName': [b'web$'],
        'dNSHostName': [b'web.contoso.test'],
        'servicePrincipalName': [b'HTTP/web.contoso.test'],
        'msDS-SupportedEncryptionTypes': [b'24'],
        'msDS-ManagedPasswordInterval': [b'30'],
        'userAccountControl': [b'4096'],
        'msDS-GroupMSAMembership': [GroupMSAMembership.for_principals([A]).to_bytes()],
    }
    attrs.update(overrides)
    return {k: v for k, v in attrs.items() if v is not None}


def test_create_plan_has_defaults():
    plan = engine.plan(engine.GMSA_ROWS, {'sam_account_name': 'web$', 'dns_host_name': 'web.contoso.test'})
    assert plan.changed
    assert plan.create['msDS-SupportedEncryptionTypes'] == ['24']
    assert plan.create['msDS-ManagedPasswordInterval'] == ['30']
    assert plan.create['userAccountControl'] == ['4096']
    assert 'msDS-GroupMSAMembership' not in plan.create
    assert plan.after['kerberos_encryption_types'] == ['aes128', 'aes256']
    assert all(v is None for v in plan.before.values())


def test_create_disabled_with_principals():
    plan = engine.plan(engine.GMSA_ROWS, {'sam_account_name': 'web$', 'enabled': False,
                                          'allowed_to_retrieve_password': {'set': [A, B]}})
    assert plan.create['userAccountControl'] == ['4098']
    sd = GroupMSAMembership.from_bytes(plan.create['msDS-GroupMSAMembership'][0])
    assert sd.allowed_sids == [A, B]


def test_no_change_when_equal():
    plan = engine.plan(engine.GMSA_ROWS, {
        'sam_account_name': 'WEB$', 'dns_host_name': 'WEB.contoso.test',
        'service_principal_names': {'add': ['http/web.contoso.test']},
        'allowed_to_retrieve_password': {'add': [A]},
        'kerberos_encryption_types': {'set': ['aes256', 'aes128']},
        'managed_password_interval_days': 30, 'enabled': True}, existing())
    assert not plan.changed, plan.changes
    assert plan.before == plan.after


def test_list_add_remove_set_changes():
    plan = engine.plan(engine.GMSA_ROWS, {'service_principal_names': {'add': ['HTTP/b'], 'remove': ['http/WEB.contoso.test']}},
                       existing())
    assert plan.changes == {'servicePrincipalName': [('delete', ['HTTP/web.contoso.test']), ('add', ['HTTP/b'])]}
    plan = engine.plan(engine.GMSA_ROWS, {'service_principal_names': {'set': []}}, existing())
    assert plan.changes == {'servicePrincipalName': [('replace', [])]}
    assert plan.before['service_principal_names'] == ['HTTP/web.contoso.test']
    assert plan.after['service_principal_names'] == []


def test_security_descriptor_changes_and_labels():
    old = existing()['msDS-GroupMSAMembership']
    plan = engine.plan(engine.GMSA_ROWS, {'allowed_to_retrieve_password': {'add': [B]}}, existing(),
                       labels={A: 'WIN1$', B: 'Hosts'})
    # never a replace: delete exactly the value read, add the new one (a concurrent change makes it fail)
    (op1, deleted), (op2, added) = plan.changes['msDS-GroupMSAMembership']
    assert (op1, deleted) == ('delete', old) and op2 == 'add'
    assert GroupMSAMembership.from_bytes(added[0]).allowed_sids == [A, B]
    assert plan.seen == {'msDS-GroupMSAMembership': old}
    assert plan.before['allowed_to_retrieve_password'] == ['WIN1$']
    assert plan.after['allowed_to_retrieve_password'] == ['WIN1$', 'Hosts']
    plan = engine.plan(engine.GMSA_ROWS, {'allowed_to_retrieve_password': {'remove': [A]}}, existing())
    assert GroupMSAMembership.from_bytes(plan.changes['msDS-GroupMSAMembership'][1][1][0]).allowed_sids == []
    # no value yet: only an add (a value another writer added meanwhile makes the single-valued add fail)
    plan = engine.plan(engine.GMSA_ROWS, {'allowed_to_retrieve_password': {'add': [B]}},
                       existing(**{'msDS-GroupMSAMembership': None}))
    (op, added), = plan.changes['msDS-GroupMSAMembership']
    assert op == 'add' and plan.seen == {'msDS-GroupMSAMembership': []}


class RacingDirectory:
    """Test double of a Directory (an imitation, not a server): modify() fails like a DC when the value the
    changes delete is not the stored one; ``others`` are writes another run makes just before our modify."""

    def __init__(self, stored, others=()):
        self.stored = list(stored)
        self.others = list(others)
        self.modifies = 0

    def modify(self, dn_, changes):
        self.modifies += 1
        if self.others:
            self.stored = [self.others.pop(0)]
        ops = changes['msDS-GroupMSAMembership']
        for op, values in ops:
            if op == 'delete' and values != self.stored:
                raise engine.ADError('modify of %s failed: noSuchAttribute' % dn_, code=16)
            if op == 'add' and not any(o == 'delete' for o, _v in ops) and self.stored:
                raise engine.ADError('modify of %s failed: attributeOrValueExists' % dn_, code=20)
        self.stored = [v for op, values in ops if op == 'add' for v in values]

    def entry(self):
        return dict(existing(), **{'msDS-GroupMSAMembership': list(self.stored)})


def guarded_grant(directory, sid, attempts=engine.REPLAN_ATTEMPTS):
    desired = {'allowed_to_retrieve_password': {'add': [sid]}}
    start = engine.plan(engine.GMSA_ROWS, desired, directory.entry())
    return engine.modify_guarded(lambda changes: directory.modify('CN=web', changes), 'CN=web', start,
                                 lambda: engine.plan(engine.GMSA_ROWS, desired, directory.entry()),
                                 attempts=attempts, sleep=lambda _s: None)


def sids(raw):
    return GroupMSAMembership.from_bytes(raw).allowed_sids


def test_concurrent_grant_is_replanned_not_overwritten():
    C = DOM + '-1107'
    other = GroupMSAMembership.for_principals([A, C]).to_bytes()  # another run granted C after our read
    directory = RacingDirectory([GroupMSAMembership.for_principals([A]).to_bytes()], others=[other])
    written, replans = guarded_grant(directory, B)
    assert replans == 1 and directory.modifies == 2
    assert sids(directory.stored[0]) == [A, C, B]  # both grants kept
    # the other run already made our change: nothing left to write
    directory = RacingDirectory([GroupMSAMembership.for_principals([A]).to_bytes()],
                                others=[GroupMSAMembership.for_principals([A, B]).to_bytes()])
    assert guarded_grant(directory, B) == (None, 1)


def test_first_value_added_concurrently_is_replanned():
    directory = RacingDirectory([], others=[GroupMSAMembership.for_principals([A]).to_bytes()])
    _written, replans = guarded_grant(directory, B)
    assert replans == 1 and sids(directory.stored[0]) == [A, B]


def test_endless_concurrent_changes_fail_clearly_without_writing():
    values = [GroupMSAMembership.for_principals([DOM + '-%d' % (2000 + i)]).to_bytes() for i in range(20)]
    directory = RacingDirectory([values[0]], others=values[1:])
    with pytest.raises(engine.ConcurrentChangeError) as info:
        guarded_grant(directory, B, attempts=3)
    assert 'changed 3 times' in str(info.value) and 'msDS-GroupMSAMembership of CN=web' in str(info.value)
    assert 'rerun' in str(info.value)
    assert B not in sids(directory.stored[0])


def test_failure_with_unchanged_value_is_raised_as_it_is():
    class Refusing(RacingDirectory):
        def modify(self, dn_, changes):
            self.modifies += 1
            raise engine.ADError('modify of %s refused: insufficient access rights' % dn_, code=50)

    directory = Refusing([GroupMSAMembership.for_principals([A]).to_bytes()])
    with pytest.raises(engine.ADError) as info:
        guarded_grant(directory, B)
    assert info.value.code == 50 and directory.modifies == 1


def test_encryption_bits_keep_unknown_flags():
    plan = engine.plan(engine.GMSA_ROWS, {'kerberos_encryption_types': {'set': ['aes256']}},
                       existing(**{'msDS-SupportedEncryptionTypes': [str(0x20 | 0x18).encode()]}))
    assert plan.changes['msDS-SupportedEncryptionTypes'] == [('replace', [str(0x20 | 0x10)])]
    plan = engine.plan(engine.GMSA_ROWS, {'kerberos_encryption_types': {'add': ['rc4'], 'remove': ['aes128']}}, existing())
    assert plan.changes['msDS-SupportedEncryptionTypes'] == [('replace', ['20'])]
    assert plan.after['kerberos_encryption_types'] == ['rc4', 'aes256']


def test_enabled_flag_preserves_other_bits():
    plan = engine.plan(engine.GMSA_ROWS, {'enabled': False}, existing(userAccountControl=[b'69632']))  # 0x11000
    assert plan.changes == {'userAccountControl': [('replace', [str(0x11002)])]}
    assert plan.before['enabled'] is True and plan.after['enabled'] is False


def test_create_only_change_is_an_error_naming_the_option():
    with pytest.raises(engine.PlanError) as err:
        engine.plan(engine.GMSA_ROWS, {'managed_password_interval_days': 10}, existing())
    assert err.value.option == 'managed_password_interval_days'
    assert 'only be set when the object is created' in str(err.value)


def test_description_cleared_by_empty_string():
    plan = engine.plan(engine.GMSA_ROWS, {'description': ''}, existing(description=[b'old']))
    assert plan.changes == {'description': [('replace', [])]}
    assert not engine.plan(engine.GMSA_ROWS, {'description': ''}, existing()).changed


@pytest.mark.parametrize('name, sam, option, fragment', [
    ('abcdefghijklmno', None, 'name', '15 characters'),
    ('web[1]', None, 'name', 'not allowed'),
    ('ok', 'abcdefghijklmno$', 'sam_account_name', '15 characters'),
    ('ok', 'a b*$', 'sam_account_name', 'not allowed'),
    ('nul\x00', None, 'name', 'control characters'),
    (' lead', None, 'name', 'spaces'),
])
def test_name_rules(name, sam, option, fragment):
    errors = engine.check_gmsa_name(name, sam)
    assert errors and errors[0][0] == option and fragment in errors[0][1]


def test_long_name_suggests_sam_account_name():
    (option, message), = engine.check_gmsa_name('VeryLongServiceName')
    assert option == 'name' and 'sam_account_name' in message and "'VeryLongServic$'" in message
    assert engine.check_gmsa_name('VeryLongServiceName', 'VLS') == []
    assert engine.sam_for('VeryLongServiceName', 'VLS') == 'VLS$'
    assert engine.check_gmsa_name('abcdefghijklmn') == []  # 14 + $ = 15


def test_validate_rows():
    desired = {'service_principal_names': {'add': ['nohost', 'HTTP/ok']},
               'description': 'a\x00b', 'managed_password_interval_days': 0}
    errors = engine.validate(engine.GMSA_ROWS, desired)
    assert sorted(o for o, _m in errors) == ['description', 'managed_password_interval_days', 'service_principal_names']


def test_list_value_shapes():
    assert engine.list_value(['a'], 'x') == {'add': None, 'remove': None, 'set': ['a']}
    assert engine.list_value({'add': None, 'remove': None, 'set': None}, 'x') is None
    with pytest.raises(engine.PlanError):
        engine.list_value({'replace': []}, 'x')


def test_principal_helpers():
    desired = {'allowed_to_retrieve_password': {'add': ['WIN1$'], 'set': None, 'remove': ['Old']}}
    assert engine.principal_names(engine.GMSA_ROWS, desired) == [
        ('allowed_to_retrieve_password', 'WIN1$'), ('allowed_to_retrieve_password', 'Old')]
    resolved = engine.resolve_principals(engine.GMSA_ROWS, desired, lambda o, n: {'WIN1$': A, 'Old': B}[n])
    assert resolved['allowed_to_retrieve_password'] == {'add': [A], 'remove': [B], 'set': None}


def test_host_group_rows():
    plan = engine.plan(engine.HOST_GROUP_ROWS, {'sam_account_name': 'Hosts', 'members': {'set': ['CN=W1,DC=x']}})
    assert plan.create == {'sAMAccountName': ['Hosts'], 'groupType': [str(-2147483644)], 'member': ['CN=W1,DC=x']}
    current = {'sAMAccountName': [b'Hosts'], 'groupType': [b'-2147483644'], 'member': [b'CN=W1,DC=X', b'CN=W2,DC=x']}
    plan = engine.plan(engine.HOST_GROUP_ROWS, {'members': {'add': ['cn=w1, dc=x']}}, current)
    assert not plan.changed
    plan = engine.plan(engine.HOST_GROUP_ROWS, {'members': {'set': ['CN=W1,DC=x']}}, current)
    assert plan.changes == {'member': [('delete', ['CN=W2,DC=x'])]}
    with pytest.raises(engine.PlanError):
        engine.plan(engine.HOST_GROUP_ROWS, {'scope': 'global'}, current)
    assert engine.group_scope(-2147483646) == 'global'


def test_dn_helpers():
    assert dn.parent_dn(r'CN=a\,b,OU=x,DC=y') == 'OU=x,DC=y'
    assert dn.normalize_dn('CN=A , DC=B') == 'cn=a,dc=b'
    assert engine.gmsa_filter(lambda v: v.replace('*', r'\2a'), names=['a*'], sams=['a$']) == \
        r'(|(sAMAccountName=a$)(cn=a\2a))'
    assert engine.gmsa_filter(str) is None
