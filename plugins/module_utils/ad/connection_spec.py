# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec of the Active Directory connection options (documented in doc_fragments/ad_connection)."""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

AD_CONNECTION_SPEC = dict(
    server=dict(type='str', required=True, fallback=(env_fallback, ['GMSA_AD_SERVER'])),
    port=dict(type='int'),
    encryption=dict(type='str', choices=['ldaps', 'starttls', 'none'], default='ldaps'),
    auth_method=dict(type='str', choices=['simple', 'ntlm', 'kerberos'], default='simple'),
    username=dict(type='str', fallback=(env_fallback, ['GMSA_AD_USERNAME'])),
    password=dict(type='str', no_log=True, fallback=(env_fallback, ['GMSA_AD_PASSWORD'])),
    ca_file=dict(type='path'),
    validate_certs=dict(type='bool', default=True),
    timeout=dict(type='int', default=10),
    base_dn=dict(type='str'),
)

AD_CONNECTION_OPTIONS = tuple(AD_CONNECTION_SPEC)


def ad_argument_spec(**module_options):
    """The module's own options merged with the shared connection options."""
    spec = {name: dict(option) for name, option in AD_CONNECTION_SPEC.items()}
    spec.update(module_options)
    return spec


def ad_module_kwargs():
    """Cross-option rules every AD module applies (pass as **kwargs to AnsibleModule)."""
    return dict(
        required_if=[
            ('auth_method', 'simple', ('username', 'password')),
            ('auth_method', 'ntlm', ('username', 'password')),
        ],
    )
