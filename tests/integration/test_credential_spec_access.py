"""credential_spec_access against the real kube-apiserver: the authorizer's answer for a service account bound
by credential_spec_rbac, one bound only by a ClusterRoleBinding made elsewhere, and one not bound at all."""

from __future__ import annotations

import json

NS = 'access-web'
SPEC = 'gmsa-access1'
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: rbac
      winkube.gmsa.credential_spec_rbac:
        kubeconfig: "{{ kubeconfig }}"
        bindings: [{credential_spec: gmsa-access1, use_by: [{namespace: access-web, service_accounts: [bound]}]}]
        missing_namespace: create
    - name: access
      winkube.gmsa.credential_spec_access_info:
        kubeconfig: "{{ kubeconfig }}"
        bindings: "{{ ask }}"
"""


def test_bound_elsewhere_bound_and_unbound(run_playbook, k8s_lab):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    rbac = client.RbacAuthorizationV1Api(k8s_lab.api_client())
    binding = {'metadata': {'name': 'access-test-cluster-wide'},
               'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': 'winkube-gmsa-use-' + SPEC},
               'subjects': [{'kind': 'ServiceAccount', 'name': 'elsewhere', 'namespace': NS}]}
    try:
        rbac.create_cluster_role_binding(binding)
    except ApiException as exc:
        if exc.status != 409:
            raise
    try:
        ask = [{'credential_spec': SPEC, 'use_by': [{'namespace': NS, 'service_accounts': ['bound', 'elsewhere', 'nobody']}]},
               {'credential_spec': 'gmsa-other', 'use_by': [{'namespace': NS, 'service_accounts': ['bound']}]}]
        result = run_playbook(PLAY, extra_vars={'kubeconfig': k8s_lab.kubeconfig, 'ask': ask})
        assert result.rc == 0, result
        access = result.results['access']
        assert not access['changed'] and access['all_allowed'] is False
        answers = [(a['credential_spec'], a['service_account'], a['allowed']) for a in access['results']]
        assert answers == [(SPEC, 'bound', True), (SPEC, 'elsewhere', True), (SPEC, 'nobody', False),
                           ('gmsa-other', 'bound', False)], access
        assert access['results'][0]['user'] == f'system:serviceaccount:{NS}:bound'
        assert 'RoleBinding' in access['results'][0]['reason'] and 'ClusterRoleBinding' in access['results'][1]['reason'], access
        checked = run_playbook(PLAY, extra_vars={'kubeconfig': k8s_lab.kubeconfig, 'ask': ask}, check=True)
        assert checked.rc == 0 and checked.results['access']['results'] == access['results'], checked  # same answers
    finally:
        rbac.delete_cluster_role_binding('access-test-cluster-wide')


def test_bad_names_are_refused_before_asking(run_playbook, k8s_lab):
    ask = [{'credential_spec': 'Bad_Name', 'use_by': [{'namespace': 'Web', 'service_accounts': ['ok']}]}]
    play = PLAY[:PLAY.index('    - name: rbac')] + PLAY[PLAY.index('    - name: access'):]
    result = run_playbook(play, extra_vars={'kubeconfig': k8s_lab.kubeconfig, 'ask': ask})
    assert result.rc != 0, result
    message = result.results['access']['msg']
    assert message.startswith('invalid bindings, nothing was asked: '), message
    assert "credential_spec 'Bad_Name'" in message and "namespace 'Web'" in message, json.dumps(message)
