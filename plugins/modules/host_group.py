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
  - winkube.gmsa.ad_writes
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
  description: LDAP searches sent and writes done after binding (see the notes).
  returned: always
  type: dict
  sample: {searches: 2, writes: 1}
created_concurrently:
  description: The group's name when its creation found it already there, converged instead (see the notes).
  returned: always
  type: list
  elements: str
  sample: [ContainerHosts]
replanned:
  description: The gMSAs whose allowed principals another writer changed during this run, re-planned (see the notes).
  returned: always
  type: list
  elements: str
  sample: [WebApp1]
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import ad_argument_spec, ad_module_kwargs
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import dn, engine
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import principals as principal_lookup
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.reconciler import GrantingReconciler, ObjectType

GROUP = ObjectType('group', engine.HOST_GROUP_ROWS, ['top', 'group'], classes=['group'], cmdlet='ADGroup', read_attributes=[
    'cn', 'objectClass', 'objectSid', 'objectGUID', 'sAMAccountName', 'groupType', 'description', 'member',
    'msDS-GroupMSAMembership'])


class HostGroupTask(GrantingReconciler):
    """The group (rows: engine.HOST_GROUP_ROWS) and its grants; the loop is reconciler.GrantingReconciler's."""

    object_type = GROUP
    result_key = 'group'

    def validate(self):
        p = self.params
        for option in ('name', 'sam_account_name', 'description', 'path'):
            value = p[option]
            if value is not None and ('\x00' in value or (option != 'description' and not value.strip())):
                self.error(option, '%s %r is empty or contains a NUL character' % (option, value))
        self.sam = p['sam_account_name'] or p['name']
        bad = sorted(set(c for c in self.sam if c in engine.SAM_FORBIDDEN.replace('@', '') or ord(c) < 32))
        if bad and not self.errors:
            self.error('sam_account_name', 'sAMAccountName %r contains characters not allowed: %s; set '
                       'sam_account_name to a name without them' % (self.sam, ' '.join(bad)))
        for value in p['members'] or []:
            try:
                principal_lookup.classify(value)
            except ValueError as exc:
                self.error('members', 'members: %r %s' % (value, exc))
        super(HostGroupTask, self).validate()

    def plan(self):
        """Members are looked up (one search) before the group is planned; each must be an object."""
        group = self.principal
        current_members = group['entry'].values('member') if group['entry'] is not None else []
        resolution = self.resolve([('members', m) for m in self.params['members'] or []], failed_options=['members'],
                                  dns=current_members, need='dn')
        for (_option, name), principal in resolution.by_name.items():
            if principal.dn is None:
                self.error('members', 'members: %r has no object in the directory' % name)
        self.raise_errors()
        group['labels'] = {dn.normalize_dn(pr.dn): pr.label() for pr in resolution.by_dn.values()}
        super(HostGroupTask, self).plan()

    def desired(self):
        p = self.params
        members = p['members']
        desired = dict(sam_account_name=self.sam, scope=p['scope'], description=p['description'],
                       members={p['members_mode']: members} if members is not None else None)
        return engine.resolve_principals(engine.HOST_GROUP_ROWS, desired, self.resolution.dn)

    def finish(self):
        plan = self.principal['plan']
        if self.present and plan.changed and 'members' in plan.changed_options and \
                self.params['members_mode'] != 'remove':
            self.module.warn('Windows hosts see a new group membership only with a new Kerberos ticket '
                             '(reboot, or klist -li 0x3e7 purge)')

    def principal_result(self):
        out = super(HostGroupTask, self).principal_result()
        out['object_guid'] = self.guid if self.present else None
        return out

    def result(self):
        out = super(HostGroupTask, self).result()
        out.update(created_concurrently=self.created_concurrently,
                   members_added=self.members_added() if self.present else [])
        return out

    def members_added(self):
        """Who this run added (would add): the DNs in the plan's after that were not members before, by label."""
        plan, labels = self.principal['plan'], self.principal['labels']
        before = set(dn.normalize_dn(m) for m in plan.before.get('members') or [])
        return [labels.get(dn.normalize_dn(m), m) for m in plan.after.get('members') or []
                if dn.normalize_dn(m) not in before]


def main():
    module = AnsibleModule(argument_spec=ad_argument_spec(
        name=dict(type='str', required=True),
        sam_account_name=dict(type='str'),
        path=dict(type='str'),
        scope=dict(type='str', choices=['domainlocal', 'global', 'universal']),
        description=dict(type='str'),
        members=dict(type='list', elements='str'),
        members_mode=dict(type='str', choices=['add', 'remove', 'set'], default='add'),
        gmsas=dict(type='list', elements='str'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    ), supports_check_mode=True, **ad_module_kwargs())
    HostGroupTask(module).run()


if __name__ == '__main__':
    main()
