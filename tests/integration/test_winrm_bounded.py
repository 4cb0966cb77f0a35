"""WinRM calls end within their budget: a real pywinrm client against an endpoint that accepts TCP connections and
never answers (a plain socket on loopback, an imitation of a hung host), and against an imitation WS-Management
protocol that answers "still running" forever. Not verified against a real Windows host."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import winrm  # noqa: F401 pylint: disable=unused-import

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import runner as runner_mod  # noqa: E402
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import Runner, WinRMRunError  # noqa: E402
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import Script  # noqa: E402

SCRIPT = Script('Probe-Bounded', 'param($data) $data')


@pytest.fixture
def silent_endpoint():
    """A listening socket that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_host_that_stops_answering_fails_within_read_timeout(silent_endpoint):
    runner = Runner(dict(hosts=['127.0.0.1:%d' % silent_endpoint], scheme='http', transport='ntlm', username='u',
                         password='pw-not-in-messages', operation_timeout=1, read_timeout=2, total_timeout=3))
    started = time.monotonic()
    with pytest.raises(WinRMRunError) as caught:
        runner.run('127.0.0.1:%d' % silent_endpoint, SCRIPT, {})
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 3, elapsed  # read_timeout plus margin
    assert caught.value.kind == 'timeout', caught.value
    message = str(caught.value)
    assert 'did not answer within read_timeout=2s' in message, message
    assert 'the script Probe-Bounded was not run to its end on 127.0.0.1:%d; a rerun completes it' % silent_endpoint in message
    assert 'pw-not-in-messages' not in message


class StillRunningProtocol(object):
    """Imitation of winrm.protocol.Protocol whose command never ends: every Receive times out on the host."""

    def __init__(self):
        self.receives = 0

    def open_shell(self, **_kwargs):
        return 'shell'

    def run_command(self, *_args, **_kwargs):
        return 'command'

    def send_command_input(self, *_args, **_kwargs):
        return None

    def get_command_output_raw(self, *_args):
        self.receives += 1
        if self.receives > 1000:
            raise AssertionError('the runner kept asking without a deadline')
        time.sleep(0.01)
        raise runner_mod.WinRMOperationTimeoutError()

    def close_shell(self, *_args):
        return None


def test_command_that_never_ends_is_cut_at_total_timeout(monkeypatch):
    protocol = StillRunningProtocol()
    runner = Runner(dict(hosts=['win1'], total_timeout=1))
    monkeypatch.setattr(runner, 'protocol', lambda url: protocol)
    started = time.monotonic()
    with pytest.raises(WinRMRunError) as caught:
        runner.run('win1', SCRIPT, {})
    assert time.monotonic() - started < 1 + 2
    assert caught.value.kind == 'timeout'
    message = str(caught.value)
    assert 'the script Probe-Bounded on https://win1:5986/wsman did not finish within total_timeout=1s' in message, message
    assert 'waiting for its output' in message and 'a rerun completes it' in message
