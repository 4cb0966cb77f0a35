"""winkube.gmsa.connection_options: the roles pass the modules exactly their connection options."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.winkube.gmsa.plugins.filter.connection_options import FilterModule
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import ad_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec

pick = FilterModule().filters()['connection_options']


def test_ad_options_set_are_kept_and_the_role_keys_dropped():
    domain = {'server': 'dc1', 'password': 'x', 'port': None, 'winrm': {'hosts': ['w1']}, 'kds_root_key': {'lab_mode': True}}
    assert pick(domain, 'ad') == {'server': 'dc1', 'password': 'x', 'winrm': {'hosts': ['w1']}}


def test_k8s_options_and_nothing_else():
    cluster = {'kubeconfig': '/k', 'validate_certs': False, 'webhook': {'url': 'https://x'}, 'missing_namespace': 'fail'}
    assert pick(cluster, 'k8s') == {'kubeconfig': '/k', 'validate_certs': False}
    assert pick(None, 'k8s') == {}


def test_every_connection_option_of_the_modules_passes():
    for kind, spec in (('ad', ad_argument_spec()), ('k8s', k8s_argument_spec())):
        everything = dict({name: 'v' for name in spec}, not_an_option='v')
        assert set(pick(everything, kind)) == set(spec)


def test_an_unknown_kind_is_an_error():
    with pytest.raises(AnsibleFilterError, match='kind must be ad or k8s'):
        pick({}, 'winrm')
