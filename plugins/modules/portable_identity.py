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
  description: How many LDAP searches and writes the task made (after binding).
  returned: always
  type: dict
  sample: {searches: 1, writes: 2}
replanned:
  description:
    - Names of the gMSAs whose C(msDS-GroupMSAMembership) another writer changed between this run's read and
      its write. The write of that value deletes exactly the value read and adds the new one in one modify,
      so it failed instead of overwriting the other change; the gMSA was read and planned again and written
      (at most 6 times, then the task fails and names it). Empty otherwise.
  returned: always
  type: list
  elements: str
  sample: [WebApp1]
"""

import base64

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.secrets import mask_structured_secrets
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import (
    ad_argument_spec,
    ad_module_kwargs,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import backend, engine
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.connection_spec import K8S_CONNECTION_SPEC
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import ldap_client
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import principals as principal_lookup
from ansible_collections.winkube.gmsa.plugins.module_utils.models import portable_identity as model
from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import MANAGED_BY, MANAGED_BY_LABEL

USER_ATTRIBUTES = ['cn', 'objectClass', 'objectSid', 'objectGUID', 'sAMAccountName', 'userPrincipalName',
                   'description', 'userAccountControl', 'msDS-GroupMSAMembership']
NEW_USER_SID = 'S-1-0-0'  # placeholder SID of a user that check mode would create
K8S_KEYS = ('kubeconfig', 'context', 'host', 'api_key', 'ca_cert', 'client_cert', 'client_key', 'validate_certs')


class PortableIdentityTask:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.searches = 0
        self.writes = 0
        self.directory = None
        self.errors = []
        self.password = None
        self.generated = False
        self.secret_result = None

    def fail(self, msg, **kwargs):
        kwargs.setdefault('ldap_operations', dict(searches=self.searches, writes=self.writes))
        self.module.fail_json(msg=msg, **kwargs)

    def raise_errors(self):
        if self.errors:
            self.fail('; '.join(m for _o, m in self.errors) + ' (nothing was changed)',
                      failed_options=sorted(set(o for o, _m in self.errors)))

    # -- checks before any I/O --------------------------------------------------------------------------
    def validate(self):
        p = self.params
        try:
            model.check_cn(p['name'])
        except model.IdentityError as exc:
            self.errors.append(('name', str(exc)))
        self.sam = p['sam_account_name'] or p['name']
        try:
            model.check_user_sam(self.sam)
        except model.IdentityError as exc:
            option = 'sam_account_name' if p['sam_account_name'] else 'name'
            self.errors.append((option, '%s: %s' % (option, exc)))
        for option in ('path', 'description', 'user_principal_name'):
            value = p[option]
            if value is not None and ('\x00' in value or (option != 'description' and not value.strip())):
                self.errors.append((option, '%s %r is empty or contains a NUL character' % (option, value)))
        if p['user_principal_name'] is not None and p['user_principal_name'].count('@') != 1:
            self.errors.append(('user_principal_name', 'user_principal_name %r must look like user@domain'
                                % p['user_principal_name']))
        if p['identity_password'] is not None:
            try:
                model.check_password(p['identity_password'])
            except model.IdentityError as exc:
                self.errors.append(('identity_password', 'identity_password: %s' % exc))
        if not model.MIN_GENERATED_LENGTH <= p['password_length'] <= model.MAX_PASSWORD_LENGTH:
            self.errors.append(('password_length', 'password_length must be between %d and %d'
                                % (model.MIN_GENERATED_LENGTH, model.MAX_PASSWORD_LENGTH)))
        for value in p['gmsas'] or []:
            try:
                principal_lookup.classify(value)
            except ValueError as exc:
                self.errors.append(('gmsas', 'gmsas: %r %s' % (value, exc)))
        secret = p['kubernetes_secret']
        if secret is not None:
            from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import dns1123_subdomain_error
            for key, label in (('name', 'Secret name'), ('namespace', 'namespace')):
                error = dns1123_subdomain_error(secret[key] or '', 'kubernetes_secret.%s (%s)' % (key, label))
                if error:
                    self.errors.append(('kubernetes_secret', error))
        self.raise_errors()

    # -- reading ----------------------------------------------------------------------------------------
    def read(self):
        p = self.params
        base = self.directory.base_dn
        self.path = p['path'] or 'CN=Users,%s' % base
        gmsa_names = p['gmsas'] or []
        gmsa_sams = [n if n.endswith('$') else n + '$' for n in gmsa_names]
        ldap_filter = engine.gmsa_filter(ldap_client.escape_filter_value, names=gmsa_names,
                                         sams=[self.sam] + gmsa_sams)
        self.searches += 1
        entries = self.directory.search(base, ldap_filter, USER_ATTRIBUTES)
        self.user = None
        for entry in entries:
            if (entry.get('sAMAccountName') or '').lower() == self.sam.lower():
                classes = [c.lower() for c in entry.values('objectClass')]
                if 'user' not in classes or 'computer' in classes:
                    self.errors.append(('name', '%s (sAMAccountName %s) exists but is not a user account'
                                        % (entry.dn, self.sam)))
                self.user = entry
        self.user_dn = self.user.dn if self.user is not None else 'CN=%s,%s' % (
            ldap_client.escape_rdn_value(p['name']), self.path)
        self.gmsas = []
        gmsa_entries = [e for e in entries if engine.is_gmsa(e)]
        for name, sam in zip(gmsa_names, gmsa_sams):
            entry = engine.find_account(gmsa_entries, name, sam)
            if entry is None:
                matches = [e for e in gmsa_entries if (e.get('cn') or '').lower() == name.lower()]
                entry = matches[0] if len(matches) == 1 else None
            if entry is None:
                if p['state'] == 'present':
                    self.errors.append(('gmsas', 'gmsas: %r matches no gMSA in %s' % (name, base)))
            elif all(entry.dn != g['entry'].dn for g in self.gmsas):
                self.gmsas.append({'name': entry.get('cn'), 'entry': entry, 'changed': False})
        self.raise_errors()

    # -- planning ---------------------------------------------------------------------------------------
    def plan_user(self):
        p = self.params
        upn = p['user_principal_name']
        if upn is None and self.user is None:
            upn = '%s@%s' % (self.sam, self.directory.dns_domain)
        desired = dict(sam_account_name=self.sam, user_principal_name=upn, description=p['description'],
                       enabled=p['enabled'], password_never_expires=p['password_never_expires'])
        try:
            self.user_plan = engine.plan(engine.USER_ROWS, desired, self.user)
        except engine.PlanError as exc:
            self.fail('%s (nothing was changed)' % exc, failed_options=[exc.option])

    def plan_password(self):
        """Decide whether this run sets the password; pick it (given or generated)."""
        p = self.params
        creating = self.user is None
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
                      '(nothing was changed)' % self.user_dn, failed_options=['encryption'])
        return True

    def _password_works(self, password):
        if self.params['backend'] == 'winrm':
            try:
                return self.directory.password_works(self.user_dn, self.sam, password)
            except ldap_client.ADError as exc:
                self.fail('cannot check the password of %s: %s' % (self.user_dn, exc))
        params = dict(self.params, username=self.user_dn, password=password, auth_method='simple')
        try:
            directory = ldap_client.open_directory(params)
        except ldap_client.ADConnectionError as exc:
            if exc.field == 'password':
                return False
            self.fail('cannot check the password of %s: %s' % (self.user_dn, exc))
        directory.close()
        return True

    def plan_gmsas(self, user_sid):
        try:
            engine.plan_password_reader(self.gmsas, user_sid, grant=self.params['state'] == 'present')
        except engine.PlanError as exc:
            self.fail(str(exc))

    def write_gmsas(self):
        self.writes += engine.write_planned(self.directory, self.gmsas, self.module.check_mode)

    # -- the Kubernetes Secret --------------------------------------------------------------------------
    def write_secret(self, creds, dry_run=False):
        """Apply the Secret; dry_run: only a server-side dry run (before the password is set, to fail early)."""
        from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import client as k8s_client
        from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import engine as k8s_engine

        spec = self.params['kubernetes_secret']
        data = dict((k, base64.b64encode(v.encode('utf-8')).decode('ascii'))
                    for k, v in model.secret_data(creds).items())
        obj = {'apiVersion': 'v1', 'kind': 'Secret',
               'metadata': {'name': spec['name'], 'namespace': spec['namespace'],
                            'labels': {MANAGED_BY_LABEL: MANAGED_BY}},
               'type': 'Opaque', 'data': data}
        conn = dict((k, spec.get(k)) for k in K8S_KEYS)
        try:
            k8s = k8s_engine.Engine(k8s_client.connect(conn), check_mode=self.module.check_mode or dry_run)
            change = k8s.apply([obj])[0]
        except k8s_client.K8sError as exc:
            where = 'Secret %s/%s' % (spec['namespace'], spec['name'])
            if self.module.check_mode or not self.password_written:
                self.fail('%s: %s (the password was not changed)' % (where, exc))
            self.fail('%s: %s. The password of %s WAS changed and is now known nowhere: fix the cause and rerun '
                      'with update_password=always to set and store a new one' % (where, exc, self.user_dn),
                      changed=True)
        self.secret_result = dict(namespace=spec['namespace'], name=spec['name'], action=change.action)
        return change.changed

    def secret_exists(self):
        from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import client as k8s_client
        from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import engine as k8s_engine

        spec = self.params['kubernetes_secret']
        conn = dict((k, spec.get(k)) for k in K8S_KEYS)
        try:
            k8s = k8s_engine.Engine(k8s_client.connect(conn), check_mode=True)
            return k8s.current(('v1', 'Secret', spec['namespace'], spec['name'])) is not None
        except k8s_client.K8sError as exc:
            self.fail('Secret %s/%s: %s' % (spec['namespace'], spec['name'], exc))

    # -- the run ----------------------------------------------------------------------------------------
    def run(self):
        self.validate()
        if self.params['kubernetes_secret'] is not None:
            from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import require_kubernetes
            require_kubernetes(self.module)
        self.directory = backend.connect(self.module)
        self.password_written = False
        self.set_password = False
        creds = None
        try:
            self.read()
            present = self.params['state'] == 'present'
            self.user_sid = self.user.sid() if self.user is not None else None
            if present:
                self.plan_user()
                self.set_password = self.plan_password()
                self.plan_gmsas(self.user_sid or NEW_USER_SID)
                if self.set_password:
                    creds = model.credentials(self.directory.dns_domain, self.directory.netbios_name, self.sam,
                                              self.password)
                if not self.module.check_mode:
                    if creds is not None and self.params['kubernetes_secret'] is not None:
                        self.write_secret(creds, dry_run=True)  # a Secret that cannot be written fails here
                    self.write_user()
                self.write_gmsas()
            else:
                if self.user_sid:
                    self.plan_gmsas(self.user_sid)
                    self.write_gmsas()
                if self.user is not None and not self.module.check_mode:
                    self.directory.delete(self.user_dn)
                    self.writes += 1
        except ldap_client.ADError as exc:
            hint = ''
            if isinstance(exc, ldap_client.ADConstraintViolation) and self.set_password:
                hint = ('; the domain may refuse the password (length, complexity or history policy): give a '
                        'longer password_length or another password')
            self.fail('%s%s (writes done before the failure: %d; a rerun completes the rest)'
                      % (exc, hint, self.writes), changed=self.writes > 0)
        finally:
            self.directory.close()
        secret_changed = False
        if present and self.params['kubernetes_secret'] is not None:
            if creds is not None:
                secret_changed = self.write_secret(creds)
            elif not self.secret_exists():
                spec = self.params['kubernetes_secret']
                self.module.warn('Secret %s/%s does not exist and this run did not set a password, so there is '
                                 'nothing to write into it; rerun with update_password=always to set a new password '
                                 'and store it' % (spec['namespace'], spec['name']))
        self.exit(creds, secret_changed)

    def write_user(self):
        if self.user is None:
            attributes = dict(self.user_plan.create)
            attributes['sAMAccountName'] = [self.sam]
            attributes['unicodePwd'] = [model.unicode_pwd(self.password)]
            self.directory.add(self.user_dn, engine.USER_OBJECT_CLASS, attributes)
            self.password_written = True
            self.writes += 1
            self.searches += 1
            created = self.directory.get(self.user_dn, ['objectSid'])
            self.user_sid = created.sid()
            self.plan_gmsas(self.user_sid)
            return
        if self.set_password:
            self.directory.modify(self.user_dn, {'unicodePwd': [('replace', [model.unicode_pwd(self.password)])]})
            self.password_written = True
            self.writes += 1
        if self.user_plan.changes:
            self.directory.modify(self.user_dn, self.user_plan.changes)
            self.writes += 1

    def exit(self, creds, secret_changed):
        p = self.params
        present = p['state'] == 'present'
        if present:
            changed = self.user_plan.changed or self.set_password or secret_changed
        else:
            changed = self.user is not None
        changed = changed or any(g['changed'] for g in self.gmsas)
        user = dict(name=p['name'], state=p['state'], distinguished_name=self.user_dn,
                    sid=self.user_sid if present and self.user_sid != NEW_USER_SID else None,
                    password_set=bool(present and self.set_password))
        if present:
            user.update(self.user_plan.after)
        out = dict(changed=changed, user=user,
                   gmsas=[dict(name=g['name'], distinguished_name=g['entry'].dn, changed=g['changed'])
                          for g in self.gmsas],
                   replanned=[g['name'] for g in self.gmsas if g.get('replanned')],
                   ldap_operations=dict(searches=self.searches, writes=self.writes))
        if self.secret_result is not None:
            out['kubernetes_secret'] = self.secret_result
        if creds is not None and self.generated and p['kubernetes_secret'] is None and not self.module.check_mode:
            out['credentials'] = creds
        if self.module._diff:
            out['diff'] = self.diff()
        self.module.exit_json(**out)

    def diff(self):
        label = self.params['name']
        before, after = {}, {}
        if self.user is not None:
            current = engine.plan(engine.USER_ROWS, {}, self.user).before
            before['user'] = engine.diff_text(dict(current, state='present'))
        else:
            before['user'] = {'state': 'absent'}
        if self.params['state'] == 'present':
            after['user'] = engine.diff_text(dict(self.user_plan.after, state='present'))
            if self.set_password:
                after['user']['password'] = 'changed (value not shown)'
        else:
            after['user'] = {'state': 'absent'}
        sid_labels = {NEW_USER_SID: label}
        if self.user_sid:
            sid_labels[self.user_sid] = label
        for gmsa in self.gmsas:
            plan = gmsa.get('plan')
            if plan is None:
                continue
            b = plan.before.get('allowed_to_retrieve_password') or []
            a = plan.after.get('allowed_to_retrieve_password') or []
            before.setdefault('gmsas', {})[gmsa['name']] = sorted(sid_labels.get(s, s) for s in b)
            after.setdefault('gmsas', {})[gmsa['name']] = sorted(sid_labels.get(s, s) for s in a)
        return dict(before=before, after=after)


def secret_options():
    """Name and namespace plus the shared Kubernetes connection options (environment fallbacks kept)."""
    options = dict(name=dict(type='str', required=True), namespace=dict(type='str', required=True))
    for key, spec in K8S_CONNECTION_SPEC.items():
        spec = dict(spec)
        spec.pop('aliases', None)
        options[key] = spec
    return options


def main():
    module = AnsibleModule(
        argument_spec=ad_argument_spec(
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
        ),
        supports_check_mode=True,
        **ad_module_kwargs()
    )
    mask_structured_secrets(module)
    if not ldap_client.HAS_LDAP3:
        module.fail_json(msg=missing_required_lib('ldap3'), exception=ldap_client.LDAP3_IMPORT_ERROR)
    PortableIdentityTask(module).run()


if __name__ == '__main__':
    main()
