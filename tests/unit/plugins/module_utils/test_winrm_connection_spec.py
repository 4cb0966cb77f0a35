"""The WinRM connection options: one spec, documented once (also the nested cluster option)."""

from __future__ import annotations

import yaml

from ansible_collections.winkube.gmsa.plugins.doc_fragments.winrm_connection import ModuleDocFragment as WinrmDoc
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import K8S_CONNECTION_SPEC
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import (
    CLUSTER_OPTION, WINRM_CONNECTION_SPEC, check_connection, winrm_argument_spec)


def _options(text):
    return yaml.safe_load(text)['options']


def test_fragment_documents_exactly_the_spec_with_types_defaults_choices():
    docs = _options(WinrmDoc.DOCUMENTATION)
    assert set(docs) == set(WINRM_CONNECTION_SPEC)
    for name, doc in docs.items():
        spec = WINRM_CONNECTION_SPEC[name]
        assert doc['type'] == spec['type'], name
        assert doc.get('default') == spec.get('default'), name
        assert doc.get('choices') == spec.get('choices'), name
        assert doc.get('elements') == spec.get('elements'), name
        assert doc.get('aliases') == spec.get('aliases'), name
        assert bool(doc.get('required')) == bool(spec.get('required')), name


def test_cluster_fragment_mirrors_the_kubernetes_spec():
    cluster = _options(WinrmDoc.CLUSTER)['cluster']
    assert cluster['type'] == CLUSTER_OPTION['type'] == 'dict'
    assert set(cluster['suboptions']) == set(K8S_CONNECTION_SPEC) == set(CLUSTER_OPTION['options'])
    for name, doc in cluster['suboptions'].items():
        assert doc['type'] == K8S_CONNECTION_SPEC[name]['type'], name
        assert doc.get('aliases') == K8S_CONNECTION_SPEC[name].get('aliases'), name
    assert CLUSTER_OPTION['options']['api_key']['no_log'] is True


def test_secure_defaults_and_env_fallbacks():
    spec = WINRM_CONNECTION_SPEC
    assert spec['password']['no_log'] is True
    assert spec['scheme']['default'] == 'https'
    assert spec['validate_certs']['default'] is True
    assert spec['username']['fallback'][1] == ['GMSA_WINRM_USERNAME']
    assert spec['password']['fallback'][1] == ['GMSA_WINRM_PASSWORD']


def test_module_options_merge_without_mutating_the_shared_spec():
    spec = winrm_argument_spec(port=dict(type='int', default=1234), extra=dict(type='str'))
    assert spec['port']['default'] == 1234 and 'extra' in spec
    assert 'default' not in WINRM_CONNECTION_SPEC['port']


def _params(**overrides):
    params = dict(hosts=['win1'], scheme='https', transport='ntlm', message_encryption='auto',
                  operation_timeout=20, read_timeout=30, concurrency=4)
    params.update(overrides)
    return params


def test_check_connection_rules():
    assert check_connection(_params()) == []
    assert check_connection(_params(scheme='http')) == []
    assert any('basic' in e for e in check_connection(_params(scheme='http', transport='basic')))
    assert any('clear text' in e for e in check_connection(_params(scheme='http', message_encryption='never')))
    assert check_connection(_params(message_encryption='never')) == []  # TLS protects it
    assert any('always' in e for e in check_connection(_params(transport='basic', message_encryption='always')))
    assert any('read_timeout' in e for e in check_connection(_params(read_timeout=20)))
    assert any('operation_timeout' in e for e in check_connection(_params(operation_timeout=0)))
    assert any('concurrency' in e for e in check_connection(_params(concurrency=0)))
    assert any('at least one' in e for e in check_connection(_params(hosts=[])))
