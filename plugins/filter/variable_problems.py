# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: variable_problems
short_description: The checks of the shared role variables beyond their argument specs
version_added: 0.1.0
author:
  - winkube.gmsa maintainers (@winkube)
description:
  - What the roles C(winkube.gmsa.gmsa_ad) and C(winkube.gmsa.gmsa_credspecs) check in their variables before they
    write anything, beyond the types and choices their C(meta/argument_specs.yml) checks, for example a gMSA listed
    twice, a credential spec name Kubernetes refuses, or portable mode without the ccg.exe plugin.
  - Internal to the collection's roles.
options:
  _input:
    description:
      - The role's variables, C(gmsa_accounts), C(gmsa_nodes) (with the role's defaults), C(gmsa_cluster), and for
        C(gmsa_credspecs) also C(gmsa_docker) and C(gmsa_credspecs_targets).
    type: dict
    required: true
  role:
    description: Whose checks, C(gmsa_ad) or C(gmsa_credspecs).
    type: str
    required: true
    choices: [gmsa_ad, gmsa_credspecs]
  docker_hosts:
    description: For C(gmsa_credspecs), the inventory hosts the Docker files are written on.
    type: list
    elements: str
    default: []
  docker_group:
    description: For C(gmsa_credspecs), the inventory group those hosts come from (named in the message when it is empty).
    type: str
"""

EXAMPLES = r"""
- name: Check the variables beyond their types
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: >-
      {{ {'gmsa_accounts': gmsa_accounts, 'gmsa_nodes': gmsa_nodes, 'gmsa_cluster': gmsa_cluster}
         | winkube.gmsa.variable_problems('gmsa_ad') }}
"""

RETURN = r"""
_value:
  description: One message per problem, naming the variable and the fix; empty when there is none.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    account_credential_spec_name,
    is_dns1123_subdomain,
)

PORTABLE_MODES = ('portable', 'non_domain_joined')  # non_domain_joined: deprecated synonym
SAM_MAX = 15  # sAMAccountName of a computer or gMSA, with the $
DOCKER_NAME_MAX = 64  # Docker config names


def _duplicates(values):
    out = []
    for value in values:
        if values.count(value) > 1 and value not in out:
            out.append(value)
    return out


def _nodes_problems(nodes):
    """Shared by the roles: portable mode needs the ccg.exe plugin."""
    if nodes.get('mode') in PORTABLE_MODES and not nodes.get('host_account_config'):
        return ['gmsa_nodes.mode portable needs gmsa_nodes.host_account_config (the ccg.exe plugin)']
    return []


def _ad_problems(variables):
    accounts = variables.get('gmsa_accounts') or []
    nodes = variables.get('gmsa_nodes') or {}
    portable = nodes.get('mode') in PORTABLE_MODES
    identity = nodes.get('portable_identity') or {}
    use_identity = portable and bool(identity.get('name'))
    out = ['gMSA %s is listed more than once in gmsa_accounts' % name
           for name in _duplicates([account['name'].lower() for account in accounts])]
    for account in accounts:
        sam = account.get('sam_account_name') or account['name']
        sam = sam[:-1] if sam.endswith('$') else sam
        if len(sam) >= SAM_MAX:
            out.append('gMSA %s: sAMAccountName %s$ is longer than %d characters; set sam_account_name' % (account['name'], sam, SAM_MAX))
    out += _nodes_problems(nodes)
    if use_identity and identity.get('kubernetes_secret') and not variables.get('gmsa_cluster'):
        out.append('gmsa_nodes.portable_identity.kubernetes_secret needs gmsa_cluster (the connection the Secret is written with)')
    if nodes.get('portable_identity') and not portable:
        out.append('gmsa_nodes.portable_identity is only used with gmsa_nodes.mode portable')
    if not nodes.get('host_group') and not nodes.get('computers') and not use_identity and accounts:
        out.append('gmsa_nodes has neither a host_group nor computers: no node could retrieve a password')
    return out


def _credspecs_problems(variables, docker_hosts, docker_group):
    accounts = variables.get('gmsa_accounts') or []
    nodes = variables.get('gmsa_nodes') or {}
    docker = variables.get('gmsa_docker') or {}
    targets = variables.get('gmsa_credspecs_targets')
    to_docker = targets in ('docker', 'both')
    names = [account_credential_spec_name(account) for account in accounts]
    out = ['credential spec %s is used by more than one gMSA' % name for name in _duplicates(names)]
    for account, name in zip(accounts, names):
        if not is_dns1123_subdomain(name):
            out.append('credential spec name %s is not a DNS-1123 subdomain (lower case letters, digits, - and .)' % name)
    refs = []
    for account in accounts:
        for workload in account.get('workloads') or []:
            kind = workload.get('kind') or 'Deployment'
            ref = (kind, workload.get('namespace'), workload.get('name'), workload.get('container') or '')
            if ref in refs:
                out.append('%s %s/%s is wired to more than one gMSA' % (kind, workload.get('namespace'), workload.get('name')))
            refs.append(ref)
    for index, account in enumerate(accounts):
        for entry in account.get('use_by') or []:
            if 'service_accounts' in entry and not entry['service_accounts']:
                out.append('gmsa_accounts[%d] (%s).use_by namespace %s: service_accounts is empty; list the service accounts that may '
                           'use the gMSA, or drop the entry' % (index, account['name'], entry.get('namespace')))
    out += _nodes_problems(nodes)
    if to_docker and nodes.get('access') == 'none':
        out.append('gmsa_credspecs_targets %s writes files on the Docker hosts, but gmsa_nodes.access is none (leave the Windows hosts '
                   'alone): set it to winrm or leave it out' % targets)
    elif to_docker and not docker.get('hosts') and not docker_hosts:
        out.append('gmsa_credspecs_targets %s needs the Docker hosts: put them in the inventory group %s (ansible_connection winrm or '
                   'psrp) or name your group in gmsa_docker.inventory_group (gmsa_docker.hosts is the deprecated form)' % (targets, docker_group))
    if to_docker:
        out += ['credential spec name %s is longer than %d characters (Docker config names)' % (name, DOCKER_NAME_MAX)
                for name in names if len(name) > DOCKER_NAME_MAX]
    return out


def variable_problems(variables, role, docker_hosts=None, docker_group=None):
    """Messages for what the role's variables get wrong beyond their argument spec; [] when nothing."""
    if role == 'gmsa_ad':
        return _ad_problems(variables)
    if role == 'gmsa_credspecs':
        return _credspecs_problems(variables, docker_hosts or [], docker_group)
    raise AnsibleFilterError('winkube.gmsa.variable_problems: role must be gmsa_ad or gmsa_credspecs, not %r' % (role,))


class FilterModule:
    def filters(self):
        return {'variable_problems': variable_problems}
