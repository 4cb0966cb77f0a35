"""Retries of transient errors (module_utils/retry.py) and their use by the LDAP and Kubernetes clients.

The Kubernetes part talks to a real HTTP server on 127.0.0.1 (http.server in a thread) through the real
urllib3 transport; the LDAP part drives Directory with a scripted stand-in for ldap3's Connection.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ldap3.core import exceptions as ldap3_exceptions

from ansible_collections.winkube.gmsa.plugins.module_utils import retry
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import ldap_client as lc
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import client as kc


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


def classify(exc):
    return 0 if isinstance(exc, Transient) else None


def flaky(failures, exc=Transient):
    calls = []

    def func():
        calls.append(1)
        if len(calls) <= failures:
            raise exc('try %d' % len(calls))
        return 'ok'
    return func, calls


# -- retry.call ------------------------------------------------------------------------------------------

def test_transient_errors_are_retried_with_growing_delays():
    clock = Clock()
    func, calls = flaky(3)
    policy = retry.RetryPolicy(attempts=5, initial=0.5, factor=2, max_delay=10, budget=100, jitter=0)
    assert retry.call(func, classify, policy, sleep=clock.sleep, clock=clock) == 'ok'
    assert len(calls) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_permanent_errors_are_raised_at_once():
    clock = Clock()
    func, calls = flaky(1, Permanent)
    with pytest.raises(Permanent):
        retry.call(func, classify, retry.ESTABLISHED, sleep=clock.sleep, clock=clock)
    assert len(calls) == 1 and clock.sleeps == []


def test_attempts_bound_and_annotation():
    clock = Clock()
    func, calls = flaky(100)
    policy = retry.RetryPolicy(attempts=4, initial=0.1, budget=100, jitter=0)
    with pytest.raises(Transient) as info:
        retry.call(func, classify, policy, sleep=clock.sleep, clock=clock)
    assert len(calls) == 4
    assert info.value.retry_attempts == 4
    assert retry.describe(info.value) == ' (tried 4 times over %.1f s)' % sum(clock.sleeps)


def test_time_budget_bound():
    clock = Clock()
    func, calls = flaky(100)
    policy = retry.RetryPolicy(attempts=100, initial=1, factor=2, max_delay=4, budget=10, jitter=0)
    with pytest.raises(Transient):
        retry.call(func, classify, policy, sleep=clock.sleep, clock=clock)
    assert sum(clock.sleeps) <= 10
    assert clock.sleeps == [1, 2, 4]  # the next 4 s would exceed the budget


def test_server_hint_is_honoured_but_capped():
    policy = retry.RetryPolicy(initial=0.5, max_delay=4, jitter=0)
    assert policy.delay(0, hint=2) == 2
    assert policy.delay(0, hint=3600) == 4
    assert policy.delay(5) == 4


def test_default_policies_are_bounded():
    for policy in (retry.ESTABLISHED, retry.FIRST_CONTACT):
        worst = policy.max_delay * (1 + policy.jitter) * (policy.attempts - 1)
        assert min(worst, policy.budget) <= 20
    assert retry.FIRST_CONTACT.budget <= 1.0


# -- Kubernetes transport against a real local HTTP server ----------------------------------------------

class Script:
    """Statuses to answer, in order; the last one repeats."""

    def __init__(self, *statuses):
        self.statuses = list(statuses)
        self.seen = []


@pytest.fixture
def http_server():
    script = Script(200)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get('Content-Length') or 0)
            if length:
                self.rfile.read(length)
            script.seen.append(self.command)
            status = script.statuses.pop(0) if len(script.statuses) > 1 else script.statuses[0]
            body = {'kind': 'Status', 'message': 'status %d' % status}
            if status == 403:
                body['message'] = ('clusterroles.rbac.authorization.k8s.io "x" is forbidden: User "u" cannot patch '
                                   'resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster '
                                   'scope')
            if status == 200:
                body = {'kind': 'List', 'items': []}
            data = json.dumps(body).encode()
            self.send_response(status)
            if status == 429:
                self.send_header('Retry-After', '0')
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_POST = do_DELETE = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, script
    server.shutdown()
    server.server_close()


def transport(url):
    from kubernetes import client as k8s_client
    configuration = k8s_client.Configuration()
    configuration.host = url
    t = kc.Transport(configuration, timeout=5)
    t.sleep = lambda seconds: None
    return t


def test_k8s_5xx_and_429_are_retried_then_succeed(http_server):
    server, script = http_server
    script.statuses[:] = [503, 429, 500, 502, 504, 200]
    t = transport('http://127.0.0.1:%d' % server.server_port)
    t.answered = True
    assert t.request('GET', '/api/v1/namespaces') == {'kind': 'List', 'items': []}
    assert len(script.seen) == 6 and t.count == 6


def test_k8s_permanent_statuses_are_not_retried(http_server):
    server, script = http_server
    t = transport('http://127.0.0.1:%d' % server.server_port)
    t.answered = True
    for status in (403, 422, 404, 409, 400):
        script.statuses[:] = [status, 200]
        script.seen.clear()
        with pytest.raises(kc.ApiError) as info:
            t.request('PATCH', '/apis/rbac.authorization.k8s.io/v1/clusterroles/x', body={})
        assert info.value.status == status
        assert len(script.seen) == 1, status
    script.statuses[:] = [403]
    with pytest.raises(kc.ApiError) as info:
        t.request('PATCH', '/apis/rbac.authorization.k8s.io/v1/clusterroles/x', body={})
    assert 'cannot patch resource "clusterroles"' in info.value.message
    assert 'lacks this permission' in info.value.message and 'least-privilege' in info.value.message


def test_k8s_post_is_not_repeated_after_a_5xx(http_server):
    server, script = http_server
    script.statuses[:] = [503, 200]
    t = transport('http://127.0.0.1:%d' % server.server_port)
    t.answered = True
    with pytest.raises(kc.ApiError) as info:
        t.request('POST', '/api/v1/namespaces', body={})
    assert info.value.status == 503 and len(script.seen) == 1


def test_k8s_retries_run_out_with_a_message_saying_so(http_server):
    server, script = http_server
    script.statuses[:] = [503]
    t = transport('http://127.0.0.1:%d' % server.server_port)
    t.answered = True
    with pytest.raises(kc.ApiError) as info:
        t.request('GET', '/api/v1/namespaces')
    assert len(script.seen) == retry.ESTABLISHED.attempts
    assert 'tried %d times' % retry.ESTABLISHED.attempts in str(info.value)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_k8s_connection_refused_first_contact_fails_fast_later_retries_longer():
    port = free_port()
    t = transport('http://127.0.0.1:%d' % port)
    with pytest.raises(kc.K8sConnectionError) as info:
        t.request('GET', '/version')
    assert t.count == retry.FIRST_CONTACT.attempts
    assert 'cannot reach the API server' in str(info.value) and 'tried' in str(info.value)
    t = transport('http://127.0.0.1:%d' % port)
    t.answered = True
    with pytest.raises(kc.K8sConnectionError):
        t.request('GET', '/version')
    assert t.count == retry.ESTABLISHED.attempts


def test_k8s_server_coming_back_mid_run_is_survived(http_server):
    """Connection refused for a while, then the server listens again on the same port."""
    server, script = http_server
    port = server.server_port
    server.shutdown()
    server.server_close()
    t = transport('http://127.0.0.1:%d' % port)
    t.answered = True
    restarted = {}

    def sleep(seconds):
        if 'server' not in restarted and t.count >= 3:
            again = ThreadingHTTPServer(('127.0.0.1', port), server.RequestHandlerClass)
            threading.Thread(target=again.serve_forever, daemon=True).start()
            restarted['server'] = again
    t.sleep = sleep
    try:
        assert t.request('GET', '/api/v1/namespaces')['kind'] == 'List'
        assert t.count == 4
    finally:
        if 'server' in restarted:
            restarted['server'].shutdown()
            restarted['server'].server_close()


def self_signed(tmp_path, name):
    """A self-signed certificate for 127.0.0.1 (it is its own CA): paths of the certificate and the key."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / (name + '.crt'), tmp_path / (name + '.key')
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class CuttingTLSServer:
    """An HTTPS server on 127.0.0.1 whose first ``cut`` connections end in the middle of the TLS handshake
    (the client hello read, then the socket closed, as when an API server is killed or still starting);
    later connections get a JSON list."""

    def __init__(self, cert, key, cut):
        import ssl
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.cut = cut
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            self.connections += 1
            try:
                if self.connections <= self.cut:
                    conn.recv(65536)
                    conn.close()
                    continue
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    # the whole request, body too: closing with unread bytes sends a reset that can overtake
                    # the answer
                    request = chunk = tls.recv(65536)
                    while chunk and b'\r\n\r\n' not in request:
                        chunk = tls.recv(65536)
                        request += chunk
                    head, _sep, body = request.partition(b'\r\n\r\n')
                    length = re.search(br'(?i)content-length: *(\d+)', head)
                    while chunk and length and len(body) < int(length.group(1)):
                        chunk = tls.recv(65536)
                        body += chunk
                    data = json.dumps({'kind': 'List', 'items': []}).encode()
                    tls.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n'
                                b'Content-Length: %d\r\n\r\n%s' % (len(data), data))
            except OSError:
                conn.close()

    def close(self):
        self.sock.close()


def tls_transport(port, ca_cert):
    from kubernetes import client as k8s_client
    configuration = k8s_client.Configuration()
    configuration.host = 'https://127.0.0.1:%d' % port
    configuration.ssl_ca_cert = ca_cert
    t = kc.Transport(configuration, timeout=5)
    t.sleep = lambda seconds: None
    return t


def test_k8s_tls_handshake_cut_short_is_retried_but_an_untrusted_certificate_is_not(tmp_path):
    """A handshake ended by the server going away is the server being away, retried like a refused
    connection; a certificate that fails verification is reported at once, naming TLS."""
    cert, key = self_signed(tmp_path, 'api')
    server = CuttingTLSServer(cert, key, cut=2)
    try:
        t = tls_transport(server.port, cert)
        t.answered = True
        assert t.request('PATCH', '/apis/windows.k8s.io/v1/gmsacredentialspecs/x', body={}) == {
            'kind': 'List', 'items': []}
        assert t.count == 3 and server.connections == 3
        other, _other_key = self_signed(tmp_path, 'other')
        t = tls_transport(server.port, other)
        t.answered = True
        with pytest.raises(kc.K8sConnectionError) as info:
            t.request('GET', '/api/v1/namespaces')
        assert t.count == 1 and 'TLS error' in str(info.value) and 'certificate verify failed' in str(info.value)
    finally:
        server.close()


# -- LDAP Directory with a scripted connection ---------------------------------------------------------

class FakeConn:
    """Answers each call from a shared script: an exception to raise, or a result code (0 = success)."""

    def __init__(self, script, log):
        self.script = script
        self.log = log
        self.result = {}
        self.response = []
        self.closed = False

    def _step(self, name):
        self.log.append((name, id(self)))
        step = self.script.pop(0) if self.script else 0
        if isinstance(step, Exception):
            raise step
        self.result = {'result': step, 'description': lc.RESULT_NAMES.get(step, 'success'), 'message': ''}
        return step == 0

    def add(self, *args, **kwargs):
        return self._step('add')

    def modify(self, *args, **kwargs):
        return self._step('modify')

    def delete(self, *args, **kwargs):
        return self._step('delete')

    def search(self, *args, **kwargs):
        self.response = []
        return self._step('search')

    def unbind(self):
        self.closed = True


def directory(script):
    log = []
    conns = []

    def reopen():
        conn = FakeConn(script, log)
        conns.append(conn)
        return conn
    d = lc.Directory(reopen(), base_dn='DC=contoso,DC=test', bound_as='svc-gmsa@contoso.test')
    d.reopen = reopen
    d.sleep = lambda seconds: None
    return d, log, conns


def test_ldap_lost_connection_reconnects_and_repeats():
    d, log, conns = directory([ldap3_exceptions.LDAPSocketReceiveError('timed out'),
                               ldap3_exceptions.LDAPSessionTerminatedByServerError('closed'), 0])
    d.modify('CN=a,DC=contoso,DC=test', {'description': ('replace', 'x')})
    assert [n for n, _c in log] == ['modify'] * 3
    assert len(conns) == 3 and conns[0].closed and conns[1].closed
    assert d.retries == 2


def test_ldap_busy_and_unavailable_are_retried_on_the_same_connection():
    d, log, conns = directory([51, 52, 0])
    d.add('CN=a,DC=contoso,DC=test', 'group', {'sAMAccountName': 'a'})
    assert len(log) == 3 and len(conns) == 1


@pytest.mark.parametrize('code, error, words', [
    (50, lc.ADInsufficientAccess, ['insufficient access', 'Create Child of msDS-GroupManagedServiceAccount objects',
                                   'CN=Managed Service Accounts,DC=contoso,DC=test', 'svc-gmsa@contoso.test']),
    (19, lc.ADConstraintViolation, ['constraint violation', 'sAMAccountName']),
    (68, lc.ADAlreadyExists, ['already exists']),
    (53, lc.ADError, ['unwillingToPerform']),
])
def test_ldap_permanent_errors_are_not_retried_and_say_what_to_fix(code, error, words):
    d, log, _conns = directory([code, 0])
    with pytest.raises(error) as info:
        d.add('CN=g1,CN=Managed Service Accounts,DC=contoso,DC=test',
              ['top', 'msDS-GroupManagedServiceAccount'], {'sAMAccountName': 'g1$'})
    assert len(log) == 1
    for word in words:
        assert word in str(info.value)


def test_ldap_gives_up_with_a_clear_message():
    d, log, _conns = directory([ldap3_exceptions.LDAPSocketOpenError('refused')] * 50)
    with pytest.raises(lc.ADError) as info:
        d.delete('CN=a,DC=contoso,DC=test')
    assert 'connection to the domain controller was lost' in str(info.value)
    assert 'tried %d times' % retry.ESTABLISHED.attempts in str(info.value)
    assert len(log) == retry.ESTABLISHED.attempts


def test_ldap_reconnect_refused_for_bad_credentials_is_permanent():
    d, log, _conns = directory([ldap3_exceptions.LDAPSocketReceiveError('reset')])

    def reopen():
        raise lc.ADConnectionError('bind refused: invalid credentials', field='password')
    d.reopen = reopen
    with pytest.raises(lc.ADError) as info:
        d.delete('CN=a,DC=contoso,DC=test')
    assert 'invalid credentials' in str(info.value)
    assert len(log) == 1


def test_ldap_delete_repeated_after_loss_that_finds_nothing_succeeded():
    d, _log, _conns = directory([ldap3_exceptions.LDAPSocketReceiveError('timed out'), 32])
    d.delete('CN=a,DC=contoso,DC=test')  # the first try went through before the answer was lost
    d2, _log, _conns = directory([32])
    with pytest.raises(lc.ADNoSuchObject):
        d2.delete('CN=a,DC=contoso,DC=test')  # without a loss, no such object is an error


def test_ldap_add_repeated_after_loss_reports_already_exists():
    d, _log, _conns = directory([ldap3_exceptions.LDAPSocketReceiveError('timed out'), 68])
    with pytest.raises(lc.ADAlreadyExists):
        d.add('CN=a,DC=contoso,DC=test', 'group', {})
