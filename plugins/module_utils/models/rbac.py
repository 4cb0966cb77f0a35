# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RBAC letting service accounts `use` a GMSACredentialSpec (checked by the webhook). Pure, no I/O."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    CREDSPEC_LABEL,
    cluster_role_name,
    credspec_label_value,
    dns1123_label_error,
    dns1123_subdomain_error,
    managed_labels,
    role_binding_name,
)

RBAC_API = 'rbac.authorization.k8s.io/v1'


def build_cluster_role(credential_spec):
    return {
        'apiVersion': RBAC_API,
        'kind': 'ClusterRole',
        'metadata': {
            'name': cluster_role_name(credential_spec),
            'labels': managed_labels('credential-spec-rbac', {CREDSPEC_LABEL: credspec_label_value(credential_spec)}),
        },
        'rules': [{
            'apiGroups': ['windows.k8s.io'],
            'resources': ['gmsacredentialspecs'],
            'resourceNames': [credential_spec],
            'verbs': ['use'],
        }],
    }


def build_role_binding(credential_spec, namespace, service_accounts):
    return {
        'apiVersion': RBAC_API,
        'kind': 'RoleBinding',
        'metadata': {
            'name': role_binding_name(credential_spec),
            'namespace': namespace,
            'labels': managed_labels('credential-spec-rbac', {CREDSPEC_LABEL: credspec_label_value(credential_spec)}),
        },
        'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole',
                    'name': cluster_role_name(credential_spec)},
        'subjects': [{'kind': 'ServiceAccount', 'name': sa, 'namespace': namespace}
                     for sa in sorted(set(service_accounts))],
    }


def normalize_use_by(credential_spec, use_by):
    """[{namespace, service_accounts}] -> {namespace: [service accounts]}; raises ValueError with all problems."""
    problems = []
    result = {}
    for entry in use_by or []:
        namespace = entry.get('namespace')
        error = dns1123_label_error(namespace, 'namespace')
        if error:
            problems.append('%s: %s' % (credential_spec, error))
            continue
        accounts = entry.get('service_accounts') or []
        if not accounts:
            problems.append('%s: namespace %s lists no service_accounts' % (credential_spec, namespace))
        for account in accounts:
            error = dns1123_subdomain_error(account, 'service account')
            if error:
                problems.append('%s: %s' % (credential_spec, error))
        result.setdefault(namespace, set()).update(accounts)
    if problems:
        raise ValueError('; '.join(problems))
    return dict((ns, sorted(accounts)) for ns, accounts in result.items())


def build_rbac(credential_spec, use_by):
    """The ClusterRole and one RoleBinding per namespace for one credential spec."""
    error = dns1123_subdomain_error(credential_spec, 'credential spec name')
    if error:
        raise ValueError(error)
    namespaces = normalize_use_by(credential_spec, use_by)
    objects = [build_cluster_role(credential_spec)]
    for namespace in sorted(namespaces):
        objects.append(build_role_binding(credential_spec, namespace, namespaces[namespace]))
    return objects
