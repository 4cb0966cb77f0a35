#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_agent
short_description: Install or remove the gMSA node agent, a HostProcess DaemonSet on every Windows node
version_added: 0.1.0
description:
  - Installs (or removes) a DaemonSet pinned to the Windows nodes (C(nodeSelector kubernetes.io/os=windows), every
    taint tolerated) whose pods are HostProcess containers running as C(NT AUTHORITY\SYSTEM) with the host network.
    On every Windows node, also those that join later, the agent sets C(EnableCompartmentNamespace) = V(1) under
    C(HKLM\SYSTEM\CurrentControlSet\Services\hns\State), gathers the read-only preflight facts of
    M(winkube.gmsa.node_preflight_info) (Windows build, container runtime, DNS, domain controller ports, ccg.exe plugin)
    and publishes them in a ConfigMap of its own per node, labelled C(winkube.gmsa/node-agent-report=v1).
  - With O(wait), waits until every Windows node published a report for the current configuration, then returns the
    preflight checks of each node (evaluated here by the same code as node_preflight_info), the gMSA pods that started
    before the agent set the registry value on their node, and fails per O(fail_on).
  - With O(refresh), asks the agents of the listed computers to purge their SYSTEM logon session's Kerberos tickets
    (C(klist -li 0x3e7 purge)) and to run C(Test-ADServiceAccount) for each gMSA, and waits for their answers.
  - Objects (all labelled C(app.kubernetes.io/managed-by=winkube.gmsa)) - Namespace O(namespace) (Pod Security
    level C(privileged), which HostProcess pods need), ServiceAccount, Role and RoleBinding C(gmsa-node-agent) (get,
    create and patch of ConfigMaps in O(namespace), nothing else), ConfigMaps C(gmsa-node-agent-scripts) (the
    constant PowerShell) and C(gmsa-node-agent-config) (the configuration, handed to the agent as environment
    variables), DaemonSet C(gmsa-node-agent). See C(docs/node-agent.md).
  - B(Not verified on Windows.) The collection's tests check the objects, RBAC and scheduling against a real API
    server with fake (kwok) nodes, and the reading of reports written by the tests; no HostProcess container and
    no PowerShell ran in them.
author:
  - winkube.gmsa maintainers (@winkube)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.k8s_connection
options:
  state:
    description: V(present) installs or updates the agent; V(absent) deletes its namespace and everything in it.
    type: str
    choices: [present, absent]
    default: present
  namespace:
    description: Namespace of the agent and its reports (created, and deleted with O(state=absent)).
    type: str
    default: winkube-gmsa-node-agent
  image:
    description:
      - Container image of the agent. The default has no OS layer and runs on every Windows Server version; the
        agent uses the node's own C(powershell.exe). Point it at your mirror in air-gapped clusters.
    type: str
    default: mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:v1.0.0
  image_pull_secrets:
    description: Names of Secrets in O(namespace) to pull O(image) with.
    type: list
    elements: str
    default: []
  mode:
    description: Node mode, as in M(winkube.gmsa.node_preflight_info).
    type: str
    choices: [domain_joined, portable, non_domain_joined]
    default: domain_joined
  domain:
    description: DNS name of the domain the nodes must reach; default the node's own domain.
    type: str
  ccg_plugins:
    description: ccg.exe plugins the nodes need (V(azure_key_vault), V(aws) or a CLSID), as in node_preflight_info.
    type: list
    elements: str
    default: []
  registry_fix:
    description: Whether the agent sets EnableCompartmentNamespace (V(false) only reads and reports it).
    type: bool
    default: true
  interval:
    description: Seconds between two runs of the agent on a node (at least 30).
    type: int
    default: 300
  api_server:
    description:
      - URL of the API server as the nodes reach it from the host network. Default the in-cluster service
        (C(KUBERNETES_SERVICE_HOST)), which needs a working service proxy on the Windows host.
    type: str
  wait:
    description:
      - Wait for a current report of every Windows node. In check mode the reports there are are read once,
        without waiting.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the reports.
    type: int
    default: 600
  fail_on:
    description: V(fail) fails when a node's verdict is V(fail), V(warn) also on V(warn), V(never) only reports.
    type: str
    choices: [fail, warn, never]
    default: fail
  refresh:
    description: Ask the agents of these computers to purge their machine tickets and test the gMSAs.
    type: dict
    suboptions:
      computers:
        description: sAMAccountNames of the computers just added to the host group (C(WIN1$)).
        type: list
        elements: str
        required: true
      gmsas:
        description: The gMSAs the nodes should be able to use.
        type: list
        elements: str
        default: []
      purge:
        description: Whether to purge the tickets (V(false) only tests).
        type: bool
        default: true
      request_id:
        description: Identifies the request; an agent answers each id once. Default a new one every run.
        type: str
  force_conflicts:
    description: Take over fields another field manager owns.
    type: bool
    default: false
attributes:
  action_group:
    support: full
    membership:
      - winkube.gmsa.k8s
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks HTTPS to the Kubernetes API server.
notes:
  - Needs Kubernetes 1.26 or later and containerd 1.6 or later on the nodes (HostProcess containers).
seealso:
  - module: winkube.gmsa.node_preflight_info
  - module: winkube.gmsa.node_registry
"""

EXAMPLES = r"""
- name: Install the node agent and wait for every Windows node's report
  winkube.gmsa.node_agent:
    kubeconfig: ~/.kube/config
    domain: contoso.com
  register: agent

- name: From a mirror, portable nodes with the Azure Key Vault plugin, only report
  winkube.gmsa.node_agent:
    image: registry.example.com/mirror/windows-host-process-containers-base-image:v1.0.0
    mode: portable
    ccg_plugins: [azure_key_vault]
    fail_on: never

- name: Let WIN1 use its new grant now (purge its machine tickets, test the gMSA)
  winkube.gmsa.node_agent:
    refresh:
      computers: [WIN1$]
      gmsas: [WebApp1]

- name: Remove the agent
  winkube.gmsa.node_agent:
    state: absent
"""

RETURN = r"""
nodes:
  description: One entry per Windows Node (only with O(wait)).
  returned: always
  type: list
  elements: dict
  contains:
    node_name:
      description: The Node's name.
      type: str
    reported:
      description: Whether the node's agent published a report.
      type: bool
    current:
      description: Whether the report is for the current configuration.
      type: bool
    computer_name:
      description: Windows computer name from the report.
      type: str
    verdict:
      description: V(pass), V(warn) or V(fail); V(null) without a report.
      type: str
    checks:
      description: The preflight checks (name, status, detail, fix).
      type: list
      elements: dict
    registry:
      description: What the agent saw and wrote (before, after, written).
      type: dict
    fixed_at:
      description: When the agent wrote the registry value (UTC).
      type: str
    pods_to_recreate:
      description: gMSA pods on this node started before RV(nodes[].fixed_at).
      type: list
      elements: dict
    refresh:
      description: The agent's answer to the last refresh request (purged, tests per gMSA).
      type: dict
waiting:
  description: Windows nodes that did not publish a current report (or refresh answer) in time.
  returned: always
  type: list
  elements: str
problems:
  description: "Every failing check, one line each: C(node: check: detail (fix: ...))."
  returned: always
  type: list
  elements: str
pods_to_recreate:
  description: All gMSA pods to recreate, over all nodes.
  returned: always
  type: list
  elements: dict
refresh:
  description: Per node and gMSA, the Test-ADServiceAccount results of the refresh request.
  returned: when O(refresh) was given
  type: list
  elements: dict
  sample: [{node_name: win1, computer_name: WIN1, purged: true, gmsa: WebApp1, ok: true, error: null}]
objects:
  description: The objects and what was done to each (created, updated, deleted, unchanged).
  returned: always
  type: list
  elements: dict
api_requests:
  description: Requests made to the API server.
  returned: always
  type: dict
"""

import time
import uuid

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.engine import run_module
from ansible_collections.winkube.gmsa.plugins.module_utils.node_agent import model
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import preflight


def _ccg_guids(module, names):
    guids = []
    for name in names:
        try:
            guids.append(preflight.ccg_plugin_guid(name))
        except ValueError as exc:
            module.fail_json(msg='ccg_plugins: %s' % exc)
    return guids


def _refresh_rows(results, request_id):
    rows = []
    for entry in results:
        answer = entry.get('refresh') or {}
        if answer.get('request_id') != request_id or not answer.get('listed'):
            continue
        for test in answer.get('tests') or [{'gmsa': None, 'ok': None, 'error': None}]:
            rows.append({'node_name': entry['node_name'], 'computer_name': answer.get('computer_name'),
                         'purged': bool(answer.get('purged')), 'gmsa': test.get('gmsa'), 'ok': test.get('ok'),
                         'error': test.get('error')})
    return rows


def main():
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            namespace=dict(type='str', default=model.DEFAULT_NAMESPACE),
            image=dict(type='str', default=model.DEFAULT_IMAGE),
            image_pull_secrets=dict(type='list', elements='str', default=[], no_log=False),
            mode=dict(type='str', choices=['domain_joined', 'portable', 'non_domain_joined'], default='domain_joined'),
            domain=dict(type='str'),
            ccg_plugins=dict(type='list', elements='str', default=[]),
            registry_fix=dict(type='bool', default=True),
            interval=dict(type='int', default=300),
            api_server=dict(type='str'),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=600),
            fail_on=dict(type='str', choices=['fail', 'warn', 'never'], default='fail'),
            refresh=dict(type='dict', options=dict(
                computers=dict(type='list', elements='str', required=True),
                gmsas=dict(type='list', elements='str', default=[]),
                purge=dict(type='bool', default=True),
                request_id=dict(type='str'),
            )),
            force_conflicts=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    errors = model.check_options(params['namespace'], params['image'], params['interval'])
    if params['api_server'] and not params['api_server'].startswith('https://'):
        errors.append('api_server must be an https:// URL (the agent checks the API server\'s certificate)')
    if errors:
        module.fail_json(msg='node_agent: ' + '; '.join(errors))
    guids = _ccg_guids(module, params['ccg_plugins'])
    namespace = params['namespace']
    config = model.agent_config(mode=params['mode'], domain=params['domain'], ccg_plugin_guids=guids,
                                interval=params['interval'], registry_fix=params['registry_fix'],
                                api_server=params['api_server'])

    computers = (params['refresh'] or {}).get('computers') or []

    def read(engine, request_id, pods=None):
        """One LIST of the Windows nodes, one of the reports (and the pods, when given)."""
        nodes = engine.request('GET', '/api/v1/nodes', query={'labelSelector': model.WINDOWS_SELECTOR}).get('items') or []
        reports = engine.request('GET', '/api/v1/namespaces/%s/configmaps' % namespace,
                                 query={'labelSelector': model.REPORT_SELECTOR}).get('items') or []
        return model.read_reports(nodes, reports, config[1], params['mode'], params['domain'], guids, pods=pods,
                                  request_id=request_id, computers=computers)

    def body(engine):
        if params['state'] == 'absent':
            engine.delete(model.object_refs(namespace), only_managed=True)
            return {'nodes': [], 'waiting': [], 'pods_to_recreate': [], 'problems': []}
        engine.apply(model.desired_objects(namespace, params['image'], config, params['image_pull_secrets']))
        request_id = None
        if params['refresh']:
            refresh = params['refresh']
            request_id = refresh['request_id'] or uuid.uuid4().hex
            engine.apply([model.refresh_request(namespace, request_id, computers, refresh['gmsas'], refresh['purge'])])
        if not params['wait']:
            return {'nodes': [], 'waiting': [], 'pods_to_recreate': [], 'problems': []}
        # check mode reads the reports there are (read-only) without waiting for an agent it did not install
        deadline = time.monotonic() + (0 if module.check_mode else params['wait_timeout'])
        while True:
            dummy, waiting = read(engine, request_id)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(2)
        pods = engine.request('GET', '/api/v1/pods').get('items') or []
        results, waiting = read(engine, request_id, pods)
        extra = {'nodes': results, 'waiting': waiting, 'problems': model.problems(results),
                 'pods_to_recreate': [p for e in results for p in e['pods_to_recreate']]}
        if request_id:
            extra['refresh'] = _refresh_rows(results, request_id)
            extra['request_id'] = request_id
        if waiting and params['fail_on'] != 'never' and not module.check_mode:
            raise K8sError('no current report from the node agent on %s after %ss: is the DaemonSet %s/%s running '
                           'there (kubectl -n %s get pods -o wide; image pull, HostProcess support)?'
                           % (', '.join(waiting), params['wait_timeout'], namespace, model.NAME, namespace))
        verdicts = [e['verdict'] for e in results if e['verdict']]
        if preflight.should_fail(verdicts, params['fail_on']):
            raise K8sError('node agent reports: ' + '; '.join(model.problems(results)))
        return extra

    run_module(module, body)


if __name__ == '__main__':
    main()
