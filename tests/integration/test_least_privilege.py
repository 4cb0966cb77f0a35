"""Least privilege (docs/least-privilege.md), proven against the real servers.

Kubernetes: a ServiceAccount bound to exactly the ClusterRole the document lists for credential_spec and
for credential_spec_rbac runs those modules through a TokenRequest token (host/api_key/ca_cert, no
kubeconfig); with one rule removed the same run fails and the message names the missing verb and resource.

Active Directory: a plain domain user (not an administrator) given, on one OU only, Create/Delete Child of
msDS-GroupManagedServiceAccount objects and Read/Write Property on those objects (ACEs added to the OU's
nTSecurityDescriptor with the collection's own security descriptor codec, each result also read back by
Samba's NDR code) creates, updates and deletes a gMSA there with the gmsa
module. Without the Create Child right the module fails with a message naming that right, the object
class and the OU, and nothing is created; without Write Property an update fails naming the attribute.
"""

from __future__ import annotations

import secrets
import textwrap
import uuid

import pytest

import ldap3
from kubernetes import client  # noqa: E402

from samba_ndr import assert_samba_reads_back  # noqa: E402
from test_faults import credspec  # noqa: E402
from test_gmsa import SD_MODEL, allowed_sids, attrs_of, make_computer, read, uid  # noqa: E402

# The ClusterRoles of docs/least-privilege.md for these two modules (keep both in step).
RULES = {
    'credential_spec': [
        {'apiGroups': ['windows.k8s.io'], 'resources': ['gmsacredentialspecs'],
         'verbs': ['get', 'list', 'create', 'patch', 'delete']},
    ],
    'credential_spec_rbac': [
        {'apiGroups': [''], 'resources': ['namespaces'], 'verbs': ['get', 'list']},
        {'apiGroups': ['rbac.authorization.k8s.io'], 'resources': ['clusterroles', 'rolebindings'],
         'verbs': ['get', 'list', 'create', 'patch', 'delete']},
        {'apiGroups': ['windows.k8s.io'], 'resources': ['gmsacredentialspecs'], 'verbs': ['use']},
    ],
}

SPEC_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: task
      winkube.gmsa.credential_spec:
        host: "{{ host }}"
        api_key: "{{ token }}"
        ca_cert: "{{ ca_cert }}"
        credential_specs: [{name: "{{ spec }}", credspec: "{{ content }}"}]
      register: out
      ignore_errors: true
"""

RBAC_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: task
      winkube.gmsa.credential_spec_rbac:
        host: "{{ host }}"
        api_key: "{{ token }}"
        ca_cert: "{{ ca_cert }}"
        bindings: [{credential_spec: "{{ spec }}", use_by: [{namespace: "{{ ns }}", service_accounts: [web]}]}]
      register: out
      ignore_errors: true
"""


class LimitedIdentity:
    """A ServiceAccount bound to one ClusterRole (rules given), with a short-lived token."""

    def __init__(self, api, name, rules):
        self.api, self.name = api, name
        self.core, self.rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        self.core.create_namespace({'metadata': {'name': name}})
        self.core.create_namespaced_service_account(name, {'metadata': {'name': 'deployer'}})
        self.rbac.create_cluster_role({'metadata': {'name': name}, 'rules': rules})
        self.rbac.create_cluster_role_binding({
            'metadata': {'name': name},
            'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': name},
            'subjects': [{'kind': 'ServiceAccount', 'name': 'deployer', 'namespace': name}]})
        self.token = self.core.create_namespaced_service_account_token(
            'deployer', name, {'spec': {'expirationSeconds': 3600}}).status.token

    def set_rules(self, rules):
        self.rbac.patch_cluster_role(self.name, {'rules': rules})

    def close(self):
        for call in (lambda: self.rbac.delete_cluster_role_binding(self.name),
                     lambda: self.rbac.delete_cluster_role(self.name), lambda: self.core.delete_namespace(self.name)):
            try:
                call()
            except client.ApiException:
                pass


def without(rules, api_group, resource, verb):
    out = []
    for rule in rules:
        rule = dict(rule, verbs=list(rule['verbs']))
        if api_group in rule['apiGroups'] and resource in rule['resources'] and verb in rule['verbs']:
            if len(rule['resources']) > 1:  # split the rule so only this resource loses the verb
                out.append(dict(rule, resources=[r for r in rule['resources'] if r != resource],
                                verbs=list(rule['verbs'])))
                rule = dict(rule, resources=[resource], verbs=list(rule['verbs']))
            rule['verbs'].remove(verb)
        if rule['verbs']:
            out.append(rule)
    return out


def test_k8s_modules_work_with_exactly_the_documented_cluster_roles(k8s_lab, run_playbook):
    api = k8s_lab.api_client()
    custom, rbac, core = client.CustomObjectsApi(api), client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
    tag = uid()
    ns = 'lp-apps-%s' % tag
    core.create_namespace({'metadata': {'name': ns}})
    assert run_playbook('- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: crd\n'
                        '      winkube.gmsa.crd: {kubeconfig: "%s"}\n' % k8s_lab.kubeconfig).rc == 0
    spec_id = LimitedIdentity(api, 'lp-spec-%s' % tag, RULES['credential_spec'])
    rbac_id = LimitedIdentity(api, 'lp-rbac-%s' % tag, RULES['credential_spec_rbac'])
    common = {'host': k8s_lab.api_url, 'ca_cert': k8s_lab.ca_cert}
    spec1, spec2 = 'gmsa-lp-%s-1' % tag, 'gmsa-lp-%s-2' % tag
    try:
        # credential_spec with its documented role: works, and reads back
        res = run_playbook(SPEC_PLAY, extra_vars=dict(common, token=spec_id.token, spec=spec1,
                                                      content=credspec('LpOne')))
        assert res.results['task'].get('failed') is not True, res.results['task'].get('msg')
        assert custom.get_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', spec1)['credspec'] \
            == credspec('LpOne')
        # ... with 'create' removed: a new credential spec is refused, naming verb and resource
        spec_id.set_rules(without(RULES['credential_spec'], 'windows.k8s.io', 'gmsacredentialspecs', 'create'))
        res = run_playbook(SPEC_PLAY, extra_vars=dict(common, token=spec_id.token, spec=spec2,
                                                      content=credspec('LpTwo')))
        msg = res.results['task'].get('msg', '')
        assert res.results['task'].get('failed') is True
        assert 'cannot create resource "gmsacredentialspecs"' in msg and 'lacks this permission' in msg, msg
        with pytest.raises(client.ApiException):
            custom.get_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', spec2)
        # ... with 'list' removed: even reading is refused, naming list
        spec_id.set_rules(without(RULES['credential_spec'], 'windows.k8s.io', 'gmsacredentialspecs', 'list'))
        res = run_playbook(SPEC_PLAY, extra_vars=dict(common, token=spec_id.token, spec=spec1,
                                                      content=credspec('LpOne')))
        assert 'cannot list resource "gmsacredentialspecs"' in res.results['task'].get('msg', ''), res.results

        # credential_spec_rbac with its documented role (no escalate, no bind: it holds `use` itself)
        res = run_playbook(RBAC_PLAY, extra_vars=dict(common, token=rbac_id.token, spec=spec1, ns=ns))
        assert res.results['task'].get('failed') is not True, res.results['task'].get('msg')
        binding = rbac.read_namespaced_role_binding('winkube-gmsa-use-%s' % spec1, ns)
        assert [(s.name, s.namespace) for s in binding.subjects] == [('web', ns)]
        assert rbac.read_cluster_role('winkube-gmsa-use-%s' % spec1).rules[0].verbs == ['use']
        # ... without `use` on gmsacredentialspecs it may not grant it (RBAC escalation check)
        rbac_id.set_rules(without(RULES['credential_spec_rbac'], 'windows.k8s.io', 'gmsacredentialspecs', 'use'))
        res = run_playbook(RBAC_PLAY, extra_vars=dict(common, token=rbac_id.token, spec=spec2, ns=ns))
        msg = res.results['task'].get('msg', '')
        assert res.results['task'].get('failed') is True
        assert 'attempting to grant RBAC permissions not currently held' in msg, msg
        assert 'gmsacredentialspecs' in msg and '"use"' in msg and 'escalate' in msg, msg
        # ... without patch on rolebindings: refused naming patch and rolebindings
        rbac_id.set_rules(without(RULES['credential_spec_rbac'], 'rbac.authorization.k8s.io', 'rolebindings', 'patch'))
        res = run_playbook(RBAC_PLAY, extra_vars=dict(common, token=rbac_id.token, spec=spec2, ns=ns))
        msg = res.results['task'].get('msg', '')
        assert 'cannot patch resource "rolebindings"' in msg, msg
        with pytest.raises(client.ApiException):
            rbac.read_namespaced_role_binding('winkube-gmsa-use-%s' % spec2, ns)
    finally:
        spec_id.close()
        rbac_id.close()
        for name in (spec1, spec2):
            for call in (lambda: custom.delete_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', name),
                         lambda: rbac.delete_cluster_role('winkube-gmsa-use-%s' % name)):
                try:
                    call()
                except client.ApiException:
                    pass
        core.delete_namespace(ns)


# -- crd, workload_gmsa, webhook: each with exactly its documented ClusterRole ------------------------------

WEBHOOK_RULES = [
    {'apiGroups': [''], 'resources': ['namespaces', 'serviceaccounts', 'secrets', 'services'],
     'verbs': ['get', 'list', 'create', 'patch', 'delete']},
    {'apiGroups': ['apps'], 'resources': ['deployments'], 'verbs': ['get', 'list', 'create', 'patch', 'delete']},
    {'apiGroups': ['policy'], 'resources': ['poddisruptionbudgets'], 'verbs': ['get', 'list', 'create', 'patch', 'delete']},
    {'apiGroups': ['rbac.authorization.k8s.io'], 'resources': ['clusterroles', 'clusterrolebindings'],
     'verbs': ['get', 'list', 'create', 'patch', 'delete']},
    {'apiGroups': ['admissionregistration.k8s.io'],
     'resources': ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'],
     'verbs': ['get', 'list', 'create', 'patch', 'delete']},
    {'apiGroups': ['windows.k8s.io'], 'resources': ['gmsacredentialspecs'], 'verbs': ['get']},
    {'apiGroups': ['authorization.k8s.io'], 'resources': ['localsubjectaccessreviews'], 'verbs': ['create']},
]
RULES.update({
    'crd': [
        {'apiGroups': ['apiextensions.k8s.io'], 'resources': ['customresourcedefinitions'],
         'verbs': ['get', 'list', 'create', 'patch', 'delete']},
        {'apiGroups': ['windows.k8s.io'], 'resources': ['gmsacredentialspecs'], 'verbs': ['list']},
    ],
    'workload_gmsa': [
        {'apiGroups': ['apps'], 'resources': ['deployments', 'statefulsets', 'daemonsets'],
         'verbs': ['get', 'list', 'patch']},
    ],
    'webhook': WEBHOOK_RULES,
})

K8S_PLAYS = {
    'crd': """
    - name: task
      winkube.gmsa.crd: {host: "{{ host }}", api_key: "{{ token }}", ca_cert: "{{ ca_cert }}", force: true}
      register: out
      ignore_errors: true
""",
    'workload_gmsa': """
    - name: task
      winkube.gmsa.workload_gmsa:
        host: "{{ host }}"
        api_key: "{{ token }}"
        ca_cert: "{{ ca_cert }}"
        workloads: [{kind: Deployment, namespace: "{{ ns }}", name: web, credential_spec: "{{ spec }}"}]
      register: out
      ignore_errors: true
""",
    'webhook': """
    - name: task
      winkube.gmsa.webhook:
        host: "{{ host }}"
        api_key: "{{ token }}"
        ca_cert: "{{ ca_cert }}"
        name: "{{ hook }}"
        namespace: "{{ hook }}"
        webhook_url: "https://127.0.0.1:9/"
      register: out
      ignore_errors: true
""",
}


def limited_run(run_playbook, module, extra):
    play = '- hosts: localhost\n  gather_facts: false\n  tasks:' + textwrap.dedent(K8S_PLAYS[module]).replace(
        '\n', '\n    ').rstrip() + '\n'
    return run_playbook(play, extra_vars=extra).results['task']


# module -> (the rule removed: api group, resource, verb; what the refusal must name; a change that makes the
# module write with that verb)
REMOVED = {
    'crd': ('apiextensions.k8s.io', 'customresourcedefinitions', 'patch', 'cannot patch resource "customresourcedefinitions"'),
    'workload_gmsa': ('apps', 'deployments', 'patch', 'cannot patch resource "deployments"'),
    'webhook': ('admissionregistration.k8s.io', 'validatingwebhookconfigurations', 'create',
                'cannot create resource "validatingwebhookconfigurations"'),
}


@pytest.mark.parametrize('module', ['crd', 'workload_gmsa', 'webhook'])
def test_more_k8s_modules_work_with_exactly_the_documented_cluster_roles(module, k8s_lab, run_playbook):
    api = k8s_lab.api_client()
    core, apps, adm = client.CoreV1Api(api), client.AppsV1Api(api), client.AdmissionregistrationV1Api(api)
    tag = uid()
    ns, hook, spec = 'lp-wl-%s' % tag, 'lp-hook-%s' % tag, 'gmsa-lp-%s' % tag
    assert run_playbook('- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: crd\n'
                        '      winkube.gmsa.crd: {kubeconfig: "%s"}\n' % k8s_lab.kubeconfig).rc == 0
    if module == 'workload_gmsa':
        core.create_namespace({'metadata': {'name': ns}})
        apps.create_namespaced_deployment(ns, {
            'metadata': {'name': 'web'},
            'spec': {'replicas': 0, 'selector': {'matchLabels': {'app': 'web'}},
                     'template': {'metadata': {'labels': {'app': 'web'}},
                                  'spec': {'containers': [{'name': 'web', 'image': 'example.invalid/web:1'}]}}}})
    identity = LimitedIdentity(api, 'lp-%s-%s' % (module.replace('_', '-'), tag), RULES[module])
    extra = {'host': k8s_lab.api_url, 'ca_cert': k8s_lab.ca_cert, 'token': identity.token, 'ns': ns, 'hook': hook,
             'spec': spec}
    group, resource, verb, refusal = REMOVED[module]
    try:
        # with the documented rules: works
        res = limited_run(run_playbook, module, extra)
        assert res.get('failed') is not True, res.get('msg')
        if module == 'workload_gmsa':
            pod = apps.read_namespaced_deployment('web', ns).spec.template.spec
            assert pod.security_context.windows_options.gmsa_credential_spec_name == spec
            extra['spec'] = spec + '-b'  # the next run has a change to write
        elif module == 'crd':  # someone dropped the CRD's labels: the next run has to patch them back
            client.ApiextensionsV1Api(api).patch_custom_resource_definition(
                'gmsacredentialspecs.windows.k8s.io', [{'op': 'remove', 'path': '/metadata/labels'}])
        elif module == 'webhook':
            assert adm.read_validating_webhook_configuration(hook).webhooks
            adm.delete_validating_webhook_configuration(hook)  # the next run has to create it again
        # with one rule removed: refused, and the message names the verb and the resource
        identity.set_rules(without(RULES[module], group, resource, verb))
        res = limited_run(run_playbook, module, extra)
        assert res.get('failed') is True, res
        assert refusal in res['msg'] and 'lacks this permission' in res['msg'], res['msg']
    finally:
        identity.close()
        if module == 'crd':
            assert run_playbook('- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: crd\n'
                                '      winkube.gmsa.crd: {kubeconfig: "%s"}\n' % k8s_lab.kubeconfig).rc == 0
        for call in (lambda: core.delete_namespace(ns), lambda: core.delete_namespace(hook),
                     lambda: adm.delete_mutating_webhook_configuration(hook),
                     lambda: adm.delete_validating_webhook_configuration(hook)):
            try:
                call()
            except client.ApiException:
                pass


# -- Active Directory: delegated rights on one OU -------------------------------------------------------

ADS_RIGHT_DS_CREATE_CHILD, ADS_RIGHT_DS_DELETE_CHILD = 0x1, 0x2
ADS_RIGHT_DS_READ_PROP, ADS_RIGHT_DS_WRITE_PROP, READ_CONTROL = 0x10, 0x20, 0x20000
CONTAINER_INHERIT_ACE, INHERIT_ONLY_ACE = 0x02, 0x08
SD_DACL = [('1.2.840.113556.1.4.801', True, b'\x30\x03\x02\x01\x04')]  # LDAP_SERVER_SD_FLAGS: DACL only


def object_ace(sid, mask, object_type=None, inherited_object_type=None, flags=0):
    return SD_MODEL.Ace.allow_object(sid, mask, object_type=object_type, inherited_object_type=inherited_object_type,
                                     flags=flags)


def replace_aces(conn, target_dn, sid, aces):
    """Replace the ACEs of ``sid`` in target_dn's DACL by ``aces`` (our codec; Samba's NDR code reads it back)."""
    conn.search(target_dn, '(objectClass=*)', search_scope=ldap3.BASE, attributes=['nTSecurityDescriptor'],
                controls=SD_DACL)
    raw = conn.response[0]['raw_attributes']['nTSecurityDescriptor'][0]
    assert_samba_reads_back(raw)
    sd = SD_MODEL.SecurityDescriptor.from_bytes(raw)
    assert sd.to_bytes() == raw
    sd.aces = [a for a in sd.aces if a.sid != sid] + aces
    new = sd.to_bytes()
    sddl = assert_samba_reads_back(new)
    assert all(a.sid in sddl for a in aces), sddl
    assert conn.modify(target_dn, {'nTSecurityDescriptor': [(ldap3.MODIFY_REPLACE, [new])]},
                       controls=SD_DACL), conn.result


def gmsa_class_guid(samba_lab):
    conn = samba_lab.ldap()
    try:
        conn.search('CN=Schema,' + samba_lab.config_dn, '(lDAPDisplayName=msDS-GroupManagedServiceAccount)',
                    attributes=['schemaIDGUID'])
        return str(uuid.UUID(bytes_le=conn.response[0]['raw_attributes']['schemaIDGUID'][0]))
    finally:
        conn.unbind()


def set_delegation(samba_lab, ou_dn, sid, create=True, write=True):
    """Replace our user's ACEs on the OU: Create/Delete Child of gMSAs, and Read/Write Property on them."""
    klass = gmsa_class_guid(samba_lab)
    conn = samba_lab.ldap()
    try:
        aces = []
        if create:
            aces.append(object_ace(sid, ADS_RIGHT_DS_CREATE_CHILD | ADS_RIGHT_DS_DELETE_CHILD, object_type=klass))
        mask = ADS_RIGHT_DS_READ_PROP | READ_CONTROL | (ADS_RIGHT_DS_WRITE_PROP if write else 0)
        aces.append(object_ace(sid, mask, inherited_object_type=klass, flags=CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE))
        replace_aces(conn, ou_dn, sid, aces)
    finally:
        conn.unbind()


GMSA_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: task
      winkube.gmsa.gmsa: "{{ args }}"
      ignore_errors: true
"""


def test_delegated_user_manages_gmsas_in_its_ou_only_with_the_documented_rights(samba_lab, run_playbook):
    tag = uid()
    ou = 'OU=gmsa-lp%s,%s' % (tag, samba_lab.base_dn)
    user_dn = 'CN=lpdeleg%s,CN=Users,%s' % (tag, samba_lab.base_dn)
    password = 'Lp-%s-9aZ' % secrets.token_hex(8)
    conn = samba_lab.ldap()
    try:
        assert conn.add(ou, 'organizationalUnit'), conn.result
        assert conn.add(user_dn, ['top', 'person', 'organizationalPerson', 'user'],
                        {'sAMAccountName': 'lpdeleg%s' % tag, 'userPrincipalName': 'lpdeleg%s@%s' % (
                            tag, samba_lab.dns_domain)}), conn.result
        assert conn.modify(user_dn, {'unicodePwd': [(ldap3.MODIFY_REPLACE, [('"%s"' % password).encode('utf-16-le')])],
                                     'userAccountControl': [(ldap3.MODIFY_REPLACE, ['512'])]}), conn.result
        conn.search(user_dn, '(objectClass=*)', search_scope=ldap3.BASE, attributes=['objectSid'])
        sid = ldap3.protocol.formatters.formatters.format_sid(conn.response[0]['raw_attributes']['objectSid'][0])
    finally:
        conn.unbind()

    def run(**args):
        params = samba_lab.module_args(username='lpdeleg%s@%s' % (tag, samba_lab.dns_domain), password=password,
                                       path=ou)
        params.update(args)
        return run_playbook(GMSA_PLAY, extra_vars={'args': params}).results['task']

    name, name2 = 'lpg%s' % tag, 'lph%s' % tag
    spn = 'HTTP/%s.%s' % (name, samba_lab.dns_domain)
    try:
        # without any delegation: refused, naming the right, the class and the OU; nothing created
        res = run(name=name)
        assert res.get('failed') is True
        assert 'Create Child of msDS-GroupManagedServiceAccount objects on %s' % ou in res['msg'], res['msg']
        assert 'lpdeleg%s' % tag in res['msg']
        assert read(samba_lab, '(sAMAccountName=%s$)' % name, ['cn']) == []

        set_delegation(samba_lab, ou, sid)
        res = run(name=name, description='delegated', service_principal_names={'set': [spn]},
                  allowed_to_retrieve_password={'set': ['Domain Admins']})
        assert res.get('failed') is not True and res['changed'] is True, res.get('msg')
        entry = read(samba_lab, '(sAMAccountName=%s$)' % name, ['description', 'servicePrincipalName'])
        assert len(entry) == 1 and entry[0]['dn'].lower() == ('CN=%s,%s' % (name, ou)).lower()
        assert attrs_of(entry[0])['description'] == ['delegated']
        assert attrs_of(entry[0])['servicePrincipalName'] == [spn]
        res = run(name=name, description='updated by the delegate')
        assert res.get('failed') is not True and res['changed'] is True, res.get('msg')
        assert attrs_of(read(samba_lab, '(sAMAccountName=%s$)' % name, ['description'])[0])['description'] == [
            'updated by the delegate']

        # the same user outside its OU: refused
        res = run(name=name2, path='CN=Managed Service Accounts,%s' % samba_lab.base_dn)
        assert res.get('failed') is True and 'Create Child' in res['msg'], res.get('msg')
        assert read(samba_lab, '(sAMAccountName=%s$)' % name2, ['cn']) == []

        # read but no write: an update of a gMSA made by an administrator is refused, naming the attribute
        # (the delegate's own gMSA keeps the ACEs it inherited when it was created)
        set_delegation(samba_lab, ou, sid, write=False)
        admin = run_playbook(GMSA_PLAY, extra_vars={'args': samba_lab.module_args(name=name2, path=ou)})
        assert admin.results['task'].get('failed') is not True, admin.results['task'].get('msg')
        res = run(name=name2, description='not allowed')
        assert res.get('failed') is True, res
        assert 'Write Property on description' in res['msg'], res['msg']
        assert not attrs_of(read(samba_lab, '(sAMAccountName=%s$)' % name2, ['description'])[0]).get('description')

        # with the rights back, the delegate removes its gMSA (Delete Child)
        set_delegation(samba_lab, ou, sid)
        res = run(name=name, state='absent')
        assert res.get('failed') is not True and res['changed'] is True, res.get('msg')
        assert read(samba_lab, '(sAMAccountName=%s$)' % name, ['cn']) == []
    finally:
        conn = samba_lab.ldap()
        try:
            for dn in [e['dn'] for e in read(samba_lab, '(|(sAMAccountName=%s$)(sAMAccountName=%s$))' % (name, name2),
                                             ['cn'])] + [ou, user_dn]:
                conn.delete(dn)
        finally:
            conn.unbind()


# -- host_group and kds_root_key with a delegated user --------------------------------------------------

ROOT_KEYS = 'CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,'
ADS_RIGHT_DS_CONTROL_ACCESS = 0x100


def class_guid(samba_lab, name):
    conn = samba_lab.ldap()
    try:
        conn.search('CN=Schema,' + samba_lab.config_dn, '(lDAPDisplayName=%s)' % name, attributes=['schemaIDGUID'])
        return str(uuid.UUID(bytes_le=conn.response[0]['raw_attributes']['schemaIDGUID'][0]))
    finally:
        conn.unbind()


def set_aces(samba_lab, target_dn, sid, aces):
    """Replace the ACEs of sid on target_dn by aces."""
    conn = samba_lab.ldap()
    try:
        replace_aces(conn, target_dn, sid, aces)
    finally:
        conn.unbind()


def create_child(sid, klass):
    return object_ace(sid, ADS_RIGHT_DS_CREATE_CHILD | ADS_RIGHT_DS_DELETE_CHILD, object_type=klass)


def on_children(sid, klass, write=True, confidential=False):
    """Read (and Write) Property and Read Control, inherited by the container's objects of class klass;
    confidential adds Control Access, which reading attributes marked confidential also needs."""
    mask = ADS_RIGHT_DS_READ_PROP | READ_CONTROL | (ADS_RIGHT_DS_WRITE_PROP if write else 0)
    mask |= ADS_RIGHT_DS_CONTROL_ACCESS if confidential else 0
    return object_ace(sid, mask, inherited_object_type=klass, flags=CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE)


def make_delegate(samba_lab, name):
    """A plain domain user (no group but Domain Users); returns (dn, upn, password, sid)."""
    dn = 'CN=%s,CN=Users,%s' % (name, samba_lab.base_dn)
    upn = '%s@%s' % (name, samba_lab.dns_domain)
    password = 'Lp-%s-9aZ' % secrets.token_hex(8)
    conn = samba_lab.ldap()
    try:
        assert conn.add(dn, ['top', 'person', 'organizationalPerson', 'user'],
                        {'sAMAccountName': name, 'userPrincipalName': upn}), conn.result
        assert conn.modify(dn, {'unicodePwd': [(ldap3.MODIFY_REPLACE, [('"%s"' % password).encode('utf-16-le')])],
                                'userAccountControl': [(ldap3.MODIFY_REPLACE, ['512'])]}), conn.result
        conn.search(dn, '(objectClass=*)', search_scope=ldap3.BASE, attributes=['objectSid'])
        sid = ldap3.protocol.formatters.formatters.format_sid(conn.response[0]['raw_attributes']['objectSid'][0])
    finally:
        conn.unbind()
    return dn, upn, password, sid


AD_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: task
      winkube.gmsa.{module}: "{{{{ args }}}}"
      ignore_errors: true
"""


def test_delegated_user_manages_the_host_group_with_the_documented_rights(samba_lab, run_playbook):
    tag = uid()
    ou = 'OU=hosts-lp%s,%s' % (tag, samba_lab.base_dn)
    group, group2 = 'LpHosts%s' % tag, 'LpOther%s' % tag
    gmsa1, gmsa2 = 'lpa%s' % tag, 'lpb%s' % tag
    conn = samba_lab.ldap()
    try:
        assert conn.add(ou, 'organizationalUnit'), conn.result
    finally:
        conn.unbind()
    user_dn, upn, password, sid = make_delegate(samba_lab, 'lphg%s' % tag)
    computer = make_computer(samba_lab, 'lpc%s' % tag)[0]
    klass_group = class_guid(samba_lab, 'group')
    klass_gmsa = class_guid(samba_lab, 'msDS-GroupManagedServiceAccount')

    def admin(module, **args):
        res = run_playbook(AD_PLAY.format(module=module), extra_vars={'args': samba_lab.module_args(**args)})
        assert res.results['task'].get('failed') is not True, res.results['task'].get('msg')

    def delegate(**args):
        params = samba_lab.module_args(username=upn, password=password, path=ou, name=group)
        params.update(args)
        return run_playbook(AD_PLAY.format(module='host_group'), extra_vars={'args': params}).results['task']

    def allowed(name):
        return allowed_sids(read(samba_lab, '(sAMAccountName=%s$)' % name, ['msDS-GroupMSAMembership'])[0])

    try:
        # the documented rights: Create/Delete Child of groups on the OU, Read/Write Property on the groups
        # and on the gMSAs the group is granted
        set_aces(samba_lab, ou, sid, [create_child(sid, klass_group), on_children(sid, klass_group),
                                      on_children(sid, klass_gmsa)])
        admin('gmsa', name=gmsa1, path=ou)  # created after the delegation: inherits its ACEs
        res = delegate(members=[computer], gmsas=[gmsa1])
        assert res.get('failed') is not True and res['changed'] is True, res.get('msg')
        found = read(samba_lab, '(sAMAccountName=%s)' % group, ['member', 'objectSid'])
        assert len(found) == 1 and found[0]['dn'].lower() == ('CN=%s,%s' % (group, ou)).lower()
        assert [m.decode().lower() for m in found[0]['raw_attributes']['member']] == [computer.lower()]
        assert res['group']['sid'] in allowed(gmsa1)
        again = delegate(members=[computer], gmsas=[gmsa1])
        assert again.get('failed') is not True and again['changed'] is False, again

        # without Write Property on the gMSAs: granting the group another gMSA is refused, naming the right
        set_aces(samba_lab, ou, sid, [create_child(sid, klass_group), on_children(sid, klass_group),
                                      on_children(sid, klass_gmsa, write=False)])
        admin('gmsa', name=gmsa2, path=ou)
        res = delegate(members=[computer], gmsas=[gmsa1, gmsa2])
        assert res.get('failed') is True, res
        assert 'Write Property on msDS-GroupMSAMembership' in res['msg'] and upn in res['msg'], res['msg']
        assert allowed(gmsa2) == []

        # without Create Child of groups: a new group is refused, naming the right, the class and the OU
        set_aces(samba_lab, ou, sid, [on_children(sid, klass_group), on_children(sid, klass_gmsa)])
        res = delegate(name=group2, members=[computer])
        assert res.get('failed') is True, res
        assert 'Create Child of group objects on %s' % ou in res['msg'], res['msg']
        assert read(samba_lab, '(sAMAccountName=%s)' % group2, ['cn']) == []
    finally:
        conn = samba_lab.ldap()
        try:
            conn.search(ou, '(objectClass=*)', attributes=['cn'])
            children = sorted((e['dn'] for e in conn.response if e.get('type') == 'searchResEntry'), key=len,
                              reverse=True)
            for dn in children + [user_dn, computer]:
                conn.delete(dn)
        finally:
            conn.unbind()


def test_delegated_user_creates_the_kds_root_key_with_the_documented_rights(samba_lab, run_playbook):
    tag = uid()
    container = ROOT_KEYS + samba_lab.config_dn
    user_dn, upn, password, sid = make_delegate(samba_lab, 'lpkds%s' % tag)
    klass = class_guid(samba_lab, 'msKds-ProvRootKey')

    def keys():
        conn = samba_lab.ldap()
        try:
            conn.search(container, '(objectClass=msKds-ProvRootKey)', search_scope=ldap3.LEVEL, attributes=['cn'])
            return sorted(e['dn'] for e in conn.response if e.get('type') == 'searchResEntry')
        finally:
            conn.unbind()

    def run(username=upn, password=password):
        params = samba_lab.module_args(username=username, password=password, lab_mode=True)
        return run_playbook(AD_PLAY.format(module='kds_root_key'), extra_vars={'args': params}).results['task']

    conn = samba_lab.ldap()
    try:
        for dn in keys():  # a forest without a root key: the module has to create one
            assert conn.delete(dn), conn.result
    finally:
        conn.unbind()
    try:
        # reading the keys but without Create Child: refused, naming the right, the class and the container
        set_aces(samba_lab, container, sid, [on_children(sid, klass, write=False, confidential=True)])
        res = run()
        assert res.get('failed') is True, res
        assert 'Create Child of msKds-ProvRootKey objects on %s' % container in res['msg'], res['msg']
        assert upn in res['msg'] and keys() == []
        # the documented rights: Create Child of msKds-ProvRootKey on the container, Read Property on the keys
        set_aces(samba_lab, container, sid, [create_child(sid, klass),
                                             on_children(sid, klass, write=False, confidential=True)])
        res = run()
        assert res.get('failed') is not True and res['created'] is True and res['usable'] is True, res.get('msg')
        assert keys() == [res['root_key']['dn']]
        again = run()  # it reads the key it made: nothing more to do
        assert again.get('failed') is not True and again['changed'] is False, again
        assert len(keys()) == 1
        # without Control Access the keys' confidential attributes read as absent: refused, naming the right,
        # instead of taking the key for malformed and creating another one
        set_aces(samba_lab, container, sid, [create_child(sid, klass), on_children(sid, klass, write=False)])
        res = run()
        assert res.get('failed') is True, res
        assert 'needs Read Property and Control Access' in res['msg'] and 'msKds-ProvRootKey' in res['msg'], res['msg']
        assert len(keys()) == 1
    finally:
        set_aces(samba_lab, container, sid, [])
        if not keys():  # leave the lab's domain with a usable key for the other tests
            assert run(samba_lab.admin_username, samba_lab.admin_password).get('failed') is not True
        conn = samba_lab.ldap()
        try:
            conn.delete(user_dn)
        finally:
            conn.unbind()
