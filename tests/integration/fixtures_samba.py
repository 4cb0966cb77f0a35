"""pytest plugin: a real Samba AD DC (CONTOSO.TEST) on loopback for the integration tests.

Fixture ``samba_lab`` (session scope) yields a ``SambaLab``:

    server          '127.0.0.1' (the DC's certificate names 127.0.0.1, ::1, localhost and hostname)
    hostname        'dc1.contoso.test'
    port            636 (LDAPS); ldap_port 389
    ca_file         PEM of the lab CA that issued the DC's certificate (validate against it)
    base_dn         'DC=contoso,DC=test'
    realm           'CONTOSO.TEST'; dns_domain 'contoso.test'; netbios_domain 'CONTOSO'
    admin_username  'Administrator@contoso.test'; admin_dn; admin_password (random per provision)
    state_dir       folder of the lab (env file, logs, smb.conf)
    ldap(user=None, password=None, **kw) -> a bound ldap3 Connection over LDAPS with certificate and
                    host name validation (admin by default), for reading the directory back
    module_args(**overrides) -> dict of the winkube.gmsa AD connection options for the admin

The lab is started by lab/samba/start.sh (installing Samba first with lab/samba/install.sh when it is
missing) and stopped by lab/samba/stop.sh at the end of the session, also when tests fail. Several pytest
sessions may share one running lab (same WINKUBE_LAB_STATE): each holds a shared lock on
``samba.users`` and only the last one out stops the DC. WINKUBE_SAMBA_KEEP=1 leaves it running.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / 'lab' / 'samba'


def _state_root() -> Path:
    return Path(os.environ.get('WINKUBE_LAB_STATE') or REPO / 'lab' / '.state')


def _read_env(path: Path) -> dict:
    env = {}
    for line in path.read_text().splitlines():
        if '=' in line and not line.startswith('#'):
            key, _sep, value = line.partition('=')
            parsed = shlex.split(value)
            env[key] = parsed[0] if parsed else ''
    return env


def _samba_ok() -> bool:
    if not shutil.which('samba') or not shutil.which('samba-tool'):
        return False
    out = subprocess.run(['samba', '-V'], capture_output=True, text=True, check=False).stdout
    try:
        major, minor = (int(x) for x in out.split()[1].split('.')[:2])
    except (IndexError, ValueError):
        return False
    return (major, minor) >= (4, 21)


class SambaLab:
    def __init__(self, env: dict, state_dir: Path):
        self.env = env
        self.state_dir = state_dir
        self.server = env['SAMBA_SERVER']
        self.hostname = env['SAMBA_HOSTNAME']
        self.port = int(env['SAMBA_LDAPS_PORT'])
        self.ldap_port = int(env['SAMBA_LDAP_PORT'])
        self.ca_file = env['SAMBA_CA_FILE']
        self.base_dn = env['SAMBA_BASE_DN']
        self.realm = env['SAMBA_REALM']
        self.dns_domain = env['SAMBA_DNS_DOMAIN']
        self.netbios_domain = env['SAMBA_NETBIOS_DOMAIN']
        self.admin_username = env['SAMBA_ADMIN_UPN']
        self.admin_dn = env['SAMBA_ADMIN_DN']
        self.admin_password = Path(env['SAMBA_PASSWORD_FILE']).read_text()
        self.config_dn = 'CN=Configuration,' + self.base_dn

    def module_args(self, **overrides) -> dict:
        args = dict(server=self.server, port=self.port, username=self.admin_username,
                    password=self.admin_password, ca_file=self.ca_file)
        args.update(overrides)
        return args

    def record_provisioned_root_keys(self):
        """Keep the KDS root keys of a newly provisioned domain (tests replace them later) in the state folder.

        start.sh makes a new state folder for each provision, so the first session that sees the domain writes
        the file, before any test ran.
        """
        import base64
        import json

        import ldap3

        path = self.state_dir / 'provisioned-root-keys.json'
        if path.exists():
            return
        conn = self.ldap()
        try:
            conn.search('CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,' + self.config_dn,
                        '(objectClass=msKds-ProvRootKey)', search_scope=ldap3.LEVEL, attributes=['*'])
            keys = {e['dn']: {name: [base64.b64encode(v).decode() for v in values]
                              for name, values in e['raw_attributes'].items()}
                    for e in conn.response if e.get('type') == 'searchResEntry'}
        finally:
            conn.unbind()
        path.write_text(json.dumps(keys))

    def provisioned_root_keys(self) -> dict:
        """The KDS root keys Samba's provisioning wrote: {dn: {attribute: [bytes, ...]}}."""
        import base64
        import json

        keys = json.loads((self.state_dir / 'provisioned-root-keys.json').read_text())
        return {dn: {name: [base64.b64decode(v) for v in values] for name, values in attrs.items()}
                for dn, attrs in keys.items()}

    def ldap(self, user: str | None = None, password: str | None = None, **kwargs):
        """A bound ldap3 Connection (LDAPS, certificate validated against ca_file, host name checked)."""
        import ldap3

        ca_file = self.ca_file

        class _Tls(ldap3.Tls):
            def wrap_socket(self, connection, do_handshake=False):
                context = ssl.create_default_context(cafile=ca_file)
                connection.socket = context.wrap_socket(connection.socket, server_hostname=connection.server.host,
                                                        do_handshake_on_connect=do_handshake)

        server = ldap3.Server(self.server, port=self.port, use_ssl=True, tls=_Tls(), get_info=ldap3.NONE,
                              connect_timeout=10)
        conn = ldap3.Connection(server, user=user or self.admin_username,
                                password=password if password is not None else self.admin_password,
                                receive_timeout=30, raise_exceptions=True, **kwargs)
        conn.bind()
        return conn

    def __repr__(self):
        return '<SambaLab %s:%s %s>' % (self.server, self.port, self.realm)


@pytest.fixture(scope='session')
def samba_lab():
    if not _samba_ok():
        if os.geteuid() != 0:
            pytest.fail('Samba >= 4.21 is not installed and installing it needs root: run lab/samba/install.sh')
        subprocess.run([str(LAB / 'install.sh')], check=True)
    root = _state_root()
    root.mkdir(parents=True, exist_ok=True)
    users = open(root / 'samba.users', 'a+')  # noqa: SIM115 - held for the whole session
    fcntl.flock(users, fcntl.LOCK_SH)
    started = time.monotonic()
    try:
        proc = subprocess.run([str(LAB / 'start.sh')], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.fail('lab/samba/start.sh failed (rc %s):\n%s\n%s' % (proc.returncode, proc.stdout, proc.stderr))
        env_file = Path(proc.stdout.strip().splitlines()[-1])
        lab = SambaLab(_read_env(env_file), env_file.parent)
        lab.start_seconds = time.monotonic() - started
        lab.record_provisioned_root_keys()
        yield lab
    finally:
        fcntl.flock(users, fcntl.LOCK_UN)
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # another session still uses the lab; it stops it
        else:
            if os.environ.get('WINKUBE_SAMBA_KEEP') != '1':
                subprocess.run([str(LAB / 'stop.sh')], check=False)
            fcntl.flock(users, fcntl.LOCK_UN)
        users.close()
