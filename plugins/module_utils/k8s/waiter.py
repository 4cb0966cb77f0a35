# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for the API server to reach a state: CRD Established, Deployment rolled out."""

from __future__ import annotations

import time

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import K8sError


class WaitTimeout(K8sError):
    pass


def wait_until(probe, timeout, what, interval=1.0, sleep=time.sleep, clock=time.monotonic):
    """Call probe() until it returns (True, value); raise WaitTimeout with the last detail after timeout.

    probe returns (done, value_or_detail).
    """
    deadline = clock() + timeout
    detail = None
    while True:
        done, detail = probe()
        if done:
            return detail
        if clock() >= deadline:
            raise WaitTimeout('timed out after %ss waiting for %s: %s' % (timeout, what, detail))
        sleep(interval)


def condition(obj, kind):
    for cond in (obj or {}).get('status', {}).get('conditions') or []:
        if cond.get('type') == kind:
            return cond
    return None


def crd_established(obj):
    """(done, detail) for a CustomResourceDefinition."""
    if obj is None:
        return False, 'the CRD does not exist'
    established = condition(obj, 'Established')
    names = condition(obj, 'NamesAccepted')
    if names and names.get('status') == 'False':
        return False, 'names not accepted: %s' % names.get('message')
    if established and established.get('status') == 'True':
        return True, obj
    return False, 'not Established yet (%s)' % ((established or {}).get('message') or 'no condition')


def rollout_complete(obj):
    """(done, detail) for a Deployment, like `kubectl rollout status`."""
    if obj is None:
        return False, 'the Deployment does not exist'
    spec, status = obj.get('spec') or {}, obj.get('status') or {}
    generation = obj.get('metadata', {}).get('generation', 0)
    wanted = spec.get('replicas', 1)
    progressing = condition(obj, 'Progressing')
    if progressing and progressing.get('reason') == 'ProgressDeadlineExceeded':
        return False, 'progress deadline exceeded: %s' % progressing.get('message')
    if status.get('observedGeneration', 0) < generation:
        return False, 'generation %s not observed yet' % generation
    updated = status.get('updatedReplicas', 0)
    total = status.get('replicas', 0)
    available = status.get('availableReplicas', 0)
    if updated < wanted:
        return False, '%s of %s replicas updated' % (updated, wanted)
    if total > updated:
        return False, '%s old replicas pending termination' % (total - updated)
    if available < updated:
        return False, '%s of %s updated replicas available' % (available, updated)
    return True, obj


def wait_crd_established(engine, name, timeout=60):
    ref = ('apiextensions.k8s.io/v1', 'CustomResourceDefinition', None, name)
    return wait_until(lambda: crd_established(engine.get(ref)), timeout, 'CRD %s to be Established' % name,
                      interval=0.5)


def wait_rollout(engine, namespace, name, timeout=300):
    ref = ('apps/v1', 'Deployment', namespace, name)
    cached = engine.cache.get(ref)
    if cached is not None and cached.get('status') and rollout_complete(cached)[0]:
        return cached  # read by this run's LIST and not written since: no need to ask again
    return wait_until(lambda: rollout_complete(engine.get(ref)), timeout,
                      'Deployment %s/%s to roll out' % (namespace, name), interval=1.0)
