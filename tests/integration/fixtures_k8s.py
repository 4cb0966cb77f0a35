"""Pytest plugin: the local Kubernetes lab (lab/k8s/) as session fixtures.

``k8s_lab``      builds the binaries (cached under $WINKUBE_GMSA_CACHE), runs lab/k8s/start.sh
                 (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with one fake
                 Windows and one fake Linux node) and yields a :class:`K8sLab`; lab/k8s/stop.sh runs
                 at the end of the session, also when tests fail.
``gmsa_webhook`` runs lab/k8s/start-webhook.sh (upstream's windows-gmsa webhook v0.13.0, built from its
                 source tarball by lab/k8s/build-webhook.sh, as a local HTTPS process with in-cluster
                 credentials) and yields a :class:`GmsaWebhook`; stopped at session end.
                 It creates no webhook configuration: tests (or the collection's modules) do, pointing
                 clientConfig.url at ``gmsa_webhook.mutate_url`` / ``validate_url`` (see lab/k8s/README.md).

Set WINKUBE_K8S_LAB_SKIP=1 to skip (instead of fail) the tests that need the lab when it cannot be
built or started; by default a failure to build or start is an error.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
K8S_DIR = REPO / 'lab' / 'k8s'


def _read_env(path: Path) -> dict:
    values = {}
    for line in path.read_text().splitlines():
        if '=' in line and not line.lstrip().startswith('#'):
            key, dummy, value = line.partition('=')
            values[key.strip()] = value.strip()
    return values


def _state_dir() -> Path:
    root = os.environ.get('WINKUBE_LAB_STATE') or str(REPO / 'lab' / '.state')
    return Path(root) / 'k8s'


@dataclasses.dataclass
class K8sLab:
    kubeconfig: str
    api_url: str
    ca_cert: str
    ca_key: str
    admin_cert: str
    admin_key: str
    version: str
    state_dir: str
    windows_nodes: list
    linux_nodes: list
    env: dict  # every key of the env file (see lab/k8s/README.md)

    def api_client(self):
        """A kubernetes.client.ApiClient for the admin user (system:masters)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)

    def ansible_vars(self) -> dict:
        """Connection variables for the collection's k8s modules (kubeconfig based)."""
        return {'kubeconfig': self.kubeconfig}


@dataclasses.dataclass
class GmsaWebhook:
    url: str
    mutate_url: str
    validate_url: str
    port: int
    ca_bundle: str  # PEM file that verifies the webhook's serving certificate
    tls_crt: str
    tls_key: str
    namespace: str
    service_account: str
    binary: str
    log: str
    env: dict

    @property
    def ca_bundle_pem(self) -> bytes:
        return Path(self.ca_bundle).read_bytes()


def _run(cmd, env, what, timeout):
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        message = f'{what} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}'
        if os.environ.get('WINKUBE_K8S_LAB_SKIP') == '1':
            pytest.skip(message)
        pytest.fail(message, pytrace=False)
    return proc, time.monotonic() - started


@pytest.fixture(scope='session')
def k8s_lab():
    env = dict(os.environ)
    _run([str(K8S_DIR / 'build.sh')], env, 'lab/k8s/build.sh', timeout=5400)
    subprocess.run([str(K8S_DIR / 'stop.sh')], env=env, capture_output=True, check=False, timeout=120)
    try:
        proc, dummy = _run([str(K8S_DIR / 'start.sh')], env, 'lab/k8s/start.sh', timeout=300)
        values = _read_env(Path(proc.stdout.strip().splitlines()[-1]))
        yield K8sLab(
            kubeconfig=values['KUBECONFIG'],
            api_url=values['K8S_API_URL'],
            ca_cert=values['K8S_CA_CERT'],
            ca_key=values['K8S_CA_KEY'],
            admin_cert=values['K8S_ADMIN_CERT'],
            admin_key=values['K8S_ADMIN_KEY'],
            version=values['K8S_VERSION'],
            state_dir=values['K8S_LAB_STATE'],
            windows_nodes=values['K8S_WINDOWS_NODES'].split(','),
            linux_nodes=values['K8S_LINUX_NODES'].split(','),
            env=values,
        )
    finally:
        subprocess.run([str(K8S_DIR / 'stop.sh')], env=env, capture_output=True, check=False, timeout=120)


@pytest.fixture(scope='session')
def gmsa_webhook(k8s_lab):
    env = dict(os.environ)
    try:
        proc, dummy = _run([str(K8S_DIR / 'start-webhook.sh')], env, 'lab/k8s/start-webhook.sh', timeout=120)
        values = _read_env(Path(proc.stdout.strip().splitlines()[-1]))
        yield GmsaWebhook(
            url=values['GMSA_WEBHOOK_URL'],
            mutate_url=values['GMSA_WEBHOOK_MUTATE_URL'],
            validate_url=values['GMSA_WEBHOOK_VALIDATE_URL'],
            port=int(values['GMSA_WEBHOOK_PORT']),
            ca_bundle=values['GMSA_WEBHOOK_CA_BUNDLE'],
            tls_crt=values['GMSA_WEBHOOK_TLS_CRT'],
            tls_key=values['GMSA_WEBHOOK_TLS_KEY'],
            namespace=values['GMSA_WEBHOOK_NAMESPACE'],
            service_account=values['GMSA_WEBHOOK_SERVICE_ACCOUNT'],
            binary=values['GMSA_WEBHOOK_BINARY'],
            log=values['GMSA_WEBHOOK_LOG'],
            env=values,
        )
    finally:
        subprocess.run([str(K8S_DIR / 'stop-webhook.sh')], env=env, capture_output=True, check=False, timeout=60)


# The gMSA webhook's name in every configuration the collection writes (plugins/module_utils/models/webhook.py).
GMSA_WEBHOOK_NAME = 'admission-webhook.windows-gmsa.sigs.k8s.io'


def park_gmsa_webhooks(api_client, keep=()):
    """Delete every mutating/validating webhook configuration carrying the gMSA webhook (except those named in
    ``keep``) and return them for :func:`restore_gmsa_webhooks`.

    Configurations left by earlier tests stay active for the whole session: one that trusts a CA the lab
    webhook no longer serves fails every Windows pod, and a working one refuses pods naming credential specs
    that do not exist. Tests that create such pods, or restart the webhook with other certificates, park them.
    """
    from kubernetes import client

    adm = client.AdmissionregistrationV1Api(api_client)
    parked = []
    for kind in ('mutating', 'validating'):
        for item in getattr(adm, 'list_%s_webhook_configuration' % kind)().items:
            if item.metadata.name in keep or not any(h.name == GMSA_WEBHOOK_NAME for h in item.webhooks or []):
                continue
            body = api_client.sanitize_for_serialization(item)
            body['metadata'] = {'name': item.metadata.name, 'labels': item.metadata.labels or {}}
            getattr(adm, 'delete_%s_webhook_configuration' % kind)(item.metadata.name)
            parked.append((kind, body))
    return parked


def restore_gmsa_webhooks(api_client, parked):
    """Create the configurations :func:`park_gmsa_webhooks` removed again (unless one exists by now)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    adm = client.AdmissionregistrationV1Api(api_client)
    for kind, body in parked:
        try:
            getattr(adm, 'create_%s_webhook_configuration' % kind)(body)
        except ApiException as exc:
            if exc.status != 409:
                raise


@pytest.fixture(scope='module')
def without_gmsa_webhooks(k8s_lab):
    """No gMSA admission webhook configuration while this test module runs; restored afterwards."""
    api_client = k8s_lab.api_client()
    parked = park_gmsa_webhooks(api_client)
    try:
        yield
    finally:
        restore_gmsa_webhooks(api_client, parked)
