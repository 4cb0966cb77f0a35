"""Bad input, table-driven (bad_inputs.yml): every module and the credential_spec filter refuse wrong input
with a message naming the field, and write nothing, against the real Samba DC and kube-apiserver.

All module rows run as tasks of one playbook (ignore_errors), so the table costs one ansible-playbook run.
Before and after, the test snapshots what a wrong write could touch:

* AD: every object whose cn, sAMAccountName, servicePrincipalName or description contains the run's marker,
  the objects named like the hostile strings of the table, the uSNChanged of a gMSA the rows aim at, and
  the number of KDS root keys;
* Kubernetes: name and resourceVersion of every Namespace, ClusterRole, ClusterRoleBinding, Role,
  RoleBinding, ServiceAccount, Secret, Service, credential spec, webhook configuration and CRD, and the
  names of the Deployments.

Any difference fails the test and shows what changed.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
import yaml

import ldap3
from kubernetes import client  # noqa: E402

HERE = Path(__file__).parent
TABLE = yaml.safe_load((HERE / 'bad_inputs.yml').read_text())
AD_MODULES = {'kds_root_key', 'domain_info', 'gmsa', 'gmsa_info', 'host_group'}
K8S_MODULES = {'crd', 'webhook', 'credential_spec', 'credential_spec_rbac', 'workload_gmsa'}
FILTERS = {'filter:credential_spec'}
HOSTILE_NAMES = ['*)(cn=*']
ROOT_KEYS = 'CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,'


def fill(value, marks):
    """Replace the {uid}/{gmsa}/{ns} placeholders everywhere in a row's args."""
    if isinstance(value, str):
        for key, text in marks.items():
            value = value.replace('{%s}' % key, text)
        return value
    if isinstance(value, list):
        return [fill(v, marks) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, marks) for k, v in value.items()}
    return value


def test_table_is_complete():
    rows = TABLE['module_rows']
    ids = [r['id'] for r in rows]
    print('\nbad_inputs.yml: %d module rows, %d role rows' % (len(rows), len(TABLE.get('role_rows') or [])))
    assert len(rows) >= 40
    assert len(ids) == len(set(ids)), 'duplicate ids'
    assert {r['module'] for r in rows} == AD_MODULES | K8S_MODULES | FILTERS
    for row in rows:
        assert set(row) <= {'id', 'module', 'args', 'expect', 'why'}, row['id']
        assert row['expect'] and isinstance(row['args'], dict), row['id']


# -- snapshots ------------------------------------------------------------------------------------------

def ad_snapshot(samba_lab, uid, gmsa):
    conn = samba_lab.ldap()
    try:
        esc = ldap3.utils.conv.escape_filter_chars
        marker = '(|(cn=*%s*)(sAMAccountName=*%s*)(servicePrincipalName=*%s*)(description=*%s*)%s)' % (
            uid, uid, uid, uid, ''.join('(cn=%s)' % esc(n) for n in HOSTILE_NAMES))
        conn.search(samba_lab.base_dn, marker, attributes=['uSNChanged'])
        marked = sorted(e['dn'] for e in conn.response if e['type'] == 'searchResEntry')
        conn.search(samba_lab.base_dn, '(sAMAccountName=%s$)' % gmsa, attributes=['uSNChanged'])
        target = [(e['dn'], e['raw_attributes']['uSNChanged']) for e in conn.response if e['type'] == 'searchResEntry']
        conn.search(ROOT_KEYS + samba_lab.config_dn, '(objectClass=msKds-ProvRootKey)', search_scope=ldap3.LEVEL,
                    attributes=['cn'])
        keys = sorted(e['dn'] for e in conn.response if e['type'] == 'searchResEntry')
    finally:
        conn.unbind()
    return {'marked': marked, 'target': target, 'root_keys': keys}


def k8s_snapshot(api):
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    adm, ext, apps = client.AdmissionregistrationV1Api(api), client.ApiextensionsV1Api(api), client.AppsV1Api(api)
    custom = client.CustomObjectsApi(api)
    listed = {
        'Namespace': core.list_namespace, 'ServiceAccount': core.list_service_account_for_all_namespaces,
        'Secret': core.list_secret_for_all_namespaces, 'Service': core.list_service_for_all_namespaces,
        'ClusterRole': rbac.list_cluster_role, 'ClusterRoleBinding': rbac.list_cluster_role_binding,
        'Role': rbac.list_role_for_all_namespaces, 'RoleBinding': rbac.list_role_binding_for_all_namespaces,
        'MutatingWebhookConfiguration': adm.list_mutating_webhook_configuration,
        'ValidatingWebhookConfiguration': adm.list_validating_webhook_configuration,
        'CustomResourceDefinition': ext.list_custom_resource_definition,
    }
    snap = {}
    # namespaces already being deleted (cleanup of earlier tests) lose their objects on their own
    snap['terminating'] = sorted(n.metadata.name for n in core.list_namespace().items if n.metadata.deletion_timestamp)
    for kind, lister in listed.items():
        for item in lister().items:
            snap[(kind, item.metadata.namespace, item.metadata.name)] = item.metadata.resource_version
    for item in apps.list_deployment_for_all_namespaces().items:
        snap[('Deployment', item.metadata.namespace, item.metadata.name)] = 'exists'
    for item in custom.list_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs')['items']:
        snap[('GMSACredentialSpec', None, item['metadata']['name'])] = item['metadata']['resourceVersion']
    return snap


def k8s_difference(before, after):
    out = []
    going = set(before['terminating'])
    for key in sorted(set(before) | set(after), key=str):
        if key == 'terminating':
            continue
        if after.get(key) is None and (key[1] in going or (key[0] == 'Namespace' and key[2] in going)):
            continue
        if before.get(key) != after.get(key):
            out.append('%s: %s -> %s' % ('/'.join(k for k in key if k), before.get(key), after.get(key)))
    return out


# -- the playbook ---------------------------------------------------------------------------------------

def playbook(rows):
    tasks = []
    for row in rows:
        if row['module'].startswith('filter:'):
            name = row['module'].split(':', 1)[1]
            extra = ', '.join('%s=rows[%s].%s' % (k, json.dumps(row['id']), k)
                              for k in row['args'] if k not in ('domain', 'account'))
            call = 'rows[%s].domain | winkube.gmsa.%s(rows[%s].account%s)' % (
                json.dumps(row['id']), name, json.dumps(row['id']), (', ' + extra) if extra else '')
            tasks.append('    - name: %s\n      ansible.builtin.set_fact:\n        filtered: "{{ %s }}"\n'
                         '      ignore_errors: true\n' % (row['id'], call.replace('"', '\\"')))
        else:
            tasks.append('    - name: %s\n      winkube.gmsa.%s: "{{ rows[%s] }}"\n      ignore_errors: true\n'
                         % (row['id'], row['module'], json.dumps(row['id']).replace('"', "'")))
    return '- hosts: localhost\n  gather_facts: false\n  tasks:\n' + ''.join(tasks)


@pytest.fixture
def targets(samba_lab, k8s_lab, run_playbook):
    """The run's marker, a gMSA and a namespace the rows aim at, and the CRD (set up with the modules)."""
    uid = secrets.token_hex(4)
    other = secrets.token_hex(3)
    gmsa, ns = 'bi' + other, 'badin-' + other
    setup = """
    - hosts: localhost
      gather_facts: false
      tasks:
        - name: gmsa
          winkube.gmsa.gmsa: "{{ gmsa_args }}"
        - name: crd
          winkube.gmsa.crd: {kubeconfig: "{{ kubeconfig }}"}
        - name: ns
          winkube.gmsa.credential_spec_rbac:
            kubeconfig: "{{ kubeconfig }}"
            missing_namespace: create
            bindings: [{credential_spec: "%s", use_by: [{namespace: "%s", service_accounts: [default]}]}]
    """ % ('bi-' + other, ns)
    result = run_playbook(setup, extra_vars={
        'gmsa_args': samba_lab.module_args(name=gmsa, service_principal_names={'set': ['HTTP/%s.contoso.test' % gmsa]}),
        'kubeconfig': k8s_lab.kubeconfig})
    assert result.rc == 0, result
    yield {'uid': uid, 'gmsa': gmsa, 'ns': ns}
    conn = samba_lab.ldap()
    try:
        conn.delete('CN=%s,CN=Managed Service Accounts,%s' % (gmsa, samba_lab.base_dn))
    finally:
        conn.unbind()


def test_bad_module_input_fails_names_the_field_and_writes_nothing(targets, samba_lab, k8s_lab, run_playbook):
    rows = TABLE['module_rows']
    api = k8s_lab.api_client()
    resolved = {}
    for row in rows:
        args = fill(row['args'], targets)
        if row['module'] in AD_MODULES:
            conn = samba_lab.module_args()
            conn.update(args)
            args = conn
        elif row['module'] in K8S_MODULES:
            args = dict({'kubeconfig': k8s_lab.kubeconfig}, **args)
        resolved[row['id']] = args
    ad_before, k8s_before = ad_snapshot(samba_lab, targets['uid'], targets['gmsa']), k8s_snapshot(api)
    assert ad_before['target'], 'the target gMSA was not created'

    result = run_playbook(playbook(rows), extra_vars={'rows': resolved, 'ansible_no_target_syslog': True})

    problems = []
    for row in rows:
        task = result.results.get(row['id'])
        if task is None:
            problems.append('%s: no result (playbook rc %s)' % (row['id'], result.rc))
            continue
        msg = str(task.get('msg', ''))
        if not task.get('failed'):
            problems.append('%s: did not fail: %s' % (row['id'], json.dumps(task, default=str)[:300]))
        elif row['expect'].lower() not in msg.lower():
            problems.append('%s: message lacks %r: %s' % (row['id'], row['expect'], msg[:400]))
        if task.get('changed'):
            problems.append('%s: reported changed' % row['id'])
        if 'Traceback' in json.dumps(task, default=str) or 'MODULE FAILURE' in msg:
            problems.append('%s: crashed instead of a clear failure: %s' % (row['id'], msg[:300]))
    ad_after, k8s_after = ad_snapshot(samba_lab, targets['uid'], targets['gmsa']), k8s_snapshot(api)
    if ad_after != ad_before:
        problems.append('AD was written: before %s after %s' % (ad_before, ad_after))
    problems += ['Kubernetes was written: %s' % d for d in k8s_difference(k8s_before, k8s_after)]
    assert not os.path.exists('/tmp/pwned-%s' % targets['uid']), 'a YAML tag in a credspec string ran code'
    print('\n%d bad-input rows checked (%d AD, %d Kubernetes, %d filter)' % (
        len(rows), sum(r['module'] in AD_MODULES for r in rows), sum(r['module'] in K8S_MODULES for r in rows),
        sum(r['module'] in FILTERS for r in rows)))
    assert not problems, '\n'.join(problems)


ROLE_ROWS = TABLE.get('role_rows') or []
ROLES = {'gmsa_ad', 'gmsa_cluster', 'gmsa_credspecs', 'gmsa_validate'}


def test_role_table_is_complete():
    ids = [r['id'] for r in ROLE_ROWS]
    module_rows = TABLE['module_rows']
    print('\nbad_inputs.yml: %d rows in all (%d module rows, %d role rows)'
          % (len(module_rows) + len(ROLE_ROWS), len(module_rows), len(ROLE_ROWS)))
    assert len(ids) == len(set(ids)) and not set(ids) & {r['id'] for r in module_rows}, 'duplicate ids'
    assert {r['role'] for r in ROLE_ROWS} == ROLES
    for row in ROLE_ROWS:
        assert set(row) <= {'id', 'role', 'vars', 'expect', 'why'}, row['id']
        assert row['expect'] and isinstance(row['vars'], dict) and row['vars'], row['id']


def merged(base, over):
    """base with over merged in: dicts key by key, anything else replaces, None removes the key."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def role_playbook(rows, resolved):
    """One block per row: include the role with the row's variables; the rescue records the failure."""
    tasks = []
    for row in rows:
        key = json.dumps(row['id']).replace('"', "'")
        role_vars = ''.join('            %s: "{{ rows[%s].%s }}"\n' % (name, key, name) for name in resolved[row['id']])
        tasks.append('    - name: block %s\n      block:\n        - name: include %s\n'
                     '          ansible.builtin.include_role:\n            name: winkube.gmsa.%s\n'
                     '          vars:\n%s      rescue:\n        - name: refused %s\n'
                     '          ansible.builtin.debug:\n            var: ansible_failed_result\n'
                     % (row['id'], row['id'], row['role'], role_vars, row['id']))
    return '- hosts: localhost\n  gather_facts: false\n  tasks:\n' + ''.join(tasks)


def test_bad_role_input_fails_names_the_field_and_writes_nothing(samba_lab, k8s_lab, run_playbook):
    """Every role row, through ansible-playbook and include_role, in one playbook."""
    api = k8s_lab.api_client()
    uid = secrets.token_hex(4)
    marks = {'uid': uid, 'gmsa': 'none' + uid, 'ns': 'none-' + uid}
    lab = {'gmsa_domain': samba_lab.module_args(),
           'gmsa_cluster': {'kubeconfig': k8s_lab.kubeconfig}}
    baseline = merged(lab, fill(TABLE['role_baseline'], marks))
    resolved = {row['id']: merged(baseline, fill(row['vars'], marks)) for row in ROLE_ROWS}
    crd = run_playbook('- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: crd\n'
                       '      winkube.gmsa.crd: {kubeconfig: "%s"}\n' % k8s_lab.kubeconfig)
    assert crd.rc == 0, crd  # so that gmsa_cluster would have nothing to install but what a row asks for
    k8s_before, ad_before = k8s_snapshot(api), ad_snapshot(samba_lab, uid, marks['gmsa'])

    result = run_playbook(role_playbook(ROLE_ROWS, resolved), extra_vars={'rows': resolved})

    problems = []
    for row in ROLE_ROWS:
        task = result.results.get('refused %s' % row['id'])
        if task is None:
            problems.append('%s: not refused (playbook rc %s)' % (row['id'], result.rc))
            continue
        failure = task.get('ansible_failed_result') or {}
        msg = str(failure.get('msg', ''))
        print('%s: %s' % (row['id'], ' '.join(msg.split())[:220]))
        if row['expect'].lower() not in msg.lower():
            problems.append('%s: message lacks %r: %s' % (row['id'], row['expect'], msg[:500]))
        if failure.get('changed'):
            problems.append('%s: reported changed' % row['id'])
        if 'Traceback' in json.dumps(failure, default=str) or 'MODULE FAILURE' in msg:
            problems.append('%s: crashed instead of a clear failure: %s' % (row['id'], msg[:300]))
    ad_after = ad_snapshot(samba_lab, uid, marks['gmsa'])
    if ad_after != ad_before:
        problems.append('AD was written: before %s after %s' % (ad_before, ad_after))
    problems += ['Kubernetes was written: %s' % d for d in k8s_difference(k8s_before, k8s_snapshot(api))]
    assert not os.path.exists('/tmp/pwned-%s' % uid), 'a YAML tag in a role variable ran code'
    counts = {role: sum(r['role'] == role for r in ROLE_ROWS) for role in sorted(ROLES)}
    print('\n%d bad role-input rows checked (%s); %d bad-input rows in the table in all'
          % (len(ROLE_ROWS), ', '.join('%s %d' % item for item in counts.items()),
             len(ROLE_ROWS) + len(TABLE['module_rows'])))
    assert not problems, '\n'.join(problems)


def test_empty_lists_are_no_ops(samba_lab, k8s_lab, run_playbook):
    """An empty list of things to manage (e.g. an inventory with no accounts yet) is not an error: nothing
    is read or written and nothing is reported changed. (accounts: [] used to crash the gmsa module.)"""
    api = k8s_lab.api_client()
    before = k8s_snapshot(api)
    play = """
    - hosts: localhost
      gather_facts: false
      tasks:
        - name: gmsa
          winkube.gmsa.gmsa: "{{ ad | combine({'accounts': []}) }}"
        - name: credential_spec
          winkube.gmsa.credential_spec: {kubeconfig: "{{ kubeconfig }}", credential_specs: []}
    """
    result = run_playbook(play, extra_vars={'ad': samba_lab.module_args(), 'kubeconfig': k8s_lab.kubeconfig})
    assert result.rc == 0, result
    assert result.results['gmsa']['changed'] is False and result.results['gmsa']['accounts'] == []
    assert result.results['gmsa']['ldap_operations'] == {'searches': 0, 'writes': 0}
    assert result.results['credential_spec']['changed'] is False
    assert result.results['credential_spec']['api_requests']['writes'] == 0
    assert k8s_difference(before, k8s_snapshot(api)) == []


# -- playbooks/site.yml: bad input found before the first write of the whole run ---------------------------

SITE_ROWS = TABLE.get('site_rows') or []
REPO = HERE.parents[1]
# Attributes a bind or a search changes on its own (logon bookkeeping), not writes of a run.
AD_VOLATILE = {'lastlogon', 'lastlogontimestamp', 'logoncount', 'badpwdcount', 'badpasswordtime', 'usnchanged',
               'whenchanged', 'dscorepropagationdata', 'replpropertymetadata'}


def ad_full_snapshot(samba_lab):
    """Every object of the domain and of the KDS root key container with every attribute but logon bookkeeping."""
    conn = samba_lab.ldap()
    snap = {}
    try:
        for base in (samba_lab.base_dn, ROOT_KEYS + samba_lab.config_dn):
            entries = conn.extend.standard.paged_search(base, '(objectClass=*)', attributes=[ldap3.ALL_ATTRIBUTES],
                                                        paged_size=500, generator=False)
            for entry in entries:
                if entry.get('type') != 'searchResEntry':
                    continue
                snap[entry['dn'].lower()] = {k.lower(): sorted(repr(v) for v in values)
                                             for k, values in entry['raw_attributes'].items() if k.lower() not in AD_VOLATILE}
    finally:
        conn.unbind()
    return snap


def ad_full_difference(before, after):
    out = ['AD object %s: %s' % ('added' if dn in after else 'deleted', dn) for dn in sorted(set(before) ^ set(after))]
    for dn in sorted(set(before) & set(after)):
        changed = sorted(k for k in set(before[dn]) | set(after[dn]) if before[dn].get(k) != after[dn].get(k))
        if changed:
            out.append('AD object %s: %s changed' % (dn, ', '.join(changed)))
    return out


VALIDATE_ONLY = '\n'.join(
    ['- hosts: localhost', '  gather_facts: false', '  tasks:'] +
    ['    - ansible.builtin.include_role: {name: winkube.gmsa.%s, tasks_from: validate}' % role
     for role in ('gmsa_ad', 'gmsa_nodes', 'gmsa_cluster', 'gmsa_credspecs', 'gmsa_validate')]) + '\n'


def test_site_table_is_complete():
    ids = [r['id'] for r in SITE_ROWS]
    others = {r['id'] for r in TABLE['module_rows'] + ROLE_ROWS}
    assert len(SITE_ROWS) >= 12 and len(ids) == len(set(ids)) and not set(ids) & others
    for row in SITE_ROWS:
        assert set(row) <= {'id', 'vars', 'expect', 'why'} and row['expect'] and row['vars'], row['id']


def test_bad_input_fails_site_yml_before_anything_is_written(samba_lab, k8s_lab, run_playbook):
    """Each row, through playbooks/site.yml: it fails in the checks of the first play, its message names the
    field, and both servers read back in full are unchanged."""
    from kubernetes import client as k8s_client
    api = k8s_lab.api_client()
    uid = secrets.token_hex(3)
    ns = 'site-bi-' + uid
    k8s_client.CoreV1Api(api).create_namespace({'metadata': {'name': ns}})
    marks = {'uid': uid, 'ns': ns}
    lab = {'gmsa_domain': samba_lab.module_args(), 'gmsa_cluster': {'kubeconfig': k8s_lab.kubeconfig}}
    baseline = merged(lab, fill(TABLE['site_baseline'], marks))
    # the baseline passes every check, so each row fails for its own reason
    control = run_playbook(VALIDATE_ONLY, extra_vars=baseline)
    assert control.rc == 0, control
    ad_before, k8s_before = ad_full_snapshot(samba_lab), k8s_snapshot(api)
    problems = []
    try:
        for row in SITE_ROWS:
            result = run_playbook('- import_playbook: %s/playbooks/site.yml\n' % REPO,
                                  extra_vars=merged(baseline, fill(row['vars'], marks)))
            msg = ' '.join(str(m) for m in result.failures().values()) + result.stdout[-3000:]
            expect = fill(row['expect'], marks)
            print('%s: rc %s: %s' % (row['id'], result.rc, ' '.join(' '.join(str(m) for m in result.failures().values()).split())[:200]))
            if result.rc == 0:
                problems.append('%s: site.yml did not fail' % row['id'])
            elif expect.lower() not in msg.lower():
                problems.append('%s: message lacks %r: %s' % (row['id'], expect, msg[-600:]))
            if result.changed:
                problems.append('%s: a task reported changed' % row['id'])
            roles_ran = [name for name, task in result.results.items()
                         if any(word in name for word in ('Ensure', 'Install', 'Deploy')) and not task.get('skipped')]
            if roles_ran:
                problems.append('%s: writing tasks ran: %s' % (row['id'], roles_ran))
    finally:
        ad_after, k8s_after = ad_full_snapshot(samba_lab), k8s_snapshot(api)
        k8s_client.CoreV1Api(api).delete_namespace(ns)
    problems += ad_full_difference(ad_before, ad_after)
    problems += ['Kubernetes was written: %s' % d for d in k8s_difference(k8s_before, k8s_after)]
    print('\n%d site.yml rows checked; %d AD objects and %d Kubernetes objects read back before and after'
          % (len(SITE_ROWS), len(ad_before), len(k8s_before)))
    assert not problems, '\n'.join(problems)
