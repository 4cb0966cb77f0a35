"""module_defaults through the collection's action groups (meta/runtime.yml), against the real Samba DC."""

from __future__ import annotations

import json


def test_group_ad_sets_the_connection_once(samba_lab, run_playbook):
    """Connection options given once for group/winkube.gmsa.ad reach every AD module of the play."""
    defaults = json.dumps({'group/winkube.gmsa.ad': samba_lab.module_args()})
    res = run_playbook(f"""
    - hosts: localhost
      gather_facts: false
      module_defaults: {defaults}
      tasks:
        - name: facts
          winkube.gmsa.domain_info:
        - name: accounts
          winkube.gmsa.gmsa_info:
            names: [no-such-gmsa]
    """)
    assert res.rc == 0, res
    assert res.results['facts']['dns_name'] == samba_lab.dns_domain
    assert res.results['facts']['dc_dns_hostname'] == samba_lab.hostname
    assert res.results['accounts']['changed'] is False
    assert samba_lab.admin_password not in res.stdout + res.stderr
