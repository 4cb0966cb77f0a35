# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One PowerShell runner over pywinrm for every WinRM module.

How user values reach PowerShell: never as script text. The command line is the constant
``powershell.exe -NoProfile -NonInteractive -EncodedCommand <BOOTSTRAP>``; the module's constant script and
the one JSON document of input data travel on the command's stdin as base64 of UTF-8 JSON (an alphabet no
quoting can escape), and the bootstrap hands the decoded data to the script block as its only argument.
The script's answer comes back as one marker line with base64 of UTF-8 JSON, so console code pages do not
matter. PowerShell errors come back as :class:`PowerShellError` with the cmdlet's message.

pywinrm's ``Session.run_ps`` is not used because it puts the whole script on the command line (limited to
8191 characters by cmd.exe) and has no stdin; the same WS-Management operations are used directly:
Create (shell), Command, Send (stdin), Receive, Signal, Delete.

Time is bounded three ways: each HTTP request (connect and answer) by ``read_timeout``; each WS-Management
operation by ``operation_timeout`` (the host answers "still running" after it, and Receive is asked again);
the whole script on one host by ``total_timeout`` (checked before every request, so one host's run ends
within ``total_timeout + read_timeout``). A run cut short says which script on which host did not finish
and that a rerun completes it (every script is idempotent).
"""

from __future__ import annotations

import base64
import json
import re
import time
import xml.etree.ElementTree as ET

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import BOOTSTRAP, RESULT_MARKER

HAS_WINRM = True
WINRM_IMPORT_ERROR = None
try:
    import requests
    from winrm.exceptions import (InvalidCredentialsError, WinRMError, WinRMOperationTimeoutError,
                                  WinRMTransportError, WSManFaultError)
    from winrm.protocol import Protocol
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    HAS_WINRM = False
    WINRM_IMPORT_ERROR = exc
    requests = None  # pylint: disable=invalid-name
    Protocol = None  # pylint: disable=invalid-name

    class WinRMError(Exception):  # type: ignore[no-redef]
        pass

    class InvalidCredentialsError(WinRMError):  # type: ignore[no-redef]
        pass

    class WinRMOperationTimeoutError(Exception):  # type: ignore[no-redef]
        pass

    class WinRMTransportError(Exception):  # type: ignore[no-redef]
        pass

    class WSManFaultError(WinRMError):  # type: ignore[no-redef]
        pass

POWERSHELL = 'powershell.exe'
POWERSHELL_ARGS = ('-NoProfile', '-NonInteractive', '-EncodedCommand')
STDIN_CHUNK = 65536
PAYLOAD_VERSION = 1


def encoded_command(script):
    """PowerShell's -EncodedCommand form of a script: base64 of UTF-16LE."""
    return base64.b64encode(script.encode('utf-16-le')).decode('ascii')


BOOTSTRAP_ENCODED = encoded_command(BOOTSTRAP)


class WinRMRunError(Exception):
    """A host could not run the script. ``kind`` says why: connection, tls, authentication, wsman,
    configuration, powershell or protocol."""

    kind = 'connection'

    def __init__(self, message, kind=None, details=None):
        super(WinRMRunError, self).__init__(message)
        if kind:
            self.kind = kind
        self.details = details or {}


class PowerShellError(WinRMRunError):
    """The script raised a terminating error on the host."""

    kind = 'powershell'


def require_winrm(module):
    """fail_json with the standard missing-library message when pywinrm is not importable."""
    if not HAS_WINRM:
        from ansible.module_utils.basic import missing_required_lib
        module.fail_json(msg=missing_required_lib('pywinrm'), exception=str(WINRM_IMPORT_ERROR))


def parse_host(entry, default_port):
    """('win1', 5986) from 'win1', 'win1:5986', '[fd00::5]:5986', 'fd00::5'. Raises ValueError."""
    text = (entry or '').strip()
    if not text or any(ch.isspace() for ch in text) or '/' in text or '@' in text:
        raise ValueError('%r is not a host name, IP address or host:port' % (entry,))
    if text.startswith('['):
        match = re.match(r'^\[([0-9A-Fa-f:.%]+)\](?::(\d+))?$', text)
        if not match:
            raise ValueError('%r is not a valid [IPv6 address]:port' % (entry,))
        host, port = match.group(1), match.group(2)
    elif text.count(':') == 1:
        host, port = text.split(':')
    else:
        host, port = text, None  # a name, an IPv4 address or a bare IPv6 address
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError('%r has an invalid port' % (entry,))
        return host, int(port)
    return host, default_port


def endpoint_url(scheme, host, port):
    if ':' in host:
        host = '[%s]' % host
    return '%s://%s:%d/wsman' % (scheme, host, port)


def default_port(params):
    if params.get('port'):
        return params['port']
    return 5986 if (params.get('scheme') or 'https') == 'https' else 5985


def _clixml_text(data):
    """The error text of PowerShell's CLIXML stderr (#< CLIXML), or the text itself."""
    text = data.decode('utf-8', 'replace') if isinstance(data, bytes) else (data or '')
    if not text.startswith('#< CLIXML'):
        return text.strip()
    body = text.split('\n', 1)[1] if '\n' in text else ''
    body = re.sub(r'\sxmlns="[^"]*"', '', body, count=1)
    lines = []
    try:
        root = ET.fromstring(body)
        for node in root.iter('S'):
            if node.get('S') == 'Error' and node.text:
                lines.append(node.text)
    except ET.ParseError:
        return text.strip()

    def unescape(match):
        return chr(int(match.group(1), 16))

    message = ''.join(re.sub(r'_x([0-9A-Fa-f]{4})_', unescape, line) for line in lines)
    return message.strip() or text.strip()


def encode_payload(script, data):
    """The stdin document: base64 of UTF-8 JSON {version, name, script (base64 of UTF-8), data}."""
    document = {
        'version': PAYLOAD_VERSION,
        'name': script.name,
        'script': base64.b64encode(script.text.encode('utf-8')).decode('ascii'),
        'data': data,
    }
    raw = json.dumps(document, ensure_ascii=False, sort_keys=True).encode('utf-8')
    return base64.b64encode(raw)


def decode_output(stdout, stderr, status_code):
    """The script's result from the command's output; raises PowerShellError / WinRMRunError."""
    text = stdout.decode('utf-8', 'replace') if isinstance(stdout, bytes) else (stdout or '')
    encoded = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(RESULT_MARKER):
            encoded = line[len(RESULT_MARKER):]
    if encoded is None:
        error = _clixml_text(stderr)
        if status_code != 0 or error:
            raise PowerShellError('PowerShell failed (exit code %s): %s' % (status_code, error or text.strip()[-2000:]),
                                  details={'exit_code': status_code, 'stderr': error[-4000:]})
        raise WinRMRunError('the host answered without a result line (exit code %s); output: %s'
                            % (status_code, text.strip()[-2000:]), kind='protocol')
    try:
        document = json.loads(base64.b64decode(encoded).decode('utf-8'))
    except (ValueError, TypeError) as exc:
        raise WinRMRunError('the host answered with an undecodable result: %s' % exc, kind='protocol')
    if not isinstance(document, dict) or 'ok' not in document:
        raise WinRMRunError('the host answered with an unexpected result document', kind='protocol')
    if not document['ok']:
        error = document.get('error') or {}
        message = error.get('message') or 'unknown error'
        where = error.get('command')
        raise PowerShellError('%s%s' % ('%s: ' % where if where else '', message),
                              details=dict((k, error.get(k)) for k in
                                           ('message', 'category', 'error_id', 'exception', 'command', 'line')))
    return document.get('result')


class Runner(object):
    """Runs constant scripts on the hosts of the module's WinRM connection options."""

    def __init__(self, params):
        self.params = params
        self.scheme = params.get('scheme') or 'https'
        self.transport = params.get('transport') or 'ntlm'
        self.default_port = default_port(params)
        self._secrets = [s for s in (params.get('password'),) if s]
        self.read_timeout = params.get('read_timeout') or 30
        self.total_timeout = params.get('total_timeout') or 300
        self.clock = time.monotonic

    def _scrub(self, message):
        message = str(message)
        for secret in self._secrets:
            message = message.replace(secret, '********')
        return message

    def protocol(self, url):
        params = self.params
        validate = params.get('validate_certs', True) is not False
        return Protocol(
            url,
            transport=self.transport,
            username=params.get('username'),
            password=params.get('password'),
            server_cert_validation='validate' if validate else 'ignore',
            ca_trust_path=params.get('ca_trust_path') or None,
            read_timeout_sec=self.read_timeout,
            operation_timeout_sec=params.get('operation_timeout') or 20,
            message_encryption=params.get('message_encryption') or 'auto',
            proxy=None,
        )

    def run(self, entry, script, data):
        """Run one script on one host and return its result; raises WinRMRunError."""
        try:
            host, port = parse_host(entry, self.default_port)
        except ValueError as exc:
            raise WinRMRunError(str(exc), kind='configuration')
        url = endpoint_url(self.scheme, host, port)
        unfinished = ('the script %s was not run to its end on %s; a rerun completes it'
                      % (getattr(script, 'name', 'of this task'), entry))
        try:
            return self._run(url, script, data)
        except WinRMRunError as exc:
            exc.args = (self._scrub(exc.args[0]),)
            raise
        except InvalidCredentialsError:
            raise WinRMRunError('the WinRM service at %s rejected the credentials of %s (transport %s)'
                                % (url, self.params.get('username') or 'the Kerberos ticket', self.transport),
                                kind='authentication')
        except requests.exceptions.SSLError as exc:
            raise WinRMRunError('TLS error talking to %s: %s. The host certificate must be signed by a CA in '
                                'ca_trust_path (or the default trust store) and name the host.'
                                % (url, self._scrub(exc)), kind='tls')
        except requests.exceptions.Timeout as exc:
            raise WinRMRunError('the WinRM service at %s did not answer within read_timeout=%ss (%s): %s'
                                % (url, self.read_timeout, self._scrub(exc), unfinished), kind='timeout')
        except requests.exceptions.ConnectionError as exc:
            raise WinRMRunError('cannot reach the WinRM service at %s: %s' % (url, self._scrub(exc)),
                                kind='connection')
        except WSManFaultError as exc:
            raise WinRMRunError('the WinRM service at %s answered with a WS-Management fault: %s'
                                % (url, self._scrub(exc.reason)), kind='wsman',
                                details={'wsman_fault_code': exc.wsman_fault_code, 'http_status': exc.code})
        except WinRMTransportError as exc:
            raise WinRMRunError('the WinRM service at %s answered HTTP %s' % (url, exc.code), kind='connection')
        except (WinRMError, ValueError) as exc:
            raise WinRMRunError('WinRM error with %s: %s' % (url, self._scrub(exc)), kind='configuration')
        except requests.exceptions.RequestException as exc:
            raise WinRMRunError('HTTP error talking to %s: %s' % (url, self._scrub(exc)), kind='connection')

    def _run(self, url, script, data):
        deadline = self.clock() + self.total_timeout

        def in_time(step):
            if self.clock() > deadline:
                raise WinRMRunError('the script %s on %s did not finish within total_timeout=%ss (stopped at: %s); it '
                                    'may have done part of its work, and a rerun completes it'
                                    % (getattr(script, 'name', '?'), url, self.total_timeout, step), kind='timeout')

        protocol = self.protocol(url)
        shell_id = protocol.open_shell(codepage=65001, noprofile=True)
        try:
            command_id = protocol.run_command(shell_id, POWERSHELL, list(POWERSHELL_ARGS) + [BOOTSTRAP_ENCODED],
                                              console_mode_stdin=False)
            payload = encode_payload(script, data) + b'\r\n'
            chunks = [payload[i:i + STDIN_CHUNK] for i in range(0, len(payload), STDIN_CHUNK)]
            for index, chunk in enumerate(chunks):
                in_time('sending its input')
                protocol.send_command_input(shell_id, command_id, chunk, end=index == len(chunks) - 1)
            stdout, stderr, status_code = self._output(protocol, shell_id, command_id, in_time)
            try:
                protocol.cleanup_command(shell_id, command_id)
            except (WinRMError, WinRMTransportError):
                pass  # the command has ended already; nothing to release
        finally:
            try:
                protocol.close_shell(shell_id)
            except Exception:  # pylint: disable=broad-except
                pass  # best effort: the shell times out on the host anyway
        return decode_output(stdout, stderr, status_code)

    @staticmethod
    def _output(protocol, shell_id, command_id, in_time):
        stdout, stderr = [], []
        while True:
            in_time('waiting for its output')
            try:
                out, err, status_code, done = protocol.get_command_output_raw(shell_id, command_id)
            except WinRMOperationTimeoutError:
                continue  # the command is still running: ask again
            stdout.append(out)
            stderr.append(err)
            if done:
                return b''.join(stdout), b''.join(stderr), status_code

    def run_all(self, script, data_for):
        """Run ``script`` on every host; ``data_for(entry)`` gives each host's data.

        Returns a list of dicts in the order of the hosts: ``host``, ``ok``, and ``result`` or ``error``
        (message), ``error_kind`` and ``error_details``.
        """
        entries = list(self.params.get('hosts') or [])

        def one(entry):
            try:
                return {'host': entry, 'ok': True, 'result': self.run(entry, script, data_for(entry))}
            except WinRMRunError as exc:
                return {'host': entry, 'ok': False, 'error': str(exc), 'error_kind': exc.kind,
                        'error_details': exc.details}

        workers = max(1, min(int(self.params.get('concurrency') or 1), len(entries) or 1))
        if workers == 1:
            return [one(entry) for entry in entries]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, entries))


def failure_message(nodes):
    """One message naming every failed node: nodes are dicts with host, failed and msg."""
    failed = [n for n in nodes if n.get('failed')]
    return '%d of %d hosts failed: %s' % (len(failed), len(nodes),
                                          '; '.join('%s: %s' % (n['host'], n.get('msg')) for n in failed))


__all__ = ['Runner', 'WinRMRunError', 'PowerShellError', 'require_winrm', 'parse_host', 'endpoint_url',
           'encode_payload', 'decode_output', 'encoded_command', 'BOOTSTRAP_ENCODED', 'failure_message', 'HAS_WINRM']
