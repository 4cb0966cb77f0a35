# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LDAP client for Active Directory, shared by every module that talks LDAP (ldap3 underneath).

Entry points
------------
``connect(module) -> Directory``
    Opens and binds a session from the shared connection options (``doc_fragments/ad_connection``).
    Every failure to connect or bind ends the module with ``module.fail_json`` and a message that names
    the option to fix (``password``/``username``, ``server``/``port``/``timeout``, ``ca_file``/
    ``validate_certs``). A missing ldap3 ends it with ``missing_required_lib('ldap3')``.
``open_directory(params, warn=None) -> Directory``
    The same without an AnsibleModule: raises ``ADConnectionError`` (tests, plugins).
``escape_filter_value(value) -> str`` (entry.py, re-exported here)
    RFC 4515 escaping. The ONLY way user supplied values may enter an LDAP filter.
``escape_rdn_value(value) -> str`` (entry.py, re-exported here)
    RFC 4514 escaping of a value used inside a DN (``'CN=%s,' % escape_rdn_value(name)``).

Directory
---------
Attributes (read lazily, cached):
    ``base_dn`` (domain naming context), ``config_dn``, ``schema_dn``, ``root_dse`` (Entry of the
    RootDSE), ``dns_domain`` (``contoso.com``), ``forest_dns`` (forest root DNS name), ``netbios_name``
    (``CONTOSO``), ``domain_sid`` (``S-1-5-21-...``), ``domain_guid`` (``xxxxxxxx-...``, lower case),
    ``bound_as`` (the account name used to bind; never the password), ``conn`` (the ldap3 Connection).
Methods (each raises ``ADError`` or a subclass on failure):
    ``search(base, ldap_filter, attributes, scope='subtree', controls=None, size_limit=0) -> [Entry]``
        paged (up to 5000 per page; Windows DCs cap a page at their MaxPageSize, 1000 by default); scope is
        ``base``, ``one``/``level`` or ``subtree``.
    ``get(dn, attributes, controls=None) -> Entry | None`` (None when the object does not exist).
    ``exists(dn) -> bool``
    ``add(dn, object_class, attributes)``; object_class is a str or list of str, attributes a dict of
        attribute name -> value or list of values (str, bytes, int, bool).
    ``modify(dn, changes)``; changes maps an attribute name to ``(op, values)`` or a list of such
        tuples, op one of ``'replace'``, ``'add'``, ``'delete'``; values a value or list (an empty list
        with ``'replace'``/``'delete'`` clears the attribute).
    ``delete(dn)``
    ``close()``
Entry (entry.py):
    ``entry.dn``; ``entry.attributes`` (case-insensitive dict: name -> list of values; text attributes
    decoded to str, known binary attributes (``BINARY_ATTRIBUTES``) kept as bytes);
    ``entry.raw`` (case-insensitive dict: name -> list of bytes, always); ``entry.get(name, default)``
    (first value); ``entry.values(name)`` (list, empty when absent); ``entry.sid(name='objectSid')``,
    ``entry.guid(name='objectGUID')`` (string forms). Names come back as the server spells them but
    look-ups ignore case.
Errors (errors.py):
    ``ADError(message, code=None, dn=None)`` with subclasses ``ADNoSuchObject``, ``ADAlreadyExists``,
    ``ADInsufficientAccess``, ``ADConstraintViolation``; ``ADConnectionError`` for connect/bind problems
    (``field`` names the option to fix).

Passwords are never put in messages, results or exceptions.
"""

from __future__ import annotations

import os
import socket
import traceback
import uuid

try:
    import ssl
    HAS_SSL = True
except ImportError:  # pragma: no cover
    HAS_SSL = False

LDAP3_IMPORT_ERROR = None
try:
    import ldap3
    from ldap3 import Server, Connection, Tls
    from ldap3.core import exceptions as ldap3_exceptions
    from ldap3.core.results import (RESULT_CODES, RESULT_NO_SUCH_OBJECT, RESULT_ENTRY_ALREADY_EXISTS,
                                    RESULT_INSUFFICIENT_ACCESS_RIGHTS, RESULT_CONSTRAINT_VIOLATION,
                                    RESULT_INVALID_CREDENTIALS, RESULT_STRONGER_AUTH_REQUIRED,
                                    RESULT_SIZE_LIMIT_EXCEEDED, RESULT_SUCCESS)
    HAS_LDAP3 = True
except ImportError:
    HAS_LDAP3 = False
    LDAP3_IMPORT_ERROR = traceback.format_exc()
    Tls = object
    RESULT_CODES = {}
    RESULT_SUCCESS, RESULT_SIZE_LIMIT_EXCEEDED, RESULT_STRONGER_AUTH_REQUIRED = 0, 4, 8
    RESULT_CONSTRAINT_VIOLATION, RESULT_NO_SUCH_OBJECT, RESULT_INVALID_CREDENTIALS = 19, 32, 49
    RESULT_INSUFFICIENT_ACCESS_RIGHTS, RESULT_ENTRY_ALREADY_EXISTS = 50, 68

from ansible_collections.winkube.gmsa.plugins.module_utils import retry
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import kds
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.dn import dn_to_dns
from ansible_collections.winkube.gmsa.plugins.module_utils.models.portable_identity import unicode_pwd
# errors.py and entry.py hold the errors, Entry and the escaping; the names are re-exported here so callers
# written against ldap_client keep working (new code imports them from there).
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.errors import (  # pylint: disable=unused-import
    ADAlreadyExists,
    ADConnectionError,
    ADConstraintViolation,
    ADError,
    ADInsufficientAccess,
    ADNoSuchObject,
    needed_right,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.entry import (  # pylint: disable=unused-import
    Entry,
    as_list,
    escape_filter_value,
    escape_rdn_value,
    guid_to_str,
)

try:
    from ansible.module_utils.basic import missing_required_lib
except ImportError:  # pragma: no cover - only outside Ansible
    def missing_required_lib(library, reason=None, url=None):
        return 'Failed to import the required Python library (%s).' % library


def _gssapi():
    """The gssapi package, imported only for auth_method=kerberos (importing it cost every other AD module call
    15-30 ms of CPU); None when it is not installed."""
    try:
        import gssapi
        import gssapi.raw  # noqa: F401 - acquire_cred_with_password lives there
    except ImportError:
        return None
    return gssapi


class _Lost(Exception):
    """Internal: the connection was lost (or could not be reopened) during an operation."""

    def __init__(self, cause, reconnect=False):
        super(_Lost, self).__init__(str(cause))
        self.cause = cause
        self.reconnect = reconnect


class _Busy(Exception):
    """Internal: the server answered busy or unavailable."""

    def __init__(self, ok):
        super(_Busy, self).__init__('busy')
        self.ok = ok


RESULT_NAMES = RESULT_CODES  # LDAP result code -> name (RFC 4511), as ldap3 spells them


# --------------------------------------------------------------------------------------------------
# TLS with real host name checking (ldap3's own check ignores IP address SANs)
# --------------------------------------------------------------------------------------------------

class _VerifyingTls(Tls):
    """ldap3 Tls whose handshake uses OpenSSL's own host name/IP verification when validating."""

    def __init__(self, validate, ca_file=None, server_name=None):
        super(_VerifyingTls, self).__init__(validate=ssl.CERT_REQUIRED if validate else ssl.CERT_NONE,
                                            ca_certs_file=ca_file)
        self._verify = validate
        self._ca_file = ca_file
        self._server_name = server_name

    def wrap_socket(self, connection, do_handshake=False):
        if self._verify:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self._ca_file)
            context.check_hostname = True
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        connection.socket = context.wrap_socket(connection.socket, server_side=False,
                                                do_handshake_on_connect=do_handshake,
                                                server_hostname=self._server_name)


# --------------------------------------------------------------------------------------------------
# Connecting
# --------------------------------------------------------------------------------------------------

def _ntlm_md4_available():
    """ldap3's NTLM needs MD4: hashlib's (absent from OpenSSL 3's default provider), else pycryptodome's
    ``Crypto.Hash.MD4``, which ldap3 imports itself (pycryptodome is in requirements.txt)."""
    import hashlib
    try:
        hashlib.new('md4', b'')
        return True
    except ValueError:
        pass
    try:
        from Crypto.Hash import MD4  # noqa: F401  pylint: disable=unused-import
        return True
    except ImportError:
        return False


def _kerberos_credentials(params):
    """GSSAPI initiator credentials from exactly one source, never the user's default credential cache:
    ``password`` (a ticket acquired in memory), ``kerberos_keytab`` (a client keytab, tickets kept in a private
    in-memory cache) or ``kerberos_ccache`` (a cache the user names, e.g. the one kinit wrote)."""
    username = params.get('username')
    password = params.get('password')
    keytab = params.get('kerberos_keytab')
    ccache = params.get('kerberos_ccache')
    given = [name for name, value in (('password', password), ('kerberos_keytab', keytab),
                                      ('kerberos_ccache', ccache)) if value]
    if len(given) != 1:
        raise ADConnectionError(
            'auth_method=kerberos needs exactly one source of credentials: password (with username as '
            'user@REALM), kerberos_keytab (with username as the keytab\'s principal) or kerberos_ccache (a '
            'credential cache such as FILE:/tmp/krb5cc_1000); %s' % (
                'got %s' % ' and '.join(given) if given else 'none was given'),
            field=given[-1] if given else 'password')
    if (password or keytab) and not username:
        raise ADConnectionError('auth_method=kerberos with %s needs username: the Kerberos principal, user@REALM '
                                '(the realm in upper case, e.g. svc-gmsa@CONTOSO.COM)' % given[0], field='username')
    if keytab and not os.path.isfile(keytab):
        raise ADConnectionError('kerberos_keytab %s does not exist or is not a file' % keytab, field='kerberos_keytab')
    gssapi = _gssapi()
    name = gssapi.Name(username, gssapi.NameType.kerberos_principal) if username else None
    try:
        if password:
            return gssapi.raw.acquire_cred_with_password(name, password.encode('utf-8'), usage='initiate').creds
        if keytab:
            store = {'client_keytab': keytab, 'ccache': 'MEMORY:winkube-gmsa-%s' % uuid.uuid4().hex}
        else:
            store = {'ccache': ccache}
        creds = gssapi.Credentials(name=name, usage='initiate', store=store)
        creds.inquire()  # fails here, with the library's reason, when the source holds no usable ticket/key
        return creds
    except gssapi.exceptions.GSSError as exc:
        raise _kerberos_error(exc, 'acquiring Kerberos credentials for %s' % (username or 'the cache\'s principal'),
                              params.get('server'), source=given[0])


def _kerberos_error(exc, what, server_name, source=None):
    """ADConnectionError naming the option behind a GSSAPI/Kerberos failure."""
    text = _clean(str(exc))
    low = text.lower()
    if 'preauthentication failed' in low or 'password incorrect' in low or 'decrypt integrity check' in low:
        field, fix = 'password', 'the password (or the keys in kerberos_keytab) does not match the principal'
    elif 'client' in low and 'not found' in low:
        field, fix = 'username', 'username must be a principal of the realm, user@REALM with the realm in upper case'
    elif 'server' in low and 'not found' in low:
        field, fix = 'server', ('the KDC knows no service principal ldap/%s: set server to the domain controller\'s '
                                'fully qualified host name (not an IP address or alias)' % server_name)
    elif 'kdc' in low or 'realm' in low:
        field, fix = 'auth_method', ('no KDC of the principal\'s realm could be reached: check the krb5.conf the '
                                     'controller uses (KRB5_CONFIG) and the realm in username')
    elif source in ('kerberos_keytab', 'kerberos_ccache'):
        field, fix = source, 'the %s holds no usable key or ticket for this principal' % source
    else:
        field, fix = 'auth_method', 'check username, the credential source and the krb5.conf the controller uses'
    return ADConnectionError('%s failed: %s. Fix: %s.' % (what, text, fix), field=field)


def open_directory(params, warn=None):
    """Open and bind a session from the connection options (a dict like module.params).

    Raises ADConnectionError with ``field`` naming the option to fix.
    """
    if not HAS_LDAP3:
        raise ADConnectionError(missing_required_lib('ldap3'), field=None)
    warn = warn or (lambda msg: None)
    server_name = params['server']
    encryption = params.get('encryption') or 'ldaps'
    auth = params.get('auth_method') or 'simple'
    username = params.get('username')
    password = params.get('password')
    timeout = params.get('timeout') or 10
    validate = params.get('validate_certs', True)
    ca_file = params.get('ca_file')
    port = params.get('port') or (636 if encryption == 'ldaps' else 389)

    if encryption == 'none' and auth == 'simple':
        raise ADConnectionError(
            'encryption=none with auth_method=simple would send the password in the clear; use '
            'encryption=ldaps or starttls', field='encryption')
    if encryption != 'none' and not validate:
        warn('validate_certs=false: the domain controller\'s certificate is not checked, so the bind '
             'password can be intercepted. Only use this in a throw-away lab.')
    if ca_file and not os.path.isfile(ca_file):
        raise ADConnectionError('ca_file %s does not exist or is not a file' % ca_file, field='ca_file')

    tls = None
    if encryption in ('ldaps', 'starttls'):
        try:
            tls = _VerifyingTls(validate, ca_file=ca_file, server_name=server_name)
        except (ssl.SSLError, OSError) as exc:
            raise ADConnectionError('cannot load ca_file %s: %s' % (ca_file, exc), field='ca_file')

    server = Server(server_name, port=port, use_ssl=(encryption == 'ldaps'), tls=tls,
                    get_info=ldap3.NONE, connect_timeout=timeout)
    kwargs = dict(auto_bind=ldap3.AUTO_BIND_NONE, receive_timeout=timeout, raise_exceptions=False,
                  read_only=False, auto_referrals=False, client_strategy=ldap3.SYNC, return_empty_attributes=False)
    if auth == 'simple':
        kwargs.update(user=username, password=password, authentication=ldap3.SIMPLE)
    elif auth == 'ntlm':
        if not username or '\\' not in username:
            raise ADConnectionError('auth_method=ntlm needs username as DOMAIN\\user (got %r)' % username,
                                    field='username')
        if not _ntlm_md4_available():
            raise ADConnectionError(
                'auth_method=ntlm needs MD4, which this OpenSSL does not provide; install pycryptodome on the '
                'controller (requirements.txt), or use auth_method=simple over ldaps/starttls or '
                'auth_method=kerberos', field='auth_method')
        kwargs.update(user=username, password=password, authentication=ldap3.NTLM)
    elif auth == 'kerberos':
        if encryption == 'none':
            # ldap3's GSSAPI bind (ldap3/protocol/sasl/kerberos.py) always answers the server's security layer
            # offer with "no security layer": no signing, no sealing. Without TLS everything after the bind,
            # gMSA passwords and security descriptors included, would cross the network unprotected.
            raise ADConnectionError(
                'auth_method=kerberos with encryption=none is refused: ldap3 binds with GSSAPI without a SASL '
                'security layer (no integrity or confidentiality protection), so the session would be neither '
                'signed nor encrypted. Use encryption=ldaps (port 636) or encryption=starttls (port 389) with '
                'auth_method=kerberos.', field='encryption')
        if _gssapi() is None:
            raise ADConnectionError(
                missing_required_lib('gssapi', reason='for auth_method=kerberos') +
                ' Or use auth_method=simple over ldaps/starttls.', field='auth_method')
        kwargs.update(authentication=ldap3.SASL, sasl_mechanism=ldap3.KERBEROS,
                      sasl_credentials=(None, None, _kerberos_credentials(params)))
    else:
        raise ADConnectionError('unknown auth_method %r' % auth, field='auth_method')

    conn = Connection(server, **kwargs)
    where = '%s:%s' % (server_name, port)
    try:
        conn.open()
        if encryption == 'starttls':
            if not conn.start_tls():
                raise ADConnectionError('StartTLS refused by %s: %s' % (where, _result_text(conn.result)),
                                        field='encryption')
    except ADConnectionError:
        raise
    except Exception as exc:  # ldap3 wraps socket and TLS errors in its own exceptions
        raise _open_error(exc, where, timeout, ca_file, validate)

    try:
        bound = conn.bind()
    except Exception as exc:
        _safe_unbind(conn)
        text = str(exc)
        if auth == 'kerberos':
            raise _kerberos_error(exc, 'Kerberos bind to %s' % where, server_name)
        if auth == 'ntlm':
            raise ADConnectionError(
                'NTLM bind as %s to %s failed: %s. The server ended the session during the NTLM exchange: '
                'either username (DOMAIN\\user) or password is wrong, or the server does not accept the '
                'Microsoft "Sicily" NTLM bind that ldap3 uses (Windows domain controllers do, Samba does '
                'not). Use auth_method=simple over ldaps/starttls or auth_method=kerberos instead.'
                % (username, where, _clean(text)), field='auth_method')
        raise _open_error(exc, where, timeout, ca_file, validate)
    if not bound:
        result = conn.result or {}
        _safe_unbind(conn)
        if result.get('result') == RESULT_INVALID_CREDENTIALS:
            raise ADConnectionError(
                'bind as %s to %s refused: invalid credentials (%s). Check username/password (simple bind '
                'accepts a DN, user@domain or DOMAIN\\user).' % (username, where, _result_text(result)),
                field='password')
        if result.get('result') == RESULT_STRONGER_AUTH_REQUIRED:
            raise ADConnectionError(
                'bind as %s to %s refused: the server requires a stronger authentication (signing/'
                'sealing): use encryption=ldaps or starttls (%s)' % (username, where, _result_text(result)),
                field='encryption')
        raise ADConnectionError('bind as %s to %s failed: %s'
                                % (username or 'Kerberos principal', where, _result_text(result)), field='username')
    directory = Directory(conn, base_dn=params.get('base_dn'), bound_as=username)
    directory.retry_policy = retry.ESTABLISHED.within(params.get('total_timeout') or 60)
    # used to reconnect after the connection is lost mid-run (see Directory._call)
    directory.reopen = lambda: open_directory(params, warn=lambda msg: None).conn
    return directory


def _open_error(exc, where, timeout, ca_file, validate):
    text = str(exc)
    low = text.lower()
    if 'certificate' in low or 'ssl' in low and ('verify' in low or 'hostname' in low):
        if 'hostname' in low or "doesn't match" in low or 'ip address mismatch' in low:
            hint = ('the certificate does not name %s; set server to a name in its subject alternative names '
                    '(or fix the certificate)' % where.rsplit(':', 1)[0])
        else:
            hint = ('set ca_file to the PEM file of the CA that issued the domain controller\'s certificate%s'
                    % (' (currently %s)' % ca_file if ca_file else ' (currently the system trust store)'))
        return ADConnectionError(
            'TLS certificate of %s does not validate: %s. Fix: %s; validate_certs=false only for a '
            'throw-away lab.' % (where, _clean(text), hint), field='ca_file')
    if 'ssl' in low or 'tls' in low or 'wrong version' in low:
        return ADConnectionError('TLS handshake with %s failed: %s. Check port and encryption (ldaps is port '
                                 '636, starttls/none port 389).' % (where, _clean(text)), field='encryption')
    return ADConnectionError(
        'cannot reach %s within %ss: %s. Check server, port and firewalls between the controller and '
        'the domain controller.' % (where, timeout, _clean(text)), field='server')


def _clean(text):
    # ldap3 socket errors can be long nested reprs; keep them readable.
    return ' '.join(text.split())[:500]


def _result_text(result):
    if not result:
        return 'no result'
    parts = [str(result.get('description') or RESULT_NAMES.get(result.get('result'), result.get('result')))]
    if result.get('message'):
        parts.append(result['message'].strip().rstrip('\x00'))
    return ': '.join(parts)


def _safe_unbind(conn):
    try:
        conn.unbind()
    except Exception:  # pylint: disable=broad-except
        pass


def connect(module):
    """Open and bind a Directory for an AnsibleModule, failing the module with a clear message."""
    if not HAS_LDAP3:
        module.fail_json(msg=missing_required_lib('ldap3'), exception=LDAP3_IMPORT_ERROR)
    try:
        return open_directory(module.params, warn=module.warn)
    except ADConnectionError as exc:
        module.fail_json(msg=exc.message, failed_option=exc.field)


# --------------------------------------------------------------------------------------------------
# Directory
# --------------------------------------------------------------------------------------------------

_SCOPES = {'base': 'BASE', 'one': 'LEVEL', 'level': 'LEVEL', 'onelevel': 'LEVEL', 'subtree': 'SUBTREE'}
_OPS = {'replace': 'MODIFY_REPLACE', 'add': 'MODIFY_ADD', 'delete': 'MODIFY_DELETE'}


class Directory(object):
    """A bound LDAP session to one domain controller (see the module docstring for the API)."""

    # One page for a few thousand entries: ldap3 encodes the whole filter again for every page (a task's search for
    # 2,000 gMSAs ORs 4,000 clauses), and the server answers each page request anew. A Windows DC still returns at
    # most its MaxPageSize (1000 by default) per page; the cookie brings the rest either way.
    page_size = 5000

    def __init__(self, conn, base_dn=None, bound_as=None):
        self.conn = conn
        self.reopen = None  # callable -> a new bound ldap3 Connection; set by open_directory
        self.retry_policy = retry.ESTABLISHED
        self.sleep = None  # tests may replace the wait between retries
        self.retries = 0  # retries made in this session (transient errors that were overcome or not)
        self._lost = False  # the last operation was repeated after a lost connection
        self.bound_as = bound_as
        self._base_dn = base_dn
        self._root_dse = None
        self._domain = None
        self._netbios = None
        self._forest_dns = None

    # -- lazily read facts ---------------------------------------------------------------------------
    @property
    def root_dse(self):
        if self._root_dse is None:
            found = self.search('', '(objectClass=*)', [
                'defaultNamingContext', 'configurationNamingContext', 'schemaNamingContext',
                'rootDomainNamingContext', 'dnsHostName', 'serverName', 'domainFunctionality',
                'forestFunctionality', 'domainControllerFunctionality', 'supportedLDAPVersion',
                'supportedControl', 'supportedSASLMechanisms', 'isGlobalCatalogReady', 'ldapServiceName',
                'currentTime', 'vendorName', 'vendorVersion'], scope='base')
            if not found:
                raise ADError('the server returned no RootDSE; is it an Active Directory domain controller?')
            self._root_dse = found[0]
        return self._root_dse

    @property
    def base_dn(self):
        if not self._base_dn:
            self._base_dn = self.root_dse.get('defaultNamingContext')
            if not self._base_dn:
                raise ADError('the RootDSE has no defaultNamingContext; set base_dn')
        return self._base_dn

    @property
    def config_dn(self):
        value = self.root_dse.get('configurationNamingContext')
        if not value:
            raise ADError('the RootDSE has no configurationNamingContext')
        return value

    @property
    def schema_dn(self):
        return self.root_dse.get('schemaNamingContext')

    @property
    def forest_dn(self):
        return self.root_dse.get('rootDomainNamingContext') or self.base_dn

    @property
    def dns_domain(self):
        return dn_to_dns(self.base_dn)

    @property
    def forest_dns(self):
        if self._forest_dns is None:
            self._forest_dns = dn_to_dns(self.forest_dn)
        return self._forest_dns

    def _domain_entry(self):
        if self._domain is None:
            entry = self.get(self.base_dn, ['objectSid', 'objectGUID', 'msDS-Behavior-Version', 'name'])
            if entry is None:
                raise ADError('base_dn %s does not exist on the server' % self.base_dn, dn=self.base_dn)
            self._domain = entry
        return self._domain

    @property
    def domain_sid(self):
        return self._domain_entry().sid()

    @property
    def domain_guid(self):
        return self._domain_entry().guid()

    @property
    def netbios_name(self):
        if self._netbios is None:
            found = self.search('CN=Partitions,%s' % self.config_dn,
                                '(&(objectClass=crossRef)(nCName=%s)(netBIOSName=*))' % escape_filter_value(self.base_dn),
                                ['netBIOSName'], scope='one')
            if found and found[0].get('netBIOSName'):
                self._netbios = found[0].get('netBIOSName')
            else:
                self._netbios = self.dns_domain.split('.', maxsplit=1)[0].upper()
        return self._netbios

    # -- operations ------------------------------------------------------------------------------------
    def search(self, base, ldap_filter, attributes, scope='subtree', controls=None, size_limit=0):
        """Paged search; returns a list of Entry (referrals are dropped)."""
        try:
            ldap_scope = getattr(ldap3, _SCOPES[scope.lower()])
        except KeyError:
            raise ADError('invalid search scope %r (use base, one or subtree)' % scope)
        if isinstance(attributes, str):
            attributes = [attributes]
        attributes = list(attributes) if attributes else [ldap3.NO_ATTRIBUTES]
        entries = []
        cookie = None
        while True:
            paged = scope.lower() != 'base'
            kwargs = dict(search_base=base, search_filter=ldap_filter, search_scope=ldap_scope,
                          attributes=attributes, controls=controls, size_limit=size_limit)
            if paged:
                kwargs.update(paged_size=self.page_size, paged_cookie=cookie)
            ok = self._call(self.conn.search, 'search', base, **kwargs)
            if not ok and (self.conn.result or {}).get('result') not in (RESULT_SUCCESS, RESULT_SIZE_LIMIT_EXCEEDED):
                self._raise('search', base, filter_text=ldap_filter)
            # ldap3's parsed page (each value as bytes and again formatted) is let go item by item as the entries are
            # made: the two forms of thousands of objects are never all held at once
            response, self.conn.response = self.conn.response or [], None
            for index, item in enumerate(response):
                response[index] = None
                if item.get('type') == 'searchResEntry':
                    entries.append(Entry(item['dn'], item.get('raw_attributes') or {}))
            if not paged:
                break
            cookie = (self.conn.result.get('controls') or {}).get('1.2.840.113556.1.4.319', {}) \
                .get('value', {}).get('cookie')
            if not cookie:
                break
        return entries

    def get(self, dn, attributes, controls=None):
        try:
            found = self.search(dn, '(objectClass=*)', attributes, scope='base', controls=controls)
        except ADNoSuchObject:
            return None
        return found[0] if found else None

    def exists(self, dn):
        return self.get(dn, ['objectClass']) is not None

    def add(self, dn, object_class, attributes):
        attrs = {}
        for name, values in (attributes or {}).items():
            values = as_list(values)
            if values:
                attrs[name] = values if len(values) > 1 else values[0]
        ok = self._call(self.conn.add, 'add', dn, dn, object_class=object_class, attributes=attrs)
        if not ok:
            classes = object_class if isinstance(object_class, (list, tuple)) else [object_class]
            self._raise('add', dn, attributes=list(attrs), object_class=classes[-1] if classes else None)

    def modify(self, dn, changes):
        ldap_changes = {}
        for name, change in changes.items():
            ops = change if isinstance(change, list) else [change]
            items = []
            for op, values in ops:
                try:
                    ldap_op = getattr(ldap3, _OPS[op])
                except KeyError:
                    raise ADError('invalid modify operation %r for %s (use replace, add or delete)' % (op, name))
                items.append((ldap_op, as_list(values)))
            ldap_changes[name] = items
        if not ldap_changes:
            return
        ok = self._call(self.conn.modify, 'modify', dn, dn, ldap_changes)
        if not ok:
            self._raise('modify', dn, attributes=list(ldap_changes))

    def delete(self, dn):
        ok = self._call(self.conn.delete, 'delete', dn, dn)
        if not ok:
            if self._lost and (self.conn.result or {}).get('result') == RESULT_NO_SUCH_OBJECT:
                return  # the first try reached the server before the connection was lost: it is gone already
            self._raise('delete', dn)

    # -- the plan's operations (reconciler.py): the LDAP writer carries them out as add/modify/delete --------------
    # The cmdlet writer (winrm_directory.WinRMDirectory) has the same three methods and runs New-AD*/Set-AD*.
    def create(self, dn, object_type, attributes, values):
        """Create one object of ``object_type`` (reconciler.ObjectType): ``attributes`` are the plan's LDAP values,
        ``values`` the option values (the LDAP writer only takes ``password`` from them, as unicodePwd)."""
        if values.get('password') is not None:
            attributes = dict(attributes, unicodePwd=[unicode_pwd(values['password'])])
        self.add(dn, object_type.object_class, attributes)

    def update(self, dn, object_type, changes, password=None):
        """Write the plan's ``changes`` (and a password reset) to one existing object."""
        if password is not None:
            changes = dict(changes, unicodePwd=[('replace', [unicode_pwd(password)])])
        self.modify(dn, changes)

    def remove(self, dn, object_type):
        self.delete(dn)

    # -- KDS root keys: the operations Get-KdsRootKey / Add-KdsRootKey carry out with backend winrm ------------
    def kds_root_key_entries(self, container_dn):
        return kds.root_key_entries_over_ldap(self, container_dn)

    def add_kds_root_key(self, use_start, now, key_id=None):
        return kds.add_root_key_over_ldap(self, use_start, now, key_id=key_id)

    def close(self):
        _safe_unbind(self.conn)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- error handling --------------------------------------------------------------------------------
    def _call(self, func, operation, dn, *args, **kwargs):
        """Run one ldap3 operation; transient failures are retried (see module_utils/retry.py).

        A lost connection (reset, refused, timed out, closed by the server) is reopened and the operation
        sent again; busy (51) and unavailable (52) answers are retried as they are. Everything else is
        returned to the caller, which raises the matching ADError.
        """
        name = func.__name__
        self._lost = False

        def attempt():
            if self.conn is None:
                try:
                    self.conn = self.reopen()
                except ADConnectionError as exc:
                    raise _Lost(exc, reconnect=True)
            try:
                ok = getattr(self.conn, name)(*args, **kwargs)
            except ldap3_exceptions.LDAPCommunicationError as exc:
                raise _Lost(exc)
            except ldap3_exceptions.LDAPException as exc:
                raise ADError('LDAP %s of %s failed: %s' % (operation, dn or 'RootDSE', _clean(str(exc))), dn=dn)
            except (socket.error, OSError) as exc:
                raise _Lost(exc)
            if not ok and (self.conn.result or {}).get('result') in retry.TRANSIENT_LDAP_CODES:
                raise _Busy(ok)
            return ok

        def transient(exc):
            if isinstance(exc, _Lost):
                if self.reopen is None:
                    return None
                if exc.reconnect and getattr(exc.cause, 'field', None) in ('password', 'username', 'auth_method'):
                    return None  # e.g. the password was changed meanwhile: retrying cannot help
                # anything else while reconnecting (refused, timed out, TLS handshake cut short) is the
                # server being away: the same options worked at the start of this run
                return 0
            if isinstance(exc, _Busy):
                return 0
            return None

        def on_retry(exc, _attempt, _delay):
            self.retries += 1
            if isinstance(exc, _Lost):
                self._lost = True
                if self.conn is not None:
                    _safe_unbind(self.conn)
                    self.conn = None

        kwargs_retry = {'sleep': self.sleep} if self.sleep else {}
        try:
            return retry.call(attempt, transient, self.retry_policy, on_retry=on_retry, **kwargs_retry)
        except _Busy as exc:
            return exc.ok
        except _Lost as exc:
            if self.conn is not None:
                _safe_unbind(self.conn)
            self.conn = None
            raise ADError('LDAP %s of %s failed, the connection to the domain controller was lost: %s%s. A rerun '
                          'completes what is missing.' % (operation, dn or 'RootDSE', _clean(str(exc.cause)),
                                                          retry.describe(exc)), dn=dn)

    def _raise(self, operation, dn, attributes=None, filter_text=None, object_class=None):
        result = self.conn.result or {}
        code = result.get('result')
        server_text = (result.get('message') or '').strip().rstrip('\x00')
        detail = _result_text(result)
        who = self.bound_as or 'the bound account'
        attrs = ', '.join(attributes or [])
        if code == RESULT_NO_SUCH_OBJECT:
            raise ADNoSuchObject('%s of %s failed: no such object (%s)' % (operation, dn, detail),
                                 code=code, dn=dn, server_message=server_text)
        if code == RESULT_ENTRY_ALREADY_EXISTS:
            raise ADAlreadyExists('cannot add %s: an object with this name already exists (%s)' % (dn, detail),
                                  code=code, dn=dn, server_message=server_text)
        if code == RESULT_INSUFFICIENT_ACCESS_RIGHTS:
            right = needed_right(operation, dn, object_class, attrs)
            raise ADInsufficientAccess('%s of %s refused: insufficient access rights; %s needs %s (%s)'
                                       % (operation, dn, who, right, detail),
                                       code=code, dn=dn, server_message=server_text)
        if code == RESULT_CONSTRAINT_VIOLATION:
            raise ADConstraintViolation('%s of %s refused: constraint violation on %s (%s). A value is out of '
                                        'range, not unique, or the attribute may only be set at creation.'
                                        % (operation, dn, attrs or 'the request', detail),
                                        code=code, dn=dn, server_message=server_text)
        if filter_text is not None and code == 87:
            raise ADError('search under %s failed: bad filter %s (%s)' % (dn, filter_text, detail), code=code, dn=dn)
        extra = ''
        if code in (16, 17, 20, 21, 65, 64) and attrs:
            extra = ' (attributes: %s)' % attrs
        raise ADError('%s of %s failed: %s%s' % (operation, dn or 'RootDSE', detail, extra),
                      code=code, dn=dn, server_message=server_text)
