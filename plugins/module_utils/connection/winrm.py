# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec of the WinRM connection options (documented in doc_fragments/winrm_connection).

``WINRM_CONNECTION_SPEC`` can also be used as the ``options`` of a nested dict option (for modules that
already have AD or Kubernetes options of the same names); :func:`check_connection` then takes that dict.
It lives in the connection layer (module_utils/connection), below ad/, k8s/ and winrm/.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import K8S_CONNECTION_SPEC

WINRM_CONNECTION_SPEC = dict(
    hosts=dict(type='list', elements='str', required=True, aliases=['host']),
    port=dict(type='int'),
    scheme=dict(type='str', choices=['https', 'http'], default='https'),
    transport=dict(type='str', choices=['ntlm', 'kerberos', 'credssp', 'basic'], default='ntlm',
                   fallback=(env_fallback, ['GMSA_WINRM_TRANSPORT'])),
    username=dict(type='str', fallback=(env_fallback, ['GMSA_WINRM_USERNAME'])),
    password=dict(type='str', no_log=True, fallback=(env_fallback, ['GMSA_WINRM_PASSWORD'])),
    validate_certs=dict(type='bool', default=True),
    ca_trust_path=dict(type='path', fallback=(env_fallback, ['GMSA_WINRM_CA_TRUST_PATH'])),
    message_encryption=dict(type='str', choices=['auto', 'always', 'never'], default='auto'),
    operation_timeout=dict(type='int', default=20),
    read_timeout=dict(type='int', default=30),
    total_timeout=dict(type='int', default=300),
    concurrency=dict(type='int', default=4),
)

WINRM_CONNECTION_OPTIONS = tuple(WINRM_CONNECTION_SPEC)

# The Kubernetes connection options, nested under one option ``cluster`` (a dict) because ``host`` and
# ``validate_certs`` would otherwise clash with the WinRM options of the same name.
CLUSTER_OPTION = dict(type='dict', options={name: dict(option) for name, option in K8S_CONNECTION_SPEC.items()})


def winrm_argument_spec(**module_options):
    """The module's own options merged with the shared WinRM connection options."""
    spec = {name: dict(option) for name, option in WINRM_CONNECTION_SPEC.items()}
    spec.update(module_options)
    return spec


def winrm_module_kwargs():
    """Cross-option rules every WinRM module applies (pass as **kwargs to AnsibleModule)."""
    return dict(
        required_if=[
            ('transport', 'ntlm', ('username', 'password')),
            ('transport', 'credssp', ('username', 'password')),
            ('transport', 'basic', ('username', 'password')),
        ],
    )


def check_connection(params):
    """Rules the argument spec cannot express; a list of error messages (empty when all is well)."""
    errors = []
    scheme = params.get('scheme') or 'https'
    transport = params.get('transport') or 'ntlm'
    encryption = params.get('message_encryption') or 'auto'
    if transport == 'basic' and scheme != 'https':
        errors.append('transport=basic sends the password in clear text and is only accepted with scheme=https')
    if scheme == 'http' and encryption == 'never':
        errors.append('scheme=http with message_encryption=never would send the scripts and their results in '
                      'clear text; use scheme=https, or message_encryption=auto or always')
    if encryption == 'always' and transport == 'basic':
        errors.append('message_encryption=always needs transport ntlm, kerberos or credssp (basic has no '
                      'message encryption)')
    operation = params.get('operation_timeout')
    read = params.get('read_timeout')
    if operation is not None and operation < 1:
        errors.append('operation_timeout must be at least 1 second')
    if operation is not None and read is not None and read <= operation:
        errors.append('read_timeout (%s) must be greater than operation_timeout (%s)' % (read, operation))
    total = params.get('total_timeout')
    if total is not None and operation is not None and total < operation:
        errors.append('total_timeout (%s) must be at least operation_timeout (%s)' % (total, operation))
    if params.get('concurrency') is not None and params['concurrency'] < 1:
        errors.append('concurrency must be at least 1')
    if not params.get('hosts'):
        errors.append('hosts must name at least one Windows host')
    return errors
