#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: domain_info
short_description: Read the Active Directory domain facts that gMSA credential specs need
version_added: 0.1.0
description:
  - Reads, over LDAP, the facts of the domain that the domain controller serves - DNS name, NetBIOS name,
    domain GUID and SID, forest root DNS name, functional levels - and whether a KDS root key is usable,
    so gMSA passwords can be derived.
  - The result feeds the P(winkube.gmsa.credential_spec#filter) filter directly.
  - Read-only; never changes anything.
author:
  - winkube.gmsa maintainers (@winkube)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.ad_connection
options: {}
attributes:
  action_group:
    support: full
    membership:
      - winkube.gmsa.ad
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks LDAP to a domain controller, or with O(backend=winrm)
      WinRM to a Windows host.
seealso:
  - module: winkube.gmsa.kds_root_key
  - plugin: winkube.gmsa.credential_spec
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Read the domain
  winkube.gmsa.domain_info:
    server: dc1.contoso.com
    username: reader@contoso.com
    password: "{{ ad_password }}"
    ca_file: /etc/pki/contoso-root-ca.pem
  register: domain

- name: Build a credential spec for the gMSA WebApp1
  ansible.builtin.set_fact:
    webapp1_credspec: "{{ domain | winkube.gmsa.credential_spec('WebApp1') }}"
"""

RETURN = r"""
dns_name:
  description: DNS name of the domain.
  returned: always
  type: str
  sample: contoso.com
netbios_name:
  description: NetBIOS (pre-Windows 2000) name of the domain.
  returned: always
  type: str
  sample: CONTOSO
domain_dn:
  description: Distinguished name of the domain naming context.
  returned: always
  type: str
  sample: DC=contoso,DC=com
domain_guid:
  description: C(objectGUID) of the domain object, lower case without braces.
  returned: always
  type: str
  sample: 244818ae-87ac-4fcd-92ec-e79e5252348a
domain_sid:
  description: SID of the domain (not of any account).
  returned: always
  type: str
  sample: S-1-5-21-2126449477-2524075714-3094792973
forest_dns_name:
  description: DNS name of the forest root domain (C(DnsTreeName) in a credential spec).
  returned: always
  type: str
  sample: contoso.com
forest_dn:
  description: Distinguished name of the forest root domain.
  returned: always
  type: str
config_dn:
  description: Distinguished name of the configuration partition.
  returned: always
  type: str
  sample: CN=Configuration,DC=contoso,DC=com
domain_functional_level:
  description: Domain functional level as a number (C(msDS-Behavior-Version); 7 is Windows Server 2016).
  returned: always
  type: int
  sample: 7
domain_functional_level_name:
  description: Windows Server release of the domain functional level.
  returned: always
  type: str
  sample: "2016"
forest_functional_level:
  description: Forest functional level as a number.
  returned: always
  type: int
  sample: 7
dc_dns_hostname:
  description: DNS host name of the domain controller that answered.
  returned: always
  type: str
  sample: dc1.contoso.com
kds_root_key_usable:
  description: Whether a KDS root key is usable now, so gMSA passwords can be derived.
  returned: always
  type: bool
  sample: true
kds_root_key:
  description:
    - The KDS root key in use (see M(winkube.gmsa.kds_root_key) for the fields), or the newest well-formed
      key waiting for its time, or V(null) when the forest has none.
  returned: always
  type: dict
kds_root_key_count:
  description: Number of KDS root keys in the forest.
  returned: always
  type: int
  sample: 1
"""

import datetime

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import (
    ad_argument_spec,
    ad_module_kwargs,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.backend import connect
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.errors import ADError
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import kds

LEVEL_NAMES = {0: '2000', 1: '2003 interim', 2: '2003', 3: '2008', 4: '2008 R2', 5: '2012', 6: '2012 R2',
               7: '2016', 10: '2025'}


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def main():
    module = AnsibleModule(argument_spec=ad_argument_spec(), supports_check_mode=True, **ad_module_kwargs())
    directory = connect(module)
    try:
        now = datetime.datetime.now(datetime.timezone.utc)
        dse = directory.root_dse
        domain_level = _int(dse.get('domainFunctionality'))
        keys = kds.read_root_keys(directory, now)
        current = kds.current_key(keys)
        shown = current or kds.pending_key(keys)
        result = dict(
            changed=False,
            dns_name=directory.dns_domain,
            netbios_name=directory.netbios_name,
            domain_dn=directory.base_dn,
            domain_guid=directory.domain_guid,
            domain_sid=directory.domain_sid,
            forest_dns_name=directory.forest_dns,
            forest_dn=directory.forest_dn,
            config_dn=directory.config_dn,
            domain_functional_level=domain_level,
            domain_functional_level_name=LEVEL_NAMES.get(domain_level, str(domain_level)),
            forest_functional_level=_int(dse.get('forestFunctionality')),
            dc_dns_hostname=dse.get('dnsHostName'),
            kds_root_key_usable=current is not None,
            kds_root_key=kds.public(shown),
            kds_root_key_count=len(keys),
        )
    except ADError as exc:
        module.fail_json(msg=str(exc))
    finally:
        directory.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
