"""AD foundation against the real Samba DC: domain_info, kds_root_key, connection failures, the
credential_spec filter. Every result is read back from the directory with ldap3."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import ldap3
from ldap3.protocol.formatters.formatters import format_sid, format_uuid_le

REPO = Path(__file__).resolve().parents[2]
ROOT_KEYS = 'CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,'
NT_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)


def nt_to_dt(value):
    return NT_EPOCH + datetime.timedelta(microseconds=int(value) // 10)


def args_yaml(args: dict) -> str:
    import json
    return json.dumps(args)


def task(module: str, args: dict, name: str = 't', extra: str = '') -> str:
    return f"""
    - hosts: localhost
      gather_facts: false
      tasks:
        - name: {name}
          {module}: {args_yaml(args)}
          register: out
          ignore_errors: true
    {extra}
    """


def read_keys(lab):
    conn = lab.ldap()
    try:
        conn.search(ROOT_KEYS + lab.config_dn, '(objectClass=msKds-ProvRootKey)', search_scope=ldap3.LEVEL,
                    attributes=['cn', 'msKds-UseStartTime', 'msKds-CreateTime', 'msKds-RootKeyData', 'msKds-Version',
                                'msKds-KDFAlgorithmID', 'msKds-KDFParam', 'msKds-DomainID',
                                'msKds-SecretAgreementAlgorithmID', 'msKds-SecretAgreementParam',
                                'msKds-PublicKeyLength', 'msKds-PrivateKeyLength'])
        return {e['dn']: e['raw_attributes'] for e in conn.response if e['type'] == 'searchResEntry'}
    finally:
        conn.unbind()


def delete_keys(lab):
    conn = lab.ldap()
    try:
        for dn in read_keys(lab):
            assert conn.delete(dn), conn.result
    finally:
        conn.unbind()


def add_key_copy(lab, template: dict, use_start: datetime.datetime, create: datetime.datetime) -> str:
    """Add another root key by copying an existing one's attributes (new GUID, times and secret)."""
    key_id = str(uuid.uuid4())
    attrs = {k: v[0] for k, v in template.items() if k.startswith('msKds-')}
    attrs['msKds-RootKeyData'] = os.urandom(64)
    attrs['msKds-UseStartTime'] = str(int((use_start - NT_EPOCH).total_seconds() * 10**7))
    attrs['msKds-CreateTime'] = str(int((create - NT_EPOCH).total_seconds() * 10**7))
    conn = lab.ldap()
    try:
        assert conn.add(f'CN={key_id},{ROOT_KEYS}{lab.config_dn}', 'msKds-ProvRootKey', attrs), conn.result
    finally:
        conn.unbind()
    return key_id


# ------------------------------------------------------------------------------------------------
def test_domain_info_returns_the_real_facts(samba_lab, run_playbook):
    res = run_playbook(task('winkube.gmsa.domain_info', samba_lab.module_args()), check=True)
    out = res.results['t']
    assert res.rc == 0 and not out.get('failed'), res
    assert out['changed'] is False
    conn = samba_lab.ldap()
    conn.search(samba_lab.base_dn, '(objectClass=*)', search_scope=ldap3.BASE,
                attributes=['objectSid', 'objectGUID', 'msDS-Behavior-Version'])
    domain = conn.response[0]['raw_attributes']
    conn.search('CN=Partitions,' + samba_lab.config_dn, f'(nCName={samba_lab.base_dn})', attributes=['netBIOSName'])
    netbios = conn.response[0]['attributes']['netBIOSName']
    conn.search('', '(objectClass=*)', search_scope=ldap3.BASE,
                attributes=['rootDomainNamingContext', 'forestFunctionality', 'dnsHostName'])
    dse = conn.response[0]['attributes']
    conn.unbind()
    assert out['dns_name'] == samba_lab.dns_domain == 'contoso.test'
    assert out['netbios_name'] == netbios[0] == 'CONTOSO'
    assert out['domain_sid'] == format_sid(domain['objectSid'][0])
    assert out['domain_guid'] == format_uuid_le(domain['objectGUID'][0]).strip('{}').lower()
    assert out['domain_dn'] == samba_lab.base_dn
    assert out['forest_dns_name'] == 'contoso.test' and out['forest_dn'] == dse['rootDomainNamingContext'][0]
    assert out['domain_functional_level'] == int(domain['msDS-Behavior-Version'][0]) == 7
    assert out['domain_functional_level_name'] == '2016'
    assert out['forest_functional_level'] == int(dse['forestFunctionality'][0])
    assert out['dc_dns_hostname'] == dse['dnsHostName'][0] == samba_lab.hostname
    keys = read_keys(samba_lab)
    assert out['kds_root_key_count'] == len(keys)
    assert out['kds_root_key_usable'] is True  # Samba 4.22 provisions a backdated key
    assert out['kds_root_key']['dn'] in keys
    assert samba_lab.admin_password not in res.stdout + res.stderr


def test_kds_root_key_none_check_create_idempotent_several(samba_lab, run_playbook):
    template = next(iter(read_keys(samba_lab).values()))
    delete_keys(samba_lab)
    assert read_keys(samba_lab) == {}
    args = samba_lab.module_args(lab_mode=True)

    # check mode: reports the creation, writes nothing
    res = run_playbook(task('winkube.gmsa.kds_root_key', args), check=True, diff=True)
    out = res.results['t']
    assert res.rc == 0 and not out.get('failed'), res
    assert out['changed'] is True and out['created'] is True and out['root_key']['id'] is None
    assert out['diff']['before'] == {'root_keys': []}
    assert read_keys(samba_lab) == {}

    # real run creates one key, backdated 10 h 5 min, with the attributes DCs need
    before = datetime.datetime.now(datetime.timezone.utc)
    res = run_playbook(task('winkube.gmsa.kds_root_key', args))
    out = res.results['t']
    assert res.rc == 0 and out['changed'] is True and out['created'] is True, res
    assert out['usable'] is True and out['root_key']['usable'] is True
    assert any('single domain controller lab' in w for w in out.get('warnings', []))
    keys = read_keys(samba_lab)
    assert list(keys) == [out['root_key']['dn']]
    key = keys[out['root_key']['dn']]
    assert key['cn'][0].decode() == out['root_key']['id'] and uuid.UUID(out['root_key']['id'])
    assert len(key['msKds-RootKeyData'][0]) == 64
    assert key['msKds-Version'] == [b'1'] and key['msKds-KDFAlgorithmID'] == [b'SP800_108_CTR_HMAC']
    assert key['msKds-KDFParam'] == template['msKds-KDFParam']
    assert key['msKds-SecretAgreementParam'] == template['msKds-SecretAgreementParam']
    assert key['msKds-SecretAgreementAlgorithmID'] == [b'DH']
    assert key['msKds-DomainID'] == template['msKds-DomainID']
    start = nt_to_dt(key['msKds-UseStartTime'][0])
    created = nt_to_dt(key['msKds-CreateTime'][0])
    assert abs((created - start) - datetime.timedelta(hours=10, minutes=5)) < datetime.timedelta(seconds=2)
    assert before - datetime.timedelta(seconds=5) <= created <= datetime.datetime.now(datetime.timezone.utc)
    first_id = out['root_key']['id']

    # second run: unchanged
    res = run_playbook(task('winkube.gmsa.kds_root_key', args), diff=True)
    out = res.results['t']
    assert res.rc == 0 and out['changed'] is False and out['created'] is False, res
    assert out['root_key']['id'] == first_id and out['usable'] is True
    assert len(read_keys(samba_lab)) == 1

    # several keys: a newer usable one (DCs use the newest created usable key) and one not yet effective
    now = datetime.datetime.now(datetime.timezone.utc)
    newer = add_key_copy(samba_lab, key, use_start=now - datetime.timedelta(hours=11), create=now)
    future = add_key_copy(samba_lab, key, use_start=now + datetime.timedelta(days=3),
                          create=now + datetime.timedelta(seconds=1))
    res = run_playbook(task('winkube.gmsa.kds_root_key', samba_lab.module_args()))
    out = res.results['t']
    assert res.rc == 0 and out['changed'] is False, res
    assert out['root_key']['id'] == newer
    assert {k['id'] for k in out['root_keys']} == {first_id, newer, future}
    assert {k['id']: k['usable'] for k in out['root_keys']} == {first_id: True, newer: True, future: False}
    assert len(read_keys(samba_lab)) == 3

    res = run_playbook(task('winkube.gmsa.domain_info', samba_lab.module_args()))
    assert res.results['t']['kds_root_key']['id'] == newer and res.results['t']['kds_root_key_count'] == 3


def test_kds_root_key_pending_key_is_left_alone_without_lab_mode(samba_lab, run_playbook):
    keys = read_keys(samba_lab)
    template = next(iter(keys.values()))
    delete_keys(samba_lab)
    try:
        now = datetime.datetime.now(datetime.timezone.utc)
        pending = add_key_copy(samba_lab, template, use_start=now, create=now)
        res = run_playbook(task('winkube.gmsa.kds_root_key', samba_lab.module_args()))
        out = res.results['t']
        assert res.rc == 0 and out['changed'] is False and out['usable'] is False, res
        assert out['root_key']['id'] == pending and out['root_key']['effective'] is True
        assert any('not usable yet' in w for w in out.get('warnings', []))
        # lab mode adds a backdated key next to it
        res = run_playbook(task('winkube.gmsa.kds_root_key', samba_lab.module_args(lab_mode=True)))
        out = res.results['t']
        assert out['changed'] is True and out['usable'] is True and out['root_key']['id'] != pending
        assert len(read_keys(samba_lab)) == 2
    finally:
        if not any(k for k in read_keys(samba_lab).values()):
            run_playbook(task('winkube.gmsa.kds_root_key', samba_lab.module_args(lab_mode=True)))


def test_kds_root_key_without_lab_mode_creates_effective_now(samba_lab, run_playbook):
    template = next(iter(read_keys(samba_lab).values()))
    delete_keys(samba_lab)
    try:
        res = run_playbook(task('winkube.gmsa.kds_root_key', samba_lab.module_args()))
        out = res.results['t']
        assert res.rc == 0 and out['changed'] is True and out['usable'] is False, res
        assert any('10 hours' in w for w in out.get('warnings', []))
        key = read_keys(samba_lab)[out['root_key']['dn']]
        start = nt_to_dt(key['msKds-UseStartTime'][0])
        assert abs(start - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=1)
    finally:
        # leave the domain usable for other tests: a backdated key like Samba's provisioning adds
        now = datetime.datetime.now(datetime.timezone.utc)
        add_key_copy(samba_lab, template, use_start=now - datetime.timedelta(hours=10, minutes=5), create=now)


# ------------------------------------------------------------------------------------------------
def _fail(run_playbook, lab, **overrides):
    res = run_playbook(task('winkube.gmsa.domain_info', lab.module_args(**overrides)))
    out = res.results['t']
    assert out.get('failed') is True, res
    assert lab.admin_password not in res.stdout + res.stderr
    return out


def test_wrong_password_names_the_field(samba_lab, run_playbook):
    out = _fail(run_playbook, samba_lab, password='not-the-password')
    assert 'invalid credentials' in out['msg'] and 'username/password' in out['msg'], out['msg']
    assert samba_lab.admin_username in out['msg'] and out['failed_option'] == 'password'


def test_unreachable_port_names_server_and_port(samba_lab, run_playbook):
    out = _fail(run_playbook, samba_lab, port=1, timeout=3)
    assert 'cannot reach 127.0.0.1:1 within 3s' in out['msg'], out['msg']
    assert out['failed_option'] == 'server'


def test_certificate_from_another_ca_names_ca_file(samba_lab, run_playbook, tmp_path):
    subprocess.run([sys.executable, str(REPO / 'lab' / 'samba' / 'make_certs.py'), str(tmp_path), 'other.test'],
                   check=True)
    out = _fail(run_playbook, samba_lab, ca_file=str(tmp_path / 'ca.pem'))
    assert 'does not validate' in out['msg'] and 'ca_file' in out['msg'] and 'CERTIFICATE_VERIFY_FAILED' in out['msg']
    assert out['failed_option'] == 'ca_file'
    out = _fail(run_playbook, samba_lab, ca_file=None)  # system trust store does not know the lab CA
    assert 'ca_file' in out['msg'] and 'system trust store' in out['msg'], out['msg']


def test_host_name_not_in_certificate_fails(samba_lab, run_playbook, tmp_path):
    """A name that reaches the DC (resolves to 127.0.0.1) but is not in its certificate must fail.

    The name is in an /etc/hosts of this test's own, bind-mounted over the machine's in a private mount
    namespace around ansible-playbook, so the test runs whatever the machine's own host name resolves to
    (127.0.1.1 on stock Debian, which does not reach the DC)."""
    name = 'not-in-the-certificate.contoso.test'
    hosts = tmp_path / 'hosts'
    hosts.write_text(f'127.0.0.1 {name}\n' + Path('/etc/hosts').read_text())
    in_own_hosts = ['unshare', '-m', '--propagation', 'private', '--',
                    'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]
    res = run_playbook(task('winkube.gmsa.domain_info', samba_lab.module_args(server=name)), prefix=in_own_hosts)
    out = res.results['t']
    assert out.get('failed') is True, res
    assert 'does not validate' in out['msg'] and f'does not name {name}' in out['msg'], out['msg']
    assert out['failed_option'] == 'ca_file'
    assert samba_lab.admin_password not in res.stdout + res.stderr


def test_starttls_with_validation(samba_lab, run_playbook):
    res = run_playbook(task('winkube.gmsa.domain_info', samba_lab.module_args(encryption='starttls', port=None)))
    out = res.results['t']
    assert res.rc == 0 and not out.get('failed'), res
    assert out['dns_name'] == samba_lab.dns_domain


def test_ntlm_bind_result(samba_lab, run_playbook):
    """The documented outcome against Samba, exactly: ldap3's NTLM bind is Microsoft's "Sicily" exchange; OpenSSL
    3 has no MD4, so ldap3 takes pycryptodome's and the exchange runs; Samba 4.22 ends the session (it offers
    NTLM only inside SASL GSS-SPNEGO), so the module fails with the message naming auth_method."""
    import hashlib
    with pytest.raises(ValueError):
        hashlib.new('md4', b'')  # the OpenSSL 3 claim the docs make
    from Crypto.Hash import MD4  # pycryptodome, a requirement: ldap3's own fallback
    assert MD4.new(b'').hexdigest() == '31d6cfe0d16ae931b73c59d7e0c089c0'
    args = samba_lab.module_args(auth_method='ntlm', username=f'{samba_lab.netbios_domain}\\Administrator')
    res = run_playbook(task('winkube.gmsa.domain_info', args))
    out = res.results['t']
    assert out.get('failed') is True, res
    assert out['failed_option'] == 'auth_method', out
    assert 'NTLM bind as CONTOSO\\Administrator to 127.0.0.1:636 failed' in out['msg'], out['msg']
    assert 'Samba does not' in out['msg'] and 'auth_method=simple' in out['msg'] and 'MD4' not in out['msg']
    assert samba_lab.admin_password not in res.stdout + res.stderr


def test_ntlm_username_must_be_domain_backslash_user(samba_lab, run_playbook):
    out = _fail(run_playbook, samba_lab, auth_method='ntlm')
    assert 'DOMAIN\\user' in out['msg'] and out['failed_option'] == 'username'


# Kerberos: the DC's certificate and its service principal ldap/dc1.contoso.test name the host, so the
# playbook runs in a private mount namespace whose /etc/hosts maps that name to 127.0.0.1 (nothing on the
# machine changes), with a krb5.conf that points the realm at the lab KDC.
def _kerberos_run(lab, tmp_path, ansible_env, args, default_ccache):
    import json
    hosts = tmp_path / 'hosts'
    hosts.write_text('127.0.0.1 localhost %s\n' % lab.hostname)
    krb5 = tmp_path / 'krb5.conf'
    krb5.write_text(f"""[libdefaults]
    default_realm = {lab.realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
[realms]
    {lab.realm} = {{
        kdc = 127.0.0.1
    }}
[domain_realm]
    .{lab.dns_domain} = {lab.realm}
""")
    playbook = tmp_path / 'kerberos.yml'
    playbook.write_text(task('winkube.gmsa.domain_info', args))
    env = dict(ansible_env, KRB5_CONFIG=str(krb5), KRB5CCNAME=f'FILE:{default_ccache}')
    cmd = ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
           str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(playbook)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    doc = json.loads(proc.stdout)
    return doc['plays'][0]['tasks'][0]['hosts']['localhost'], proc, env


def _kerberos_args(lab, **overrides):
    args = dict(server=lab.hostname, auth_method='kerberos', ca_file=lab.ca_file, username=f'Administrator@{lab.realm}')
    args.update(overrides)
    return args


@pytest.mark.parametrize('encryption', ['ldaps', 'starttls'])
def test_kerberos_bind_from_password(samba_lab, ansible_env, tmp_path, encryption):
    """A ticket acquired in memory from the password; the user's default ccache is never written."""
    default_ccache = tmp_path / 'default-ccache'
    out, proc, _env = _kerberos_run(samba_lab, tmp_path, ansible_env, _kerberos_args(
        samba_lab, password=samba_lab.admin_password, encryption=encryption), default_ccache)
    assert not out.get('failed'), (out, proc.stderr[-2000:])
    assert out['dns_name'] == samba_lab.dns_domain and out['netbios_name'] == samba_lab.netbios_domain
    assert not default_ccache.exists()
    assert samba_lab.admin_password not in proc.stdout + proc.stderr


def test_kerberos_bind_from_keytab_and_from_ccache(samba_lab, ansible_env, tmp_path):
    """No password anywhere: a keytab exported from the DC, then a cache written by the real kinit."""
    keytab = tmp_path / 'admin.keytab'
    subprocess.run(['samba-tool', 'domain', 'exportkeytab', str(keytab), f'--principal=Administrator@{samba_lab.realm}',
                    '-s', samba_lab.env['SAMBA_SMB_CONF']], check=True, capture_output=True)
    default_ccache = tmp_path / 'default-ccache'
    out, proc, env = _kerberos_run(samba_lab, tmp_path, ansible_env,
                                   _kerberos_args(samba_lab, kerberos_keytab=str(keytab)), default_ccache)
    assert not out.get('failed'), (out, proc.stderr[-2000:])
    assert out['dns_name'] == samba_lab.dns_domain
    assert not default_ccache.exists()  # the keytab's tickets stay in the module's memory

    ccache = tmp_path / 'kinit-ccache'
    subprocess.run(['kinit', '-k', '-t', str(keytab), '-c', f'FILE:{ccache}', f'Administrator@{samba_lab.realm}'],
                   env=env, check=True, capture_output=True)
    out, proc, _env = _kerberos_run(samba_lab, tmp_path, ansible_env, _kerberos_args(
        samba_lab, username=None, kerberos_ccache=f'FILE:{ccache}'), default_ccache)
    assert not out.get('failed'), (out, proc.stderr[-2000:])
    assert out['dns_name'] == samba_lab.dns_domain


def test_kerberos_wrong_password_and_no_tls_are_refused(samba_lab, ansible_env, tmp_path):
    default_ccache = tmp_path / 'default-ccache'
    out, _proc, _env = _kerberos_run(samba_lab, tmp_path, ansible_env, _kerberos_args(
        samba_lab, password='not-the-password'), default_ccache)
    assert out.get('failed') is True and out['failed_option'] == 'password', out
    assert 'does not match the principal' in out['msg'], out['msg']
    out, _proc, _env = _kerberos_run(samba_lab, tmp_path, ansible_env, _kerberos_args(
        samba_lab, password=samba_lab.admin_password, encryption='none'), default_ccache)
    assert out.get('failed') is True and out['failed_option'] == 'encryption', out
    assert 'no integrity or confidentiality protection' in out['msg'] and 'encryption=ldaps' in out['msg'], out['msg']


def test_ldap_operation_is_bounded_when_the_dc_stops_answering(samba_lab):
    """SIGSTOP the real DC under an open session: the next operation fails within its budget, saying what
    was not done and that a rerun completes it; SIGCONT afterwards."""
    import os
    import signal
    import time
    from ansible_collections.winkube.gmsa.plugins.module_utils.ad.ldap_client import ADError, open_directory
    directory = open_directory(dict(samba_lab.module_args(), encryption='ldaps', auth_method='simple',
                                    validate_certs=True, timeout=2, total_timeout=4))
    assert directory.base_dn == samba_lab.base_dn
    pgid = int(samba_lab.env['SAMBA_PGID'])
    os.killpg(pgid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(ADError) as caught:
            directory.search(samba_lab.base_dn, '(objectClass=domain)', ['name'], scope='base')
        elapsed = time.monotonic() - started
    finally:
        os.killpg(pgid, signal.SIGCONT)
    # budget: total_timeout 4 s + one reconnect (2 s connect/handshake) + one answer (2 s), plus margin
    assert elapsed < 4 + 2 * 2 + 3, elapsed
    assert f'LDAP search of {samba_lab.base_dn} failed' in caught.value.message, caught.value.message
    assert 'A rerun completes what is missing' in caught.value.message


# ------------------------------------------------------------------------------------------------
def test_credential_spec_filter_from_real_domain(samba_lab, run_playbook):
    playbook = task('winkube.gmsa.domain_info', samba_lab.module_args(), name='domain', extra="""
        - name: spec
          ansible.builtin.set_fact:
            spec: "{{ out | winkube.gmsa.credential_spec('WebApp1', additional_accounts=['Batch1']) }}"
    """.replace('\n    ', '\n', 0))
    playbook = playbook.replace('    \n        - name: spec', '        - name: spec')
    res = run_playbook(playbook)
    assert res.rc == 0, res
    spec = res.results['spec']['ansible_facts']['spec']
    conn = samba_lab.ldap()
    conn.search(samba_lab.base_dn, '(objectClass=*)', search_scope=ldap3.BASE, attributes=['objectSid', 'objectGUID'])
    raw = conn.response[0]['raw_attributes']
    conn.unbind()
    assert spec == {
        'CmsPlugins': ['ActiveDirectory'],
        'DomainJoinConfig': {
            'Sid': format_sid(raw['objectSid'][0]),
            'MachineAccountName': 'WebApp1',
            'Guid': format_uuid_le(raw['objectGUID'][0]).strip('{}').lower(),
            'DnsTreeName': 'contoso.test',
            'DnsName': 'contoso.test',
            'NetBiosName': 'CONTOSO',
        },
        'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': [
            {'Name': 'WebApp1', 'Scope': 'contoso.test'}, {'Name': 'WebApp1', 'Scope': 'CONTOSO'},
            {'Name': 'Batch1', 'Scope': 'contoso.test'}, {'Name': 'Batch1', 'Scope': 'CONTOSO'}]},
    }
