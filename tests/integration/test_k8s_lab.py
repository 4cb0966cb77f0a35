"""Smoke test of the Kubernetes lab: a real kube-apiserver calls the gMSA webhook over HTTPS.

Hand-written webhook configurations (clientConfig.url, as lab/k8s/README.md explains) and an inline
GMSACredentialSpec CRD; everything is read back from the API server.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

NS = 'gmsa-lab-smoke'
CREDSPEC = 'lab-credspec'
WEBHOOK_NAME = 'admission-webhook.windows-gmsa.sigs.k8s.io'
CREDSPEC_BODY = {
    'ActiveDirectoryConfig': {
        'GroupManagedServiceAccounts': [
            {'Name': 'WebApp1', 'Scope': 'CONTOSO'},
            {'Name': 'WebApp1', 'Scope': 'contoso.test'},
        ],
    },
    'CmsPlugins': ['ActiveDirectory'],
    'DomainJoinConfig': {
        'DnsName': 'contoso.test',
        'DnsTreeName': 'contoso.test',
        'Guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
        'MachineAccountName': 'WebApp1',
        'NetBiosName': 'CONTOSO',
        'Sid': 'S-1-5-21-2126449477-2524075714-3094792973',
    },
}


def _string_props(*names):
    return {name: {'type': 'string'} for name in names}


def credspec_crd():
    schema = {
        'type': 'object',
        'properties': {
            'credspec': {
                'type': 'object',
                'properties': {
                    'ActiveDirectoryConfig': {
                        'type': 'object',
                        'properties': {
                            'GroupManagedServiceAccounts': {
                                'type': 'array',
                                'items': {'type': 'object', 'properties': _string_props('Name', 'Scope')},
                            },
                            'HostAccountConfig': {
                                'type': 'object',
                                'properties': _string_props('PortableCcgVersion', 'PluginGUID', 'PluginInput'),
                            },
                        },
                    },
                    'CmsPlugins': {'type': 'array', 'items': {'type': 'string'}},
                    'DomainJoinConfig': {
                        'type': 'object',
                        'properties': _string_props(
                            'DnsName', 'DnsTreeName', 'Guid', 'MachineAccountName', 'NetBiosName', 'Sid'
                        ),
                    },
                },
            },
        },
        'required': ['credspec'],
    }

    def version(name, storage, deprecated=False):
        return {
            'name': name,
            'served': True,
            'storage': storage,
            'deprecated': deprecated,
            'schema': {'openAPIV3Schema': schema},
        }

    return {
        'apiVersion': 'apiextensions.k8s.io/v1',
        'kind': 'CustomResourceDefinition',
        'metadata': {
            'name': 'gmsacredentialspecs.windows.k8s.io',
            # *.k8s.io groups are protected: without this annotation the API server refuses the CRD (422).
            'annotations': {
                'api-approved.kubernetes.io': 'https://github.com/kubernetes/enhancements/tree/master/keps/sig-windows/689-windows-gmsa'
            },
        },
        'spec': {
            'group': 'windows.k8s.io',
            'scope': 'Cluster',
            'names': {'kind': 'GMSACredentialSpec', 'plural': 'gmsacredentialspecs', 'singular': 'gmsacredentialspec'},
            'versions': [version('v1', True), version('v1alpha1', False, True)],
        },
    }


def webhook_configs(webhook):
    ca = base64.b64encode(webhook.ca_bundle_pem).decode()

    def hook(url, operations):
        return {
            'name': WEBHOOK_NAME,
            'clientConfig': {'url': url, 'caBundle': ca},
            'rules': [{'apiGroups': [''], 'apiVersions': ['v1'], 'operations': operations, 'resources': ['pods']}],
            'failurePolicy': 'Fail',
            'sideEffects': 'None',
            'admissionReviewVersions': ['v1', 'v1beta1'],
            'namespaceSelector': {'matchExpressions': [{'key': 'gmsa-webhook', 'operator': 'NotIn', 'values': ['disabled']}]},
        }

    mutating = {
        'apiVersion': 'admissionregistration.k8s.io/v1',
        'kind': 'MutatingWebhookConfiguration',
        'metadata': {'name': 'winkube-lab-gmsa'},
        'webhooks': [hook(webhook.mutate_url, ['CREATE'])],
    }
    validating = {
        'apiVersion': 'admissionregistration.k8s.io/v1',
        'kind': 'ValidatingWebhookConfiguration',
        'metadata': {'name': 'winkube-lab-gmsa'},
        'webhooks': [hook(webhook.validate_url, ['CREATE', 'UPDATE'])],
    }
    return mutating, validating


def gmsa_pod(name, service_account, credspec=CREDSPEC):
    return {
        'apiVersion': 'v1',
        'kind': 'Pod',
        'metadata': {'name': name, 'namespace': NS},
        'spec': {
            'serviceAccountName': service_account,
            'nodeSelector': {'kubernetes.io/os': 'windows'},
            'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': credspec}},
            'containers': [
                {
                    'name': 'app',
                    'image': 'example/iis:ltsc2019',
                    'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': credspec}},
                }
            ],
        },
    }


def wait_for(predicate, timeout=60, interval=0.5, what='condition'):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f'timed out after {timeout} s waiting for {what} (last: {last!r})')


@pytest.fixture(scope='module')
def api(k8s_lab):
    return k8s_lab.api_client()


def _ensure_crd(ext):
    """Create the CRD; other tests in the session may have installed it already (kept) or be removing it
    (wait until it is gone, then create it again)."""
    name = 'gmsacredentialspecs.windows.k8s.io'

    def current():
        try:
            return ext.read_custom_resource_definition(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return None

    existing = current()
    if existing is not None and existing.metadata.deletion_timestamp:
        wait_for(lambda: current() is None, 60, what='the terminating CRD to go')
        existing = None
    if existing is None:
        ext.create_custom_resource_definition(credspec_crd())


@pytest.fixture(scope='module')
def gmsa_setup(api, k8s_lab, gmsa_webhook):
    """CRD + one credential spec + namespace with an allowed and a denied service account + webhooks."""
    ext = client.ApiextensionsV1Api(api)
    _ensure_crd(ext)

    def established():
        crd = ext.read_custom_resource_definition('gmsacredentialspecs.windows.k8s.io')
        return any(c.type == 'Established' and c.status == 'True' for c in (crd.status.conditions or []))

    wait_for(established, 30, what='CRD Established')
    custom = client.CustomObjectsApi(api)
    wait_for(lambda: _try(lambda: custom.list_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs')),
             30, what='CRD served')
    custom.create_cluster_custom_object(
        'windows.k8s.io', 'v1', 'gmsacredentialspecs',
        {'apiVersion': 'windows.k8s.io/v1', 'kind': 'GMSACredentialSpec', 'metadata': {'name': CREDSPEC},
         'credspec': CREDSPEC_BODY},
    )

    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespace({'metadata': {'name': NS}})
    for sa in ('allowed', 'denied'):
        core.create_namespaced_service_account(NS, {'metadata': {'name': sa}})
    rbac.create_cluster_role({
        'metadata': {'name': 'winkube-lab-use-credspec'},
        'rules': [{'apiGroups': ['windows.k8s.io'], 'resources': ['gmsacredentialspecs'],
                   'verbs': ['use'], 'resourceNames': [CREDSPEC]}],
    })
    rbac.create_namespaced_role_binding(NS, {
        'metadata': {'name': 'allowed-use-credspec'},
        'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': 'winkube-lab-use-credspec'},
        'subjects': [{'kind': 'ServiceAccount', 'name': 'allowed', 'namespace': NS}],
    })

    mutating, validating = webhook_configs(gmsa_webhook)
    adm = client.AdmissionregistrationV1Api(api)
    adm.create_mutating_webhook_configuration(mutating)
    adm.create_validating_webhook_configuration(validating)

    # The API server picks webhook configurations up asynchronously: dry-run until both answer.
    def webhooks_active():
        try:
            pod = core.create_namespaced_pod(NS, gmsa_pod('probe', 'allowed'), dry_run='All')
        except ApiException:
            return False
        mutated = pod.spec.security_context.windows_options.gmsa_credential_spec is not None
        if not mutated:
            return False
        try:
            core.create_namespaced_pod(NS, gmsa_pod('probe', 'denied'), dry_run='All')
            return False
        except ApiException as exc:
            return exc.status == 403

    wait_for(webhooks_active, 30, what='webhooks active')
    return {'core': core, 'apps': client.AppsV1Api(api)}


def _try(fn):
    try:
        fn()
        return True
    except ApiException:
        return False


def test_version_is_the_pinned_release(api, k8s_lab):
    info = client.VersionApi(api).get_code()
    assert info.git_version == k8s_lab.version
    assert info.git_version.startswith('v1.') and info.git_version != 'v0.0.0-master+$Format:%H$'
    assert info.major == '1'


def test_crd_serves_v1_and_v1alpha1(api, gmsa_setup):
    custom = client.CustomObjectsApi(api)
    v1 = custom.get_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', CREDSPEC)
    v1alpha1 = custom.get_cluster_custom_object('windows.k8s.io', 'v1alpha1', 'gmsacredentialspecs', CREDSPEC)
    assert v1['credspec'] == CREDSPEC_BODY
    assert v1alpha1['credspec'] == CREDSPEC_BODY


def test_bound_service_account_gets_credspec_filled_in(gmsa_setup):
    core = gmsa_setup['core']
    created = core.create_namespaced_pod(NS, gmsa_pod('allowed-pod', 'allowed'))
    expected = json.dumps(CREDSPEC_BODY, separators=(',', ':'), sort_keys=True)
    read = core.read_namespaced_pod('allowed-pod', NS)
    for pod in (created, read):
        assert json.loads(pod.spec.security_context.windows_options.gmsa_credential_spec) == CREDSPEC_BODY
        assert pod.spec.containers[0].security_context.windows_options.gmsa_credential_spec == expected
    # kwok runs it on the fake Windows node.
    wait_for(lambda: core.read_namespaced_pod('allowed-pod', NS).status.phase == 'Running', 60,
             what='gMSA pod Running')
    assert core.read_namespaced_pod('allowed-pod', NS).spec.node_name == 'kwok-windows-0'


def test_unbound_service_account_is_refused(gmsa_setup):
    with pytest.raises(ApiException) as info:
        gmsa_setup['core'].create_namespaced_pod(NS, gmsa_pod('denied-pod', 'denied'))
    assert info.value.status == 403
    body = json.loads(info.value.body)
    assert 'denied the request' in body['message']
    assert 'not authorized to `use` GMSA cred spec' in body['message']
    assert '"denied"' in body['message']


def test_missing_credspec_is_refused(gmsa_setup):
    with pytest.raises(ApiException) as info:
        gmsa_setup['core'].create_namespaced_pod(NS, gmsa_pod('missing-pod', 'allowed', credspec='no-such-spec'))
    assert info.value.status == 404
    assert 'no-such-spec' in json.loads(info.value.body)['message']


def test_unrelated_update_passes_the_validating_webhook(gmsa_setup):
    core = gmsa_setup['core']
    core.create_namespaced_pod(NS, gmsa_pod('update-pod', 'allowed'))
    patch = {'metadata': {'labels': {'touched': 'yes'}}}
    core.patch_namespaced_pod('update-pod', NS, patch)  # an unrelated update passes validation
    pod = core.read_namespaced_pod('update-pod', NS)
    assert pod.metadata.labels == {'touched': 'yes'}


def test_deployment_on_fake_linux_node_becomes_available(gmsa_setup, k8s_lab):
    apps = gmsa_setup['apps']
    labels = {'app': 'lab-smoke'}
    apps.create_namespaced_deployment(NS, {
        'metadata': {'name': 'lab-smoke', 'labels': labels},
        'spec': {
            'replicas': 2,
            'selector': {'matchLabels': labels},
            'template': {
                'metadata': {'labels': labels},
                'spec': {
                    'serviceAccountName': 'allowed',
                    'nodeSelector': {'kubernetes.io/os': 'linux'},
                    'containers': [{'name': 'app', 'image': 'example/app:1',
                                    'readinessProbe': {'httpGet': {'path': '/health', 'port': 8080}}}],
                },
            },
        },
    })

    def available():
        dep = apps.read_namespaced_deployment('lab-smoke', NS)
        conditions = {c.type: c.status for c in (dep.status.conditions or [])}
        return dep.status.available_replicas == 2 and conditions.get('Available') == 'True'

    wait_for(available, 90, what='Deployment Available')
    pods = gmsa_setup['core'].list_namespaced_pod(NS, label_selector='app=lab-smoke').items
    assert {p.spec.node_name for p in pods} == set(k8s_lab.linux_nodes)
    assert all(p.status.phase == 'Running' for p in pods)
