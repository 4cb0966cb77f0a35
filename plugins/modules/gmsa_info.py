#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gmsa_info
short_description: Read group Managed Service Accounts (gMSAs) from Active Directory over LDAP
version_added: 0.1.0
description:
  - Returns the attributes M(winkube.gmsa.gmsa) manages for the given gMSAs, or for every gMSA in the domain
    (or under O(search_base)), and which principals may retrieve each one's password, resolved from the
    security descriptor in C(msDS-GroupMSAMembership).
  - Uses one LDAP search for the accounts and one for the principals, whatever the number of accounts.
options:
  name:
    description:
      - Names of the gMSAs to read, each their C(cn) or C(sAMAccountName) (with or without the trailing C($)).
      - Omit to read every gMSA.
    type: list
    elements: str
    aliases: [names]
  search_base:
    description:
      - DN under which to look for gMSAs. Defaults to the domain (O(base_dn)).
    type: str
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
    details: Only reads.
  diff_mode:
    support: none
    details: Nothing to show.
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks LDAP to a domain controller, or with O(backend=winrm)
      WinRM to a Windows host.
seealso:
  - module: winkube.gmsa.gmsa
author:
  - winkube.gmsa maintainers (@winkube)
"""

EXAMPLES = r"""
- name: Read two gMSAs
  winkube.gmsa.gmsa_info:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
    name: [WebApp1, WebApp2]
  register: gmsas

- name: Which principals may retrieve WebApp1's password
  ansible.builtin.debug:
    msg: "{{ gmsas.accounts[0].allowed_to_retrieve_password | map(attribute='sam_account_name') }}"

- name: Every gMSA of the domain
  winkube.gmsa.gmsa_info:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
  register: all_gmsas
"""

RETURN = r"""
accounts:
  description: The gMSAs found, in the order of O(name) (sorted by name when O(name) is omitted).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The account's C(cn).
      type: str
      sample: WebApp1
    distinguished_name:
      description: DN of the account.
      type: str
      sample: CN=WebApp1,CN=Managed Service Accounts,DC=contoso,DC=com
    sid:
      description: The account's SID.
      type: str
    object_guid:
      description: The account's objectGUID.
      type: str
    sam_account_name:
      description: The C(sAMAccountName).
      type: str
      sample: WebApp1$
    dns_host_name:
      description: The C(dNSHostName).
      type: str
    description:
      description: The C(description), null when none.
      type: str
    service_principal_names:
      description: The account's SPNs.
      type: list
      elements: str
    kerberos_encryption_types:
      description: Encryption types in C(msDS-SupportedEncryptionTypes), null when not set.
      type: list
      elements: str
      sample: [aes128, aes256]
    managed_password_interval_days:
      description: C(msDS-ManagedPasswordInterval).
      type: int
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
    denied_to_retrieve_password:
      description: SIDs with a deny ACE in C(msDS-GroupMSAMembership) (rare; set outside this collection).
      type: list
      elements: str
missing:
  description: Names from O(name) that match no gMSA.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import (
    ad_argument_spec,
    ad_module_kwargs,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import backend, engine
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import ldap_client
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import principals as principal_lookup
from ansible_collections.winkube.gmsa.plugins.module_utils.models import security_descriptor


def read(module, directory):
    names = module.params['name']
    base = module.params['search_base'] or directory.base_dn
    kind = '(objectClass=msDS-GroupManagedServiceAccount)'
    if names:
        bad = [n for n in names if not n or '\x00' in n]
        if bad:
            module.fail_json(msg='name: %r is empty or contains a NUL character' % (bad[0],), failed_options=['name'])
        sams = [n if n.endswith('$') else n + '$' for n in names]
        by_name = engine.gmsa_filter(ldap_client.escape_filter_value, names=names, sams=sams + names)
        ldap_filter = '(&%s%s)' % (kind, by_name)
    else:
        ldap_filter = kind
    try:
        entries = directory.search(base, ldap_filter, engine.GMSA_READ_ATTRIBUTES)
    except ldap_client.ADError as exc:
        if not module.params['search_base']:
            raise
        module.fail_json(msg='search_base %r cannot be searched: %s' % (base, exc), failed_options=['search_base'])
    found, missing = [], []
    if names:
        index, seen = engine.AccountIndex(entries), set()
        for name in names:
            sam = name if name.endswith('$') else name + '$'
            entry = index.find(name, sam)
            if entry is None:
                matches = index.named(name)
                entry = matches[0] if len(matches) == 1 else None
            if entry is None:
                missing.append(name)
            elif id(entry) not in seen:
                seen.add(id(entry))
                found.append(entry)
    else:
        found = sorted(entries, key=lambda e: (e.get('cn') or '').lower())
    return found, missing


def main():
    module = AnsibleModule(
        argument_spec=ad_argument_spec(
            name=dict(type='list', elements='str', aliases=['names']),
            search_base=dict(type='str'),
        ),
        supports_check_mode=True,
        **ad_module_kwargs()
    )
    if not ldap_client.HAS_LDAP3:
        module.fail_json(msg=missing_required_lib('ldap3'), exception=ldap_client.LDAP3_IMPORT_ERROR)
    directory = backend.connect(module)
    try:
        entries, missing = read(module, directory)
        facts = []
        sids = set()
        for entry in entries:
            try:
                item = engine.gmsa_facts(entry)
                raw = entry.raw.get('msDS-GroupMSAMembership')
                sd = security_descriptor.GroupMSAMembership.from_bytes(raw[0]) if raw else None
            except (engine.PlanError, security_descriptor.SecurityDescriptorError) as exc:
                module.fail_json(msg='gMSA %s: %s' % (entry.dn, exc))
            item['denied_to_retrieve_password'] = sd.denied_sids if sd is not None else []
            sids.update(item['allowed_to_retrieve_password'] or [])
            facts.append(item)
        resolution = principal_lookup.resolve(directory, [], sids=sorted(sids))
        for item in facts:
            item['allowed_to_retrieve_password'] = [resolution.describe_sid(s)
                                                    for s in item['allowed_to_retrieve_password'] or []]
    except ldap_client.ADError as exc:
        module.fail_json(msg=str(exc))
    finally:
        directory.close()
    module.exit_json(changed=False, accounts=facts, missing=missing)


if __name__ == '__main__':
    main()
