# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes Secret that holds a portable identity's credentials (winkube.gmsa.portable_identity).

Kept out of module_utils/ad on purpose: the AD side and the Kubernetes side do not import each other; the
module joins them. The Kubernetes libraries are imported only when a Secret is written or read."""

from __future__ import annotations

import base64

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import K8S_CONNECTION_SPEC
from ansible_collections.winkube.gmsa.plugins.module_utils.models import portable_identity as model
from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    dns1123_subdomain_error,
)

K8S_KEYS = ('kubeconfig', 'context', 'host', 'api_key', 'ca_cert', 'client_cert', 'client_key', 'validate_certs')


def secret_options():
    """Option ``kubernetes_secret``: name and namespace plus the Kubernetes connection options (environment
    fallbacks kept, aliases dropped so the nested dict has one spelling per key)."""
    options = dict(name=dict(type='str', required=True), namespace=dict(type='str', required=True))
    for key, spec in K8S_CONNECTION_SPEC.items():
        spec = dict(spec)
        spec.pop('aliases', None)
        options[key] = spec
    return options


def secret_errors(spec):
    """Messages for a Secret name or namespace Kubernetes would refuse (checked before anything is written)."""
    errors = []
    for key, label in (('name', 'Secret name'), ('namespace', 'namespace')):
        error = dns1123_subdomain_error(spec[key] or '', 'kubernetes_secret.%s (%s)' % (key, label))
        if error:
            errors.append(error)
    return errors


def secret_object(spec, creds):
    data = dict((k, base64.b64encode(v.encode('utf-8')).decode('ascii')) for k, v in model.secret_data(creds).items())
    return {'apiVersion': 'v1', 'kind': 'Secret',
            'metadata': {'name': spec['name'], 'namespace': spec['namespace'],
                         'labels': {MANAGED_BY_LABEL: MANAGED_BY}},
            'type': 'Opaque', 'data': data}


class SecretStore:
    """Server-side apply of the Secret (``check_mode``: a server-side dry run). Raises k8s client.K8sError."""

    def __init__(self, spec, check_mode):
        self.spec = spec
        self.check_mode = check_mode

    @property
    def where(self):
        return 'Secret %s/%s' % (self.spec['namespace'], self.spec['name'])

    def _engine(self, check_mode):
        from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import client as k8s_client
        from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import engine as k8s_engine

        conn = dict((k, self.spec.get(k)) for k in K8S_KEYS)
        return k8s_engine.Engine(k8s_client.connect(conn), check_mode=check_mode)

    def apply(self, creds, dry_run=False):
        """Apply the Secret with ``creds``; dry_run: only a server-side dry run. Returns the engine's change."""
        return self._engine(self.check_mode or dry_run).apply([secret_object(self.spec, creds)])[0]

    def exists(self):
        return self._engine(True).current(('v1', 'Secret', self.spec['namespace'], self.spec['name'])) is not None

    @staticmethod
    def error_class():
        from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import client as k8s_client
        return k8s_client.K8sError
