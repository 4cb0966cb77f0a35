#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: credential_spec_rbac
short_description: Let service accounts use GMSA credential specs
version_added: 0.1.0
description:
  - For each credential spec, manages a ClusterRole C(winkube-gmsa-use-<credential spec>) granting the verb
    C(use) on that one C(gmsacredentialspecs.windows.k8s.io) resource, and in each listed namespace a
    RoleBinding of the same name binding the listed service accounts to it. The gMSA webhook admits a pod
    only when its service account has that permission.
  - Many credential specs per call. Each kind is read with one LIST and only differing objects are written.
  - Every name is validated (DNS-1123) and every namespace checked before anything is written.
author:
  - winkube.gmsa contributors (@winkube)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.k8s_connection
options:
  state:
    description:
      - V(present) creates or updates the ClusterRoles and RoleBindings.
      - V(absent) deletes the ClusterRole and every RoleBinding made by this module for the listed credential
        specs (O(bindings[].use_by) is then optional).
    type: str
    choices: [present, absent]
    default: present
  bindings:
    description: Credential specs and who may use them.
    type: list
    elements: dict
    required: true
    suboptions:
      credential_spec:
        description: Name of the GMSACredentialSpec.
        type: str
        required: true
      use_by:
        description: Service accounts allowed to use it, per namespace.
        type: list
        elements: dict
        default: []
        suboptions:
          namespace:
            description: Namespace of the service accounts and of the RoleBinding.
            type: str
            required: true
          service_accounts:
            description: Names of the service accounts.
            type: list
            elements: str
            required: true
  missing_namespace:
    description: What to do when a namespace in O(bindings[].use_by) does not exist.
    type: str
    choices: [fail, create]
    default: fail
  prune:
    description:
      - Delete RoleBindings made by this module for the listed credential specs in namespaces no longer listed.
    type: bool
    default: false
  force_conflicts:
    description: Take over fields that another field manager set to a different value.
    type: bool
    default: false
  return_unchanged:
    description:
      - Whether RV(objects) lists the objects that needed no change too.
      - V(false) lists only the objects created, updated, deleted or skipped, which keeps the result small when
        the task holds thousands of objects (the roles of this collection set it). C(changed) and the diff are
        the same either way.
    type: bool
    default: true
  write_concurrency:
    description:
      - How many writes (server-side applies) to the API server are in flight at once.
      - Results, the order of RV(objects) and the error reported when the API server refuses an object are the
        same as with V(1) (one at a time); after a refused object no new write is started, writes already
        started finish and are listed in RV(objects) of the failure.
    type: int
    default: 4
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
  - An unchanged call costs three LISTs (namespaces, ClusterRoles, RoleBindings), plus one with O(prune=true).
seealso:
  - module: winkube.gmsa.credential_spec
"""

EXAMPLES = r"""
- name: Let two service accounts in web use gmsa-webapp1
  winkube.gmsa.credential_spec_rbac:
    bindings:
      - credential_spec: gmsa-webapp1
        use_by:
          - namespace: web
            service_accounts: [default, webapp]
    missing_namespace: create
    prune: true

- name: Remove all of it for gmsa-webapp1
  winkube.gmsa.credential_spec_rbac:
    state: absent
    bindings:
      - credential_spec: gmsa-webapp1
"""

RETURN = r"""
cluster_roles:
  description: Names of the ClusterRoles handled.
  returned: always
  type: list
  elements: str
  sample: [winkube-gmsa-use-gmsa-webapp1]
objects:
  description:
    - Every object handled, with the action taken (created, updated, deleted, unchanged, skipped).
    - With O(return_unchanged=false), only those not unchanged.
  returned: always
  type: list
  elements: dict
  sample: [{api_version: rbac.authorization.k8s.io/v1, kind: RoleBinding, namespace: web,
            name: winkube-gmsa-use-gmsa-webapp1, action: created}]
api_requests:
  description: Requests sent to the API server (total, per HTTP method, writes) and objects handled.
  returned: always
  type: dict
  sample: {requests: 3, by_method: {GET: 3}, writes: 0, objects: 2}
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.engine import run_module
from ansible_collections.winkube.gmsa.plugins.module_utils.models import names as n
from ansible_collections.winkube.gmsa.plugins.module_utils.models.rbac import RBAC_API, build_rbac

NS = ('v1', 'Namespace')


def main():
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            bindings=dict(type='list', elements='dict', required=True, options=dict(
                credential_spec=dict(type='str', required=True),
                use_by=dict(type='list', elements='dict', default=[], options=dict(
                    namespace=dict(type='str', required=True),
                    service_accounts=dict(type='list', elements='str', required=True),
                )),
            )),
            missing_namespace=dict(type='str', choices=['fail', 'create'], default='fail'),
            prune=dict(type='bool', default=False),
            force_conflicts=dict(type='bool', default=False),
            write_concurrency=dict(type='int', default=4),
            return_unchanged=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problems, objects, specs = [], [], []
    listed = set()
    for binding in params['bindings']:
        spec = binding['credential_spec']
        if spec in listed:
            problems.append('credential spec %r is listed twice' % spec)
        listed.add(spec)
        specs.append(spec)
        try:
            objects.extend(build_rbac(spec, binding['use_by'] if params['state'] == 'present' else []))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        module.fail_json(msg='invalid bindings, nothing was changed: ' + '; '.join(problems))
    roles = [o for o in objects if o['kind'] == 'ClusterRole']
    bindings = [o for o in objects if o['kind'] == 'RoleBinding']
    selector = '%s,%s in (%s)' % (n.MANAGED_SELECTOR, n.CREDSPEC_LABEL,
                                  ','.join(sorted(set(n.credspec_label_value(s) for s in specs))))

    def ours(engine):
        """Our RoleBindings of the listed credential specs, in every namespace (one LIST)."""
        names = set(n.role_binding_name(s) for s in specs)
        return [(RBAC_API, 'RoleBinding', item['metadata']['namespace'], item['metadata']['name'])
                for item in engine.list(RBAC_API, 'RoleBinding', label_selector=selector)
                if item['metadata']['name'] in names]

    def present(engine):
        namespaces = sorted(set(b['metadata']['namespace'] for b in bindings))
        ns_refs = [NS + (None, ns) for ns in namespaces]
        engine.fetch(ns_refs, mode='scope' if len(ns_refs) > 1 else 'auto')
        missing = [ref[3] for ref in ns_refs if engine.cache.get(ref) is None]
        if missing and params['missing_namespace'] == 'fail':
            raise K8sError('namespace(s) %s do not exist; create them or set missing_namespace=create. Nothing '
                           'was changed.' % ', '.join(missing))
        if missing:
            engine.apply([{'apiVersion': 'v1', 'kind': 'Namespace',
                           'metadata': {'name': ns, 'labels': n.managed_labels()}} for ns in missing])
        engine.apply(roles)
        engine.apply(bindings)
        if params['prune']:
            wanted = set((b['metadata']['namespace'], b['metadata']['name']) for b in bindings)
            stale = [ref for ref in ours(engine) if (ref[2], ref[3]) not in wanted]
            engine.delete(stale, only_managed=True)
        return {'cluster_roles': [r['metadata']['name'] for r in roles]}

    def absent(engine):
        engine.delete(ours(engine), only_managed=True)
        engine.delete([(RBAC_API, 'ClusterRole', None, n.cluster_role_name(s)) for s in specs], only_managed=True)
        return {'cluster_roles': [n.cluster_role_name(s) for s in specs]}

    run_module(module, present if params['state'] == 'present' else absent)


if __name__ == '__main__':
    main()
