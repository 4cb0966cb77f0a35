# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection to the Kubernetes API server, built from the shared connection options.

Requests go through a small urllib3 transport of our own so that every request is counted and the code works
the same with every kubernetes package release (their generated ApiClient.call_api changed signature several
times). The configuration (kubeconfig, in-cluster) is read by kubeconfig.load_kubeconfig / load_in_cluster
for the common forms; the kubernetes package, whose import costs every module call about 0.2 s of CPU, is
imported only for the others (exec plugins, auth-provider, malformed kubeconfigs: build_configuration).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import re
import ssl
import threading
import time

try:
    from urllib.parse import urlencode, urlparse
except ImportError:  # pragma: no cover
    pass

# kubernetes stays a requirement of the K8s modules (the fallback below, pod_gmsa_check's exec); its import is
# deferred, its presence checked cheaply
HAS_K8S = importlib.util.find_spec('kubernetes') is not None
K8S_IMPORT_ERROR = None if HAS_K8S else ImportError('No module named kubernetes')
try:
    import urllib3
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    HAS_K8S = False
    K8S_IMPORT_ERROR = exc

from ansible_collections.winkube.gmsa.plugins.module_utils import retry
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import kubeconfig as fast_config

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False


# Characters a JSON body keeps as \uXXXX escapes: those YAML (server-side apply bodies are decoded as YAML)
# reads as line breaks or does not allow, and lone surrogates.
_YAML_UNSAFE = re.compile('[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]')


def json_body(body):
    """UTF-8 JSON for a request body. Not ASCII-escaped, because the API server's YAML decoder refuses the
    surrogate-pair escapes json.dumps writes for characters outside the BMP; the YAML-unsafe ones stay escaped."""
    text = json.dumps(body, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda match: '\\u%04x' % ord(match.group()), text).encode('utf-8')


class K8sError(Exception):
    """An error worth showing to the user as it is."""


class K8sConnectionError(K8sError):
    """The API server could not be reached, or refused our credentials, or the options are wrong."""


_RBAC_DENIAL = re.compile(r'cannot \S+ resource "[^"]+"')
IDEMPOTENT_METHODS = frozenset(('GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'))


class _Unreachable(Exception):
    """No HTTP answer: connection refused, reset, timed out (internal; becomes K8sConnectionError)."""

    def __init__(self, cause):
        super(_Unreachable, self).__init__(str(cause))
        self.cause = cause
        self.not_sent = isinstance(cause, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)) \
            or isinstance(cause, ConnectionRefusedError)


def _connection_cut(exc):
    """Whether a urllib3 SSLError is the connection ending mid-handshake or mid-answer (an API server killed or
    restarting: EOF without TLS close_notify, or a reset), not a certificate or protocol mismatch that no
    retry can fix."""
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError))


class _TransientStatus(Exception):
    """An HTTP answer worth retrying (429, 5xx); internal."""

    def __init__(self, response):
        super(_TransientStatus, self).__init__('HTTP %s' % response.status)
        self.response = response


def _retry_after(response):
    try:
        return max(0.0, float(response.headers.get('Retry-After') or 0))
    except (TypeError, ValueError):
        return 0


class ApiError(K8sError):
    """The API server answered with an error status."""

    def __init__(self, status, reason, body=None, method=None, path=None):
        self.status = status
        self.reason = reason
        self.body = body if isinstance(body, dict) else {}
        self.method = method
        self.path = path
        super(ApiError, self).__init__('%s %s: HTTP %s: %s' % (method, path, status, self.message))

    @property
    def message(self):
        text = self.body.get('message') or self.reason or ''
        if self.status == 403 and _RBAC_DENIAL.search(text):
            text += ('. The identity lacks this permission: add the verb and resource named above to a (Cluster)Role '
                     'bound to it (docs/least-privilege.md lists what each module needs)')
        elif self.status == 403 and 'attempting to grant RBAC permissions not currently held' in text:
            text += ('. An identity may only grant permissions it holds itself: give it the permissions listed above '
                     '(for credential_spec_rbac: verb use on gmsacredentialspecs), or the escalate/bind verbs on '
                     'clusterroles (docs/least-privilege.md)')
        return text


def require_kubernetes(module):
    """fail_json with the standard missing-library message when kubernetes is not importable."""
    if not HAS_K8S:
        from ansible.module_utils.basic import missing_required_lib
        module.fail_json(msg=missing_required_lib('kubernetes'), exception=str(K8S_IMPORT_ERROR))


def _context_names(kubeconfig):
    """Names of the contexts of a kubeconfig path (None: default location) or dict, and the current one."""
    if isinstance(kubeconfig, dict):
        contexts = [c.get('name') for c in kubeconfig.get('contexts') or []]
        return contexts, kubeconfig.get('current-context')
    from kubernetes import config as k8s_config
    contexts, current = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
    return [c.get('name') for c in contexts], (current or {}).get('name')


def _default_kubeconfig_exists():
    paths = os.environ.get('KUBECONFIG') or os.path.expanduser('~/.kube/config')
    return any(os.path.exists(os.path.expanduser(p)) for p in paths.split(os.pathsep) if p)


def _kubeconfig_option(params):
    """The option kubeconfig as None, a dict (inline JSON/YAML text parsed) or an existing file's path."""
    kubeconfig = params.get('kubeconfig') or None
    if isinstance(kubeconfig, str) and kubeconfig.strip().startswith(('{', 'apiVersion', 'clusters')):
        # a kubeconfig given inline as a string (JSON or YAML)
        try:
            kubeconfig = json.loads(kubeconfig) if kubeconfig.strip().startswith('{') else yaml.safe_load(kubeconfig)
        except Exception as exc:
            raise K8sConnectionError('kubeconfig is neither a file path nor a valid kubeconfig document: %s' % exc)
    elif isinstance(kubeconfig, str):
        kubeconfig = os.path.expanduser(kubeconfig)
        if not os.path.exists(kubeconfig):
            raise K8sConnectionError('kubeconfig file %s does not exist' % kubeconfig)
    elif kubeconfig is not None and not isinstance(kubeconfig, dict):
        raise K8sConnectionError('kubeconfig must be a file path or a dictionary, got %s' % type(kubeconfig).__name__)
    return kubeconfig


def _uses_kubeconfig(params, kubeconfig):
    """Whether a kubeconfig is read: given, or found at the default place unless host and api_key say it all."""
    return kubeconfig is not None or not (params.get('host') and params.get('api_key')) \
        and (_default_kubeconfig_exists() or params.get('context'))


def _apply_options(configuration, params):
    """The options host, api_key, ca_cert, client_cert, client_key and validate_certs over the loaded settings."""
    host = params.get('host')
    api_key = params.get('api_key')
    if host:
        configuration.host = host.rstrip('/')
    if api_key:
        if isinstance(configuration, fast_config.Settings):
            configuration.set_authorization('Bearer ' + api_key)
        else:
            # 'authorization' is the identifier of older kubernetes packages, 'BearerToken' of newer ones
            configuration.api_key = {'authorization': 'Bearer ' + api_key, 'BearerToken': 'Bearer ' + api_key}
            configuration.api_key_prefix = {}
            configuration.refresh_api_key_hook = None
    for option, attribute in (('ca_cert', 'ssl_ca_cert'), ('client_cert', 'cert_file'), ('client_key', 'key_file')):
        value = params.get(option)
        if value:
            if not os.path.exists(value):
                raise K8sConnectionError('%s file %s does not exist' % (option, value))
            setattr(configuration, attribute, value)
    if params.get('validate_certs') is not None:
        configuration.verify_ssl = bool(params['validate_certs'])
    if not configuration.host:
        raise K8sConnectionError('no API server address: set the option host or a kubeconfig')
    return configuration


def load_configuration(params):
    """The connection settings for the module's parameters: kubeconfig.Settings for the common forms, else
    (exec plugins, auth-provider, a kubeconfig the package refuses) build_configuration's, with its errors."""
    kubeconfig = _kubeconfig_option(params)
    try:
        if _uses_kubeconfig(params, kubeconfig):
            settings = fast_config.load_kubeconfig(kubeconfig, params.get('context'))
        elif not params.get('host'):
            settings = fast_config.load_in_cluster()
        else:
            settings = fast_config.Settings()
    except fast_config.Unsupported:
        return build_configuration(params)
    return _apply_options(settings, params)


def build_configuration(params):
    """A kubernetes.client.Configuration from the module's connection parameters (the kubernetes package)."""
    if not HAS_K8S:
        raise K8sConnectionError('the kubernetes Python package is required')
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    kubeconfig = _kubeconfig_option(params)
    context = params.get('context')
    host = params.get('host')
    configuration = k8s_client.Configuration()
    if _uses_kubeconfig(params, kubeconfig):
        try:
            names, current = _context_names(kubeconfig)
        except (ConfigException, IOError, OSError) as exc:
            raise K8sConnectionError('cannot read kubeconfig: %s' % exc)
        if context and context not in names:
            raise K8sConnectionError(
                'context %r (option context) is not in the kubeconfig; its contexts are: %s'
                % (context, ', '.join(sorted(n for n in names if n)) or 'none'))
        if not context and not current and not host:
            raise K8sConnectionError('the kubeconfig has no current-context; set the option context')
        try:
            if isinstance(kubeconfig, dict):
                k8s_config.load_kube_config_from_dict(kubeconfig, context=context, client_configuration=configuration,
                                                      persist_config=False)
            else:
                k8s_config.load_kube_config(config_file=kubeconfig, context=context,
                                            client_configuration=configuration, persist_config=False)
        except ConfigException as exc:
            raise K8sConnectionError('invalid kubeconfig (context %r): %s' % (context or current, exc))
    elif not host:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise K8sConnectionError(
                'no kubeconfig found (option kubeconfig, KUBECONFIG, ~/.kube/config) and not running in a pod: %s'
                % exc)
    return _apply_options(configuration, params)


def bearer_token(configuration):
    """The Authorization header value from the settings (kubeconfig token, exec plugin, api_key)."""
    if isinstance(configuration, fast_config.Settings):
        return configuration.authorization()
    bearer = (configuration.auth_settings() or {}).get('BearerToken') or {}
    return bearer.get('value') or None


class Transport(object):
    """Raw REST requests to the API server with a request counter.

    ``request(method, path, query=None, body=None, content_type=None)`` returns the decoded JSON.
    ``count`` is the number of HTTP requests made, ``counts`` the same per method.
    """

    def __init__(self, configuration, timeout=30):
        self.configuration = configuration
        self.host = configuration.host.rstrip('/')
        self.timeout = timeout
        self.count = 0
        self.counts = {}
        # one request (with its retries) ends within about 60 s plus one try (connect 10 s + read timeout)
        self.retry_policy = retry.ESTABLISHED.within(60)
        self.first_contact_policy = retry.FIRST_CONTACT
        self.sleep = time.sleep
        self.answered = False  # True once the API server has answered once: outages after that are retried longer
        # the engine writes from several threads: counters under a lock, the last answer per thread
        self._lock = threading.Lock()
        self._local = threading.local()
        kwargs = {'maxsize': 4}
        if self.host.startswith('https'):
            if configuration.verify_ssl:
                kwargs['cert_reqs'] = ssl.CERT_REQUIRED
                kwargs['ca_certs'] = configuration.ssl_ca_cert or _default_ca_bundle()
                if getattr(configuration, 'assert_hostname', None) is not None:
                    kwargs['assert_hostname'] = configuration.assert_hostname
                if getattr(configuration, 'tls_server_name', None):
                    kwargs['server_hostname'] = configuration.tls_server_name
            else:
                kwargs['cert_reqs'] = ssl.CERT_NONE
            if configuration.cert_file:
                kwargs['cert_file'] = configuration.cert_file
            if configuration.key_file:
                kwargs['key_file'] = configuration.key_file
        proxy = getattr(configuration, 'proxy', None)
        if proxy and not bypasses_proxy(self.host, getattr(configuration, 'no_proxy', None) or ''):
            self.pool = urllib3.ProxyManager(proxy, **kwargs)
        else:
            self.pool = urllib3.PoolManager(**kwargs)
        if not configuration.verify_ssl:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    @property
    def last_status(self):
        """HTTP status of this thread's last request."""
        return getattr(self._local, 'last_status', None)

    @property
    def retried_out(self):
        """How this thread's last request ran out of retries ('' when it did not)."""
        return getattr(self._local, 'retried_out', '')

    def _headers(self, content_type):
        headers = {'Accept': 'application/json', 'User-Agent': 'winkube.gmsa'}
        if content_type:
            headers['Content-Type'] = content_type
        token = bearer_token(self.configuration)
        if token:
            headers['Authorization'] = token
        elif getattr(self.configuration, 'username', None) and getattr(self.configuration, 'password', None):
            headers.update(urllib3.util.make_headers(
                basic_auth='%s:%s' % (self.configuration.username, self.configuration.password)))
        return headers

    def request(self, method, path, query=None, body=None, content_type=None):
        url = self.host + path
        if query:
            url += '?' + urlencode([(k, v) for k, v in query.items() if v is not None])
        data = None
        if body is not None:
            data = json_body(body)
            content_type = content_type or 'application/json'

        def attempt():
            with self._lock:
                self.count += 1
                self.counts[method] = self.counts.get(method, 0) + 1
            try:
                response = self.pool.request(method, url, body=data, headers=self._headers(content_type),
                                             timeout=urllib3.Timeout(connect=10, read=self.timeout), retries=False)
            except urllib3.exceptions.SSLError as exc:
                if _connection_cut(exc):
                    raise _Unreachable(exc)
                raise K8sConnectionError('TLS error talking to the API server %s: %s' % (self.host, exc))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _Unreachable(exc)
            if response.status in retry.TRANSIENT_HTTP_STATUSES:
                raise _TransientStatus(response)
            return response

        def transient(exc):
            if isinstance(exc, _TransientStatus):
                if exc.response.status != 429 and method not in IDEMPOTENT_METHODS:
                    return None
                return _retry_after(exc.response)
            if isinstance(exc, _Unreachable):
                # a request that never left (connection refused) is always safe to send again; one that
                # may have reached the server only when repeating it is harmless
                return 0 if (exc.not_sent or method in IDEMPOTENT_METHODS) else None
            return None

        policy = self.retry_policy if self.answered else self.first_contact_policy
        try:
            response = retry.call(attempt, transient, policy, sleep=self.sleep)
        except _Unreachable as exc:
            raise K8sConnectionError('cannot reach the API server %s: %s%s; %s %s was not done, a rerun completes it. '
                                     'Check host/kubeconfig, that the API server runs and that nothing blocks the '
                                     'connection.' % (self.host, exc.cause, retry.describe(exc), method, path))
        except _TransientStatus as exc:
            response = exc.response
            self._local.retried_out = retry.describe(exc)
        else:
            self._local.retried_out = ''
        self.answered = True
        self._local.last_status = response.status
        decoded = _decode(response.data)
        if response.status == 401:
            raise K8sConnectionError('the API server %s refused our credentials (401 Unauthorized): %s'
                                     % (self.host, decoded.get('message', '')))
        if response.status >= 400:
            error = ApiError(response.status, response.reason, decoded, method, path)
            if self.retried_out:
                error.args = (str(error) + self.retried_out,)
            raise error
        return decoded

    def close(self):
        self.pool.clear()


def bypasses_proxy(url, no_proxy):
    """Whether url's host matches a NO_PROXY entry (host or domain suffix, host:port, an IP network, or *), as
    the kubernetes package's REST client and kubectl decide; the settings take the proxy from HTTPS_PROXY and
    the like when the kubeconfig names none."""
    parsed = urlparse(url)
    if not parsed.hostname:
        return True
    host, host_port = parsed.hostname.lower(), parsed.netloc.lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.split(',')):
        if not entry:
            continue
        if entry == '*':
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
        entry = entry.lstrip('.')
        if entry in (host, host_port) or host.endswith('.' + entry) or host_port.endswith('.' + entry):
            return True
    return False


def _decode(data):
    """The JSON of a response body, decoded from the bytes (a LIST of thousands of objects is not copied into a
    str first); a body that is not JSON becomes {'message': its start}."""
    if not data:
        return {}
    try:
        return json.loads(data)
    except ValueError:
        text = data.decode('utf-8', 'replace')
        try:
            return json.loads(text)
        except ValueError:
            return {'message': text[:500]}


def _default_ca_bundle():
    try:
        import certifi
        return certifi.where()
    except ImportError:  # pragma: no cover
        paths = ssl.get_default_verify_paths()
        return paths.cafile or paths.openssl_cafile


def connect(params, timeout=30):
    """Transport for the module parameters; raises K8sConnectionError with a clear message."""
    return Transport(load_configuration(params), timeout=timeout)


def server_version(transport):
    """(major, minor) of the API server; one GET /version."""
    info = transport.request('GET', '/version')
    try:
        major = int(''.join(ch for ch in str(info.get('major', '1')) if ch.isdigit()) or 1)
        minor = int(''.join(ch for ch in str(info.get('minor', '0')) if ch.isdigit()) or 0)
    except ValueError:  # pragma: no cover
        return (1, 0)
    if (major, minor) == (0, 0) or not info.get('minor'):
        git = str(info.get('gitVersion', '')).lstrip('v').split('.')
        try:
            return int(git[0]), int(git[1])
        except (ValueError, IndexError):
            return (1, 0)
    return major, minor


def host_of(url):
    return urlparse(url).hostname
