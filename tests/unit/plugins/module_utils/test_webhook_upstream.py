"""The webhook's objects agree with upstream windows-gmsa v0.13.0 (its chart and main.go), and the pieces of
issue 14 that need no cluster: cert-reload spelling and default, QPS/BURST, both opt-out labels, the opt-in
mode, the access review's groups, and the served-certificate check of webhook_url mode (a real TLS handshake
with a local server)."""

from __future__ import annotations

import datetime
import importlib
import socket
import ssl
import threading

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.models import certificates as certs
from ansible_collections.winkube.gmsa.plugins.module_utils.models import webhook as wh

NOW = datetime.datetime.now(datetime.timezone.utc)


def settings(**kwargs):
    return wh.settings_with_defaults(kwargs)


def container(s):
    plan = certs.plan_tls(None, wh.tls_names(s), now=NOW) if s['certificate_mode'] == 'self_signed' else None
    return wh.build_deployment(s, plan)['spec']['template']['spec']['containers'][0]


def env(s):
    return {e['name']: e['value'] for e in container(s)['env']}


@pytest.mark.parametrize('mode, given, expected', [
    ('self_signed', None, '--cert-reload=true'),   # the collection rotates: reload on
    ('cert_manager', None, '--cert-reload=true'),  # cert-manager renews: reload on
    ('external', None, '--cert-reload=false'),     # someone else's certificate: upstream's default
    ('self_signed', False, '--cert-reload=false'),
    ('external', True, '--cert-reload=true'),
])
def test_cert_reload_spelling_and_default(mode, given, expected):
    s = settings(certificate_mode=mode, cert_reload=given, ca_bundle='-----BEGIN CERTIFICATE-----')
    assert container(s)['args'] == [expected]  # the chart's --cert-reload=<bool>, never the bare flag
    assert wh.cert_reload_enabled(s) is expected.endswith('true')


def test_qps_burst_env_as_the_chart_and_configurable():
    assert env(settings())['QPS'] == '30' and env(settings())['BURST'] == '50'
    assert env(settings(qps=7.5, burst=9)) == dict(env(settings()), QPS='7.5', BURST='9')
    assert 'qps must be larger than 0' in ' '.join(wh.validate_settings(settings(qps=0)))
    assert 'burst must be 1 or more' in ' '.join(wh.validate_settings(settings(burst=0)))


def test_random_hostname_env_always_explicit():
    assert env(settings())['RANDOM_HOSTNAME'] == 'false'
    assert env(settings(random_hostname=True))['RANDOM_HOSTNAME'] == 'true'


def _expressions(s):
    hook = wh.build_webhook_configurations(s, 'PEM', use_match_conditions=True)[0]['webhooks'][0]
    return [(e['key'], e['operator'], tuple(e['values'])) for e in hook['namespaceSelector']['matchExpressions']]


def test_both_opt_out_labels_and_opt_in_mode():
    default = _expressions(settings())
    assert ('gmsa-webhook', 'NotIn', ('disabled',)) in default          # upstream's deploy script
    assert ('windows.k8s.io/disabled', 'NotIn', ('true',)) in default   # upstream's chart
    assert not any(expression[1] == 'In' for expression in default)
    opt_in = _expressions(settings(namespace_opt_in=True))
    assert opt_in == default + [('windows.k8s.io/enabled', 'In', ('true',))]
    labels = wh.build_base_objects(settings(), certs.plan_tls(None, wh.tls_names(settings()), now=NOW))[0]
    assert labels['metadata']['labels']['gmsa-webhook'] == 'disabled'
    assert labels['metadata']['labels']['windows.k8s.io/disabled'] == 'true'


def test_access_review_carries_the_service_account_groups():
    module = importlib.import_module('ansible_collections.winkube.gmsa.plugins.modules.credential_spec_access_info')
    body = module.review('web', 'webapp', 'gmsa-webapp1')
    # upstream kube_client.go: serviceaccount.UserInfo(namespace, name, "") -> user, groups, empty UID, no extra
    assert body['spec']['user'] == 'system:serviceaccount:web:webapp'
    assert body['spec']['groups'] == ['system:serviceaccounts', 'system:serviceaccounts:web']
    assert 'uid' not in body['spec'] and 'extra' not in body['spec']
    assert body['spec']['resourceAttributes'] == {'namespace': 'web', 'verb': 'use', 'group': 'windows.k8s.io',
                                                  'resource': 'gmsacredentialspecs', 'name': 'gmsa-webapp1'}


# -- webhook_url mode: is the new certificate served yet? ------------------------------------------------------
class _TLSServer(object):
    """A local TLS server serving one certificate, to check _serving_problem with a real handshake."""

    def __init__(self, cert_pem, key_pem, tmp_path):
        (tmp_path / 'crt').write_text(cert_pem)
        (tmp_path / 'key').write_text(key_pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(tmp_path / 'crt'), str(tmp_path / 'key'))
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(5)
        self.url = 'https://127.0.0.1:%d' % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the serving thread
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def test_serving_problem_is_a_real_handshake(tmp_path):
    module = importlib.import_module('ansible_collections.winkube.gmsa.plugins.modules.webhook')
    old = certs.plan_tls(None, ['127.0.0.1'], now=NOW)
    new = certs.plan_tls({'tls.crt': old.cert_pem, 'tls.key': old.key_pem, 'ca.crt': old.ca_pem}, ['127.0.0.1'],
                         now=NOW, force_rotate=True)
    assert new.action == 'rotate' and new.ca_pem != old.ca_pem
    server = _TLSServer(old.cert_pem, old.key_pem, tmp_path)
    try:
        problem = module._serving_problem(server.url, new.ca_pem, timeout=5)
        assert problem and server.url in problem and 'verify' in problem  # still the old certificate
        assert module._serving_problem(server.url, old.ca_pem, timeout=5) is None
    finally:
        server.close()
    (tmp_path / 'new').mkdir()
    server = _TLSServer(new.cert_pem, new.key_pem, tmp_path / 'new')
    try:
        assert module._serving_problem(server.url, new.ca_pem, timeout=5) is None
    finally:
        server.close()
    closed = module._serving_problem(server.url, new.ca_pem, timeout=5)
    assert closed and 'both CAs stay' in closed
