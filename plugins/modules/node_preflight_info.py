#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_preflight_info
short_description: Check that Windows nodes can run pods as a gMSA
version_added: 0.1.0
description:
  - Two forms. B(On a Windows host of the inventory) (a play on the Windows hosts, C(ansible_connection) V(winrm) or
    V(psrp)) the action plugin of the same name sends the collection's constant PowerShell over the host's own
    connection, with the options as data; inventory variables, forks and AWX Machine credentials apply, and the
    WinRM options below are not used (see C(docs/winrm.md) for the options this form takes).
  - B(Deprecated controller-side form), removed in 1.0.0 - with O(hosts) the module runs on the task's host and opens
    its own WinRM sessions with the WinRM options below.
  - Reads, over WinRM and read-only, what gMSA for Windows pods depends on, on each Windows node, and gives
    a verdict per node (V(pass), V(warn) or V(fail)) with the fix for every problem found.
  - "Checks: the OS build (Windows Server 2019 needs build 17763.1817 or later for gMSA with containerd;
    2022 and 2025 are fine), the container runtime and its version, domain membership, DNS resolution of
    the domain, reachability of a domain controller on Kerberos (88) and LDAP (389) and LDAPS (636),
    C(EnableCompartmentNamespace) (see M(winkube.gmsa.node_registry)), the ccg.exe plugins (see
    O(ccg_plugins)), and, when O(cluster) is given, whether the node's Kubernetes Node object carries
    C(kubernetes.io/os=windows)."
  - Never changes anything, also outside check mode.
  - B(Not verified against Windows.) The collection's tests run this module through pywinrm's real
    HTTP, authentication and WS-Management stack against a local test endpoint that imitates the
    PowerShell side; the PowerShell itself has not run on Windows in these tests (see C(docs/winrm.md)).
    The verdicts are plain Python and unit-tested.
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
  domain:
    description:
      - DNS name of the Active Directory domain the gMSAs live in.
      - Defaults to the domain each node is joined to.
      - Passed to the node as data, never as PowerShell text.
    type: str
  domain_controllers:
    description:
      - Domain controllers (names or addresses) to test from the nodes.
      - Defaults to up to three taken from the domain's C(_ldap._tcp.dc._msdcs) SRV records, or the domain name
        itself when there are none.
    type: list
    elements: str
  mode:
    description:
      - V(domain_joined) requires each node to be joined to O(domain).
      - V(non_domain_joined) accepts nodes outside the domain, whose credential specs use a ccg plugin
        (C(PortableCcgVersion), C(PluginGUID), C(PluginInput)).
    type: str
    choices: [domain_joined, non_domain_joined]
    default: domain_joined
  ccg_plugins:
    description:
      - The ccg.exe plugins (Container Credential Guard) the nodes need, each V(azure_key_vault) (the Azure Key
        Vault plugin of AKS, C({CCC2A336-D7F3-4818-A213-272B7924213E})), V(aws) (the AWS plugin of ECS/EKS,
        C({859E1386-BDB4-49E8-85C7-3070B13920E1})) or the CLSID of any other plugin (C({xxxxxxxx-...})). The
        aliases of the C(credential_spec) filter's C(plugin) (C(azure), C(akv), C(aws_secrets_manager)) work too.
      - A plugin counts as registered when its COM class key
        C(HKLM\SYSTEM\CurrentControlSet\Control\CCG\COMClasses\{CLSID}) exists; the check is read-only and
        the module never installs or registers plugins.
      - With O(mode=non_domain_joined) a missing plugin fails the check C(ccg_plugin) with the fix; with the
        default empty list it fails only when no plugin at all is registered. With O(mode=domain_joined) a
        missing plugin is a warning, and nothing is checked when the list is empty.
      - Passed to the node as data, never as PowerShell text.
    type: list
    elements: str
    default: []
  connect_timeout:
    description:
      - Milliseconds each node waits for a TCP connection to a domain controller port.
    type: int
    default: 3000
  node_names:
    description:
      - Kubernetes node name of each host, keyed by the entry in O(hosts) exactly as written there.
      - A host not listed is taken to be registered under its Windows computer name in lower case, which is
        the kubelet's default.
    type: dict
    default: {}
  fail_on:
    description:
      - V(fail) fails the task when any node's verdict is V(fail); V(warn) also when it is V(warn);
        V(never) only reports. The per-node results are returned in every case.
      - A host that cannot be reached or whose script fails always fails the task.
    type: str
    choices: [fail, warn, never]
    default: fail
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
seealso:
  - module: winkube.gmsa.node_registry
"""

EXAMPLES = r"""
- name: Check every Windows node before deploying gMSA workloads
  winkube.gmsa.node_preflight_info:
    hosts: "{{ groups['windows_nodes'] }}"
    username: CONTOSO\k8s-admin
    password: "{{ winrm_password }}"
    ca_trust_path: /etc/pki/contoso-root-ca.pem
    domain: contoso.com
    cluster: "{{ gmsa_cluster }}"
  register: preflight

- name: Show what to fix
  ansible.builtin.debug:
    msg: "{{ preflight.nodes | map(attribute='checks') | flatten | selectattr('fix') | map(attribute='fix') | list }}"

- name: Report only, with explicit domain controllers
  winkube.gmsa.node_preflight_info:
    hosts: [win-node1.contoso.com]
    username: CONTOSO\k8s-admin
    password: "{{ winrm_password }}"
    domain_controllers: [dc1.contoso.com, dc2.contoso.com]
    fail_on: never
"""

RETURN = r"""
verdict:
  description: The worst verdict over all nodes that answered (V(pass), V(warn) or V(fail)).
  returned: always
  type: str
  sample: pass
nodes:
  description: One entry per host, in the order of O(hosts).
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: The entry of O(hosts).
      type: str
    failed:
      description: Whether the host could not be checked (see RV(nodes[].msg)); its verdict is then V(fail).
      type: bool
    msg:
      description: Why the host could not be checked.
      type: str
      returned: when failed
    error_kind:
      description: C(connection), C(tls), C(authentication), C(wsman), C(configuration), C(powershell) or C(protocol).
      type: str
      returned: when failed
    computer_name:
      description: Windows computer name.
      type: str
    node_name:
      description: Kubernetes node name.
      type: str
    verdict:
      description: V(pass), V(warn) or V(fail).
      type: str
    checks:
      description:
        - One entry per check, each with C(name) (C(os_build), C(container_runtime), C(domain_membership),
          C(domain_dns), C(dc_reachable), C(compartment_namespace), C(ccg_plugin), C(kubernetes_node)), C(status)
          (V(pass), V(warn), V(fail) or V(skip)), C(detail), and C(fix) (V(null) when it passed or was skipped).
      type: list
      elements: dict
      sample:
        - name: os_build
          status: fail
          detail: "Windows Server 2019 build 17763.1518: gMSA with containerd needs 17763.1817 or later"
          fix: install the cumulative update KB5000822 (March 2021) or any later cumulative update, then reboot the node
    os:
      description: C(caption), C(version), C(build), C(ubr) (update build revision), C(display_version), C(installation_type).
      type: dict
    runtime:
      description: The container runtime (C(name), C(version), C(state)), V(null) when none was found.
      type: dict
    kubelet_version:
      description: Version of the kubelet service, V(null) when there is none.
      type: str
    domain:
      description: C(joined) and C(name) (domain, or workgroup when not joined).
      type: dict
    ccg:
      description:
        - ccg.exe facts read from the registry and file system, V(null) from a node that did not report them.
        - C(com_classes_key) (whether C(HKLM\SYSTEM\CurrentControlSet\Control\CCG\COMClasses) exists),
          C(com_classes) (its subkeys, the registered plugin CLSIDs), C(ccg_exe) (whether
          C(%SystemRoot%\System32\ccg.exe) exists) and C(plugins) (C(guid), C(registered) per O(ccg_plugins)).
      type: dict
      sample: {com_classes_key: true, com_classes: ["{CCC2A336-D7F3-4818-A213-272B7924213E}"], ccg_exe: true,
               plugins: [{guid: "{CCC2A336-D7F3-4818-A213-272B7924213E}", registered: true}]}
    facts:
      description: Everything the node reported (services, DNS answers, port tests), for troubleshooting.
      type: dict
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import preflight
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import (
    CLUSTER_OPTION,
    winrm_argument_spec,
    winrm_module_kwargs,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.nodes import cluster_transport, node_name_for
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.module_support import runner_for
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import failure_message
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import PREFLIGHT_FACTS


def main():
    argument_spec = winrm_argument_spec(
        domain=dict(type='str'),
        domain_controllers=dict(type='list', elements='str'),
        mode=dict(type='str', choices=['domain_joined', 'non_domain_joined'], default='domain_joined'),
        ccg_plugins=dict(type='list', elements='str', default=[]),
        connect_timeout=dict(type='int', default=3000),
        node_names=dict(type='dict', default={}),
        fail_on=dict(type='str', choices=['fail', 'warn', 'never'], default='fail'),
        cluster=CLUSTER_OPTION,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **winrm_module_kwargs())
    params = module.params
    if params['connect_timeout'] < 1:
        module.fail_json(msg='connect_timeout must be at least 1 millisecond')
    try:
        plugin_guids = [preflight.ccg_plugin_guid(value) for value in params['ccg_plugins']]
    except ValueError as exc:
        module.fail_json(msg='%s; nothing was run' % exc)
    runner = runner_for(module)
    transport = cluster_transport(module)
    data = {
        'domain': params['domain'],
        'domain_controllers': params['domain_controllers'] or [],
        'ports': list(preflight.DEFAULT_PORTS),
        'timeout_ms': params['connect_timeout'],
        'ccg_plugin_guids': plugin_guids,
    }
    outcomes = runner.run_all(PREFLIGHT_FACTS, lambda entry: data)

    nodes = []
    for outcome in outcomes:
        entry = outcome['host']
        if not outcome['ok']:
            nodes.append({'host': entry, 'failed': True, 'verdict': preflight.FAIL, 'msg': outcome['error'],
                          'error_kind': outcome['error_kind'], 'error_details': outcome['error_details']})
            continue
        facts = outcome['result'] or {}
        node_name, problem = node_name_for(module, entry, facts.get('computer_name'))
        k8s_node = None
        if transport is not None:
            if problem:
                k8s_node = {'found': False, 'name': node_name, 'labels': {}}
            else:
                from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError
                from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.nodes import node_info
                try:
                    k8s_node = node_info(transport, node_name)
                except (K8sError, ValueError) as exc:
                    nodes.append({'host': entry, 'failed': True, 'verdict': preflight.FAIL,
                                  'msg': 'reading Node %s: %s' % (node_name, exc), 'error_kind': 'kubernetes',
                                  'error_details': {}})
                    continue
        evaluated = preflight.evaluate(facts, mode=params['mode'], domain=params['domain'], node_name=node_name,
                                       k8s_node=k8s_node, ccg_plugins=plugin_guids)
        nodes.append({
            'host': entry,
            'failed': False,
            'computer_name': facts.get('computer_name'),
            'node_name': node_name,
            'verdict': evaluated['verdict'],
            'checks': evaluated['checks'],
            'os': facts.get('os'),
            'runtime': evaluated['runtime'],
            'kubelet_version': evaluated['kubelet_version'],
            'domain': facts.get('domain'),
            'ccg': facts.get('ccg'),
            'facts': facts,
        })

    answered = [n['verdict'] for n in nodes if not n['failed']]
    result = dict(changed=False, nodes=nodes, verdict=preflight.verdict_of(
        [{'status': v} for v in answered] or [{'status': preflight.FAIL}]))
    if any(n['failed'] for n in nodes):
        module.fail_json(msg=failure_message(nodes), **result)
    if preflight.should_fail(answered, params['fail_on']):
        limit = (preflight.FAIL,) if params['fail_on'] == 'fail' else (preflight.FAIL, preflight.WARN)
        problems, hosts = [], set()
        for node in nodes:
            for item in node['checks']:
                if item['status'] in limit:
                    hosts.add(node['host'])
                    problems.append('%s: %s: %s (fix: %s)' % (node['host'], item['name'], item['detail'], item['fix']))
        module.fail_json(msg='preflight found problems on %d of %d nodes: %s' % (len(hosts), len(nodes), '; '.join(problems)),
                         **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
