# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: connection_options
short_description: The connection options of a role variable, for module_defaults
version_added: 0.1.0
author:
  - winkube.gmsa maintainers (@winkube)
description:
  - Picks from C(gmsa_domain) the Active Directory connection options of the AD modules (doc fragment
    C(winkube.gmsa.ad_connection)), or from C(gmsa_cluster) the Kubernetes connection options of the Kubernetes
    modules (doc fragment C(winkube.gmsa.k8s_connection)), leaving out the keys that are not set.
  - The option names come from the modules' own argument specs, so a role passes exactly what the modules take.
options:
  _input:
    description: C(gmsa_domain) or C(gmsa_cluster); empty or null gives an empty dict.
    type: dict
    required: true
  kind:
    description: V(ad) for the AD connection, V(k8s) for the Kubernetes connection.
    type: str
    required: true
    choices: [ad, k8s]
"""

EXAMPLES = r"""
- name: Read the domain with the connection of gmsa_domain
  winkube.gmsa.domain_info:
  module_defaults:
    winkube.gmsa.domain_info: "{{ gmsa_domain | winkube.gmsa.connection_options('ad') }}"
"""

RETURN = r"""
_value:
  description: The connection options that are set.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import AD_CONNECTION_OPTIONS
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import K8S_CONNECTION_OPTIONS

OPTIONS = {'ad': AD_CONNECTION_OPTIONS, 'k8s': K8S_CONNECTION_OPTIONS}


def connection_options(variable, kind):
    if kind not in OPTIONS:
        raise AnsibleFilterError('winkube.gmsa.connection_options: kind must be ad or k8s, not %r' % (kind,))
    variable = variable or {}
    return {name: variable[name] for name in OPTIONS[kind] if variable.get(name) is not None}


class FilterModule:
    def filters(self):
        return {'connection_options': connection_options}
