# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes engine: desired objects -> one LIST per kind -> diff -> server-side apply.

Modules build plain dicts (the desired objects) and hand them to Engine.apply / Engine.delete.
The engine

* groups the objects by kind and reads each kind once: a single object is read with a field selector
  on its name, several with our label selector (scoped to the namespace when they share one);
* compares only the fields we set (desired must be a subset of what the server has) and the fields our
  field manager owns but no longer sets (from managedFields), so untouched objects cost no write;
* writes with server-side apply (field manager ``winkube.gmsa``, force on conflicts only when asked),
  or with server-side dry-run (dryRun=All) in check mode, so validation and admission still run;
  up to ``write_concurrency`` writes are in flight at once (results and errors stay in input order;
  Namespaces and CustomResourceDefinitions, which later objects may need, are written alone, and a binding
  is never written beside a role);
* reports changed only when the server's object changed (resourceVersion in normal mode, the content
  in check mode) and keeps before/after of every changed object for --diff (Secret values redacted).

Every HTTP request goes through the transport's counter (``Engine.requests``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import ApiError, K8sError
from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    FIELD_MANAGER,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MANAGED_SELECTOR,
)

# Writes in flight at once: the API server handles requests in parallel, and one at a time the module mostly
# waits for the network and admission (measured: bench/RESULTS.md).
WRITE_CONCURRENCY = 4
# Kinds that objects after them may need to exist (their namespace, their type): written one at a time.
_BARRIER_KINDS = frozenset(('Namespace', 'CustomResourceDefinition'))
_ROLE_KINDS = frozenset(('Role', 'ClusterRole'))
_BINDING_KINDS = frozenset(('RoleBinding', 'ClusterRoleBinding'))

# (apiVersion, kind) -> (plural, namespaced)
KINDS = {
    ('v1', 'Namespace'): ('namespaces', False),
    ('v1', 'ServiceAccount'): ('serviceaccounts', True),
    ('v1', 'Secret'): ('secrets', True),
    ('v1', 'Service'): ('services', True),
    ('v1', 'ConfigMap'): ('configmaps', True),
    ('v1', 'Pod'): ('pods', True),
    ('apps/v1', 'Deployment'): ('deployments', True),
    ('apps/v1', 'StatefulSet'): ('statefulsets', True),
    ('apps/v1', 'DaemonSet'): ('daemonsets', True),
    ('policy/v1', 'PodDisruptionBudget'): ('poddisruptionbudgets', True),
    ('rbac.authorization.k8s.io/v1', 'ClusterRole'): ('clusterroles', False),
    ('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'): ('clusterrolebindings', False),
    ('rbac.authorization.k8s.io/v1', 'Role'): ('roles', True),
    ('rbac.authorization.k8s.io/v1', 'RoleBinding'): ('rolebindings', True),
    ('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration'): ('mutatingwebhookconfigurations', False),
    ('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration'):
        ('validatingwebhookconfigurations', False),
    ('apiextensions.k8s.io/v1', 'CustomResourceDefinition'): ('customresourcedefinitions', False),
    ('windows.k8s.io/v1', 'GMSACredentialSpec'): ('gmsacredentialspecs', False),
    ('windows.k8s.io/v1alpha1', 'GMSACredentialSpec'): ('gmsacredentialspecs', False),
    ('cert-manager.io/v1', 'Issuer'): ('issuers', True),
    ('cert-manager.io/v1', 'ClusterIssuer'): ('clusterissuers', False),
    ('cert-manager.io/v1', 'Certificate'): ('certificates', True),
}

# metadata the server maintains; never part of a diff
_VOLATILE_METADATA = ('managedFields', 'resourceVersion', 'uid', 'creationTimestamp', 'generation', 'selfLink')
_LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'


def kind_info(api_version, kind):
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        raise K8sError('winkube.gmsa does not know the kind %s %s' % (api_version, kind))


def api_base(api_version):
    return '/api/v1' if api_version == 'v1' else '/apis/' + api_version


def collection_path(api_version, kind, namespace=None):
    plural, namespaced = kind_info(api_version, kind)
    if namespaced and namespace:
        return '%s/namespaces/%s/%s' % (api_base(api_version), namespace, plural)
    return '%s/%s' % (api_base(api_version), plural)


def object_path(ref):
    api_version, kind, namespace, name = ref
    return '%s/%s' % (collection_path(api_version, kind, namespace), name)


def ref_of(obj):
    """(apiVersion, kind, namespace or None, name) of an object."""
    meta = obj.get('metadata') or {}
    namespaced = kind_info(obj['apiVersion'], obj['kind'])[1]
    return (obj['apiVersion'], obj['kind'], meta.get('namespace') if namespaced else None, meta['name'])


def ref_text(ref):
    api_version, kind, namespace, name = ref
    return '%s %s' % (kind, '%s/%s' % (namespace, name) if namespace else name)


# ---------------------------------------------------------------------------------------------------------
# pure comparison helpers (unit-tested)

def _empty(value):
    return value in ({}, [], None, '')


def _named(items):
    names = [i.get('name') for i in items if isinstance(i, dict)]
    return len(names) == len(items) and all(names) and len(set(names)) == len(names)


def is_subset(desired, current):
    """True when every field set in desired has the same value in current (current may hold more)."""
    if desired == current:  # the common case of an unchanged object's fields, at C speed
        return True
    if isinstance(desired, dict):
        if current is None:
            return all(_empty(v) for v in desired.values())
        if not isinstance(current, dict):
            return False
        for key, value in desired.items():
            if key not in current:
                if _empty(value):
                    continue
                return False
            if not is_subset(value, current[key]):
                return False
        return True
    if isinstance(desired, list):
        if current is None:
            return not desired
        if not isinstance(current, list):
            return False
        if _named(desired) and _named(current):
            # associative lists (containers, env, ports, versions, webhooks...) merge by name under server-side
            # apply: items of other managers may sit beside ours, in any order (items we set earlier and no
            # longer want are found through managedFields instead)
            by_name = dict((c['name'], c) for c in current)
            return all(is_subset(d, by_name.get(d['name'])) for d in desired)
        if len(desired) != len(current):
            return False
        return all(is_subset(d, c) for d, c in zip(desired, current))
    return desired == current


def manager_fields(current, manager, operation='Apply'):
    """fieldsV1 of the given field manager's apply entry, or None when it owns nothing."""
    for entry in (current or {}).get('metadata', {}).get('managedFields') or []:
        if entry.get('manager') == manager and entry.get('operation') == operation:
            return entry.get('fieldsV1') or {}
    return None


def _list_item_matches(keys, item):
    return isinstance(item, dict) and all(item.get(k) == v for k, v in keys.items())


def owns_unwanted_fields(fields, desired):
    """True when fields (fieldsV1 of our manager) include a field that desired no longer sets."""
    for key, sub in (fields or {}).items():
        if key == '.' or not key.startswith('f:'):
            continue
        name = key[2:]
        if not isinstance(desired, dict) or name not in desired:
            return True
        value = desired[name]
        if not sub:
            continue
        if isinstance(value, dict):
            if owns_unwanted_fields(sub, value):
                return True
        elif isinstance(value, list):
            items = [k for k in sub if k[:2] in ('k:', 'v:', 'i:')]
            if len(items) > len(value):
                return True
            for item_key in items:
                try:
                    ident = json.loads(item_key[2:])
                except ValueError:
                    return True
                if item_key.startswith('k:'):
                    match = [d for d in value if _list_item_matches(ident, d)]
                    if not match or owns_unwanted_fields(sub[item_key], match[0]):
                        return True
                elif item_key.startswith('v:') and ident not in value:
                    return True
    return False


def apply_reasons(desired, current, manager=FIELD_MANAGER):
    """Why desired must be applied over current (empty list: nothing to do)."""
    if current is None:
        return ['missing']
    reasons = []
    if not is_subset(desired, current):
        reasons.append('differs')
    owned = manager_fields(current, manager)
    if owned is not None and owns_unwanted_fields(owned, desired):
        reasons.append('owns fields no longer wanted')
    return reasons


def redact(obj):
    """An object for display: server-maintained metadata dropped, Secret values replaced by a digest."""
    if obj is None:
        return None
    obj = copy.deepcopy(obj)
    meta = obj.get('metadata') or {}
    for key in _VOLATILE_METADATA:
        meta.pop(key, None)
    annotations = meta.get('annotations')
    if annotations and _LAST_APPLIED in annotations:
        annotations.pop(_LAST_APPLIED)
        if not annotations:
            meta.pop('annotations')
    obj.pop('status', None)
    if obj.get('kind') == 'Secret':
        for field in ('data', 'stringData'):
            if isinstance(obj.get(field), dict):
                obj[field] = dict((k, 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER sha256:%s' % hashlib.sha256(
                    str(v).encode('utf-8')).hexdigest()[:16]) for k, v in obj[field].items())
    return obj


class Change(object):
    __slots__ = ('ref', 'action', 'before', 'after', 'reasons')

    def __init__(self, ref, action, before=None, after=None, reasons=None):
        self.ref = ref
        self.action = action  # created | updated | deleted | unchanged | skipped
        self.before = before
        self.after = after
        self.reasons = reasons or []

    @property
    def changed(self):
        return self.action in ('created', 'updated', 'deleted')

    def summary(self):
        api_version, kind, namespace, name = self.ref
        result = {'api_version': api_version, 'kind': kind, 'name': name, 'action': self.action}
        if namespace:
            result['namespace'] = namespace
        if self.reasons:
            result['reasons'] = self.reasons
        return result


class Engine(object):
    """Reads, compares and writes objects; see the module docstring."""

    def __init__(self, transport, field_manager=FIELD_MANAGER, force_conflicts=False, check_mode=False,
                 write_concurrency=WRITE_CONCURRENCY):
        self.transport = transport
        self.write_concurrency = max(1, int(write_concurrency or 1))
        self.field_manager = field_manager
        self.force_conflicts = force_conflicts
        self.check_mode = check_mode
        self.cache = {}  # ref -> object, or None when known absent
        self.changes = []
        self.planned_namespaces = set()  # namespaces that only exist in this check-mode run

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def requests(self):
        return self.transport.count

    def request(self, method, path, query=None, body=None, content_type=None):
        return self.transport.request(method, path, query=query, body=body, content_type=content_type)

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        """One LIST; every item is cached and returned (with apiVersion and kind filled in)."""
        query = {}
        if label_selector:
            query['labelSelector'] = label_selector
        if field_selector:
            query['fieldSelector'] = field_selector
        try:
            data = self.request('GET', collection_path(api_version, kind, namespace), query=query)
        except ApiError as exc:
            if exc.status == 404:
                raise K8sError('the API server does not serve %s %s (%s); is its CustomResourceDefinition '
                               'installed?' % (api_version, kind, exc.message))
            raise
        items = []
        for item in data.get('items') or []:
            item.setdefault('apiVersion', api_version)
            item.setdefault('kind', kind)
            self.cache[ref_of(item)] = item
            items.append(item)
        return items

    def fetch(self, refs, mode='auto'):
        """Read the current state of refs with one LIST per kind (cached; known refs cost nothing).

        mode: auto (one ref: field selector on its name; several: our label selector) or scope (every
        object of the kind in the namespace, or in the cluster, without a selector).
        """
        groups = {}
        for ref in refs:
            if ref not in self.cache:
                groups.setdefault((ref[0], ref[1]), []).append(ref)
        for (api_version, kind), group in groups.items():
            group = sorted(set(group), key=lambda r: (r[2] or '', r[3]))
            namespaces = set(r[2] for r in group)
            namespace = namespaces.pop() if len(namespaces) == 1 else None
            if namespace in self.planned_namespaces:
                for ref in group:
                    self.cache[ref] = None
                continue
            if mode == 'auto' and len(group) == 1:
                self.list(api_version, kind, namespace, field_selector='metadata.name=%s' % group[0][3])
            elif mode == 'auto':
                self.list(api_version, kind, namespace, label_selector=MANAGED_SELECTOR)
            else:
                self.list(api_version, kind, namespace)
            for ref in group:
                self.cache.setdefault(ref, None)

    def current(self, ref, mode='auto'):
        self.fetch([ref], mode)
        return self.cache.get(ref)

    def get(self, ref):
        """A fresh GET (for waiting), bypassing the cache; None when absent."""
        try:
            obj = self.request('GET', object_path(ref))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        self.cache[ref] = obj
        return obj

    # -- writing ------------------------------------------------------------------------------------------
    def _apply_one(self, obj, ref):
        query = {'fieldManager': self.field_manager, 'force': 'true' if self.force_conflicts else 'false'}
        if self.check_mode:
            query['dryRun'] = 'All'
        try:
            return self.request('PATCH', object_path(ref), query=query, body=obj,
                                content_type='application/apply-patch+yaml')
        except ApiError as exc:
            if exc.status == 404 and self.check_mode and ref[2] in self.planned_namespaces:
                return None  # its namespace would be created by this run; nothing to dry-run against
            if exc.status == 409:
                raise K8sError('%s: conflict with another field manager: %s. Set force_conflicts=true to take '
                               'these fields over.' % (ref_text(ref), exc.message))
            if exc.status == 404 and ref[2]:
                raise K8sError('%s: namespace %s does not exist (%s)' % (ref_text(ref), ref[2], exc.message))
            raise K8sError('%s: the API server refused the object: %s' % (ref_text(ref), exc.message))

    def _write(self, obj, ref):
        """One apply and the HTTP status it got (read in the thread that made the request)."""
        result = self._apply_one(obj, ref)
        return result, getattr(self.transport, 'last_status', 201)

    def _batches(self, pending):
        """Runs of consecutive writes that may go in parallel; a barrier kind is a run of its own, and a binding
        never runs beside a role (the API server checks a binding's role against its creator's rights, so the
        role must exist first)."""
        batch = []
        for item in pending:
            kind = item[1][1]
            if kind in _BARRIER_KINDS:
                if batch:
                    yield batch
                yield [item]
                batch = []
                continue
            if kind in _BINDING_KINDS and any(other[1][1] in _ROLE_KINDS for other in batch):
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch

    def _write_batch(self, batch):
        """[(result, status) or the exception] in batch order. Stops starting writes after the first error;
        writes already started finish (and are reported)."""
        if self.write_concurrency == 1 or len(batch) == 1:
            outcomes = []
            for obj, ref in batch:
                try:
                    outcomes.append(self._write(obj, ref))
                except K8sError as exc:
                    outcomes.append(exc)
                    break
            return outcomes
        with ThreadPoolExecutor(max_workers=min(self.write_concurrency, len(batch))) as pool:
            futures = [pool.submit(self._write, obj, ref) for obj, ref in batch]
            outcomes, failed = [], False
            for future in futures:
                if failed and future.cancel():  # not started yet: an earlier write failed, leave it undone
                    outcomes.append(None)
                    continue
                try:
                    outcomes.append(future.result())
                except K8sError as exc:
                    outcomes.append(exc)
                    failed = True
                    for later in futures:
                        later.cancel()
        return outcomes

    def apply(self, objects, mode='auto'):
        """Server-side apply of the objects that differ; returns their Change records (in input order).

        On a refused object the error of the first refused object (input order) is raised, after the
        changes of the writes that were done are recorded (engine.summary() shows them)."""
        objects = json.loads(json.dumps(objects))  # plain JSON types, copied (one pass for all objects)
        refs = [ref_of(o) for o in objects]
        self.fetch(refs, mode)
        changes = [None] * len(objects)
        pending = []
        reasons_of = {}
        for index, (obj, ref) in enumerate(zip(objects, refs)):
            reasons = apply_reasons(obj, self.cache.get(ref), self.field_manager)
            if reasons:
                reasons_of[index] = reasons
                pending.append((index, ref, obj))
            else:
                changes[index] = Change(ref, 'unchanged')
        error = None
        for batch in self._batches(pending):
            outcomes = self._write_batch([(obj, ref) for index, ref, obj in batch])
            for (index, ref, obj), outcome in zip(batch, outcomes):
                if outcome is None:
                    continue
                if isinstance(outcome, Exception):
                    error = error or outcome
                    continue
                changes[index] = self._record(obj, ref, outcome, reasons_of[index])
            if error is not None:
                break
        done = [c for c in changes if c is not None]
        self.changes.extend(done)
        if error is not None:
            raise error
        return done

    def _record(self, obj, ref, outcome, reasons):
        """The Change of one write; updates the cache (and, in check mode, the planned namespaces)."""
        result, status = outcome
        current = self.cache.get(ref)
        # 200 means the object existed (possibly without our label, so the LIST did not show it)
        existed = current is not None or (result is not None and status == 200)
        if result is None:
            result = obj
        result.setdefault('apiVersion', ref[0])
        result.setdefault('kind', ref[1])
        before, after = redact(current), redact(result)
        if self.check_mode:
            changed = before != after
        else:
            changed = current is None or (result.get('metadata', {}).get('resourceVersion')
                                          != current.get('metadata', {}).get('resourceVersion'))
        action = ('updated' if existed else 'created') if changed else 'unchanged'
        if self.check_mode and ref[1] == 'Namespace' and current is None:
            self.planned_namespaces.add(ref[3])
        self.cache[ref] = result
        return Change(ref, action, before, after, reasons)

    def delete(self, refs, only_managed=False, mode='auto'):
        """Delete the refs that exist. only_managed: leave objects without our managed-by label alone."""
        self.fetch(refs, mode)
        changes = []
        for ref in refs:
            current = self.cache.get(ref)
            # an object already terminating is on its way out: deleting it again would change nothing
            if current is None or current.get('metadata', {}).get('deletionTimestamp'):
                changes.append(Change(ref, 'unchanged'))
                continue
            labels = current.get('metadata', {}).get('labels') or {}
            if only_managed and labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
                changes.append(Change(ref, 'skipped', reasons=['not labelled %s' % MANAGED_SELECTOR]))
                continue
            options = {'apiVersion': 'v1', 'kind': 'DeleteOptions', 'propagationPolicy': 'Background'}
            query = None
            if self.check_mode:
                # with a body the API server reads the options from the body only: dryRun must be there
                options['dryRun'] = ['All']
                query = {'dryRun': 'All'}
            try:
                self.request('DELETE', object_path(ref), query=query, body=options)
            except ApiError as exc:
                if exc.status == 404:
                    changes.append(Change(ref, 'unchanged'))
                    self.cache[ref] = None
                    continue
                raise K8sError('%s: delete refused: %s' % (ref_text(ref), exc.message))
            self.cache[ref] = None
            changes.append(Change(ref, 'deleted', redact(current), None))
        self.changes.extend(changes)
        return changes

    # -- results ------------------------------------------------------------------------------------------
    def merged_changes(self):
        """One Change per object: first before, last after, the strongest action (an object may be applied
        twice in one run, e.g. webhook configurations during a certificate rotation)."""
        order, merged = [], {}
        rank = {'skipped': 0, 'unchanged': 0, 'updated': 1, 'deleted': 2, 'created': 3}
        for change in self.changes:
            if change.ref not in merged:
                order.append(change.ref)
                merged[change.ref] = Change(change.ref, change.action, change.before, change.after,
                                            list(change.reasons))
                continue
            seen = merged[change.ref]
            if change.changed:
                if not seen.changed:
                    seen.before = change.before
                seen.after = change.after
                if rank[change.action] > rank[seen.action]:
                    seen.action = change.action
                seen.reasons.extend(r for r in change.reasons if r not in seen.reasons)
        return [merged[ref] for ref in order]

    @property
    def changed(self):
        return any(c.changed for c in self.changes)

    def summary(self, include_unchanged=True):
        return [c.summary() for c in self.merged_changes() if include_unchanged or c.action != 'unchanged']

    def diff(self):
        before, after = {}, {}
        for change in self.merged_changes():
            if change.changed:
                key = ref_text(change.ref)
                before[key] = change.before
                after[key] = change.after
        return {'before': before, 'after': after}

    def stats(self):
        objects = len(set(c.ref for c in self.changes))
        return {
            'requests': self.transport.count,
            'by_method': dict(self.transport.counts),
            'objects': objects,
            'writes': sum(v for k, v in self.transport.counts.items() if k != 'GET'),
        }


# ---------------------------------------------------------------------------------------------------------
# module glue: connection, error handling and the common result keys, so the modules stay thin

ENGINE_SPEC = dict(
    force_conflicts=dict(type='bool', default=False),
)


def run_module(module, body):
    """Connect, run body(engine) -> dict of extra results, exit with changed/objects/api_requests/diff.

    K8sError (bad connection options, unreachable or refusing API server, refused objects) becomes
    fail_json with its message.
    """
    from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import connect, require_kubernetes

    require_kubernetes(module)
    concurrency = module.params.get('write_concurrency')
    if concurrency is not None and concurrency < 1:
        module.fail_json(msg='write_concurrency must be 1 or more (got %s); 1 writes one object at a time' % concurrency)
    engine = None
    try:
        engine = Engine(connect(module.params), force_conflicts=module.params.get('force_conflicts') or False,
                        check_mode=module.check_mode,
                        write_concurrency=concurrency or WRITE_CONCURRENCY)
        extra = body(engine) or {}
    except K8sError as exc:
        failure = {'msg': str(exc)}
        if engine is not None:
            failure['objects'] = engine.summary(include_unchanged=False)
            failure['api_requests'] = engine.stats()
            failure['changed'] = engine.changed
        module.fail_json(**failure)
    result = {'changed': engine.changed, 'api_requests': engine.stats(),
              'objects': engine.summary(include_unchanged=module.params.get('return_unchanged', True))}
    if module._diff:
        result['diff'] = engine.diff()
    result.update(extra)
    module.exit_json(**result)
