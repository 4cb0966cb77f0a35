# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab endpoint's WS-Management plumbing: SOAP envelopes and faults, and the HTTP side of a fake host (Basic
or NTLM with channel binding over TLS, NTLM with message encryption over HTTP). The operations themselves (Create,
Command, Send, Receive, Signal, Delete) are server.py's Lab.handle_soap. An imitation of Windows' WinRM service."""

from __future__ import annotations

import base64
import hashlib
import http.server
import logging
import socket
import socketserver
import ssl
import struct
import uuid
from xml.sax.saxutils import escape

NS = {
    's': 'http://www.w3.org/2003/05/soap-envelope',
    'a': 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
    'w': 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
    'rsp': 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell',
    'x': 'http://schemas.xmlsoap.org/ws/2004/09/transfer',
}
ENCRYPTED_PROTOCOL = 'application/HTTP-SPNEGO-session-encrypted'
BOUNDARY = b'--Encrypted Boundary'
LOG = logging.getLogger('winrm-lab')


def envelope(action, relates_to, body):
    return ('<s:Envelope xmlns:s="%(s)s" xmlns:a="%(a)s" xmlns:w="%(w)s" xmlns:rsp="%(rsp)s" xmlns:x="%(x)s">'
            '<s:Header><a:Action>%(action)s</a:Action><a:MessageID>uuid:%(id)s</a:MessageID>'
            '<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>'
            '<a:RelatesTo>%(relates)s</a:RelatesTo></s:Header><s:Body>%(body)s</s:Body></s:Envelope>'
            % dict(NS, action=action, id=uuid.uuid4(), relates=escape(relates_to or ''), body=body)).encode('utf-8')


def fault(relates_to, reason, code=None, subcode='w:InvalidSelectors'):
    detail = ('<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="%d" '
              'Machine="localhost"><f:Message>%s</f:Message></f:WSManFault></s:Detail>'
              % (code or 2150858843, escape(reason)))
    body = ('<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code>'
            '<s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason>%s</s:Fault>' % (subcode, escape(reason), detail))
    return envelope('http://schemas.dmtf.org/wbem/wsman/1/wsman/fault', relates_to, body)


class WsmanHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'Microsoft-HTTPAPI/2.0'
    sys_version = ''

    def setup(self):
        super(WsmanHandler, self).setup()
        self.ntlm = None  # pyspnego server context of this connection
        self.authenticated = None  # user name once authenticated

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        LOG.info('%s %s', self.server.host_name, format % args)

    # ---- plumbing
    def _send(self, status, body=b'', content_type='application/soap+xml;charset=UTF-8', headers=()):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        if body or status != 401:
            self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _challenge(self, token=None):
        headers = [('WWW-Authenticate', 'Negotiate' + (' ' + base64.b64encode(token).decode() if token else ''))]
        if self.server.tls and token is None:
            headers.append(('WWW-Authenticate', 'Basic realm="WSMAN"'))
        self._send(401, headers=headers)

    def do_POST(self):  # noqa: N802 - http.server naming
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        if self.path.split('?')[0].rstrip('/') != '/wsman':
            self._send(404, b'not found', 'text/plain')
            return
        auth = self.headers.get('Authorization')
        if auth:
            scheme, dummy, value = auth.partition(' ')
            if scheme.lower() == 'basic':
                if not self.server.tls:
                    self._challenge()  # Basic is refused over HTTP, as on Windows by default
                    return
                user, dummy, password = base64.b64decode(value).decode('utf-8', 'replace').partition(':')
                if not self.server.lab.check_password(user, password):
                    self._challenge()
                    return
                self.authenticated = user
            elif scheme.lower() in ('negotiate', 'ntlm'):
                if not self._ntlm_step(base64.b64decode(value)):
                    return
            else:
                self._challenge()
                return
        if not self.authenticated:
            self._challenge()
            return
        content_type = self.headers.get('Content-Type') or ''
        encrypted = 'multipart/encrypted' in content_type
        if encrypted:
            if self.ntlm is None:
                self._send(400, b'', 'text/plain')
                return
            body = self._decrypt(body)
        elif not self.server.tls and body:
            # AllowUnencrypted=false: an HTTP listener refuses clear-text messages
            self._send(400, fault(None, 'The WinRM client cannot process the request: unencrypted traffic is '
                                  'disabled on the service', subcode='w:AccessDenied'))
            return
        if not body:
            self._reply(200, b'', encrypted)
            return
        status, answer = self.server.lab.handle_soap(self.server.host_name, body)
        self._reply(status, answer, encrypted or (self.ntlm is not None and not self.server.tls))

    def _reply(self, status, body, encrypt):
        if encrypt and body:
            wrapped = self.ntlm.wrap(body, encrypt=True).data
            signature, sealed = wrapped[:16], wrapped[16:]
            payload = (BOUNDARY + b'\r\n\tContent-Type: ' + ENCRYPTED_PROTOCOL.encode() + b'\r\n'
                       b'\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=' + str(len(body)).encode()
                       + b'\r\n' + BOUNDARY + b'\r\n\tContent-Type: application/octet-stream\r\n'
                       + struct.pack('<i', len(signature)) + signature + sealed + BOUNDARY + b'--\r\n')
            self._send(status, payload,
                       'multipart/encrypted;protocol="%s";boundary="Encrypted Boundary"' % ENCRYPTED_PROTOCOL)
        else:
            self._send(status, body)

    def _decrypt(self, body):
        parts = [p for p in body.split(BOUNDARY + b'\r\n') if p]
        header, payload = parts[0], parts[1]
        expected = int(header.split(b'Length=')[1].strip())
        if payload.endswith(BOUNDARY + b'--\r\n'):
            payload = payload[:-len(BOUNDARY + b'--\r\n')]
        payload = payload.replace(b'\tContent-Type: application/octet-stream\r\n', b'')
        size = struct.unpack('<i', payload[:4])[0]
        signature, sealed = payload[4:4 + size], payload[4 + size:]
        message = self.ntlm.unwrap(signature + sealed).data
        if len(message) != expected:
            raise ValueError('encrypted message length mismatch')
        return message

    def _ntlm_step(self, token):
        import spnego
        from spnego.channel_bindings import GssChannelBindings

        if self.ntlm is None or self.ntlm.complete:
            bindings = None
            if self.server.tls:
                bindings = GssChannelBindings(application_data=b'tls-server-end-point:' + self.server.cert_hash)
            self.ntlm = spnego.server(hostname='localhost', service='http', protocol='ntlm',
                                      channel_bindings=bindings)
        try:
            answer = self.ntlm.step(token)
        except Exception as exc:  # pylint: disable=broad-except
            LOG.info('%s NTLM authentication refused: %s', self.server.host_name, exc)
            self.ntlm = None
            self._challenge()
            return False
        if not self.ntlm.complete:
            self._challenge(answer)
            return False
        self.authenticated = str(self.ntlm.client_principal)
        return True


class LabHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, lab, host_name, tls=None, cert_der=None):
        self.lab = lab
        self.host_name = host_name
        self.tls = tls
        self.cert_hash = hashlib.sha256(cert_der).digest() if cert_der else None
        http.server.HTTPServer.__init__(self, address, handler)

    def finish_request(self, request, client_address):
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            request.settimeout(30)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                LOG.info('%s TLS handshake failed: %s', self.host_name, exc)
                return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        LOG.exception('%s error serving %s', self.host_name, client_address)
