"""The roles derive credential spec names as the modules do (winkube.gmsa.credential_spec_name over
plugins/module_utils/models/names.py), also for a name longer than Kubernetes accepts: it is cut at 253 characters.

The roles' own checks run for real: gmsa_credspecs' validate tasks ask the lab's API server (check mode, nothing
written), gmsa_validate's report is built from what it has (no gMSA found, so each entry names the missing gMSA).
"""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.models import names

PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the variables as gmsa_credspecs does before it writes
      ansible.builtin.include_role:
        name: winkube.gmsa.gmsa_credspecs
        tasks_from: validate
        public: true
    - name: Check the variables as gmsa_validate does
      ansible.builtin.include_role:
        name: winkube.gmsa.gmsa_validate
        tasks_from: validate
        public: true
    - name: Names the roles derive
      ansible.builtin.set_fact:
        derived:
          gmsa_credspecs: "{{ gmsa_credspecs_names }}"
          gmsa_validate: "{{ gmsa_validate_spec_names }}"
          gmsa_validate_report: "{{ gmsa_validate_report | map(attribute='credential_spec') | list }}"
'''


def test_a_long_gmsa_name_gets_the_modules_credential_spec_name_in_every_role(run_playbook, k8s_lab):
    long_name = 'Web_' + 'App' * 90  # 274 characters: the derived name is cut
    accounts = [{'name': long_name}, {'name': 'Batch1$'}, {'name': 'Other', 'credential_spec': 'other-spec'}]
    result = run_playbook(PLAYBOOK, extra_vars={
        'gmsa_domain': {'server': 'dc1.contoso.test', 'base_dn': 'DC=contoso,DC=test'},
        'gmsa_cluster': {'kubeconfig': k8s_lab.kubeconfig},
        'gmsa_accounts': accounts,
    })
    assert result.rc == 0, result
    expected = [names.credential_spec_name(long_name), 'gmsa-batch1', 'other-spec']
    assert len(expected[0]) == 253 and expected[0] == 'gmsa-web-' + ('app' * 90)[:244]
    derived = result.results['Names the roles derive']['ansible_facts']['derived']
    assert derived['gmsa_credspecs'] == derived['gmsa_validate'] == derived['gmsa_validate_report'] == expected
