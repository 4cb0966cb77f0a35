# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The common kubeconfig and in-cluster forms, loaded without importing the kubernetes package.

Importing ``kubernetes`` costs every module call about 0.2 s of CPU (bench/fixed_cost.py), and the package is
only needed here to read the configuration: requests go through client.Transport. :func:`load` reads what
``kubernetes.config`` (kube_config.py, incluster_config.py) and ``kubernetes.client.Configuration`` read for
the common forms, with the same results:

* kubeconfig files (the option, else ``KUBECONFIG`` with several files merged the way the package merges
  them: the first cluster/context/user of a name wins, the last ``current-context`` wins, relative paths are
  relative to the file an entry came from), or a kubeconfig dict;
* the cluster's server, certificate-authority(-data), insecure-skip-tls-verify, tls-server-name, proxy-url,
  and the HTTP(S) proxy of the environment when there is no proxy-url (as Configuration does);
* the user's token / tokenFile, client-certificate(-data) / client-key(-data), username/password;
* the pod's service account (in-cluster), its token re-read after a minute as the package does.

Anything else, and every form the package would refuse, returns None: the caller then loads the configuration
with the kubernetes package as before (exec credential plugins, auth-provider, malformed files and their
error messages), so no behaviour is lost. tests/unit/plugins/module_utils/test_kubeconfig_loader.py compares
both for a matrix of kubeconfigs and options.
"""

from __future__ import annotations

import atexit
import base64
import os
import tempfile
import time

try:
    from urllib.parse import urlparse
    from urllib.request import getproxies
except ImportError:  # pragma: no cover
    pass

# incluster_config.py's locations and variables
SERVICE_HOST_ENV_NAME = 'KUBERNETES_SERVICE_HOST'
SERVICE_PORT_ENV_NAME = 'KUBERNETES_SERVICE_PORT'
SERVICE_TOKEN_FILENAME = '/var/run/secrets/kubernetes.io/serviceaccount/token'
SERVICE_CERT_FILENAME = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt'
TOKEN_REFRESH_SECONDS = 60


class Unsupported(Exception):
    """A form this loader leaves to the kubernetes package (internal)."""


class Settings(object):
    """The connection settings client.Transport reads, with kubernetes.client.Configuration's attribute names
    and defaults (host http://localhost, TLS verification on, the environment's proxy for the host's scheme)."""

    def __init__(self):
        self._proxies = getproxies()
        self.no_proxy = self._proxies.get('no')
        self._proxy = None
        self._proxy_set = False
        self.host = 'http://localhost'
        self.verify_ssl = True
        self.ssl_ca_cert = None
        self.cert_file = None
        self.key_file = None
        self.assert_hostname = None
        self.tls_server_name = None
        self.username = None
        self.password = None
        self._authorization = None
        self._token_file = None
        self._token_read_at = 0.0

    @property
    def proxy(self):
        if self._proxy_set:
            return self._proxy
        return self._proxies.get(urlparse(self.host).scheme) or self._proxies.get('all')

    @proxy.setter
    def proxy(self, value):
        self._proxy, self._proxy_set = value, True

    def set_authorization(self, value, token_file=None):
        """The Authorization header; with token_file, re-read from that file once a minute (service account)."""
        self._authorization, self._token_file = value, token_file
        self._token_read_at = time.monotonic()

    def authorization(self):
        if self._token_file and time.monotonic() - self._token_read_at >= TOKEN_REFRESH_SECONDS:
            self.set_authorization('bearer ' + _read_service_token(self._token_file), self._token_file)
        return self._authorization


# ---------------------------------------------------------------------------------------------------------
# temporary files for inline certificate data (urllib3 and ssl read certificates and keys from files)

_TEMP_FILES = {}


def _remove_temp_files():
    for path in _TEMP_FILES.values():
        try:
            os.remove(path)
        except OSError:
            pass
    _TEMP_FILES.clear()


def _temp_file(content):
    """A private file holding content (one per distinct content), removed when the process exits."""
    if content not in _TEMP_FILES:
        if not _TEMP_FILES:
            atexit.register(_remove_temp_files)
        handle, path = tempfile.mkstemp()
        with os.fdopen(handle, 'wb') as out:
            out.write(content)
        _TEMP_FILES[content] = path
    return _TEMP_FILES[content]


# ---------------------------------------------------------------------------------------------------------
# kubeconfig

def _text(value):
    if not isinstance(value, str):
        raise Unsupported()
    return value


def _named_entries(entries):
    """A list of dicts that all have a name, as the package requires of clusters/contexts/users."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get('name') is not None for e in entries):
        raise Unsupported()
    return entries


def _merge_files(paths):
    """(merged kubeconfig, {id(entry): file}) of the existing files among paths, merged as the package does."""
    merged, origin = None, {}
    import yaml
    for path in paths.split(':'):
        if not path:
            continue
        path = os.path.expanduser(path)
        if not os.path.exists(path):
            continue
        try:
            with open(path) as handle:
                config = yaml.safe_load(handle)
        except Exception:  # unreadable or not YAML: the package reports it
            raise Unsupported()
        if not isinstance(config, dict):
            raise Unsupported()
        if merged is None:
            merged = dict(config, clusters=[], contexts=[], users=[])
        for item in ('clusters', 'contexts', 'users'):
            for entry in _named_entries(config.get(item, []) or []):
                if any(known['name'] == entry['name'] for known in merged[item]):
                    continue
                merged[item].append(entry)
                origin[id(entry)] = path
        if 'current-context' in config:
            merged['current-context'] = config['current-context']
    if merged is None:
        raise Unsupported()
    return merged, origin


def _entry(config, item, name, missing_ok=False):
    """The one entry of that name in config[item] (None when missing_ok and there is none)."""
    matches = [e for e in _named_entries(config.get(item)) if e['name'] == name]
    if len(matches) > 1 or not matches and not missing_ok:
        raise Unsupported()
    return matches[0] if matches else None


def _body(entry, key):
    value = entry.get(key)
    if not isinstance(value, dict):
        raise Unsupported()
    return value


def _resolve(config, context_name):
    """(user entry or None, cluster entry) of a context, or Unsupported where the package would fail."""
    if context_name is None:
        context_name = config.get('current-context')
        if context_name is None:
            raise Unsupported()
    context = _body(_entry(config, 'contexts', context_name), 'context')
    user = None
    if context.get('user') and config.get('users'):
        user = _entry(config, 'users', context['user'], missing_ok=True)
        if user is not None:
            _body(user, 'user')
    if context.get('cluster') is None:
        raise Unsupported()
    cluster = _entry(config, 'clusters', context['cluster'])
    _body(cluster, 'cluster')
    return user, cluster


def _base(origin, entry):
    path = origin.get(id(entry))
    return os.path.abspath(os.path.dirname(path)) if path is not None else ''


def _file_or_data(obj, file_key, base, decode):
    """FileOrData: the file of obj[file_key + '-data'] (written out) or of obj[file_key]; None for neither."""
    data_key = file_key + '-data'
    if not obj:
        return None
    if data_key in obj:
        data = obj[data_key]
        if not isinstance(data, (str, bytes)):
            raise Unsupported()
        if not data:
            return None
        content = data.encode() if isinstance(data, str) else data
        if decode:
            try:
                content = base64.standard_b64decode(content)
            except ValueError:
                raise Unsupported()
        return _temp_file(content)
    if file_key in obj:
        path = os.path.normpath(os.path.join(base, _text(obj[file_key])))
        if not os.path.isfile(path):
            raise Unsupported()
        return path
    return None


def _authorization(user, base):
    """The Authorization header the user's token, tokenFile or username/password give (None: no credentials)."""
    if not user:
        return None
    if 'auth-provider' in user or 'exec' in user:
        raise Unsupported()  # token refresh through plugins: the package's job
    token = None
    if 'token' in user:
        token = _text(user['token'])
    elif 'tokenFile' in user:
        path = os.path.normpath(os.path.join(base, _text(user['tokenFile'])))
        try:
            with open(path) as handle:
                token = handle.read()
        except (IOError, OSError):
            raise Unsupported()
    if token:
        return 'Bearer %s' % token
    if 'username' in user and 'password' in user:
        import urllib3
        return urllib3.util.make_headers(basic_auth=_text(user['username']) + ':' + _text(user['password'])
                                         ).get('authorization')
    return None


def _from_kubeconfig(settings, config, origin, context_name):
    user_entry, cluster_entry = _resolve(config, context_name)
    user = user_entry['user'] if user_entry else None
    cluster = cluster_entry['cluster']
    authorization = _authorization(user, _base(origin, user_entry))
    if 'server' not in cluster:
        raise Unsupported()
    settings.host = _text(cluster['server']).rstrip('/')
    if settings.host.startswith('https'):
        base = _base(origin, cluster_entry)  # the package reads the user's files relative to the cluster's file
        settings.ssl_ca_cert = _file_or_data(cluster, 'certificate-authority', base, decode=True)
        settings.cert_file = _file_or_data(user, 'client-certificate', base, decode=True)
        settings.key_file = _file_or_data(user, 'client-key', base, decode=True)
    if 'insecure-skip-tls-verify' in cluster:
        if not isinstance(cluster['insecure-skip-tls-verify'], bool):
            raise Unsupported()
        settings.verify_ssl = not cluster['insecure-skip-tls-verify']
    if 'tls-server-name' in cluster:
        settings.tls_server_name = _text(cluster['tls-server-name'])
    if 'proxy-url' in cluster:
        settings.proxy = _text(cluster['proxy-url'])
    if authorization:
        settings.set_authorization(authorization)


def load_kubeconfig(kubeconfig, context):
    """Settings from a kubeconfig dict, a path (None: KUBECONFIG or ~/.kube/config); Unsupported otherwise.

    Like build_configuration: a file's current context must be valid even when the option context names
    another one (the package's list_kube_config_contexts activates it), and without the option the
    current context is used."""
    settings = Settings()
    if isinstance(kubeconfig, dict):
        config, origin = kubeconfig, {}
    else:
        paths = kubeconfig if kubeconfig is not None else os.environ.get('KUBECONFIG', '~/.kube/config')
        config, origin = _merge_files(paths)
        _resolve(config, None)
    _named_entries(config.get('contexts'))
    if context is not None and context not in [c.get('name') for c in config['contexts']]:
        raise Unsupported()
    _from_kubeconfig(settings, config, origin, context)
    return settings


# ---------------------------------------------------------------------------------------------------------
# in-cluster (the pod's service account)

def _read_service_token(path):
    with open(path) as handle:
        content = handle.read()
    if not content:
        raise Unsupported()
    return content


def load_in_cluster():
    host, port = os.environ.get(SERVICE_HOST_ENV_NAME), os.environ.get(SERVICE_PORT_ENV_NAME)
    if not host or not port or not os.path.isfile(SERVICE_TOKEN_FILENAME) \
            or not os.path.isfile(SERVICE_CERT_FILENAME):
        raise Unsupported()
    token = _read_service_token(SERVICE_TOKEN_FILENAME)
    with open(SERVICE_CERT_FILENAME) as handle:
        if not handle.read():
            raise Unsupported()
    settings = Settings()
    settings.host = 'https://' + ('[%s]:%s' if ':' in host or '%' in host else '%s:%s') % (host, port)
    settings.ssl_ca_cert = SERVICE_CERT_FILENAME
    settings.set_authorization('bearer ' + token, SERVICE_TOKEN_FILENAME)
    return settings
