# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one loop every AD module runs: validate, connect, read, plan, check, write, report.

A module declares its object types (``ObjectType``: the rows of engine.py, the object classes of a new
object, the attributes it reads, how to tell that an entry is of that type) and a ``Reconciler`` subclass
with a few hooks:

- ``validate()``: checks that need no directory; every problem goes to ``error(option, message)``.
- ``read()``: the searches that find the objects; builds ``self.targets``, one ``target(...)`` per object.
- ``plan()``: principal lookup and ``plan_target``; ``check()``: checks that need the plan (unique SPNs).
- ``write()`` (not called in check mode): ``write_target`` creates, updates or deletes one object.
- ``result()``, ``diff()``: what the module returns; ``finish()``: after the directory is closed.

The reconciler does the rest once: errors collected and reported together before anything is written
(``failed_options``, "nothing was changed"), counted LDAP operations (``ldap_operations``), the create that
finds the object already there (adopted and converged: ``created_concurrently``), the guarded modify that
plans again when another writer changed a guarded value (``replanned``), the failure after some writes,
and ``--diff``. A target is a dict: name, state, dn, entry (None: not there), desired (option values),
plan, labels_plan (the same plan with principals by name, only with --diff), changed, replans.
"""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import backend, engine, ldap_client
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import principals as principal_lookup
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.dn import normalize_dn
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.entry import escape_filter_value, escape_rdn_value
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.errors import ADAlreadyExists, ADError


class ObjectType:
    """One kind of AD object: its rows, the objectClass of a new one, what is read, how to recognise it."""

    def __init__(self, label, rows, object_class, read_attributes, classes=(), not_classes=(), cmdlet=None):
        self.label = label
        self.rows = rows
        self.object_class = list(object_class)
        self.cmdlet = cmdlet  # the noun of its New-/Set-/Remove- cmdlets (backend winrm); None: *-ADObject
        self.read_attributes = list(read_attributes)
        self.classes = [c.lower() for c in classes]  # an entry of this type has all of these ...
        self.not_classes = [c.lower() for c in not_classes]  # ... and none of these

    def matches(self, entry):
        have = [c.lower() for c in entry.values('objectClass')]
        return all(c in have for c in self.classes) and not any(c in have for c in self.not_classes)


class CountingDirectory:
    """The bound Directory with every search, read and write counted (the result's ``ldap_operations``).

    Searches count when sent, writes when done; everything else (facts such as ``base_dn``) passes through."""

    def __init__(self, directory):
        self.directory = directory
        self.searches = 0
        self.writes = 0

    def __getattr__(self, name):
        return getattr(self.directory, name)

    def search(self, base, ldap_filter, attributes, **kwargs):
        self.searches += 1
        return self.directory.search(base, ldap_filter, attributes, **kwargs)

    def get(self, dn, attributes, **kwargs):
        self.searches += 1
        return self.directory.get(dn, attributes, **kwargs)

    def add(self, dn, object_class, attributes):
        self.directory.add(dn, object_class, attributes)
        self.writes += 1

    def modify(self, dn, changes):
        self.directory.modify(dn, changes)
        self.writes += 1

    def delete(self, dn):
        self.directory.delete(dn)
        self.writes += 1

    # the plan's operations, carried out by the LDAP writer or the cmdlet writer (the backend)
    def create(self, dn, object_type, attributes, values):
        self.directory.create(dn, object_type, attributes, values)
        self.writes += 1

    def update(self, dn, object_type, changes, password=None):
        self.directory.update(dn, object_type, changes, password=password)
        self.writes += 1

    def remove(self, dn, object_type):
        self.directory.remove(dn, object_type)
        self.writes += 1


class Reconciler:
    """Runs one task of an AD module; subclasses fill in the hooks listed in the module docstring."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.directory = None
        self.errors = []
        self.targets = []
        self.created_concurrently = []
        self.resolution = None
        self._lookups = 0  # searches made by principal lookup (it takes the directory uncounted)

    # -- errors ------------------------------------------------------------------------------------------
    @property
    def operations(self):
        if self.directory is None:
            return dict(searches=0, writes=0)
        return dict(searches=self.directory.searches + self._lookups, writes=self.directory.writes)

    def fail(self, msg, **kwargs):
        kwargs.setdefault('ldap_operations', self.operations)
        self.module.fail_json(msg=msg, **kwargs)

    def error(self, option, message):
        self.errors.append((option, message))

    def raise_errors(self):
        """Fail with every problem found so far, naming the options; nothing was written yet."""
        if self.errors:
            self.fail('; '.join(message for _option, message in self.errors) + ' (nothing was changed)',
                      failed_options=sorted(set(option for option, _message in self.errors)))

    # -- targets and planning ----------------------------------------------------------------------------
    @staticmethod
    def target(object_type, name, state='present', entry=None, dn=None, **extra):
        out = dict(type=object_type, name=name, state=state, entry=entry, dn=entry.dn if entry is not None else dn,
                   desired=None, plan=None, labels=None, labels_plan=None, changed=False, replans=0)
        out.update(extra)
        return out

    @staticmethod
    def new_dn(name, path):
        return 'CN=%s,%s' % (escape_rdn_value(name), path)

    def plan_target(self, target, entry=None, desired=None):
        """Plan ``target`` from ``desired`` (default: its own) against ``entry`` (default: the one read).

        Raises engine.PlanError; the labels plan (principals by name) is only made for --diff."""
        if desired is not None:
            target['desired'] = desired
        if entry is not None:
            target['entry'] = entry
        rows = target['type'].rows
        target['plan'] = engine.plan(rows, target['desired'], target['entry'])
        if self.module._diff:
            target['labels_plan'] = engine.plan(rows, target['desired'], target['entry'], labels=target['labels'])
        target['changed'] = target['plan'].changed
        return target['plan']

    def resolve(self, requests, failed_options=None, **kwargs):
        """Look the principal names up (principals.resolve: one search for all); fails naming the options."""
        try:
            self.resolution = principal_lookup.resolve(self.directory.directory, requests, **kwargs)
        except principal_lookup.PrincipalError as exc:
            self.fail('%s (nothing was changed)' % exc,
                      failed_options=failed_options or sorted(set(p[0] for p in exc.problems)))
        self._lookups += self.resolution.searches
        return self.resolution

    # -- writes --------------------------------------------------------------------------------------------
    def write_target(self, target):
        """Create, update or delete one object as its plan says (nothing when unchanged)."""
        if not target['changed']:
            return
        if target['state'] == 'absent':
            self.directory.remove(target['dn'], target['type'])
        elif target['entry'] is None:
            self.create(target)
        else:
            self.modify(target)

    def create_attributes(self, target):
        """The LDAP attributes of a new object (hook: add what the rows do not hold)."""
        return target['plan'].create

    def create_values(self, target):
        """The option values of a new object, as the plan has them (hook: add e.g. ``password``); the cmdlet writer
        takes its New-AD* parameters from these, the LDAP writer only the password."""
        return dict(target['plan'].after)

    adopt = True  # False: a create that finds the object there fails (e.g. it would need a password it cannot know)

    def create(self, target):
        """Add the object; True when this run created it. When it is already there, another run (or a retried add
        whose answer was lost) created it since the read: read it again and converge it like an existing object
        (``created_concurrently``, returns False); when what is there is not this object, the add's error stands."""
        try:
            self.directory.create(target['dn'], target['type'], self.create_attributes(target), self.create_values(target))
            return True
        except ADAlreadyExists:
            entry = self.read_again(target, creating=True) if self.adopt else None
            if entry is None:
                raise
        try:
            self.plan_target(target, entry)
        except engine.PlanError as exc:
            self.fail('the %s %s was created meanwhile by someone else and differs: %s'
                      % (target['type'].label, target['dn'], exc), failed_options=[exc.option])
        self.created_concurrently.append(target['name'])
        if target['plan'].changes:
            self.modify(target)
        return False

    def read_again(self, target, creating=False):
        """The object at the target's DN, read again; None when it is gone or is not this object (when creating:
        also when its sAMAccountName is not the one asked for)."""
        entry = self.directory.get(target['dn'], target['type'].read_attributes)
        if entry is None or not target['type'].matches(entry) or \
                normalize_dn(entry.dn) != normalize_dn(target['dn']):
            return None
        sam = (target['desired'] or {}).get('sam_account_name')
        if creating and sam and (entry.get('sAMAccountName') or '').lower() != sam.lower():
            return None
        return entry

    def modify(self, target):
        """One modify of an existing object. When another writer changed a guarded value (the allowed principals)
        since the read, read and plan again (engine.modify_guarded), so neither writer's change is lost."""
        def replan():
            entry = self.read_again(target)
            return None if entry is None else self.plan_target(target, entry)

        def write(changes):
            self.directory.update(target['dn'], target['type'], changes)

        written, replans = engine.modify_guarded(write, target['dn'], target['plan'], replan)
        target['replans'] += replans
        if written is None:  # the other writer already made every change this object needed
            target['changed'] = False

    @property
    def replanned(self):
        return [t['name'] for t in self.all_targets() if t['replans']]

    def all_targets(self):
        return self.targets

    # -- hooks ---------------------------------------------------------------------------------------------
    def validate(self):
        pass

    def read(self):
        pass

    def plan(self):
        pass

    def check(self):
        pass

    def write(self):
        for target in self.targets:
            self.write_target(target)

    def write_failed(self, exc):
        """A write failed after others may have been made: say so, and that a rerun completes it."""
        writes = self.directory.writes
        self.fail('%s%s (writes done before the failure: %d; a rerun completes the rest)'
                  % (exc, self.failure_hint(exc), writes), changed=writes > 0)

    def failure_hint(self, exc):
        return ''

    def finish(self):
        pass

    def result(self):
        return {}

    def diff(self):
        return {}

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self):
        if not ldap_client.HAS_LDAP3:
            self.module.fail_json(msg=missing_required_lib('ldap3'), exception=ldap_client.LDAP3_IMPORT_ERROR)
        self.validate()
        self.raise_errors()
        self.directory = CountingDirectory(backend.connect(self.module))
        try:
            self.read()
            self.raise_errors()
            self.plan()
            self.raise_errors()
            self.check()
            self.raise_errors()
            if not self.module.check_mode:
                self.write()
        except ADError as exc:
            self.write_failed(exc)
        finally:
            self.directory.close()
        self.finish()
        out = dict(changed=False)
        out.update(self.result())
        out.update(ldap_operations=self.operations, replanned=self.replanned)
        if self.module._diff:
            out['diff'] = self.diff()
        self.module.exit_json(**out)


# ------------------------------------------------------------------------------------------------------------
# A principal granted the right to retrieve gMSA passwords (winkube.gmsa.host_group, portable_identity)
# ------------------------------------------------------------------------------------------------------------

GMSA = ObjectType('gMSA', engine.GMSA_ROWS, engine.GMSA_OBJECT_CLASS, engine.GMSA_READ_ATTRIBUTES,
                  classes=['msDS-GroupManagedServiceAccount'], cmdlet='ADServiceAccount')
PASSWORD_READER = ObjectType('gMSA', engine.PASSWORD_READER_ROWS, engine.GMSA_OBJECT_CLASS,
                             engine.GMSA_READ_ATTRIBUTES, classes=['msDS-GroupManagedServiceAccount'],
                             cmdlet='ADServiceAccount')
NEW_SID = 'S-1-0-0'  # placeholder SID of a principal that check mode would create


class GrantingReconciler(Reconciler):
    """One principal (a group, a user) that is created, updated or deleted, and granted (``state=present``) or
    revoked (``state=absent``) the right to retrieve the passwords of the gMSAs in option ``gmsas``.

    Subclasses set ``object_type`` and ``result_key`` and fill ``validate`` (setting ``self.sam``) and
    ``desired()``. The principal and the gMSAs are read with one search before any write; a new principal's
    SID is read after its creation and the grants planned again with it; absent revokes before it deletes."""

    object_type = None
    result_key = None
    default_container = 'CN=Users'

    def validate(self):
        for value in self.params['gmsas'] or []:
            try:
                principal_lookup.classify(value)
            except ValueError as exc:
                self.error('gmsas', 'gmsas: %r %s' % (value, exc))

    def read(self):
        p = self.params
        base = self.directory.base_dn
        path = p['path'] or '%s,%s' % (self.default_container, base)
        gmsa_names = p['gmsas'] or []
        gmsa_sams = [n if n.endswith('$') else n + '$' for n in gmsa_names]
        ldap_filter = engine.gmsa_filter(escape_filter_value, names=gmsa_names, sams=[self.sam] + gmsa_sams)
        entries = self.directory.search(base, ldap_filter, self.object_type.read_attributes)
        found = None
        for entry in entries:
            if (entry.get('sAMAccountName') or '').lower() == self.sam.lower():
                if not self.object_type.matches(entry):
                    self.error('name', '%s (sAMAccountName %s) exists but is not a %s'
                               % (entry.dn, self.sam, self.object_type.label))
                found = entry
        self.principal = self.target(self.object_type, p['name'], p['state'], entry=found,
                                     dn=self.new_dn(p['name'], path))
        self.targets = [self.principal]
        self.gmsas = []
        index = engine.AccountIndex(e for e in entries if engine.is_gmsa(e))
        seen = set()
        for name, sam in zip(gmsa_names, gmsa_sams):
            entry = index.find(name, sam)
            if entry is None:
                matches = index.named(name)
                entry = matches[0] if len(matches) == 1 else None
            if entry is None:
                if p['state'] == 'present':  # nothing to revoke from a gMSA that is gone
                    self.error('gmsas', 'gmsas: %r matches no gMSA in %s' % (name, base))
            elif entry.dn not in seen:
                seen.add(entry.dn)
                self.gmsas.append(self.target(PASSWORD_READER, entry.get('cn'), entry=entry))
        self.sid = found.sid() if found is not None else None
        self.guid = found.guid() if found is not None else None

    def all_targets(self):
        return self.targets + self.gmsas

    @property
    def present(self):
        return self.params['state'] == 'present'

    def desired(self):
        """The principal's option values for its rows (state=present)."""
        raise NotImplementedError

    def plan(self):
        if self.present:
            try:
                self.plan_target(self.principal, desired=self.desired())
            except engine.PlanError as exc:
                self.fail('%s (nothing was changed)' % exc, failed_options=[exc.option])
            self.plan_grants(self.sid or NEW_SID)
        else:
            self.principal['changed'] = self.principal['entry'] is not None
            if self.sid:
                self.plan_grants(self.sid)

    def plan_grants(self, sid):
        action = 'add' if self.present else 'remove'
        for gmsa in self.gmsas:
            try:
                self.plan_target(gmsa, desired={'allowed_to_retrieve_password': {action: [sid]}})
            except engine.PlanError as exc:
                self.fail('gMSA %s: %s' % (gmsa['entry'].dn, exc), failed_options=[exc.option])

    def write(self):
        principal = self.principal
        if not self.present:
            for gmsa in self.gmsas:
                self.write_target(gmsa)
            self.write_target(principal)
            return
        if principal['entry'] is None:
            self.create(principal)
            self.created = self.directory.get(principal['dn'], ['objectSid', 'objectGUID'])
            self.sid, self.guid = self.created.sid(), self.created.guid()
            self.plan_grants(self.sid)
        else:
            self.update(principal)
        for gmsa in self.gmsas:
            self.write_target(gmsa)

    def update(self, principal):
        """Write the changes of an existing principal (hook: a password set as well)."""
        self.write_target(principal)

    def principal_result(self):
        p = self.params
        out = dict(name=p['name'], state=p['state'], distinguished_name=self.principal['dn'],
                   sid=self.sid if self.present and self.sid != NEW_SID else None)
        if self.present:
            out.update(self.principal['plan'].after)
        return out

    def result(self):
        changed = self.principal['changed'] or any(g['changed'] for g in self.gmsas)
        return {'changed': changed, self.result_key: self.principal_result(),
                'gmsas': [dict(name=g['name'], distinguished_name=g['entry'].dn, changed=g['changed'])
                          for g in self.gmsas]}

    def diff(self):
        key, label = self.result_key, self.params['name']
        before, after = {}, {}
        principal = self.principal
        if principal['entry'] is not None:
            current = engine.plan(self.object_type.rows, {}, principal['entry']).before
            before[key] = engine.diff_text(dict(current, state='present'))
        else:
            before[key] = {'state': 'absent'}
        if self.present:
            after[key] = engine.diff_text(dict((principal['labels_plan'] or principal['plan']).after, state='present'))
        else:
            after[key] = {'state': 'absent'}
        sid_labels = {NEW_SID: label}
        if self.sid:
            sid_labels[self.sid] = label
        for gmsa in self.gmsas:
            plan = gmsa['plan']
            if plan is None:
                continue
            b = plan.before.get('allowed_to_retrieve_password') or []
            a = plan.after.get('allowed_to_retrieve_password') or []
            before.setdefault('gmsas', {})[gmsa['name']] = sorted(sid_labels.get(s, s) for s in b)
            after.setdefault('gmsas', {})[gmsa['name']] = sorted(sid_labels.get(s, s) for s in a)
        return dict(before=before, after=after)
