"""A local WS-Management endpoint that answers pywinrm like a Windows host's WinRM service would.

Not Windows and no PowerShell: it implements the WS-Management shell operations pywinrm uses (Create,
Command, Send, Receive, Signal, Delete) and imitates the collection's constant PowerShell scripts with
Python functions working on a recorded state per fake host (a registry dict, OS facts, DNS answers,
open ports). It decodes what the client sends - the -EncodedCommand bootstrap and the base64 JSON payload
on stdin - and answers from that input, so tests see whether the data arrived intact, and it journals
every command (bootstrap text, script text, decoded data) for the tests to read back. It accepts the command
line of the collection's runner and that of Ansible's winrm connection plugin, and runs nothing but the
collection's BOOTSTRAP (journal key bootstrap_recognised). node_refresh is imitated by recording the commands the
real script would run (klist purge, Test-ADServiceAccount per gMSA) in the fake host's 'commands'.

Per fake host it listens on two ports on 127.0.0.1:
  https  TLS with a certificate from the lab's own CA (ca.pem); Basic or NTLM (with channel binding)
  http   NTLM only, every message encrypted with the NTLM session key (like AllowUnencrypted=false)
A control port (HTTP, token in the header X-Lab-Token) serves GET/PUT /state, GET /journal, POST /reset.

usage: server.py --state-dir DIR [--hosts WIN-NODE1,WIN-NODE2]
Writes DIR/lab.json (ports, CA file, credentials file, token) once every port listens.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime
import hashlib
import http.server
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

NS = {
    's': 'http://www.w3.org/2003/05/soap-envelope',
    'a': 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
    'w': 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
    'rsp': 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell',
    'x': 'http://schemas.xmlsoap.org/ws/2004/09/transfer',
}
SHELL = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell'
ACTIONS = {
    'http://schemas.xmlsoap.org/ws/2004/09/transfer/Create': 'create',
    'http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete': 'delete',
    SHELL + '/Command': 'command',
    SHELL + '/Send': 'send',
    SHELL + '/Receive': 'receive',
    SHELL + '/Signal': 'signal',
}
RESULT_MARKER = 'WINKUBE-GMSA-RESULT:'
ENCRYPTED_PROTOCOL = 'application/HTTP-SPNEGO-session-encrypted'
BOUNDARY = b'--Encrypted Boundary'
OPERATION_TIMEOUT_CODE = 2150858793
LOG = logging.getLogger('winrm-lab')

HNS_KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\hns\\State'
CCG_KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\CCG\\COMClasses'


# ---------------------------------------------------------------------------------------------------------------
# state


def default_host_state(name, index):
    """A plausible Windows node: domain-joined, containerd running, hns value not set."""
    return {
        'computer_name': name,
        'dns_host_name': name.lower(),
        'os': {'caption': 'Microsoft Windows Server 2022 Datacenter', 'version': '10.0.20348', 'build': 20348,
               'ubr': 2340, 'display_version': '21H2', 'installation_type': 'Server Core'},
        'domain': {'joined': True, 'name': 'contoso.test'},
        'services': [
            {'name': 'containerd', 'state': 'Running', 'start_mode': 'Auto',
             'path': 'C:\\Program Files\\containerd\\bin\\containerd.exe',
             'version': 'containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7'},
            {'name': 'kubelet', 'state': 'Running', 'start_mode': 'Auto', 'path': 'C:\\k\\kubelet.exe',
             'version': 'Kubernetes v1.36.3'},
        ],
        'registry': {},  # key -> {value name -> {'type': 'DWord', 'value': 1}}
        'dns': {'contoso.test': ['127.0.0.1'], 'dc1.contoso.test': ['127.0.0.1']},
        'srv': {'_ldap._tcp.dc._msdcs.contoso.test': ['dc1.contoso.test']},
        'tcp': {'dc1.contoso.test:88': True, 'dc1.contoso.test:389': True, 'dc1.contoso.test:636': True},
        'errors': {},  # script name -> {'message', 'category', ...} or {'stderr': ..., 'exit_code': ...}
        'index': index,
    }


class LabState(object):
    def __init__(self, names):
        self.lock = threading.Lock()
        self.names = names
        self.hosts = {}
        self.journal = []
        self.reset()

    def reset(self):
        with self.lock:
            self.hosts = dict((name, default_host_state(name, i)) for i, name in enumerate(self.names))
            self.journal = []

    def snapshot(self):
        with self.lock:
            return {'hosts': copy.deepcopy(self.hosts), 'journal': copy.deepcopy(self.journal)}


# ---------------------------------------------------------------------------------------------------------------
# the imitated PowerShell scripts (see plugins/module_utils/winrm/scripts.py for the real ones)


class FakePowerShellError(Exception):
    def __init__(self, error):
        super(FakePowerShellError, self).__init__(error.get('message'))
        self.error = error


def fake_registry_dword(host, data):
    key = str(data['key'])
    name = str(data['name'])
    want = int(data['value'])
    values = host['registry'].get(key)
    key_exists = values is not None
    before = copy.deepcopy(values.get(name)) if key_exists and name in values else None
    changed = not (before and before['type'] == 'DWord' and int(before['value']) == want)
    if changed and not data.get('check_mode'):
        host['registry'].setdefault(key, {})[name] = {'type': 'DWord', 'value': want}
        after = copy.deepcopy(host['registry'][key][name])
    elif changed:
        after = {'type': 'DWord', 'value': want}
    else:
        after = before
    return {'computer_name': host['computer_name'], 'key_existed': key_exists, 'before': before, 'after': after,
            'changed': changed, 'written': bool(changed and not data.get('check_mode'))}


def fake_preflight_facts(host, data):
    domain = str(data.get('domain') or '')
    if not domain and host['domain']['joined']:
        domain = host['domain']['name']
    dns = srv = None
    targets = [t for t in (data.get('domain_controllers') or []) if t]
    if domain:
        addresses = host['dns'].get(domain)
        dns = {'name': domain, 'addresses': addresses or [],
               'error': None if addresses else 'No such host is known'}
        srv_name = '_ldap._tcp.dc._msdcs.' + domain
        srv_targets = host['srv'].get(srv_name)
        srv = {'name': srv_name, 'targets': srv_targets or [],
               'error': None if srv_targets else '%s : DNS name does not exist' % srv_name}
        if not targets:
            targets = list(srv['targets'][:3])
        if not targets:
            targets = [domain]
    ports = []
    for target in targets:
        for port in data.get('ports') or []:
            state = host['tcp'].get('%s:%s' % (target, port))
            if state is True:
                ports.append({'target': target, 'port': int(port), 'open': True, 'error': None})
            else:
                ports.append({'target': target, 'port': int(port), 'open': False,
                              'error': state if isinstance(state, str) else
                              'no answer within %s ms' % data.get('timeout_ms')})
    hns = (host['registry'].get(HNS_KEY) or {}).get('EnableCompartmentNamespace')
    # ccg.exe plugins: a COM class is registered when the registry dict has its key (HKEY_LOCAL_MACHINE\...)
    prefix = CCG_KEY.lower() + '\\'
    classes = [k[len(prefix):] for k in host['registry'] if k.lower().startswith(prefix) and '\\' not in k[len(prefix):]]
    key_exists = any(k.lower() == CCG_KEY.lower() or k.lower().startswith(prefix) for k in host['registry'])
    ccg = {'com_classes_key': key_exists, 'com_classes': classes, 'ccg_exe': host.get('ccg_exe', True),
           'plugins': [{'guid': str(g), 'registered': str(g).lower() in [c.lower() for c in classes]}
                       for g in data.get('ccg_plugin_guids') or [] if g]}
    return {
        'computer_name': host['computer_name'],
        'dns_host_name': host['dns_host_name'],
        'os': copy.deepcopy(host['os']),
        'domain': copy.deepcopy(host['domain']),
        'hns_compartment_namespace': hns['value'] if hns else None,
        'services': copy.deepcopy(host['services']),
        'dns': dns,
        'dc_srv': srv,
        'ports': ports,
        'ccg': ccg,
    }


def fake_echo(host, data):
    """Lab-only script name: hands the decoded data back, for tests of the transport of data."""
    return {'computer_name': host['computer_name'], 'data': data}


def fake_node_refresh(host, data):
    """NODE_REFRESH: records the klist purge and answers Test-ADServiceAccount from host['gmsa_access']."""
    me = host['computer_name'].upper() + '$'
    listed = me in [str(c).upper() for c in data.get('computers') or []]
    purge = bool(listed and data.get('purge'))
    if purge and not data.get('check_mode'):
        host.setdefault('commands', []).append('klist.exe -li 0x3e7 purge')
    tests = []
    for name in [g for g in data.get('gmsas') or [] if g] if listed else []:
        if not host.get('rsat_ad', True):
            tests.append({'gmsa': str(name), 'ok': None, 'error': 'Test-ADServiceAccount is not available on this node '
                          '(Install-WindowsFeature RSAT-AD-PowerShell)'})
            continue
        host.setdefault('commands', []).append(['Test-ADServiceAccount', '-Identity', str(name)])
        tests.append({'gmsa': str(name), 'ok': bool((host.get('gmsa_access') or {}).get(str(name), True)), 'error': None})
    return {'computer_name': host['computer_name'], 'listed': listed, 'changed': purge,
            'purged': bool(purge and not data.get('check_mode')), 'purge_output': None, 'tests': tests}


FAKE_SCRIPTS = {'registry_dword': fake_registry_dword, 'preflight_facts': fake_preflight_facts, 'echo': fake_echo,
                'node_refresh': fake_node_refresh}


def load_fake_modules():
    """Merge FAKE_SCRIPTS of every lab/winrm/fake_*.py (one module per feature: AD cmdlets, Docker, ...)."""
    import importlib.util
    folder = os.path.dirname(os.path.abspath(__file__))
    for file_name in sorted(os.listdir(folder)):
        if file_name.startswith('fake_') and file_name.endswith('.py'):
            spec = importlib.util.spec_from_file_location('winrm_lab_' + file_name[:-3], os.path.join(folder, file_name))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            FAKE_SCRIPTS.update(module.FAKE_SCRIPTS)


def _clixml(message):
    text = escape(message).replace('\n', '_x000D__x000A_')
    return ('#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
            '<S S="Error">%s</S></Objs>' % text).encode('utf-8')


def _result_line(document):
    raw = json.dumps(document, separators=(',', ':')).encode('utf-8')
    return (RESULT_MARKER + base64.b64encode(raw).decode('ascii') + '\r\n').encode('ascii')


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value


def _normalised(script):
    """A script as Ansible 2.17's PowerShell shell plugin encodes it: stripped lines, blank lines dropped."""
    return '\n'.join(line.strip() for line in script.splitlines() if line.strip())


def _collection_bootstrap():
    """The collection's constant BOOTSTRAP, read from plugins/module_utils/winrm/scripts.py of this checkout."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'plugins', 'module_utils', 'winrm', 'scripts.py')
    spec = importlib.util.spec_from_file_location('winrm_lab_collection_scripts', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BOOTSTRAP


BOOTSTRAP = _collection_bootstrap()


def run_powershell(state, host_name, command, arguments, stdin):
    """Imitate `powershell.exe -NoProfile -NonInteractive -EncodedCommand <bootstrap>` with stdin.

    Two senders: the collection's own runner (command powershell.exe, the options as arguments) and Ansible's
    winrm connection plugin (``PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand
    ...``, all of it as the command with no arguments in ansible-core 2.18+; split into command and arguments
    before). Only the collection's BOOTSTRAP is run, as sent or as Ansible 2.17 encodes it (lines stripped).
    Returns (stdout bytes, stderr bytes, exit code) and journals what arrived.
    """
    entry = {'host': host_name, 'time': time.time(), 'command': command, 'arguments': arguments}
    words = ('%s %s' % (command, arguments)).split()
    executable, args = (words[0] if words else ''), words[1:]
    if executable.lower() not in ('powershell.exe', 'powershell') or '-EncodedCommand' not in args:
        entry['error'] = 'not a powershell -EncodedCommand invocation'
        with state.lock:
            state.journal.append(entry)
        return b'', b"'%s' is not recognized as an internal or external command\r\n" % executable.encode(), 1
    encoded = args[args.index('-EncodedCommand') + 1]
    bootstrap = base64.b64decode(encoded).decode('utf-16-le')
    entry.update(options=args[:args.index('-EncodedCommand')], bootstrap=bootstrap,
                 bootstrap_sha256=hashlib.sha256(bootstrap.encode('utf-8')).hexdigest(),
                 bootstrap_recognised=bootstrap == BOOTSTRAP or bootstrap == _normalised(BOOTSTRAP),
                 stdin_bytes=len(stdin))
    if not entry['bootstrap_recognised']:
        entry['error'] = 'not the collection\'s bootstrap: the imitation runs nothing else'
        with state.lock:
            state.journal.append(entry)
        return b'', _clixml('The lab endpoint only imitates the collection\'s bootstrap script'), 1
    try:
        raw = base64.b64decode(re.sub(rb'\s', b'', stdin), validate=True)
        payload = json.loads(raw.decode('utf-8'))
        script = base64.b64decode(payload['script']).decode('utf-8')
        data = payload['data']
        name = payload['name']
    except (ValueError, KeyError, TypeError) as exc:
        entry['error'] = 'undecodable payload: %s' % exc
        with state.lock:
            state.journal.append(entry)
        message = ('Exception calling "FromBase64String" with "1" argument(s): "The input is not a valid Base-64 '
                   'string as it contains a non-base 64 character"')
        return b'', _clixml(message), 1
    # Everything below is what the real bootstrap would do: run the script block with $Data, report JSON.
    command_line = '%s %s' % (command, arguments)
    strings = [s for s in _leaves(data) if len(s) >= 4]
    entry.update(name=name, script=script, script_sha256=hashlib.sha256(script.encode('utf-8')).hexdigest(),
                 payload_version=payload.get('version'), data=data,
                 data_in_command_line=any(s in command_line or s in bootstrap for s in strings),
                 data_in_script_text=any(s in script for s in strings))
    with state.lock:
        host = state.hosts[host_name]
        injected = host['errors'].get(name)
        try:
            if injected and 'stderr' in injected:
                entry['outcome'] = 'stderr'
                state.journal.append(entry)
                return b'', _clixml(injected['stderr']), int(injected.get('exit_code', 1))
            if injected:
                raise FakePowerShellError(injected)
            if 'param($Data)' not in script:
                raise FakePowerShellError({'message': 'A parameter cannot be found that matches parameter name.',
                                           'category': 'InvalidArgument', 'error_id': 'NamedParameterNotFound'})
            fake = FAKE_SCRIPTS.get(name)
            if fake is None:
                raise FakePowerShellError({'message': 'The lab endpoint does not imitate the script %r' % name,
                                           'category': 'NotImplemented', 'error_id': 'LabUnknownScript'})
            result = fake(host, data)
            entry['outcome'] = 'ok'
            state.journal.append(entry)
            return _result_line({'ok': True, 'result': result}), b'', 0
        except FakePowerShellError as exc:
            error = dict({'message': None, 'category': 'NotSpecified', 'error_id': None, 'exception':
                          'System.Management.Automation.RuntimeException', 'command': None, 'line': None}, **exc.error)
            entry['outcome'] = 'error'
            state.journal.append(entry)
            return _result_line({'ok': False, 'error': error}), b'', 1


# ---------------------------------------------------------------------------------------------------------------
# WS-Management


def _envelope(action, relates_to, body):
    return ('<s:Envelope xmlns:s="%(s)s" xmlns:a="%(a)s" xmlns:w="%(w)s" xmlns:rsp="%(rsp)s" xmlns:x="%(x)s">'
            '<s:Header><a:Action>%(action)s</a:Action><a:MessageID>uuid:%(id)s</a:MessageID>'
            '<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>'
            '<a:RelatesTo>%(relates)s</a:RelatesTo></s:Header><s:Body>%(body)s</s:Body></s:Envelope>'
            % dict(NS, action=action, id=uuid.uuid4(), relates=escape(relates_to or ''), body=body)).encode('utf-8')


def _fault(relates_to, reason, code=None, subcode='w:InvalidSelectors'):
    detail = ('<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="%d" '
              'Machine="localhost"><f:Message>%s</f:Message></f:WSManFault></s:Detail>'
              % (code or 2150858843, escape(reason)))
    body = ('<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code>'
            '<s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason>%s</s:Fault>' % (subcode, escape(reason), detail))
    return _envelope('http://schemas.dmtf.org/wbem/wsman/1/wsman/fault', relates_to, body)


class Shells(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.shells = {}  # shell id -> {command id -> command}


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
            self._send(400, _fault(None, 'The WinRM client cannot process the request: unencrypted traffic is '
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


class Lab(object):
    def __init__(self, state, users):
        self.state = state
        self.users = users  # lower-case user name forms -> password
        self.shells = Shells()

    def check_password(self, user, password):
        expected = self.users.get(user.lower())
        return expected is not None and secrets.compare_digest(expected.encode(), password.encode())

    def handle_soap(self, host_name, body):
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return 400, _fault(None, 'The request is not well-formed XML')
        header = root.find('s:Header', NS)
        action = (header.findtext('a:Action', '', NS) or '').strip()
        message_id = (header.findtext('a:MessageID', '', NS) or '').strip()
        selector = header.find('w:SelectorSet/w:Selector[@Name="ShellId"]', NS)
        shell_id = selector.text if selector is not None else None
        operation = ACTIONS.get(action)
        body_node = root.find('s:Body', NS)
        if operation is None:
            return 500, _fault(message_id, 'The WS-Management service does not support the action %s' % action,
                               subcode='a:ActionNotSupported')
        if operation == 'create':
            new_id = str(uuid.uuid4()).upper()
            with self.shells.lock:
                self.shells.shells[new_id] = {'host': host_name, 'commands': {}}
            body = ('<x:ResourceCreated><a:Address>http://localhost/wsman</a:Address><a:ReferenceParameters>'
                    '<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>'
                    '<w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector></w:SelectorSet>'
                    '</a:ReferenceParameters></x:ResourceCreated><rsp:Shell><rsp:ShellId>%s</rsp:ShellId>'
                    '</rsp:Shell>' % (new_id, new_id))
            return 200, _envelope('http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse', message_id, body)
        with self.shells.lock:
            shell = self.shells.shells.get(shell_id)
        if shell is None or shell['host'] != host_name:
            return 500, _fault(message_id, 'The request for the Windows Remote Shell with ShellId %s failed because '
                               'the shell was not found on the server.' % shell_id)
        if operation == 'delete':
            with self.shells.lock:
                self.shells.shells.pop(shell_id, None)
            return 200, _envelope('http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse', message_id, '')
        if operation == 'command':
            command_line = body_node.find('rsp:CommandLine', NS)
            command_id = str(uuid.uuid4()).upper()
            shell['commands'][command_id] = {
                'command': (command_line.findtext('rsp:Command', '', NS) or '').strip(),
                'arguments': (command_line.findtext('rsp:Arguments', '', NS) or '').strip(),
                'stdin': b'', 'stdin_done': False, 'output': None, 'event': threading.Event()}
            return 200, _envelope(SHELL + '/CommandResponse', message_id,
                                  '<rsp:CommandResponse><rsp:CommandId>%s</rsp:CommandId></rsp:CommandResponse>'
                                  % command_id)
        if operation == 'send':
            stream = body_node.find('rsp:Send/rsp:Stream', NS)
            command = shell['commands'].get(stream.get('CommandId'))
            if command is None:
                return 500, _fault(message_id, 'unknown command id')
            command['stdin'] += base64.b64decode(stream.text or '')
            if (stream.get('End') or '').lower() == 'true':
                command['stdin_done'] = True
                command['event'].set()
            return 200, _envelope(SHELL + '/SendResponse', message_id, '<rsp:SendResponse/>')
        if operation == 'receive':
            stream = body_node.find('rsp:Receive/rsp:DesiredStream', NS)
            command_id = stream.get('CommandId')
            command = shell['commands'].get(command_id)
            if command is None:
                return 500, _fault(message_id, 'unknown command id')
            if not command['stdin_done'] and not command['event'].wait(1.0):
                # as WinRM does while a command runs without output: an operation timeout the client retries
                return 500, _fault(message_id, 'The WS-Management service cannot complete the operation within '
                                   'the time specified in OperationTimeout.', code=OPERATION_TIMEOUT_CODE,
                                   subcode='w:TimedOut')
            if command['output'] is None:
                command['output'] = run_powershell(self.state, host_name, command['command'], command['arguments'],
                                                   command['stdin'])
            stdout, stderr, exit_code = command['output']
            body = ('<rsp:ReceiveResponse>'
                    '<rsp:Stream Name="stdout" CommandId="%(id)s">%(out)s</rsp:Stream>'
                    '<rsp:Stream Name="stderr" CommandId="%(id)s">%(err)s</rsp:Stream>'
                    '<rsp:Stream Name="stdout" CommandId="%(id)s" End="true"></rsp:Stream>'
                    '<rsp:Stream Name="stderr" CommandId="%(id)s" End="true"></rsp:Stream>'
                    '<rsp:CommandState CommandId="%(id)s" State="%(shell)s/CommandState/Done">'
                    '<rsp:ExitCode>%(code)d</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>'
                    % dict(id=command_id, out=base64.b64encode(stdout).decode(), err=base64.b64encode(stderr).decode(),
                           shell=SHELL, code=exit_code))
            return 200, _envelope(SHELL + '/ReceiveResponse', message_id, body)
        # signal
        signal = body_node.find('rsp:Signal', NS)
        shell['commands'].pop(signal.get('CommandId'), None)
        return 200, _envelope(SHELL + '/SignalResponse', message_id, '<rsp:SignalResponse/>')


class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # noqa: A002
        LOG.info('control %s', format % args)

    def _json(self, status, value):
        body = json.dumps(value).encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self):
        if not secrets.compare_digest(self.headers.get('X-Lab-Token', ''), self.server.token):
            self._json(403, {'error': 'bad token'})
            return False
        return True

    def do_GET(self):  # noqa: N802
        if not self._authorized():
            return
        snapshot = self.server.lab.state.snapshot()
        if self.path == '/state':
            self._json(200, snapshot['hosts'])
        elif self.path == '/journal':
            self._json(200, snapshot['journal'])
        else:
            self._json(404, {'error': 'not found'})

    def do_PUT(self):  # noqa: N802
        self._write()

    def do_POST(self):  # noqa: N802
        self._write()

    def _write(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = json.loads(self.rfile.read(length) or b'null') if length else None
        if not self._authorized():
            return
        state = self.server.lab.state
        if self.path == '/reset':
            state.reset()
            self._json(200, {'reset': True})
            return
        match = re.match(r'^/state/([^/]+)$', self.path)
        if match and match.group(1) in state.hosts and isinstance(body, dict):
            with state.lock:
                state.hosts[match.group(1)].update(body)
            self._json(200, state.snapshot()['hosts'][match.group(1)])
            return
        self._json(404, {'error': 'not found'})


class ControlServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, address, lab, token):
        self.lab = lab
        self.token = token
        http.server.HTTPServer.__init__(self, address, ControlHandler)


# ---------------------------------------------------------------------------------------------------------------
# certificates and start-up


def _write(path, data, private=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)


def make_ca(name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'winkube.gmsa lab'),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_certs(directory):
    """ca.pem (the lab CA), other-ca.pem (an unrelated CA, for negative tests), cert.pem/key.pem (server)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if all(os.path.exists(os.path.join(directory, f)) for f in ('ca.pem', 'other-ca.pem', 'cert.pem', 'key.pem')):
        return
    os.makedirs(directory, exist_ok=True)
    ca_key, ca = make_ca('winkube.gmsa WinRM lab CA')
    dummy, other = make_ca('winkube.gmsa unrelated CA')
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName('localhost'), x509.IPAddress(ipaddress.ip_address('127.0.0.1')),
             x509.IPAddress(ipaddress.ip_address('::1'))]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'localhost')]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write(os.path.join(directory, 'ca.pem'), ca.public_bytes(pem))
    _write(os.path.join(directory, 'other-ca.pem'), other.public_bytes(pem))
    _write(os.path.join(directory, 'cert.pem'), cert.public_bytes(pem))
    _write(os.path.join(directory, 'key.pem'), key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()), private=True)


def listen(make_server):
    """A server on a free port of 127.0.0.1 below 49152, where Samba's RPC server takes its dynamic ports."""
    import random
    while True:
        try:
            return make_server(('127.0.0.1', random.randint(20000, 32000)))
        except OSError:
            continue


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--state-dir', required=True)
    parser.add_argument('--hosts', default='WIN-NODE1,WIN-NODE2')
    parser.add_argument('--domain', default='CONTOSO')
    parser.add_argument('--user', default='winrm-admin')
    args = parser.parse_args(argv)
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    logging.basicConfig(filename=os.path.join(state_dir, 'server.log'), level=logging.INFO,
                        format='%(asctime)s %(threadName)s %(message)s')
    tls_dir = os.path.join(state_dir, 'tls')
    make_certs(tls_dir)
    password_file = os.path.join(state_dir, 'password')
    if not os.path.exists(password_file):
        # letters, digits and characters that need care in shells and URLs
        _write(password_file, ('Lab-' + secrets.token_urlsafe(12) + '!$"\'`').encode(), private=True)
    with open(password_file, encoding='utf-8') as handle:
        password = handle.read()
    users_file = os.path.join(state_dir, 'ntlm-users')
    _write(users_file, ('%s:%s:%s\n' % (args.domain, args.user, password)).encode('utf-8'), private=True)
    os.environ['NTLM_USER_FILE'] = users_file  # pyspnego's NTLM acceptor reads its credentials from here
    users = {('%s\\%s' % (args.domain, args.user)).lower(): password, args.user.lower(): password}

    load_fake_modules()
    names = [n.strip() for n in args.hosts.split(',') if n.strip()]
    lab = Lab(LabState(names), users)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.path.join(tls_dir, 'cert.pem'), os.path.join(tls_dir, 'key.pem'))
    with open(os.path.join(tls_dir, 'cert.pem'), 'rb') as handle:
        cert_der = ssl.PEM_cert_to_DER_cert(handle.read().decode())
    servers, hosts = [], {}
    for name in names:
        https = listen(lambda address: LabHTTPServer(address, WsmanHandler, lab, name, tls=context, cert_der=cert_der))
        plain = listen(lambda address: LabHTTPServer(address, WsmanHandler, lab, name))
        servers += [https, plain]
        hosts[name] = {'https_port': https.server_address[1], 'http_port': plain.server_address[1]}
    token = secrets.token_hex(16)
    control = listen(lambda address: ControlServer(address, lab, token))
    servers.append(control)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True, name='serve-%d' % server.server_address[1]).start()
    info = {
        'pid': os.getpid(),
        'address': '127.0.0.1',
        'hosts': hosts,
        'control_url': 'http://127.0.0.1:%d' % control.server_address[1],
        'control_token': token,
        'ca_file': os.path.join(tls_dir, 'ca.pem'),
        'other_ca_file': os.path.join(tls_dir, 'other-ca.pem'),
        'username': '%s\\%s' % (args.domain, args.user),
        'password_file': password_file,
    }
    temporary = os.path.join(state_dir, 'lab.json.tmp')
    _write(temporary, json.dumps(info, indent=2).encode(), private=True)
    os.replace(temporary, os.path.join(state_dir, 'lab.json'))
    LOG.info('listening: %s', json.dumps(hosts))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
