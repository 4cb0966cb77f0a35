"""A TLS-terminating LDAP proxy that counts the LDAP operations that cross the wire.

The benchmark points the modules at this proxy instead of the domain controller, so LDAP operations are
counted independently of the code under test (the modules also report their own ``ldap_operations``; the
benchmark records both and the proxy's numbers are the ones in the tables).

    client --LDAPS (our throw-away CA, cert for 127.0.0.1)--> proxy --LDAPS (DC's CA validated)--> DC

Every client->server LDAPMessage is decoded far enough to read its protocolOp tag (RFC 4511); every
server->client message too, so returned search entries can be counted. Nothing is changed in flight.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import select
import socket
import ssl
import threading

# RFC 4511 protocolOp application tags
OPS = {
    0: 'bind', 1: 'bind_response', 2: 'unbind', 3: 'search', 4: 'search_entry', 5: 'search_done',
    6: 'modify', 7: 'modify_response', 8: 'add', 9: 'add_response', 10: 'delete', 11: 'delete_response',
    12: 'modify_dn', 13: 'modify_dn_response', 14: 'compare', 15: 'compare_response', 16: 'abandon',
    19: 'search_reference', 23: 'extended', 24: 'extended_response', 25: 'intermediate_response',
}
WRITES = ('modify', 'add', 'delete', 'modify_dn')


def make_ca_and_cert(outdir):
    """A throw-away CA and a server certificate for 127.0.0.1/localhost. Returns (ca, cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'winkube.gmsa bench LDAP proxy CA')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'localhost')]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName('localhost'),
                                                        x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = (os.path.join(outdir, 'proxy-ca.pem'), os.path.join(outdir, 'proxy-cert.pem'),
             os.path.join(outdir, 'proxy-key.pem'))
    with open(paths[0], 'wb') as handle:
        handle.write(ca.public_bytes(pem))
    with open(paths[1], 'wb') as handle:
        handle.write(cert.public_bytes(pem))
    fd = os.open(paths[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def _ber_length(buf, pos):
    """(length, position after the length octets) or None when buf is too short."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if pos + 1 + count > len(buf):
        return None
    return int.from_bytes(buf[pos + 1:pos + 1 + count], 'big'), pos + 1 + count


def split_messages(buf):
    """Split complete LDAPMessages off a bytearray: returns (list of protocolOp tag numbers, bytes consumed)."""
    tags, pos = [], 0
    while True:
        if len(buf) - pos < 2:
            break
        if buf[pos] != 0x30:
            raise ValueError('not an LDAPMessage (tag 0x%02x)' % buf[pos])
        parsed = _ber_length(buf, pos + 1)
        if parsed is None:
            break
        length, body = parsed
        end = body + length
        if end > len(buf):
            break
        # messageID INTEGER
        if buf[body] != 0x02:
            raise ValueError('LDAPMessage without messageID')
        id_len = _ber_length(buf, body + 1)
        op_pos = id_len[1] + id_len[0]
        tags.append(buf[op_pos] & 0x1F)
        pos = end
    return tags, pos


class LdapCountingProxy(object):
    """Start with start(); counters with snapshot(); stop with stop()."""

    def __init__(self, upstream_host, upstream_port, upstream_ca, workdir):
        self.upstream = (upstream_host, upstream_port)
        self.ca_file, cert, key = make_ca_and_cert(workdir)
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(cert, key)
        self.client_ctx = ssl.create_default_context(cafile=upstream_ca)
        self.lock = threading.Lock()
        self.counts = {}
        self.connections = 0
        self.errors = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = None
        self.trace = [] if os.environ.get('BENCH_LDAP_TRACE') == '1' else None

    # -- counters --------------------------------------------------------------------------------------
    def _count(self, tags, conn_id=None):
        with self.lock:
            if self.trace is not None:
                self.trace.append((conn_id, [OPS.get(t, t) for t in tags]))
            for tag in tags:
                name = OPS.get(tag, 'op%d' % tag)
                self.counts[name] = self.counts.get(name, 0) + 1

    def snapshot(self):
        with self.lock:
            snap = dict(self.counts)
            snap['connections'] = self.connections
            return snap

    @staticmethod
    def delta(after, before):
        """Operations between two snapshots, with the totals the benchmark reports."""
        keys = set(after) | set(before)
        diff = dict((k, after.get(k, 0) - before.get(k, 0)) for k in keys)
        diff = dict((k, v) for k, v in diff.items() if v)
        client_ops = ('bind', 'unbind', 'search', 'modify', 'add', 'delete', 'modify_dn', 'compare', 'abandon',
                      'extended')
        requests = sum(diff.get(k, 0) for k in client_ops)
        return {
            'requests': requests,
            'searches': diff.get('search', 0),
            'writes': sum(diff.get(k, 0) for k in WRITES),
            'binds': diff.get('bind', 0),
            'entries_returned': diff.get('search_entry', 0),
            'connections': diff.get('connections', 0),
            # requests the DC never answered on that connection (a client gave up and retried): should be 0
            'unanswered': sum(max(diff.get(req, 0) - diff.get(resp, 0), 0) for req, resp in (
                ('bind', 'bind_response'), ('search', 'search_done'), ('add', 'add_response'),
                ('modify', 'modify_response'), ('delete', 'delete_response'))),
            'by_operation': dict((k, v) for k, v in sorted(diff.items()) if k != 'connections'),
        }

    # -- serving ---------------------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._accept_loop, name='ldap-proxy', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept_loop(self):
        while not self._stop:
            try:
                raw, dummy = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                conn_id = self.connections
            threading.Thread(target=self._serve, args=(raw, conn_id), daemon=True).start()

    def _serve(self, raw, conn_id=None):
        # The relay writes each piece as it arrives: with Nagle's algorithm a piece that follows an unacknowledged one
        # waits for the peer's delayed ACK (~40 ms), once per search whose answer spans several pieces
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            client = self.server_ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.errors.append('client TLS: %s' % exc)
            raw.close()
            return
        try:
            upstream_raw = socket.create_connection(self.upstream, timeout=60)
            upstream_raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = self.client_ctx.wrap_socket(upstream_raw, server_hostname=self.upstream[0])
        except (ssl.SSLError, OSError) as exc:
            self.errors.append('upstream: %s' % exc)
            client.close()
            return
        try:
            self._relay(client, upstream, conn_id)
        except (OSError, ValueError, ssl.SSLError) as exc:
            self.errors.append('connection %s: %s' % (conn_id, exc))
        finally:
            for sock in (client, upstream):
                try:
                    sock.close()
                except OSError:
                    pass

    def _relay(self, client, upstream, conn_id):
        """Forward both ways from ONE thread: an OpenSSL connection must not be read and written concurrently."""
        client.settimeout(None)
        upstream.settimeout(None)
        route = {client: (upstream, bytearray(), conn_id), upstream: (client, bytearray(), -conn_id)}
        socks = [client, upstream]
        while not self._stop:
            ready = [sock for sock in socks if sock.pending()]  # decrypted bytes already buffered
            if not ready:
                ready = select.select(socks, [], [], 600)[0]
                if not ready:
                    return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                dst, buf, direction = route[sock]
                buf += data
                tags, used = split_messages(buf)
                if used:
                    del buf[:used]
                    self._count(tags, direction)
                dst.sendall(data)
