"""Bounded concurrency of the Kubernetes engine's writes, against an in-memory fake API server (no server):
results and errors in input order, at most write_concurrency requests in flight, barrier kinds alone."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import engine as eng
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import ApiError, K8sError


class SlowServer:
    """Imitation of an API server for the engine: empty LISTs, applies that take `delay` seconds (longer for
    names in `slow`), refusals for names in `refuse`; records what was in flight when."""

    def __init__(self, delay=0.02, refuse=(), slow=()):
        self.delay, self.refuse, self.slow = delay, set(refuse), set(slow)
        self.lock = threading.Lock()
        self.count = 0
        self.counts = {}
        self.in_flight = set()
        self.max_in_flight = 0
        self.events = []  # ('start'|'end', name)
        self._local = threading.local()

    @property
    def last_status(self):
        return getattr(self._local, 'last_status', None)

    def request(self, method, path, query=None, body=None, content_type=None):
        with self.lock:
            self.count += 1
            self.counts[method] = self.counts.get(method, 0) + 1
        if method == 'GET':
            return {'items': []}
        name = body['metadata']['name']
        with self.lock:
            self.in_flight.add(name)
            self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
            self.events.append(('start', name))
        time.sleep(self.delay * (5 if name in self.slow else 1))
        with self.lock:
            self.in_flight.discard(name)
            self.events.append(('end', name))
        if name in self.refuse:
            raise ApiError(422, 'Unprocessable Entity', {'message': 'refused %s' % name}, method, path)
        self._local.last_status = 201
        result = dict(body)
        result['metadata'] = dict(body['metadata'], resourceVersion='1')
        return result


def cm(name, ns='n'):
    return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': name, 'namespace': ns}, 'data': {'k': name}}


def namespace(name):
    return {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': name}}


def test_writes_overlap_up_to_the_limit_and_results_keep_input_order():
    server = SlowServer(slow=['c0'])  # the first object finishes last
    objects = [cm('c%d' % i) for i in range(12)]
    changes = eng.Engine(server, write_concurrency=4).apply(objects)
    assert [c.ref[3] for c in changes] == ['c%d' % i for i in range(12)]
    assert all(c.action == 'created' for c in changes)
    assert server.max_in_flight == 4
    assert server.counts == {'GET': 1, 'PATCH': 12}


def test_concurrency_one_writes_one_at_a_time():
    server = SlowServer()
    eng.Engine(server, write_concurrency=1).apply([cm('c%d' % i) for i in range(5)])
    assert server.max_in_flight == 1


def test_default_is_bounded_concurrency():
    server = SlowServer()
    eng.Engine(server).apply([cm('c%d' % i) for i in range(20)])
    assert 1 < server.max_in_flight <= eng.WRITE_CONCURRENCY


def test_first_refused_object_in_input_order_is_the_error_and_done_writes_are_reported():
    # c1 is refused after a long time, c2 at once: the error is still c1's, as when writing one by one
    server = SlowServer(refuse=['c1', 'c2'], slow=['c1'])
    engine = eng.Engine(server, write_concurrency=4)
    with pytest.raises(K8sError, match='refused c1'):
        engine.apply([cm('c0'), cm('c1'), cm('c2'), cm('c3')])
    # the failure result (engine.summary) lists the writes that were done, in input order
    assert [(c['name'], c['action']) for c in engine.summary()] == [('c0', 'created'), ('c3', 'created')]


def test_no_new_batch_starts_after_an_error():
    server = SlowServer(refuse=['c0'])
    engine = eng.Engine(server, write_concurrency=4)
    with pytest.raises(K8sError, match='refused c0'):
        engine.apply([cm('c0'), namespace('later'), cm('c9', ns='later')])
    assert ('start', 'later') not in server.events and ('start', 'c9') not in server.events


def test_namespace_is_written_alone_before_the_objects_after_it():
    server = SlowServer()
    objects = [cm('a0'), cm('a1'), namespace('ns1'), cm('b0', ns='ns1'), cm('b1', ns='ns1')]
    changes = eng.Engine(server, write_concurrency=4).apply(objects)
    assert [c.ref[3] for c in changes] == ['a0', 'a1', 'ns1', 'b0', 'b1']
    events = server.events
    ns_start, ns_end = events.index(('start', 'ns1')), events.index(('end', 'ns1'))
    assert {e[1] for e in events[:ns_start] if e[0] == 'end'} == {'a0', 'a1'}  # earlier writes finished first
    assert events[ns_start + 1] == ('end', 'ns1')  # nothing else in flight with it
    assert all(events.index(('start', n)) > ns_end for n in ('b0', 'b1'))


def cluster_role(name):
    return {'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'ClusterRole', 'metadata': {'name': name}, 'rules': []}


def role_binding(name, role, ns='n'):
    return {'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'RoleBinding', 'metadata': {'name': name, 'namespace': ns},
            'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': role}, 'subjects': []}


def test_a_binding_starts_only_after_the_roles_before_it_are_written():
    # The API server checks a binding's role against the rights of whoever creates the binding: a role still
    # being created is "not found" for a creator without the bind verb.
    server = SlowServer(slow=['r1'])
    objects = [cluster_role('r1'), role_binding('b1', 'r1'), role_binding('b2', 'r1', ns='m'), cluster_role('r2'),
               role_binding('b3', 'r2')]
    changes = eng.Engine(server, write_concurrency=4).apply(objects)
    assert [c.ref[3] for c in changes] == ['r1', 'b1', 'b2', 'r2', 'b3']
    events = server.events
    assert events.index(('start', 'b1')) > events.index(('end', 'r1'))
    assert events.index(('start', 'b3')) > events.index(('end', 'r2'))
    assert server.max_in_flight >= 2  # b1, b2 and r2 still go together
