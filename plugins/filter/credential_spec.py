# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: credential_spec
short_description: Build a gMSA credential spec from domain facts
version_added: 0.1.0
author:
  - winkube.gmsa maintainers (@winkube)
description:
  - Builds the credential spec content that Microsoft's C(New-CredentialSpec) writes for a group Managed
    Service Account, from the result of M(winkube.gmsa.domain_info). The result is the C(credspec) of a
    C(GMSACredentialSpec) resource.
  - C(DomainJoinConfig.Sid) is the SID of the domain, C(MachineAccountName) the gMSA name without C($),
    C(Guid) the domain's objectGUID, C(DnsTreeName) the forest root DNS name.
  - C(ActiveDirectoryConfig.GroupManagedServiceAccounts) lists the gMSA with the DNS scope and the NetBIOS
    scope, then every additional account.
options:
  _input:
    description:
      - Domain facts, the registered result of M(winkube.gmsa.domain_info) (keys C(dns_name),
        C(netbios_name), C(domain_guid), C(domain_sid), C(forest_dns_name)).
      - A C(DomainJoinConfig)-style dict (C(DnsName), C(NetBiosName), C(Guid), C(Sid), C(DnsTreeName)) works too.
    type: dict
    required: true
  account:
    description: Name of the gMSA (its sAMAccountName with or without the trailing C($)).
    type: str
    required: true
  additional_accounts:
    description:
      - More gMSAs the container may use.
      - A name adds it with both scopes of this domain; a dict C({name, scope}) adds it once with that scope
        (for example a gMSA of another domain).
    type: list
    elements: raw
    default: []
  host_account_config:
    description:
      - For hosts that are not domain-joined (ccg.exe plugins), adds C(ActiveDirectoryConfig.HostAccountConfig)
        with C(PortableCcgVersion) V(1).
      - Either C(plugin=azure_key_vault) with C(object_id) and C(secret_uri), C(plugin=aws) with
        C(credential_arn), or C(plugin_guid) and C(plugin_input) (a string, or a dict serialised to JSON).
    type: dict
"""

EXAMPLES = r"""
- name: Read the domain
  winkube.gmsa.domain_info:
    server: dc1.contoso.com
    username: reader@contoso.com
    password: "{{ ad_password }}"
  register: domain

- name: Credential spec of WebApp1
  ansible.builtin.set_fact:
    credspec: "{{ domain | winkube.gmsa.credential_spec('WebApp1') }}"

- name: With an additional account and the Azure Key Vault plugin for non-domain-joined nodes
  ansible.builtin.set_fact:
    credspec: >-
      {{ domain | winkube.gmsa.credential_spec('WebApp1', additional_accounts=['Batch1'],
         host_account_config={'plugin': 'azure_key_vault',
                              'object_id': identity_object_id,
                              'secret_uri': 'https://kv1.vault.azure.net/secrets/gmsa-user'}) }}
"""

RETURN = r"""
_value:
  description: The credential spec content.
  type: dict
  sample:
    CmsPlugins: [ActiveDirectory]
    DomainJoinConfig:
      Sid: S-1-5-21-2126449477-2524075714-3094792973
      MachineAccountName: WebApp1
      Guid: 244818ae-87ac-4fcd-92ec-e79e5252348a
      DnsTreeName: contoso.com
      DnsName: contoso.com
      NetBiosName: CONTOSO
    ActiveDirectoryConfig:
      GroupManagedServiceAccounts:
        - {Name: WebApp1, Scope: contoso.com}
        - {Name: WebApp1, Scope: CONTOSO}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.winkube.gmsa.plugins.module_utils.models.credential_spec import (
    CredentialSpecError,
    build_credential_spec,
)


def credential_spec(domain, account, additional_accounts=None, host_account_config=None):
    try:
        return build_credential_spec(domain, account, additional_accounts=additional_accounts,
                                     host_account=host_account_config)
    except CredentialSpecError as exc:
        raise AnsibleFilterError('winkube.gmsa.credential_spec: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'credential_spec': credential_spec}
