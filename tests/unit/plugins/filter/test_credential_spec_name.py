"""winkube.gmsa.credential_spec_name: the one derivation of credential spec names, the modules' own (models/names.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.winkube.gmsa.plugins.filter.credential_spec_name import FilterModule
from ansible_collections.winkube.gmsa.plugins.module_utils.models import names

name_of = FilterModule().filters()['credential_spec_name']


def test_a_gmsa_name_gives_gmsa_and_the_name_in_lower_case():
    assert name_of('WebApp1') == name_of('WebApp1$') == name_of({'name': 'WebApp1$'}) == 'gmsa-webapp1'
    assert name_of({'name': 'Web_App.1'}) == 'gmsa-web-app-1'


def test_an_explicit_credential_spec_wins():
    assert name_of({'name': 'WebApp1', 'credential_spec': 'web-app'}) == 'web-app'
    assert name_of({'name': 'WebApp1', 'credential_spec': None}) == 'gmsa-webapp1'


def test_a_long_name_is_cut_at_253_characters_as_the_modules_cut_it():
    long_name = 'A' * 300
    derived = name_of({'name': long_name})
    assert derived == names.credential_spec_name(long_name) == 'gmsa-' + 'a' * 248
    assert len(derived) == 253 and names.is_dns1123_subdomain(derived)
    # a cut that ends on a '-' loses it, so the name stays a valid subdomain
    assert name_of('x' * 247 + '_y') == 'gmsa-' + 'x' * 247


def test_no_name_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match='give a gMSA name or a gmsa_accounts entry with a name'):
        name_of({'credential_spec': ''})
    with pytest.raises(AnsibleFilterError, match='not 42'):
        name_of(42)
