"""The roles and playbooks end to end against the lab: playbooks/site.yml twice (the second run changes
nothing), check mode on a fresh state, a bad variable, playbooks/remove.yml, and Molecule.

Names are this module's own (RolesApp1, RolesHosts, roles-web, ...) so the shared lab's other tests are
not disturbed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE = f'- import_playbook: {REPO}/playbooks/site.yml\n'
REMOVE = f'- import_playbook: {REPO}/playbooks/remove.yml\n'
NS, NS2 = 'roles-web', 'roles-batch'
COMPUTERS = ['WIN-NODE1$', 'WIN-NODE2$']


# The shared variables are specified once (meta/shared_argument_specs.yml); tests/unit/test_argument_specs.py checks
# that every role's meta/argument_specs.yml carries them as written there.


@pytest.fixture(scope='module')
def lab_vars(samba_lab, k8s_lab, gmsa_webhook):
    """The variable model for this module's objects; the nodes' computer accounts and the workloads exist."""
    for node in COMPUTERS:
        name = node.rstrip('$')
        if subprocess.run(['samba-tool', 'computer', 'show', name, '-H', samba_lab.env['SAMBA_SAM_LDB']],
                          capture_output=True, check=False).returncode != 0:
            subprocess.run(['samba-tool', 'computer', 'add', name, '-H', samba_lab.env['SAMBA_SAM_LDB']],
                           capture_output=True, check=True)
    # leftovers of an earlier session on the shared DC
    conn = samba_lab.ldap()
    for entry in _ad_state(samba_lab)[0].values():
        conn.delete(entry.entry_dn)
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = k8s_lab.api_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)

    def create(call, *args):
        try:
            call(*args)
        except ApiException as exc:
            if exc.status != 409:
                raise

    for ns, sa, deployment, container in ((NS, 'web', 'iis', 'iis'), (NS2, 'batch', 'batch', 'worker')):
        create(core.create_namespace, {'metadata': {'name': ns}})
        create(core.create_namespaced_service_account, ns, {'metadata': {'name': sa}})
        create(apps.create_namespaced_deployment, ns, {
            'metadata': {'name': deployment},
            'spec': {'replicas': 1, 'selector': {'matchLabels': {'app': deployment}},
                     'template': {'metadata': {'labels': {'app': deployment}},
                                  'spec': {'serviceAccountName': sa, 'nodeSelector': {'kubernetes.io/os': 'windows'},
                                           'containers': [{'name': container, 'image': 'example/app:1'}]}}}})
    return {
        'gmsa_domain': dict(samba_lab.module_args(), kds_root_key={'lab_mode': True}),
        'gmsa_cluster': {'kubeconfig': k8s_lab.kubeconfig,
                         'webhook': {'url': gmsa_webhook.url, 'certificate_mode': 'external',
                                     'ca_bundle': gmsa_webhook.ca_bundle_pem.decode()}},
        'gmsa_nodes': {'host_group': 'RolesHosts', 'computers': COMPUTERS, 'computers_mode': 'set'},
        'gmsa_accounts': [
            {'name': 'RolesApp1', 'spns': ['HTTP/rolesapp1.contoso.test', 'host/rolesapp1.contoso.test'],
             'use_by': [{'namespace': NS, 'service_accounts': ['default', 'web']}],
             'workloads': [{'namespace': NS, 'kind': 'Deployment', 'name': 'iis', 'container': 'iis'}]},
            {'name': 'RolesBatch', 'credential_spec': 'roles-batch', 'spns': ['HTTP/rolesbatch.contoso.test'],
             'use_by': [{'namespace': NS2, 'service_accounts': ['batch']}],
             'workloads': [{'namespace': NS2, 'name': 'batch', 'netlogon_restart_hook': True}]},
        ],
    }


def _report(result):
    """The gmsa_validate report (task names carry the role prefix or not, depending on the callback)."""
    for name, task in result.results.items():
        if name.endswith('Keep the report for later tasks'):
            return task['ansible_facts']['gmsa_validate_result']
    raise AssertionError(f'no gmsa_validate report in {sorted(result.results)}')


def _changed_tasks(result):
    """Every task that reported a change (result.results keeps one result per task name; names repeat)."""
    doc = json.loads(result.stdout)
    return sorted(task['task']['name'] for play in doc['plays'] for task in play['tasks']
                  if task['hosts'].get('localhost', {}).get('changed'))


def _ad_state(samba_lab):
    conn = samba_lab.ldap()
    conn.search(samba_lab.base_dn, '(|(sAMAccountName=RolesApp1$)(sAMAccountName=RolesBatch$)(sAMAccountName=RolesHosts))',
                attributes=['sAMAccountName', 'servicePrincipalName', 'member'])
    found = {str(e.sAMAccountName): e for e in conn.entries}
    conn.search('CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,' + samba_lab.config_dn,
                '(objectClass=msKds-ProvRootKey)', attributes=['cn'])
    return found, len(conn.entries)


def _k8s_state(k8s_lab):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = k8s_lab.api_client()
    custom, rbac, apps = client.CustomObjectsApi(api), client.RbacAuthorizationV1Api(api), client.AppsV1Api(api)
    state = {}
    for name in ('gmsa-rolesapp1', 'roles-batch'):
        try:
            state[name] = custom.get_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', name)['credspec']
        except ApiException as exc:
            assert exc.status == 404
    state['roles'] = sorted(r.metadata.name for r in rbac.list_cluster_role().items
                            if r.metadata.name in ('winkube-gmsa-use-gmsa-rolesapp1', 'winkube-gmsa-use-roles-batch'))
    state['bindings'] = sorted('%s/%s' % (b.metadata.namespace, b.metadata.name)
                               for ns in (NS, NS2) for b in rbac.list_namespaced_role_binding(ns).items)
    iis = apps.read_namespaced_deployment('iis', NS).spec.template.spec.containers[0]
    state['iis'] = iis.security_context.windows_options.gmsa_credential_spec_name if iis.security_context else None
    batch = apps.read_namespaced_deployment('batch', NS2).spec.template.spec
    state['batch'] = batch.security_context.windows_options.gmsa_credential_spec_name \
        if batch.security_context and batch.security_context.windows_options else None
    hook = batch.containers[0].lifecycle.post_start if batch.containers[0].lifecycle else None
    state['batch_netlogon_hook'] = bool(hook and 'netlogon' in ' '.join(hook._exec.command))
    return state


def test_bad_variable_fails_at_the_start(run_playbook, lab_vars):
    bad = json.loads(json.dumps(lab_vars))
    bad['gmsa_accounts'][0]['spn'] = ['HTTP/typo']          # unknown key
    bad['gmsa_nodes']['mode'] = 'domainjoined'              # not a choice
    result = run_playbook(SITE, extra_vars=bad)
    assert result.rc != 0, result
    # site.yml's first play checks every role through its validate entry point, before any role runs
    assert "Validating arguments against arg spec 'validate'" in result.stdout, result
    assert 'spn' in result.stdout and 'domainjoined' in result.stdout, result
    assert not result.changed, result


def test_check_mode_on_a_fresh_state_changes_nothing(run_playbook, lab_vars, samba_lab, k8s_lab):
    before_ad, before_keys = _ad_state(samba_lab)
    before_k8s = _k8s_state(k8s_lab)
    assert not before_ad
    result = run_playbook(SITE, extra_vars=lab_vars, check=True, diff=True)
    assert result.rc == 0, result
    assert _changed_tasks(result), result  # it reports what it would do ...
    after_ad, after_keys = _ad_state(samba_lab)
    assert (after_ad, after_keys) == (before_ad, before_keys)  # ... without doing it
    assert _k8s_state(k8s_lab) == before_k8s


def test_site_twice(run_playbook, lab_vars, samba_lab, k8s_lab):
    first = run_playbook(SITE, extra_vars=lab_vars)
    assert first.rc == 0, first
    assert _changed_tasks(first), first
    second = run_playbook(SITE, extra_vars=lab_vars)
    assert second.rc == 0, second
    assert _changed_tasks(second) == [], second

    ad, keys = _ad_state(samba_lab)
    assert set(ad) == {'RolesApp1$', 'RolesBatch$', 'RolesHosts'}
    spns = sorted(map(str, ad['RolesApp1$'].servicePrincipalName))
    assert spns == ['HTTP/rolesapp1.contoso.test', 'host/rolesapp1.contoso.test']
    assert len(ad['RolesHosts'].member) == 2 and keys >= 1
    k8s = _k8s_state(k8s_lab)
    assert k8s['gmsa-rolesapp1']['DomainJoinConfig']['MachineAccountName'] == 'RolesApp1'
    assert k8s['roles-batch']['ActiveDirectoryConfig']['GroupManagedServiceAccounts'][0]['Name'] == 'RolesBatch'
    assert k8s['roles'] == ['winkube-gmsa-use-gmsa-rolesapp1', 'winkube-gmsa-use-roles-batch']
    assert k8s['bindings'] == [f'{NS2}/winkube-gmsa-use-roles-batch', f'{NS}/winkube-gmsa-use-gmsa-rolesapp1']
    assert (k8s['iis'], k8s['batch']) == ('gmsa-rolesapp1', 'roles-batch')
    assert k8s['batch_netlogon_hook'] is True
    report = _report(second)
    assert [r['ok'] for r in report] == [True, True], report
    # the API server's answer for every listed service account (LocalSubjectAccessReview, as the webhook asks)
    access = {r['gmsa']: [(a['namespace'], a['service_account'], a['allowed']) for a in r['access']] for r in report}
    assert access == {'RolesApp1': [(NS, 'default', True), (NS, 'web', True)], 'RolesBatch': [(NS2, 'batch', True)]}
    assert 'winkube-gmsa-use-roles-batch' in report[1]['access'][0]['reason'], report


def test_validate_diagnoses_a_missing_binding(run_playbook, lab_vars, k8s_lab):
    from kubernetes import client

    client.RbacAuthorizationV1Api(k8s_lab.api_client()).delete_namespaced_role_binding('winkube-gmsa-use-roles-batch', NS2)
    play = '- hosts: localhost\n  gather_facts: false\n  roles: [winkube.gmsa.gmsa_validate]\n'
    result = run_playbook(play, extra_vars=dict(lab_vars, gmsa_validate_fail=False))
    assert result.rc == 0, result
    report = {r['gmsa']: r for r in _report(result)}
    assert report['RolesApp1']['ok'], report
    assert not report['RolesBatch']['ok']
    assert 'RoleBinding winkube-gmsa-use-roles-batch in roles-batch is missing' in report['RolesBatch']['problems'][0]
    assert report['RolesBatch']['next_step'] == 'run the gmsa_credspecs role'
    # the API server agrees: the unbound service account may not use the credential spec, the bound ones may
    assert [(a['service_account'], a['allowed']) for a in report['RolesBatch']['access']] == [('batch', False)]
    assert 'service account roles-batch/batch may not use roles-batch' in report['RolesBatch']['problems'][1], report
    assert all(a['allowed'] for a in report['RolesApp1']['access']), report
    healed = run_playbook(SITE, extra_vars=lab_vars)
    assert healed.rc == 0 and _changed_tasks(healed), healed


def _running_gmsa_pods(k8s_lab, namespace, selector, timeout=90):
    """Names of the Running pods matching selector whose containers carry the webhook's credential spec contents."""
    import time

    from kubernetes import client

    core = client.CoreV1Api(k8s_lab.api_client())
    deadline = time.monotonic() + timeout
    while True:
        names = sorted(pod.metadata.name for pod in core.list_namespaced_pod(namespace, label_selector=selector).items
                       if pod.status.phase == 'Running' and pod.metadata.deletion_timestamp is None
                       and any(context and context.windows_options and context.windows_options.gmsa_credential_spec
                               for context in [pod.spec.security_context] + [c.security_context for c in pod.spec.containers]))
        if names or time.monotonic() > deadline:
            return names
        time.sleep(1)


def test_validate_runs_the_ladder_inside_the_pods(run_playbook, lab_vars, k8s_lab):
    """gmsa_validate_pods: pod_gmsa_check in the pods (exec served by kwok's imitation nltest/nslookup, which
    answer by container name): the iis pod is healthy, a pod whose secure channel is down makes its gMSA fail
    with the ladder's next step."""
    from kubernetes import client

    assert _running_gmsa_pods(k8s_lab, NS, 'app=iis'), 'the iis Deployment has no running pod with the credential spec'
    core = client.CoreV1Api(k8s_lab.api_client())
    broken = {'metadata': {'name': 'roles-broken', 'labels': {'app': 'roles-broken'}},
              'spec': {'serviceAccountName': 'batch', 'nodeSelector': {'kubernetes.io/os': 'windows'},
                       'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': 'roles-batch'}},
                       'containers': [{'name': 'trust-broken', 'image': 'example/app:1'}]}}
    core.create_namespaced_pod(NS2, broken)  # admitted: batch may use roles-batch, the webhook fills the contents
    try:
        assert _running_gmsa_pods(k8s_lab, NS2, 'app=roles-broken') == ['roles-broken']
        play = '- hosts: localhost\n  gather_facts: false\n  roles: [winkube.gmsa.gmsa_validate]\n'
        checks = [{'namespace': NS, 'label_selector': 'app=iis'}, {'namespace': NS2, 'pods': ['roles-broken']}]
        result = run_playbook(play, extra_vars=dict(lab_vars, gmsa_validate_fail=False, gmsa_validate_pods=True,
                                                    gmsa_validate_pod_checks=checks))
        assert result.rc == 0, result
        report = {r['gmsa']: r for r in _report(result)}
        assert report['RolesApp1']['ok'] and report['RolesApp1']['pods'], report
        assert {p['status'] for p in report['RolesApp1']['pods']} == {'healthy'}, report
        batch = report['RolesBatch']
        assert not batch['ok'] and batch['pods'][0]['pod'] == f'{NS2}/roles-broken', batch
        assert batch['pods'][0]['stage'] == 'secure_channel', batch
        assert batch['problems'][0].startswith(f'pod {NS2}/roles-broken: '), batch
        assert batch['next_step'] == batch['pods'][0]['next_step'] and batch['next_step'], batch
    finally:
        core.delete_namespaced_pod('roles-broken', NS2, grace_period_seconds=0)


def test_validate_checks_the_portable_path(run_playbook, lab_vars, samba_lab):
    """gmsa_nodes.mode portable: the portable identity must exist and be in the host group, and every credential
    spec must carry HostAccountConfig with the plugin's GUID (here the Azure Key Vault plugin's)."""
    portable = json.loads(json.dumps(lab_vars))
    portable['gmsa_nodes'].update(mode='portable', portable_identity={'name': 'roles-ccg', 'credentials_to_result': True},
                                  host_account_config={'plugin': 'azure_key_vault',
                                                       'object_id': '11111111-2222-3333-4444-555555555555',
                                                       'secret_uri': 'https://kv1.vault.azure.net/secrets/gmsa-user'})
    play = '- hosts: localhost\n  gather_facts: false\n  roles: [winkube.gmsa.gmsa_validate]\n'
    before = run_playbook(play, extra_vars=dict(portable, gmsa_validate_fail=False))
    assert before.rc == 0, before
    report = {r['gmsa']: r for r in _report(before)}
    guid = report['RolesApp1']['portable']['plugin_guid']
    assert guid == '{CCC2A336-D7F3-4818-A213-272B7924213E}', report  # Microsoft's Azure Key Vault ccg plugin
    problems = ' | '.join(report['RolesApp1']['problems'])
    assert 'the portable identity roles-ccg does not exist' in problems, problems
    assert f'must carry HostAccountConfig with PluginGUID {guid}' in problems, problems

    converged = run_playbook(SITE, extra_vars=portable)
    assert converged.rc == 0, converged
    report = {r['gmsa']: r for r in _report(converged)}
    assert [r['ok'] for r in report.values()] == [True, True], report
    assert report['RolesBatch']['portable'] == {'identity': 'roles-ccg', 'plugin_guid': guid}
    try:
        # back to domain-joined nodes for the tests after this one (the identity stays a member: remove it)
        back = run_playbook(SITE, extra_vars=lab_vars)
        assert back.rc == 0, back
    finally:
        conn = samba_lab.ldap()
        conn.search(samba_lab.base_dn, '(sAMAccountName=roles-ccg)', attributes=['cn'])
        for entry in conn.entries:
            conn.delete(entry.entry_dn)


STORE = SITE + """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: store
      ansible.builtin.copy:
        content: "{{ gmsa_ad_portable_identity_credentials.password }}"
        dest: "{{ creds_file }}"
        mode: "0600"
      no_log: true
      when: gmsa_ad_portable_identity_credentials is defined
"""


def test_site_never_loses_the_portable_identitys_password(run_playbook, lab_vars, samba_lab, k8s_lab, tmp_path):
    """playbooks/site.yml (gmsa_validate runs gmsa_ad again in check mode at the end) with a portable identity: a
    run that would create the user or rotate its password without a place for the password fails before it
    writes; with credentials_to_result the user's store task gets the password the DC really has; with
    kubernetes_secret the Secret does. Each password is proven by a simple bind over LDAPS as the user."""
    from kubernetes import client
    from test_portable_identity import bind_works, pwd_last_set, user_entry

    core = client.CoreV1Api(k8s_lab.api_client())
    creds_file = tmp_path / 'stored-password'
    portable = json.loads(json.dumps(lab_vars))
    host_config = {'plugin': 'azure_key_vault', 'object_id': '11111111-2222-3333-4444-555555555555',
                   'secret_uri': 'https://kv1.vault.azure.net/secrets/gmsa-user'}

    def with_identity(**identity):
        out = json.loads(json.dumps(portable))
        out['gmsa_nodes'].update(mode='portable', host_account_config=host_config,
                                 portable_identity=dict({'name': 'roles-pw', 'update_password': 'always'}, **identity))
        return dict(out, creds_file=str(creds_file))

    try:
        # creation without a store: refused before anything is written
        refused = run_playbook(STORE, extra_vars=with_identity())
        assert refused.rc != 0, refused
        msg = ' '.join(str(m) for m in refused.failures().values())
        assert 'gmsa_nodes.portable_identity.kubernetes_secret' in msg and 'credentials_to_result' in msg, msg
        assert user_entry(samba_lab, 'roles-pw') is None
        assert not creds_file.exists()

        # created with credentials_to_result: the store task after site.yml gets the password, which binds
        made = run_playbook(STORE, extra_vars=with_identity(credentials_to_result=True))
        assert made.rc == 0, made
        dn = user_entry(samba_lab, 'roles-pw')['dn']
        first = creds_file.read_text()
        assert first not in made.stdout + made.stderr
        assert bind_works(samba_lab, dn, first)

        # the reproduction: update_password always, no store -> refused, the password did not move
        before = pwd_last_set(samba_lab, 'roles-pw')
        creds_file.unlink()
        lost = run_playbook(STORE, extra_vars=with_identity())
        assert lost.rc != 0, lost
        assert pwd_last_set(samba_lab, 'roles-pw') == before and bind_works(samba_lab, dn, first)
        assert not creds_file.exists()

        # rotated with credentials_to_result: the stored password is the new one
        rotated = run_playbook(STORE, extra_vars=with_identity(credentials_to_result=True))
        assert rotated.rc == 0, rotated
        second = creds_file.read_text()
        assert second != first and pwd_last_set(samba_lab, 'roles-pw') != before
        assert bind_works(samba_lab, dn, second)

        # rotated into a Kubernetes Secret: nothing returned to Ansible, the Secret's password binds
        creds_file.unlink()
        moved = pwd_last_set(samba_lab, 'roles-pw')
        into_secret = run_playbook(STORE, extra_vars=with_identity(kubernetes_secret={'name': 'roles-pw', 'namespace': NS}))
        assert into_secret.rc == 0, into_secret
        assert not creds_file.exists()
        import base64
        third = base64.b64decode(core.read_namespaced_secret('roles-pw', NS).data['password']).decode()
        assert third not in into_secret.stdout + into_secret.stderr
        assert pwd_last_set(samba_lab, 'roles-pw') != moved and bind_works(samba_lab, dn, third)
    finally:
        back = run_playbook(SITE, extra_vars=lab_vars)
        conn = samba_lab.ldap()
        conn.search(samba_lab.base_dn, '(sAMAccountName=roles-pw)', attributes=['cn'])
        for entry in conn.entries:
            conn.delete(entry.entry_dn)
        try:
            core.delete_namespaced_secret('roles-pw', NS)
        except client.ApiException:
            pass
        assert back.rc == 0, back


def test_validate_checks_the_nodes_over_winrm(run_playbook, lab_vars, winrm_lab, k8s_lab):
    """With gmsa_nodes.winrm, gmsa_validate runs gmsa_nodes in check mode: a node without the registry fix and a
    node failing preflight show up in every gMSA's diagnosis, and nothing is written; site.yml then fixes it."""
    hns = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\hns\\State'
    winrm_lab.reset()
    winrm = winrm_lab.module_args()
    with_nodes = json.loads(json.dumps(lab_vars))
    with_nodes['gmsa_nodes'].update(winrm=winrm, node_names={entry: k8s_lab.windows_nodes[0] for entry in winrm['hosts']})
    winrm_lab.put_state('WIN-NODE2', {'domain': {'joined': False, 'name': 'WORKGROUP'}})
    play = '- hosts: localhost\n  gather_facts: false\n  roles: [winkube.gmsa.gmsa_validate]\n'
    result = run_playbook(play, extra_vars=dict(with_nodes, gmsa_validate_fail=False))
    assert result.rc == 0, result
    for entry in _report(result):
        problems = ' | '.join(entry['problems'])
        assert not entry['ok'], entry
        assert 'EnableCompartmentNamespace is not 1 on %s, %s' % tuple(winrm['hosts']) in problems, problems
        assert 'gmsa_nodes: preflight failed: %s' % winrm['hosts'][1] in problems and 'Add-Computer' in problems, problems
        assert entry['next_step'] == 'run the gmsa_nodes role, then recreate the gMSA pods on those nodes', entry
    assert [h['registry'].get(hns) for h in winrm_lab.state().values()] == [None, None]  # check mode only

    winrm_lab.put_state('WIN-NODE2', {'domain': {'joined': True, 'name': 'contoso.test'}})
    fixed = run_playbook(SITE, extra_vars=with_nodes)
    assert fixed.rc == 0, fixed
    assert [r['ok'] for r in _report(fixed)] == [True, True], _report(fixed)
    assert [h['registry'][hns]['EnableCompartmentNamespace']['value'] for h in winrm_lab.state().values()] == [1, 1]


def _delete_foreign_credential_specs(k8s_lab):
    """Credential specs other test modules left in the shared lab: the crd module rightly refuses to remove
    the CRD while any exist, and this test is about a cluster that holds only this inventory's."""
    from kubernetes import client

    custom = client.CustomObjectsApi(k8s_lab.api_client())
    ours = {'gmsa-rolesapp1', 'roles-batch'}
    for item in custom.list_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs')['items']:
        if item['metadata']['name'] not in ours:
            custom.delete_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', item['metadata']['name'])


def test_remove_takes_everything_out_but_the_kds_root_key(run_playbook, lab_vars, samba_lab, k8s_lab):
    _delete_foreign_credential_specs(k8s_lab)
    dummy, keys_before = _ad_state(samba_lab)
    first = run_playbook(REMOVE, extra_vars=lab_vars)
    assert first.rc == 0, first
    ad, keys = _ad_state(samba_lab)
    assert ad == {} and keys == keys_before >= 1
    k8s = _k8s_state(k8s_lab)
    assert 'gmsa-rolesapp1' not in k8s and 'roles-batch' not in k8s
    assert k8s['roles'] == [] and k8s['bindings'] == [] and (k8s['iis'], k8s['batch']) == (None, None)
    assert k8s['batch_netlogon_hook'] is False
    second = run_playbook(REMOVE, extra_vars=lab_vars)
    assert second.rc == 0, second
    assert _changed_tasks(second) == [], second


@pytest.mark.skipif(os.environ.get('WINKUBE_MOLECULE') != '1' or not shutil.which('molecule', path=str(Path(sys.executable).parent)),
                    reason='set WINKUBE_MOLECULE=1 to run `molecule test` (about 1-2 minutes on the running lab)')
def test_molecule(lab_vars, k8s_lab, winrm_lab):
    winrm_lab.reset()  # the scenario's gmsa_nodes starts from nodes without EnableCompartmentNamespace
    # as a user runs it: no ANSIBLE_* variable at all (extensions/molecule/config.yml finds the collection)
    env = {key: value for key, value in os.environ.items() if not key.startswith('ANSIBLE_')}
    env.update(WINKUBE_LAB_STATE=str(Path(k8s_lab.state_dir).parent),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run([str(Path(sys.executable).parent / 'molecule'), 'test'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-4000:]
    # gmsa_nodes ran against the WinRM endpoint (not skipped for want of a connection), and verify read it back
    output = re.sub(r'\x1b\[[0-9;]*m', '', proc.stdout + proc.stderr)  # molecule logs to stderr, maybe in colour
    # (molecule frames and wraps the lines: the task's result is within the next few lines)
    assert re.search(r'TASK \[Every node has EnableCompartmentNamespace = 1\](?:[^\n]*\n){1,4}?[^\n]*ok: \[localhost\]', output), \
        output[-8000:]
