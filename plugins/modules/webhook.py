#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webhook
short_description: Deploy the windows-gmsa admission webhook
version_added: 0.1.0
description:
  - "Deploys the upstream windows-gmsa admission webhook (image C(registry.k8s.io/gmsa-webhook/k8s-gmsa-webhook:v0.13.0)
    by default): Namespace (labelled to opt out), ServiceAccount, ClusterRole and
    ClusterRoleBinding (C(get) gmsacredentialspecs, C(create) localsubjectaccessreviews), TLS Secret,
    Deployment on Linux nodes, Service on port 443, optional PodDisruptionBudget, and the
    MutatingWebhookConfiguration (pods CREATE) and ValidatingWebhookConfiguration (pods CREATE and UPDATE)."
  - The webhook configurations mirror upstream (C(failurePolicy=Fail), C(sideEffects=None), namespaces
    labelled C(gmsa-webhook=disabled) or C(windows.k8s.io/disabled=true) excluded, the client QPS/BURST of the
    chart) and add safeguards asked for upstream. CEL
    C(matchConditions) send only pods that name or carry a GMSA credential spec to the webhook, so a webhook
    outage cannot block other pods (needs Kubernetes 1.30 or later, see O(match_conditions)).
    C(kube-system) (see O(excluded_namespaces)) and the webhook's own namespace are never sent, so the
    webhook cannot deadlock its own recovery.
  - TLS with O(certificate_mode=self_signed) (default). A private CA and a serving certificate for
    C(<name>.<namespace>.svc) and C(<name>.<namespace>.svc.cluster.local) (plus the host of O(webhook_url))
    are generated, kept in the Secret C(<name>-tls) and reused while valid. The CA key is never stored.
    The pair is replaced O(renew_before_days) before expiry, when the names change, or with O(force_rotate).
    The rotation leaves no window in which admission fails. First the webhook configurations trust the old and
    the new CA, then the Secret and the Deployment switch to the new certificate, and after the rollout (with
    O(wait=true)) the old CA is dropped. Without a rollout to wait for (O(wait=false)), the old CA is dropped
    on the next run. With O(webhook_url), the next runs connect to the URL (a TLS handshake) and drop the old CA
    only once the webhook there serves a certificate that the new CA verifies for the URL's host; until then
    both CAs stay and RV(tls.previous_ca_kept) says why. A previous CA that has expired is dropped at once (nothing
    it signed passes the API server's check any more).
  - With O(certificate_mode=cert_manager), cert-manager issues the certificate (a self-signed Issuer unless
    O(cert_manager_issuer) is given) and its CA injector fills in C(caBundle).
  - With O(certificate_mode=external), the webhook's certificate is managed elsewhere and O(ca_bundle)
    verifies it.
  - With O(state=absent), removes every object above, never the CRD nor credential specs. Only objects carrying
    the label C(app.kubernetes.io/managed-by=winkube.gmsa) are deleted.
author:
  - winkube.gmsa contributors (@winkube)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.k8s_connection
options:
  state:
    description: Whether the webhook should be deployed.
    type: str
    choices: [present, absent]
    default: present
  name:
    description: Name of the Deployment, Service, ServiceAccount and webhook configurations.
    type: str
    default: gmsa-webhook
  namespace:
    description:
      - Namespace of the webhook; created when missing and labelled C(gmsa-webhook=disabled) and
        C(windows.k8s.io/disabled=true).
    type: str
    default: gmsa-webhook
  image_registry:
    description: Registry of the webhook image.
    type: str
    default: registry.k8s.io
  image_repository:
    description: Repository of the webhook image within O(image_registry).
    type: str
    default: gmsa-webhook/k8s-gmsa-webhook
  image_tag:
    description: Tag of the webhook image.
    type: str
    default: v0.13.0
  image_digest:
    description: Digest (C(sha256:...)) pinning the image; appended to the tag.
    type: str
  image_pull_policy:
    description: Pull policy of the webhook container.
    type: str
    choices: [Always, IfNotPresent, Never]
    default: IfNotPresent
  replicas:
    description: Replicas of the Deployment.
    type: int
    default: 2
  node_selector:
    description: Node selector of the webhook pods.
    type: dict
    default: {kubernetes.io/os: linux}
  tolerations:
    description: Tolerations of the webhook pods, as in a pod spec.
    type: list
    elements: dict
    default: []
  resources:
    description: Resource requests and limits of the webhook container, as in a container spec.
    type: dict
    default: {requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 128Mi}}
  pod_disruption_budget:
    description: Create a PodDisruptionBudget with C(minAvailable=1).
    type: bool
    default: false
  log_level:
    description: LOG_LEVEL of the webhook.
    type: str
    choices: [panic, fatal, error, warn, info, debug, trace]
    default: info
  random_hostname:
    description:
      - Set C(RANDOM_HOSTNAME=true). The webhook then gives each pod that references a GMSA credential spec and sets
        no C(spec.hostname) a random one (the first 15 characters of a UUID, lower case), and keeps a hostname the pod
        sets.
      - "Trade-off: Windows containers use their hostname as the machine name towards Active Directory. With the
        default (false) every replica of a Deployment gets the pod name as hostname, truncated to 15 characters for
        NetBIOS, so replicas whose names share those 15 characters use one name and clash
        (microsoft/Windows-Containers issue 405). A random hostname avoids that, but it is a meaningless name that
        changes with every pod, so logs, SPNs and access rules cannot rely on it."
    type: bool
    default: false
  cert_reload:
    description:
      - Pass C(--cert-reload=true) so the webhook reloads a renewed certificate from disk without a restart;
        C(--cert-reload=false) when off (the spelling of upstream's chart, which upstream's tooling looks for).
      - By default on when the collection or cert-manager rotates the certificate (O(certificate_mode=self_signed)
        or V(cert_manager)), off with O(certificate_mode=external).
      - Upstream v0.13.0 watches the two files themselves. A Secret volume replaces them through a symlink swap,
        so one process picks up only the first renewal (kubernetes-sigs/windows-gmsa issue 176). With
        O(certificate_mode=self_signed) this does not matter, because a rotation also changes the pod template and rolls
        the pods out. With cert-manager, restart the webhook pods after a renewal until upstream fixes this.
    type: bool
  qps:
    description:
      - QPS of the webhook's Kubernetes client (environment variable C(QPS)). Upstream's chart sets 30; without it
        the webhook runs at client-go's default of 5.
    type: float
    default: 30
  burst:
    description: BURST of the webhook's Kubernetes client (environment variable C(BURST)); the chart sets 50.
    type: int
    default: 50
  https_port:
    description: HTTPS_PORT, the port the webhook container listens on (the Service always listens on 443).
    type: int
    default: 443
  excluded_namespaces:
    description:
      - Namespaces never sent to the webhook, besides O(namespace) and namespaces labelled to opt out. Both
        opt-out labels are honoured, C(gmsa-webhook=disabled) (upstream's deploy script) and
        C(windows.k8s.io/disabled=true) (upstream's Helm chart).
    type: list
    elements: str
    default: [kube-system]
  namespace_opt_in:
    description:
      - Send only the pods of namespaces labelled C(windows.k8s.io/enabled=true) to the webhook (upstream issue 25,
        pull request 90). Pods elsewhere are then admitted without the webhook even while it is down, but they get
        no credential spec filled in and no access check either, so label every namespace that runs gMSA pods.
      - The opt-out labels and O(excluded_namespaces) still apply.
    type: bool
    default: false
  failure_policy:
    description: What the API server does when the webhook cannot be called.
    type: str
    choices: [Fail, Ignore]
    default: Fail
  timeout_seconds:
    description: How long the API server waits for the webhook (1 to 30).
    type: int
    default: 10
  match_conditions:
    description:
      - V(auto) adds the CEL matchConditions when the API server is 1.30 or later, V(always) always adds
        them, V(never) sends every pod like upstream does.
    type: str
    choices: [auto, always, never]
    default: auto
  webhook_url:
    description:
      - Base HTTPS URL of a webhook running outside the cluster, for example C(https://10.0.0.5:8443). The
        webhook configurations then use C(clientConfig.url) (C(/mutate), C(/validate) appended), and no
        Deployment, Service or PodDisruptionBudget is created. The ServiceAccount and RBAC are still created
        for the webhook's own identity.
      - The options of the webhook's container (O(random_hostname), O(cert_reload), O(qps), O(burst),
        O(log_level), O(https_port)) then only describe the Deployment the module would create; set the same
        flags and environment on the webhook at the URL yourself.
    type: str
  certificate_mode:
    description: Who provides the webhook's TLS certificate.
    type: str
    choices: [self_signed, cert_manager, external]
    default: self_signed
  ca_bundle:
    description:
      - PEM certificate(s) that verify the webhook's serving certificate; required with
        O(certificate_mode=external), ignored otherwise.
    type: str
  cert_validity_days:
    description: Validity of generated certificates in days.
    type: int
    default: 365
  renew_before_days:
    description: Replace the certificates when they expire within this many days.
    type: int
    default: 30
  force_rotate:
    description: Replace the certificates now (with O(certificate_mode=self_signed)); not idempotent.
    type: bool
    default: false
  cert_manager_issuer:
    description: Existing cert-manager issuer to use; by default a self-signed Issuer is created.
    type: str
  cert_manager_issuer_kind:
    description: Kind of O(cert_manager_issuer).
    type: str
    choices: [Issuer, ClusterIssuer]
    default: Issuer
  wait:
    description: Wait for the Deployment's rollout before publishing the webhook configurations.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for O(wait).
    type: int
    default: 300
  force_conflicts:
    description: Take over fields that another field manager set to a different value.
    type: bool
    default: false
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
    details: Returns the objects before and after the change in --diff mode (Secret values redacted).
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks HTTPS to the Kubernetes API server.
notes:
  - An unchanged webhook costs one LIST per kind (about ten requests) and no write.
seealso:
  - module: winkube.gmsa.crd
  - module: winkube.gmsa.credential_spec_rbac
"""

EXAMPLES = r"""
- name: Deploy the gMSA webhook with generated certificates
  winkube.gmsa.webhook:
    replicas: 2
    pod_disruption_budget: true

- name: Pin the image by digest from a mirror
  winkube.gmsa.webhook:
    image_registry: mirror.example.com
    image_digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

- name: Webhook running outside the cluster, its certificate managed elsewhere
  winkube.gmsa.webhook:
    webhook_url: https://10.0.0.5:8443
    certificate_mode: external
    ca_bundle: "{{ lookup('file', 'webhook-ca.pem') }}"

- name: Use cert-manager (the webhook reloads renewed certificates, --cert-reload=true by default)
  winkube.gmsa.webhook:
    certificate_mode: cert_manager

- name: Only namespaces labelled windows.k8s.io/enabled=true go through the webhook
  winkube.gmsa.webhook:
    namespace_opt_in: true

- name: Random hostnames for gMSA pods, so replicas do not share one name
  winkube.gmsa.webhook:
    random_hostname: true

- name: Remove the webhook (the CRD and credential specs stay)
  winkube.gmsa.webhook:
    state: absent
"""

RETURN = r"""
image:
  description: Image reference used.
  returned: state is present
  type: str
  sample: registry.k8s.io/gmsa-webhook/k8s-gmsa-webhook:v0.13.0
match_conditions:
  description: Whether the CEL matchConditions were added.
  returned: state is present
  type: bool
  sample: true
tls:
  description: What happened to the certificates and the resulting serving certificate.
  returned: state is present
  type: dict
  contains:
    action:
      description: V(keep), V(create), V(rotate), or V(managed) when cert-manager or someone else provides them.
      type: str
      sample: keep
    reasons:
      description: Why new certificates were made.
      type: list
      elements: str
      sample: [rotation forced]
    not_after:
      description: Expiry of the serving certificate.
      type: str
      sample: "2027-11-26T11:00:00+00:00"
    names:
      description: DNS names and IP addresses of the serving certificate.
      type: list
      elements: str
      sample: [gmsa-webhook.gmsa-webhook.svc, gmsa-webhook.gmsa-webhook.svc.cluster.local]
    ca_sha256:
      description: SHA-256 fingerprint of the CA certificate.
      type: str
      sample: 3f1c...
    previous_ca_trusted:
      description: Whether the webhook configurations still trust the previous CA (until the next run).
      type: bool
      sample: false
    previous_ca_kept:
      description:
        - Why the previous CA is still trusted after a rotation with O(webhook_url), when the webhook at the URL
          does not serve the new certificate yet (the TLS error seen); absent otherwise.
      type: str
      sample: "the webhook at https://10.0.0.5:8443 does not serve a certificate that the new CA verifies yet (...)"
cert_reload:
  description: Whether the webhook runs with C(--cert-reload=true).
  returned: state is present
  type: bool
  sample: true
objects:
  description: Every object handled, with the action taken (created, updated, deleted, unchanged, skipped).
  returned: always
  type: list
  elements: dict
  sample: [{api_version: v1, kind: Namespace, name: gmsa-webhook, action: unchanged}]
api_requests:
  description: Requests sent to the API server (total, per HTTP method, writes) and objects handled.
  returned: always
  type: dict
  sample: {requests: 11, by_method: {GET: 11}, writes: 0, objects: 10}
"""

import base64
import socket
import ssl

from ansible.module_utils.six.moves.urllib.parse import urlparse
from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import host_of, server_version
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.engine import run_module
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.waiter import wait_rollout
from ansible_collections.winkube.gmsa.plugins.module_utils.models import certificates as certs
from ansible_collections.winkube.gmsa.plugins.module_utils.models import webhook as model

WEBHOOK_OPTIONS = (
    'name', 'namespace', 'image_registry', 'image_repository', 'image_tag', 'image_digest', 'image_pull_policy',
    'replicas', 'node_selector', 'tolerations', 'resources', 'pod_disruption_budget', 'log_level',
    'random_hostname', 'cert_reload', 'qps', 'burst', 'namespace_opt_in', 'https_port', 'excluded_namespaces', 'failure_policy', 'timeout_seconds',
    'webhook_url', 'certificate_mode', 'ca_bundle', 'cert_validity_days', 'renew_before_days',
    'cert_manager_issuer', 'cert_manager_issuer_kind',
)


def _decoded_secret(secret):
    data = (secret or {}).get('data') or {}
    result = {}
    for key in (certs.SECRET_CERT, certs.SECRET_KEY, certs.SECRET_CA):
        try:
            result[key] = base64.b64decode(data.get(key) or '').decode('ascii')
        except (ValueError, UnicodeDecodeError):
            result[key] = ''
    return result


def _published_bundle(engine, config_refs):
    """The CA certificates the current webhook configurations trust (all of them, de-duplicated)."""
    pems = []
    for ref in config_refs:
        for hook in (engine.cache.get(ref) or {}).get('webhooks') or []:
            try:
                pems.append(base64.b64decode((hook.get('clientConfig') or {}).get('caBundle') or '').decode('ascii'))
            except (ValueError, UnicodeDecodeError):
                continue
    return certs.ca_bundle(*pems)


def _serving_problem(url, ca_pem, timeout=10):
    """None when the webhook at url serves a certificate that ca_pem verifies for the URL's host, else why not.

    The same check the API server makes, so the old CA is dropped only when admission keeps working."""
    parts = urlparse(url)
    try:
        context = ssl.create_default_context(cadata=ca_pem)
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=parts.hostname):
                return None
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        return ('the webhook at %s does not serve a certificate that the new CA verifies yet (%s); both CAs stay '
                'trusted until it does' % (url, exc))


def main():
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            name=dict(type='str', default='gmsa-webhook'),
            namespace=dict(type='str', default='gmsa-webhook'),
            image_registry=dict(type='str', default=model.DEFAULT_REGISTRY),
            image_repository=dict(type='str', default=model.DEFAULT_REPOSITORY),
            image_tag=dict(type='str', default=model.DEFAULT_TAG),
            image_digest=dict(type='str'),
            image_pull_policy=dict(type='str', choices=['Always', 'IfNotPresent', 'Never'], default='IfNotPresent'),
            replicas=dict(type='int', default=2),
            node_selector=dict(type='dict', default={'kubernetes.io/os': 'linux'}),
            tolerations=dict(type='list', elements='dict', default=[]),
            resources=dict(type='dict', default={'requests': {'cpu': '10m', 'memory': '32Mi'},
                                                 'limits': {'memory': '128Mi'}}),
            pod_disruption_budget=dict(type='bool', default=False),
            log_level=dict(type='str', choices=['panic', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'],
                           default='info'),
            random_hostname=dict(type='bool', default=False),
            cert_reload=dict(type='bool'),
            qps=dict(type='float', default=30.0),
            burst=dict(type='int', default=50),
            namespace_opt_in=dict(type='bool', default=False),
            https_port=dict(type='int', default=443),
            excluded_namespaces=dict(type='list', elements='str', default=['kube-system']),
            failure_policy=dict(type='str', choices=['Fail', 'Ignore'], default='Fail'),
            timeout_seconds=dict(type='int', default=10),
            match_conditions=dict(type='str', choices=['auto', 'always', 'never'], default='auto'),
            webhook_url=dict(type='str'),
            certificate_mode=dict(type='str', choices=['self_signed', 'cert_manager', 'external'],
                                  default='self_signed'),
            ca_bundle=dict(type='str'),
            cert_validity_days=dict(type='int', default=365),
            renew_before_days=dict(type='int', default=30),
            force_rotate=dict(type='bool', default=False),
            cert_manager_issuer=dict(type='str'),
            cert_manager_issuer_kind=dict(type='str', choices=['Issuer', 'ClusterIssuer'], default='Issuer'),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='int', default=300),
            force_conflicts=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    s = model.settings_with_defaults(dict((k, params[k]) for k in WEBHOOK_OPTIONS))
    # options given explicitly as empty stay empty
    for key in ('tolerations', 'excluded_namespaces', 'node_selector', 'resources'):
        s[key] = params[key]
    problems = model.validate_settings(s) + model.name_problems(s)
    if problems:
        module.fail_json(msg='invalid options: ' + '; '.join(problems))
    if s['certificate_mode'] == 'self_signed' and not certs.HAS_CRYPTOGRAPHY:
        from ansible.module_utils.basic import missing_required_lib
        module.fail_json(msg=missing_required_lib('cryptography'), exception=str(certs.CRYPTOGRAPHY_IMPORT_ERROR))

    def absent(engine):
        refs = model.all_refs(s)
        if s['certificate_mode'] == 'cert_manager':
            refs = refs[:5] + model.cert_manager_refs(s) + refs[5:]
        engine.delete(refs, only_managed=True)
        return {}

    def present(engine):
        use_match = params['match_conditions'] == 'always'
        if params['match_conditions'] == 'auto':
            use_match = server_version(engine.transport) >= model.MATCH_CONDITIONS_MIN_VERSION
        config_refs = [('admissionregistration.k8s.io/v1', kind, None, s['name'])
                       for kind in ('MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration')]
        engine.fetch(config_refs)
        plan = None
        tls = {'action': 'managed', 'reasons': []}
        if s['certificate_mode'] == 'self_signed':
            secret_ref = ('v1', 'Secret', s['namespace'], model.secret_name(s))
            names = model.tls_names(s, host_of(s['webhook_url']) if s['webhook_url'] else None)
            plan = certs.plan_tls(_decoded_secret(engine.current(secret_ref)), names,
                                  renew_before_days=s['renew_before_days'], validity_days=s['cert_validity_days'],
                                  force_rotate=params['force_rotate'])
            info = certs.describe(plan.cert_pem)
            tls = {'action': plan.action, 'reasons': plan.reasons, 'not_after': info['not_after'],
                   'names': info['names'], 'ca_sha256': certs.describe(plan.ca_pem)['sha256']}
            final_bundle = plan.final_bundle()
        elif s['certificate_mode'] == 'external':
            final_bundle = certs.ca_bundle(s['ca_bundle'])
        else:
            final_bundle = None  # cert-manager's CA injector owns caBundle

        rolled_out = False
        if plan is not None and plan.action == 'rotate' and any(engine.cache.get(r) for r in config_refs):
            # 1. trust old and new CA before anything serves the new certificate
            engine.apply(model.build_webhook_configurations(s, plan.transition_bundle(), use_match))
        engine.apply(model.build_base_objects(s, plan))
        if params['wait'] and not module.check_mode and not s['webhook_url']:
            wait_rollout(engine, s['namespace'], s['name'], params['wait_timeout'])
            rolled_out = True
        bundle = final_bundle
        if plan is not None and plan.action == 'rotate' and not rolled_out:
            bundle = plan.transition_bundle()  # the old CA is dropped on a later run
        elif plan is not None and plan.action == 'keep' and s['webhook_url']:
            # after a rotation, drop the old CA only once the external webhook serves the new certificate
            published = _published_bundle(engine, config_refs)
            previous = [ca for ca in certs.split_pem_bundle(published) if ca not in certs.split_pem_bundle(plan.ca_pem)]
            # an expired previous CA goes at once: nothing it signed passes the API server's check any more
            if previous and not all(certs.expired(ca) for ca in previous):
                problem = _serving_problem(s['webhook_url'], plan.ca_pem)
                if problem:
                    bundle = certs.ca_bundle(published, plan.ca_pem)
                    tls['previous_ca_kept'] = problem
        engine.apply(model.build_webhook_configurations(s, bundle, use_match))
        if plan is not None:
            tls['previous_ca_trusted'] = bool(bundle) and len(certs.split_pem_bundle(bundle)) > 1
        return {'image': model.image_reference(s), 'match_conditions': use_match, 'tls': tls,
                'cert_reload': model.cert_reload_enabled(s)}

    run_module(module, present if params['state'] == 'present' else absent)


if __name__ == '__main__':
    main()
