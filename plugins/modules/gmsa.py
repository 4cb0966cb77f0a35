#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gmsa
short_description: Manage group Managed Service Accounts (gMSAs) in Active Directory over LDAP
version_added: 0.1.0
description:
  - Creates, updates and removes one gMSA (O(name)) or several in one call (O(accounts)).
  - Talks LDAP directly to a domain controller, so it runs on the controller without a Windows host; with
    O(backend=winrm) it runs the ActiveDirectory cmdlets on a Windows host over WinRM instead.
  - Reads the requested gMSAs with one LDAP search per 100 accounts by C(sAMAccountName) (and, for the accounts not
    found so, one per 100 by C(cn)), resolves every principal with one more search and
    checks new service principal names against the whole domain with one search, all before anything
    is written. Each account is then created with one LDAP add or updated with one LDAP modify, so a
    failure midway leaves accounts that a rerun completes.
  - The options follow M(microsoft.ad.service_account) where they overlap; list options take
    C(add), C(remove) and C(set) keys the same way.
  - The domain needs a KDS root key before the domain controllers can compute gMSA passwords.
options:
  name:
    description:
      - Name of the gMSA (its C(cn)); its sAMAccountName is C(<name>$) unless O(sam_account_name) is set.
      - Use O(accounts) instead to manage several gMSAs in one task.
    type: str
  accounts:
    description:
      - Several gMSAs managed in one task. Each item takes the same options as the task itself
        (O(accounts[].name) is required).
      - Options set at the task level (for example O(path), O(allowed_to_retrieve_password) or O(state))
        are defaults for every item; an item's own value wins.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the gMSA (its C(cn)). See O(name).
        type: str
        required: true
      sam_account_name:
        description: See O(sam_account_name).
        type: str
      dns_host_name:
        description: See O(dns_host_name).
        type: str
        aliases: [dns_hostname]
      description:
        description: See O(description).
        type: str
      path:
        description: See O(path).
        type: str
      enabled:
        description: See O(enabled).
        type: bool
      service_principal_names:
        description: See O(service_principal_names).
        type: dict
        aliases: [spn, spns]
        suboptions:
          add:
            description: SPNs to add.
            type: list
            elements: str
          remove:
            description: SPNs to remove.
            type: list
            elements: str
          set:
            description: The only SPNs the account has afterwards.
            type: list
            elements: str
      allowed_to_retrieve_password:
        description: See O(allowed_to_retrieve_password).
        type: dict
        aliases: [principals_allowed_to_retrieve_managed_password]
        suboptions:
          add:
            description: Principals to allow.
            type: list
            elements: str
          remove:
            description: Principals to no longer allow.
            type: list
            elements: str
          set:
            description: The only principals allowed afterwards.
            type: list
            elements: str
      kerberos_encryption_types:
        description: See O(kerberos_encryption_types).
        type: dict
        suboptions:
          add:
            description: Encryption types to add.
            type: list
            elements: str
            choices: [aes128, aes256, des, rc4]
          remove:
            description: Encryption types to remove.
            type: list
            elements: str
            choices: [aes128, aes256, des, rc4]
          set:
            description: The only encryption types afterwards.
            type: list
            elements: str
            choices: [aes128, aes256, des, rc4]
      managed_password_interval_days:
        description: See O(managed_password_interval_days).
        type: int
      state:
        description: See O(state). Defaults to the task's O(state).
        type: str
        choices: [present, absent]
  sam_account_name:
    description:
      - The C(sAMAccountName) of the gMSA; a trailing C($) is added when missing.
      - 'At most 15 characters including the C($) (14 before it), without any of
        C(" / \\ [ ] : ; | = , + * ? < > @) or control characters.'
      - Defaults to C(<name>$). Set it when O(name) is longer than 14 characters or contains such
        characters, and keep the longer O(name) as the object's name.
      - Changing it on an existing account renames the account's sAMAccountName.
    type: str
  dns_host_name:
    description:
      - The C(dNSHostName) of the gMSA.
      - Defaults to C(<name>.<domain DNS name>) when the account is created; an existing account's value
        is only changed when this option is given.
      - The alias O(dns_hostname) is the name microsoft.ad.service_account uses for the same value.
    type: str
    aliases: [dns_hostname]
  description:
    description:
      - The C(description) of the account. An empty string removes it.
    type: str
  path:
    description:
      - Distinguished name of the container or OU the gMSA is created in.
      - Defaults to C(CN=Managed Service Accounts,<base_dn>).
      - An existing account found elsewhere (by its sAMAccountName) is not moved; the module warns.
    type: str
  enabled:
    description:
      - Whether the account is enabled (the C(ACCOUNTDISABLE) bit of C(userAccountControl)).
      - New accounts are enabled unless this is V(false).
    type: bool
  service_principal_names:
    description:
      - Service principal names (C(servicePrincipalName)) to add, remove or set, compared case-insensitively.
      - Each must look like C(service/host[:port][/name]), for example C(HTTP/web.contoso.com).
      - Containers register no SPNs themselves; add C(host/) and C(HTTP/) names for each name clients use.
      - An SPN already registered on another account makes the task fail before anything is written.
      - Use O(service_principal_names.set) with an empty list to remove all.
      - The aliases O(spn) and O(spns) are the names microsoft.ad.service_account uses for the same value.
    type: dict
    aliases: [spn, spns]
    suboptions:
      add:
        description: SPNs to add; existing SPNs not listed are kept.
        type: list
        elements: str
      remove:
        description: SPNs to remove; other SPNs are kept.
        type: list
        elements: str
      set:
        description: The only SPNs the account has afterwards.
        type: list
        elements: str
  allowed_to_retrieve_password:
    description:
      - Principals (computers, groups, users) allowed to retrieve the managed password, to add, remove or set.
      - Each is a C(sAMAccountName) (C(WIN1$); C(WIN1) also finds C(WIN1$)), C(DOMAIN\\name), a distinguished
        name, a SID string, an objectGUID or a user principal name. A name that matches no object fails the
        task before anything is written. A well-known SID outside the domain (for example C(S-1-5-11)) is used
        as is.
      - Stored as the security descriptor in C(msDS-GroupMSAMembership) (owner BUILTIN\\Administrators, one
        ACCESS_ALLOWED ACE per principal), the same as C(-PrincipalsAllowedToRetrieveManagedPassword).
        ACEs of other kinds (deny ACEs, object ACEs) are kept, also by O(allowed_to_retrieve_password.set).
      - Use O(allowed_to_retrieve_password.set) with an empty list to remove all.
    type: dict
    aliases: [principals_allowed_to_retrieve_managed_password]
    suboptions:
      add:
        description: Principals to allow; principals already allowed are kept.
        type: list
        elements: str
      remove:
        description: Principals to no longer allow; others are kept.
        type: list
        elements: str
      set:
        description: The only principals allowed afterwards.
        type: list
        elements: str
  kerberos_encryption_types:
    description:
      - Kerberos encryption types of the account (C(msDS-SupportedEncryptionTypes)) to add, remove or set.
      - New accounts get V(aes128) and V(aes256) (C(24)) unless this option says otherwise.
      - V(rc4) and V(des) are weak; the module warns when they are asked for.
    type: dict
    suboptions:
      add:
        description: Encryption types to add.
        type: list
        elements: str
        choices: [aes128, aes256, des, rc4]
      remove:
        description: Encryption types to remove.
        type: list
        elements: str
        choices: [aes128, aes256, des, rc4]
      set:
        description: The only encryption types afterwards.
        type: list
        elements: str
        choices: [aes128, aes256, des, rc4]
  managed_password_interval_days:
    description:
      - Days between automatic password changes (C(msDS-ManagedPasswordInterval)).
      - Active Directory only accepts it when the account is created; new accounts get V(30) unless set.
        Asking for a different value for an existing account fails the task (delete and re-create the
        account to change it).
    type: int
  state:
    description:
      - V(present) creates or updates the gMSA(s); V(absent) deletes them.
    type: str
    choices: [present, absent]
    default: present
  return_unchanged:
    description:
      - Whether RV(accounts) lists the accounts that needed no change too.
      - V(false) lists only the accounts created, changed or deleted, which keeps the result small when the task
        holds thousands of accounts (the role C(winkube.gmsa.gmsa_ad) sets it). C(changed), the diff and, with
        O(name), RV(distinguished_name), RV(sid) and RV(object_guid) are the same either way.
    type: bool
    default: true
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
    details: Shows each account's options before and after, keyed by account name.
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks LDAP to a domain controller, or with O(backend=winrm)
      WinRM to a Windows host.
notes:
  - Host computer accounts pick up new group memberships only after a reboot; prefer granting a group
    (see M(winkube.gmsa.host_group)) and add hosts to it.
seealso:
  - module: winkube.gmsa.gmsa_info
  - module: winkube.gmsa.host_group
  - module: microsoft.ad.service_account
author:
  - winkube.gmsa maintainers (@winkube)
"""

EXAMPLES = r"""
- name: A gMSA for a web application, readable by the container hosts' group
  winkube.gmsa.gmsa:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
    ca_file: /etc/pki/contoso-ca.pem
    name: WebApp1
    service_principal_names:
      set:
        - HTTP/webapp1.contoso.com
        - HTTP/webapp1
    allowed_to_retrieve_password:
      add:
        - ContainerHosts

- name: A long name needs a short sAMAccountName
  winkube.gmsa.gmsa:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
    name: InventoryReportingService
    sam_account_name: InvReporting$
    managed_password_interval_days: 60

- name: Several gMSAs in one task, sharing the allowed principals and the OU
  winkube.gmsa.gmsa:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
    path: OU=gMSA,DC=contoso,DC=com
    allowed_to_retrieve_password:
      set: [ContainerHosts]
    accounts:
      - name: WebApp1
        service_principal_names: {set: [HTTP/webapp1.contoso.com]}
      - name: WebApp2
        description: Second web application
      - name: OldApp
        state: absent

- name: Remove a gMSA
  winkube.gmsa.gmsa:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
    name: WebApp1
    state: absent
"""

RETURN = r"""
accounts:
  description:
    - One item per account in the task, in task order.
    - With O(return_unchanged=false), only the accounts created, changed or deleted.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The account's name (C(cn)).
      type: str
      sample: WebApp1
    state:
      description: V(present) or V(absent) after the task.
      type: str
      sample: present
    changed:
      description: Whether this account was (or, in check mode, would be) created, changed or deleted.
      type: bool
    distinguished_name:
      description: DN of the account (the DN it would get, for a new account in check mode).
      type: str
      sample: CN=WebApp1,CN=Managed Service Accounts,DC=contoso,DC=com
    sid:
      description: The account's SID; null for an account created in check mode or absent.
      type: str
      sample: S-1-5-21-4151808797-3430561092-2843464588-1104
    object_guid:
      description: The account's objectGUID; null for an account created in check mode or absent.
      type: str
      sample: d84a141f-2b99-4f08-9da0-ed2d26864ba1
    sam_account_name:
      description: The C(sAMAccountName).
      type: str
      sample: WebApp1$
    dns_host_name:
      description: The C(dNSHostName).
      type: str
      sample: WebApp1.contoso.com
    description:
      description: The C(description), null when none.
      type: str
    service_principal_names:
      description: The account's SPNs.
      type: list
      elements: str
      sample: [HTTP/webapp1.contoso.com]
    kerberos_encryption_types:
      description: The encryption types set in C(msDS-SupportedEncryptionTypes).
      type: list
      elements: str
      sample: [aes128, aes256]
    managed_password_interval_days:
      description: C(msDS-ManagedPasswordInterval).
      type: int
      sample: 30
    enabled:
      description: Whether the account is enabled.
      type: bool
    allowed_to_retrieve_password:
      description: Principals with an allow ACE in C(msDS-GroupMSAMembership).
      type: list
      elements: dict
      contains:
        sid:
          description: SID of the principal.
          type: str
        distinguished_name:
          description: DN of the principal, null for a SID without an object.
          type: str
        sam_account_name:
          description: sAMAccountName of the principal, null when unknown.
          type: str
        object_guid:
          description: objectGUID of the principal, null when unknown.
          type: str
distinguished_name:
  description: DN of the account when the task used O(name).
  returned: when O(name) is used
  type: str
  sample: CN=WebApp1,CN=Managed Service Accounts,DC=contoso,DC=com
sid:
  description: SID of the account when the task used O(name) (null in check mode for a new account).
  returned: when O(name) is used
  type: str
object_guid:
  description: objectGUID of the account when the task used O(name) (null in check mode for a new account).
  returned: when O(name) is used
  type: str
ldap_operations:
  description: LDAP searches sent and writes done after binding (see the notes).
  returned: always
  type: dict
  sample: {searches: 3, writes: 1}
created_concurrently:
  description: The accounts whose creation found them already there, converged instead (see the notes).
  returned: always
  type: list
  elements: str
  sample: [WebApp1]
replanned:
  description: The gMSAs whose allowed principals another writer changed during this run, re-planned (see the notes).
  returned: always
  type: list
  elements: str
  sample: [WebApp1]
"""

import re

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import ad_argument_spec, ad_module_kwargs
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import dn, engine
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import ldap_client
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import principals as principal_lookup
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.reconciler import GMSA, Reconciler

LIST_STR = dict(type='dict', options=dict(
    add=dict(type='list', elements='str'),
    remove=dict(type='list', elements='str'),
    set=dict(type='list', elements='str'),
))
ENC_CHOICES = ['aes128', 'aes256', 'des', 'rc4']
LIST_ENC = dict(type='dict', options=dict(
    add=dict(type='list', elements='str', choices=ENC_CHOICES),
    remove=dict(type='list', elements='str', choices=ENC_CHOICES),
    set=dict(type='list', elements='str', choices=ENC_CHOICES),
))


def account_options():
    return dict(
        sam_account_name=dict(type='str'),
        dns_host_name=dict(type='str', aliases=['dns_hostname']),  # aliases: microsoft.ad.service_account's names
        description=dict(type='str'),
        path=dict(type='str'),
        enabled=dict(type='bool'),
        service_principal_names=dict(LIST_STR, aliases=['spn', 'spns']),
        allowed_to_retrieve_password=dict(LIST_STR, aliases=['principals_allowed_to_retrieve_managed_password'],
                                          no_log=False),
        kerberos_encryption_types=dict(LIST_ENC),
        managed_password_interval_days=dict(type='int', no_log=False),
    )


ACCOUNT_KEYS = ('name', 'state') + tuple(account_options())
GMSA_OPTIONS = [row.option for row in engine.GMSA_ROWS]
DNS_LABEL = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')


def account_arguments():
    """The module's own options: one account's options at the top and as the elements of ``accounts``."""
    item = account_options()
    item.update(name=dict(type='str', required=True), state=dict(type='str', choices=['present', 'absent']))
    spec = account_options()
    spec.update(
        name=dict(type='str'),
        accounts=dict(type='list', elements='dict', options=item),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        return_unchanged=dict(type='bool', default=True),
    )
    return spec


def task_accounts(params):
    """The accounts the task manages, each a dict of every account option (item value over task value)."""
    if params.get('name') is not None:
        return [{key: params.get(key) for key in ACCOUNT_KEYS}]
    out = []
    for item in params['accounts'] or []:
        merged = {}
        for key in ACCOUNT_KEYS:
            value = item.get(key)
            merged[key] = value if value is not None else params.get(key)
        out.append(merged)
    return out


class GmsaTask(Reconciler):
    """The gMSAs of one task (rows: engine.GMSA_ROWS); the loop is reconciler.Reconciler's. Hooks: name and DNS
    checks, one search per 100 accounts, principal lookup, unique SPNs, and the result per account."""

    def __init__(self, module):
        super(GmsaTask, self).__init__(module)
        self.accounts = task_accounts(module.params)

    # -- 1. validation without the directory -------------------------------------------------------
    def validate(self):
        seen_names, seen_sams = {}, {}
        for acct in self.accounts:
            name = acct['name']
            label = 'account %r' % (name,)
            name_errors = engine.check_gmsa_name(name, acct['sam_account_name'])
            if name_errors:
                self.errors.extend((option, '%s: %s' % (label, message)) for option, message in name_errors)
                continue
            acct['sam'] = engine.sam_for(name, acct['sam_account_name'])
            for key, seen in ((name.lower(), seen_names), (acct['sam'].lower(), seen_sams)):
                if key in seen:
                    self.error('accounts', '%s appears twice in the task' % label)
                seen[key] = True
            if acct['state'] == 'absent':
                continue
            desired = self.desired_raw(acct)
            for option, message in engine.validate(engine.GMSA_ROWS, desired):
                self.error(option, '%s: %s: %s' % (label, option, message))
            for _opt, value in engine.principal_names(engine.GMSA_ROWS, {'allowed_to_retrieve_password':
                                                                         desired.get('allowed_to_retrieve_password')}):
                try:
                    principal_lookup.classify(value)
                except ValueError as exc:
                    self.error('allowed_to_retrieve_password', '%s: allowed_to_retrieve_password: %r %s'
                               % (label, value, exc))
            enc = acct['kerberos_encryption_types'] or {}
            weak = sorted(set(t for k in ('add', 'set') for t in (enc.get(k) or [])
                              if t in engine.WEAK_ENCRYPTION_TYPES))
            if weak:
                self.module.warn('%s: kerberos_encryption_types %s are weak; prefer aes128 and aes256'
                                 % (label, ', '.join(weak)))
            dns = acct['dns_host_name']
            if dns is not None and (len(dns) > 255 or not all(DNS_LABEL.match(label) for label in dns.split('.'))):
                self.error('dns_host_name', '%s: dns_host_name %r is not a valid DNS host name (labels of letters, '
                           'digits and hyphens, at most 63 characters each, separated by dots)' % (label, dns))
            if acct['path'] is not None and ('\x00' in acct['path'] or '=' not in acct['path']):
                self.error('path', '%s: path %r is not a distinguished name' % (label, acct['path']))

    @staticmethod
    def desired_raw(acct):
        desired = {option: acct[option] for option in GMSA_OPTIONS}
        desired['sam_account_name'] = acct.get('sam')
        return desired

    # -- 2. read: by sAMAccountName, then by cn only the accounts not found so; one search per 100 accounts -----
    # A DC matches every entry a search finds against the whole OR filter, so one search for N accounts costs it
    # time in N squared. A reconverge of 2,000 gMSAs against the lab's Samba DC (bench/RESULTS.md, run of 2026-12-06
    # 08:26 UTC) took this module 2.34-2.41 s with both clauses per account and 500 accounts per search, 1.72-1.82 s
    # by sAMAccountName alone and 100 per search (50: 1.67 s; 500: 1.9-2.2 s); fewer accounts per search means more
    # round trips to a DC that may be far.
    accounts_per_search = 100

    def _read_accounts(self, entries, **wanted):
        """Add to entries (DN -> entry) the objects whose cn is one of ``names=[...]`` or whose sAMAccountName is one
        of ``sams=[...]`` (one keyword), 100 per search."""
        key, values = next(iter(wanted.items()))
        for start in range(0, len(values), self.accounts_per_search):
            ldap_filter = engine.gmsa_filter(ldap_client.escape_filter_value,
                                             **{key: values[start:start + self.accounts_per_search]})
            for entry in self.directory.search(self.directory.base_dn, ldap_filter, GMSA.read_attributes):
                entries.setdefault(entry.dn, entry)  # an object that two searches both match is kept once

    def read(self):
        default_path = 'CN=Managed Service Accounts,%s' % self.directory.base_dn
        for acct in self.accounts:
            acct['path'] = acct['path'] or default_path
        entries = {}
        # sAMAccountName is unique in the domain and names the account first (engine.AccountIndex.find); a reconverge
        # finds every account so and searches no cn, half the clauses for the DC to evaluate and ldap3 to compile
        self._read_accounts(entries, sams=[a['sam'] for a in self.accounts])
        found = set((e.get('sAMAccountName') or '').lower() for e in entries.values())
        self._read_accounts(entries, names=[a['name'] for a in self.accounts if a['sam'].lower() not in found])
        index = engine.AccountIndex(entries.values())
        for acct in self.accounts:
            entry = index.find(acct['name'], acct['sam'], acct['path'])
            if entry is not None and not GMSA.matches(entry):
                self.error('name', 'account %r: %s (sAMAccountName %s) exists but is not a gMSA; choose another name '
                           'or sam_account_name' % (acct['name'], entry.dn, entry.get('sAMAccountName')))
                entry = None
            if entry is not None and acct['state'] == 'present' and acct['path'] != default_path and \
                    dn.normalize_dn(dn.parent_dn(entry.dn)) != dn.normalize_dn(acct['path']):
                self.module.warn('account %r exists at %s, outside path %s; it is not moved'
                                 % (acct['name'], entry.dn, acct['path']))
            options = dict((key, value) for key, value in acct.items() if key not in ('name', 'state'))
            self.targets.append(self.target(GMSA, acct['name'], acct['state'], entry=entry,
                                            dn=self.new_dn(acct['name'], acct['path']), **options))

    # -- 3. plan: one lookup for every principal ----------------------------------------------------------
    def plan(self):
        requests = []
        current_sids = []
        for acct in self.targets:
            if acct['state'] != 'present':
                continue
            acct['desired'] = self.desired_raw(acct)
            requests += engine.principal_names(engine.GMSA_ROWS, acct['desired'])
            if acct['entry'] is not None:
                try:  # only the readers' row: the whole plan is made once, below
                    current = engine.plan(engine.PASSWORD_READER_ROWS, {}, acct['entry']).before
                except engine.PlanError as exc:
                    self.fail('account %r: %s' % (acct['name'], exc))
                current_sids += current['allowed_to_retrieve_password'] or []
        self.resolve(requests, sids=sorted(set(current_sids)))
        labels = self.resolution.sid_labels()
        for acct in self.targets:
            if acct['state'] == 'absent':
                acct['changed'] = acct['entry'] is not None
                continue
            desired = dict(acct['desired'])
            if acct['entry'] is None and desired['dns_host_name'] is None:
                if not DNS_LABEL.match(acct['name']):
                    self.error('dns_host_name', 'account %r: the name is not a valid DNS label, so dns_host_name has '
                               'no default; set dns_host_name' % acct['name'])
                    continue
                desired['dns_host_name'] = '%s.%s' % (acct['name'], self.directory.dns_domain)
            acct['labels'] = labels
            try:
                self.plan_target(acct, desired=engine.resolve_principals(engine.GMSA_ROWS, desired,
                                                                         self.resolution.sid))
            except engine.PlanError as exc:
                self.error(exc.option or 'name', 'account %r: %s' % (acct['name'], exc))

    def check(self):
        """New SPNs must not be registered on any other object (one search for all of them)."""
        added = {}
        for acct in self.targets:
            plan = acct['plan']
            if plan is None or 'service_principal_names' not in plan.changed_options:
                continue
            before = set(s.lower() for s in plan.before.get('service_principal_names') or [])
            for spn in plan.after['service_principal_names'] or []:
                if spn.lower() in before:
                    continue
                other = added.get(spn.lower())
                if other is not None and other is not acct:
                    self.error('service_principal_names', 'SPN %s is asked for both %r and %r; an SPN must be '
                               'unique' % (spn, other['name'], acct['name']))
                added[spn.lower()] = acct
        if not added:
            return
        ldap_filter = '(|%s)' % ''.join('(servicePrincipalName=%s)' % ldap_client.escape_filter_value(spn)
                                        for spn in sorted(added))
        for entry in self.directory.search(self.directory.base_dn, ldap_filter,
                                           ['servicePrincipalName', 'sAMAccountName']):
            for spn in entry.values('servicePrincipalName'):
                acct = added.get(spn.lower())
                if acct is not None and dn.normalize_dn(entry.dn) != dn.normalize_dn(acct['dn']):
                    self.error('service_principal_names', 'account %r: service_principal_names: %s is already '
                               'registered on %s (%s); an SPN must be unique in the domain'
                               % (acct['name'], spn, entry.dn, entry.get('sAMAccountName')))

    # -- 4. write -------------------------------------------------------------------------------------
    def write(self):
        created = []
        for acct in self.targets:
            if not acct['changed']:
                continue
            try:
                if acct['state'] == 'present' and acct['entry'] is None:
                    if self.create(acct):
                        created.append(acct)
                else:
                    self.write_target(acct)
            except ldap_client.ADError as exc:
                done = [a['name'] for a in self.targets if a.get('written')]
                hint = ''
                if 'root key' in str(exc).lower():
                    hint = ('; the domain has no usable KDS root key: create one (winkube.gmsa.kds_root_key) and, on '
                            'a multi-DC domain, wait for it to replicate')
                self.fail('account %r: %s%s%s' % (acct['name'], exc, hint, '; already done: %s (a rerun completes '
                                                  'the rest)' % ', '.join(done) if done else ''))
            acct['written'] = True
        if created:  # the SIDs and GUIDs of the new accounts, one search for all
            ldap_filter = '(|%s)' % ''.join('(sAMAccountName=%s)' % ldap_client.escape_filter_value(a['sam'])
                                            for a in created)
            found = {e.get('sAMAccountName', '').lower(): e
                     for e in self.directory.search(self.directory.base_dn, ldap_filter,
                                                    ['objectSid', 'objectGUID', 'sAMAccountName'])}
            for acct in created:
                entry = found.get(acct['sam'].lower())
                if entry is not None:
                    acct['sid'], acct['guid'], acct['dn'] = entry.sid(), entry.guid(), entry.dn

    def write_failed(self, exc):
        self.fail(str(exc))

    # -- 5. report ------------------------------------------------------------------------------------
    def account_result(self, acct):
        entry = acct['entry']
        out = dict(name=acct['name'], state=acct['state'], changed=acct['changed'], distinguished_name=acct['dn'])
        if acct['state'] == 'absent':
            out.update(sid=None, object_guid=None)
            return out
        after = dict(acct['plan'].after)
        out.update(sid=entry.sid() if entry is not None else acct.get('sid'),
                   object_guid=entry.guid() if entry is not None else acct.get('guid'))
        after['allowed_to_retrieve_password'] = [self.resolution.describe_sid(s)
                                                 for s in after['allowed_to_retrieve_password'] or []]
        out.update(after)
        return out

    def result(self):
        shown = [a for a in self.targets if self.params['return_unchanged'] or a['changed']]
        out = dict(changed=any(a['changed'] for a in self.targets), accounts=[self.account_result(a) for a in shown],
                   created_concurrently=self.created_concurrently)
        if self.params.get('name') is not None:
            first = self.account_result(self.targets[0])
            out.update(distinguished_name=first['distinguished_name'], sid=first['sid'],
                       object_guid=first['object_guid'])
        return out

    def diff(self):
        before, after = {}, {}
        for acct in self.targets:
            name = acct['name']
            if acct['state'] == 'absent':
                before[name] = engine.gmsa_facts(acct['entry']) if acct['entry'] is not None else {'state': 'absent'}
                if acct['entry'] is not None:
                    labels = self.resolution.sid_labels()
                    before[name]['allowed_to_retrieve_password'] = [
                        labels.get(s, s) for s in before[name]['allowed_to_retrieve_password'] or []]
                after[name] = {'state': 'absent'}
                continue
            plan = acct['labels_plan']
            before[name] = dict(engine.diff_text(plan.before), state='present') if acct['entry'] is not None \
                else {'state': 'absent'}
            after[name] = dict(engine.diff_text(plan.after), state='present')
        return dict(before=before, after=after)

    def run(self):
        if not self.accounts:  # accounts: [] manages nothing (e.g. an empty inventory list)
            self.module.exit_json(changed=False, accounts=[], ldap_operations=dict(searches=0, writes=0),
                                  created_concurrently=[], replanned=[])
        super(GmsaTask, self).run()


def main():
    module = AnsibleModule(argument_spec=ad_argument_spec(**account_arguments()), supports_check_mode=True,
                           mutually_exclusive=[('name', 'accounts')], required_one_of=[('name', 'accounts')],
                           **ad_module_kwargs())
    GmsaTask(module).run()


if __name__ == '__main__':
    main()
