"""The Kubernetes engine's comparison, planning and bookkeeping, against a fake transport (no server)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import ApiError, K8sError
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import engine as eng


def test_is_subset_ignores_server_defaults_and_extra_fields():
    desired = {'spec': {'replicas': 2, 'template': {'spec': {'containers': [{'name': 'a', 'image': 'x'}]}}}}
    current = {'spec': {'replicas': 2, 'strategy': {}, 'template': {'spec': {'containers': [
        {'name': 'a', 'image': 'x', 'terminationMessagePath': '/dev/termination-log'}]}}}}
    assert eng.is_subset(desired, current)
    current['spec']['replicas'] = 3
    assert not eng.is_subset(desired, current)


def test_is_subset_named_lists_match_by_name_and_allow_foreign_items():
    desired = {'containers': [{'name': 'b', 'image': 'y'}]}
    assert eng.is_subset(desired, {'containers': [{'name': 'a', 'image': 'x'}, {'name': 'b', 'image': 'y'}]})
    assert not eng.is_subset(desired, {'containers': [{'name': 'a', 'image': 'x'}]})


def test_is_subset_plain_lists_are_exact():
    assert eng.is_subset({'verbs': ['get']}, {'verbs': ['get']})
    assert not eng.is_subset({'verbs': ['get']}, {'verbs': ['get', 'list']})
    assert not eng.is_subset({'verbs': ['get', 'list']}, {'verbs': ['list', 'get']})


def test_empty_desired_values_match_missing_fields():
    assert eng.is_subset({'spec': {'selfSigned': {}}}, {'spec': {}})
    assert eng.is_subset({'tolerations': []}, {})


def test_owns_unwanted_fields_detects_dropped_keys_and_list_items():
    fields = {'f:metadata': {'f:labels': {'f:a': {}, 'f:b': {}}},
              'f:spec': {'f:containers': {'k:{"name":"c"}': {'.': {}, 'f:name': {}, 'f:args': {}}}}}
    wanted = {'metadata': {'labels': {'a': '1', 'b': '2'}}, 'spec': {'containers': [{'name': 'c', 'args': ['x']}]}}
    assert not eng.owns_unwanted_fields(fields, wanted)
    assert eng.owns_unwanted_fields(fields, {'metadata': {'labels': {'a': '1'}},
                                             'spec': {'containers': [{'name': 'c', 'args': ['x']}]}})
    assert eng.owns_unwanted_fields(fields, {'metadata': {'labels': {'a': '1', 'b': '2'}},
                                             'spec': {'containers': [{'name': 'c'}]}})
    assert eng.owns_unwanted_fields(fields, {'metadata': {'labels': {'a': '1', 'b': '2'}},
                                             'spec': {'containers': [{'name': 'other', 'args': ['x']}]}})
    assert eng.owns_unwanted_fields({'f:spec': {'f:template': {}}}, {'apiVersion': 'v1'})


def test_apply_reasons():
    obj = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'a', 'namespace': 'n'}, 'data': {'k': 'v'}}
    assert eng.apply_reasons(obj, None) == ['missing']
    current = json.loads(json.dumps(obj))
    current['metadata']['managedFields'] = [{'manager': 'winkube.gmsa', 'operation': 'Apply',
                                             'fieldsV1': {'f:data': {'f:k': {}, 'f:old': {}}}}]
    assert eng.apply_reasons(obj, current) == ['owns fields no longer wanted']
    current['metadata']['managedFields'][0]['manager'] = 'kubectl'
    assert eng.apply_reasons(obj, current) == []  # equal value owned by someone else: nothing to do
    current['data']['k'] = 'other'
    assert eng.apply_reasons(obj, current) == ['differs']


def test_redact_hides_secret_values_and_volatile_metadata():
    secret = {'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 's', 'resourceVersion': '5',
                                                                 'managedFields': []}, 'data': {'tls.key': 'c2VjcmV0'}}
    shown = eng.redact(secret)
    assert 'resourceVersion' not in shown['metadata'] and 'managedFields' not in shown['metadata']
    assert 'c2VjcmV0' not in json.dumps(shown)
    assert shown['data']['tls.key'] != eng.redact(dict(secret, data={'tls.key': 'b3RoZXI='}))['data']['tls.key']


class FakeTransport:
    """A tiny in-memory API server: LIST with selectors, server-side apply, DELETE; counts requests."""

    def __init__(self, objects=()):
        self.objects = {}
        self.count = 0
        self.counts = {}
        self.log = []
        self.version = 10
        for obj in objects:
            self.objects[eng.ref_of(obj)] = obj

    def request(self, method, path, query=None, body=None, content_type=None):
        self.count += 1
        self.counts[method] = self.counts.get(method, 0) + 1
        self.log.append((method, path, dict(query or {})))
        query = query or {}
        if method == 'GET':
            items = []
            for ref, obj in self.objects.items():
                if path == eng.collection_path(ref[0], ref[1], ref[2] if '/namespaces/' in path else None):
                    selector = query.get('fieldSelector')
                    if selector and selector != 'metadata.name=%s' % ref[3]:
                        continue
                    label = query.get('labelSelector')
                    if label and (obj['metadata'].get('labels') or {}).get('app.kubernetes.io/managed-by') \
                            != 'winkube.gmsa':
                        continue
                    items.append(json.loads(json.dumps(obj)))
            return {'items': items}
        ref = next((r for r in list(self.objects) + [None] if r and eng.object_path(r) == path), None)
        if method == 'PATCH':
            ref = ref or eng.ref_of(body)
            if query.get('force') == 'false' and body.get('conflict'):
                raise ApiError(409, 'Conflict', {'message': 'conflict with "kubectl"'}, method, path)
            merged = json.loads(json.dumps(body))
            merged['metadata']['resourceVersion'] = str(self.version + (0 if query.get('dryRun') else 1))
            if not query.get('dryRun'):
                self.version += 1
                self.objects[ref] = merged
            return merged
        if method == 'DELETE':
            if ref is None:
                raise ApiError(404, 'Not Found', {}, method, path)
            if not body.get('dryRun'):
                del self.objects[ref]
            return {}
        raise AssertionError(method)


def cm(name, ns='n', value='v', managed=True):
    labels = {'app.kubernetes.io/managed-by': 'winkube.gmsa'} if managed else {}
    return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': name, 'namespace': ns, 'labels': labels},
            'data': {'k': value}}


def test_one_list_per_kind_and_no_write_when_equal():
    server = FakeTransport([cm('a'), cm('b')])
    engine = eng.Engine(server)
    changes = engine.apply([cm('a'), cm('b')])
    assert [c.action for c in changes] == ['unchanged', 'unchanged']
    assert server.counts == {'GET': 1}
    assert server.log[0][2] == {'labelSelector': 'app.kubernetes.io/managed-by=winkube.gmsa'}
    assert not engine.changed and engine.stats()['writes'] == 0


def test_single_object_uses_field_selector_and_only_differences_are_written():
    server = FakeTransport([cm('a')])
    engine = eng.Engine(server)
    engine.apply([cm('a', value='new')])
    assert server.log[0][2] == {'fieldSelector': 'metadata.name=a'}
    assert server.log[1][0] == 'PATCH'
    assert server.log[1][2] == {'fieldManager': 'winkube.gmsa', 'force': 'false'}
    assert engine.changed
    diff = engine.diff()
    assert diff['before']['ConfigMap n/a']['data'] == {'k': 'v'}
    assert diff['after']['ConfigMap n/a']['data'] == {'k': 'new'}


def test_check_mode_uses_dry_run_and_leaves_server_alone():
    server = FakeTransport([cm('a')])
    engine = eng.Engine(server, check_mode=True)
    engine.apply([cm('a', value='new'), cm('b')])
    assert all(q.get('dryRun') == 'All' for m, p, q in server.log if m == 'PATCH')
    assert server.objects[('v1', 'ConfigMap', 'n', 'a')]['data'] == {'k': 'v'}
    assert ('v1', 'ConfigMap', 'n', 'b') not in server.objects
    assert [c['action'] for c in engine.summary()] == ['updated', 'created']


def test_conflict_message_points_at_force_conflicts():
    server = FakeTransport([cm('a')])
    obj = cm('a', value='x')
    obj['conflict'] = True
    with pytest.raises(K8sError, match='force_conflicts'):
        eng.Engine(server).apply([obj])
    eng.Engine(server, force_conflicts=True).apply([obj])


def test_delete_only_managed_and_missing_is_unchanged():
    server = FakeTransport([cm('a'), cm('foreign', managed=False)])
    engine = eng.Engine(server)
    changes = engine.delete([('v1', 'ConfigMap', 'n', 'a'), ('v1', 'ConfigMap', 'n', 'foreign'),
                             ('v1', 'ConfigMap', 'n', 'gone')], only_managed=True, mode='scope')
    assert [c.action for c in changes] == ['deleted', 'skipped', 'unchanged']
    assert server.counts == {'GET': 1, 'DELETE': 1}
    assert ('v1', 'ConfigMap', 'n', 'foreign') in server.objects


def test_check_mode_delete_puts_dry_run_in_the_body():
    server = FakeTransport([cm('a')])
    eng.Engine(server, check_mode=True).delete([('v1', 'ConfigMap', 'n', 'a')])
    assert ('v1', 'ConfigMap', 'n', 'a') in server.objects


def test_merged_changes_keep_first_before_and_last_after():
    engine = eng.Engine(FakeTransport())
    ref = ('v1', 'ConfigMap', 'n', 'a')
    engine.changes = [eng.Change(ref, 'updated', {'v': 1}, {'v': 2}), eng.Change(ref, 'updated', {'v': 2}, {'v': 3})]
    assert engine.diff() == {'before': {'ConfigMap n/a': {'v': 1}}, 'after': {'ConfigMap n/a': {'v': 3}}}
    assert len(engine.summary()) == 1


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(K8sError, match='does not know the kind'):
        eng.ref_of({'apiVersion': 'x/v1', 'kind': 'Nope', 'metadata': {'name': 'a'}})


def test_deleting_an_object_that_is_already_terminating_changes_nothing():
    terminating = cm('a')
    terminating['metadata']['deletionTimestamp'] = '2026-11-26T10:00:00Z'
    server = FakeTransport([terminating])
    changes = eng.Engine(server).delete([('v1', 'ConfigMap', 'n', 'a')])
    assert [c.action for c in changes] == ['unchanged']
    assert 'DELETE' not in server.counts
