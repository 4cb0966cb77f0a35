# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the node-side modules (node_registry, node_preflight_info, node_agent) ask the Kubernetes API about a Windows
node, through module_utils/k8s/client. Here, on the Kubernetes side, so that module_utils/winrm never imports it."""

from __future__ import annotations

import re

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import ApiError

FINISHED_PHASES = ('Succeeded', 'Failed')
_NODE_NAME = re.compile(r'^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$')


def valid_node_name(name):
    """Whether ``name`` can be a Kubernetes Node name (a lower-case DNS subdomain)."""
    return bool(name) and bool(_NODE_NAME.match(name))


def gmsa_names(pod):
    """The gmsaCredentialSpecName values a pod names (pod level, containers, init containers), sorted."""
    spec = pod.get('spec') or {}
    names = set()
    contexts = [spec.get('securityContext') or {}]
    for key in ('containers', 'initContainers', 'ephemeralContainers'):
        contexts.extend((c.get('securityContext') or {}) for c in spec.get(key) or [])
    for context in contexts:
        name = (context.get('windowsOptions') or {}).get('gmsaCredentialSpecName')
        if name:
            names.add(name)
    return sorted(names)


def pod_summary(pod, node_name):
    meta = pod.get('metadata') or {}
    owners = meta.get('ownerReferences') or []
    owner = next((o for o in owners if o.get('controller')), owners[0] if owners else None)
    return {
        'namespace': meta.get('namespace'),
        'name': meta.get('name'),
        'node_name': node_name,
        'phase': (pod.get('status') or {}).get('phase'),
        'credential_spec_names': gmsa_names(pod),
        'owner': {'kind': owner.get('kind'), 'name': owner.get('name')} if owner else None,
    }


def gmsa_pods_on_node(transport, node_name):
    """Pods bound to ``node_name`` that name a gMSA credential spec and have not finished (one LIST)."""
    if not valid_node_name(node_name):
        raise ValueError('%r is not a valid Kubernetes node name' % (node_name,))
    listing = transport.request('GET', '/api/v1/pods', query={'fieldSelector': 'spec.nodeName=%s' % node_name})
    pods = []
    for pod in listing.get('items') or []:
        if (pod.get('spec') or {}).get('nodeName') != node_name:
            continue  # the field selector already did this; be strict anyway
        if (pod.get('status') or {}).get('phase') in FINISHED_PHASES or not gmsa_names(pod):
            continue
        pods.append(pod_summary(pod, node_name))
    return sorted(pods, key=lambda p: (p['namespace'] or '', p['name'] or ''))


def node_info(transport, node_name):
    """{'found', 'name', 'labels'} of the Node object (found False when there is none)."""
    if not valid_node_name(node_name):
        raise ValueError('%r is not a valid Kubernetes node name' % (node_name,))
    try:
        node = transport.request('GET', '/api/v1/nodes/%s' % node_name)
    except ApiError as exc:
        if exc.status == 404:
            return {'found': False, 'name': node_name, 'labels': {}}
        raise
    return {'found': True, 'name': node_name, 'labels': (node.get('metadata') or {}).get('labels') or {}}


def cluster_transport(module):
    """A Kubernetes transport when the option ``cluster`` is given, else None; fails the module on errors."""
    cluster = module.params.get('cluster')
    if cluster is None:
        return None
    from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError, connect, require_kubernetes
    require_kubernetes(module)
    try:
        return connect(cluster)
    except K8sError as exc:
        module.fail_json(msg='cluster: %s' % exc)


def node_name_for(module, entry, computer_name):
    """The Kubernetes node name of a host: node_names[entry], else the host's computer name in lower case."""
    names = module.params.get('node_names') or {}
    name = names.get(entry)
    if name is None:
        name = (computer_name or '').lower() or None
    if name is not None and not valid_node_name(name):
        return None, '%r is not a valid Kubernetes node name; set node_names for %s' % (name, entry)
    return name, None
