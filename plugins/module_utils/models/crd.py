# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GMSACredentialSpec CRD (as in windows-gmsa v0.13.0) and GMSACredentialSpec resources. Pure, no I/O."""

from __future__ import annotations

import copy
import json

from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    CREDSPEC_LABEL,
    credspec_label_value,
    dns1123_subdomain_error,
    managed_labels,
)

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

CRD_NAME = 'gmsacredentialspecs.windows.k8s.io'
GROUP = 'windows.k8s.io'
KIND = 'GMSACredentialSpec'
PLURAL = 'gmsacredentialspecs'
API_VERSION = GROUP + '/v1'
CRD_API_VERSION = 'apiextensions.k8s.io/v1'
KEP_URL = 'https://github.com/kubernetes/enhancements/tree/master/keps/sig-windows/689-windows-gmsa'


def _string():
    return {'type': 'string'}


def _obj(*names):
    return {'type': 'object', 'properties': dict((n, _string()) for n in names)}


def credspec_schema():
    """openAPIV3Schema of both versions (identical in upstream, so no conversion is needed)."""
    return {
        'type': 'object',
        'properties': {
            'credspec': {
                'description': 'GMSA Credential Spec',
                'type': 'object',
                'properties': {
                    'ActiveDirectoryConfig': {
                        'type': 'object',
                        'properties': {
                            'GroupManagedServiceAccounts': {
                                'type': 'array',
                                'items': _obj('Name', 'Scope'),
                            },
                            'HostAccountConfig': _obj('PluginGUID', 'PluginInput', 'PortableCcgVersion'),
                        },
                    },
                    'CmsPlugins': {'type': 'array', 'items': _string()},
                    'DomainJoinConfig': _obj('DnsName', 'DnsTreeName', 'Guid', 'MachineAccountName',
                                             'NetBiosName', 'Sid'),
                },
            },
        },
    }


def build_crd():
    """The CustomResourceDefinition, equal in content to upstream's gmsa-crd.yml at v0.13.0."""
    return {
        'apiVersion': CRD_API_VERSION,
        'kind': 'CustomResourceDefinition',
        'metadata': {
            'name': CRD_NAME,
            'annotations': {'api-approved.kubernetes.io': KEP_URL},
            'labels': managed_labels('crd'),
        },
        'spec': {
            'group': GROUP,
            'versions': [
                {'name': 'v1alpha1', 'served': True, 'storage': False, 'deprecated': True,
                 'schema': {'openAPIV3Schema': credspec_schema()}},
                {'name': 'v1', 'served': True, 'storage': True,
                 'schema': {'openAPIV3Schema': credspec_schema()}},
            ],
            'conversion': {'strategy': 'None'},
            'names': {'kind': KIND, 'plural': PLURAL},
            'scope': 'Cluster',
        },
    }


_ALLOWED = {
    'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': None, 'HostAccountConfig': None},
    'CmsPlugins': None,
    'DomainJoinConfig': None,
}


def parse_credspec_content(content):
    """Credential spec content given as dict, JSON string or YAML string -> dict.

    Accepts a whole GMSACredentialSpec resource too (its ``credspec`` is taken). Raises ValueError.
    """
    if isinstance(content, (bytes, bytearray)):
        content = content.decode('utf-8')
    if isinstance(content, str):
        text = content.strip()
        if not text:
            raise ValueError('credential spec content is empty')
        try:
            content = json.loads(text)
        except ValueError:
            if not HAS_YAML:
                raise ValueError('credential spec content is not valid JSON (and PyYAML is not installed)')
            try:
                content = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError('credential spec content is neither JSON nor YAML: %s' % exc)
    if not isinstance(content, dict):
        raise ValueError('credential spec content must be a mapping, got %s' % type(content).__name__)
    if 'credspec' in content and isinstance(content['credspec'], dict):
        content = content['credspec']
    return copy.deepcopy(content)


def validate_credspec_content(content, name='credential spec'):
    """Problems with a parsed credential spec (empty list when fine)."""
    problems = []
    adc = content.get('ActiveDirectoryConfig')
    if not isinstance(adc, dict):
        problems.append('%s: ActiveDirectoryConfig is missing' % name)
    else:
        accounts = adc.get('GroupManagedServiceAccounts')
        if not isinstance(accounts, list) or not accounts:
            problems.append('%s: ActiveDirectoryConfig.GroupManagedServiceAccounts must be a non-empty list' % name)
        else:
            for index, account in enumerate(accounts):
                if not isinstance(account, dict) or not account.get('Name') or not account.get('Scope'):
                    problems.append('%s: GroupManagedServiceAccounts[%d] needs Name and Scope' % (name, index))
        hac = adc.get('HostAccountConfig')
        if hac is not None and not isinstance(hac, dict):
            problems.append('%s: ActiveDirectoryConfig.HostAccountConfig must be a mapping' % name)
    plugins = content.get('CmsPlugins')
    if plugins is not None and (not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins)):
        problems.append('%s: CmsPlugins must be a list of strings' % name)
    djc = content.get('DomainJoinConfig')
    if djc is not None and not isinstance(djc, dict):
        problems.append('%s: DomainJoinConfig must be a mapping' % name)
    for key in content:
        if key not in _ALLOWED:
            problems.append('%s: unknown top-level key %r (the CRD keeps only ActiveDirectoryConfig, CmsPlugins, '
                            'DomainJoinConfig)' % (name, key))
    return problems


def stringify_leaves(value):
    """All leaves of the CRD schema are strings: turn numbers and booleans into strings (e.g. "1")."""
    if isinstance(value, dict):
        return dict((k, stringify_leaves(v)) for k, v in value.items())
    if isinstance(value, list):
        return [stringify_leaves(v) for v in value]
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return str(value)
    return value


def build_credential_spec(name, content, labels=None):
    """A GMSACredentialSpec resource; raises ValueError listing every problem."""
    problems = []
    error = dns1123_subdomain_error(name, 'credential spec name')
    if error:
        problems.append(error)
    try:
        parsed = parse_credspec_content(content)
    except ValueError as exc:
        problems.append('%s: %s' % (name, exc))
        parsed = None
    if parsed is not None:
        problems.extend(validate_credspec_content(parsed, name))
    if problems:
        raise ValueError('; '.join(problems))
    all_labels = managed_labels('credential-spec', {CREDSPEC_LABEL: credspec_label_value(name)})
    if labels:
        all_labels.update(labels)
    return {
        'apiVersion': API_VERSION,
        'kind': KIND,
        'metadata': {'name': name, 'labels': all_labels},
        'credspec': stringify_leaves(parsed),
    }
