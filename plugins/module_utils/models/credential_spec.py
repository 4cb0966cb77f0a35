# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credential spec content for a gMSA: the JSON that Microsoft's New-CredentialSpec writes.

Pure model, no I/O. ``build_credential_spec(domain, account, ...)`` returns a dict::

    {
      "CmsPlugins": ["ActiveDirectory"],
      "DomainJoinConfig": {"Sid": <domain SID>, "MachineAccountName": <gMSA>, "Guid": <domain GUID>,
                           "DnsTreeName": <forest root DNS>, "DnsName": <domain DNS>,
                           "NetBiosName": <NetBIOS>},
      "ActiveDirectoryConfig": {
        "GroupManagedServiceAccounts": [{"Name": <gMSA>, "Scope": <domain DNS>},
                                        {"Name": <gMSA>, "Scope": <NetBIOS>}, ...additional accounts],
        "HostAccountConfig": {"PortableCcgVersion": "1", "PluginGUID": ..., "PluginInput": ...}  # optional
      }
    }

``domain`` is the result of the winkube.gmsa.domain_info module (keys ``dns_name``, ``netbios_name``,
``domain_guid``, ``domain_sid``, ``forest_dns_name``); PascalCase keys as in DomainJoinConfig are
accepted too. ``Sid`` is the *domain* SID, as New-CredentialSpec writes it, not the gMSA's.
"""

from __future__ import annotations

import json
import re
import uuid

AZURE_KEY_VAULT_PLUGIN_GUID = '{CCC2A336-D7F3-4818-A213-272B7924213E}'
AWS_SECRETS_MANAGER_PLUGIN_GUID = '{859E1386-BDB4-49E8-85C7-3070B13920E1}'

_DOMAIN_KEYS = {
    'dns_name': ('dns_name', 'DnsName', 'dns_domain'),
    'netbios_name': ('netbios_name', 'NetBiosName'),
    'domain_guid': ('domain_guid', 'Guid', 'guid'),
    'domain_sid': ('domain_sid', 'Sid', 'sid'),
    'forest_dns_name': ('forest_dns_name', 'DnsTreeName', 'forest_dns'),
}

# Characters AD refuses in sAMAccountName (plus whitespace at the ends).
_BAD_ACCOUNT_CHARS = re.compile(r'["/\\\[\]:;|=,+*?<>@]')
_SID = re.compile(r'^S-1-5-21(-\d+){3}$', re.IGNORECASE)
# A DNS name (labels of letters, digits, '-' and '_', at most 253 characters); also the domain check of pod_ladder.
DNS_NAME = re.compile(r'^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$')
_NETBIOS_BAD = re.compile(r'[\\/:*?"<>|.]')


class CredentialSpecError(ValueError):
    """The inputs cannot make a valid credential spec."""


def _domain_value(domain, key):
    for name in _DOMAIN_KEYS[key]:
        value = domain.get(name)
        if value not in (None, ''):
            return str(value)
    raise CredentialSpecError('domain facts lack %s (pass the result of winkube.gmsa.domain_info)' % key)


def account_name(name):
    """Normalise a gMSA name: strip whitespace and the trailing ``$`` of its sAMAccountName."""
    if not isinstance(name, str) or not name.strip():
        raise CredentialSpecError('a gMSA name must be a non-empty string, got %r' % (name,))
    value = name.strip()
    if value.endswith('$'):
        value = value[:-1]
    if not value or _BAD_ACCOUNT_CHARS.search(value) or value != value.strip():
        raise CredentialSpecError('invalid gMSA account name %r' % name)
    return value


def normalize_domain(domain):
    """Check and normalise the domain facts. Returns dict(dns_name, netbios_name, guid, sid, forest)."""
    if not isinstance(domain, dict):
        raise CredentialSpecError('domain facts must be a dict (the result of winkube.gmsa.domain_info)')
    dns_name = _domain_value(domain, 'dns_name').rstrip('.').lower()
    forest = _domain_value(domain, 'forest_dns_name').rstrip('.').lower()
    netbios = _domain_value(domain, 'netbios_name').upper()
    sid = _domain_value(domain, 'domain_sid').upper()
    guid_text = _domain_value(domain, 'domain_guid')
    for label, value in (('DNS name', dns_name), ('forest DNS name', forest)):
        if not DNS_NAME.match(value):
            raise CredentialSpecError('invalid domain %s %r' % (label, value))
    if len(netbios) > 15 or _NETBIOS_BAD.search(netbios):
        raise CredentialSpecError('invalid NetBIOS domain name %r' % netbios)
    if not _SID.match(sid):
        raise CredentialSpecError('%r is not a domain SID (S-1-5-21-a-b-c); pass the domain SID, not an '
                                  'account SID' % sid)
    try:
        guid = str(uuid.UUID(guid_text.strip('{}')))
    except ValueError:
        raise CredentialSpecError('invalid domain GUID %r' % guid_text)
    return dict(dns_name=dns_name, netbios_name=netbios, guid=guid, sid=sid, forest=forest)


def _additional_entries(item, facts):
    """An additional account: a name (both scopes of this domain) or {name, scope}."""
    if isinstance(item, dict):
        name = item.get('name') or item.get('Name') or item.get('AccountName')
        scope = item.get('scope') or item.get('Scope') or item.get('domain') or item.get('Domain')
        if not scope:
            return [dict(Name=account_name(name), Scope=facts['dns_name']),
                    dict(Name=account_name(name), Scope=facts['netbios_name'])]
        return [dict(Name=account_name(name), Scope=str(scope))]
    return [dict(Name=account_name(item), Scope=facts['dns_name']),
            dict(Name=account_name(item), Scope=facts['netbios_name'])]


_OBJECT_ID = re.compile(r'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
# https://<vault>.<vault DNS suffix>/secrets/<name>[/<version>]: vault names are 3-24 characters, secret
# names 1-127 of [0-9a-zA-Z-]; no query, fragment, user information or port
_SECRET_URI = re.compile(r'^https://(?P<vault>[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9])\.(?P<suffix>[a-z0-9.-]+)'
                         r'/secrets/(?P<name>[0-9A-Za-z-]{1,127})(/(?P<version>[0-9a-fA-F]{32}))?/?$')
_AWS_ARN = re.compile(r'^arn:aws(-[a-z]+)*:(secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+'
                      r'|ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9/_.-]+)$')
_HOST_KEYS = {
    'azure_key_vault': ('plugin', 'object_id', 'secret_uri'),
    'aws': ('plugin', 'credential_arn'),
    'custom': ('plugin_guid', 'plugin_input', 'portable_ccg_version'),
}
PLUGIN_ALIASES = {'azure': 'azure_key_vault', 'azure_key_vault': 'azure_key_vault', 'akv': 'azure_key_vault',
                  'aws': 'aws', 'aws_secrets_manager': 'aws'}


def _no_control(label, value):
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise CredentialSpecError('%s must not contain control characters (NUL, line breaks)' % label)


def host_account_config(plugin_guid, plugin_input, portable_ccg_version='1'):
    """HostAccountConfig for non-domain-joined hosts (ccg.exe plugin), any plugin."""
    if not plugin_guid or plugin_input in (None, '', {}, []):
        raise CredentialSpecError('host_account_config needs plugin_guid and plugin_input')
    guid_text = str(plugin_guid).strip()
    if not re.match(r'^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$', guid_text) \
            or guid_text.startswith('{') != guid_text.endswith('}'):
        raise CredentialSpecError('plugin_guid %r is not a GUID (write it as {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}, '
                                  'the CLSID the plugin registers under HKLM\\SYSTEM\\CurrentControlSet\\Control'
                                  '\\CCG\\COMClasses)' % (plugin_guid,))
    parsed = uuid.UUID(guid_text.strip('{}'))
    if isinstance(plugin_input, (dict, list)):
        plugin_input = json.dumps(plugin_input)
    plugin_input = str(plugin_input)
    _no_control('plugin_input', plugin_input)
    if str(portable_ccg_version) != '1':
        raise CredentialSpecError('portable_ccg_version must be "1", the only version ccg.exe knows (got %r)'
                                  % (portable_ccg_version,))
    return dict(PortableCcgVersion='1', PluginGUID='{%s}' % str(parsed).upper(), PluginInput=plugin_input)


def check_secret_uri(secret_uri):
    """A Key Vault secret identifier: https://<vault>.vault.azure.net/secrets/<name>[/<version>]."""
    value = str(secret_uri or '').strip()
    match = _SECRET_URI.match(value)
    if not match or not (match.group('suffix').startswith('vault.') or match.group('suffix').startswith('managedhsm.')):
        raise CredentialSpecError(
            'secret_uri %r is not a Key Vault secret URI: expected https://<vault>.vault.azure.net/secrets/<name> '
            '(optionally /<32-hex version>; the vault DNS suffix of your cloud, e.g. vault.azure.cn), without '
            'query, port, ";" or blanks' % (secret_uri,))
    return value


def azure_key_vault_host_account(object_id, secret_uri):
    """HostAccountConfig for the Azure Key Vault ccg plugin (managed identity + secret URI), as AKS documents."""
    object_text = str(object_id or '').strip()
    if not _OBJECT_ID.match(object_text):
        raise CredentialSpecError('object_id %r is not the object ID (a GUID) of a managed identity, e.g. the '
                                  'kubelet identity: az aks show --query identityProfile.kubeletidentity.objectId'
                                  % (object_id,))
    uri = check_secret_uri(secret_uri)
    return host_account_config(AZURE_KEY_VAULT_PLUGIN_GUID, 'ObjectId=%s;SecretUri=%s' % (object_text, uri))


def aws_host_account(credential_arn):
    """HostAccountConfig for the AWS ccg plugin: PluginInput is the JSON text {"credentialArn": ...}."""
    arn = str(credential_arn or '').strip()
    if not _AWS_ARN.match(arn):
        raise CredentialSpecError('credential_arn %r is not the ARN of a Secrets Manager secret '
                                  '(arn:aws:secretsmanager:<region>:<account>:secret:<name>) or an SSM parameter '
                                  '(arn:aws:ssm:<region>:<account>:parameter/<name>)' % (credential_arn,))
    # the form of Amazon's documentation, byte for byte: json.dumps with its default separators
    return host_account_config(AWS_SECRETS_MANAGER_PLUGIN_GUID, json.dumps({'credentialArn': arn}))


def _host_config_from(value):
    if value is None or isinstance(value, dict) and not value:
        return None
    if not isinstance(value, dict):
        raise CredentialSpecError('host_account_config must be a dict')
    keys = {str(k).lower(): v for k, v in value.items()}
    plugin = str(keys.get('plugin') or '').lower()
    if plugin and plugin not in PLUGIN_ALIASES:
        raise CredentialSpecError('unknown host account plugin %r (azure_key_vault, aws, or give plugin_guid '
                                  'and plugin_input)' % plugin)
    kind = PLUGIN_ALIASES.get(plugin, 'custom')
    unknown = sorted(set(keys) - set(_HOST_KEYS[kind]))
    if unknown:
        raise CredentialSpecError('host_account_config for %s does not take %s (it takes %s)'
                                  % ('plugin ' + kind if plugin else 'a custom plugin', ', '.join(unknown),
                                     ', '.join(_HOST_KEYS[kind])))
    if kind == 'azure_key_vault':
        return azure_key_vault_host_account(keys.get('object_id'), keys.get('secret_uri'))
    if kind == 'aws':
        return aws_host_account(keys.get('credential_arn'))
    return host_account_config(keys.get('plugin_guid'), keys.get('plugin_input'),
                               keys.get('portable_ccg_version') or '1')


def build_credential_spec(domain, account, additional_accounts=None, host_account=None):
    """The credential spec dict for gMSA ``account`` in ``domain`` (see module docstring)."""
    facts = normalize_domain(domain)
    name = account_name(account)
    accounts = [dict(Name=name, Scope=facts['dns_name']), dict(Name=name, Scope=facts['netbios_name'])]
    for item in additional_accounts or []:
        for entry in _additional_entries(item, facts):
            if entry not in accounts:
                accounts.append(entry)
    ad_config = dict(GroupManagedServiceAccounts=accounts)
    host = _host_config_from(host_account)
    if host:
        ad_config['HostAccountConfig'] = host
    return {
        'CmsPlugins': ['ActiveDirectory'],
        'DomainJoinConfig': {
            'Sid': facts['sid'],
            'MachineAccountName': name,
            'Guid': facts['guid'],
            'DnsTreeName': facts['forest'],
            'DnsName': facts['dns_name'],
            'NetBiosName': facts['netbios_name'],
        },
        'ActiveDirectoryConfig': ad_config,
    }


def validate_credential_spec(spec):
    """Problems with a credential spec against the GMSACredentialSpec CRD schema (empty list: valid)."""
    problems = []
    if not isinstance(spec, dict):
        return ['credential spec must be an object']
    plugins = spec.get('CmsPlugins')
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        problems.append('CmsPlugins must be a list of strings')
    join = spec.get('DomainJoinConfig')
    if not isinstance(join, dict):
        problems.append('DomainJoinConfig missing')
    else:
        for key in ('Sid', 'MachineAccountName', 'Guid', 'DnsTreeName', 'DnsName', 'NetBiosName'):
            if not isinstance(join.get(key), str) or not join.get(key):
                problems.append('DomainJoinConfig.%s must be a non-empty string' % key)
    ad_config = spec.get('ActiveDirectoryConfig')
    if not isinstance(ad_config, dict):
        problems.append('ActiveDirectoryConfig missing')
    else:
        accounts = ad_config.get('GroupManagedServiceAccounts')
        if not isinstance(accounts, list) or not accounts:
            problems.append('ActiveDirectoryConfig.GroupManagedServiceAccounts must be a non-empty list')
        else:
            for index, entry in enumerate(accounts):
                if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ('Name', 'Scope')):
                    problems.append('GroupManagedServiceAccounts[%d] needs string Name and Scope' % index)
        host = ad_config.get('HostAccountConfig')
        if host is not None:
            if not isinstance(host, dict) or not all(isinstance(host.get(k), str)
                                                     for k in ('PortableCcgVersion', 'PluginGUID', 'PluginInput')):
                problems.append('HostAccountConfig needs string PortableCcgVersion, PluginGUID and PluginInput')
    known = {'CmsPlugins', 'DomainJoinConfig', 'ActiveDirectoryConfig'}
    for key in spec:
        if key not in known:
            problems.append('unknown top-level field %s (the CRD would prune it)' % key)
    return problems


_LONE_SURROGATE = re.compile('[\ud800-\udfff]')
# Go's encoding/json escapes these for HTML safety; Python's json.dumps does not.
_GO_ESCAPES = {'<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029'}


def _prune(value, schema):
    """Keep what the GMSACredentialSpec CRD keeps: the API server drops fields its schema does not list."""
    if isinstance(value, dict) and 'properties' in schema:  # null fields are dropped too (none is nullable)
        return dict((k, _prune(v, schema['properties'][k])) for k, v in value.items()
                    if k in schema['properties'] and v is not None)
    if isinstance(value, list) and 'items' in schema:
        return [_prune(v, schema['items']) for v in value]
    return value


def to_json(spec):
    """The one serialisation of a credential spec, shared by every output (Kubernetes and Docker).

    Byte for byte what the windows-gmsa webhook puts into pods' gmsaCredentialSpec: Go's json.Marshal of the
    resource's ``credspec`` as the API server keeps it (leaves as strings, fields outside the CRD schema
    dropped), i.e. compact, keys sorted, UTF-8, with <, >, &, U+2028 and U+2029 escaped.
    """
    from ansible_collections.winkube.gmsa.plugins.module_utils.models.crd import credspec_schema, stringify_leaves

    kept = _prune(stringify_leaves(spec), credspec_schema()['properties']['credspec'])
    text = json.dumps(kept, separators=(',', ':'), sort_keys=True, ensure_ascii=False)
    text = _LONE_SURROGATE.sub('\ufffd', text)
    return re.sub('[<>&\u2028\u2029]', lambda match: _GO_ESCAPES[match.group(0)], text)


def to_bytes(spec):
    """:func:`to_json` as UTF-8 bytes without BOM: the content of a Docker credential spec file."""
    return to_json(spec).encode('utf-8')
