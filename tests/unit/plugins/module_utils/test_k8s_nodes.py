"""Which pods node_registry asks to recreate, and the Node lookup, against a fake transport."""

from __future__ import annotations

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import ApiError
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import nodes as k8s_nodes


class FakeTransport:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def request(self, method, path, query=None, body=None, content_type=None):
        self.calls.append((method, path, query))
        answer = self.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return answer


def pod(name, node='win1', phase='Running', pod_gmsa=None, container_gmsa=None, init_gmsa=None, owner=None):
    spec = {'nodeName': node, 'containers': [{'name': 'c'}]}
    if pod_gmsa:
        spec['securityContext'] = {'windowsOptions': {'gmsaCredentialSpecName': pod_gmsa}}
    if container_gmsa:
        spec['containers'][0]['securityContext'] = {'windowsOptions': {'gmsaCredentialSpecName': container_gmsa}}
    if init_gmsa:
        spec['initContainers'] = [{'name': 'i', 'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': init_gmsa}}}]
    meta = {'name': name, 'namespace': 'web'}
    if owner:
        meta['ownerReferences'] = [{'kind': 'ReplicaSet', 'name': owner, 'controller': True}]
    return {'metadata': meta, 'spec': spec, 'status': {'phase': phase}}


def test_gmsa_pods_on_node_filters_and_summarises():
    items = [pod('b', pod_gmsa='g1', owner='rs1'), pod('a', container_gmsa='g2'), pod('c', init_gmsa='g3'),
             pod('plain'), pod('done', pod_gmsa='g1', phase='Succeeded'), pod('other', node='win2', pod_gmsa='g1')]
    transport = FakeTransport({'/api/v1/pods': {'items': items}})
    pods = k8s_nodes.gmsa_pods_on_node(transport, 'win1')
    assert [p['name'] for p in pods] == ['a', 'b', 'c']
    assert pods[1]['owner'] == {'kind': 'ReplicaSet', 'name': 'rs1'}
    assert pods[0]['owner'] is None and pods[0]['credential_spec_names'] == ['g2']
    assert transport.calls == [('GET', '/api/v1/pods', {'fieldSelector': 'spec.nodeName=win1'})]


def test_node_info_found_missing_and_invalid():
    transport = FakeTransport({'/api/v1/nodes/win1': {'metadata': {'labels': {'kubernetes.io/os': 'windows'}}},
                               '/api/v1/nodes/gone': ApiError(404, 'Not Found', {}, 'GET', '/api/v1/nodes/gone')})
    assert k8s_nodes.node_info(transport, 'win1') == {'found': True, 'name': 'win1',
                                                      'labels': {'kubernetes.io/os': 'windows'}}
    assert k8s_nodes.node_info(transport, 'gone')['found'] is False
    with pytest.raises(ValueError):
        k8s_nodes.node_info(transport, '../namespaces')
    assert not k8s_nodes.valid_node_name('WIN1') and k8s_nodes.valid_node_name('win-1.contoso.com')
