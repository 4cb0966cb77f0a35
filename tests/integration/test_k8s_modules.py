"""The collection's Kubernetes modules through ansible-playbook against the real local API server.

Every result is read back from the API server with the kubernetes client; the modules' own return values
are only used for changed/diff/request counts. Admission goes through the lab's webhook process
(lab/k8s/README.md: webhook configurations use clientConfig.url in the lab).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from kubernetes import client  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from fixtures_k8s import park_gmsa_webhooks, restore_gmsa_webhooks  # noqa: E402

from cryptography import x509

REPO = Path(__file__).resolve().parents[2]
K8S_DIR = REPO / 'lab' / 'k8s'
CRD = 'gmsacredentialspecs.windows.k8s.io'
APPS = 'winkube-apps'
HOOK_NS = 'winkube-gmsa-url'
HOOK = 'gmsa-webhook-url'
CREDSPEC = {
    'CmsPlugins': ['ActiveDirectory'],
    'DomainJoinConfig': {
        'Sid': 'S-1-5-21-2126449477-2524075714-3094792973', 'MachineAccountName': 'WebApp1',
        'Guid': '244818ae-87ac-4fcd-92ec-e79e5252348a', 'DnsTreeName': 'contoso.test',
        'DnsName': 'contoso.test', 'NetBiosName': 'CONTOSO',
    },
    'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': [
        {'Name': 'WebApp1', 'Scope': 'contoso.test'}, {'Name': 'WebApp1', 'Scope': 'CONTOSO'}]},
}

HEADER = """
- hosts: localhost
  gather_facts: false
  environment:
    K8S_AUTH_KUBECONFIG: "{{ kubeconfig }}"
  tasks:
"""


def play(tasks: str) -> str:
    return HEADER + '\n'.join('    ' + line for line in tasks.strip('\n').splitlines()) + '\n'


def wait_for(predicate, timeout=30, interval=0.3, what='condition'):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f'timed out after {timeout}s waiting for {what} (last: {last!r})')


@pytest.fixture(scope='module')
def api(k8s_lab):
    return k8s_lab.api_client()


@pytest.fixture
def run(run_playbook, k8s_lab):
    def _run(tasks, extra=None, **kwargs):
        variables = dict(k8s_lab.ansible_vars())
        variables.update(extra or {})
        return run_playbook(play(tasks), extra_vars=variables, **kwargs)
    return _run


def custom(api):
    return client.CustomObjectsApi(api)


def get_credspec(api, name):
    try:
        return custom(api).get_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def ensure_namespace(api, name, service_accounts=()):
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({'metadata': {'name': name}})
    except ApiException as exc:
        assert exc.status == 409
    for sa in service_accounts:
        try:
            core.create_namespaced_service_account(name, {'metadata': {'name': sa}})
        except ApiException as exc:
            assert exc.status == 409


def gmsa_pod(name, service_account, credspec='gmsa-webapp1', container_only=False):
    options = {'windowsOptions': {'gmsaCredentialSpecName': credspec}}
    spec = {
        'serviceAccountName': service_account,
        'nodeSelector': {'kubernetes.io/os': 'windows'},
        'containers': [{'name': 'app', 'image': 'example/iis:ltsc2019'},
                       {'name': 'sidecar', 'image': 'example/log:ltsc2019'}],
    }
    if container_only:
        spec['containers'][0]['securityContext'] = options
    else:
        spec['securityContext'] = options
    return {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': name}, 'spec': spec}


CRD_TASK = """
- name: crd
  winkube.gmsa.crd: {}
"""

SPEC_TASK = """
- name: specs
  winkube.gmsa.credential_spec:
    credential_specs:
      - name: gmsa-webapp1
        credspec: "{{ credspec | to_json }}"
      - name: gmsa-webapp2
        credspec: "{{ credspec2 }}"
"""


def spec_vars():
    second = json.loads(json.dumps(CREDSPEC))
    second['DomainJoinConfig']['MachineAccountName'] = 'WebApp2'
    second['ActiveDirectoryConfig']['GroupManagedServiceAccounts'] = [{'Name': 'WebApp2', 'Scope': 'CONTOSO'}]
    return {'credspec': CREDSPEC, 'credspec2': second}


# ------------------------------------------------------------------------------------------------------------
def test_crd_established_idempotent_and_check_mode(run, api):
    first = run(CRD_TASK)
    assert first.rc == 0, first
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(CRD)
    assert any(c.type == 'Established' and c.status == 'True' for c in crd.status.conditions)
    assert crd.spec.scope == 'Cluster' and crd.spec.group == 'windows.k8s.io'
    versions = {v.name: v for v in crd.spec.versions}
    assert versions['v1'].served and versions['v1'].storage
    assert versions['v1alpha1'].served and not versions['v1alpha1'].storage and versions['v1alpha1'].deprecated
    schema = api.sanitize_for_serialization(versions['v1'])['schema']['openAPIV3Schema']
    props = schema['properties']['credspec']['properties']
    assert set(props) == {'ActiveDirectoryConfig', 'CmsPlugins', 'DomainJoinConfig'}
    assert set(props['ActiveDirectoryConfig']['properties']['HostAccountConfig']['properties']) == {
        'PluginGUID', 'PluginInput', 'PortableCcgVersion'}
    assert crd.metadata.annotations['api-approved.kubernetes.io'].endswith('689-windows-gmsa')

    second = run(CRD_TASK)
    assert second.rc == 0 and not second.changed, second
    assert second.results['crd']['api_requests']['writes'] == 0
    assert second.results['crd']['api_requests']['requests'] == 1  # one LIST, Established seen in it

    # check mode: removal is predicted (dry-run) but the CRD stays
    check = run("""
- name: remove
  winkube.gmsa.crd: {state: absent, force: true}
""", check=True)
    assert check.rc == 0 and check.changed, check
    assert client.ApiextensionsV1Api(api).read_custom_resource_definition(CRD).metadata.uid == crd.metadata.uid


def test_credential_specs_apply_idempotent_check_and_diff(run, api):
    assert run(CRD_TASK).rc == 0
    first = run(SPEC_TASK, spec_vars())
    assert first.rc == 0, first
    one = get_credspec(api, 'gmsa-webapp1')
    assert one['credspec'] == CREDSPEC
    assert one['metadata']['labels']['app.kubernetes.io/managed-by'] == 'winkube.gmsa'
    fields = [m['manager'] for m in one['metadata']['managedFields']]
    assert 'winkube.gmsa' in fields
    assert get_credspec(api, 'gmsa-webapp2')['credspec']['DomainJoinConfig']['MachineAccountName'] == 'WebApp2'

    second = run(SPEC_TASK, spec_vars())
    assert second.rc == 0 and not second.changed, second
    expected = {'requests': 1, 'by_method': {'GET': 1}, 'writes': 0, 'objects': 2}
    assert second.results['specs']['api_requests'] == expected

    changed_vars = spec_vars()
    changed_vars['credspec2']['DomainJoinConfig']['NetBiosName'] = 'CHANGED'
    version = get_credspec(api, 'gmsa-webapp2')['metadata']['resourceVersion']
    check = run(SPEC_TASK, changed_vars, check=True, diff=True)
    assert check.rc == 0 and check.changed, check
    assert get_credspec(api, 'gmsa-webapp2')['metadata']['resourceVersion'] == version  # untouched
    diff = check.results['specs']['diff']
    assert diff['before']['GMSACredentialSpec gmsa-webapp2']['credspec']['DomainJoinConfig']['NetBiosName'] == 'CONTOSO'
    assert diff['after']['GMSACredentialSpec gmsa-webapp2']['credspec']['DomainJoinConfig']['NetBiosName'] == 'CHANGED'
    assert 'GMSACredentialSpec gmsa-webapp1' not in diff['after']

    real = run(SPEC_TASK, changed_vars, diff=True)
    assert real.rc == 0 and real.changed
    assert get_credspec(api, 'gmsa-webapp2')['credspec']['DomainJoinConfig']['NetBiosName'] == 'CHANGED'
    assert run(SPEC_TASK, spec_vars()).changed


def test_return_unchanged_false_lists_only_the_objects_acted_on(run, api):
    """The roles ask for the objects that changed only: thousands of unchanged ones made a large result."""
    assert run(CRD_TASK).rc == 0
    tasks = """
- name: specs
  winkube.gmsa.credential_spec:
    credential_specs:
      - {name: gmsa-ru1, credspec: "{{ credspec }}"}
      - {name: gmsa-ru2, credspec: "{{ credspec2 }}"}
    return_unchanged: "{{ every }}"
- name: rbac
  winkube.gmsa.credential_spec_rbac:
    bindings:
      - {credential_spec: gmsa-ru1, use_by: [{namespace: winkube-ru, service_accounts: [default]}]}
      - {credential_spec: gmsa-ru2, use_by: "{{ use_by2 }}"}
    missing_namespace: create
    return_unchanged: "{{ every }}"
"""
    before = dict(spec_vars(), every=True, use_by2=[{'namespace': 'winkube-ru', 'service_accounts': ['default']}])
    try:
        assert run(tasks, before).rc == 0
        after = dict(before, use_by2=[{'namespace': 'winkube-ru', 'service_accounts': ['default', 'app']}])
        after['credspec2'] = json.loads(json.dumps(before['credspec2']))
        after['credspec2']['DomainJoinConfig']['NetBiosName'] = 'CHANGED'
        slim = run(tasks, dict(after, every=False), check=True)  # what the roles get: the changed objects only
        assert slim.rc == 0 and slim.changed, slim
        specs, rbac = slim.results['specs'], slim.results['rbac']
        assert [(o['name'], o['action']) for o in specs['objects']] == [('gmsa-ru2', 'updated')], specs
        assert list(specs['contents']) == ['gmsa-ru2'] and specs['names'] == ['gmsa-ru1', 'gmsa-ru2']
        assert [(o['kind'], o['name'], o['action']) for o in rbac['objects']] == [
            ('RoleBinding', 'winkube-gmsa-use-gmsa-ru2', 'updated')], rbac
        full = run(tasks, after, check=True)  # every object, as by default
        assert sorted(o['name'] for o in full.results['specs']['objects']) == ['gmsa-ru1', 'gmsa-ru2']
        assert sorted(full.results['specs']['contents']) == ['gmsa-ru1', 'gmsa-ru2']
        assert len(full.results['rbac']['objects']) == 4, full.results['rbac']  # 2 ClusterRoles, 2 RoleBindings
        assert get_credspec(api, 'gmsa-ru2')['credspec']['DomainJoinConfig']['NetBiosName'] == 'CONTOSO'  # check mode
        assert run(tasks, dict(after, every=False)).changed
        assert get_credspec(api, 'gmsa-ru2')['credspec']['DomainJoinConfig']['NetBiosName'] == 'CHANGED'
        subjects = client.RbacAuthorizationV1Api(api).read_namespaced_role_binding(
            'winkube-gmsa-use-gmsa-ru2', 'winkube-ru').subjects
        assert sorted(s.name for s in subjects) == ['app', 'default']
        none = run(tasks, dict(after, every=False))
        assert none.rc == 0 and not none.changed, none
        assert none.results['specs']['objects'] == [] and none.results['specs']['contents'] == {}
        assert none.results['rbac']['objects'] == []
    finally:
        run("""
- name: rbac
  winkube.gmsa.credential_spec_rbac:
    state: absent
    bindings: [{credential_spec: gmsa-ru1}, {credential_spec: gmsa-ru2}]
- name: specs
  winkube.gmsa.credential_spec:
    state: absent
    credential_specs: [{name: gmsa-ru1}, {name: gmsa-ru2}]
""")


@pytest.mark.parametrize('bad, message', [
    ({'name': 'Bad_Name', 'credspec': CREDSPEC}, 'DNS-1123'),
    ({'name': 'gmsa-nolist', 'credspec': {'CmsPlugins': ['ActiveDirectory'],
                                          'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': []}}},
     'GroupManagedServiceAccounts'),
    ({'name': 'gmsa-yaml', 'credspec': 'CmsPlugins: [ActiveDirectory]\nDomainJoinConfig: {}\n'},
     'ActiveDirectoryConfig is missing'),
])
def test_credential_spec_bad_input_fails_before_writing(run, api, bad, message):
    assert run(CRD_TASK).rc == 0
    result = run("""
- name: specs
  winkube.gmsa.credential_spec:
    credential_specs:
      - name: gmsa-good-but-not-written
        credspec: "{{ credspec }}"
      - "{{ bad }}"
""", {'credspec': CREDSPEC, 'bad': bad})
    assert result.rc != 0
    assert message in result.results['specs']['msg']
    assert get_credspec(api, 'gmsa-good-but-not-written') is None


def test_rbac_bindings_missing_namespace_and_prune(run, api):
    rbac = client.RbacAuthorizationV1Api(api)
    core = client.CoreV1Api(api)
    tasks = """
- name: rbac
  winkube.gmsa.credential_spec_rbac:
    bindings:
      - credential_spec: gmsa-webapp1
        use_by: "{{ use_by }}"
    missing_namespace: "{{ missing }}"
    prune: true
"""
    use_by = [{'namespace': 'winkube-rbac-a', 'service_accounts': ['webapp', 'default']},
              {'namespace': 'winkube-rbac-b', 'service_accounts': ['default']}]
    refused = run(tasks, {'use_by': use_by, 'missing': 'fail'})
    assert refused.rc != 0 and 'winkube-rbac-a' in refused.results['rbac']['msg'], refused
    with pytest.raises(ApiException):
        rbac.read_cluster_role('winkube-gmsa-use-gmsa-webapp1')  # nothing was written

    created = run(tasks, {'use_by': use_by, 'missing': 'create'})
    assert created.rc == 0 and created.changed, created
    role = rbac.read_cluster_role('winkube-gmsa-use-gmsa-webapp1')
    assert [(r.api_groups, r.resources, r.resource_names, r.verbs) for r in role.rules] == [
        (['windows.k8s.io'], ['gmsacredentialspecs'], ['gmsa-webapp1'], ['use'])]
    binding = rbac.read_namespaced_role_binding('winkube-gmsa-use-gmsa-webapp1', 'winkube-rbac-a')
    assert binding.role_ref.name == 'winkube-gmsa-use-gmsa-webapp1' and binding.role_ref.kind == 'ClusterRole'
    assert sorted((s.kind, s.name, s.namespace) for s in binding.subjects) == [
        ('ServiceAccount', 'default', 'winkube-rbac-a'), ('ServiceAccount', 'webapp', 'winkube-rbac-a')]
    assert core.read_namespace('winkube-rbac-b').metadata.labels['app.kubernetes.io/managed-by'] == 'winkube.gmsa'

    again = run(tasks, {'use_by': use_by, 'missing': 'fail'})
    assert again.rc == 0 and not again.changed, again
    assert again.results['rbac']['api_requests']['writes'] == 0

    pruned = run(tasks, {'use_by': use_by[:1], 'missing': 'fail'}, diff=True)
    assert pruned.rc == 0 and pruned.changed
    with pytest.raises(ApiException) as info:
        rbac.read_namespaced_role_binding('winkube-gmsa-use-gmsa-webapp1', 'winkube-rbac-b')
    assert info.value.status == 404
    assert 'RoleBinding winkube-rbac-b/winkube-gmsa-use-gmsa-webapp1' in pruned.results['rbac']['diff']['before']

    bad = run(tasks, {'use_by': [{'namespace': 'Not_Valid', 'service_accounts': ['x']}], 'missing': 'create'})
    assert bad.rc != 0 and 'DNS-1123' in bad.results['rbac']['msg']


def test_rbac_for_the_longest_credential_spec_name(run, api):
    """RBAC names are path segment names with no length limit on the API server, so the ClusterRole and
    RoleBinding of a 253-character credential spec (their names have 270) are accepted as they are."""
    rbac = client.RbacAuthorizationV1Api(api)
    name = 'gmsa-' + 'l' * 248
    tasks = """
- name: rbac
  winkube.gmsa.credential_spec_rbac:
    bindings:
      - credential_spec: "{{ name }}"
        use_by: [{namespace: winkube-rbac-long, service_accounts: [webapp]}]
    missing_namespace: create
    state: "{{ state }}"
"""
    created = run(tasks, {'name': name, 'state': 'present'})
    assert created.rc == 0 and created.changed, created
    role = rbac.read_cluster_role('winkube-gmsa-use-' + name)
    assert len(role.metadata.name) == 270 and role.rules[0].resource_names == [name]
    binding = rbac.read_namespaced_role_binding('winkube-gmsa-use-' + name, 'winkube-rbac-long')
    assert binding.role_ref.name == role.metadata.name
    again = run(tasks, {'name': name, 'state': 'present'})
    assert again.rc == 0 and not again.changed, again
    removed = run(tasks, {'name': name, 'state': 'absent'})
    assert removed.rc == 0 and removed.changed, removed


def test_webhook_in_cluster_objects_idempotent_and_absent(run, api):
    tasks = """
- name: webhook
  winkube.gmsa.webhook:
    name: gmsa-webhook
    namespace: gmsa-webhook
    replicas: 2
    pod_disruption_budget: true
    random_hostname: true
    cert_reload: true
    tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]
    wait_timeout: 120
"""
    first = run(tasks)
    assert first.rc == 0 and first.changed, first
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    adm = client.AdmissionregistrationV1Api(api)
    dep = apps.read_namespaced_deployment('gmsa-webhook', 'gmsa-webhook')
    assert dep.status.available_replicas == 2 and dep.status.updated_replicas == 2
    pod = dep.spec.template.spec
    assert pod.node_selector == {'kubernetes.io/os': 'linux'} and pod.service_account_name == 'gmsa-webhook'
    assert pod.tolerations[0].key == 'node-role.kubernetes.io/control-plane'
    container = pod.containers[0]
    assert container.image == 'registry.k8s.io/gmsa-webhook/k8s-gmsa-webhook:v0.13.0'
    assert container.args == ['--cert-reload=true']
    env = {e.name: e.value for e in container.env}
    assert env == {'TLS_CRT': '/tls/crt', 'TLS_KEY': '/tls/key', 'HTTPS_PORT': '443', 'LOG_LEVEL': 'info',
                   'QPS': '30', 'BURST': '50', 'RANDOM_HOSTNAME': 'true'}
    assert container.readiness_probe.http_get.path == '/health'
    assert container.resources.requests == {'cpu': '10m', 'memory': '32Mi'}
    assert core.read_namespace('gmsa-webhook').metadata.labels['gmsa-webhook'] == 'disabled'
    svc = core.read_namespaced_service('gmsa-webhook', 'gmsa-webhook')
    assert svc.spec.ports[0].port == 443
    assert client.PolicyV1Api(api).read_namespaced_pod_disruption_budget('gmsa-webhook', 'gmsa-webhook')
    role = client.RbacAuthorizationV1Api(api).read_cluster_role('gmsa-webhook-gmsa-webhook-rbac-role')
    assert sorted((r.resources[0], r.verbs[0]) for r in role.rules) == [
        ('gmsacredentialspecs', 'get'), ('localsubjectaccessreviews', 'create')]

    secret = core.read_namespaced_secret('gmsa-webhook-tls', 'gmsa-webhook')
    ca_pem = base64.b64decode(secret.data['ca.crt'])
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret.data['tls.crt']))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert set(sans) == {'gmsa-webhook.gmsa-webhook.svc', 'gmsa-webhook.gmsa-webhook.svc.cluster.local'}
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    for config, ops in ((adm.read_mutating_webhook_configuration('gmsa-webhook'), ['CREATE']),
                        (adm.read_validating_webhook_configuration('gmsa-webhook'), ['CREATE', 'UPDATE'])):
        hook = config.webhooks[0]
        assert hook.name == 'admission-webhook.windows-gmsa.sigs.k8s.io'
        assert hook.client_config.service.name == 'gmsa-webhook' and hook.client_config.service.port == 443
        assert base64.b64decode(hook.client_config.ca_bundle) == ca_pem
        assert hook.rules[0].operations == ops and hook.rules[0].resources == ['pods']
        assert hook.failure_policy == 'Fail' and hook.side_effects == 'None'
        exprs = {(e.key, e.operator, tuple(e.values)) for e in hook.namespace_selector.match_expressions}
        assert exprs == {('gmsa-webhook', 'NotIn', ('disabled',)), ('windows.k8s.io/disabled', 'NotIn', ('true',)),
                         ('kubernetes.io/metadata.name', 'NotIn', ('gmsa-webhook', 'kube-system'))}
        assert 'gmsaCredentialSpecName' in hook.match_conditions[0].expression  # server is >= 1.30

    second = run(tasks)
    assert second.rc == 0 and not second.changed, second
    assert second.results['webhook']['api_requests']['writes'] == 0
    assert second.results['webhook']['tls']['action'] == 'keep'

    check = run(tasks.replace('replicas: 2', 'replicas: 3'), check=True, diff=True)
    assert check.rc == 0 and check.changed
    assert apps.read_namespaced_deployment('gmsa-webhook', 'gmsa-webhook').spec.replicas == 2
    assert check.results['webhook']['diff']['after']['Deployment gmsa-webhook/gmsa-webhook']['spec']['replicas'] == 3
    # a diff that contains the TLS Secret (a rotation in check mode) shows no private key, in any form
    check_rotate = run(tasks + '    force_rotate: true\n', check=True, diff=True)
    assert check_rotate.rc == 0 and check_rotate.changed, check_rotate
    diff = check_rotate.results['webhook']['diff']
    assert 'Secret gmsa-webhook/gmsa-webhook-tls' in diff['after'], sorted(diff['after'])
    diff_text = json.dumps(diff)
    stored_key = core.read_namespaced_secret('gmsa-webhook-tls', 'gmsa-webhook').data['tls.key']
    assert stored_key not in diff_text and 'PRIVATE KEY' not in diff_text
    for header in (b'-----BEGIN PRIVATE KEY', b'-----BEGIN EC PRIVATE KEY', b'-----BEGIN RSA PRIVATE KEY'):
        assert base64.b64encode(header).decode()[:20] not in diff_text
    assert core.read_namespaced_secret('gmsa-webhook-tls', 'gmsa-webhook').data['tls.key'] == stored_key  # check mode

    # in-cluster rotation: old+new CA published, Secret and pod template switched, rollout waited, old CA dropped
    template_before = dep.spec.template.metadata.annotations['winkube.gmsa/tls-sha256']
    rotated = run(tasks + '    force_rotate: true\n')
    assert rotated.rc == 0 and rotated.changed, rotated
    tls = rotated.results['webhook']['tls']
    assert tls['action'] == 'rotate' and tls['previous_ca_trusted'] is False
    new_ca = base64.b64decode(core.read_namespaced_secret('gmsa-webhook-tls', 'gmsa-webhook').data['ca.crt'])
    assert new_ca != ca_pem
    for config in (adm.read_mutating_webhook_configuration('gmsa-webhook'),
                   adm.read_validating_webhook_configuration('gmsa-webhook')):
        assert base64.b64decode(config.webhooks[0].client_config.ca_bundle) == new_ca
    dep = apps.read_namespaced_deployment('gmsa-webhook', 'gmsa-webhook')
    assert dep.spec.template.metadata.annotations['winkube.gmsa/tls-sha256'] != template_before
    assert dep.status.updated_replicas == 2 and dep.status.observed_generation == dep.metadata.generation
    # the MutatingWebhookConfiguration was written twice (old+new, then new): one merged entry in the result
    kinds = [o['kind'] for o in rotated.results['webhook']['objects']]
    assert kinds.count('MutatingWebhookConfiguration') == 1
    assert not run(tasks).changed

    gone = run("""
- name: webhook
  winkube.gmsa.webhook: {state: absent, name: gmsa-webhook, namespace: gmsa-webhook}
""")
    assert gone.rc == 0 and gone.changed
    with pytest.raises(ApiException):
        adm.read_mutating_webhook_configuration('gmsa-webhook')
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment('gmsa-webhook', 'gmsa-webhook')
    assert client.ApiextensionsV1Api(api).read_custom_resource_definition(CRD)
    assert get_credspec(api, 'gmsa-webapp1') is not None


URL_HOOK_TASK = """
- name: webhook
  winkube.gmsa.webhook:
    name: {hook}
    namespace: {ns}
    webhook_url: "{{{{ webhook_url }}}}"
    certificate_mode: "{{{{ mode }}}}"
    ca_bundle: "{{{{ ca_bundle | default(omit) }}}}"
    force_rotate: "{{{{ rotate | default(false) }}}}"
""".format(hook=HOOK, ns=HOOK_NS)


def setup_admission(run, api, gmsa_webhook):
    assert run(CRD_TASK).rc == 0
    assert run(SPEC_TASK, spec_vars()).rc == 0
    ensure_namespace(api, APPS, ['webapp', 'other'])
    rbac = run("""
- name: rbac
  winkube.gmsa.credential_spec_rbac:
    bindings:
      - credential_spec: gmsa-webapp1
        use_by: [{namespace: %s, service_accounts: [webapp]}]
""" % APPS)
    assert rbac.rc == 0, rbac
    hook = run(URL_HOOK_TASK, {'webhook_url': gmsa_webhook.url, 'mode': 'external',
                               'ca_bundle': gmsa_webhook.ca_bundle_pem.decode()})
    assert hook.rc == 0, hook
    return client.CoreV1Api(api)


def admitted(core, name, sa='webapp', **kwargs):
    try:
        return core.create_namespaced_pod(APPS, gmsa_pod(name, sa, **kwargs), dry_run='All')
    except ApiException as exc:
        return exc


def wait_admission_ready(core):
    def ready():
        result = admitted(core, 'probe')
        return not isinstance(result, ApiException) and result.spec.security_context.windows_options.gmsa_credential_spec
    wait_for(ready, 30, what='webhook configurations active')


def test_real_admission_flow_through_the_webhook(run, api, gmsa_webhook):
    core = setup_admission(run, api, gmsa_webhook)
    adm = client.AdmissionregistrationV1Api(api)
    hook = adm.read_mutating_webhook_configuration(HOOK).webhooks[0]
    assert hook.client_config.url == gmsa_webhook.mutate_url and hook.client_config.service is None
    wait_admission_ready(core)

    pod = core.create_namespaced_pod(APPS, gmsa_pod('bound', 'webapp'))
    filled = pod.spec.security_context.windows_options.gmsa_credential_spec
    assert json.loads(filled) == CREDSPEC
    assert core.read_namespaced_pod('bound', APPS).spec.security_context.windows_options.gmsa_credential_spec == filled

    per_container = core.create_namespaced_pod(APPS, gmsa_pod('per-container', 'webapp', container_only=True))
    app, sidecar = per_container.spec.containers
    assert json.loads(app.security_context.windows_options.gmsa_credential_spec) == CREDSPEC
    assert sidecar.security_context is None  # the webhook patches only the options that name a credential spec

    refused = admitted(core, 'unbound', sa='other')
    assert isinstance(refused, ApiException) and refused.status == 403
    assert ('service account "other" is not authorized to `use` GMSA cred spec "gmsa-webapp1"'
            in json.loads(refused.body)['message'])

    # upstream's mutating webhook runs first and refuses a name with no resource behind it: 404
    missing = admitted(core, 'missing', credspec='gmsa-does-not-exist')
    assert isinstance(missing, ApiException) and missing.status == 404, missing
    assert json.loads(missing.body)['message'] == (
        'admission webhook "admission-webhook.windows-gmsa.sigs.k8s.io" denied the request: '
        'cred spec gmsa-does-not-exist does not exist')

    # a pod without any GMSA reference is not sent to the webhook (matchConditions)
    plain = core.create_namespaced_pod(APPS, {'metadata': {'name': 'plain'}, 'spec': {
        'containers': [{'name': 'c', 'image': 'example/app'}]}}, dry_run='All')
    assert plain.metadata.name == 'plain'


def test_workload_gmsa_pod_and_container_level(run, api, gmsa_webhook):
    core = setup_admission(run, api, gmsa_webhook)
    wait_admission_ready(core)
    apps = client.AppsV1Api(api)
    body = {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'iis', 'namespace': APPS},
            'spec': {'replicas': 1, 'selector': {'matchLabels': {'app': 'iis'}}, 'template': {
                'metadata': {'labels': {'app': 'iis'}},
                'spec': {'serviceAccountName': 'webapp', 'nodeSelector': {'kubernetes.io/os': 'windows'},
                         'containers': [{'name': 'iis', 'image': 'example/iis'},
                                        {'name': 'log', 'image': 'example/log'}]}}}}
    try:
        apps.create_namespaced_deployment(APPS, body)
    except ApiException as exc:
        assert exc.status == 409
    tasks = """
- name: workloads
  winkube.gmsa.workload_gmsa:
    state: "{{ state | default('present') }}"
    workloads:
      - {namespace: %s, name: iis, credential_spec: gmsa-webapp1}
      - {namespace: %s, name: iis, container: iis, credential_spec: gmsa-webapp1}
""" % (APPS, APPS)
    first = run(tasks, diff=True)
    assert first.rc == 0 and first.changed, first
    dep = apps.read_namespaced_deployment('iis', APPS)
    assert dep.spec.template.spec.security_context.windows_options.gmsa_credential_spec_name == 'gmsa-webapp1'
    iis, log = dep.spec.template.spec.containers
    assert iis.security_context.windows_options.gmsa_credential_spec_name == 'gmsa-webapp1'
    assert log.security_context is None and log.image == 'example/log'
    owners = {m.manager: m.operation for m in dep.metadata.managed_fields}
    assert owners.get('winkube.gmsa') == 'Apply'

    second = run(tasks)
    assert second.rc == 0 and not second.changed, second
    assert second.results['workloads']['api_requests'] == {'requests': 1, 'by_method': {'GET': 1}, 'writes': 0,
                                                           'objects': 1}

    # the rolled-out pods went through the real webhook
    def mutated_pod():
        pods = core.list_namespaced_pod(APPS, label_selector='app=iis').items
        for pod in pods:
            sc = pod.spec.security_context
            if sc and sc.windows_options and sc.windows_options.gmsa_credential_spec:
                return pod
        return None
    pod = wait_for(mutated_pod, 60, what='a mutated iis pod')
    assert json.loads(pod.spec.containers[0].security_context.windows_options.gmsa_credential_spec) == CREDSPEC

    missing = run("""
- name: workloads
  winkube.gmsa.workload_gmsa:
    workloads:
      - {namespace: %s, name: iis, container: nope, credential_spec: gmsa-webapp1}
      - {namespace: %s, name: no-such-deployment, credential_spec: gmsa-webapp1}
""" % (APPS, APPS))
    assert missing.rc != 0
    assert 'has no container nope' in missing.results['workloads']['msg']
    assert 'no-such-deployment does not exist' in missing.results['workloads']['msg']

    removed = run(tasks, {'state': 'absent'})
    assert removed.rc == 0 and removed.changed
    dep = apps.read_namespaced_deployment('iis', APPS)
    sc = dep.spec.template.spec.security_context
    assert not (sc and sc.windows_options and sc.windows_options.gmsa_credential_spec_name)
    assert dep.spec.template.spec.containers[0].image == 'example/iis'


def test_connection_errors_are_clear(run, k8s_lab):
    unreachable = run("""
- name: t
  winkube.gmsa.crd: {host: "https://127.0.0.1:1", kubeconfig: "{{ kubeconfig }}"}
""")
    assert unreachable.rc != 0 and 'cannot reach the API server' in unreachable.results['t']['msg']
    unauthorized = run("""
- name: t
  winkube.gmsa.credential_spec:
    host: "{{ api }}"
    api_key: not-a-valid-token
    ca_cert: "{{ ca }}"
    credential_specs: [{name: x, credspec: {ActiveDirectoryConfig: {GroupManagedServiceAccounts: [{Name: a, Scope: b}]}}}]
""", {'api': k8s_lab.api_url, 'ca': k8s_lab.ca_cert, 'kubeconfig': ''})
    assert unauthorized.rc != 0 and '401' in unauthorized.results['t']['msg'], unauthorized
    context = run("""
- name: t
  winkube.gmsa.crd: {context: no-such-context}
""")
    assert context.rc != 0
    assert "context 'no-such-context' (option context)" in context.results['t']['msg']


def _restart_webhook(gmsa_webhook, crt=None, key=None, ca=None):
    env = dict(os.environ, GMSA_WEBHOOK_PORT=str(gmsa_webhook.port))
    if ca:
        env['GMSA_WEBHOOK_CA_BUNDLE'] = ca
    subprocess.run([str(K8S_DIR / 'stop-webhook.sh')], env=env, check=True, capture_output=True, timeout=60)
    args = [crt, key] if crt else []
    proc = subprocess.run([str(K8S_DIR / 'start-webhook.sh')] + args, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _webhook_bundle(api):
    adm = client.AdmissionregistrationV1Api(api)
    bundles = {base64.b64decode(c.webhooks[0].client_config.ca_bundle).decode() for c in (
        adm.read_mutating_webhook_configuration(HOOK), adm.read_validating_webhook_configuration(HOOK))}
    assert len(bundles) == 1
    return bundles.pop()


def test_forced_rotation_keeps_admission_working(run, api, gmsa_webhook, tmp_path):
    """Self-signed certificates on the URL webhook; the lab process is restarted with what the Secret holds,
    which is what a rollout does for the in-cluster Deployment."""
    core = setup_admission(run, api, gmsa_webhook)
    # Configurations of earlier tests trust only the lab CA: park them while the webhook serves other certificates.
    saved = park_gmsa_webhooks(api, keep=(HOOK,))
    secret_name, names = f'{HOOK}-tls', []

    def serve_secret(label):
        data = core.read_namespaced_secret(secret_name, HOOK_NS).data
        paths = {}
        for key in ('tls.crt', 'tls.key', 'ca.crt'):
            paths[key] = tmp_path / f'{label}-{key}'
            paths[key].write_bytes(base64.b64decode(data[key]))
        _restart_webhook(gmsa_webhook, str(paths['tls.crt']), str(paths['tls.key']), str(paths['ca.crt']))
        return base64.b64decode(data['ca.crt']).decode()

    try:
        first = run(URL_HOOK_TASK, {'webhook_url': gmsa_webhook.url, 'mode': 'self_signed'})
        assert first.rc == 0, first
        tls = first.results['webhook']['tls']
        assert '127.0.0.1' in tls['names']
        old_ca = serve_secret('old')
        assert _webhook_bundle(api) == old_ca
        wait_admission_ready(core)

        rotated = run(URL_HOOK_TASK, {'webhook_url': gmsa_webhook.url, 'mode': 'self_signed', 'rotate': True})
        assert rotated.rc == 0 and rotated.changed, rotated
        assert rotated.results['webhook']['tls']['action'] == 'rotate'
        assert rotated.results['webhook']['tls']['previous_ca_trusted'] is True
        bundle = _webhook_bundle(api)
        new_ca = base64.b64decode(core.read_namespaced_secret(secret_name, HOOK_NS).data['ca.crt']).decode()
        assert old_ca in bundle and new_ca in bundle and old_ca != new_ca
        # the webhook still serves the old certificate: admission keeps working
        for attempt in range(5):
            result = admitted(core, f'during-{attempt}')
            assert not isinstance(result, ApiException), result.body
        serve_secret('new')  # "rollout": the webhook now serves the new certificate
        for attempt in range(5):
            result = admitted(core, f'after-{attempt}')
            assert not isinstance(result, ApiException), result.body
            names.append(result.spec.security_context.windows_options.gmsa_credential_spec)

        settled = run(URL_HOOK_TASK, {'webhook_url': gmsa_webhook.url, 'mode': 'self_signed'})
        assert settled.rc == 0 and settled.changed
        assert settled.results['webhook']['tls']['action'] == 'keep'
        assert _webhook_bundle(api) == new_ca
        wait_admission_ready(core)
        final = run(URL_HOOK_TASK, {'webhook_url': gmsa_webhook.url, 'mode': 'self_signed'})
        assert final.rc == 0 and not final.changed
    finally:
        _restart_webhook(gmsa_webhook)
        run(URL_HOOK_TASK, {'webhook_url': gmsa_webhook.url, 'mode': 'external',
                            'ca_bundle': Path(gmsa_webhook.ca_bundle).read_text()})
        restore_gmsa_webhooks(api, saved)
    assert all(json.loads(n) == CREDSPEC for n in names)


def test_missing_crd_refuses_and_crd_removal_guard(run, api):
    assert run(CRD_TASK).rc == 0
    assert run(SPEC_TASK, spec_vars()).rc == 0
    guarded = run("""
- name: remove
  winkube.gmsa.crd: {state: absent}
""")
    assert guarded.rc != 0 and 'credential spec(s) exist' in guarded.results['remove']['msg']
    assert get_credspec(api, 'gmsa-webapp1') is not None

    removed = run("""
- name: remove
  winkube.gmsa.crd: {state: absent, force: true}
""")
    assert removed.rc == 0 and removed.changed

    def crd_gone():
        try:
            client.ApiextensionsV1Api(api).read_custom_resource_definition(CRD)
            return False
        except ApiException as exc:
            return exc.status == 404
    wait_for(crd_gone, 60, what='CRD deleted')
    missing = run(SPEC_TASK, spec_vars())
    assert missing.rc != 0
    assert 'CustomResourceDefinition' in missing.results['specs']['msg']
    assert run(CRD_TASK).rc == 0  # leave the cluster as other tests expect it
    assert run(SPEC_TASK, spec_vars()).rc == 0


# ------------------------------------------------------------------------------------------------------------
# The module's own Deployment and Secret, run by the lab's kubelet imitation (lab/k8s/kubelet_imitation.py: not a
# kubelet; it runs upstream's binary with the Deployment's args/env and the Secret's keys as files, and puts the
# Service's ClusterIP on the loopback of the test's private network namespace, so clientConfig.service works).
KL_HOOK, KL_NS = 'gmsa-webhook-kl', 'winkube-gmsa-kl'
KL_TASK = """
- name: webhook
  winkube.gmsa.webhook:
    name: %s
    namespace: %s
    cert_reload: true
    https_port: 8443
    force_rotate: "{{ rotate | default(false) }}"
    wait_timeout: 120
""" % (KL_HOOK, KL_NS)


def _imitation(action):
    proc = subprocess.run([str(K8S_DIR / 'kubelet-imitation.sh'), action, KL_NS, KL_HOOK], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1]) if action == 'start' else None


def _served_cert(host, port=443):
    """The PEM certificate the webhook serves at host:port (not verified: this only reads which one it is)."""
    import ssl

    return ssl.get_server_certificate((host, port))


def _same_cert(pem_a, pem_b):
    return x509.load_pem_x509_certificate(pem_a.encode()) == x509.load_pem_x509_certificate(pem_b.encode())


class PodStream(object):
    """Dry-run GMSA pod creations in a loop on a thread, recording every refusal (the API server's answer)."""

    def __init__(self, core):
        import threading

        self.core, self.count, self.failures = core, 0, []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stopping.is_set():
            result = admitted(self.core, f'stream-{self.count}')
            self.count += 1
            if isinstance(result, ApiException):
                self.failures.append((result.status, result.body))
            elif json.loads(result.spec.security_context.windows_options.gmsa_credential_spec) != CREDSPEC:
                self.failures.append(('wrong credspec', result.spec.security_context.windows_options.gmsa_credential_spec))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(30)


def test_module_deployment_runs_upstream_webhook_rotation_and_reload(run, api, k8s_lab):
    """The webhook module's Deployment and Secret drive upstream's binary (kubelet imitation); the API server calls
    it through clientConfig.service (ClusterIP on lo, real TLS name check of <svc>.<ns>.svc). A forced rotation
    (both CAs published, Secret and pod template switched, rollout, old CA dropped) refuses no pod on trust while
    pods are created continuously; a Secret renewed in place (what cert-manager does) is picked up by --cert-reload
    in the same process with no pod refused, once: upstream v0.13.0 misses the second renewal (its issue #176)."""
    assert run(CRD_TASK).rc == 0
    assert run(SPEC_TASK, spec_vars()).rc == 0
    ensure_namespace(api, APPS, ['webapp', 'other'])
    assert run("""
- name: rbac
  winkube.gmsa.credential_spec_rbac:
    bindings:
      - credential_spec: gmsa-webapp1
        use_by: [{namespace: %s, service_accounts: [webapp]}]
""" % APPS).rc == 0
    core = client.CoreV1Api(api)
    saved = park_gmsa_webhooks(api, keep=(KL_HOOK,))
    try:
        first = run(KL_TASK)
        assert first.rc == 0, first
        status_file = _imitation('start')
        svc_ip = core.read_namespaced_service(KL_HOOK, KL_NS).spec.cluster_ip
        assert json.loads(status_file.read_text())['cluster_ips'] == {KL_HOOK: svc_ip}
        adm = client.AdmissionregistrationV1Api(api)
        assert adm.read_mutating_webhook_configuration(KL_HOOK).webhooks[0].client_config.service.name == KL_HOOK
        wait_admission_ready(core)
        secret = core.read_namespaced_secret(f'{KL_HOOK}-tls', KL_NS).data
        assert _same_cert(_served_cert(svc_ip), base64.b64decode(secret['tls.crt']).decode())
        refused = admitted(core, 'unbound', sa='other')
        assert isinstance(refused, ApiException) and refused.status == 403, refused

        pid_before = json.loads(status_file.read_text())['pid']
        # 1. the module's forced rotation: both CAs published, Secret and pod template switched (a rollout: the
        # imitation restarts the process, which then serves the new certificate), old CA dropped. Upstream ends at
        # once on SIGTERM, so a request in flight on the old process can fail at the restart (as in a cluster), but
        # none fails on trust: the new CA was published before the new certificate was served.
        with PodStream(core) as stream:
            rotated = run(KL_TASK, {'rotate': True})
            time.sleep(2)
        assert rotated.rc == 0 and rotated.changed, rotated
        assert rotated.results['webhook']['tls']['action'] == 'rotate'
        assert stream.count > 5 and not [f for f in stream.failures if 'x509' in str(f[1])], stream.failures[:3]
        new = core.read_namespaced_secret(f'{KL_HOOK}-tls', KL_NS).data
        assert new['tls.crt'] != secret['tls.crt']
        wait_for(lambda: _same_cert(_served_cert(svc_ip), base64.b64decode(new['tls.crt']).decode()), 20,
                 what='rotated certificate served')
        assert json.loads(status_file.read_text())['pid'] != pid_before  # the pod template changed: a rollout
        wait_admission_ready(core)
        # 2. then the Secret renewed in place (cert-manager's way: no pod template change), pods created all along: the
        # same process serves the new certificate, reloaded by --cert-reload from the files the imitation rewrote
        # the way a kubelet does (..data symlink swap), and no request is refused.
        # The module never stores its CA key: a new CA signs the renewal, published next to the module's (by hand, last:
        # the module's next apply would then conflict on caBundle).
        pid = json.loads(status_file.read_text())['pid']
        renewed = []
        for round_ in range(2):
            crt, key, ca = _issue_cert([f'{KL_HOOK}.{KL_NS}.svc'])
            renewed.append(crt)
            for config in (adm.read_mutating_webhook_configuration(KL_HOOK),
                           adm.read_validating_webhook_configuration(KL_HOOK)):
                bundle = base64.b64decode(config.webhooks[0].client_config.ca_bundle) + ca
                config.webhooks[0].client_config.ca_bundle = base64.b64encode(bundle).decode()
                kind = 'mutating' if config.kind == 'MutatingWebhookConfiguration' else 'validating'
                getattr(adm, f'replace_{kind}_webhook_configuration')(KL_HOOK, config)
            time.sleep(1)
            with PodStream(core) as stream:
                core.patch_namespaced_secret(f'{KL_HOOK}-tls', KL_NS, {'data': {
                    'tls.crt': base64.b64encode(crt).decode(), 'tls.key': base64.b64encode(key).decode()}})
                mirrored = status_file.parent / 'volumes' / 'tls' / 'crt'
                wait_for(lambda: mirrored.read_bytes() == crt, 20, what='Secret mirrored into the volume files')
                if round_ == 0:
                    wait_for(lambda: _same_cert(_served_cert(svc_ip), crt.decode()), 20, what='renewed certificate served')
                time.sleep(2)
            assert stream.count > 3 and stream.failures == [], stream.failures[:3]
            assert json.loads(status_file.read_text())['pid'] == pid  # no restart
        # 3. upstream v0.13.0 reloads only once per process: its fsnotify watch follows the file the first ..data
        # swap deletes (kubernetes-sigs/windows-gmsa#176, fix proposed in #178), so the second renewal is not served
        assert _same_cert(_served_cert(svc_ip), renewed[0].decode())
        assert 'detected change in certificate file' in (status_file.parent / 'webhook.log').read_text()

    finally:
        _imitation('stop')
        run("""
- name: webhook
  winkube.gmsa.webhook: {state: absent, name: %s, namespace: %s}
""" % (KL_HOOK, KL_NS))
        restore_gmsa_webhooks(api, saved)


def _issue_cert(dns_names):
    """A new CA and a serving certificate for dns_names (PEM bytes: cert, key, CA)."""
    import datetime

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, 'renewal-test-ca')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            ca.public_bytes(pem))


def _cert_manager_crds():
    """Imitations of cert-manager's Issuer and Certificate CRDs (names and group only, no schema): cert-manager
    itself (controller, CA injector) does not run in the lab."""
    def crd(kind, plural):
        return {'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition',
                'metadata': {'name': f'{plural}.cert-manager.io'},
                'spec': {'group': 'cert-manager.io', 'scope': 'Namespaced',
                         'names': {'kind': kind, 'plural': plural, 'singular': kind.lower()},
                         'versions': [{'name': 'v1', 'served': True, 'storage': True, 'schema': {'openAPIV3Schema': {
                             'type': 'object', 'x-kubernetes-preserve-unknown-fields': True}}}]}}
    return [crd('Issuer', 'issuers'), crd('Certificate', 'certificates')]


def test_cert_manager_objects_then_upstream_serves_the_issued_secret(run, api, k8s_lab):
    """certificate_mode cert_manager: the module's Issuer, Certificate and CA-injection annotation are created (no
    cert-manager runs here: the test then plays its part, writing the TLS Secret and the caBundle), and upstream's
    binary, run from the module's Deployment by the kubelet imitation, serves that Secret to the API server."""
    # the previous test deletes the same namespace; the namespace controller may still be emptying it
    core = client.CoreV1Api(api)
    wait_for(lambda: KL_NS not in [ns.metadata.name for ns in core.list_namespace().items], timeout=180,
             what='namespace %s gone' % KL_NS)
    ext = client.ApiextensionsV1Api(api)
    for body in _cert_manager_crds():
        try:
            ext.create_custom_resource_definition(body)
        except ApiException as exc:
            assert exc.status == 409
    wait_for(lambda: _try_list(api), 30, what='cert-manager CRDs served')
    assert run(CRD_TASK).rc == 0
    assert run(SPEC_TASK, spec_vars()).rc == 0
    ensure_namespace(api, APPS, ['webapp', 'other'])
    assert run("""
- name: rbac
  winkube.gmsa.credential_spec_rbac:
    bindings:
      - credential_spec: gmsa-webapp1
        use_by: [{namespace: %s, service_accounts: [webapp]}]
""" % APPS).rc == 0
    task = KL_TASK.replace('    https_port: 8443\n', '    https_port: 8443\n    certificate_mode: cert_manager\n')
    core, adm = client.CoreV1Api(api), client.AdmissionregistrationV1Api(api)
    saved = park_gmsa_webhooks(api, keep=(KL_HOOK,))
    try:
        first = run(task)
        assert first.rc == 0 and first.changed, first
        custom = client.CustomObjectsApi(api)
        cert = custom.get_namespaced_custom_object('cert-manager.io', 'v1', KL_NS, 'certificates', f'{KL_HOOK}-tls')
        issuer = custom.get_namespaced_custom_object('cert-manager.io', 'v1', KL_NS, 'issuers', f'{KL_HOOK}-selfsigned')
        assert issuer['spec'] == {'selfSigned': {}}
        assert cert['spec']['secretName'] == f'{KL_HOOK}-tls'
        assert cert['spec']['issuerRef'] == {'name': f'{KL_HOOK}-selfsigned', 'kind': 'Issuer'}
        assert set(cert['spec']['dnsNames']) == {f'{KL_HOOK}.{KL_NS}.svc', f'{KL_HOOK}.{KL_NS}.svc.cluster.local'}
        configs = (adm.read_mutating_webhook_configuration(KL_HOOK), adm.read_validating_webhook_configuration(KL_HOOK))
        for config in configs:
            assert config.metadata.annotations['cert-manager.io/inject-ca-from'] == f'{KL_NS}/{KL_HOOK}-tls'
        assert not run(task).changed

        # cert-manager's part, played by the test: the issued Secret, then the CA injector's caBundle
        crt, key, ca = _issue_cert(cert['spec']['dnsNames'])
        core.create_namespaced_secret(KL_NS, {'metadata': {'name': f'{KL_HOOK}-tls'}, 'type': 'kubernetes.io/tls', 'data': {
            'tls.crt': base64.b64encode(crt).decode(), 'tls.key': base64.b64encode(key).decode(),
            'ca.crt': base64.b64encode(ca).decode()}})
        for config in configs:
            config.webhooks[0].client_config.ca_bundle = base64.b64encode(ca).decode()
            kind = 'mutating' if config.kind == 'MutatingWebhookConfiguration' else 'validating'
            getattr(adm, f'replace_{kind}_webhook_configuration')(KL_HOOK, config)
        status_file = _imitation('start')
        svc_ip = core.read_namespaced_service(KL_HOOK, KL_NS).spec.cluster_ip
        wait_admission_ready(core)
        assert _same_cert(_served_cert(svc_ip), crt.decode())
        assert json.loads(status_file.read_text())['restarts'] == 0
    finally:
        _imitation('stop')
        run("""
- name: webhook
  winkube.gmsa.webhook: {state: absent, name: %s, namespace: %s, certificate_mode: cert_manager}
""" % (KL_HOOK, KL_NS))
        restore_gmsa_webhooks(api, saved)
        for body in _cert_manager_crds():
            ext.delete_custom_resource_definition(body['metadata']['name'])


def _try_list(api):
    try:
        client.CustomObjectsApi(api).list_cluster_custom_object('cert-manager.io', 'v1', 'certificates')
        return True
    except ApiException:
        return False
