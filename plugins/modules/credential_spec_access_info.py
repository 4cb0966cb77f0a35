#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: credential_spec_access_info
short_description: Ask the API server whether service accounts may use GMSA credential specs
version_added: 0.1.0
description:
  - For each service account listed, asks the API server's authorizer, with the same
    C(LocalSubjectAccessReview) the gMSA admission webhook (upstream v0.13.0) sends when a pod is created, whether
    C(system:serviceaccount:<namespace>:<name>), member of the groups C(system:serviceaccounts) and
    C(system:serviceaccounts:<namespace>), may C(use) the C(gmsacredentialspecs.windows.k8s.io)
    resource of that name in that namespace. A permission granted to one of those groups therefore counts, as it
    does for the webhook. The answer covers every way the permission can be granted
    (RoleBindings, ClusterRoleBindings, other authorizers), not only the bindings of
    M(winkube.gmsa.credential_spec_rbac).
  - Read-only; one POST per service account, nothing is stored by the API server.
  - Takes the same O(bindings) as M(winkube.gmsa.credential_spec_rbac).
author:
  - winkube.gmsa contributors (@winkube)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.k8s_connection
options:
  bindings:
    description: Credential specs and the service accounts to ask about, per namespace.
    type: list
    elements: dict
    required: true
    suboptions:
      credential_spec:
        description: Name of the GMSACredentialSpec.
        type: str
        required: true
      use_by:
        description: Service accounts to ask about, per namespace.
        type: list
        elements: dict
        default: []
        suboptions:
          namespace:
            description: Namespace of the service accounts.
            type: str
            required: true
          service_accounts:
            description: Names of the service accounts.
            type: list
            elements: str
            required: true
attributes:
  action_group:
    support: full
    membership:
      - winkube.gmsa.k8s
  check_mode:
    support: full
    details: The module never changes anything; it asks the same questions in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks HTTPS to the Kubernetes API server.
notes:
  - The identity running the module needs C(create) on C(localsubjectaccessreviews) (authorization.k8s.io) in
    each namespace asked about.
seealso:
  - module: winkube.gmsa.credential_spec_rbac
"""

EXAMPLES = r"""
- name: May the pods of web/webapp use gmsa-webapp1?
  winkube.gmsa.credential_spec_access_info:
    bindings:
      - credential_spec: gmsa-webapp1
        use_by:
          - namespace: web
            service_accounts: [default, webapp]
  register: access

- name: Show who may not
  ansible.builtin.debug:
    msg: "{{ access.results | rejectattr('allowed') | map(attribute='user') | list }}"
"""

RETURN = r"""
results:
  description: One answer per service account, in the order of O(bindings).
  returned: always
  type: list
  elements: dict
  contains:
    credential_spec:
      description: The credential spec asked about.
      type: str
    namespace:
      description: Namespace of the service account.
      type: str
    service_account:
      description: Name of the service account.
      type: str
    user:
      description: The user name asked about.
      type: str
      sample: system:serviceaccount:web:webapp
    groups:
      description: The groups sent with the user, as the webhook sends them.
      type: list
      elements: str
      sample: ['system:serviceaccounts', 'system:serviceaccounts:web']
    allowed:
      description: Whether the API server's authorizer allows the verb C(use).
      type: bool
    reason:
      description: The authorizer's reason, often naming the binding that allows it (empty when none is given).
      type: str
      sample: 'RBAC: allowed by RoleBinding "winkube-gmsa-use-gmsa-webapp1/web" of ClusterRole "winkube-gmsa-use-gmsa-webapp1" to ServiceAccount "webapp/web"'
    evaluation_error:
      description: An error the authorizer met while deciding (the answer may then be incomplete).
      type: str
all_allowed:
  description: Whether every service account asked about is allowed.
  returned: always
  type: bool
api_requests:
  description: Requests sent to the API server.
  returned: always
  type: int
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError, connect, require_kubernetes
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.models import names as n

REVIEWS = '/apis/authorization.k8s.io/v1/namespaces/%s/localsubjectaccessreviews'


def user_of(namespace, service_account):
    return 'system:serviceaccount:%s:%s' % (namespace, service_account)


def groups_of(namespace):
    """The groups of a service account's user info (k8s.io/apiserver serviceaccount.MakeGroupNames)."""
    return ['system:serviceaccounts', 'system:serviceaccounts:%s' % namespace]


def review(namespace, service_account, credential_spec):
    """The LocalSubjectAccessReview the gMSA webhook sends for a pod of this service account.

    Upstream (kube_client.go, isAuthorizedToUseCredSpec) sends serviceaccount.UserInfo(ns, name, ""): the user
    name and its groups, an empty UID and no extra, so the same fields go here."""
    return {
        'apiVersion': 'authorization.k8s.io/v1',
        'kind': 'LocalSubjectAccessReview',
        'metadata': {'namespace': namespace},
        'spec': {
            'user': user_of(namespace, service_account),
            'groups': groups_of(namespace),
            'resourceAttributes': {'namespace': namespace, 'verb': 'use', 'group': 'windows.k8s.io',
                                   'resource': 'gmsacredentialspecs', 'name': credential_spec},
        },
    }


def questions(bindings):
    """(credential spec, namespace, service account) triples; raises ValueError naming every bad name."""
    out, problems = [], []
    for binding in bindings:
        problems.append(n.dns1123_subdomain_error(binding['credential_spec'], 'credential_spec'))
        for use in binding['use_by'] or []:
            problems.append(n.dns1123_label_error(use['namespace'], 'namespace'))
            for account in use['service_accounts']:
                problems.append(n.dns1123_subdomain_error(account, 'service account'))
                out.append((binding['credential_spec'], use['namespace'], account))
    problems = [p for p in problems if p]
    if problems:
        raise ValueError('; '.join(problems))
    return out


def main():
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            bindings=dict(type='list', elements='dict', required=True, options=dict(
                credential_spec=dict(type='str', required=True),
                use_by=dict(type='list', elements='dict', default=[], options=dict(
                    namespace=dict(type='str', required=True),
                    service_accounts=dict(type='list', elements='str', required=True),
                )),
            )),
        ),
        supports_check_mode=True,
    )
    try:
        asked = questions(module.params['bindings'])
    except ValueError as exc:
        module.fail_json(msg='invalid bindings, nothing was asked: %s' % exc)
    require_kubernetes(module)
    results, transport = [], None
    try:
        transport = connect(module.params)
        for spec, namespace, account in asked:
            answer = transport.request('POST', REVIEWS % namespace, body=review(namespace, account, spec))
            status = answer.get('status') or {}
            result = {'credential_spec': spec, 'namespace': namespace, 'service_account': account,
                      'user': user_of(namespace, account), 'groups': groups_of(namespace),
                      'allowed': bool(status.get('allowed')) and not status.get('denied'),
                      'reason': status.get('reason') or ''}
            if status.get('evaluationError'):
                result['evaluation_error'] = status['evaluationError']
            results.append(result)
    except K8sError as exc:
        module.fail_json(msg=str(exc), results=results, api_requests=transport.count if transport else 0)
    module.exit_json(changed=False, results=results, all_allowed=all(r['allowed'] for r in results),
                     api_requests=transport.count)


if __name__ == '__main__':
    main()
