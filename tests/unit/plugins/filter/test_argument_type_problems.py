"""The roles' wrong-type check: a list or a dict given for a string is named, not converted."""

from __future__ import annotations

from pathlib import Path

import yaml

from ansible_collections.winkube.gmsa.plugins.filter.argument_type_problems import argument_type_problems

ROLES = Path(__file__).resolve().parents[4] / 'roles'


def spec(role):
    return yaml.safe_load((ROLES / role / 'meta' / 'argument_specs.yml').read_text())['argument_specs']['main']['options']


def test_lists_and_dicts_for_strings_are_named_at_any_depth():
    values = {'gmsa_domain': {'server': ['dc1', 'dc2'], 'base_dn': 'DC=x'},
              'gmsa_accounts': [{'name': 'a', 'description': ['a', 'b']}, {'name': {'x': 1}, 'spns': ['HTTP/a', ['b']]}],
              'gmsa_nodes': {'host_group': 'G', 'portable_identity': {'name': 'u', 'kubernetes_secret': {'name': ['s'], 'namespace': 'n'}}}}
    problems = argument_type_problems(values, spec('gmsa_ad'))
    assert sorted(p.split(':')[0] for p in problems) == sorted([
        'gmsa_domain.server', 'gmsa_nodes.portable_identity.kubernetes_secret.name',
        'gmsa_accounts[0].description', 'gmsa_accounts[1].name', 'gmsa_accounts[1].spns[1]'])
    assert 'a list was given where a string is expected' in problems[0]


def test_right_types_numbers_and_missing_values_pass():
    values = {'gmsa_domain': {'server': 'dc1', 'port': 636, 'base_dn': None},
              'gmsa_accounts': [{'name': 'web1', 'description': 2026, 'spns': ['HTTP/web1']}], 'gmsa_nodes': None}
    assert argument_type_problems(values, spec('gmsa_ad')) == []
