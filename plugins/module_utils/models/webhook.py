# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The objects of the windows-gmsa admission webhook (upstream v0.13.0 layout, hardened). Pure, no I/O."""

from __future__ import annotations

import base64

from ansible_collections.winkube.gmsa.plugins.module_utils.models.certificates import (
    SECRET_CA,
    SECRET_CERT,
    SECRET_KEY,
    fingerprint,
    service_dns_names,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    dns1123_label_error,
    dns1123_subdomain_error,
    managed_labels,
)

WEBHOOK_NAME = 'admission-webhook.windows-gmsa.sigs.k8s.io'
DEFAULT_REGISTRY = 'registry.k8s.io'
DEFAULT_REPOSITORY = 'gmsa-webhook/k8s-gmsa-webhook'
DEFAULT_TAG = 'v0.13.0'
# Namespaces opt out with either label: upstream's deploy script labels with gmsa-webhook=disabled, its Helm
# chart selects on windows.k8s.io/disabled=true. Both are honoured so namespaces labelled for either keep working.
DISABLED_LABEL = 'gmsa-webhook'
OPT_OUT_LABELS = ((DISABLED_LABEL, 'disabled'), ('windows.k8s.io/disabled', 'true'))
# namespace_opt_in: only namespaces carrying this label are sent to the webhook (upstream issue #25, PR #90).
OPT_IN_LABEL = ('windows.k8s.io/enabled', 'true')
TLS_CHECKSUM_ANNOTATION = 'winkube.gmsa/tls-sha256'
CAINJECTOR_ANNOTATION = 'cert-manager.io/inject-ca-from'
MATCH_CONDITIONS_MIN_VERSION = (1, 30)

DEFAULTS = {
    'name': 'gmsa-webhook',
    'namespace': 'gmsa-webhook',
    'image_registry': DEFAULT_REGISTRY,
    'image_repository': DEFAULT_REPOSITORY,
    'image_tag': DEFAULT_TAG,
    'image_digest': None,
    'image_pull_policy': 'IfNotPresent',
    'replicas': 2,
    'node_selector': {'kubernetes.io/os': 'linux'},
    'tolerations': [],
    'resources': {'requests': {'cpu': '10m', 'memory': '32Mi'}, 'limits': {'memory': '128Mi'}},
    'pod_disruption_budget': False,
    'log_level': 'info',
    'random_hostname': False,
    'cert_reload': None,  # None: on whenever the collection rotates certificates (see cert_reload_enabled)
    'qps': 30.0,
    'burst': 50,
    'namespace_opt_in': False,
    'https_port': 443,
    'excluded_namespaces': ['kube-system'],
    'failure_policy': 'Fail',
    'timeout_seconds': 10,
    'webhook_url': None,
    'certificate_mode': 'self_signed',
    'cert_manager_issuer': None,
    'cert_manager_issuer_kind': 'Issuer',
    'cert_validity_days': 365,
    'renew_before_days': 30,
}


def settings_with_defaults(settings):
    merged = dict(DEFAULTS)
    merged.update(dict((k, v) for k, v in (settings or {}).items() if v is not None))
    return merged


def validate_settings(s):
    """Problems with the settings (empty list when fine)."""
    problems = []
    for key in ('name', 'namespace'):
        error = dns1123_label_error(s.get(key), key)
        if error:
            problems.append(error)
    for namespace in s.get('excluded_namespaces') or []:
        error = dns1123_label_error(namespace, 'excluded namespace')
        if error:
            problems.append(error)
    if s.get('image_digest') and not str(s['image_digest']).startswith('sha256:'):
        problems.append('image_digest must look like sha256:<hex>')
    if not s.get('image_tag') and not s.get('image_digest'):
        problems.append('set image_tag or image_digest')
    url = s.get('webhook_url')
    if url and not str(url).startswith('https://'):
        problems.append('webhook_url must be an https:// URL')
    if url and s.get('certificate_mode') == 'cert_manager':
        problems.append('certificate_mode=cert_manager needs the in-cluster Service, not webhook_url')
    if s.get('certificate_mode') == 'external' and '-----BEGIN CERTIFICATE-----' not in (s.get('ca_bundle') or ''):
        problems.append('certificate_mode=external needs ca_bundle: the PEM CA certificate(s) that verify the '
                        "webhook's serving certificate")
    if int(s.get('cert_validity_days') or 0) <= int(s.get('renew_before_days') or 0):
        problems.append('cert_validity_days must be larger than renew_before_days')
    if s.get('replicas', 1) < 0:
        problems.append('replicas must not be negative')
    if not 1 <= int(s.get('timeout_seconds') or 10) <= 30:
        problems.append('timeout_seconds must be between 1 and 30')
    if float(s.get('qps') or 0) <= 0:
        problems.append('qps must be larger than 0 (the chart uses 30)')
    if int(s.get('burst') or 0) < 1:
        problems.append('burst must be 1 or more (the chart uses 50)')
    return problems


def image_reference(s):
    ref = '%s/%s' % (s['image_registry'].rstrip('/'), s['image_repository'].strip('/')) \
        if s.get('image_registry') else s['image_repository']
    if s.get('image_tag'):
        ref += ':' + s['image_tag']
    if s.get('image_digest'):
        ref += '@' + s['image_digest']
    return ref


def secret_name(s):
    return s['name'] + '-tls'


def cluster_role_name(s):
    return '%s-%s-rbac-role' % (s['namespace'], s['name'])


def tls_names(s, url_host=None):
    """The names the serving certificate must cover."""
    names = service_dns_names(s['name'], s['namespace'])
    if url_host and url_host not in names:
        names.insert(0, url_host)
    return names


def _labels(s):
    return managed_labels('admission-webhook', {'app': s['name']})


def _meta(s, name, namespaced=True, **extra):
    meta = {'name': name, 'labels': _labels(s)}
    if namespaced:
        meta['namespace'] = s['namespace']
    meta.update(extra)
    return meta


def _b64(text):
    return base64.b64encode(text.encode('ascii')).decode('ascii')


def _has_gmsa(prefix):
    return ('has({p}.securityContext) && has({p}.securityContext.windowsOptions) && '
            '(has({p}.securityContext.windowsOptions.gmsaCredentialSpecName) || '
            'has({p}.securityContext.windowsOptions.gmsaCredentialSpec))').format(p=prefix)


def gmsa_cel(var='object'):
    """CEL: true when the pod (or one of its containers) names or carries a GMSA credential spec."""
    return ('({pod}) || {v}.spec.containers.exists(c, {c}) || '
            '(has({v}.spec.initContainers) && {v}.spec.initContainers.exists(c, {c}))').format(
        pod=_has_gmsa(var + '.spec'), v=var, c=_has_gmsa('c'))


def match_conditions(validating):
    expression = gmsa_cel('object')
    if validating:
        expression = '(%s) || (oldObject != null && (%s))' % (expression, gmsa_cel('oldObject'))
    return [{'name': 'pod-references-gmsa-credential-spec', 'expression': expression}]


def cert_reload_enabled(s):
    """--cert-reload: on by default whenever certificates are rotated by the collection or cert-manager."""
    if s.get('cert_reload') is None:
        return s['certificate_mode'] in ('self_signed', 'cert_manager')
    return bool(s['cert_reload'])


def _number(value):
    """QPS as the chart renders it (30.0 -> '30', 7.5 -> '7.5')."""
    return ('%f' % float(value)).rstrip('0').rstrip('.')


def namespace_selector(s):
    excluded = sorted(set(list(s.get('excluded_namespaces') or []) + [s['namespace']]))
    expressions = [{'key': key, 'operator': 'NotIn', 'values': [value]} for key, value in OPT_OUT_LABELS]
    expressions.append({'key': 'kubernetes.io/metadata.name', 'operator': 'NotIn', 'values': excluded})
    if s.get('namespace_opt_in'):
        expressions.append({'key': OPT_IN_LABEL[0], 'operator': 'In', 'values': [OPT_IN_LABEL[1]]})
    return {'matchExpressions': expressions}


def _client_config(s, path, ca_bundle_pem):
    if s.get('webhook_url'):
        config = {'url': s['webhook_url'].rstrip('/') + path}
    else:
        config = {'service': {'name': s['name'], 'namespace': s['namespace'], 'path': path, 'port': 443}}
    if ca_bundle_pem:
        config['caBundle'] = _b64(ca_bundle_pem)
    return config


def build_webhook_configurations(s, ca_bundle_pem, use_match_conditions):
    """The MutatingWebhookConfiguration and ValidatingWebhookConfiguration."""
    objects = []
    for kind, path, operations, validating in (
            ('MutatingWebhookConfiguration', '/mutate', ['CREATE'], False),
            ('ValidatingWebhookConfiguration', '/validate', ['CREATE', 'UPDATE'], True)):
        webhook = {
            'name': WEBHOOK_NAME,
            'clientConfig': _client_config(s, path, ca_bundle_pem),
            'rules': [{'operations': operations, 'apiGroups': [''], 'apiVersions': ['*'],
                       'resources': ['pods'], 'scope': '*'}],
            'failurePolicy': s['failure_policy'],
            'sideEffects': 'None',
            'admissionReviewVersions': ['v1', 'v1beta1'],
            'timeoutSeconds': int(s['timeout_seconds']),
            'namespaceSelector': namespace_selector(s),
        }
        if use_match_conditions:
            webhook['matchConditions'] = match_conditions(validating)
        if not validating:
            webhook['reinvocationPolicy'] = 'Never'
        metadata = _meta(s, s['name'], namespaced=False)
        if s['certificate_mode'] == 'cert_manager':
            metadata['annotations'] = {CAINJECTOR_ANNOTATION: '%s/%s' % (s['namespace'], secret_name(s))}
        objects.append({'apiVersion': 'admissionregistration.k8s.io/v1', 'kind': kind, 'metadata': metadata,
                        'webhooks': [webhook]})
    return objects


def build_tls_objects(s, tls_plan=None):
    """The TLS Secret (self_signed) or the cert-manager Issuer and Certificate (nothing when external)."""
    if s['certificate_mode'] == 'external':
        return []
    if s['certificate_mode'] == 'cert_manager':
        objects = []
        issuer = s.get('cert_manager_issuer')
        issuer_kind = s.get('cert_manager_issuer_kind') or 'Issuer'
        if not issuer:
            issuer, issuer_kind = s['name'] + '-selfsigned', 'Issuer'
            objects.append({'apiVersion': 'cert-manager.io/v1', 'kind': 'Issuer',
                            'metadata': _meta(s, issuer), 'spec': {'selfSigned': {}}})
        objects.append({
            'apiVersion': 'cert-manager.io/v1', 'kind': 'Certificate',
            'metadata': _meta(s, secret_name(s)),
            'spec': {
                'secretName': secret_name(s),
                'dnsNames': tls_names(s),
                'duration': '%dh' % (int(s['cert_validity_days']) * 24),
                'renewBefore': '%dh' % (int(s['renew_before_days']) * 24),
                'issuerRef': {'name': issuer, 'kind': issuer_kind},
                'privateKey': {'rotationPolicy': 'Always'},
            },
        })
        return objects
    return [{
        'apiVersion': 'v1', 'kind': 'Secret', 'type': 'kubernetes.io/tls',
        'metadata': _meta(s, secret_name(s)),
        'data': {SECRET_CERT: _b64(tls_plan.cert_pem), SECRET_KEY: _b64(tls_plan.key_pem),
                 SECRET_CA: _b64(tls_plan.ca_pem)},
    }]


def build_deployment(s, tls_plan=None):
    env = [
        {'name': 'TLS_CRT', 'value': '/tls/crt'},
        {'name': 'TLS_KEY', 'value': '/tls/key'},
        {'name': 'HTTPS_PORT', 'value': str(s['https_port'])},
        {'name': 'LOG_LEVEL', 'value': s['log_level']},
        # the webhook's client-go rate limits, as upstream's chart sets them (client-go alone: 5/10)
        {'name': 'QPS', 'value': _number(s['qps'])},
        {'name': 'BURST', 'value': str(int(s['burst']))},
        {'name': 'RANDOM_HOSTNAME', 'value': 'true' if s['random_hostname'] else 'false'},
    ]
    container = {
        'name': s['name'],
        'image': image_reference(s),
        'imagePullPolicy': s['image_pull_policy'],
        'ports': [{'name': 'https', 'containerPort': int(s['https_port']), 'protocol': 'TCP'}],
        'env': env,
        'readinessProbe': {'httpGet': {'scheme': 'HTTPS', 'path': '/health', 'port': int(s['https_port'])}},
        'volumeMounts': [{'name': 'tls', 'mountPath': '/tls', 'readOnly': True}],
        'securityContext': {'allowPrivilegeEscalation': False},
        # the chart's spelling, which upstream's tooling looks for; Go's flag package reads both
        'args': ['--cert-reload=%s' % ('true' if cert_reload_enabled(s) else 'false')],
    }
    if s.get('resources'):
        container['resources'] = s['resources']
    pod_meta = {'labels': {'app': s['name']}}
    if tls_plan is not None and s['certificate_mode'] == 'self_signed':
        # a new certificate changes the pod template, so a rollout picks it up and can be waited for
        pod_meta['annotations'] = {TLS_CHECKSUM_ANNOTATION: fingerprint(tls_plan.cert_pem)[:32]}
    pod_spec = {
        'serviceAccountName': s['name'],
        'os': {'name': 'linux'},  # the image is Linux only (the chart sets it too)
        'nodeSelector': s['node_selector'] or {},
        'containers': [container],
        'volumes': [{'name': 'tls', 'secret': {'secretName': secret_name(s), 'items': [
            {'key': SECRET_KEY, 'path': 'key'}, {'key': SECRET_CERT, 'path': 'crt'}]}}],
    }
    if s.get('tolerations'):
        pod_spec['tolerations'] = s['tolerations']
    return {
        'apiVersion': 'apps/v1', 'kind': 'Deployment',
        'metadata': _meta(s, s['name']),
        'spec': {
            'replicas': int(s['replicas']),
            'selector': {'matchLabels': {'app': s['name']}},
            'template': {'metadata': pod_meta, 'spec': pod_spec},
        },
    }


def build_base_objects(s, tls_plan=None):
    """Everything but the webhook configurations, in apply order."""
    objects = [
        {'apiVersion': 'v1', 'kind': 'Namespace',
         'metadata': {'name': s['namespace'],
                      'labels': managed_labels('admission-webhook', dict(OPT_OUT_LABELS))}},
        {'apiVersion': 'v1', 'kind': 'ServiceAccount', 'metadata': _meta(s, s['name'])},
        {'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'ClusterRole',
         'metadata': _meta(s, cluster_role_name(s), namespaced=False),
         'rules': [
             {'apiGroups': ['windows.k8s.io'], 'resources': ['gmsacredentialspecs'], 'verbs': ['get']},
             {'apiGroups': ['authorization.k8s.io'], 'resources': ['localsubjectaccessreviews'],
              'verbs': ['create']},
         ]},
        {'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'ClusterRoleBinding',
         'metadata': _meta(s, cluster_role_name(s) + '-binding', namespaced=False),
         'subjects': [{'kind': 'ServiceAccount', 'name': s['name'], 'namespace': s['namespace']}],
         'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole',
                     'name': cluster_role_name(s)}},
    ]
    objects.extend(build_tls_objects(s, tls_plan))
    if not s.get('webhook_url'):
        objects.append(build_deployment(s, tls_plan))
        objects.append({
            'apiVersion': 'v1', 'kind': 'Service', 'metadata': _meta(s, s['name']),
            'spec': {'selector': {'app': s['name']},
                     'ports': [{'name': 'https', 'port': 443, 'targetPort': int(s['https_port']),
                                'protocol': 'TCP'}]},
        })
        if s['pod_disruption_budget']:
            objects.append({
                'apiVersion': 'policy/v1', 'kind': 'PodDisruptionBudget', 'metadata': _meta(s, s['name']),
                'spec': {'minAvailable': 1, 'selector': {'matchLabels': {'app': s['name']}}},
            })
    return objects


def all_refs(s):
    """(apiVersion, kind, namespace, name) of every object the webhook may own, in delete order."""
    ns = s['namespace']
    return [
        ('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', None, s['name']),
        ('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', None, s['name']),
        ('policy/v1', 'PodDisruptionBudget', ns, s['name']),
        ('v1', 'Service', ns, s['name']),
        ('apps/v1', 'Deployment', ns, s['name']),
        ('v1', 'Secret', ns, secret_name(s)),
        ('v1', 'ServiceAccount', ns, s['name']),
        ('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', None, cluster_role_name(s) + '-binding'),
        ('rbac.authorization.k8s.io/v1', 'ClusterRole', None, cluster_role_name(s)),
        ('v1', 'Namespace', None, ns),
    ]


def cert_manager_refs(s):
    return [('cert-manager.io/v1', 'Certificate', s['namespace'], secret_name(s)),
            ('cert-manager.io/v1', 'Issuer', s['namespace'], s['name'] + '-selfsigned')]


def name_problems(s):
    problems = []
    error = dns1123_subdomain_error(cluster_role_name(s), 'derived ClusterRole name')
    if error:
        problems.append(error)
    return problems
