"""portable_identity's kubernetes_secret path against the real Samba AD DC and the real local API server.

The password only exists in the Secret: the test reads it back with the kubernetes client and binds to Samba
over LDAPS as the portable user with it (and reads the granted gMSA's password blob). The playbook runs with
-vvv and without no_log, and the password must not appear in its output or in the registered result.
"""

from __future__ import annotations

import base64
import json

import ldap3
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from test_gmsa import (  # noqa: F401  pylint: disable=unused-import
    delete,
    read,
    read_managed_password,
    run_module,
    uid,
)

NS = 'ccg-secret'
KEYS = {'username', 'password', 'domainName', 'azureKeyVaultSecret', 'awsSecretsManagerSecret'}
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: identity
      winkube.gmsa.portable_identity: "{{ module_args }}"
      register: identity
      ignore_errors: true
    - name: save
      ansible.builtin.copy:
        content: "{{ identity | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


@pytest.fixture(scope='module')
def core(samba_lab, k8s_lab):
    # Samba first: it listens on fixed RPC ports (49152+) that the Kubernetes lab's free ports could take
    api = client.CoreV1Api(k8s_lab.api_client())
    try:
        api.create_namespace({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    return api


@pytest.fixture
def identity(run_playbook, samba_lab, k8s_lab, tmp_path):
    """identity(secret_name, check=False, **module args) -> (registered result, whole -vvv ansible output)."""
    def _run(secret_name, check=False, namespace=NS, **args):
        args['kubernetes_secret'] = {'name': secret_name, 'namespace': namespace, 'kubeconfig': k8s_lab.kubeconfig}
        result_file = tmp_path / ('result-%s.json' % uid())
        result = run_playbook(PLAY, extra_vars={'module_args': samba_lab.module_args(**args),
                                                'result_file': str(result_file)}, check=check, args=('-vvv',))
        assert result_file.exists(), result
        registered = json.loads(result_file.read_text())
        result_file.unlink()
        return registered, result.stdout + result.stderr
    return _run


def secret_of(core, name):
    try:
        secret = core.read_namespaced_secret(name, NS)
    except ApiException as exc:
        if exc.status == 404:
            return None, None
        raise
    data = dict((k, base64.b64decode(v).decode('utf-8')) for k, v in (secret.data or {}).items())
    return data, secret.metadata.resource_version


def user_dn(samba_lab, sam):
    found = read(samba_lab, '(&(objectCategory=person)(sAMAccountName=%s))' % sam, ['distinguishedName'])
    return found[0]['dn'] if found else None


def pwd_last_set(samba_lab, sam):
    found = read(samba_lab, '(sAMAccountName=%s)' % sam, ['pwdLastSet'])
    return int(found[0]['raw_attributes']['pwdLastSet'][0])


def bind_works(samba_lab, dn, password):
    """True when the simple bind succeeds, False when the DC refuses the credentials; anything else raises."""
    try:
        conn = samba_lab.ldap(user=dn, password=password)
    except ldap3.core.exceptions.LDAPInvalidCredentialsResult:
        return False
    try:
        return bool(conn.bound)
    finally:
        conn.unbind()


def test_secret_holds_working_credentials(core, identity, run_module, samba_lab):
    gmsa = 'gs%s' % uid()
    name = 'ccs%s' % uid()
    secret = 'ccg-%s' % name
    try:
        assert run_module(accounts=[{'name': gmsa}]).get('changed') is True

        # check mode: a server-side dry run; neither the user nor the Secret is created
        out, output = identity(secret, check=True, name=name, gmsas=[gmsa])
        assert not out.get('failed'), out
        assert out['changed'] is True and out['kubernetes_secret']['action'] == 'created'
        assert 'credentials' not in out
        assert secret_of(core, secret) == (None, None) and user_dn(samba_lab, name) is None

        out, output = identity(secret, name=name, gmsas=[gmsa])
        assert not out.get('failed'), out
        assert out['changed'] is True and out['user']['password_set'] is True
        assert out['kubernetes_secret'] == {'namespace': NS, 'name': secret, 'action': 'created'}
        assert 'credentials' not in out
        data, version = secret_of(core, secret)
        assert set(data) == KEYS
        password = data['password']
        assert len(password) == 32
        assert password not in output and password not in json.dumps(out)  # -vvv, no no_log
        assert data['username'] == name and data['domainName'] == samba_lab.dns_domain
        assert data['azureKeyVaultSecret'] == '%s\\%s:%s' % (samba_lab.dns_domain, name, password)
        assert json.loads(data['awsSecretsManagerSecret']) == {'username': name, 'password': password,
                                                               'domainName': samba_lab.dns_domain}
        labels = core.read_namespaced_secret(secret, NS).metadata.labels
        assert labels == {'app.kubernetes.io/managed-by': 'winkube.gmsa'}

        # the password from the Secret works: LDAPS simple bind as the user, and it may read the gMSA's password
        dn = user_dn(samba_lab, name)
        assert bind_works(samba_lab, dn, password)
        blob = read_managed_password(samba_lab, dn, password, gmsa + '$')
        assert blob is not None and blob[:2] == b'\x01\x00'

        # second run: nothing changes, the Secret is not rewritten
        out, output = identity(secret, name=name, gmsas=[gmsa])
        assert not out.get('failed'), out
        assert out['changed'] is False and out['user']['password_set'] is False
        assert 'kubernetes_secret' not in out, out  # no password set, so the Secret is not even applied
        assert secret_of(core, secret) == (data, version)

        # rotation: a new password in the Secret, which works; the Secret's other keys follow
        set_before = pwd_last_set(samba_lab, name)
        out, output = identity(secret, name=name, gmsas=[gmsa], update_password='always')
        assert not out.get('failed'), out
        assert out['changed'] is True and out['kubernetes_secret']['action'] == 'updated'
        rotated, rotated_version = secret_of(core, secret)
        assert rotated_version != version
        new_password = rotated['password']
        assert new_password != password and new_password not in output and password not in output
        assert rotated['azureKeyVaultSecret'].endswith(':' + new_password)
        assert bind_works(samba_lab, dn, new_password)
        assert pwd_last_set(samba_lab, name) > set_before
        # The old password is not checked: Samba still accepts the previous password for network logons (LDAP
        # simple binds included, measured here) during its "old password allowed period" (60 minutes by
        # default, a setting of the lab's smb.conf). A wrong password is refused.
        assert not bind_works(samba_lab, dn, password + 'x')

        # a Secret deleted behind the module's back cannot be refilled without a new password: warning
        core.delete_namespaced_secret(secret, NS)
        out, output = identity(secret, name=name, gmsas=[gmsa])
        assert not out.get('failed') and out['changed'] is False, out
        assert any('does not exist' in w for w in out.get('warnings', [])), out
        assert secret_of(core, secret) == (None, None)
    finally:
        dn = user_dn(samba_lab, name)
        delete(samba_lab, *[d for d in (dn,) if d])
        run_module(accounts=[{'name': gmsa}], state='absent')


def test_secret_in_a_missing_namespace_fails_before_any_password_change(core, identity, samba_lab):
    name = 'ccm%s' % uid()
    try:
        for check in (True, False):
            out, output = identity('ccg-x', check=check, namespace='no-such-namespace', name=name)
            assert out.get('failed') is True, out
            assert 'no-such-namespace' in out['msg'] and 'not changed' in out['msg'], out['msg']
            assert user_dn(samba_lab, name) is None  # checked before the user was created
    finally:
        dn = user_dn(samba_lab, name)
        delete(samba_lab, *[d for d in (dn,) if d])
