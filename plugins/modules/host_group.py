#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_group
short_description: Manage the security group of container hosts allowed to retrieve gMSA passwords
version_added: 0.1.0
description:
  - Ensures a security group (domain local by default) whose members are the Windows nodes' computer accounts,
    and that this group may retrieve the managed passwords of the given gMSAs.
  - Granting a group rather than each host keeps the gMSAs' security descriptors short and lets hosts be added
    or removed in one place.
  - The group's SID is added to (or, with O(state=absent), removed from) each gMSA's C(msDS-GroupMSAMembership);
    every other principal already there is kept.
  - Reads the group and the gMSAs with one LDAP search and the members with one more, before any write.
options:
  name:
    description:
      - Name (C(cn)) of the group.
    type: str
    required: true
  sam_account_name:
    description:
      - The group's C(sAMAccountName). Defaults to O(name).
      - The group is found by this name.
    type: str
  path:
    description:
      - DN of the container or OU the group is created in. Defaults to C(CN=Users,<base_dn>).
    type: str
  scope:
    description:
      - Group scope of a new group; V(domainlocal) when not given. Domain local fits a group used only for
        access in its own domain.
      - Only used when the group is created; asking for another scope of an existing group fails the task.
    type: str
    choices: [domainlocal, global, universal]
  description:
    description:
      - The group's C(description). An empty string removes it.
    type: str
  members:
    description:
      - Computer accounts of the Windows nodes (C(WIN1$), C(WIN1), C(DOMAIN\\WIN1$), a DN, SID or objectGUID).
      - A name that matches no object fails the task before anything is written.
    type: list
    elements: str
  members_mode:
    description:
      - V(add) makes O(members) members and keeps other members.
      - V(set) makes O(members) the only members.
      - V(remove) removes O(members) and keeps the others.
    type: str
    choices: [add, remove, set]
    default: add
  gmsas:
    description:
      - gMSAs (C(cn) or C(sAMAccountName), with or without C($)) whose password the group's members may retrieve.
      - With O(state=absent) the group is removed from these gMSAs' allowed principals before it is deleted.
      - With O(state=present) a name that matches no gMSA fails the task before anything is written; with
        O(state=absent) it is skipped.
    type: list
    elements: str
  state:
    description:
      - V(present) creates or updates the group and grants it; V(absent) revokes it from O(gmsas) and deletes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.ad_connection
attributes:
  action_group:
    support: full
    membership:
      - winkube.gmsa.ad
  check_mode:
    support: full
    details: Plans everything (reads only) and reports what would change.
  diff_mode:
    support: full
    details: Shows the group and each gMSA's allowed principals before and after.
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks LDAP to a domain controller, or with O(backend=winrm)
      WinRM to a Windows host.
notes:
  - Windows hosts pick up a new group membership with a new Kerberos ticket, in practice after a reboot
    (or C(klist -li 0x3e7 purge)). The module warns when it adds members.
seealso:
  - module: winkube.gmsa.gmsa
author:
  - winkube.gmsa maintainers (@winkube)
"""

EXAMPLES = r"""
- name: Container hosts may retrieve the passwords of two gMSAs
  winkube.gmsa.host_group:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
    name: ContainerHosts
    members: [WIN1$, WIN2$]
    members_mode: set
    gmsas: [WebApp1, WebApp2]

- name: Take a node out of the group
  winkube.gmsa.host_group:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
    name: ContainerHosts
    members: [WIN2$]
    members_mode: remove
"""

RETURN = r"""
group:
  description: The group after the task.
  returned: always
  type: dict
  contains:
    name:
      description: The group's C(cn).
      type: str
      sample: ContainerHosts
    state:
      description: V(present) or V(absent).
      type: str
    distinguished_name:
      description: DN of the group (the DN it would get, for a new group in check mode).
      type: str
      sample: CN=ContainerHosts,CN=Users,DC=contoso,DC=com
    sid:
      description: SID of the group; null when absent or created in check mode.
      type: str
    object_guid:
      description: objectGUID of the group; null when absent or created in check mode.
      type: str
    sam_account_name:
      description: The group's C(sAMAccountName).
      type: str
    scope:
      description: The group's scope.
      type: str
      sample: domainlocal
    description:
      description: The group's description.
      type: str
    members:
      description: DNs of the members.
      type: list
      elements: str
gmsas:
  description: The gMSAs from O(gmsas) and whether their allowed principals changed.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The gMSA's C(cn).
      type: str
    distinguished_name:
      description: DN of the gMSA.
      type: str
    changed:
      description: Whether the group was (or would be) added to or removed from its allowed principals.
      type: bool
members_added:
  description:
    - The members this run added to the group (in check mode, would add), as C(sAMAccountName) (C(WIN1$)) or, for an
      object without one, its DN. Empty when nothing was added. The roles purge the machine tickets of exactly these
      computers (winkube.gmsa.node_refresh, the node agent's O(winkube.gmsa.node_agent#module:refresh)).
  returned: always
  type: list
  elements: str
  sample: [WIN2$]
ldap_operations:
  description: How many LDAP searches and writes the task made (after binding).
  returned: always
  type: dict
  sample: {searches: 2, writes: 1}
created_concurrently:
  description:
    - The group's name when its creation found the group already there (created meanwhile by another run);
      the group was then read again and converged (members, description, grants) instead. Empty otherwise.
  returned: always
  type: list
  elements: str
  sample: [ContainerHosts]
replanned:
  description:
    - Names of the gMSAs whose C(msDS-GroupMSAMembership) another writer changed between this run's read and
      its write. The write of that value deletes exactly the value read and adds the new one in one modify,
      so it failed instead of overwriting the other change; the gMSA was read and planned again and written
      (at most 6 times, then the task fails and names it). Empty otherwise.
  returned: always
  type: list
  elements: str
  sample: [WebApp1]
"""

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import (
    ad_argument_spec,
    ad_module_kwargs,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import backend, dn, engine
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import ldap_client
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import principals as principal_lookup

GROUP_ATTRIBUTES = ['cn', 'objectClass', 'objectSid', 'objectGUID', 'sAMAccountName', 'groupType', 'description',
                    'member', 'msDS-GroupMSAMembership']
NEW_GROUP_SID = 'S-1-0-0'  # placeholder SID of a group that check mode would create


class HostGroupTask:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.searches = 0
        self.writes = 0
        self.directory = None
        self.errors = []
        self.created_concurrently = []

    def fail(self, msg, **kwargs):
        kwargs.setdefault('ldap_operations', dict(searches=self.searches, writes=self.writes))
        self.module.fail_json(msg=msg, **kwargs)

    def raise_errors(self):
        if self.errors:
            self.fail('; '.join(m for _o, m in self.errors) + ' (nothing was changed)',
                      failed_options=sorted(set(o for o, _m in self.errors)))

    def validate(self):
        p = self.params
        for option in ('name', 'sam_account_name', 'description', 'path'):
            value = p[option]
            if value is not None and ('\x00' in value or (option != 'description' and not value.strip())):
                self.errors.append((option, '%s %r is empty or contains a NUL character' % (option, value)))
        self.sam = p['sam_account_name'] or p['name']
        bad = sorted(set(c for c in self.sam if c in engine.SAM_FORBIDDEN.replace('@', '') or ord(c) < 32))
        if bad and not self.errors:
            self.errors.append(('sam_account_name', 'sAMAccountName %r contains characters not allowed: %s; set '
                                'sam_account_name to a name without them' % (self.sam, ' '.join(bad))))
        for option in ('members', 'gmsas'):
            for value in p[option] or []:
                try:
                    principal_lookup.classify(value)
                except ValueError as exc:
                    self.errors.append((option, '%s: %r %s' % (option, value, exc)))
        self.raise_errors()

    def read(self):
        p = self.params
        base = self.directory.base_dn
        self.path = p['path'] or 'CN=Users,%s' % base
        gmsa_names = p['gmsas'] or []
        gmsa_sams = [n if n.endswith('$') else n + '$' for n in gmsa_names]
        ldap_filter = engine.gmsa_filter(ldap_client.escape_filter_value, names=gmsa_names,
                                         sams=[self.sam] + gmsa_sams)
        self.searches += 1
        entries = self.directory.search(base, ldap_filter, GROUP_ATTRIBUTES)
        self.group = None
        for entry in entries:
            if (entry.get('sAMAccountName') or '').lower() == self.sam.lower():
                if not any(c.lower() == 'group' for c in entry.values('objectClass')):
                    self.errors.append(('name', '%s (sAMAccountName %s) exists but is not a group'
                                        % (entry.dn, self.sam)))
                self.group = entry
        self.group_dn = self.group.dn if self.group is not None else 'CN=%s,%s' % (
            ldap_client.escape_rdn_value(p['name']), self.path)
        self.gmsas = []
        gmsa_entries = [e for e in entries if engine.is_gmsa(e)]
        for name, sam in zip(gmsa_names, gmsa_sams):
            entry = engine.find_account(gmsa_entries, name, sam)
            if entry is None:
                matches = [e for e in gmsa_entries if (e.get('cn') or '').lower() == name.lower()]
                entry = matches[0] if len(matches) == 1 else None
            if entry is None:
                if p['state'] == 'present':  # nothing to revoke from a gMSA that is gone
                    self.errors.append(('gmsas', 'gmsas: %r matches no gMSA in %s' % (name, base)))
            elif all(entry.dn != g['entry'].dn for g in self.gmsas):
                self.gmsas.append({'name': entry.get('cn'), 'entry': entry, 'changed': False})
        self.raise_errors()

    def plan_group(self):
        p = self.params
        members = p['members']
        current_members = self.group.values('member') if self.group is not None else []
        requests = [('members', m) for m in members or []]
        try:
            self.resolution = principal_lookup.resolve(self.directory, requests, dns=current_members, need='dn')
        except principal_lookup.PrincipalError as exc:
            self.fail('%s (nothing was changed)' % exc, failed_options=['members'])
        self.searches += self.resolution.searches
        for (_option, name), principal in self.resolution.by_name.items():
            if principal.dn is None:
                self.errors.append(('members', 'members: %r has no object in the directory' % name))
        self.raise_errors()
        self.group_plan = None
        if p['state'] == 'absent':
            return
        desired = dict(sam_account_name=self.sam, scope=p['scope'], description=p['description'],
                       members={p['members_mode']: members} if members is not None else None)
        desired = engine.resolve_principals(engine.HOST_GROUP_ROWS, desired, self.resolution.dn)
        labels = {dn.normalize_dn(pr.dn): pr.label() for pr in self.resolution.by_dn.values()}
        self.group_desired, self.group_labels = desired, labels
        try:
            self.group_plan = engine.plan(engine.HOST_GROUP_ROWS, desired, self.group)
            self.group_diff = engine.plan(engine.HOST_GROUP_ROWS, desired, self.group, labels=labels)
        except engine.PlanError as exc:
            self.fail('%s (nothing was changed)' % exc, failed_options=[exc.option])

    def adopt_group(self):
        """The add found the group already there: another run created it since we read. Read it again and
        converge it like an existing group; False when what is there is not this group."""
        ldap_filter = '(sAMAccountName=%s)' % ldap_client.escape_filter_value(self.sam)
        self.searches += 1
        found = self.directory.search(self.directory.base_dn, ldap_filter, GROUP_ATTRIBUTES)
        if len(found) != 1 or dn.normalize_dn(found[0].dn) != dn.normalize_dn(self.group_dn) or \
                not any(c.lower() == 'group' for c in found[0].values('objectClass')):
            return False
        self.group = found[0]
        try:
            self.group_plan = engine.plan(engine.HOST_GROUP_ROWS, self.group_desired, self.group)
            self.group_diff = engine.plan(engine.HOST_GROUP_ROWS, self.group_desired, self.group,
                                          labels=self.group_labels)
        except engine.PlanError as exc:
            self.fail('the group %s was created meanwhile by someone else and differs: %s' % (self.group_dn, exc),
                      failed_options=[exc.option])
        if self.group_plan.changes:
            self.directory.modify(self.group_dn, self.group_plan.changes)
            self.writes += 1
        self.created_concurrently.append(self.params['name'])
        return True

    def plan_gmsas(self, group_sid):
        try:
            engine.plan_password_reader(self.gmsas, group_sid, grant=self.params['state'] == 'present')
        except engine.PlanError as exc:
            self.fail(str(exc))

    def write_gmsas(self):
        self.writes += engine.write_planned(self.directory, self.gmsas, self.module.check_mode)

    def run(self):
        self.validate()
        self.directory = backend.connect(self.module)
        self.created = None
        try:
            self.read()
            self.plan_group()
            present = self.params['state'] == 'present'
            group_sid = self.group.sid() if self.group is not None else None
            if present:
                self.plan_gmsas(group_sid or NEW_GROUP_SID)
                if not self.module.check_mode and self.group_plan.changed:
                    if self.group is None:
                        try:
                            self.directory.add(self.group_dn, ['top', 'group'], self.group_plan.create)
                            self.writes += 1
                        except ldap_client.ADAlreadyExists:
                            if not self.adopt_group():
                                raise
                        self.searches += 1
                        self.created = self.directory.get(self.group_dn, ['objectSid', 'objectGUID'])
                        group_sid = self.created.sid()
                        self.plan_gmsas(group_sid)
                    else:
                        self.directory.modify(self.group_dn, self.group_plan.changes)
                        self.writes += 1
                self.write_gmsas()
                if self.group_plan.changed and 'members' in self.group_plan.changed_options and \
                        self.params['members_mode'] != 'remove':
                    self.module.warn('Windows hosts see a new group membership only with a new Kerberos ticket '
                                     '(reboot, or klist -li 0x3e7 purge)')
            else:
                if group_sid:
                    self.plan_gmsas(group_sid)
                    self.write_gmsas()
                if self.group is not None and not self.module.check_mode:
                    self.directory.delete(self.group_dn)
                    self.writes += 1
        except ldap_client.ADError as exc:
            self.fail('%s (writes done before the failure: %d; a rerun completes the rest)' % (exc, self.writes))
        finally:
            self.directory.close()
        self.exit()

    def exit(self):
        p = self.params
        present = p['state'] == 'present'
        group_changed = (self.group_plan.changed if present else self.group is not None)
        changed = group_changed or any(g['changed'] for g in self.gmsas)
        source = self.created or self.group
        group = dict(name=p['name'], state=p['state'], distinguished_name=self.group_dn,
                     sid=source.sid() if source is not None and present else None,
                     object_guid=source.guid() if source is not None and present else None)
        if present:
            group.update(self.group_plan.after)
        out = dict(changed=changed, group=group,
                   gmsas=[dict(name=g['name'], distinguished_name=g['entry'].dn, changed=g['changed'])
                          for g in self.gmsas],
                   ldap_operations=dict(searches=self.searches, writes=self.writes),
                   created_concurrently=self.created_concurrently,
                   replanned=[g['name'] for g in self.gmsas if g.get('replanned')],
                   members_added=self.members_added() if present else [])
        if self.module._diff:
            out['diff'] = self.diff()
        self.module.exit_json(**out)

    def members_added(self):
        """Who this run added (would add): the DNs in the plan's after that were not members before, by label."""
        before = set(dn.normalize_dn(m) for m in self.group_plan.before.get('members') or [])
        return [self.group_labels.get(dn.normalize_dn(m), m) for m in self.group_plan.after.get('members') or []
                if dn.normalize_dn(m) not in before]

    def diff(self):
        label = self.params['name']
        before, after = {}, {}
        if self.group is not None:
            current = engine.plan(engine.HOST_GROUP_ROWS, {}, self.group).before
            before['group'] = engine.diff_text(dict(current, state='present'))
        else:
            before['group'] = {'state': 'absent'}
        if self.params['state'] == 'present':
            after['group'] = engine.diff_text(dict(self.group_diff.after, state='present'))
        else:
            after['group'] = {'state': 'absent'}
        sid_labels = {NEW_GROUP_SID: label}
        for source in (self.group, self.created):
            if source is not None:
                sid_labels[source.sid()] = label
        for gmsa in self.gmsas:
            plan = gmsa.get('plan')
            if plan is None:
                continue
            b = plan.before.get('allowed_to_retrieve_password') or []
            a = plan.after.get('allowed_to_retrieve_password') or []
            before.setdefault('gmsas', {})[gmsa['name']] = sorted(sid_labels.get(s, s) for s in b)
            after.setdefault('gmsas', {})[gmsa['name']] = sorted(sid_labels.get(s, s) for s in a)
        return dict(before=before, after=after)


def main():
    module = AnsibleModule(
        argument_spec=ad_argument_spec(
            name=dict(type='str', required=True),
            sam_account_name=dict(type='str'),
            path=dict(type='str'),
            scope=dict(type='str', choices=['domainlocal', 'global', 'universal']),
            description=dict(type='str'),
            members=dict(type='list', elements='str'),
            members_mode=dict(type='str', choices=['add', 'remove', 'set'], default='add'),
            gmsas=dict(type='list', elements='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        supports_check_mode=True,
        **ad_module_kwargs()
    )
    if not ldap_client.HAS_LDAP3:
        module.fail_json(msg=missing_required_lib('ldap3'), exception=ldap_client.LDAP3_IMPORT_ERROR)
    HostGroupTask(module).run()


if __name__ == '__main__':
    main()
