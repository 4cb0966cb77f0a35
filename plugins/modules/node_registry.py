#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_registry
short_description: Turn on EnableCompartmentNamespace on Windows nodes so gMSA pods reach SMB shares by name
version_added: 0.1.0
description:
  - Two forms. B(On a Windows host of the inventory) (a play on the Windows hosts, C(ansible_connection) V(winrm) or
    V(psrp)) the action plugin of the same name sends the collection's constant PowerShell over the host's own
    connection, with the options as data; inventory variables, forks and AWX Machine credentials apply, and the
    WinRM options below are not used (see C(docs/winrm.md) for the options this form takes).
  - B(Deprecated controller-side form), removed in 1.0.0 - with O(hosts) the module runs on the task's host and opens
    its own WinRM sessions with the WinRM options below.
  - On each Windows node, over WinRM, ensures the registry value C(EnableCompartmentNamespace) = V(1)
    (C(REG_DWORD)) under C(HKLM\SYSTEM\CurrentControlSet\Services\hns\State). Without it, containers that
    run as a gMSA cannot reach SMB shares by host name.
  - Only pods created after the change get the fix. The module therefore returns, per changed node, the
    running pods that use a gMSA and must be recreated; it lists them through the Kubernetes API when
    O(cluster) is given (pods whose spec names a C(gmsaCredentialSpecName) and whose C(spec.nodeName) is
    the node's Kubernetes name).
  - Reports C(changed) per node; in check mode the PowerShell script only reads the registry.
  - B(Not verified against Windows.) The collection's tests run this module through pywinrm's real
    HTTP, authentication and WS-Management stack against a local test endpoint that imitates the
    PowerShell side; the PowerShell itself has not run on Windows in these tests (see C(docs/winrm.md)).
  - User values never become PowerShell text; see C(docs/winrm.md) for how data reaches the script.
author:
  - winkube.gmsa maintainers (@winkube)
extends_documentation_fragment:
  - winkube.gmsa.winrm_connection.node_action
  - winkube.gmsa.winrm_connection.node_host
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.winrm_connection
  - winkube.gmsa.winrm_connection.cluster
options:
  node_names:
    description:
      - Kubernetes node name of each host, keyed by the entry in O(hosts) exactly as written there.
      - A host not listed is taken to be registered under its Windows computer name in lower case, which is
        the kubelet's default.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - A reboot is not needed; the Host Networking Service reads the value when it creates a pod's network
    compartment.
seealso:
  - module: winkube.gmsa.node_preflight_info
  - name: Configure GMSA for Windows Pods and containers
    description: Kubernetes documentation, including the SMB-by-host-name known issue.
    link: https://kubernetes.io/docs/tasks/configure-pod-container/configure-gmsa/
"""

EXAMPLES = r"""
- name: Turn on EnableCompartmentNamespace on every Windows node
  winkube.gmsa.node_registry:
    hosts: "{{ groups['windows_nodes'] }}"
    username: CONTOSO\k8s-admin
    password: "{{ winrm_password }}"
    ca_trust_path: /etc/pki/contoso-root-ca.pem
    cluster: "{{ gmsa_cluster }}"
  register: registry

- name: Recreate the gMSA pods that started before the change
  kubernetes.core.k8s:
    api_version: v1
    kind: Pod
    namespace: "{{ item.namespace }}"
    name: "{{ item.name }}"
    state: absent
  loop: "{{ registry.pods_to_recreate }}"
  when: item.owner is not none

- name: NTLM over HTTP (messages encrypted by NTLM), node names given explicitly
  winkube.gmsa.node_registry:
    hosts: [win-node1.contoso.com, win-node2.contoso.com]
    scheme: http
    username: CONTOSO\k8s-admin
    password: "{{ winrm_password }}"
    node_names:
      win-node1.contoso.com: aks-win1-12345
      win-node2.contoso.com: aks-win2-12345
"""

RETURN = r"""
nodes:
  description: One entry per host, in the order of O(hosts).
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: The entry of O(hosts).
      type: str
      sample: win-node1.contoso.com
    failed:
      description: Whether this host failed; see RV(nodes[].msg).
      type: bool
    msg:
      description: Why this host failed (connection, authentication, TLS or the PowerShell error message).
      type: str
      returned: when failed
    error_kind:
      description: C(connection), C(tls), C(authentication), C(wsman), C(configuration), C(powershell) or C(protocol).
      type: str
      returned: when failed
    error_details:
      description: For PowerShell errors the category, fully qualified error id, exception type, command and line.
      type: dict
      returned: when failed
    computer_name:
      description: Windows computer name of the host.
      type: str
      sample: WIN-NODE1
    node_name:
      description: Kubernetes node name used for the pod lookup.
      type: str
      sample: win-node1
    changed:
      description: Whether the value was (or in check mode would be) written on this host.
      type: bool
    key_existed:
      description: Whether the registry key existed before.
      type: bool
    before:
      description: The value before, V(null) when it did not exist.
      type: dict
      sample: {type: REG_DWORD, value: 0}
    after:
      description: The value after (in check mode, the value that would be written).
      type: dict
      sample: {type: REG_DWORD, value: 1}
    pods_to_recreate:
      description:
        - The gMSA pods on this node that started before the change; V(null) when the node did not change
          or O(cluster) was not given.
      type: list
      elements: dict
pods_to_recreate:
  description:
    - All gMSA pods that must be recreated to get the fix, over all changed nodes (only with O(cluster)).
    - Each has C(namespace), C(name), C(node_name), C(phase), C(credential_spec_names) and C(owner)
      (C(kind) and C(name) of the controlling owner, V(null) for a bare pod, which is not recreated by anything).
  returned: always
  type: list
  elements: dict
  sample:
    - namespace: web
      name: iis-7d9f8b6c4-x2x9q
      node_name: win-node1
      phase: Running
      credential_spec_names: [gmsa-webapp1]
      owner: {kind: ReplicaSet, name: iis-7d9f8b6c4}
pods_checked:
  description: Whether the pods were looked up through the Kubernetes API (O(cluster) given).
  returned: always
  type: bool
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import (
    CLUSTER_OPTION,
    winrm_argument_spec,
    winrm_module_kwargs,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.nodes import cluster_transport, node_name_for
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.module_support import runner_for
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import failure_message
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import REGISTRY_DWORD

KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\hns\\State'
VALUE_NAME = 'EnableCompartmentNamespace'
WANTED = 1
KINDS = {'DWord': 'REG_DWORD', 'QWord': 'REG_QWORD', 'String': 'REG_SZ', 'ExpandString': 'REG_EXPAND_SZ',
         'MultiString': 'REG_MULTI_SZ', 'Binary': 'REG_BINARY', 'None': 'REG_NONE', 'Unknown': 'REG_NONE'}


def registry_value(raw):
    if not isinstance(raw, dict):
        return None
    return {'type': KINDS.get(raw.get('type'), raw.get('type')), 'value': raw.get('value')}


def registry_text(value):
    if value is None:
        return '%s (not set)\n' % VALUE_NAME
    return '%s = %s (%s)\n' % (VALUE_NAME, value['value'], value['type'])


def main():
    argument_spec = winrm_argument_spec(
        node_names=dict(type='dict', default={}),
        cluster=CLUSTER_OPTION,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **winrm_module_kwargs())
    runner = runner_for(module)
    transport = cluster_transport(module)
    data = {'key': KEY, 'name': VALUE_NAME, 'value': WANTED, 'check_mode': module.check_mode}
    outcomes = runner.run_all(REGISTRY_DWORD, lambda entry: data)

    nodes, diffs, pods = [], [], []
    for outcome in outcomes:
        entry = outcome['host']
        if not outcome['ok']:
            nodes.append({'host': entry, 'failed': True, 'changed': False, 'msg': outcome['error'],
                          'error_kind': outcome['error_kind'], 'error_details': outcome['error_details']})
            continue
        result = outcome['result'] or {}
        node = {
            'host': entry,
            'failed': False,
            'computer_name': result.get('computer_name'),
            'node_name': None,
            'changed': bool(result.get('changed')),
            'key_existed': bool(result.get('key_existed')),
            'before': registry_value(result.get('before')),
            'after': registry_value(result.get('after')),
            'pods_to_recreate': None,
        }
        node['node_name'], problem = node_name_for(module, entry, node['computer_name'])
        if node['changed'] and not module.check_mode and not (node['after'] or {}).get('value') == WANTED:
            node.update(failed=True, msg='%s was written but reads back as %s' % (VALUE_NAME, node['after']))
        if node['changed'] and transport is not None:
            if problem:
                node.update(failed=True, msg=problem)
            else:
                from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError
                from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.nodes import gmsa_pods_on_node
                try:
                    node['pods_to_recreate'] = gmsa_pods_on_node(transport, node['node_name'])
                    pods.extend(node['pods_to_recreate'])
                except (K8sError, ValueError) as exc:
                    node.update(failed=True, msg='listing the pods of node %s: %s' % (node['node_name'], exc))
        diffs.append({'before_header': '%s: %s' % (entry, KEY), 'after_header': '%s: %s' % (entry, KEY),
                      'before': registry_text(node['before']), 'after': registry_text(node['after'])})
        nodes.append(node)

    result = dict(changed=any(n.get('changed') for n in nodes), nodes=nodes, pods_to_recreate=pods,
                  pods_checked=transport is not None)
    if module._diff:
        result['diff'] = diffs
    if any(n.get('failed') for n in nodes):
        module.fail_json(msg=failure_message(nodes), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
