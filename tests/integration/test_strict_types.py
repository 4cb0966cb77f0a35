"""A list or dict for a text option is refused naming the field, and nothing reaches the real Samba DC."""

from __future__ import annotations

import json
import secrets

import ldap3
import pytest


def _run(run_playbook, samba_lab, **args):
    playbook = """
    - hosts: localhost
      gather_facts: false
      tasks:
        - name: t
          winkube.gmsa.gmsa: "{{ module_args }}"
          ignore_errors: true
    """
    return run_playbook(playbook, extra_vars={'module_args': samba_lab.module_args(**args)})


def _search(samba_lab, ldap_filter):
    conn = samba_lab.ldap()
    try:
        conn.search(samba_lab.base_dn, ldap_filter, search_scope=ldap3.SUBTREE, attributes=['sAMAccountName'])
        return [e['dn'] for e in conn.response if e['type'] == 'searchResEntry']
    finally:
        conn.unbind()


@pytest.mark.parametrize('description', [['a', 'b'], {'a': 'b'}])
def test_gmsa_description_list_or_dict_is_refused_and_nothing_is_written(samba_lab, run_playbook, description):
    name = 'gs%s' % secrets.token_hex(3)
    res = _run(run_playbook, samba_lab, name=name, description=description)
    out = res.results['t']
    assert out.get('failed') is True, res
    assert out['failed_option'] == 'description', out
    kind = 'a list' if isinstance(description, list) else 'a dict'
    assert 'option description must be a single text value (str), but %s was given' % kind in out['msg'], out['msg']
    # read back over LDAP: no account of that name, and no object anywhere carries the converted text
    assert _search(samba_lab, '(sAMAccountName=%s$)' % name) == []
    assert _search(samba_lab, '(description=%s)' % ldap3.utils.conv.escape_filter_chars(str(description))) == []
    assert samba_lab.admin_password not in json.dumps(out)


def test_nested_suboption_is_refused(samba_lab, run_playbook):
    name = 'gs%s' % secrets.token_hex(3)
    res = _run(run_playbook, samba_lab, accounts=[{'name': name, 'description': ['x']}])
    out = res.results['t']
    assert out.get('failed') is True, res
    assert out['failed_option'] == 'accounts[0].description', out
    assert _search(samba_lab, '(sAMAccountName=%s$)' % name) == []
