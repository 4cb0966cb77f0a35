"""Imitation of the ActiveDirectory / KDS cmdlet scripts of plugins/module_utils/ad/cmdlets.py.

Not PowerShell: each function does, against a REAL Active Directory domain controller over LDAPS (ldap3), what
the named constant script does with the cmdlets on Windows, and answers with the same JSON the script would
return (values as strings or {"b": base64}; ObjectClass as the structural class only, as Get-ADObject gives it),
or raises the error the cmdlet would raise (message, category, FullyQualifiedErrorId, exception type, command).

The domain controller: the tests PUT its connection data into the fake host's state through the control port
(``PUT /state/<host>`` with ``{"ad": {...}}``; tests/integration/fixtures_winrm.py, fixture ``winrm_ad_lab``):

    server, port      where the DC's LDAPS listens (127.0.0.1, 636)
    ca_file           PEM of the CA that signed its certificate (validated, host name checked)
    username, password  the account the imitated cmdlets act as (the lab's Administrator stands in for the
                      WinRM user, which would be a domain admin on a real domain controller)
    dc_names          names -Server may give for this DC (others fail like an unreachable server)
    run_as            what WindowsIdentity.GetCurrent().Name returns (e.g. CONTOSO\\winrm-admin)

Without ``ad`` in the host's state every script fails as the cmdlets do without a reachable DC
(ADServerDownException). /reset drops it; the fixture puts it back for each test.
"""

from __future__ import annotations

import ast
import base64
import datetime
import os
import ssl
import struct
import sys
import uuid

_SERVER = sys.modules.get('__main__')


class _FakeError(Exception):
    def __init__(self, error):
        super(_FakeError, self).__init__(error.get('message'))
        self.error = error


FakePowerShellError = getattr(_SERVER, 'FakePowerShellError', _FakeError)

HERE = os.path.dirname(os.path.abspath(__file__))
NT_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)
ROOT_KEYS = 'CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,'
GMSA_CLASSES = ['top', 'person', 'organizationalPerson', 'user', 'computer', 'msDS-GroupManagedServiceAccount']
BINARY = frozenset(n.lower() for n in (
    'objectSid', 'objectGUID', 'nTSecurityDescriptor', 'msDS-GroupMSAMembership', 'msDS-ManagedPassword',
    'msKds-RootKeyData', 'msKds-KDFParam', 'msKds-SecretAgreementParam', 'sIDHistory', 'tokenGroups',
    'msDS-AllowedToActOnBehalfOfOtherIdentity', 'userCertificate', 'logonHours'))
SERVER_DOWN = ('Unable to contact the server. This may be because this server does not exist, it is currently down, '
               'or it does not have the Active Directory Web Services running.')
AD_NS = 'Microsoft.ActiveDirectory.Management'


def error(command, message, exception, category, kind='ActiveDirectoryCmdlet'):
    """A cmdlet's terminating error as the bootstrap reports it."""
    namespace = 'Microsoft.KeyDistributionService.Cmdlets' if 'Kds' in command else AD_NS + '.Commands'
    return FakePowerShellError({
        'message': message, 'category': category, 'exception': exception, 'command': command,
        'error_id': '%s:%s,%s.%s' % (kind, exception, namespace, command.replace('-', '')), 'line': 1})


def not_found(command, identity, domain):
    return error(command, "Cannot find an object with identity: '%s' under: '%s'." % (identity, domain),
                 AD_NS + '.ADIdentityNotFoundException', 'ObjectNotFound')


def ldap_error(command, conn, dn):
    """The cmdlet error for an LDAP result (what ADWS turns it into)."""
    result = conn.result or {}
    code = result.get('result')
    text = (result.get('message') or result.get('description') or '').strip()
    if code == 32:
        return error(command, 'Directory object not found', AD_NS + '.ADIdentityNotFoundException', 'ObjectNotFound')
    if code == 68:
        accounts = ('New-ADServiceAccount', 'New-ADUser', 'New-ADGroup')
        message = ('The specified account already exists' if command in accounts else
                   'An attempt was made to add an object to the directory with a name that is already in use')
        return error(command, message, AD_NS + '.ADIdentityAlreadyExistsException', 'ResourceExists')
    if code == 50:
        return error(command, 'Access is denied', 'System.UnauthorizedAccessException', 'PermissionDenied')
    if code == 19:
        return error(command, 'A constraint violation occurred (%s)' % text, AD_NS + '.ADException', 'NotSpecified')
    if code == 66:
        return error(command, 'The directory service can perform the requested operation only on a leaf object.',
                     AD_NS + '.ADException', 'NotSpecified')
    return error(command, '%s (%s)' % (text or result.get('description'), dn), AD_NS + '.ADException', 'NotSpecified')


# ---------------------------------------------------------------------------------------------------------------
# the domain controller


def connect(host, data, command, user=None, password=None):
    """A bound ldap3 connection to the DC the cmdlet would talk to (honouring -Server), or its error."""
    import ldap3

    ad = host.get('ad')
    if not ad:
        raise error(command, SERVER_DOWN, AD_NS + '.ADServerDownException', 'ResourceUnavailable',
                    kind='ActiveDirectoryServer:0')
    server = data.get('server')
    if server and str(server).lower() not in [n.lower() for n in ad.get('dc_names') or []]:
        raise error(command, SERVER_DOWN, AD_NS + '.ADServerDownException', 'ResourceUnavailable',
                    kind='ActiveDirectoryServer:0')
    ca_file = ad['ca_file']

    class _Tls(ldap3.Tls):
        def wrap_socket(self, connection, do_handshake=False):
            context = ssl.create_default_context(cafile=ca_file)
            connection.socket = context.wrap_socket(connection.socket, server_hostname=connection.server.host,
                                                    do_handshake_on_connect=do_handshake)

    target = ldap3.Server(ad['server'], port=int(ad.get('port') or 636), use_ssl=True, tls=_Tls(),
                          get_info=ldap3.NONE, connect_timeout=10)
    conn = ldap3.Connection(target, user=user or ad['username'], password=password or ad['password'],
                            receive_timeout=30, raise_exceptions=False)
    if not conn.bind():
        if user is not None:
            return None
        raise error(command, 'The server has rejected the client credentials.',
                    'System.Security.Authentication.AuthenticationException', 'SecurityError')
    return conn


def root_dse(conn):
    import ldap3
    conn.search('', '(objectClass=*)', search_scope=ldap3.BASE, attributes=['*', '+'])
    return conn.response[0]['raw_attributes']


def read(conn, dn, attributes):
    import ldap3
    conn.search(dn, '(objectClass=*)', search_scope=ldap3.BASE, attributes=attributes)
    found = [e for e in conn.response or [] if e.get('type') == 'searchResEntry']
    return found[0] if found else None


def value_out(name, raw):
    """One LDAP value as ConvertTo-WinkubeValue writes the cmdlet's .NET value."""
    if name.lower() in BINARY:
        return {'b': base64.b64encode(raw).decode('ascii')}
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        return {'b': base64.b64encode(raw).decode('ascii')}


def attributes_out(raw_attributes, names):
    """ConvertTo-WinkubeAttributes: the asked names, in the asked spelling, ObjectClass as one value."""
    lower = dict((k.lower(), v) for k, v in raw_attributes.items())
    out = {}
    for name in names or []:
        values = lower.get(name.lower()) or []
        if name.lower() == 'objectclass' and values:
            values = values[-1:]  # Get-ADObject: the structural class only
        if values:
            out[name] = [value_out(name, v) for v in values]
    return out


def value_in(item):
    """ConvertFrom-WinkubeValue: what the cmdlet would send for one data value."""
    if isinstance(item, str):
        return item
    if 'b' in item:
        return base64.b64decode(item['b'])
    if 'sd' in item:
        return base64.b64decode(item['sd'])  # ActiveDirectorySecurity: written in its binary form
    if 'i' in item:
        return str(int(item['i']))
    return str(item.get('s'))


def table_in(items):
    return dict((item['name'], [value_in(v) for v in item.get('values') or []]) for item in items or [])


def domain_dn(conn):
    return root_dse(conn)['defaultNamingContext'][0].decode()


def classes_of(conn, dn):
    entry = read(conn, dn, ['objectClass'])
    return [c.decode().lower() for c in entry['raw_attributes'].get('objectClass', [])] if entry else None


# ---------------------------------------------------------------------------------------------------------------
# the scripts


def fake_ad_facts(host, data):
    """Get-ADRootDSE, Get-ADDomain -Identity (base_dn, else the RootDSE's defaultNamingContext)."""
    import ldap3

    conn = connect(host, data, 'Get-ADRootDSE')
    try:
        dse = root_dse(conn)
        identity = data.get('base_dn') or dse['defaultNamingContext'][0].decode()
        conn.search(identity, '(objectClass=domain)', search_scope=ldap3.BASE, attributes=['objectSid', 'objectGUID'])
        found = [e for e in conn.response or [] if e.get('type') == 'searchResEntry']
        if not found:
            raise not_found('Get-ADDomain', identity, dse['defaultNamingContext'][0].decode())
        domain = found[0]
        config = dse['configurationNamingContext'][0].decode()
        conn.search('CN=Partitions,' + config, '(&(objectClass=crossRef)(nCName=%s))'
                    % ldap3.utils.conv.escape_filter_chars(domain['dn']), search_scope=ldap3.LEVEL,
                    attributes=['netBIOSName', 'dnsRoot'])
        cross = [e for e in conn.response or [] if e.get('type') == 'searchResEntry']
        cross = cross[0]['raw_attributes'] if cross else {}
        forest = dse['rootDomainNamingContext'][0].decode()
        return {
            'root_dse': attributes_out(dse, data.get('root_dse_attributes')),
            'domain': {
                'distinguished_name': domain['dn'],
                'dns_root': (cross.get('dnsRoot') or [b''])[0].decode(),
                'netbios_name': (cross.get('netBIOSName') or [b''])[0].decode(),
                'forest': '.'.join(p.split('=', 1)[1] for p in forest.split(',')).lower(),
                'objectSid': value_out('objectSid', domain['raw_attributes']['objectSid'][0]),
                'objectGUID': value_out('objectGUID', domain['raw_attributes']['objectGUID'][0]),
            },
            'user': host['ad'].get('run_as') or host['ad']['username'],
            'computer_name': host['computer_name'],
        }
    finally:
        conn.unbind()


def fake_ad_search(host, data):
    """Get-ADObject -LDAPFilter -SearchBase -SearchScope -Properties [-ResultSetSize]."""
    import ldap3
    from ldap3.core.exceptions import LDAPException

    scopes = {'Base': ldap3.BASE, 'OneLevel': ldap3.LEVEL, 'Subtree': ldap3.SUBTREE}
    if data.get('scope') not in scopes:
        raise error('Get-ADObject', "Cannot bind parameter 'SearchScope'. Cannot convert value \"%s\" to type "
                    "\"Microsoft.ActiveDirectory.Management.ADSearchScope\"." % data.get('scope'),
                    'System.Management.Automation.ParameterBindingException', 'InvalidArgument',
                    kind='CannotConvertArgumentNoMessage')
    names = [n for n in data.get('attributes') or [] if n]
    conn = connect(host, data, 'Get-ADObject')
    try:
        try:
            entries = conn.extend.standard.paged_search(
                data['base'], data['filter'], search_scope=scopes[data['scope']], attributes=names or ['1.1'],
                paged_size=1000, generator=False, size_limit=int(data.get('size_limit') or 0))
        except LDAPException as exc:
            raise error('Get-ADObject', 'The search filter cannot be recognized (%s)' % exc, AD_NS + '.ADException',
                        'NotSpecified')
        if (conn.result or {}).get('result') not in (0, 4, None):
            raise ldap_error('Get-ADObject', conn, data['base'])
        return {'objects': [{'dn': e['dn'], 'attributes': attributes_out(e.get('raw_attributes') or {}, names)}
                            for e in entries or [] if e.get('type') == 'searchResEntry']}
    finally:
        conn.unbind()


def _identity(conn, dn):
    entry = read(conn, dn, ['objectSid', 'objectGUID'])
    raw = entry['raw_attributes']
    return {'dn': entry['dn'],
            'objectSid': value_out('objectSid', raw['objectSid'][0]) if raw.get('objectSid') else '',
            'objectGUID': value_out('objectGUID', raw['objectGUID'][0])}


def _unicode_pwd(password):
    return ('"%s"' % password).encode('utf-16-le')


def fake_ad_new(host, data):
    """New-ADServiceAccount / New-ADGroup / New-ADUser / New-ADObject, by kind."""
    import ldap3

    kind = data.get('kind')
    command = {'service_account': 'New-ADServiceAccount', 'group': 'New-ADGroup', 'user': 'New-ADUser'}.get(
        kind, 'New-ADObject')
    conn = connect(host, data, command)
    try:
        dn = data['dn']
        attributes = table_in(data.get('other_attributes'))
        if kind == 'service_account':
            if not data.get('dns_host_name'):
                raise error(command, 'Parameter set cannot be resolved using the specified named parameters.',
                            'System.Management.Automation.ParameterBindingException', 'InvalidArgument',
                            kind='AmbiguousParameterSet')
            classes = GMSA_CLASSES
            attributes.update(sAMAccountName=data['sam_account_name'], dNSHostName=data['dns_host_name'],
                              userAccountControl=str(0x1000 | (0 if data.get('enabled', True) else 0x2)))
        elif kind == 'group':
            scope = {'DomainLocal': 0x4, 'Global': 0x2, 'Universal': 0x8}[data['group_scope']]
            value = scope | (0x80000000 if data.get('group_category') == 'Security' else 0)
            classes = ['top', 'group']
            attributes.update(sAMAccountName=data['sam_account_name'],
                              groupType=str(value - (1 << 32) if value & 0x80000000 else value))
        elif kind == 'user':
            classes = ['top', 'person', 'organizationalPerson', 'user']
            attributes.update(sAMAccountName=data['sam_account_name'], userAccountControl=str(0x202))
            if data.get('user_principal_name'):
                attributes['userPrincipalName'] = data['user_principal_name']
        else:
            classes = data['object_class']
        # the cmdlet sends -Name as the RDN value: the DN it asks for is CN=<escaped name>,<path>
        wanted = 'CN=%s,%s' % (ldap3.utils.dn.escape_rdn(data['name']), data['path'])
        if wanted.lower() != dn.lower():
            raise error(command, 'lab: the name and path do not make the DN %s (got %s)' % (dn, wanted),
                        AD_NS + '.ADException', 'NotSpecified')
        if not conn.add(wanted, classes, dict((k, v) for k, v in attributes.items() if v not in ([], None))):
            raise ldap_error(command, conn, wanted)
        if kind == 'user':
            # New-ADUser: the account exists now; then the password, then the account control flags
            changes = {}
            if data.get('password') is not None:
                if not conn.modify(wanted, {'unicodePwd': [(ldap3.MODIFY_REPLACE, [_unicode_pwd(data['password'])])]}):
                    result = conn.result
                    conn.delete(wanted)  # the script's catch: Remove-ADUser of the half-made account
                    conn.result = result
                    if result.get('result') == 19:
                        raise error(command, 'The password does not meet the length, complexity, or history '
                                    'requirement of the domain.', AD_NS + '.ADPasswordComplexityException',
                                    'InvalidData')
                    raise ldap_error(command, conn, wanted)
            uac = 0x200 | (0x10000 if data.get('password_never_expires') else 0) | \
                (0 if data.get('enabled') and data.get('password') is not None else 0x2)
            changes['userAccountControl'] = [(ldap3.MODIFY_REPLACE, [str(uac)])]
            if not conn.modify(wanted, changes):
                raise ldap_error(command, conn, wanted)
        return _identity(conn, wanted)
    finally:
        conn.unbind()


def _check_kind(conn, command, kind, dn):
    classes = classes_of(conn, dn)
    if classes is None or (kind == 'service_account' and 'msds-groupmanagedserviceaccount' not in classes):
        raise not_found(command, dn, domain_dn(conn))


def fake_ad_set(host, data):
    """Set-ADAccountPassword -Reset, then Set-ADServiceAccount / Set-ADObject -Remove -Add -Replace -Clear."""
    import ldap3

    command = 'Set-ADServiceAccount' if data.get('kind') == 'service_account' else 'Set-ADObject'
    conn = connect(host, data, command)
    try:
        dn = data['identity']
        if data.get('password') is not None:
            if classes_of(conn, dn) is None:
                raise not_found('Set-ADAccountPassword', dn, domain_dn(conn))
            if not conn.modify(dn, {'unicodePwd': [(ldap3.MODIFY_REPLACE, [_unicode_pwd(data['password'])])]}):
                if (conn.result or {}).get('result') == 19:
                    raise error('Set-ADAccountPassword', 'The password does not meet the length, complexity, or '
                                'history requirement of the domain.', AD_NS + '.ADPasswordComplexityException',
                                'InvalidData')
                raise ldap_error('Set-ADAccountPassword', conn, dn)
        changes = {}
        for operation, ldap_op in (('remove', ldap3.MODIFY_DELETE), ('add', ldap3.MODIFY_ADD),
                                   ('replace', ldap3.MODIFY_REPLACE)):
            for name, values in table_in(data.get(operation)).items():
                changes.setdefault(name, []).append((ldap_op, values))
        for name in data.get('clear') or []:
            changes.setdefault(name, []).append((ldap3.MODIFY_REPLACE, []))
        if changes:
            _check_kind(conn, command, data.get('kind'), dn)
            # -Remove, -Add, -Replace, -Clear of one call in one LDAP modify (Remove first, as the cmdlet orders
            # them): a -Remove of a value that is no longer stored (a guarded grant that met a concurrent change)
            # fails as the DC answers it, and nothing of the call is written
            if not conn.modify(dn, changes):
                raise ldap_error(command, conn, dn)
        return {'dn': dn}
    finally:
        conn.unbind()


def fake_ad_remove(host, data):
    """Remove-ADServiceAccount / Remove-ADObject -Confirm:$false."""
    command = 'Remove-ADServiceAccount' if data.get('kind') == 'service_account' else 'Remove-ADObject'
    conn = connect(host, data, command)
    try:
        _check_kind(conn, command, data.get('kind'), data['identity'])
        if not conn.delete(data['identity']):
            raise ldap_error(command, conn, data['identity'])
        return {'dn': data['identity']}
    finally:
        conn.unbind()


def fake_ad_test_password(host, data):
    """Get-ADObject -Identity -Credential: an authentication with the account's password."""
    conn = connect(host, data, 'Get-ADObject')
    conn.unbind()
    user = connect(host, data, 'Get-ADObject', user=data['identity'], password=data['password'])
    if user is None:
        return {'valid': False, 'message': 'The server has rejected the client credentials.'}
    user.unbind()
    return {'valid': True}


def _kds_constants():
    """The RFC 5114 DH group of the collection's kds.py (public constants), read without importing it."""
    with open(os.path.join(HERE, '..', '..', 'plugins', 'module_utils', 'ad', 'kds.py'), encoding='utf-8') as handle:
        tree = ast.parse(handle.read())
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) in ('_DH_P', '_DH_G'):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return bytes.fromhex(values['_DH_P']), bytes.fromhex(values['_DH_G'])


def fake_ad_kds_keys(host, data):
    """Get-KdsRootKey: every root key of the forest (the script returns only the key's length)."""
    import ldap3

    conn = connect(host, {}, 'Get-KdsRootKey')
    try:
        container = ROOT_KEYS + root_dse(conn)['configurationNamingContext'][0].decode()
        conn.search(container, '(objectClass=msKds-ProvRootKey)', search_scope=ldap3.LEVEL, attributes=['*'])
        keys = []
        for entry in conn.response or []:
            if entry.get('type') != 'searchResEntry':
                continue
            raw = dict((k.lower(), v) for k, v in entry['raw_attributes'].items())

            def first(name, default=None):
                return raw[name.lower()][0].decode() if raw.get(name.lower()) else default

            keys.append({
                'id': first('cn'), 'version': first('msKds-Version'), 'create_time': first('msKds-CreateTime'),
                'use_start_time': first('msKds-UseStartTime'), 'kdf_algorithm': first('msKds-KDFAlgorithmID'),
                'kdf_parameters': value_out('msKds-KDFParam', raw['mskds-kdfparam'][0]) if raw.get('mskds-kdfparam') else None,
                'key_length': len(raw['mskds-rootkeydata'][0]) if raw.get('mskds-rootkeydata') else 0,
                'domain_controller': first('msKds-DomainID', ''),
            })
        return {'keys': keys}
    finally:
        conn.unbind()


def fake_ad_kds_add(host, data):
    """Add-KdsRootKey -EffectiveImmediately | -EffectiveTime: a key written by the DC the host is."""
    conn = connect(host, {}, 'Add-KdsRootKey')
    try:
        now = datetime.datetime.now(datetime.timezone.utc)
        delta = now - NT_EPOCH
        ticks_now = (delta.days * 86400 + delta.seconds) * 10 ** 7 + delta.microseconds * 10
        start = ticks_now if data.get('effective_immediately') else int(data['effective_time'])
        dse = root_dse(conn)
        server = read(conn, dse['serverName'][0].decode(), ['serverReference'])
        p, g = _kds_constants()
        name = ('SHA512' + '\x00').encode('utf-16-le')
        key_id = str(uuid.uuid4())
        attributes = {
            'msKds-Version': '1', 'msKds-KDFAlgorithmID': 'SP800_108_CTR_HMAC',
            'msKds-KDFParam': struct.pack('<IIII', 0, 1, len(name), 0) + name,
            'msKds-SecretAgreementAlgorithmID': 'DH',
            'msKds-SecretAgreementParam': struct.pack('<I4sI', 12 + len(p) + len(g), b'DHPM', len(p)) + p + g,
            'msKds-PublicKeyLength': '2048', 'msKds-PrivateKeyLength': '512', 'msKds-RootKeyData': os.urandom(64),
            'msKds-CreateTime': str(ticks_now), 'msKds-UseStartTime': str(start),
            'msKds-DomainID': server['raw_attributes']['serverReference'][0].decode(),
        }
        dn = 'CN=%s,%s%s' % (key_id, ROOT_KEYS, dse['configurationNamingContext'][0].decode())
        if not conn.add(dn, 'msKds-ProvRootKey', attributes):
            raise ldap_error('Add-KdsRootKey', conn, dn)
        return {'id': key_id}
    finally:
        conn.unbind()


def fake_ad_lab_ping(host, data):
    """Lab-only: whether this endpoint has the AD imitations (the fixture checks it)."""
    return {'ad': bool(host.get('ad'))}


FAKE_SCRIPTS = {
    'ad_facts': fake_ad_facts,
    'ad_search': fake_ad_search,
    'ad_new': fake_ad_new,
    'ad_set': fake_ad_set,
    'ad_remove': fake_ad_remove,
    'ad_test_password': fake_ad_test_password,
    'ad_kds_keys': fake_ad_kds_keys,
    'ad_kds_add': fake_ad_kds_add,
    'ad_lab_ping': fake_ad_lab_ping,
}
