"""Smoke test of the Kubernetes lab: a real kube-apiserver calls upstream's windows-gmsa webhook (v0.13.0) over HTTPS.

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
    assert info.value.status == 404  # the mutating webhook, called first, finds no such resource
    assert json.loads(info.value.body)['message'] == (
        'admission webhook "admission-webhook.windows-gmsa.sigs.k8s.io" denied the request: cred spec no-such-spec does not exist')


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


# --- upstream's webhook itself (kubernetes-sigs/windows-gmsa v0.13.0, built by lab/k8s/build-webhook.sh) ------
def _call(webhook, path, method='GET', body=None, content_type='application/json'):
    """An HTTPS request to the webhook process, its certificate verified with the lab's CA bundle."""
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=webhook.ca_bundle)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(webhook.url + path, data=data, method=method, headers={'Content-Type': content_type})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.headers.get('Content-Type'), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get('Content-Type'), exc.read()


def test_webhook_is_upstream_release(gmsa_webhook):
    import subprocess

    assert _call(gmsa_webhook, '/info') == (200, 'application/json', b'{"version":"v0.13.0"}')
    assert _call(gmsa_webhook, '/health')[0] == 204
    assert _call(gmsa_webhook, '/nowhere')[0] == 404
    assert _call(gmsa_webhook, '/mutate')[0] == 405  # not a POST
    assert _call(gmsa_webhook, '/mutate', 'POST', {}, 'application/json; charset=utf-8')[0] == 415  # exact type only
    out = subprocess.run([gmsa_webhook.binary, '--version'], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout == 'windows-gmsa-webhook vv0.13.0\n'  # upstream prefixes the tag with another v


def _review(operation, pod, old=None):
    request = {'uid': 'u-1', 'kind': {'group': '', 'version': 'v1', 'kind': 'Pod'},
               'resource': {'group': '', 'version': 'v1', 'resource': 'pods'}, 'namespace': NS,
               'operation': operation, 'object': pod}
    if old is not None:
        request['oldObject'] = old
    return {'apiVersion': 'admission.k8s.io/v1', 'kind': 'AdmissionReview', 'request': request}


def test_update_changing_gmsa_is_refused_by_upstream(gmsa_webhook):
    """The API server refuses such pod updates itself (spec immutable), so the review is sent directly."""
    old = gmsa_pod('p', 'allowed')
    new = json.loads(json.dumps(old))
    new['spec']['containers'][0]['securityContext']['windowsOptions'] = {
        'gmsaCredentialSpecName': 'other', 'gmsaCredentialSpec': '{}'}
    status, dummy, body = _call(gmsa_webhook, '/validate', 'POST', _review('UPDATE', new, old))
    response = json.loads(body)['response']
    assert status == 200 and response['uid'] == 'u-1' and response['allowed'] is False
    assert response['status'] == {
        'metadata': {}, 'code': 403,
        'message': 'cannot update an existing pod\'s GMSA settings (GMSA name and contents modified on container "app")'}
    same = _call(gmsa_webhook, '/validate', 'POST', _review('UPDATE', old, old))
    assert json.loads(same[2])['response']['allowed'] is True


def test_contents_without_name_is_refused_by_upstream(gmsa_webhook):
    pod = gmsa_pod('p', 'allowed')
    pod['spec']['securityContext']['windowsOptions'] = {'gmsaCredentialSpec': '{}'}
    dummy, dummy2, body = _call(gmsa_webhook, '/validate', 'POST', _review('CREATE', pod))
    assert json.loads(body)['response']['status'] == {
        'metadata': {}, 'code': 422,
        'message': 'pod "p" has a GMSA cred spec set, but does not define the name of the corresponding resource'}
