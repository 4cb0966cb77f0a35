# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec of the Kubernetes connection options (documented in doc_fragments/k8s_connection).

The connection layer (module_utils/connection) sits below ad/, k8s/ and winrm/: each side takes the options of
another connection from here (winrm's nested ``cluster``), never from the other side's package."""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

K8S_CONNECTION_SPEC = dict(
    # no_log: an inline kubeconfig holds credentials; secrets.mask_structured_secrets narrows the masking to them.
    kubeconfig=dict(type='raw', no_log=True, fallback=(env_fallback, ['K8S_AUTH_KUBECONFIG'])),
    context=dict(type='str', fallback=(env_fallback, ['K8S_AUTH_CONTEXT'])),
    host=dict(type='str', fallback=(env_fallback, ['K8S_AUTH_HOST'])),
    api_key=dict(type='str', no_log=True, fallback=(env_fallback, ['K8S_AUTH_API_KEY'])),
    ca_cert=dict(type='path', aliases=['ssl_ca_cert'], fallback=(env_fallback, ['K8S_AUTH_SSL_CA_CERT'])),
    client_cert=dict(type='path', fallback=(env_fallback, ['K8S_AUTH_CERT_FILE'])),
    client_key=dict(type='path', no_log=False, fallback=(env_fallback, ['K8S_AUTH_KEY_FILE'])),
    validate_certs=dict(type='bool', aliases=['verify_ssl'], fallback=(env_fallback, ['K8S_AUTH_VERIFY_SSL'])),
)

K8S_CONNECTION_OPTIONS = tuple(K8S_CONNECTION_SPEC)


def k8s_argument_spec(**module_options):
    """The module's own options merged with the shared connection options."""
    spec = {name: dict(option) for name, option in K8S_CONNECTION_SPEC.items()}
    spec.update(module_options)
    return spec
