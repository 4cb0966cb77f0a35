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

Files: server.py (state, the bootstrap and the WS-Management shell operations, control port, start-up),
wsman_http.py (SOAP envelopes, the HTTP side: authentication and message encryption), lab_certs.py (the lab CA and
certificates), fake_node.py / fake_docker.py / fake_ad.py (the imitated scripts, one file per feature).

usage: server.py --state-dir DIR [--hosts WIN-NODE1,WIN-NODE2]
Writes DIR/lab.json (ports, CA file, credentials file, token) once every port listens.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import http.server
import json
import logging
import os
import re
import secrets
import socketserver
import ssl
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

# The sibling files of this folder (server.py runs as a script, so its folder is on sys.path).
from lab_certs import make_certs, write_file
from wsman_http import NS, LabHTTPServer, WsmanHandler, envelope, fault

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
OPERATION_TIMEOUT_CODE = 2150858793
LOG = logging.getLogger('winrm-lab')


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


FAKE_SCRIPTS = {}  # script name -> imitation, from every lab/winrm/fake_*.py (fake_node.py: the node scripts)


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


class Shells(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.shells = {}  # shell id -> {command id -> command}


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
            return 400, fault(None, 'The request is not well-formed XML')
        header = root.find('s:Header', NS)
        action = (header.findtext('a:Action', '', NS) or '').strip()
        message_id = (header.findtext('a:MessageID', '', NS) or '').strip()
        selector = header.find('w:SelectorSet/w:Selector[@Name="ShellId"]', NS)
        shell_id = selector.text if selector is not None else None
        operation = ACTIONS.get(action)
        body_node = root.find('s:Body', NS)
        if operation is None:
            return 500, fault(message_id, 'The WS-Management service does not support the action %s' % action,
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
            return 200, envelope('http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse', message_id, body)
        with self.shells.lock:
            shell = self.shells.shells.get(shell_id)
        if shell is None or shell['host'] != host_name:
            return 500, fault(message_id, 'The request for the Windows Remote Shell with ShellId %s failed because '
                              'the shell was not found on the server.' % shell_id)
        if operation == 'delete':
            with self.shells.lock:
                self.shells.shells.pop(shell_id, None)
            return 200, envelope('http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse', message_id, '')
        if operation == 'command':
            command_line = body_node.find('rsp:CommandLine', NS)
            command_id = str(uuid.uuid4()).upper()
            shell['commands'][command_id] = {
                'command': (command_line.findtext('rsp:Command', '', NS) or '').strip(),
                'arguments': (command_line.findtext('rsp:Arguments', '', NS) or '').strip(),
                'stdin': b'', 'stdin_done': False, 'output': None, 'event': threading.Event()}
            return 200, envelope(SHELL + '/CommandResponse', message_id,
                                 '<rsp:CommandResponse><rsp:CommandId>%s</rsp:CommandId></rsp:CommandResponse>'
                                 % command_id)
        if operation == 'send':
            stream = body_node.find('rsp:Send/rsp:Stream', NS)
            command = shell['commands'].get(stream.get('CommandId'))
            if command is None:
                return 500, fault(message_id, 'unknown command id')
            command['stdin'] += base64.b64decode(stream.text or '')
            if (stream.get('End') or '').lower() == 'true':
                command['stdin_done'] = True
                command['event'].set()
            return 200, envelope(SHELL + '/SendResponse', message_id, '<rsp:SendResponse/>')
        if operation == 'receive':
            stream = body_node.find('rsp:Receive/rsp:DesiredStream', NS)
            command_id = stream.get('CommandId')
            command = shell['commands'].get(command_id)
            if command is None:
                return 500, fault(message_id, 'unknown command id')
            if not command['stdin_done'] and not command['event'].wait(1.0):
                # as WinRM does while a command runs without output: an operation timeout the client retries
                return 500, fault(message_id, 'The WS-Management service cannot complete the operation within '
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
            return 200, envelope(SHELL + '/ReceiveResponse', message_id, body)
        # signal
        signal = body_node.find('rsp:Signal', NS)
        shell['commands'].pop(signal.get('CommandId'), None)
        return 200, envelope(SHELL + '/SignalResponse', message_id, '<rsp:SignalResponse/>')


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
        self.write_file()

    def do_POST(self):  # noqa: N802
        self.write_file()

    def write_file(self):
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
# start-up


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
        write_file(password_file, ('Lab-' + secrets.token_urlsafe(12) + '!$"\'`').encode(), private=True)
    with open(password_file, encoding='utf-8') as handle:
        password = handle.read()
    users_file = os.path.join(state_dir, 'ntlm-users')
    write_file(users_file, ('%s:%s:%s\n' % (args.domain, args.user, password)).encode('utf-8'), private=True)
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
    write_file(temporary, json.dumps(info, indent=2).encode(), private=True)
    os.replace(temporary, os.path.join(state_dir, 'lab.json'))
    LOG.info('listening: %s', json.dumps(hosts))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
