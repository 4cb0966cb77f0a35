# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue every WinRM module shares: option checks, the runner, the optional Kubernetes connection."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.connection_spec import check_connection
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.k8s_nodes import valid_node_name
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import Runner, require_winrm


def runner_for(module):
    """A Runner for the module's connection options; fails the module on bad options."""
    require_winrm(module)
    errors = check_connection(module.params)
    if errors:
        module.fail_json(msg='; '.join(errors))
    if module.params.get('validate_certs') is False and module.params.get('scheme') == 'https':
        module.warn('validate_certs=false: the Windows hosts\' TLS certificates are not verified')
    return Runner(module.params)


def cluster_transport(module):
    """A Kubernetes transport when the option ``cluster`` is given, else None; fails the module on errors."""
    cluster = module.params.get('cluster')
    if cluster is None:
        return None
    from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError, connect, require_kubernetes
    require_kubernetes(module)
    try:
        return connect(cluster)
    except K8sError as exc:
        module.fail_json(msg='cluster: %s' % exc)


def node_name_for(module, entry, computer_name):
    """The Kubernetes node name of a host: node_names[entry], else the host's computer name in lower case."""
    names = module.params.get('node_names') or {}
    name = names.get(entry)
    if name is None:
        name = (computer_name or '').lower() or None
    if name is not None and not valid_node_name(name):
        return None, '%r is not a valid Kubernetes node name; set node_names for %s' % (name, entry)
    return name, None
