# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``backend: winrm``: the ActiveDirectory PowerShell cmdlets on one Windows host over WinRM (scripts in
ad/cmdlets.py, run by winrm/runner.py), behind the same interface as ldap_client.Directory.

Reads: searches return ``ldap_client.Entry`` objects with the raw values the LDAP backend returns (binary
attributes as bytes, object classes as their chain), so engine.py plans the same way on both backends.

Writes: the cmdlet writer. The plan's operations arrive as ``create``/``update``/``remove`` with the module's
``reconciler.ObjectType``: its ``cmdlet`` noun picks New-/Set-/Remove-AD*, the option values (not LDAP
encodings such as userAccountControl or unicodePwd) fill the New-AD* cmdlet's named parameters, and the rows
say which attribute values are integers or security descriptors. The LDAP-shaped ``add``/``modify``/``delete``
are refused. Cmdlet errors become the LDAP backend's ``ADError`` subclasses (with the cmdlet's message).

Round trips: one WinRM command at connect time reads every fact (RootDSE, domain, NetBIOS name); each search
is one command returning every object with every asked attribute; each write is one command (an add also
returns the new object's SID and GUID, which a following ``get`` of those attributes reuses).

NOT VERIFIED AGAINST WINDOWS: see cmdlets.py.
"""

from __future__ import annotations

import base64

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.dn import normalize_dn, parent_dn, split_dn
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.ldap_client import (
    ADAlreadyExists,
    ADConnectionError,
    ADConstraintViolation,
    ADError,
    ADInsufficientAccess,
    ADNoSuchObject,
    Directory,
    Entry,
    as_list,
    needed_right,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import cmdlets as ad_scripts
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import engine
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import check_connection
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import (
    PowerShellError,
    Runner,
    WinRMRunError,
    require_winrm,
)

ROOT_DSE_ATTRIBUTES = [
    'defaultNamingContext', 'configurationNamingContext', 'schemaNamingContext', 'rootDomainNamingContext',
    'dnsHostName', 'serverName', 'domainFunctionality', 'forestFunctionality', 'domainControllerFunctionality',
    'supportedLDAPVersion', 'supportedControl', 'supportedSASLMechanisms', 'isGlobalCatalogReady',
    'ldapServiceName', 'currentTime', 'vendorName', 'vendorVersion',
]
SCOPES = {'base': 'Base', 'one': 'OneLevel', 'level': 'OneLevel', 'onelevel': 'OneLevel', 'subtree': 'Subtree'}

# Get-ADObject returns ObjectClass as the object's structural class only; the LDAP backend sees the whole
# chain. The chains of the classes the modules look at, so both backends give the engine the same values.
CLASS_CHAINS = dict((chain[-1].lower(), chain) for chain in (
    ['top', 'person', 'organizationalPerson', 'user'],
    ['top', 'person', 'organizationalPerson', 'user', 'inetOrgPerson'],
    ['top', 'person', 'organizationalPerson', 'user', 'computer'],
    ['top', 'person', 'organizationalPerson', 'user', 'computer', 'msDS-GroupManagedServiceAccount'],
    ['top', 'person', 'organizationalPerson', 'user', 'computer', 'msDS-ManagedServiceAccount'],
    ['top', 'group'],
    ['top', 'organizationalUnit'],
    ['top', 'container'],
    ['top', 'msKds-ProvRootKey'],
))
# The named parameters of each New-AD* cmdlet (cmdlets.AD_NEW), by the ObjectType's cmdlet noun: which option
# value each takes. The attributes of the rows of these options are not sent again in -OtherAttributes.
PARAMETERS = {
    'ADServiceAccount': ('service_account', ('sam_account_name', 'dns_host_name', 'enabled')),
    'ADGroup': ('group', ('sam_account_name', 'scope')),
    'ADUser': ('user', ('sam_account_name', 'user_principal_name', 'enabled', 'password_never_expires')),
}
GROUP_SCOPES = {'domainlocal': 'DomainLocal', 'global': 'Global', 'universal': 'Universal'}


def unescape_rdn_value(value):
    """The value of an RDN as a cmdlet's -Name takes it: RFC 4514 escapes (``\\,`` and ``\\c3\\bc``) undone."""
    out, i = bytearray(), 0
    while i < len(value):
        char = value[i]
        if char == '\\' and i + 1 < len(value):
            pair = value[i + 1:i + 3]
            if len(pair) == 2 and all(c in '0123456789abcdefABCDEF' for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out += value[i + 1].encode('utf-8')
            i += 2
            continue
        out += char.encode('utf-8')
        i += 1
    return out.decode('utf-8')


def split_rdn(dn):
    """(name, parent DN) of a DN: the unescaped value of its first RDN and the rest."""
    first = split_dn(dn)[0] if split_dn(dn) else ''
    _attr, _sep, value = first.partition('=')
    return unescape_rdn_value(value.strip()), parent_dn(dn)


def to_raw(value):
    """One value of a script's answer (a string or {"b": base64}) as the bytes the LDAP backend would hold."""
    if isinstance(value, dict):
        return base64.b64decode(value.get('b') or '')
    if isinstance(value, bool):
        return b'TRUE' if value else b'FALSE'
    return str(value).encode('utf-8')


def to_entry(dn, attributes):
    """An ldap_client.Entry from a script's {name: [values]} (object classes expanded to their chain)."""
    raw = {}
    for name, values in (attributes or {}).items():
        values = values if isinstance(values, list) else [values]
        if name.lower() == 'objectclass' and len(values) == 1:
            values = CLASS_CHAINS.get(str(values[0]).lower(), values)
        items = [to_raw(v) for v in values if v is not None and v != '']
        if items:
            raw[name] = items
    return Entry(dn, raw)


def value_types(object_type):
    """{attribute (lower case): 'i' or 'sd'}: how the rows of ``object_type`` hold their values (integers, security
    descriptors); every other value is a string, or binary ({"b"}) when bytes."""
    types = {}
    for row in object_type.rows:
        if row.kind == 'flag' or isinstance(row.codec, (engine.IntCodec, engine.BitListCodec)):
            types[row.attribute.lower()] = 'i'
        elif getattr(row.codec, 'guarded', False):
            types[row.attribute.lower()] = 'sd'
    return types


def to_data(value, kind=None):
    """One value of a plan (str, bytes, int) as the script's data: a string, {"b"}, {"sd"} or {"i"}."""
    if isinstance(value, (bytes, bytearray)):
        return {kind if kind == 'sd' else 'b': base64.b64encode(bytes(value)).decode('ascii')}
    if isinstance(value, int) or kind == 'i':
        return {'i': str(int(value))}
    return str(value)


def table(object_type, attributes):
    types = value_types(object_type)
    return [{'name': name, 'values': [to_data(v, types.get(name.lower())) for v in as_list(values)]}
            for name, values in attributes.items()]


def service_account_or_object(object_type):
    """The Set-/Remove- cmdlet of AD_SET and AD_REMOVE: *-ADServiceAccount for gMSAs, *-ADObject for the rest."""
    return 'service_account' if object_type.cmdlet == 'ADServiceAccount' else 'object'


class WinRMDirectory(Directory):
    """A Directory whose operations are ActiveDirectory cmdlets on one host (see the module docstring)."""

    def __init__(self, runner, host, server=None, base_dn=None, bound_as=None):
        super(WinRMDirectory, self).__init__(None, base_dn=base_dn, bound_as=bound_as)
        self.runner = runner
        self.host = host
        self.server = server or None
        self.commands = 0  # WinRM commands run (round trips to the host)
        self._created = {}  # normalized DN -> Entry with objectSid/objectGUID of objects this session added

    # -- running scripts -------------------------------------------------------------------------------
    def call(self, script, data, operation, dn=None, object_class=None, attributes=''):
        payload = dict(data, server=self.server)
        self.commands += 1
        try:
            return self.runner.run(self.host, script, payload)
        except PowerShellError as exc:
            raise self.error(exc, operation, dn, object_class, attributes)
        except WinRMRunError as exc:
            field = {'authentication': 'winrm.password', 'tls': 'winrm.ca_trust_path',
                     'connection': 'winrm.hosts'}.get(exc.kind, 'winrm')
            raise ADConnectionError('%s of %s failed, the WinRM connection to %s failed: %s. A rerun completes what '
                                    'is missing.' % (operation, dn or 'RootDSE', self.host, exc), field=field, dn=dn)

    def error(self, exc, operation, dn, object_class=None, attributes=''):
        """The ADError subclass for a cmdlet's error, with the cmdlet's message."""
        details = exc.details or {}
        message = details.get('message') or str(exc)
        category = details.get('category') or ''
        kind = ' '.join(str(details.get(key) or '') for key in ('exception', 'error_id'))
        cmdlet = '%s: %s' % (details['command'], message) if details.get('command') else message
        where = dn or 'RootDSE'
        who = self.bound_as or 'the WinRM account'
        if 'ADIdentityNotFoundException' in kind or category == 'ObjectNotFound':
            return ADNoSuchObject('%s of %s failed: no such object (%s)' % (operation, where, cmdlet), code=32, dn=dn,
                                  server_message=message)
        if 'AlreadyExists' in kind or category == 'ResourceExists':
            return ADAlreadyExists('cannot add %s: an object with this name already exists (%s)' % (where, cmdlet),
                                   code=68, dn=dn, server_message=message)
        if 'UnauthorizedAccessException' in kind or category in ('PermissionDenied', 'SecurityError'):
            return ADInsufficientAccess('%s of %s refused: insufficient access rights; %s needs %s (%s)'
                                        % (operation, where, who, needed_right(operation, dn, object_class, attributes),
                                           cmdlet), code=50, dn=dn, server_message=message)
        if 'PasswordComplexity' in kind or 'InvalidPassword' in kind or 'constraint' in message.lower():
            return ADConstraintViolation('%s of %s refused: constraint violation on %s (%s)'
                                         % (operation, where, attributes or 'the request', cmdlet), code=19, dn=dn,
                                         server_message=message)
        if 'ADServerDownException' in kind:
            field = 'server' if self.server else 'winrm.hosts'
            target = 'the domain controller %s' % self.server if self.server else 'a domain controller'
            return ADConnectionError('%s of %s failed: the AD cmdlets on %s cannot reach %s (%s). Check %s.'
                                     % (operation, where, self.host, target, cmdlet, field), field=field, dn=dn)
        if 'Modules_ModuleNotFound' in kind or 'ActiveDirectory' in message and 'not loaded' in message:
            return ADConnectionError('%s has no ActiveDirectory PowerShell module (%s); install RSAT-AD-PowerShell '
                                     'or point winrm.hosts at a domain controller' % (self.host, cmdlet),
                                     field='winrm.hosts')
        return ADError('%s of %s failed: %s' % (operation, where, cmdlet), dn=dn, server_message=message)

    # -- facts ---------------------------------------------------------------------------------------------
    def load_facts(self):
        """Read the RootDSE, the domain and the NetBIOS name in one command (the bind of this backend)."""
        result = self.call(ad_scripts.AD_FACTS, {'base_dn': self._base_dn, 'root_dse_attributes': ROOT_DSE_ATTRIBUTES},
                           'read of the RootDSE and the domain')
        self._root_dse = to_entry('', result.get('root_dse'))
        domain = result.get('domain') or {}
        self._domain = to_entry(domain.get('distinguished_name'), {
            'objectSid': [domain.get('objectSid')], 'objectGUID': [domain.get('objectGUID')]})
        self._netbios = domain.get('netbios_name') or None
        if not self.bound_as:
            self.bound_as = result.get('user') or None
        return result

    # -- the Directory operations ------------------------------------------------------------------------
    def search(self, base, ldap_filter, attributes, scope='subtree', controls=None, size_limit=0):
        try:
            search_scope = SCOPES[scope.lower()]
        except KeyError:
            raise ADError('invalid search scope %r (use base, one or subtree)' % scope)
        if isinstance(attributes, str):
            attributes = [attributes]
        if base == '':
            if search_scope != 'Base':
                raise ADError('the RootDSE can only be read with scope base')
            return [self.root_dse]
        data = {'base': base, 'filter': ldap_filter, 'scope': search_scope, 'attributes': list(attributes or []),
                'size_limit': int(size_limit or 0)}
        result = self.call(ad_scripts.AD_SEARCH, data, 'search', base)
        return [to_entry(item.get('dn'), item.get('attributes')) for item in (result or {}).get('objects') or []]

    def get(self, dn, attributes, controls=None):
        created = self._created.get(normalize_dn(dn))
        if created is not None and all(name in created.raw for name in attributes):
            return created
        return super(WinRMDirectory, self).get(dn, attributes, controls=controls)

    # -- the plan's operations: the cmdlet writer (ldap_client.Directory has the LDAP writer's) ---------------
    def create(self, dn, object_type, attributes, values):
        """New-ADServiceAccount / New-ADGroup / New-ADUser (the ObjectType's ``cmdlet``) with its named parameters
        from the option ``values``, the plan's other attributes in -OtherAttributes; New-ADObject otherwise."""
        kind, options = PARAMETERS.get(object_type.cmdlet, ('object', ()))
        named = set(row.attribute.lower() for row in object_type.rows if row.option in options)
        name, path = split_rdn(dn)
        data = {'dn': dn, 'name': name, 'path': path, 'kind': kind, 'object_class': object_type.object_class[-1],
                'other_attributes': table(object_type, dict(
                    (n, v) for n, v in attributes.items() if as_list(v) and n.lower() not in named))}
        data.update((option, values.get(option)) for option in options)
        if kind == 'group':  # engine.group_type: security groups only
            data.update(group_scope=GROUP_SCOPES[values['scope']], group_category='Security')
        if kind == 'user':
            data['password'] = values.get('password')
        result = self.call(ad_scripts.AD_NEW, data, 'add', dn, object_class=data['object_class'],
                           attributes=', '.join(attributes)) or {}
        created = to_entry(result.get('dn') or dn, {'objectSid': [result.get('objectSid')],
                                                    'objectGUID': [result.get('objectGUID')]})
        for key in set((normalize_dn(dn), normalize_dn(created.dn))):  # as asked, and as the server spells it
            self._created[key] = created

    def update(self, dn, object_type, changes, password=None):
        """One Set-ADServiceAccount / Set-ADObject call: LDAP delete -> -Remove, add -> -Add, replace -> -Replace,
        replace with nothing -> -Clear; a password with Set-ADAccountPassword -Reset.

        msDS-GroupMSAMembership comes from the plan as delete-of-the-value-read plus add-of-the-new-value
        (engine.SecurityDescriptorCodec), so the call carries -Remove @{old} -Add @{new} and never -Replace: the
        cmdlet performs Remove before Add, and a value another writer changed meanwhile makes the remove (or the
        add to this single-valued attribute) fail; engine.modify_guarded then reads and plans again. NOT VERIFIED
        AGAINST WINDOWS: that ADWS sends both in one LDAP modify (atomic) and that .NET's ActiveDirectorySecurity
        gives back the stored bytes. If it did not, the remove would fail with the value unchanged and the task
        fails with the cmdlet's error; it never overwrites another run's grant."""
        ops = {'remove': {}, 'add': {}, 'replace': {}}
        clear = []
        for name, change in changes.items():
            for op, values in (change if isinstance(change, list) else [change]):
                if op not in ('replace', 'add', 'delete'):
                    raise ADError('invalid modify operation %r for %s (use replace, add or delete)' % (op, name))
                values = as_list(values)
                if values:
                    ops['remove' if op == 'delete' else op].setdefault(name, []).extend(values)
                else:
                    clear.append(name)
        if not any(ops.values()) and not clear and password is None:
            return
        data = dict((op, table(object_type, attrs)) for op, attrs in ops.items())
        data.update(kind=service_account_or_object(object_type), identity=dn, clear=clear, password=password)
        self.call(ad_scripts.AD_SET, data, 'modify', dn, attributes=', '.join(list(changes) or ['the password']))

    def remove(self, dn, object_type):
        self.call(ad_scripts.AD_REMOVE, {'kind': service_account_or_object(object_type), 'identity': dn}, 'delete', dn)
        self._created.pop(normalize_dn(dn), None)

    # No LDAP-shaped writes here: the plan's operations above carry the object type the cmdlets need.
    def add(self, dn, object_class, attributes):
        raise ADError('backend winrm creates objects with create(dn, object_type, ...), not an LDAP add')

    def modify(self, dn, changes):
        raise ADError('backend winrm changes objects with update(dn, object_type, ...), not an LDAP modify')

    def delete(self, dn):
        raise ADError('backend winrm deletes objects with remove(dn, object_type), not an LDAP delete')

    def close(self):
        pass  # every command had its own WinRM shell; nothing stays open

    # -- beyond LDAP ---------------------------------------------------------------------------------------
    def password_works(self, dn, sam, password):
        """Whether ``password`` authenticates ``sam`` (a failure counts as a failed logon, like a bind)."""
        result = self.call(ad_scripts.AD_TEST_PASSWORD, {'identity': dn, 'password': password,
                                                         'username': '%s\\%s' % (self.netbios_name, sam)},
                           'password check', dn) or {}
        return bool(result.get('valid'))

    def kds_root_key_entries(self, container_dn):
        """The root keys as Get-KdsRootKey shows them, as entries of the LDAP attributes kds.py reads."""
        result = self.call(ad_scripts.AD_KDS_KEYS, {}, 'Get-KdsRootKey', container_dn) or {}
        entries = []
        for key in result.get('keys') or []:
            attributes = {
                'cn': [key.get('id')],
                'msKds-Version': [key.get('version')],
                'msKds-CreateTime': [key.get('create_time')],
                'msKds-UseStartTime': [key.get('use_start_time')],
                'msKds-KDFAlgorithmID': [key.get('kdf_algorithm')],
                'msKds-KDFParam': [key.get('kdf_parameters')],
                'msKds-DomainID': [key.get('domain_controller')],
            }
            entry = to_entry('CN=%s,%s' % (key.get('id'), container_dn), attributes)
            if key.get('key_length'):  # the secret stays on the host; its length is what kds.py judges
                entry.raw['msKds-RootKeyData'] = [bytes(int(key['key_length']))]
            entries.append(entry)
        return entries

    def add_kds_root_key(self, use_start, now, key_id=None):
        """Add-KdsRootKey: -EffectiveImmediately when use_start is now, else -EffectiveTime. Returns the key id
        (the cmdlet picks it; ``key_id`` is only for the LDAP backend)."""
        from ansible_collections.winkube.gmsa.plugins.module_utils.ad.kds import nt_time
        data = {'effective_immediately': use_start == now, 'effective_time': str(nt_time(use_start))}
        result = self.call(ad_scripts.AD_KDS_ADD, data, 'Add-KdsRootKey') or {}
        if not result.get('id'):
            raise ADError('Add-KdsRootKey on %s returned no key id' % self.host)
        return result['id']


def connect(module):
    """A WinRMDirectory for the module's ``winrm`` options, its facts read; fails the module on errors."""
    require_winrm(module)
    params = module.params
    winrm = params.get('winrm') or {}
    errors = ['winrm: %s' % message for message in check_connection(winrm)]
    hosts = winrm.get('hosts') or []
    if len(hosts) > 1:
        errors.append('winrm.hosts: the AD cmdlets run on one host (a domain controller, or a management host with '
                      'the ActiveDirectory PowerShell module); got %d: %s' % (len(hosts), ', '.join(hosts)))
    if errors:
        module.fail_json(msg='; '.join(errors), failed_option='winrm')
    if winrm.get('validate_certs') is False and (winrm.get('scheme') or 'https') == 'https':
        module.warn('winrm.validate_certs=false: the WinRM host\'s TLS certificate is not verified')
    directory = WinRMDirectory(Runner(winrm), hosts[0], server=params.get('server'), base_dn=params.get('base_dn'),
                               bound_as=winrm.get('username'))
    try:
        directory.load_facts()
    except ADConnectionError as exc:
        module.fail_json(msg=exc.message, failed_option=exc.field)
    except ADError as exc:
        module.fail_json(msg=str(exc), failed_option='winrm')
    return directory
