"""Our kubeconfig/in-cluster loader (module_utils/k8s/kubeconfig.py, reached through client.load_configuration)
gives what the kubernetes package gives (client.build_configuration) for a matrix of kubeconfigs and options,
and hands every form it does not handle to the package (exec plugins, auth-provider, malformed files): same
settings, same errors. The package is the real one (the venv's kubernetes), not an imitation."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
import yaml
from kubernetes.config import incluster_config
from kubernetes.config import kube_config

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import client
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import kubeconfig as fast

CA, CERT, KEY = b'-----CA-----\n', b'-----CLIENT CERT-----\n', b'-----CLIENT KEY-----\n'
PROXY_VARIABLES = ('http_proxy', 'https_proxy', 'all_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY',
                   'NO_PROXY', 'REQUEST_METHOD')


def b64(data):
    return base64.b64encode(data).decode()


def a_jwt(expires):
    part = base64.urlsafe_b64encode(json.dumps({'exp': expires}).encode()).decode().rstrip('=')
    return 'eyJhbGciOiJub25lIn0.%s.c2ln' % part


def kubeconfig(clusters=None, users=None, contexts=None, current='main'):
    config = {'apiVersion': 'v1', 'kind': 'Config',
              'clusters': clusters if clusters is not None else [
                  {'name': 'c1', 'cluster': {'server': 'https://10.0.0.1:6443/', 'certificate-authority': 'ca.crt'}}],
              'users': users if users is not None else [
                  {'name': 'u1', 'user': {'client-certificate': 'client.crt', 'client-key': 'client.key'}}],
              'contexts': contexts if contexts is not None else [
                  {'name': 'main', 'context': {'cluster': 'c1', 'user': 'u1'}}]}
    if current is not None:
        config['current-context'] = current
    return config


def cluster(**fields):
    body = {'server': 'https://10.0.0.1:6443'}
    body.update({k.replace('_', '-'): v for k, v in fields.items()})
    return [{'name': 'c1', 'cluster': body}]


def user(**fields):
    return [{'name': 'u1', 'user': {k.replace('_', '-') if k not in ('tokenFile',) else k: v
                                    for k, v in fields.items()}}]


EXEC_USER = user(exec={'apiVersion': 'client.authentication.k8s.io/v1beta1', 'command': './exec-plugin.sh',
                       'interactiveMode': 'Never'})

# (id, kubeconfig written to kube/config or None, extra files {relative path: kubeconfig dict}, params, expected:
#  'fast' our loader, 'package' handed to the kubernetes package, 'error' the same error from both)
# params may name 'FILE' (kube/config) or 'DICT' / 'TEXT' (the kubeconfig inline) as the kubeconfig option.
CASES = [
    ('files-relative', kubeconfig(), {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('data-fields', kubeconfig(clusters=cluster(certificate_authority_data=b64(CA)),
                               users=user(client_certificate_data=b64(CERT), client_key_data=b64(KEY))),
     {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('data-over-file', kubeconfig(clusters=cluster(certificate_authority_data=b64(CA), certificate_authority='none')),
     {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('token', kubeconfig(users=user(token='t0ken')), {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('token-file', kubeconfig(users=user(tokenFile='token.txt')), {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('token-over-basic', kubeconfig(users=user(token='t0ken', username='u', password='p')), {},
     {'kubeconfig': 'FILE'}, 'fast'),
    ('empty-token-then-basic', kubeconfig(users=user(token='', username='admin', password='s3cret')), {},
     {'kubeconfig': 'FILE'}, 'fast'),
    ('basic', kubeconfig(users=user(username='admin', password='s3cret')), {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('insecure-sni-proxy', kubeconfig(clusters=cluster(insecure_skip_tls_verify=True, tls_server_name='api.test',
                                                       proxy_url='http://proxy.test:3128')),
     {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('http-server', kubeconfig(clusters=[{'name': 'c1', 'cluster': {'server': 'http://10.0.0.1:8080',
                                                                    'certificate-authority': 'missing.crt'}}]),
     {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('no-user-entry', kubeconfig(users=[]), {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('unknown-user', kubeconfig(contexts=[{'name': 'main', 'context': {'cluster': 'c1', 'user': 'nobody'}}]), {},
     {'kubeconfig': 'FILE'}, 'fast'),
    ('empty-user', kubeconfig(users=[{'name': 'u1', 'user': {}}]), {}, {'kubeconfig': 'FILE'}, 'fast'),
    ('context-option', kubeconfig(clusters=cluster() + [{'name': 'c2', 'cluster': {'server': 'https://other:6443'}}],
                                  users=user(token='a') + [{'name': 'u2', 'user': {'token': 'b'}}],
                                  contexts=[{'name': 'main', 'context': {'cluster': 'c1', 'user': 'u1'}},
                                            {'name': 'other', 'context': {'cluster': 'c2', 'user': 'u2'}}]),
     {}, {'kubeconfig': 'FILE', 'context': 'other'}, 'fast'),
    ('dict', kubeconfig(users=user(token='t')), {}, {'kubeconfig': 'DICT'}, 'fast'),
    ('dict-context-without-current', kubeconfig(users=user(token='t'), current=None), {},
     {'kubeconfig': 'DICT', 'context': 'main'}, 'fast'),
    ('inline-yaml', kubeconfig(clusters=cluster(certificate_authority_data=b64(CA)), users=user(token='t')), {},
     {'kubeconfig': 'TEXT'}, 'fast'),
    ('options-over-kubeconfig', kubeconfig(users=user(token='t')), {},
     {'kubeconfig': 'FILE', 'host': 'https://10.9.9.9:443/', 'api_key': 'key', 'ca_cert': 'CA_FILE',
      'client_cert': 'CERT_FILE', 'client_key': 'KEY_FILE', 'validate_certs': False}, 'fast'),
    ('host-and-api-key-only', None, {}, {'host': 'https://10.9.9.9:443', 'api_key': 'key'}, 'fast'),
    ('host-only', None, {}, {'host': 'https://10.9.9.9:443', 'validate_certs': True}, 'fast'),
    ('default-kubeconfig', None, {'home/.kube/config': kubeconfig(users=user(token='home'))}, {}, 'fast'),
    ('default-kubeconfig-host', None, {'home/.kube/config': kubeconfig(users=user(token='home'))},
     {'host': 'https://10.9.9.9'}, 'fast'),
    # the first cluster/context/user of a name wins, the last current-context; the user's files are read relative
    # to the cluster's file (as the package does)
    ('merged-KUBECONFIG', None,
     {'a/config': kubeconfig(users=[], current='first'),
      'b/config': kubeconfig(clusters=cluster(certificate_authority='ca.crt') + [
          {'name': 'c9', 'cluster': {'server': 'https://ignored'}}],
          users=user(client_certificate='client.crt', client_key='client.key', token='from-b'),
          contexts=[{'name': 'main', 'context': {'cluster': 'c9', 'user': 'u1'}}], current='main')},
     {'KUBECONFIG': 'a/config:missing/config:b/config'}, 'fast'),
    ('env-proxy', kubeconfig(users=user(token='t')), {},
     {'kubeconfig': 'FILE', 'ENV': {'HTTPS_PROXY': 'http://envproxy:8080', 'NO_PROXY': '10.0.0.0/8,.test'}}, 'fast'),
    ('env-proxy-under-proxy-url', kubeconfig(clusters=cluster(proxy_url='http://kubeconfig-proxy:1')), {},
     {'kubeconfig': 'FILE', 'ENV': {'https_proxy': 'http://envproxy:8080'}}, 'fast'),
    ('env-proxy-for-host-option', None, {},
     {'host': 'http://10.9.9.9', 'api_key': 'k', 'ENV': {'http_proxy': 'http://p:1', 'all_proxy': 'http://q:2'}},
     'fast'),
    # the kubernetes package's own forms, and errors (ours: handed over to the package for its message)
    ('exec-plugin', kubeconfig(users=EXEC_USER), {}, {'kubeconfig': 'FILE'}, 'package'),
    ('exec-plugin-beside-token', kubeconfig(users=user(token='t', exec=EXEC_USER[0]['user']['exec'])), {},
     {'kubeconfig': 'FILE'}, 'package'),
    ('auth-provider-oidc', kubeconfig(users=user(**{'auth-provider': {'name': 'oidc', 'config': {
        'id-token': a_jwt(4102444800), 'client-id': 'x', 'client-secret': 'y', 'refresh-token': 'z',
        'idp-issuer-url': 'https://issuer.test'}}})), {}, {'kubeconfig': 'FILE'}, 'package'),
    ('file-without-current-context', kubeconfig(current=None), {}, {'kubeconfig': 'FILE', 'context': 'main'}, 'error'),
    ('broken-current-context', kubeconfig(contexts=[{'name': 'main', 'context': {'cluster': 'nope'}},
                                                    {'name': 'ok', 'context': {'cluster': 'c1'}}]), {},
     {'kubeconfig': 'FILE', 'context': 'ok'}, 'error'),
    ('unknown-context', kubeconfig(), {}, {'kubeconfig': 'FILE', 'context': 'nope'}, 'error'),
    ('dict-without-current', kubeconfig(current=None), {}, {'kubeconfig': 'DICT'}, 'error'),
    ('missing-ca-file', kubeconfig(clusters=cluster(certificate_authority='missing.crt')), {},
     {'kubeconfig': 'FILE'}, 'error'),
    ('missing-token-file', kubeconfig(users=user(tokenFile='missing.txt')), {}, {'kubeconfig': 'FILE'}, 'error'),
    ('bad-base64', kubeconfig(clusters=cluster(certificate_authority_data='not base64!')), {},
     {'kubeconfig': 'FILE'}, 'error'),
    ('no-server', kubeconfig(clusters=[{'name': 'c1', 'cluster': {'certificate-authority': 'ca.crt'}}]), {},
     {'kubeconfig': 'FILE'}, 'error'),
    ('insecure-as-text', kubeconfig(clusters=cluster(insecure_skip_tls_verify='true')), {},
     {'kubeconfig': 'FILE'}, 'package'),
    ('duplicate-context-file', kubeconfig(contexts=[{'name': 'main', 'context': {'cluster': 'c1'}},
                                                    {'name': 'main', 'context': {'cluster': 'c2'}}]), {},
     {'kubeconfig': 'FILE'}, 'fast'),  # merging keeps the first of a name
    ('duplicate-context-dict', kubeconfig(contexts=[{'name': 'main', 'context': {'cluster': 'c1'}}] * 2), {},
     {'kubeconfig': 'DICT'}, 'error'),
    ('null-token', kubeconfig(users=user(token=None)), {}, {'kubeconfig': 'FILE'}, 'error'),
    ('empty-file', '', {}, {'kubeconfig': 'FILE'}, 'error'),
    ('missing-option-file', None, {}, {'kubeconfig': 'nowhere/config'}, 'error'),
    ('no-configuration-at-all', None, {}, {}, 'error'),
]


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A folder with the certificate files, the token file and an exec plugin; a clean environment."""
    for name, content in (('kube/ca.crt', CA), ('kube/client.crt', CERT), ('kube/client.key', KEY),
                          ('kube/token.txt', b'file-token\n'), ('b/ca.crt', CA + b'b'), ('b/client.crt', CERT + b'b'),
                          ('b/client.key', KEY + b'b'), ('a/ca.crt', CA + b'a'), ('a/client.crt', CERT + b'a'),
                          ('a/client.key', KEY + b'a'),
                          ('home/.kube/ca.crt', CA + b'home'), ('home/.kube/client.crt', CERT + b'home'),
                          ('home/.kube/client.key', KEY + b'home'), ('opt/ca.pem', CA + b'opt'), ('opt/cert.pem', CERT + b'opt'),
                          ('opt/key.pem', KEY + b'opt')):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    plugin = tmp_path / 'kube' / 'exec-plugin.sh'
    plugin.write_text('#!/bin/sh\necho \'{"apiVersion": "client.authentication.k8s.io/v1beta1", '
                      '"kind": "ExecCredential", "status": {"token": "from-exec"}}\'\n')
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    for variable in PROXY_VARIABLES + ('KUBECONFIG', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT'):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.chdir(tmp_path / 'kube')  # the exec plugin's relative command
    for module in (fast, incluster_config):
        monkeypatch.setattr(module, 'SERVICE_TOKEN_FILENAME', str(tmp_path / 'sa' / 'token'))
        monkeypatch.setattr(module, 'SERVICE_CERT_FILENAME', str(tmp_path / 'sa' / 'ca.crt'))
    return tmp_path


def _content(path):
    return None if path is None else open(path, 'rb').read()


def view(configuration):
    """What client.Transport reads from the settings; files by content (inline data lands in temp files)."""
    return {
        'host': configuration.host,
        'verify_ssl': configuration.verify_ssl,
        'ssl_ca_cert': _content(configuration.ssl_ca_cert),
        'cert_file': _content(configuration.cert_file),
        'key_file': _content(configuration.key_file),
        'assert_hostname': configuration.assert_hostname,
        'tls_server_name': configuration.tls_server_name,
        'proxy': configuration.proxy,
        'no_proxy': configuration.no_proxy,
        'username': configuration.username,
        'password': configuration.password,
        'authorization': client.bearer_token(configuration),
    }


def outcome(load, params):
    try:
        return 'ok', load(dict(params))
    except Exception as exc:  # the same exception, type and text, is the expected result of an error case
        return 'error', (type(exc).__name__, str(exc))


def _setup(place, monkeypatch, config, files, params):
    for relative, document in files.items():
        (place / relative).parent.mkdir(parents=True, exist_ok=True)
        (place / relative).write_text(yaml.safe_dump(document))
    params = dict(params)
    for name, value in params.pop('ENV', {}).items():
        monkeypatch.setenv(name, value)
    if 'KUBECONFIG' in params:
        monkeypatch.setenv('KUBECONFIG', ':'.join(str(place / p) for p in params.pop('KUBECONFIG').split(':')))
    # the package reads KUBECONFIG when it is imported; a module process imports it after the variable is set
    monkeypatch.setattr(kube_config, 'KUBE_CONFIG_DEFAULT_LOCATION', os.environ.get('KUBECONFIG', '~/.kube/config'))
    if config is not None:
        (place / 'kube' / 'config').write_text(yaml.safe_dump(config) if config != '' else '')
    replacements = {'FILE': str(place / 'kube' / 'config'), 'DICT': config, 'TEXT': yaml.safe_dump(config or {}),
                    'CA_FILE': str(place / 'opt' / 'ca.pem'), 'CERT_FILE': str(place / 'opt' / 'cert.pem'),
                    'KEY_FILE': str(place / 'opt' / 'key.pem'), 'nowhere/config': str(place / 'nowhere' / 'config')}
    return {k: replacements.get(v, v) if isinstance(v, str) else v for k, v in params.items()}


@pytest.mark.parametrize('config, files, params, expected', [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_loader_matches_the_kubernetes_package(place, monkeypatch, config, files, params, expected):
    params = _setup(place, monkeypatch, config, files, params)
    ours = outcome(client.load_configuration, params)
    theirs = outcome(client.build_configuration, params)
    if expected == 'error':
        assert ours[0] == 'error' and ours == theirs
        return
    assert ours[0] == theirs[0] == 'ok', (ours, theirs)
    assert isinstance(ours[1], fast.Settings) == (expected == 'fast')
    assert view(ours[1]) == view(theirs[1])
    # a file the kubeconfig or an option names is used in place; only inline data goes to a temp file
    for attribute in ('ssl_ca_cert', 'cert_file', 'key_file'):
        path = getattr(theirs[1], attribute)
        if path and path not in kube_config._temp_files.values():
            assert getattr(ours[1], attribute) == path


def test_in_cluster_matches_the_kubernetes_package(place, monkeypatch):
    (place / 'sa').mkdir()
    (place / 'sa' / 'token').write_text('sa-token')
    (place / 'sa' / 'ca.crt').write_bytes(CA)
    monkeypatch.setenv('KUBERNETES_SERVICE_HOST', 'fd00::1')
    monkeypatch.setenv('KUBERNETES_SERVICE_PORT', '443')
    ours, theirs = client.load_configuration({}), client.build_configuration({})
    assert isinstance(ours, fast.Settings)
    assert view(ours) == view(theirs)
    assert view(ours)['host'] == 'https://[fd00::1]:443' and view(ours)['authorization'] == 'bearer sa-token'
    # the token is read again after a minute (a projected service-account token rotates)
    (place / 'sa' / 'token').write_text('rotated')
    assert ours.authorization() == 'bearer sa-token'
    ours._token_read_at -= fast.TOKEN_REFRESH_SECONDS
    assert ours.authorization() == 'bearer rotated'
    # api_key replaces the service account's token for good
    keyed = client.load_configuration({'api_key': 'k'})
    keyed._token_read_at -= fast.TOKEN_REFRESH_SECONDS
    assert keyed.authorization() == 'Bearer k' == client.bearer_token(client.build_configuration({'api_key': 'k'}))


@pytest.mark.parametrize('missing', ['env', 'token', 'empty-token', 'ca'])
def test_in_cluster_errors_come_from_the_kubernetes_package(place, monkeypatch, missing):
    (place / 'sa').mkdir()
    (place / 'sa' / 'token').write_text('' if missing == 'empty-token' else 'sa-token')
    if missing == 'token':
        (place / 'sa' / 'token').unlink()
    if missing != 'ca':
        (place / 'sa' / 'ca.crt').write_bytes(CA)
    if missing != 'env':
        monkeypatch.setenv('KUBERNETES_SERVICE_HOST', '10.96.0.1')
        monkeypatch.setenv('KUBERNETES_SERVICE_PORT', '443')
    ours, theirs = outcome(client.load_configuration, {}), outcome(client.build_configuration, {})
    assert ours[0] == 'error' and ours == theirs


def test_a_module_process_does_not_import_kubernetes_for_a_kubeconfig_file(place):
    """The point of the loader: a fresh interpreter reads a kubeconfig and builds the transport without the
    kubernetes package; with an exec plugin it still imports it (the fallback)."""
    def kubernetes_imported(config):
        (place / 'kube' / 'config').write_text(yaml.safe_dump(config))
        code = textwrap.dedent('''
            import sys
            from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import client
            transport = client.connect({'kubeconfig': %r})
            print(transport.host, 'kubernetes' in sys.modules)
        ''' % str(place / 'kube' / 'config'))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, check=True,
                             cwd=str(place / 'kube'))
        host, imported = out.stdout.split()
        assert host == 'https://10.0.0.1:6443'
        return imported == 'True'

    assert not kubernetes_imported(kubeconfig(users=user(token='t')))
    assert kubernetes_imported(kubeconfig(users=EXEC_USER))


@pytest.mark.parametrize('url, no_proxy', [
    ('https://10.0.0.1:6443', ''), ('https://10.0.0.1:6443', '10.0.0.0/8'), ('https://10.0.0.1:6443', '10.0.0.1'),
    ('https://api.corp.test:6443', '.corp.test'), ('https://api.corp.test:6443', 'corp.test'),
    ('https://api.corp.test:6443', 'api.corp.test:6443'), ('https://api.corp.test:6443', 'other.test, *'),
    ('https://api.corp.test:6443', 'xcorp.test'), ('https://[fd00::1]:443', 'fd00::/64'), ('https://[fd00::1]:443', 'fd01::/64'),
])
def test_no_proxy_is_decided_as_the_kubernetes_package_decides(url, no_proxy):
    from kubernetes.client import rest
    assert client.bypasses_proxy(url, no_proxy) == rest.should_bypass_proxies(url, no_proxy)


def test_transport_goes_through_the_environment_proxy_unless_no_proxy_names_the_server(place, monkeypatch):
    import urllib3
    monkeypatch.setenv('HTTPS_PROXY', 'http://proxy.test:3128')
    params = {'host': 'https://10.0.0.1:6443', 'api_key': 'k'}
    assert isinstance(client.connect(params).pool, urllib3.ProxyManager)
    monkeypatch.setenv('NO_PROXY', 'localhost,10.0.0.0/8')
    assert not isinstance(client.connect(params).pool, urllib3.ProxyManager)
