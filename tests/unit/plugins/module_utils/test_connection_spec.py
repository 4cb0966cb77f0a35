"""The shared connection options: one spec, documented once, with secrets marked no_log."""

from __future__ import annotations

import yaml

from ansible_collections.winkube.gmsa.plugins.doc_fragments.ad_connection import ModuleDocFragment as AdDoc
from ansible_collections.winkube.gmsa.plugins.doc_fragments.k8s_connection import ModuleDocFragment as K8sDoc
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import (
    AD_CONNECTION_SPEC, ad_argument_spec)
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import (
    K8S_CONNECTION_SPEC, k8s_argument_spec)


def _doc_options(fragment):
    return yaml.safe_load(fragment.DOCUMENTATION)['options']


def test_ad_fragment_documents_exactly_the_spec():
    assert set(_doc_options(AdDoc)) == set(AD_CONNECTION_SPEC)


def test_k8s_fragment_documents_exactly_the_spec():
    assert set(_doc_options(K8sDoc)) == set(K8S_CONNECTION_SPEC)


def test_defaults_and_types_match_the_docs():
    for fragment, spec in ((AdDoc, AD_CONNECTION_SPEC), (K8sDoc, K8S_CONNECTION_SPEC)):
        for name, doc in _doc_options(fragment).items():
            assert doc['type'] == spec[name]['type'], name
            assert doc.get('default') == spec[name].get('default'), name
            assert doc.get('choices') == spec[name].get('choices'), name


def test_secrets_are_no_log_and_tls_verification_is_on():
    assert AD_CONNECTION_SPEC['password']['no_log'] is True
    assert K8S_CONNECTION_SPEC['api_key']['no_log'] is True
    assert AD_CONNECTION_SPEC['validate_certs']['default'] is True
    assert AD_CONNECTION_SPEC['encryption']['default'] == 'ldaps'


def test_module_options_merge_without_mutating_the_shared_spec():
    spec = ad_argument_spec(name=dict(type='str', required=True), timeout=dict(type='int', default=30))
    assert spec['name']['required'] is True
    assert spec['timeout']['default'] == 30
    assert AD_CONNECTION_SPEC['timeout']['default'] == 10
    assert 'kubeconfig' in k8s_argument_spec()
