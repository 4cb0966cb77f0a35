"""Waiter conditions and the client's connection option handling (no server)."""

from __future__ import annotations

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import waiter
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import (
    K8sConnectionError,
    bearer_token,
    build_configuration,
)


def deployment(generation=2, observed=2, replicas=2, updated=2, total=2, available=2):
    return {'metadata': {'generation': generation}, 'spec': {'replicas': replicas},
            'status': {'observedGeneration': observed, 'updatedReplicas': updated, 'replicas': total,
                       'availableReplicas': available}}


@pytest.mark.parametrize('obj, done, detail', [
    (deployment(), True, None),
    (deployment(observed=1), False, 'not observed'),
    (deployment(updated=1, total=2), False, '1 of 2 replicas updated'),
    (deployment(total=3), False, 'old replicas'),
    (deployment(available=1), False, 'available'),
    (None, False, 'does not exist'),
])
def test_rollout_complete(obj, done, detail):
    result, info = waiter.rollout_complete(obj)
    assert result is done
    if detail:
        assert detail in info


def test_crd_established():
    assert not waiter.crd_established({'status': {'conditions': []}})[0]
    assert waiter.crd_established({'status': {'conditions': [{'type': 'Established', 'status': 'True'}]}})[0]
    bad = {'status': {'conditions': [{'type': 'NamesAccepted', 'status': 'False', 'message': 'taken'}]}}
    assert 'taken' in waiter.crd_established(bad)[1]


def test_wait_until_times_out_with_last_detail():
    clock = iter(range(100))
    with pytest.raises(waiter.WaitTimeout, match='still pending'):
        waiter.wait_until(lambda: (False, 'still pending'), 3, 'thing', sleep=lambda s: None,
                          clock=lambda: next(clock))


KUBECONFIG = {
    'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'lab',
    'clusters': [{'name': 'lab', 'cluster': {'server': 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': True}}],
    'users': [{'name': 'admin', 'user': {'token': 'abc'}}],
    'contexts': [{'name': 'lab', 'context': {'cluster': 'lab', 'user': 'admin'}},
                 {'name': 'other', 'context': {'cluster': 'lab', 'user': 'admin'}}],
}


def test_kubeconfig_dict_and_context():
    cfg = build_configuration({'kubeconfig': KUBECONFIG, 'context': 'other'})
    assert cfg.host == 'https://127.0.0.1:6443'
    assert bearer_token(cfg) == 'Bearer abc'


def test_bad_context_names_the_option():
    with pytest.raises(K8sConnectionError, match=r"context 'nope' \(option context\).*lab, other"):
        build_configuration({'kubeconfig': KUBECONFIG, 'context': 'nope'})


def test_missing_kubeconfig_file():
    with pytest.raises(K8sConnectionError, match='does not exist'):
        build_configuration({'kubeconfig': '/nonexistent/kubeconfig'})


def test_host_and_token_without_kubeconfig(monkeypatch, tmp_path):
    monkeypatch.setenv('KUBECONFIG', str(tmp_path / 'none'))
    cfg = build_configuration({'host': 'https://10.0.0.1:6443/', 'api_key': 't', 'validate_certs': False})
    assert cfg.host == 'https://10.0.0.1:6443' and cfg.verify_ssl is False
    assert bearer_token(cfg) == 'Bearer t'


def test_json_body_keeps_non_bmp_raw_and_escapes_what_yaml_reads_as_line_breaks():
    import json

    from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import json_body

    value = {'scope': 'a\u2028b\u2029c\x85d\x7fe\U0001F680f\u00e9'}
    raw = json_body(value)
    assert json.loads(raw.decode('utf-8')) == value
    assert b'\\u2028' in raw and b'\\u2029' in raw and b'\\u0085' in raw and b'\\u007f' in raw
    assert '\U0001F680f\u00e9'.encode('utf-8') in raw  # no surrogate-pair escape: the API server refuses those
    assert b'\\ud83d' not in raw
