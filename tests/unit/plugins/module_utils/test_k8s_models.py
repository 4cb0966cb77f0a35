"""Pure Kubernetes models: CRD, credential spec resources, RBAC, names, webhook objects, certificates."""

from __future__ import annotations

import base64
import datetime

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.models import certificates as certs
from ansible_collections.winkube.gmsa.plugins.module_utils.models import crd, names, rbac
from ansible_collections.winkube.gmsa.plugins.module_utils.models import webhook as wh

CREDSPEC = {
    'CmsPlugins': ['ActiveDirectory'],
    'DomainJoinConfig': {'Sid': 'S-1-5-21-1', 'MachineAccountName': 'WebApp1', 'Guid': 'g', 'DnsTreeName': 'c.test',
                         'DnsName': 'c.test', 'NetBiosName': 'C'},
    'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': [{'Name': 'WebApp1', 'Scope': 'c.test'}]},
}
NOW = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)


# -- names ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('value, ok', [('gmsa-webapp1', True), ('a.b-c', True), ('Bad', False), ('-a', False),
                                       ('a_b', False), ('a' * 254, False), ('', False)])
def test_dns1123_subdomain(value, ok):
    assert names.is_dns1123_subdomain(value) is ok
    assert (names.dns1123_subdomain_error(value) is None) is ok


def test_dns1123_label_length():
    assert names.is_dns1123_label('a' * 63) and not names.is_dns1123_label('a' * 64)
    assert not names.is_dns1123_label('a.b')


def test_derived_names():
    assert names.credential_spec_name('WebApp1$') == 'gmsa-webapp1'
    assert names.credential_spec_name('Web_App 1') == 'gmsa-web-app-1'
    assert names.cluster_role_name('gmsa-webapp1') == 'winkube-gmsa-use-gmsa-webapp1'
    assert names.credspec_label_value('a' * 63) == 'a' * 63
    long_value = names.credspec_label_value('a' * 100)
    assert len(long_value) <= 63 and long_value.startswith('sha1-')


# -- CRD and credential specs --------------------------------------------------------------------------------
def test_crd_matches_upstream_v0_13_0():
    obj = crd.build_crd()
    assert obj['metadata']['name'] == 'gmsacredentialspecs.windows.k8s.io'
    assert obj['metadata']['annotations']['api-approved.kubernetes.io'].endswith('689-windows-gmsa')
    spec = obj['spec']
    assert spec['scope'] == 'Cluster' and spec['group'] == 'windows.k8s.io'
    assert spec['names'] == {'kind': 'GMSACredentialSpec', 'plural': 'gmsacredentialspecs'}
    assert spec['conversion'] == {'strategy': 'None'}
    versions = {v['name']: v for v in spec['versions']}
    assert versions['v1']['served'] and versions['v1']['storage'] and 'deprecated' not in versions['v1']
    assert versions['v1alpha1']['served'] and not versions['v1alpha1']['storage'] and versions['v1alpha1']['deprecated']
    assert versions['v1']['schema'] == versions['v1alpha1']['schema']
    props = versions['v1']['schema']['openAPIV3Schema']['properties']['credspec']['properties']
    assert props['DomainJoinConfig']['properties'].keys() == {
        'DnsName', 'DnsTreeName', 'Guid', 'MachineAccountName', 'NetBiosName', 'Sid'}
    adc = props['ActiveDirectoryConfig']['properties']
    assert adc['GroupManagedServiceAccounts']['items']['properties'].keys() == {'Name', 'Scope'}
    assert adc['HostAccountConfig']['properties'].keys() == {'PluginGUID', 'PluginInput', 'PortableCcgVersion'}


@pytest.mark.parametrize('content', [
    CREDSPEC,
    '{"CmsPlugins": ["ActiveDirectory"], "ActiveDirectoryConfig": {"GroupManagedServiceAccounts": '
    '[{"Name": "WebApp1", "Scope": "c.test"}]}}',
    'ActiveDirectoryConfig:\n  GroupManagedServiceAccounts:\n    - {Name: WebApp1, Scope: c.test}\n',
    {'apiVersion': 'windows.k8s.io/v1', 'kind': 'GMSACredentialSpec', 'credspec': CREDSPEC},
])
def test_credspec_content_forms(content):
    obj = crd.build_credential_spec('gmsa-webapp1', content)
    assert obj['credspec']['ActiveDirectoryConfig']['GroupManagedServiceAccounts'][0]['Name'] == 'WebApp1'
    assert obj['metadata']['labels'][names.CREDSPEC_LABEL] == 'gmsa-webapp1'


@pytest.mark.parametrize('name, content, message', [
    ('Bad_Name', CREDSPEC, 'DNS-1123'),
    ('ok', {'CmsPlugins': ['ActiveDirectory']}, 'ActiveDirectoryConfig is missing'),
    ('ok', {'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': []}}, 'non-empty'),
    ('ok', {'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': [{'Name': 'x'}]}}, 'Name and Scope'),
    ('ok', '[1, 2]', 'mapping'),
    ('ok', '{not json: [', 'neither JSON nor YAML'),
    ('ok', dict(CREDSPEC, Extra=1), 'unknown top-level key'),
])
def test_credspec_validation(name, content, message):
    with pytest.raises(ValueError, match=message):
        crd.build_credential_spec(name, content)


def test_credspec_leaves_become_strings():
    content = dict(CREDSPEC)
    content['ActiveDirectoryConfig'] = dict(CREDSPEC['ActiveDirectoryConfig'],
                                            HostAccountConfig={'PortableCcgVersion': 1, 'PluginGUID': '{x}'})
    obj = crd.build_credential_spec('a', content)
    assert obj['credspec']['ActiveDirectoryConfig']['HostAccountConfig']['PortableCcgVersion'] == '1'


# -- RBAC ----------------------------------------------------------------------------------------------------
def test_rbac_objects():
    objects = rbac.build_rbac('gmsa-webapp1', [{'namespace': 'web', 'service_accounts': ['webapp', 'default']},
                                               {'namespace': 'web', 'service_accounts': ['webapp']},
                                               {'namespace': 'api', 'service_accounts': ['api']}])
    role, api_binding, web_binding = objects
    assert role['rules'] == [{'apiGroups': ['windows.k8s.io'], 'resources': ['gmsacredentialspecs'],
                              'resourceNames': ['gmsa-webapp1'], 'verbs': ['use']}]
    assert api_binding['metadata']['namespace'] == 'api'
    assert [s['name'] for s in web_binding['subjects']] == ['default', 'webapp']
    assert web_binding['roleRef'] == {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole',
                                      'name': 'winkube-gmsa-use-gmsa-webapp1'}


def test_rbac_validation_lists_every_problem():
    with pytest.raises(ValueError) as info:
        rbac.build_rbac('gmsa-a', [{'namespace': 'Bad_NS', 'service_accounts': ['a']},
                                   {'namespace': 'ok', 'service_accounts': ['Bad_SA']},
                                   {'namespace': 'empty', 'service_accounts': []}])
    text = str(info.value)
    assert 'Bad_NS' in text and 'Bad_SA' in text and 'lists no service_accounts' in text


# -- certificates --------------------------------------------------------------------------------------------
NAMES = certs.service_dns_names('gmsa-webhook', 'gmsa-webhook')


def secret_of(plan):
    return {certs.SECRET_CERT: plan.cert_pem, certs.SECRET_KEY: plan.key_pem, certs.SECRET_CA: plan.ca_pem}


def test_create_then_keep():
    plan = certs.plan_tls(None, NAMES, now=NOW)
    assert plan.action == 'create' and plan.previous_ca_pem is None
    info = certs.describe(plan.cert_pem)
    assert info['names'] == NAMES
    again = certs.plan_tls(secret_of(plan), NAMES, now=NOW + datetime.timedelta(days=100))
    assert again.action == 'keep' and again.cert_pem == plan.cert_pem and not again.changed


def test_rotate_within_margin_and_transition_bundle():
    plan = certs.plan_tls(None, NAMES, now=NOW, validity_days=60, renew_before_days=10)
    later = certs.plan_tls(secret_of(plan), NAMES, now=NOW + datetime.timedelta(days=51), validity_days=60,
                           renew_before_days=10)
    assert later.action == 'rotate' and 'within renew_before_days' in later.reasons[0]
    assert later.previous_ca_pem == plan.ca_pem
    bundle = later.transition_bundle()
    assert certs.split_pem_bundle(bundle) == [plan.ca_pem, later.ca_pem]
    assert later.final_bundle() == later.ca_pem


def test_rotate_when_names_change_or_forced_or_broken():
    plan = certs.plan_tls(None, NAMES, now=NOW)
    assert 'does not cover 127.0.0.1' in certs.plan_tls(secret_of(plan), ['127.0.0.1'] + NAMES, now=NOW).reasons[0]
    assert certs.plan_tls(secret_of(plan), NAMES, now=NOW, force_rotate=True).reasons == ['rotation forced']
    other = certs.plan_tls(None, NAMES, now=NOW)
    mixed = dict(secret_of(plan), **{certs.SECRET_CA: other.ca_pem})
    assert 'not signed by the stored CA' in ' '.join(certs.plan_tls(mixed, NAMES, now=NOW).reasons)
    wrong_key = dict(secret_of(plan), **{certs.SECRET_KEY: other.key_pem})
    assert 'does not match' in ' '.join(certs.plan_tls(wrong_key, NAMES, now=NOW).reasons)
    assert certs.plan_tls({certs.SECRET_CERT: 'junk', certs.SECRET_KEY: 'x', certs.SECRET_CA: 'y'},
                          NAMES, now=NOW).action == 'rotate'


def test_ip_san_and_bad_margins():
    plan = certs.plan_tls(None, ['127.0.0.1', 'a.svc'], now=NOW)
    assert set(certs.describe(plan.cert_pem)['names']) == {'127.0.0.1', 'a.svc'}
    with pytest.raises(ValueError):
        certs.plan_tls(None, NAMES, now=NOW, validity_days=10, renew_before_days=30)


def test_ca_bundle_deduplicates():
    plan = certs.plan_tls(None, NAMES, now=NOW)
    assert certs.ca_bundle(plan.ca_pem, plan.ca_pem) == plan.ca_pem


# -- webhook -------------------------------------------------------------------------------------------------
def settings(**kwargs):
    return wh.settings_with_defaults(kwargs)


def kinds(objects):
    return [o['kind'] for o in objects]


def test_base_objects_service_mode():
    s = settings(pod_disruption_budget=True, random_hostname=True, cert_reload=True)
    plan = certs.plan_tls(None, wh.tls_names(s), now=NOW)
    objects = wh.build_base_objects(s, plan)
    assert kinds(objects) == ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Secret',
                              'Deployment', 'Service', 'PodDisruptionBudget']
    assert objects[0]['metadata']['labels']['gmsa-webhook'] == 'disabled'
    dep = objects[5]
    container = dep['spec']['template']['spec']['containers'][0]
    assert container['image'] == 'registry.k8s.io/gmsa-webhook/k8s-gmsa-webhook:v0.13.0'
    assert container['args'] == ['--cert-reload=true']
    assert {e['name']: e['value'] for e in container['env']} == {
        'TLS_CRT': '/tls/crt', 'TLS_KEY': '/tls/key', 'HTTPS_PORT': '443', 'LOG_LEVEL': 'info',
        'QPS': '30', 'BURST': '50', 'RANDOM_HOSTNAME': 'true'}
    assert dep['spec']['template']['spec']['nodeSelector'] == {'kubernetes.io/os': 'linux'}
    assert wh.TLS_CHECKSUM_ANNOTATION in dep['spec']['template']['metadata']['annotations']
    secret = objects[4]
    assert base64.b64decode(secret['data']['ca.crt']).decode() == plan.ca_pem


def test_image_reference_overrides():
    assert wh.image_reference(settings(image_registry='mirror.example', image_tag='v1', image_digest='sha256:ab')) \
        == 'mirror.example/gmsa-webhook/k8s-gmsa-webhook:v1@sha256:ab'


def test_webhook_configurations():
    s = settings(excluded_namespaces=['kube-system', 'monitoring'])
    mutating, validating = wh.build_webhook_configurations(s, 'PEM', use_match_conditions=True)
    m, v = mutating['webhooks'][0], validating['webhooks'][0]
    assert m['name'] == v['name'] == 'admission-webhook.windows-gmsa.sigs.k8s.io'
    assert m['rules'][0]['operations'] == ['CREATE'] and v['rules'][0]['operations'] == ['CREATE', 'UPDATE']
    assert m['failurePolicy'] == 'Fail' and m['sideEffects'] == 'None'
    assert m['clientConfig']['service'] == {'name': 'gmsa-webhook', 'namespace': 'gmsa-webhook',
                                            'path': '/mutate', 'port': 443}
    assert base64.b64decode(m['clientConfig']['caBundle']) == b'PEM'
    assert m['namespaceSelector']['matchExpressions'][2]['values'] == ['gmsa-webhook', 'kube-system', 'monitoring']
    assert 'gmsaCredentialSpecName' in m['matchConditions'][0]['expression']
    assert 'oldObject' in v['matchConditions'][0]['expression'] and 'oldObject' not in m['matchConditions'][0]['expression']
    plain = wh.build_webhook_configurations(s, 'PEM', use_match_conditions=False)[0]
    assert 'matchConditions' not in plain['webhooks'][0]


def test_url_mode_and_cert_manager():
    s = settings(webhook_url='https://127.0.0.1:9443/', certificate_mode='external', ca_bundle='-----BEGIN CERTIFICATE-----')
    assert wh.validate_settings(s) == []
    assert kinds(wh.build_base_objects(s)) == ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding']
    m, v = wh.build_webhook_configurations(s, 'PEM', True)
    assert m['webhooks'][0]['clientConfig']['url'] == 'https://127.0.0.1:9443/mutate'
    assert v['webhooks'][0]['clientConfig']['url'] == 'https://127.0.0.1:9443/validate'
    assert wh.tls_names(s, '127.0.0.1')[0] == '127.0.0.1'

    cm = settings(certificate_mode='cert_manager')
    objects = wh.build_base_objects(cm)
    assert kinds(objects)[4:6] == ['Issuer', 'Certificate']
    assert objects[5]['spec']['dnsNames'] == certs.service_dns_names('gmsa-webhook', 'gmsa-webhook')
    m = wh.build_webhook_configurations(cm, None, True)[0]
    assert m['metadata']['annotations'][wh.CAINJECTOR_ANNOTATION] == 'gmsa-webhook/gmsa-webhook-tls'
    assert 'caBundle' not in m['webhooks'][0]['clientConfig']


@pytest.mark.parametrize('kwargs, message', [
    ({'namespace': 'Bad_NS'}, 'DNS-1123'),
    ({'webhook_url': 'http://x'}, 'https://'),
    ({'certificate_mode': 'external'}, 'needs ca_bundle'),
    ({'image_digest': 'md5:1'}, 'sha256'),
    ({'timeout_seconds': 60}, 'between 1 and 30'),
    ({'cert_validity_days': 10, 'renew_before_days': 30}, 'larger than'),
])
def test_webhook_validation(kwargs, message):
    assert message in ' '.join(wh.validate_settings(settings(**kwargs)))


def test_all_refs_delete_configurations_first_and_namespace_last():
    refs = wh.all_refs(settings())
    assert refs[0][1] == 'ValidatingWebhookConfiguration' and refs[-1][1] == 'Namespace'
