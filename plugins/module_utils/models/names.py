# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes names and labels derived from a gMSA; validation of DNS-1123 names. Pure, no I/O."""

from __future__ import annotations

import hashlib
import re

MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
MANAGED_BY = 'winkube.gmsa'
COMPONENT_LABEL = 'app.kubernetes.io/component'
PART_OF_LABEL = 'app.kubernetes.io/part-of'
CREDSPEC_LABEL = 'winkube.gmsa/credential-spec'
FIELD_MANAGER = 'winkube.gmsa'
MANAGED_SELECTOR = '%s=%s' % (MANAGED_BY_LABEL, MANAGED_BY)

_DNS1123_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')
_DNS1123_SUBDOMAIN = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')


def is_dns1123_label(value):
    return isinstance(value, str) and len(value) <= 63 and bool(_DNS1123_LABEL.match(value))


def is_dns1123_subdomain(value):
    return isinstance(value, str) and len(value) <= 253 and bool(_DNS1123_SUBDOMAIN.match(value))


def dns1123_label_error(value, what='name'):
    """None when value is a valid DNS-1123 label, else a message saying why not."""
    if is_dns1123_label(value):
        return None
    return ('%s %r is not a valid DNS-1123 label: at most 63 characters, lower case letters, digits and '
            "'-', starting and ending with a letter or digit" % (what, value))


def dns1123_subdomain_error(value, what='name'):
    """None when value is a valid DNS-1123 subdomain, else a message saying why not."""
    if is_dns1123_subdomain(value):
        return None
    return ('%s %r is not a valid DNS-1123 subdomain: at most 253 characters, lower case letters, digits, '
            "'-' and '.', each part starting and ending with a letter or digit" % (what, value))


def to_dns1123(text, max_length=63):
    """Best DNS-1123 label for free text: lower case, runs of other characters become '-'."""
    value = re.sub(r'[^a-z0-9]+', '-', str(text).lower()).strip('-')
    value = value[:max_length].rstrip('-')
    if not value:
        raise ValueError('cannot derive a DNS-1123 name from %r' % (text,))
    return value


def credential_spec_name(gmsa_name):
    """Default GMSACredentialSpec resource name for a gMSA: gmsa-<name in lower case>.

    WebApp1 and WebApp1$ both give gmsa-webapp1.
    """
    return to_dns1123('gmsa-' + str(gmsa_name).rstrip('$'), max_length=253)


def account_credential_spec_name(account):
    """Credential spec name of a gmsa_accounts entry: its credential_spec, else derived from its name."""
    return account.get('credential_spec') or credential_spec_name(account['name'])


def cluster_role_name(credential_spec):
    """ClusterRole allowing `use` of one credential spec."""
    return 'winkube-gmsa-use-' + credential_spec


def role_binding_name(credential_spec):
    """RoleBinding (one per namespace) binding service accounts to that ClusterRole."""
    return 'winkube-gmsa-use-' + credential_spec


def managed_labels(component=None, extra=None):
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    if component:
        labels[COMPONENT_LABEL] = component
        labels[PART_OF_LABEL] = 'windows-gmsa'
    if extra:
        labels.update(extra)
    return labels


def credspec_label_value(credential_spec):
    """Label value naming a credential spec (label values are limited to 63 characters)."""
    if len(credential_spec) <= 63:
        return credential_spec
    return 'sha1-' + hashlib.sha1(credential_spec.encode('utf-8')).hexdigest()
