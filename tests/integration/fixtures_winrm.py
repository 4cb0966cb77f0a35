"""pytest plugin: the local WS-Management test endpoint (lab/winrm/server.py) as a session fixture.

``winrm_lab`` runs lab/winrm/start.sh (the endpoint in its own process group, on 127.0.0.1 only) and yields a
:class:`WinrmLab`; lab/winrm/stop.sh stops it by that process group's id at the end of the session, also when
tests fail. Several pytest sessions may share one endpoint (same WINKUBE_LAB_STATE): each holds a shared
lock on ``winrm.users`` and only the last one out stops it (the tests reset the fake hosts' state, so
sessions running tests at the same moment would still disturb each other). WINKUBE_WINRM_KEEP=1 leaves it
running.

    hosts           {'WIN-NODE1': {'https_port': ..., 'http_port': ...}, ...}
    ca_file         PEM of the lab CA that signed the endpoint's certificate; other_ca_file: an unrelated CA
    username        'CONTOSO\\winrm-admin'; password (random per lab state folder)
    entry(name, scheme='https') -> '127.0.0.1:<port>' for the hosts option
    module_args(names=None, scheme='https', **overrides) -> the WinRM connection options for the modules
    state() / put_state(name, values) / reset() / journal()   read and change the fake hosts through the
                    control port (registry, OS facts, DNS answers, open ports, injected PowerShell errors)

The endpoint is no Windows host: it imitates the collection's PowerShell scripts (see lab/winrm/server.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / 'lab' / 'winrm'


class WinrmLab:
    def __init__(self, info: dict):
        self.info = info
        self.pid = info['pid']
        self.hosts = info['hosts']
        self.ca_file = info['ca_file']
        self.other_ca_file = info['other_ca_file']
        self.username = info['username']
        self.password = Path(info['password_file']).read_text(encoding='utf-8')
        self.control_url = info['control_url']
        self._token = info['control_token']

    def entry(self, name: str, scheme: str = 'https') -> str:
        return '127.0.0.1:%d' % self.hosts[name]['%s_port' % scheme]

    def module_args(self, names=None, scheme: str = 'https', **overrides) -> dict:
        args = dict(hosts=[self.entry(n, scheme) for n in (names or sorted(self.hosts))], scheme=scheme,
                    username=self.username, password=self.password, ca_trust_path=self.ca_file)
        args.update(overrides)
        return args

    def _call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.control_url + path, data=data, method=method,
                                         headers={'X-Lab-Token': self._token, 'Content-Type': 'application/json'})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return json.loads(response.read())

    def state(self) -> dict:
        return self._call('GET', '/state')

    def put_state(self, name: str, values: dict) -> dict:
        return self._call('PUT', '/state/%s' % name, values)

    def reset(self):
        return self._call('POST', '/reset', {})

    def journal(self) -> list:
        return self._call('GET', '/journal')

    def __repr__(self):
        return '<WinrmLab pid %s %s>' % (self.pid, self.hosts)


@pytest.fixture(scope='session')
def winrm_lab():
    root = Path(os.environ.get('WINKUBE_LAB_STATE') or REPO / 'lab' / '.state')
    root.mkdir(parents=True, exist_ok=True)
    users = open(root / 'winrm.users', 'a+')  # noqa: SIM115 - held for the whole session
    fcntl.flock(users, fcntl.LOCK_SH)
    try:
        proc = subprocess.run(['bash', str(LAB / 'start.sh')], capture_output=True, text=True, check=False,
                              timeout=120)
        if proc.returncode != 0:
            pytest.fail('lab/winrm/start.sh failed (rc %s):\n%s\n%s' % (proc.returncode, proc.stdout, proc.stderr))
        info = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
        yield WinrmLab(info)
    finally:
        fcntl.flock(users, fcntl.LOCK_UN)
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # another session still uses the endpoint; it stops it
        else:
            if os.environ.get('WINKUBE_WINRM_KEEP') != '1':
                subprocess.run(['bash', str(LAB / 'stop.sh')], check=False, timeout=60)
            fcntl.flock(users, fcntl.LOCK_UN)
        users.close()


class WinrmAdLab:
    """The WinRM endpoint's fake host WIN-NODE1 standing in for a domain controller with the ActiveDirectory
    module: lab/winrm/fake_ad.py imitates the AD cmdlet scripts against the real Samba AD DC of ``samba``."""

    host = 'WIN-NODE1'

    def __init__(self, samba, winrm):
        self.samba = samba
        self.winrm = winrm

    def ad_state(self) -> dict:
        return {'server': self.samba.server, 'port': self.samba.port, 'ca_file': self.samba.ca_file,
                'username': self.samba.admin_username, 'password': self.samba.admin_password,
                'dc_names': [self.samba.hostname, self.samba.hostname.split('.')[0], self.samba.server],
                'run_as': self.winrm.username}

    def module_args(self, **overrides) -> dict:
        """The AD modules' connection options for backend=winrm (WinRM over HTTPS with NTLM)."""
        args = dict(backend='winrm', winrm=dict(hosts=[self.winrm.entry(self.host)], username=self.winrm.username,
                                                password=self.winrm.password, ca_trust_path=self.winrm.ca_file))
        args.update(overrides)
        return args

    def journal(self) -> list:
        return [e for e in self.winrm.journal() if e.get('host') == self.host]


@pytest.fixture
def winrm_ad_lab(samba_lab, winrm_lab):
    """A WinrmAdLab with a fresh endpoint state (journal emptied) and the DC's connection data in place."""
    from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import Runner, WinRMRunError
    from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import Script

    lab = WinrmAdLab(samba_lab, winrm_lab)
    winrm_lab.reset()
    winrm_lab.put_state(lab.host, {'ad': lab.ad_state()})
    try:
        Runner(lab.module_args()['winrm']).run(lab.winrm.entry(lab.host), Script('ad_lab_ping', 'param($Data)\n'), {})
    except WinRMRunError as exc:
        pytest.fail('the WinRM lab endpoint has no AD imitation (lab/winrm/fake_ad.py): %s. An endpoint started '
                    'before that file existed is still running; stop it with lab/winrm/stop.sh' % exc)
    winrm_lab.reset()
    winrm_lab.put_state(lab.host, {'ad': lab.ad_state()})
    return lab
