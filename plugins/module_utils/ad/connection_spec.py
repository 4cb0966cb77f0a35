# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec of the Active Directory connection options (documented in doc_fragments/ad_connection).

Two backends: ``ldap`` (ldap3 straight to a domain controller) and ``winrm`` (the ActiveDirectory PowerShell
cmdlets on one Windows host, reached with the WinRM options nested under ``winrm``). :func:`check_backend`
holds the rules between the two sets of options that the argument spec cannot express.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import (
    WINRM_CONNECTION_SPEC,
    winrm_module_kwargs,
)

# The WinRM options for the one host that runs the AD cmdlets (no concurrency: there is one host).
AD_WINRM_OPTIONS = {name: dict(option) for name, option in WINRM_CONNECTION_SPEC.items() if name != 'concurrency'}

LDAP_DEFAULTS = dict(encryption='ldaps', auth_method='simple', validate_certs=True, timeout=10, total_timeout=60)

AD_CONNECTION_SPEC = dict(
    backend=dict(type='str', choices=['ldap', 'winrm'], default='ldap'),
    server=dict(type='str', fallback=(env_fallback, ['GMSA_AD_SERVER'])),
    port=dict(type='int'),
    encryption=dict(type='str', choices=['ldaps', 'starttls', 'none'], default=LDAP_DEFAULTS['encryption']),
    auth_method=dict(type='str', choices=['simple', 'ntlm', 'kerberos'], default=LDAP_DEFAULTS['auth_method']),
    username=dict(type='str', fallback=(env_fallback, ['GMSA_AD_USERNAME'])),
    password=dict(type='str', no_log=True, fallback=(env_fallback, ['GMSA_AD_PASSWORD'])),
    ca_file=dict(type='path'),
    validate_certs=dict(type='bool', default=LDAP_DEFAULTS['validate_certs']),
    timeout=dict(type='int', default=LDAP_DEFAULTS['timeout']),
    total_timeout=dict(type='int', default=LDAP_DEFAULTS['total_timeout']),
    kerberos_keytab=dict(type='path'),
    kerberos_ccache=dict(type='str'),
    base_dn=dict(type='str'),
    winrm=dict(type='dict', options=AD_WINRM_OPTIONS, **winrm_module_kwargs()),
)

AD_CONNECTION_OPTIONS = tuple(AD_CONNECTION_SPEC)

# Options that only mean something to the LDAP backend, with what to use instead with backend=winrm.
LDAP_ONLY = (
    ('port', 'the WinRM port is winrm.port'),
    ('encryption', 'the WinRM session is protected by winrm.scheme and winrm.message_encryption'),
    ('auth_method', 'the WinRM authentication is winrm.transport'),
    ('username', 'the cmdlets run as winrm.username'),
    ('password', 'the cmdlets run as winrm.username with winrm.password'),
    ('ca_file', 'the WinRM host\'s certificate is checked against winrm.ca_trust_path'),
    ('validate_certs', 'use winrm.validate_certs'),
    ('timeout', 'use winrm.operation_timeout and winrm.read_timeout'),
    ('total_timeout', 'use winrm.total_timeout'),
    ('kerberos_keytab', 'use winrm.transport=kerberos with a ticket for winrm.username'),
    ('kerberos_ccache', 'use winrm.transport=kerberos with a ticket for winrm.username'),
)
ENV_NAMES = dict(server='GMSA_AD_SERVER', username='GMSA_AD_USERNAME', password='GMSA_AD_PASSWORD')


def ad_argument_spec(**module_options):
    """The module's own options merged with the shared connection options."""
    spec = {name: dict(option) for name, option in AD_CONNECTION_SPEC.items()}
    spec.update(module_options)
    return spec


def ad_module_kwargs():
    """Cross-option rules every AD module applies (pass as **kwargs to AnsibleModule).

    Only ``required_if``: modules pass their own ``mutually_exclusive``. The rules that depend on the backend
    and on auth_method together are in :func:`check_backend` (run by ``backend.connect``).
    """
    return dict(
        required_if=[
            ('backend', 'ldap', ('server',)),
            ('backend', 'winrm', ('winrm',)),
        ],
    )


def _given(params, name):
    value = params.get(name)
    if name in LDAP_DEFAULTS:
        return value is not None and value != LDAP_DEFAULTS[name]
    return value is not None


def check_backend(params):
    """Rules between the backend and the options; a list of (option, message), empty when all is well."""
    errors = []
    backend = params.get('backend') or 'ldap'
    if backend == 'ldap':
        if params.get('winrm') is not None:
            errors.append(('winrm', 'winrm (the WinRM connection to a host with the ActiveDirectory PowerShell '
                           'module) is only used with backend=winrm; set backend: winrm or remove winrm'))
        auth = params.get('auth_method') or 'simple'
        for name in ('timeout', 'total_timeout'):
            if params.get(name) is not None and params[name] < 1:
                errors.append((name, '%s must be at least 1 (seconds)' % name))
        if auth != 'kerberos':
            for name in ('kerberos_keytab', 'kerberos_ccache'):
                if params.get(name):
                    errors.append((name, '%s is only used with auth_method=kerberos; set auth_method: kerberos or '
                                   'remove %s' % (name, name)))
        if auth in ('simple', 'ntlm'):
            missing = [name for name in ('username', 'password') if not params.get(name)]
            if missing:
                errors.append((missing[0], 'auth_method is %s but all of the following are missing: %s'
                               % (auth, ', '.join(missing))))
        return errors
    for name, instead in LDAP_ONLY:
        if _given(params, name):
            env = ENV_NAMES.get(name)
            errors.append((name, '%s%s is an option of backend=ldap and is not used with backend=winrm: %s; '
                           'remove it' % (name, ' (or %s)' % env if env else '', instead)))
    return errors
