# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue every controller-side WinRM module shares: option checks and the runner (the optional Kubernetes
connection of node_registry and node_preflight_info is module_utils/k8s/nodes.py)."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import check_connection
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
