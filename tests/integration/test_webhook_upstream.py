"""Issue 14 against upstream's real windows-gmsa v0.13.0 webhook binary and the real local API server.

The lab runs the webhook as a local process (lab/k8s/start-webhook.sh) that kube-apiserver calls through
clientConfig.url, so the winkube.gmsa.webhook module runs in webhook_url mode here. The lab process is started
with the container args and env that the module's model puts into its Deployment (build_deployment, the code
the module applies; test_k8s_modules.py reads the same Deployment back from the API server) and with the TLS
files of the Secret the module writes. What no test here shows: a kubelet mounting that Secret into a pod.

Every test parks the other gMSA webhook configurations of the session, so only this module's configuration
decides admission, and restores the lab webhook (its own certificate, no extra env) afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from kubernetes import client  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from fixtures_k8s import park_gmsa_webhooks, restore_gmsa_webhooks  # noqa: E402

from ansible_collections.winkube.gmsa.plugins.module_utils.models import names  # noqa: E402
from ansible_collections.winkube.gmsa.plugins.module_utils.models import webhook as wh  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
K8S_DIR = REPO / 'lab' / 'k8s'
HOOK, HOOK_NS = 'gmsa-webhook-up', 'winkube-gmsa-up'
APPS = 'winkube-up-apps'
CREDSPEC_NAME = 'gmsa-upstream1'
CREDSPEC = {
    'CmsPlugins': ['ActiveDirectory'],
    'DomainJoinConfig': {
        'Sid': 'S-1-5-21-2126449477-2524075714-3094792973', 'MachineAccountName': 'Upstream1',
        'Guid': '244818ae-87ac-4fcd-92ec-e79e5252348a', 'DnsTreeName': 'contoso.test',
        'DnsName': 'contoso.test', 'NetBiosName': 'CONTOSO',
    },
    'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': [
        {'Name': 'Upstream1', 'Scope': 'contoso.test'}, {'Name': 'Upstream1', 'Scope': 'CONTOSO'}]},
}
HEADER = """
- hosts: localhost
  gather_facts: false
  environment:
    K8S_AUTH_KUBECONFIG: "{{ kubeconfig }}"
  tasks:
"""
HOOK_TASK = """
- name: webhook
  winkube.gmsa.webhook:
    name: %s
    namespace: %s
    webhook_url: "{{ webhook_url }}"
    certificate_mode: "{{ mode }}"
    ca_bundle: "{{ ca_bundle | default(omit) }}"
    force_rotate: "{{ rotate | default(false) }}"
    namespace_opt_in: "{{ opt_in | default(false) }}"
    random_hostname: "{{ random_hostname | default(false) }}"
""" % (HOOK, HOOK_NS)


def play(tasks):
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


@pytest.fixture
def run(run_playbook, k8s_lab):
    def _run(tasks, extra=None, **kwargs):
        variables = dict(k8s_lab.ansible_vars())
        variables.update(extra or {})
        return run_playbook(play(tasks), extra_vars=variables, **kwargs)
    return _run


def _create(call, *args):
    try:
        return call(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise
        return None


def namespace(core, name, labels=None, service_accounts=('app',)):
    _create(core.create_namespace, {'metadata': {'name': name, 'labels': labels or {}}})
    for sa in service_accounts:
        _create(core.create_namespaced_service_account, name, {'metadata': {'name': sa}})
    return name


def gmsa_pod(name, service_account='app', hostname=None):
    spec = {'serviceAccountName': service_account, 'nodeSelector': {'kubernetes.io/os': 'windows'},
            'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': CREDSPEC_NAME}},
            'containers': [{'name': 'app', 'image': 'example/iis:ltsc2019'}]}
    if hostname:
        spec['hostname'] = hostname
    return {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': name}, 'spec': spec}


def admit(core, ns, name, **kwargs):
    """The pod as admitted (dry run: every admission webhook runs, nothing is stored), or the ApiException."""
    try:
        return core.create_namespaced_pod(ns, gmsa_pod(name, **kwargs), dry_run='All')
    except ApiException as exc:
        return exc


def filled(pod):
    sc = pod.spec.security_context
    return sc.windows_options.gmsa_credential_spec if sc and sc.windows_options else None


class LabWebhook(object):
    """Restarts the lab's webhook process (same port, so the same URL) with other args, env and TLS files."""

    def __init__(self, gmsa_webhook):
        self.hook = gmsa_webhook

    def restart(self, args=(), env=None, crt=None, key=None, ca=None):
        self.stop()
        run_env = dict(os.environ, GMSA_WEBHOOK_PORT=str(self.hook.port), GMSA_WEBHOOK_BIN=self.hook.binary,
                       GMSA_WEBHOOK_ARGS=' '.join(args))
        run_env.update(env or {})
        if ca:
            run_env['GMSA_WEBHOOK_CA_BUNDLE'] = ca
        proc = subprocess.run([str(K8S_DIR / 'start-webhook.sh')] + ([crt, key] if crt else []), env=run_env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def stop(self):
        env = dict(os.environ, GMSA_WEBHOOK_PORT=str(self.hook.port))
        subprocess.run([str(K8S_DIR / 'stop-webhook.sh')], env=env, check=True, capture_output=True, timeout=60)

    def pgid(self):
        return Path(self.hook.log).parent.parent.joinpath('pids', 'gmsa-webhook.pgid').read_text().strip()

    def log(self):
        return Path(self.hook.log).read_text(errors='replace')


def deployment_container(**options):
    """Args and env the module puts into its Deployment for these options (its model's build_deployment)."""
    s = wh.settings_with_defaults(dict(name=HOOK, namespace=HOOK_NS, **options))
    container = wh.build_deployment(s)['spec']['template']['spec']['containers'][0]
    env = {e['name']: e['value'] for e in container['env']}
    for key in ('TLS_CRT', 'TLS_KEY', 'HTTPS_PORT'):  # the lab script places the files and picks the port
        env.pop(key)
    return container['args'], env


@pytest.fixture(scope='module')
def upstream(k8s_lab, gmsa_webhook):
    """Upstream's binary is what runs (its --version), one credential spec, and only this module's configuration."""
    version = subprocess.run([gmsa_webhook.binary, '--version'], capture_output=True, text=True, timeout=30,
                             check=False)
    assert '0.13.0' in version.stdout, (f'the lab webhook {gmsa_webhook.binary} is not upstream windows-gmsa '
                                        f'v0.13.0: {version.stdout!r} {version.stderr[-500:]!r}')
    api = k8s_lab.api_client()
    parked = park_gmsa_webhooks(api, keep=(HOOK,))
    lab = LabWebhook(gmsa_webhook)
    try:
        yield api, lab
    finally:
        lab.restart()
        for kind in ('mutating', 'validating'):
            try:
                getattr(client.AdmissionregistrationV1Api(api), 'delete_%s_webhook_configuration' % kind)(HOOK)
            except ApiException:
                pass
        restore_gmsa_webhooks(api, parked)


@pytest.fixture
def setup(run, upstream, gmsa_webhook):
    """CRD, the credential spec, namespace APPS with service account app allowed to use it, and this module's
    configuration pointing at the lab webhook with its own certificate."""
    api, lab = upstream
    base = run("""
- name: crd
  winkube.gmsa.crd: {}
- name: spec
  winkube.gmsa.credential_spec:
    credential_specs: [{name: %s, credspec: "{{ credspec | to_json }}"}]
""" % CREDSPEC_NAME, {'credspec': CREDSPEC})
    assert base.rc == 0, base
    core = client.CoreV1Api(api)
    namespace(core, APPS, service_accounts=('app', 'other'))
    rbac = run("""
- name: rbac
  winkube.gmsa.credential_spec_rbac:
    bindings: [{credential_spec: %s, use_by: [{namespace: %s, service_accounts: [app]}]}]
""" % (CREDSPEC_NAME, APPS))
    assert rbac.rc == 0, rbac

    def configure(**extra):
        variables = {'webhook_url': gmsa_webhook.url, 'mode': 'external',
                     'ca_bundle': gmsa_webhook.ca_bundle_pem.decode()}
        variables.update(extra)
        result = run(HOOK_TASK, variables)
        assert result.rc == 0, result
        return result
    return core, lab, configure


def wait_mutated(core, ns, what):
    return wait_for(lambda: _mutated(admit(core, ns, 'probe')), 40, what=what)


def _refused(result):
    return isinstance(result, ApiException) and result


def _mutated(result):
    return not isinstance(result, ApiException) and filled(result) and result


# -- cert reload, QPS/BURST, and the URL-mode CA check -------------------------------------------------------
def _served_by(url, ca_pem):
    """True when the process at url serves a certificate that ca_pem verifies (what the API server checks)."""
    host, port = url.split('//')[1].rsplit(':', 1)
    try:
        context = ssl.create_default_context(cadata=ca_pem)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return True
    except (OSError, ssl.SSLError):
        return False


def _bundle(api):
    adm = client.AdmissionregistrationV1Api(api)
    bundles = {base64.b64decode(c.webhooks[0].client_config.ca_bundle).decode() for c in (
        adm.read_mutating_webhook_configuration(HOOK), adm.read_validating_webhook_configuration(HOOK))}
    assert len(bundles) == 1
    return bundles.pop()


def test_cert_reload_rotation_and_url_ca_check_on_the_real_webhook(run, setup, upstream, gmsa_webhook, tmp_path):
    core, lab, configure = setup
    api = upstream[0]
    self_signed = {'webhook_url': gmsa_webhook.url, 'mode': 'self_signed'}
    first = run(HOOK_TASK, self_signed)
    assert first.rc == 0, first
    assert first.results['webhook']['cert_reload'] is True  # on by default: the collection rotates
    args, env = deployment_container(webhook_url=gmsa_webhook.url)
    assert args == ['--cert-reload=true'] and env['QPS'] == '30' and env['BURST'] == '50'

    secret = f'{HOOK}-tls'
    files = {k: tmp_path / k for k in ('tls.crt', 'tls.key', 'ca.crt')}

    def secret_to_files():
        data = core.read_namespaced_secret(secret, HOOK_NS).data
        for key, path in files.items():
            path.write_bytes(base64.b64decode(data[key]))
        return base64.b64decode(data['ca.crt']).decode()

    try:
        old_ca = secret_to_files()
        lab.restart(args, env, str(files['tls.crt']), str(files['tls.key']), str(files['ca.crt']))
        log = lab.log()
        assert 'Starting certificate watcher' in log  # the real binary took --cert-reload=true
        assert re.search(r'QPS: 30\.0+, Burst: 50', log), log[-2000:]  # and the chart's client limits
        assert _bundle(api) == old_ca
        wait_mutated(core, APPS, 'admission through the real webhook with the module\'s certificate')
        pgid = lab.pgid()

        rotated = run(HOOK_TASK, dict(self_signed, rotate=True))
        assert rotated.rc == 0 and rotated.results['webhook']['tls']['action'] == 'rotate', rotated
        new_ca = base64.b64decode(core.read_namespaced_secret(secret, HOOK_NS).data['ca.crt']).decode()
        assert old_ca in _bundle(api) and new_ca in _bundle(api) and new_ca != old_ca

        # the webhook still serves the old certificate: the next run keeps both CAs and says why
        early = run(HOOK_TASK, self_signed)
        assert early.rc == 0, early
        tls = early.results['webhook']['tls']
        assert tls['action'] == 'keep' and tls['previous_ca_trusted'] is True
        assert gmsa_webhook.url in tls['previous_ca_kept'] and 'verif' in tls['previous_ca_kept']
        assert old_ca in _bundle(api) and new_ca in _bundle(api)
        for attempt in range(3):
            assert _mutated(admit(core, APPS, f'early-{attempt}')), 'admission failed while the old cert is served'

        # "the kubelet updates the mounted Secret": same files, same process; --cert-reload=true picks them up
        for key in ('tls.key', 'tls.crt'):
            files[key].write_bytes(base64.b64decode(core.read_namespaced_secret(secret, HOOK_NS).data[key]))
        wait_for(lambda: _served_by(gmsa_webhook.url, new_ca), 30, what='the real webhook serving the rotated certificate')
        assert lab.pgid() == pgid and 'successfully reloaded certificate' in lab.log()
        for attempt in range(3):
            assert _mutated(admit(core, APPS, f'during-{attempt}')), 'admission failed after the reload'

        settled = run(HOOK_TASK, self_signed)
        assert settled.rc == 0 and settled.changed, settled
        tls = settled.results['webhook']['tls']
        assert tls['previous_ca_trusted'] is False and 'previous_ca_kept' not in tls
        assert _bundle(api) == new_ca
        wait_mutated(core, APPS, 'admission with only the new CA trusted')
        again = run(HOOK_TASK, self_signed)
        assert again.rc == 0 and not again.changed, again
    finally:
        lab.restart()


# -- namespaces: opt-in mode and both opt-out labels, shown with the webhook down --------------------------------
def test_opt_in_mode_unlabelled_namespaces_do_not_need_the_webhook(setup):
    core, lab, configure = setup
    plain = namespace(core, 'winkube-up-plain')
    enabled = namespace(core, 'winkube-up-enabled', {'windows.k8s.io/enabled': 'true'})
    for ns in (plain, enabled):
        _create(client.RbacAuthorizationV1Api(core.api_client).create_namespaced_role_binding, ns, _use_binding(ns))
    configure(opt_in=True)
    wait_mutated(core, enabled, 'a labelled namespace going through the webhook')
    unlabelled = admit(core, plain, 'plain-up')
    assert not isinstance(unlabelled, ApiException) and filled(unlabelled) is None  # not sent to the webhook
    lab.stop()
    try:
        # an outage of the webhook blocks only the namespaces that opted in
        down = wait_for(lambda: _refused(admit(core, enabled, 'x')), 30, what='failurePolicy Fail in the labelled namespace')
        assert 'failed calling webhook' in down.body, down.body
        for attempt in range(3):
            result = admit(core, plain, f'plain-down-{attempt}')
            assert not isinstance(result, ApiException), result.body
    finally:
        lab.restart()
    configure(opt_in=False)
    wait_mutated(core, plain, 'without opt-in every namespace goes through the webhook again')


def test_both_opt_out_labels_are_honoured(setup):
    core, lab, configure = setup
    chart_label = namespace(core, 'winkube-up-chart-off', {'windows.k8s.io/disabled': 'true'})
    script_label = namespace(core, 'winkube-up-script-off', {'gmsa-webhook': 'disabled'})
    configure()
    wait_mutated(core, APPS, 'the configuration active')
    lab.stop()
    try:
        down = wait_for(lambda: _refused(admit(core, APPS, 'x')), 30, what='refusal while the webhook is down')
        assert 'failed calling webhook' in down.body, down.body
        for ns in (chart_label, script_label):
            result = admit(core, ns, 'opted-out')
            assert not isinstance(result, ApiException), (ns, result.body)
            assert filled(result) is None
    finally:
        lab.restart()


def _use_binding(ns, subject=None):
    return {'metadata': {'name': 'winkube-up-use'},
            'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole',
                        'name': names.cluster_role_name(CREDSPEC_NAME)},
            'subjects': [subject or {'kind': 'ServiceAccount', 'name': 'app', 'namespace': ns}]}


# -- random_hostname ---------------------------------------------------------------------------------------------
def test_random_hostname_from_the_real_webhook(setup, gmsa_webhook):
    core, lab, configure = setup
    configure(random_hostname=True)
    args, env = deployment_container(webhook_url=gmsa_webhook.url, certificate_mode='external',
                                     random_hostname=True)
    assert env['RANDOM_HOSTNAME'] == 'true'
    lab.restart(args, env)
    try:
        first = wait_mutated(core, APPS, 'the webhook with RANDOM_HOSTNAME')
        second = admit(core, APPS, 'second')
        # upstream: the first 15 characters of a UUID in lower case, only for gMSA pods without a hostname
        for pod in (first, second):
            assert re.fullmatch(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]', pod.spec.hostname or ''), pod.spec.hostname
        assert first.spec.hostname != second.spec.hostname
        kept = admit(core, APPS, 'named', hostname='web-1')
        assert kept.spec.hostname == 'web-1'
        plain = core.create_namespaced_pod(APPS, {'metadata': {'name': 'no-gmsa'}, 'spec': {
            'containers': [{'name': 'c', 'image': 'example/app'}]}}, dry_run='All')
        assert plain.spec.hostname is None
    finally:
        lab.restart()


# -- credential_spec_access with a group grant -------------------------------------------------------------------
def test_group_grant_counts_for_the_module_and_the_real_webhook(run, setup):
    core, lab, configure = setup
    ns = namespace(core, 'winkube-up-group', service_accounts=('grouped',))
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    _create(rbac.create_namespaced_role_binding, ns, _use_binding(
        ns, {'kind': 'Group', 'name': 'system:serviceaccounts:' + ns, 'apiGroup': 'rbac.authorization.k8s.io'}))
    configure()
    asked = run("""
- name: access
  winkube.gmsa.credential_spec_access_info:
    bindings: [{credential_spec: %s, use_by: [{namespace: %s, service_accounts: [grouped]}]}]
""" % (CREDSPEC_NAME, ns))
    assert asked.rc == 0, asked
    answer = asked.results['access']['results'][0]
    assert answer['groups'] == ['system:serviceaccounts', 'system:serviceaccounts:' + ns]
    assert answer['allowed'] is True and asked.results['access']['all_allowed'] is True, answer
    pod = wait_for(lambda: _mutated(admit(core, ns, 'grouped', service_account='grouped')), 40,
                   what='the real webhook admitting the group-granted pod')
    assert json.loads(filled(pod)) == CREDSPEC


# -- the module's own Deployment on the real binary (lab/k8s/kubelet-imitation.sh, not a kubelet) ----------------
def test_module_deployment_args_and_env_run_on_the_real_webhook(run, setup, k8s_lab):
    """In-cluster mode: the Deployment and Secret the module writes, run by the lab's kubelet imitation, which
    starts upstream's binary with the Deployment's args and env and serves it behind the Service's ClusterIP."""
    core, lab, configure = setup
    name, ns = 'gmsa-webhook-svc', 'winkube-gmsa-svc'
    adm = client.AdmissionregistrationV1Api(core.api_client)
    for kind in ('mutating', 'validating'):  # only the Service-mode configuration decides admission here
        try:
            getattr(adm, 'delete_%s_webhook_configuration' % kind)(HOOK)
        except ApiException as exc:
            assert exc.status == 404
    task = """
- name: webhook
  winkube.gmsa.webhook:
    name: %s
    namespace: %s
    replicas: 1
    https_port: 9443
    wait_timeout: 120
    state: "{{ state | default('present') }}"
""" % (name, ns)
    deployed = run(task)
    assert deployed.rc == 0, deployed
    assert deployed.results['webhook']['cert_reload'] is True
    container = client.AppsV1Api(core.api_client).read_namespaced_deployment(name, ns).spec.template.spec.containers[0]
    assert container.args == ['--cert-reload=true']
    env = {e.name: e.value for e in container.env}
    assert (env['QPS'], env['BURST'], env['RANDOM_HOSTNAME']) == ('30', '50', 'false')
    imitation = [str(K8S_DIR / 'kubelet-imitation.sh'), 'start', ns, name]
    try:
        proc = subprocess.run(imitation, capture_output=True, text=True, timeout=180, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        log = (Path(proc.stdout.strip().splitlines()[-1]).parent / 'webhook.log').read_text(errors='replace')
        assert 'Starting certificate watcher' in log, log[-2000:]  # --cert-reload=true reached the binary
        assert re.search(r'QPS: 30\.0+, Burst: 50', log), log[-2000:]
        # admission through clientConfig.service, verified with the CA the module published
        pod = wait_for(lambda: _mutated(admit(core, APPS, 'via-service')), 60, what='admission through the Service')
        assert json.loads(filled(pod)) == CREDSPEC
    finally:
        subprocess.run(imitation[:1] + ['stop', ns, name], capture_output=True, timeout=60, check=False)
        assert run(task, {'state': 'absent'}).rc == 0
