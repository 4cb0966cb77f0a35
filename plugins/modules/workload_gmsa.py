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
author:
  - winkube.gmsa contributors (@winkube)
extends_documentation_fragment:
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
  force_conflicts:
    description:
      - Take the field over when another field manager set it to a different value (for example a manifest
        applied with C(kubectl apply --server-side)).
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it would have, without changing anything.
    support: full
    details: Changes are sent to the API server as server-side dry-run requests.
  diff_mode:
    description: Returns the workloads before and after the change in --diff mode.
    support: full
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.connection_spec import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.engine import ref_text, run_module
from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    dns1123_label_error,
    dns1123_subdomain_error,
)


def _windows_options(credential_spec):
    return {'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': credential_spec}}}


def build_partials(workloads, state):
    """One partial apply object per workload (only our field), plus the containers each one needs."""
    problems, partials, containers = [], {}, {}
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
    return problems, partials, containers


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
            )),
            force_conflicts=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    problems, partials, containers = build_partials(module.params['workloads'], module.params['state'])
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
        engine.apply([partials[ref] for ref in refs], mode='scope')
        return {'workloads': [ref_text(ref) for ref in refs]}

    run_module(module, body)


if __name__ == '__main__':
    main()
