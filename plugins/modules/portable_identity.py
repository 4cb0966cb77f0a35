#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: portable_identity
short_description: Manage the portable identity (a standard AD user) of non-domain-joined Windows nodes
version_added: 0.1.0
description:
  - Non-domain-joined Windows nodes retrieve gMSA passwords through C(ccg.exe) and a plugin (Azure Key Vault,
    AWS Secrets Manager or your own) that hands C(ccg.exe) the credentials of a standard domain user, the
    portable identity. This module creates or updates that user over LDAP and lets it retrieve the passwords
    of the given gMSAs.
  - A new user gets a random password generated here with Python's C(secrets) module (O(password_length)
    characters, upper and lower case letters, digits and symbols), unless O(identity_password) is given. The password
    is only set again when O(update_password=always).
  - Setting a password needs an encrypted session (O(encryption=ldaps) or V(starttls)); the module refuses
    to send it otherwise. With O(backend=winrm) the password reaches C(New-ADUser) / C(Set-ADAccountPassword)
    as data inside the WinRM session (encrypted by TLS or message encryption), never in script text.
  - The password is never logged and never shown in C(--diff). Where it goes is up to you - either
    O(kubernetes_secret) (the module writes it to a Kubernetes Secret with server-side apply and returns
    nothing secret), or the RV(credentials) return value, only present when this run set a password it
    generated; register such a task with C(no_log) set to V(true) and hand RV(credentials) to your secret-store task
    (see C(docs/portable-identity.md) for the format each plugin reads).
  - The user is granted the right to retrieve the passwords of O(gmsas) directly (its SID is added to each
    gMSA's C(msDS-GroupMSAMembership), other principals are kept). To grant it through a group instead, add
    the user to the group with M(winkube.gmsa.host_group) (O(ignore:members)).
options:
  name:
    description:
      - Name (C(cn)) of the user.
    type: str
    required: true
  sam_account_name:
    description:
      - The user's C(sAMAccountName) (at most 20 characters); defaults to O(name). The user is found by it.
    type: str
  path:
    description:
      - DN of the container or OU the user is created in. Defaults to C(CN=Users,<base_dn>).
    type: str
  description:
    description:
      - The user's C(description). An empty string removes it.
    type: str
  enabled:
    description:
      - Whether the account is enabled. New accounts are.
    type: bool
  password_never_expires:
    description:
      - Sets C(DONT_EXPIRE_PASSWORD) in C(userAccountControl). New accounts get V(true), since nothing on the
        nodes would change an expiring password; rotate it with O(update_password=always) instead.
    type: bool
  identity_password:
    description:
      - The password to set for the user. Without it, a new user gets a generated one.
      - A given password is never returned. (O(password) is the password of the account the module binds as.)
    type: str
  update_password:
    description:
      - V(on_create) sets the password only when the user is created.
      - V(always) sets it on every run - with O(identity_password), only when that password does not work yet (checked
        with a bind as the user, which counts as a failed logon when it does not); without O(identity_password), a new
        generated password every run (rotation).
    type: str
    choices: [on_create, always]
    default: on_create
  password_length:
    description:
      - Length of a generated password (16 to 256).
    type: int
    default: 32
  user_principal_name:
    description:
      - The user's C(userPrincipalName). Defaults to C(<sAMAccountName>@<domain DNS name>) for a new user.
    type: str
  gmsas:
    description:
      - gMSAs (C(cn) or C(sAMAccountName), with or without C($)) whose password the user may retrieve.
      - With O(state=present) a name that matches no gMSA fails the task before anything is written; with
        O(state=absent) the user is removed from these gMSAs' allowed principals first (missing ones skipped).
    type: list
    elements: str
  kubernetes_secret:
    description:
      - Write the credentials to this Kubernetes Secret whenever this run sets a password, instead of returning
        them. Keys C(username), C(password), C(domainName), C(azureKeyVaultSecret) and
        C(awsSecretsManagerSecret).
      - The Secret is written with server-side apply (field manager C(winkube.gmsa)); in check mode with a
        server-side dry run. Its values never appear in results or C(--diff).
      - When the user exists, O(update_password=on_create) and the Secret is missing, the module cannot fill it
        (it does not know the password) and warns; rotate with O(update_password=always).
    type: dict
    suboptions:
      name:
        description: Name of the Secret.
        type: str
        required: true
      namespace:
        description: Namespace of the Secret (it must exist).
        type: str
        required: true
      kubeconfig:
        description: Path of a kubeconfig file, or its content (C(K8S_AUTH_KUBECONFIG)).
        type: raw
      context:
        description: The kubeconfig context to use (C(K8S_AUTH_CONTEXT)).
        type: str
      host:
        description: URL of the API server (C(K8S_AUTH_HOST)).
        type: str
      api_key:
        description: Bearer token (C(K8S_AUTH_API_KEY)).
        type: str
      ca_cert:
        description: CA bundle of the API server (C(K8S_AUTH_SSL_CA_CERT)).
        type: path
      client_cert:
        description: Client certificate (C(K8S_AUTH_CERT_FILE)).
        type: path
      client_key:
        description: Client key (C(K8S_AUTH_KEY_FILE)).
        type: path
      validate_certs:
        description: Verify the API server's certificate (C(K8S_AUTH_VERIFY_SSL)).
        type: bool
  state:
    description:
      - V(present) creates or updates the user and grants it; V(absent) revokes it from O(gmsas) and deletes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.ad_connection
  - winkube.gmsa.ad_writes
attributes:
  action_group:
    support: full
    membership:
      - winkube.gmsa.ad
  check_mode:
    support: full
    details: Plans everything (reads only; the Secret with a server-side dry run) and reports what would change.
  diff_mode:
    support: full
    details: Shows the user's attributes and each gMSA's allowed principals before and after; never the password.
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks LDAP to a domain controller, or with O(backend=winrm)
      WinRM to a Windows host.
requirements:
  - ldap3
  - kubernetes (only with O(kubernetes_secret))
notes:
  - Register a task that may return RV(credentials) with C(no_log) set to V(true). Ansible cannot mask a value a
    module generates itself, so O(kubernetes_secret) is the way to keep the password out of Ansible entirely.
  - The plugins read their own stores - the Azure Key Vault plugin a Key Vault secret
    C(<domain FQDN>\\<user>:<password>), the AWS plugin a Secrets Manager secret, JSON with
    C(username), C(password) and C(domainName). See C(docs/portable-identity.md).
seealso:
  - module: winkube.gmsa.host_group
  - module: winkube.gmsa.gmsa
  - plugin: winkube.gmsa.credential_spec
    plugin_type: filter
author:
  - winkube.gmsa maintainers (@winkube)
"""

EXAMPLES = r"""
- name: Portable identity of the Windows nodes, allowed to retrieve two gMSAs' passwords
  winkube.gmsa.portable_identity:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
    name: ccg-nodes
    gmsas: [WebApp1, WebApp2]
  register: ccg_identity
  no_log: true   # the result holds the generated password when the user is created

- name: Store it where the Azure Key Vault plugin reads it (your own task)
  azure.azcollection.azure_rm_keyvaultsecret:
    keyvault_uri: https://kv1.vault.azure.net
    secret_name: gmsa-user
    secret_value: "{{ ccg_identity.credentials.azure_key_vault_secret }}"
  when: ccg_identity.credentials is defined
  no_log: true

- name: Rotate the password and write it to a Kubernetes Secret (nothing secret is returned)
  winkube.gmsa.portable_identity:
    server: dc1.contoso.com
    username: svc-ansible@contoso.com
    password: "{{ ad_password }}"
    name: ccg-nodes
    update_password: always
    kubernetes_secret:
      name: ccg-nodes
      namespace: gmsa-system
      kubeconfig: ~/.kube/config
"""

RETURN = r"""
user:
  description: The user after the task (never its password).
  returned: always
  type: dict
  contains:
    name:
      description: The user's C(cn).
      type: str
      sample: ccg-nodes
    state:
      description: V(present) or V(absent).
      type: str
    distinguished_name:
      description: DN of the user (the DN it would get, for a new user in check mode).
      type: str
      sample: CN=ccg-nodes,CN=Users,DC=contoso,DC=com
    sid:
      description: SID of the user; null when absent or created in check mode.
      type: str
    sam_account_name:
      description: The user's C(sAMAccountName).
      type: str
    user_principal_name:
      description: The user's C(userPrincipalName).
      type: str
    enabled:
      description: Whether the account is enabled.
      type: bool
    password_never_expires:
      description: Whether C(DONT_EXPIRE_PASSWORD) is set.
      type: bool
    password_set:
      description: Whether this run set (or, in check mode, would set) the password.
      type: bool
credentials:
  description:
    - The credentials in every form a secret store wants. Only returned when this run set a password the
      module generated and O(kubernetes_secret) is not given (never in check mode, never for a given
      O(identity_password)). Register the task with C(no_log) set to V(true).
  returned: when a generated password was set and kubernetes_secret is not given
  type: dict
  contains:
    username:
      description: The sAMAccountName.
      type: str
    password:
      description: The password.
      type: str
    domain_name:
      description: The domain's DNS name.
      type: str
    netbios_name:
      description: The domain's NetBIOS name.
      type: str
    user_principal_name:
      description: C(<username>@<domain_name>).
      type: str
    azure_key_vault_secret:
      description: The Key Vault secret value the Azure Key Vault plugin reads, C(<domain_name>\\<username>:<password>).
      type: str
    aws_secrets_manager_secret:
      description: The Secrets Manager secret string the AWS plugin reads, JSON with C(username), C(password), C(domainName).
      type: str
gmsas:
  description: The gMSAs from O(gmsas) and whether their allowed principals changed.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The gMSA's C(cn).
      type: str
    distinguished_name:
      description: DN of the gMSA.
      type: str
    changed:
      description: Whether the user was (or would be) added to or removed from its allowed principals.
      type: bool
kubernetes_secret:
  description: What happened to the Secret (no values).
  returned: when kubernetes_secret is given
  type: dict
  sample: {namespace: gmsa-system, name: ccg-nodes, action: created}
ldap_operations:
  description: LDAP searches sent and writes done after binding (see the notes).
  returned: always
  type: dict
  sample: {searches: 1, writes: 2}
replanned:
  description: The gMSAs whose allowed principals another writer changed during this run, re-planned (see the notes).
  returned: always
  type: list
  elements: str
  sample: [WebApp1]
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import ad_argument_spec, ad_module_kwargs
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import engine
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import ldap_client
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.reconciler import GrantingReconciler, ObjectType
from ansible_collections.winkube.gmsa.plugins.module_utils.models import portable_identity as model
from ansible_collections.winkube.gmsa.plugins.module_utils.portable_secret import (
    SecretStore,
    secret_errors,
    secret_options,
)

USER = ObjectType('user account', engine.USER_ROWS, engine.USER_OBJECT_CLASS, classes=['user'],
                  not_classes=['computer'], cmdlet='ADUser', read_attributes=[
                      'cn', 'objectClass', 'objectSid', 'objectGUID', 'sAMAccountName', 'userPrincipalName',
                      'description', 'userAccountControl', 'msDS-GroupMSAMembership'])


class PortableIdentityTask(GrantingReconciler):
    """The user (rows: engine.USER_ROWS), its password, its grants and the Secret; the AD loop is
    reconciler.GrantingReconciler's, the Secret is module_utils/portable_secret.py."""

    object_type = USER
    result_key = 'user'
    adopt = False  # a user created meanwhile by another run has a password this run cannot know

    def __init__(self, module):
        super(PortableIdentityTask, self).__init__(module)
        self.password = None
        self.generated = False
        self.set_password = False
        self.password_written = False
        self.creds = None
        self.secret_result = None
        self.secret_changed = False
        spec = self.params['kubernetes_secret']
        self.secret = SecretStore(spec, module.check_mode) if spec is not None else None

    # -- checks before any I/O --------------------------------------------------------------------------
    def validate(self):
        p = self.params
        try:
            model.check_cn(p['name'])
        except model.IdentityError as exc:
            self.error('name', str(exc))
        self.sam = p['sam_account_name'] or p['name']
        try:
            model.check_user_sam(self.sam)
        except model.IdentityError as exc:
            option = 'sam_account_name' if p['sam_account_name'] else 'name'
            self.error(option, '%s: %s' % (option, exc))
        for option in ('path', 'description', 'user_principal_name'):
            value = p[option]
            if value is not None and ('\x00' in value or (option != 'description' and not value.strip())):
                self.error(option, '%s %r is empty or contains a NUL character' % (option, value))
        if p['user_principal_name'] is not None and p['user_principal_name'].count('@') != 1:
            self.error('user_principal_name', 'user_principal_name %r must look like user@domain'
                       % p['user_principal_name'])
        if p['identity_password'] is not None:
            try:
                model.check_password(p['identity_password'])
            except model.IdentityError as exc:
                self.error('identity_password', 'identity_password: %s' % exc)
        if not model.MIN_GENERATED_LENGTH <= p['password_length'] <= model.MAX_PASSWORD_LENGTH:
            self.error('password_length', 'password_length must be between %d and %d'
                       % (model.MIN_GENERATED_LENGTH, model.MAX_PASSWORD_LENGTH))
        super(PortableIdentityTask, self).validate()
        if self.secret is not None:
            for message in secret_errors(self.secret.spec):
                self.error('kubernetes_secret', message)
            self.raise_errors()
            from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import require_kubernetes
            require_kubernetes(self.module)

    # -- planning ---------------------------------------------------------------------------------------
    def desired(self):
        p = self.params
        upn = p['user_principal_name']
        if upn is None and self.principal['entry'] is None:
            upn = '%s@%s' % (self.sam, self.directory.dns_domain)
        return dict(sam_account_name=self.sam, user_principal_name=upn, description=p['description'],
                    enabled=p['enabled'], password_never_expires=p['password_never_expires'])

    def plan(self):
        super(PortableIdentityTask, self).plan()
        if self.present:
            self.set_password = self.plan_password()
            if self.set_password:
                self.creds = model.credentials(self.directory.dns_domain, self.directory.netbios_name, self.sam,
                                               self.password)

    def plan_password(self):
        """Decide whether this run sets the password; pick it (given or generated)."""
        p = self.params
        creating = self.principal['entry'] is None
        if not creating and p['update_password'] == 'on_create':
            return False
        if p['identity_password'] is not None:
            if not creating and self._password_works(p['identity_password']):
                return False
            self.password = p['identity_password']
        else:
            self.password = model.generate_password(p['password_length'])
            self.generated = True
        if p['backend'] == 'ldap' and p['encryption'] == 'none':
            self.fail('setting the password of %s needs an encrypted session: use encryption=ldaps or starttls '
                      '(nothing was changed)' % self.principal['dn'], failed_options=['encryption'])
        return True

    def _password_works(self, password):
        user_dn = self.principal['dn']
        if self.params['backend'] == 'winrm':
            try:
                return self.directory.password_works(user_dn, self.sam, password)
            except ldap_client.ADError as exc:
                self.fail('cannot check the password of %s: %s' % (user_dn, exc))
        params = dict(self.params, username=user_dn, password=password, auth_method='simple')
        try:
            directory = ldap_client.open_directory(params)
        except ldap_client.ADConnectionError as exc:
            if exc.field == 'password':
                return False
            self.fail('cannot check the password of %s: %s' % (user_dn, exc))
        directory.close()
        return True

    # -- writing ----------------------------------------------------------------------------------------
    def write(self):
        if self.present and self.creds is not None and self.secret is not None:
            self.write_secret(dry_run=True)  # a Secret that cannot be written fails before the password is set
        super(PortableIdentityTask, self).write()

    def create_attributes(self, target):
        attributes = dict(target['plan'].create)
        attributes['sAMAccountName'] = [self.sam]
        return attributes

    def create_values(self, target):
        return dict(super(PortableIdentityTask, self).create_values(target), sam_account_name=self.sam,
                    password=self.password)

    def create(self, target):
        created = super(PortableIdentityTask, self).create(target)
        self.password_written = True
        return created

    def update(self, principal):
        if self.set_password:
            self.directory.update(principal['dn'], USER, {}, password=self.password)
            self.password_written = True
        super(PortableIdentityTask, self).update(principal)

    def failure_hint(self, exc):
        if isinstance(exc, ldap_client.ADConstraintViolation) and self.set_password:
            return ('; the domain may refuse the password (length, complexity or history policy): give a longer '
                    'password_length or another password')
        return ''

    # -- the Kubernetes Secret (after the directory is closed) ------------------------------------------
    def write_secret(self, dry_run=False):
        try:
            change = self.secret.apply(self.creds, dry_run=dry_run)
        except self.secret.error_class() as exc:
            if self.module.check_mode or not self.password_written:
                self.fail('%s: %s (the password was not changed)' % (self.secret.where, exc))
            self.fail('%s: %s. The password of %s WAS changed and is now known nowhere: fix the cause and rerun '
                      'with update_password=always to set and store a new one' % (self.secret.where, exc,
                                                                                  self.principal['dn']), changed=True)
        self.secret_result = dict(namespace=self.secret.spec['namespace'], name=self.secret.spec['name'],
                                  action=change.action)
        return change.changed

    def finish(self):
        if not self.present or self.secret is None:
            return
        if self.creds is not None:
            self.secret_changed = self.write_secret()
            return
        try:
            exists = self.secret.exists()
        except self.secret.error_class() as exc:
            self.fail('%s: %s' % (self.secret.where, exc))
        if not exists:
            self.module.warn('%s does not exist and this run did not set a password, so there is nothing to write '
                             'into it; rerun with update_password=always to set a new password and store it'
                             % self.secret.where)

    # -- the result ---------------------------------------------------------------------------------------
    def principal_result(self):
        out = super(PortableIdentityTask, self).principal_result()
        out['password_set'] = bool(self.present and self.set_password)
        return out

    def result(self):
        out = super(PortableIdentityTask, self).result()
        out['changed'] = out['changed'] or self.set_password or self.secret_changed
        if self.secret_result is not None:
            out['kubernetes_secret'] = self.secret_result
        if self.creds is not None and self.generated and self.secret is None and not self.module.check_mode:
            out['credentials'] = self.creds
        return out

    def diff(self):
        out = super(PortableIdentityTask, self).diff()
        if self.present and self.set_password:
            out['after']['user']['password'] = 'changed (value not shown)'
        return out


def main():
    module = AnsibleModule(argument_spec=ad_argument_spec(
        name=dict(type='str', required=True),
        sam_account_name=dict(type='str'),
        path=dict(type='str'),
        description=dict(type='str'),
        enabled=dict(type='bool'),
        password_never_expires=dict(type='bool', no_log=False),
        identity_password=dict(type='str', no_log=True),
        update_password=dict(type='str', choices=['on_create', 'always'], default='on_create', no_log=False),
        password_length=dict(type='int', default=32, no_log=False),
        user_principal_name=dict(type='str'),
        gmsas=dict(type='list', elements='str'),
        kubernetes_secret=dict(type='dict', options=secret_options(), no_log=False),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    ), supports_check_mode=True, **ad_module_kwargs())
    PortableIdentityTask(module).run()


if __name__ == '__main__':
    main()
