#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_gmsa
short_description: Point Deployments, StatefulSets and DaemonSets at a GMSA credential spec
version_added: 0.1.0
description:
  - Sets C(securityContext.windowsOptions.gmsaCredentialSpecName) in the pod template of existing workloads,
    at pod level or for one container, with server-side apply of just that field. The rest of the workload
    stays owned by whoever manages it (Helm, kubectl, GitOps), and the change rolls the workload out.
  - With O(state=absent), gives the field up again. It disappears unless another field manager also set it.
  - Workloads are read with one LIST per kind. A missing workload or container fails the task before anything
    is written.
  - Optionally adds the Kubernetes documentation's C(postStart) lifecycle hook that restarts the C(netlogon)
    service until C(nltest.exe /query) reports C(NERR_Success) (see O(workloads[].netlogon_restart_hook)).
author:
  - winkube.gmsa contributors (@winkube)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.k8s_connection
options:
  state:
    description: Whether the reference should be set.
    type: str
    choices: [present, absent]
    default: present
  workloads:
    description: The workloads and the credential spec each should use.
    type: list
    elements: dict
    required: true
    suboptions:
      kind:
        description: Kind of the workload.
        type: str
        choices: [Deployment, StatefulSet, DaemonSet]
        default: Deployment
      namespace:
        description: Namespace of the workload.
        type: str
        required: true
      name:
        description: Name of the workload.
        type: str
        required: true
      credential_spec:
        description: Name of the GMSACredentialSpec; required with O(state=present).
        type: str
      container:
        description: Set the reference for this container only; by default it is set for the whole pod.
        type: str
      netlogon_restart_hook:
        description:
          - Add the C(postStart) hook of the Kubernetes documentation (I(Configure GMSA for Windows Pods and
            containers), Troubleshooting) to O(workloads[].container), or to every container of the pod template
            when no container is given. It runs C(powershell.exe -command "do { Restart-Service -Name netlogon }
            while (...nltest.exe /query... -like '*0x0 NERR_Success*' ...)"), restarting netlogon until the
            container's secure channel is up; use it when C(nltest /sc_reset) repairs pods (see
            M(winkube.gmsa.pod_gmsa_check)).
          - Only the C(lifecycle.postStart) field is applied. A container whose C(postStart) hook another field
            manager set fails the task with a conflict (nothing is written) unless O(force_conflicts=true).
          - V(false) (the default) removes a hook this module added before. Ignored with O(state=absent), which
            removes it too.
        type: bool
        default: false
  force_conflicts:
    description:
      - Take the field over when another field manager set it to a different value (for example a manifest
        applied with C(kubectl apply --server-side)).
    type: bool
    default: false
attributes:
  action_group:
    support: full
    membership:
      - winkube.gmsa.k8s
  check_mode:
    support: full
    details: Changes are sent to the API server as server-side dry-run requests.
  diff_mode:
    support: full
    details: Returns the workloads before and after the change in --diff mode.
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks HTTPS to the Kubernetes API server.
notes:
  - The webhook admits the new pods only when their service account may C(use) the credential spec (see
    M(winkube.gmsa.credential_spec_rbac)).
seealso:
  - module: winkube.gmsa.credential_spec
  - module: winkube.gmsa.credential_spec_rbac
"""

EXAMPLES = r"""
- name: Run the iis container of the web/iis Deployment as WebApp1
  winkube.gmsa.workload_gmsa:
    workloads:
      - namespace: web
        name: iis
        container: iis
        credential_spec: gmsa-webapp1

- name: Run the iis container as WebApp1 and restart netlogon when it starts
  winkube.gmsa.workload_gmsa:
    workloads:
      - namespace: web
        name: iis
        container: iis
        credential_spec: gmsa-webapp1
        netlogon_restart_hook: true

- name: Whole pod of a StatefulSet
  winkube.gmsa.workload_gmsa:
    workloads:
      - kind: StatefulSet
        namespace: sql
        name: mssql
        credential_spec: gmsa-sql
"""

RETURN = r"""
workloads:
  description: The workloads handled, as C(Kind namespace/name).
  returned: always
  type: list
  elements: str
  sample: [Deployment web/iis]
objects:
  description: Every object handled, with the action taken (updated, unchanged).
  returned: always
  type: list
  elements: dict
  sample: [{api_version: apps/v1, kind: Deployment, namespace: web, name: iis, action: updated}]
api_requests:
  description: Requests sent to the API server (total, per HTTP method, writes) and objects handled.
  returned: always
  type: dict
  sample: {requests: 2, by_method: {GET: 1, PATCH: 1}, writes: 1, objects: 1}
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.engine import ref_text, run_module
from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    dns1123_label_error,
    dns1123_subdomain_error,
)


# Kubernetes docs, "Configure GMSA for Windows Pods and containers", Troubleshooting: restart netlogon until the
# secure channel is up (nltest /query reports NERR_Success).
NETLOGON_RESTART_COMMAND = [
    'powershell.exe', '-command',
    "do { Restart-Service -Name netlogon } while ( $($Result = (nltest.exe /query); if ($Result -like "
    "'*0x0 NERR_Success*') {return $true} else {return $false}) -eq $false)",
]


def _windows_options(credential_spec):
    return {'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': credential_spec}}}


def add_netlogon_hooks(partial, container_names):
    """Put the postStart hook on these containers of the partial apply object (merging by container name)."""
    pod = partial.setdefault('spec', {}).setdefault('template', {}).setdefault('spec', {})
    entries = pod.setdefault('containers', [])
    for name in container_names:
        entry = next((e for e in entries if e['name'] == name), None)
        if entry is None:
            entry = {'name': name}
            entries.append(entry)
        entry['lifecycle'] = {'postStart': {'exec': {'command': list(NETLOGON_RESTART_COMMAND)}}}


def build_partials(workloads, state):
    """One partial apply object per workload (only our fields), the containers each one needs, and where the
    netlogon hook goes (ref -> container names, '*' for every container)."""
    problems, partials, containers, hooks = [], {}, {}, {}
    for item in workloads:
        for key, check in (('namespace', dns1123_label_error), ('name', dns1123_subdomain_error)):
            error = check(item[key], key)
            if error:
                problems.append(error)
        if state == 'present':
            error = dns1123_subdomain_error(item.get('credential_spec'), 'credential_spec')
            if error:
                problems.append('%s %s/%s: %s' % (item['kind'], item['namespace'], item['name'], error))
                continue
        ref = ('apps/v1', item['kind'], item['namespace'], item['name'])
        obj = partials.setdefault(ref, {'apiVersion': 'apps/v1', 'kind': item['kind'],
                                        'metadata': {'name': item['name'], 'namespace': item['namespace']}})
        containers.setdefault(ref, [])
        if state == 'absent':
            continue
        if item.get('netlogon_restart_hook'):
            hooks.setdefault(ref, []).append(item.get('container') or '*')
        pod = obj.setdefault('spec', {}).setdefault('template', {}).setdefault('spec', {})
        if item.get('container'):
            if item['container'] in containers[ref]:
                problems.append('%s: container %s listed twice' % (ref_text(ref), item['container']))
            containers[ref].append(item['container'])
            entry = {'name': item['container']}
            entry.update(_windows_options(item['credential_spec']))
            pod.setdefault('containers', []).append(entry)
        else:
            if 'securityContext' in pod:
                problems.append('%s: pod-level credential spec listed twice' % ref_text(ref))
            pod.update(_windows_options(item['credential_spec']))
    return problems, partials, containers, hooks


def main():
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            workloads=dict(type='list', elements='dict', required=True, options=dict(
                kind=dict(type='str', choices=['Deployment', 'StatefulSet', 'DaemonSet'], default='Deployment'),
                namespace=dict(type='str', required=True),
                name=dict(type='str', required=True),
                credential_spec=dict(type='str'),
                container=dict(type='str'),
                netlogon_restart_hook=dict(type='bool', default=False),
            )),
            force_conflicts=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    problems, partials, containers, hooks = build_partials(module.params['workloads'], module.params['state'])
    if problems:
        module.fail_json(msg='invalid workloads, nothing was changed: ' + '; '.join(problems))

    def body(engine):
        refs = list(partials)
        engine.fetch(refs, mode='scope')
        missing = []
        for ref in refs:
            current = engine.cache.get(ref)
            if current is None:
                missing.append('%s does not exist' % ref_text(ref))
                continue
            have = [c.get('name') for c in current['spec']['template']['spec'].get('containers') or []]
            for name in containers[ref]:
                if name not in have:
                    missing.append('%s has no container %s (containers: %s)' % (ref_text(ref), name, ', '.join(have)))
        if missing:
            raise K8sError('; '.join(missing) + '. Nothing was changed.')
        for ref, targets in hooks.items():
            have = [c.get('name') for c in engine.cache[ref]['spec']['template']['spec'].get('containers') or []]
            add_netlogon_hooks(partials[ref], have if '*' in targets else targets)
        engine.apply([partials[ref] for ref in refs], mode='scope')
        return {'workloads': [ref_text(ref) for ref in refs]}

    run_module(module, body)


if __name__ == '__main__':
    main()
