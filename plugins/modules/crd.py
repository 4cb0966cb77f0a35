#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: crd
short_description: Install, upgrade or remove the GMSACredentialSpec CustomResourceDefinition
version_added: 0.1.0
description:
  - Manages C(gmsacredentialspecs.windows.k8s.io), the cluster-scoped CustomResourceDefinition of
    GMSACredentialSpec resources, with the same content as upstream windows-gmsa v0.13.0 (C(v1) served and
    stored, C(v1alpha1) served and deprecated, the same schema for both, no conversion webhook).
  - Upgrades apply the definition in place with server-side apply. Unlike upstream's deploy script, which
    deletes and recreates the CRD (and with it every credential spec), existing credential specs are kept.
  - Removal refuses while credential specs exist unless O(force=true), because deleting the CRD deletes them.
author:
  - winkube.gmsa contributors (@winkube)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.k8s_connection
options:
  state:
    description:
      - V(present) installs or upgrades the CRD, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - With O(state=absent), remove the CRD even though credential specs exist; they are deleted with it.
    type: bool
    default: false
  wait:
    description:
      - Wait until the API server reports the CRD C(Established), so credential specs can be created right
        after this task.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for O(wait).
    type: int
    default: 60
  force_conflicts:
    description:
      - Take over fields that another field manager (for example C(kubectl apply) of upstream's YAML) set
        to a different value. The definition belongs to this module, so this is on by default.
    type: bool
    default: true
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
    details: Returns the objects before and after the change in --diff mode.
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks HTTPS to the Kubernetes API server.
notes:
  - Requests made are returned in RV(api_requests); an unchanged CRD costs one LIST.
seealso:
  - module: winkube.gmsa.credential_spec
  - module: winkube.gmsa.webhook
"""

EXAMPLES = r"""
- name: Install or upgrade the GMSACredentialSpec CRD
  winkube.gmsa.crd:
    kubeconfig: ~/.kube/config

- name: Remove the CRD and every credential spec with it
  winkube.gmsa.crd:
    state: absent
    force: true
"""

RETURN = r"""
name:
  description: Name of the CustomResourceDefinition.
  returned: always
  type: str
  sample: gmsacredentialspecs.windows.k8s.io
established:
  description: Whether the CRD was seen C(Established) (always false in check mode or with O(wait=false)).
  returned: state is present
  type: bool
  sample: true
credential_specs:
  description: Names of the credential specs that existed when removal was asked for.
  returned: state is absent
  type: list
  elements: str
  sample: [gmsa-webapp1]
objects:
  description: Every object handled, with the action taken (created, updated, deleted, unchanged).
  returned: always
  type: list
  elements: dict
  sample: [{api_version: apiextensions.k8s.io/v1, kind: CustomResourceDefinition,
            name: gmsacredentialspecs.windows.k8s.io, action: created}]
api_requests:
  description: Requests sent to the API server (total, per HTTP method, writes) and objects handled.
  returned: always
  type: dict
  sample: {requests: 2, by_method: {GET: 1, PATCH: 1}, writes: 1, objects: 1}
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.engine import run_module
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.waiter import crd_established, wait_crd_established
from ansible_collections.winkube.gmsa.plugins.module_utils.models.crd import (
    API_VERSION,
    CRD_API_VERSION,
    CRD_NAME,
    KIND,
    build_crd,
)


def main():
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            force=dict(type='bool', default=False),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=60),
            force_conflicts=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def body(engine):
        ref = (CRD_API_VERSION, 'CustomResourceDefinition', None, CRD_NAME)
        if params['state'] == 'present':
            engine.apply([build_crd()])
            established = False
            if params['wait'] and not module.check_mode:
                if not crd_established(engine.cache.get(ref))[0]:  # the LIST or apply may have shown it already
                    wait_crd_established(engine, CRD_NAME, params['wait_timeout'])
                established = True
            return {'name': CRD_NAME, 'established': established}
        if engine.current(ref) is None:
            engine.delete([ref])
            return {'name': CRD_NAME, 'credential_specs': []}
        specs = [item['metadata']['name'] for item in engine.list(API_VERSION, KIND)]
        if specs and not params['force']:
            raise K8sError('%d credential spec(s) exist (%s); deleting the CRD would delete them. Remove them '
                           'first or set force=true.' % (len(specs), ', '.join(sorted(specs)[:20])))
        engine.delete([ref])
        return {'name': CRD_NAME, 'credential_specs': sorted(specs)}

    run_module(module, body)


if __name__ == '__main__':
    main()
