"""Object parity with upstream's Helm chart (windows-gmsa v0.13.0 charts/gmsa).

tests/data/upstream-chart/helm-template.out is `helm template` of the chart with values equivalent to the module's
defaults (scripts/render-upstream-chart.sh regenerates it). The module's model builds its objects with its
defaults; every field where the two differ must be a row of the table in docs/webhook-chart-parity.md, and every
row must still match a difference. A new, unexplained difference fails here.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.models import certificates as certs
from ansible_collections.winkube.gmsa.plugins.module_utils.models import webhook as wh

import yaml

REPO = Path(__file__).resolve().parents[4]
RENDERED = REPO / 'tests' / 'data' / 'upstream-chart' / 'helm-template.out'
DOC = REPO / 'docs' / 'webhook-chart-parity.md'
# a table row: | `Kind` | `path glob` (fnmatch; list items by name or key, else index) | chart | winkube.gmsa | why |
ROW = re.compile(r'^\|\s*`([^`]+)`\s*\|\s*`([^`]+)`\s*\|')
# lists of objects keyed by one of their fields, so order within them is no difference
LIST_KEYS = ('name', 'key')


def _flatten(value, prefix, out):
    if isinstance(value, dict):
        if not value:
            out[prefix] = {}
        for key, item in value.items():
            _flatten(item, '%s.%s' % (prefix, key) if prefix else key, out)
    elif isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        key = next((k for k in LIST_KEYS if all(k in i for i in value)), None)
        for index, item in enumerate(value):
            _flatten(item, '%s.%s' % (prefix, item[key] if key else index), out)
    else:
        out[prefix] = value
    return out


def chart_objects():
    return {o['kind']: o for o in yaml.safe_load_all(RENDERED.read_text()) if o}


def our_objects():
    """The module's objects with its defaults: self-signed Secret, in-cluster Service, Kubernetes >= 1.30."""
    s = wh.settings_with_defaults({})
    plan = certs.plan_tls(None, wh.tls_names(s))
    objects = wh.build_base_objects(s, plan) + wh.build_webhook_configurations(s, plan.final_bundle(), True)
    return {o['kind']: o for o in objects}


def differences():
    """(kind, path, chart value, our value) of every field that differs; path '*' for a whole object."""
    chart, ours = chart_objects(), our_objects()
    found = []
    for kind in sorted(set(chart) | set(ours)):
        if kind not in chart or kind not in ours:
            found.append((kind, '*', kind in chart, kind in ours))
            continue
        theirs, mine = _flatten(chart[kind], '', {}), _flatten(ours[kind], '', {})
        for path in sorted(set(theirs) | set(mine)):
            if theirs.get(path, '<absent>') != mine.get(path, '<absent>'):
                found.append((kind, path, theirs.get(path, '<absent>'), mine.get(path, '<absent>')))
    return found


def documented():
    rows = []
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows.append((match.group(1), match.group(2)))
    return rows


def test_rendering_is_upstreams_chart():
    header = RENDERED.read_text().splitlines()[:2]
    assert 'helm v4.3.2' in header[0] and 'windows-gmsa v0.13.0' in header[0]
    chart = chart_objects()
    assert set(chart) == {'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Service', 'Deployment',
                          'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'}
    args = chart['Deployment']['spec']['template']['spec']['containers'][0]['args']
    assert args == ['--cert-reload=true']


def test_every_difference_from_the_chart_is_documented():
    rows = documented()
    assert len(rows) > 10, 'the table of docs/webhook-chart-parity.md was not found'
    unexplained = [d for d in differences()
                   if not any(kind == d[0] and fnmatch.fnmatchcase(d[1], pattern) for kind, pattern in rows)]
    assert not unexplained, 'differences from the chart missing in docs/webhook-chart-parity.md:\n' + '\n'.join(
        '%s %s: chart %r, ours %r' % d for d in unexplained)


def test_every_documented_difference_still_exists():
    found = differences()
    stale = [(kind, pattern) for kind, pattern in documented()
             if not any(kind == d[0] and fnmatch.fnmatchcase(d[1], pattern) for d in found)]
    assert not stale, 'rows of docs/webhook-chart-parity.md that match no difference any more: %s' % stale


@pytest.mark.parametrize('path', [
    'spec.template.spec.containers.gmsa-webhook.args',
    'spec.template.spec.containers.gmsa-webhook.env.QPS.value',
    'spec.template.spec.containers.gmsa-webhook.env.BURST.value',
    'spec.template.spec.containers.gmsa-webhook.env.RANDOM_HOSTNAME.value',
    'spec.template.spec.containers.gmsa-webhook.env.TLS_CRT.value',
    'spec.template.spec.containers.gmsa-webhook.image',
    'spec.template.spec.os.name',
    'spec.template.spec.volumes.tls.secret.secretName',
])
def test_fields_that_now_agree_with_the_chart(path):
    """Issue 14 removed these differences: they must stay equal, not become documented ones."""
    chart = _flatten(chart_objects()['Deployment'], '', {})
    ours = _flatten(our_objects()['Deployment'], '', {})
    assert path in chart and chart[path] == ours[path]


def test_a_new_difference_is_caught(monkeypatch):
    """The check itself can fail: a changed field that no row explains is reported."""
    original = wh.build_deployment

    def changed(s, tls_plan=None):
        dep = original(s, tls_plan)
        dep['spec']['template']['spec']['containers'][0]['args'] = ['--cert-reload']
        return dep
    monkeypatch.setattr(wh, 'build_deployment', changed)
    with pytest.raises(AssertionError, match=r'containers\.gmsa-webhook\.args'):
        test_every_difference_from_the_chart_is_documented()
