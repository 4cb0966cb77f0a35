#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kds_root_key
short_description: Ensure the forest has a KDS root key, so gMSA passwords can be derived
version_added: 0.1.0
description:
  - Makes sure the Active Directory forest has a Group Key Distribution Service (KDS) root key, the
    secret from which domain controllers derive the passwords of group Managed Service Accounts.
  - Reads the keys under C(CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services) of the
    configuration partition and reports the one domain controllers use (the most recently created key
    whose effective time lies before the start of the current 10-hour key interval).
  - Creates a key over LDAP, the same object C(Add-KdsRootKey) writes, only when no well-formed key exists
    at all, or with O(lab_mode=true) when none is usable yet. One key per forest is enough; a key that is
    waiting to become usable is left alone.
  - A key created with the default O(effective_immediately=true) is effective at once but domain
    controllers only use it about 10 hours later, after it has replicated to every domain controller.
  - Needs Domain Admins or Enterprise Admins rights in the forest root domain to create a key.
author:
  - winkube.gmsa maintainers (@winkube)
extends_documentation_fragment:
  - winkube.gmsa.ad_connection
options:
  effective_immediately:
    description:
      - With V(true), a created key takes effect now, like C(Add-KdsRootKey -EffectiveImmediately); domain
        controllers still wait about 10 hours before deriving passwords from it.
      - With V(false) and no O(effective_time), a created key takes effect 10 days from now, like
        C(Add-KdsRootKey) without arguments.
      - Ignored when O(effective_time) or O(lab_mode) is set.
    type: bool
    default: true
  effective_time:
    description:
      - Effective time of a created key, ISO 8601, for example V(2026-01-31T08:00:00Z); no time zone means UTC.
      - Only used when a key is created.
    type: str
  lab_mode:
    description:
      - Create the key with an effective time 10 hours and 5 minutes in the past, so a single domain
        controller lab can create gMSAs at once (what Samba's provisioning and
        C(Add-KdsRootKey -EffectiveTime ((Get-Date).AddHours(-10))) do).
      - Also creates a key when keys exist but none is usable yet.
      - Never use this with several domain controllers; the module warns when it creates such a key.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode. In check mode nothing is written and RV(root_key.id) of a key that
    would be created is V(null).
  - Deleting and recreating root keys on Windows leaves the old key cached by the KDS service; restart
    the Microsoft Key Distribution Service on every domain controller after doing so.
seealso:
  - module: winkube.gmsa.domain_info
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
"""

EXAMPLES = r"""
- name: Make sure gMSAs can be used (production; the key is used about 10 hours later)
  winkube.gmsa.kds_root_key:
    server: dc1.contoso.com
    username: CONTOSO\admin
    password: "{{ ad_admin_password }}"
    ca_file: /etc/pki/contoso-root-ca.pem
  register: kds

- name: Single-DC lab, usable at once
  winkube.gmsa.kds_root_key:
    server: 127.0.0.1
    username: Administrator@contoso.test
    password: "{{ lab_password }}"
    ca_file: "{{ lab_ca_file }}"
    lab_mode: true

- name: Fail early when no key is usable yet
  ansible.builtin.assert:
    that: kds.usable
    fail_msg: "KDS root key {{ kds.root_key.id }} becomes usable at {{ kds.root_key.usable_from }}"
"""

RETURN = r"""
usable:
  description: Whether domain controllers can derive gMSA passwords now (after any key this run created).
  returned: always
  type: bool
  sample: true
created:
  description: Whether a key was created (or would be, in check mode).
  returned: always
  type: bool
  sample: false
root_key:
  description:
    - The key domain controllers use now, or with none usable the newest well-formed key (which is
      waiting for its time), or the key created. V(null) when the forest has no key and none was created.
  returned: always
  type: dict
  contains:
    id:
      description: GUID naming the key (V(null) for a key that check mode would create).
      type: str
      sample: 0f25c1b5-2a3d-4a68-8f7e-8f1fb5fd9d6e
    dn:
      description: Distinguished name of the key object.
      type: str
    effective_time:
      description: C(msKds-UseStartTime), UTC, ISO 8601.
      type: str
      sample: "2026-11-26T01:00:53Z"
    create_time:
      description: C(msKds-CreateTime), UTC, ISO 8601.
      type: str
    usable_from:
      description: Start of the first 10-hour key interval in which the key can be used.
      type: str
    effective:
      description: Whether the effective time has passed.
      type: bool
    usable:
      description: Whether gMSA passwords can be derived from this key now.
      type: bool
    well_formed:
      description: Whether the key has the attributes domain controllers need (GUID name, version 1, KDF).
      type: bool
    problems:
      description: What makes a key not well formed.
      type: list
      elements: str
    domain_id:
      description: C(msKds-DomainID), the domain controller that created the key.
      type: str
  sample:
    id: 0f25c1b5-2a3d-4a68-8f7e-8f1fb5fd9d6e
    dn: CN=0f25c1b5-2a3d-4a68-8f7e-8f1fb5fd9d6e,CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,CN=Configuration,DC=contoso,DC=com
    effective_time: "2026-11-26T01:00:53Z"
    create_time: "2026-11-26T11:05:53Z"
    usable_from: "2026-11-26T01:00:53Z"
    effective: true
    usable: true
    well_formed: true
    problems: []
    domain_id: CN=DC1,OU=Domain Controllers,DC=contoso,DC=com
root_keys:
  description: Every root key found (before creating), newest created first, same fields as RV(root_key).
  returned: always
  type: list
  elements: dict
"""

import datetime

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import (
    ad_argument_spec,
    ad_module_kwargs,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.backend import connect
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.ldap_client import ADError
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import kds


def unreadable_keys_message(directory, keys):
    """A message naming the missing right when keys are there but their attributes cannot be read (None if all
    can): without it the module would take them for malformed and create another key on every run."""
    hidden = [k['dn'] for k in keys if k['create_time'] is None and k['effective_time'] is None]
    if not hidden:
        return None
    return ('cannot read the KDS root key(s) %s: %s needs Read Property and Control Access (the key attributes are '
            'confidential) on msKds-ProvRootKey objects in %s' % (', '.join(hidden), getattr(
                directory, 'bound_as', None) or 'the bound account', kds.root_keys_dn(directory)))


def main():
    module = AnsibleModule(
        argument_spec=ad_argument_spec(
            effective_immediately=dict(type='bool', default=True),
            effective_time=dict(type='str'),
            lab_mode=dict(type='bool', default=False),
        ),
        mutually_exclusive=[('effective_time', 'lab_mode')],
        supports_check_mode=True,
        **ad_module_kwargs()
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    use_start = None
    if module.params['effective_time']:
        try:
            use_start = kds.parse_time(module.params['effective_time'])
        except ValueError as exc:
            module.fail_json(msg='effective_time: %s' % exc)
    elif module.params['lab_mode']:
        use_start = now - kds.LAB_BACKDATE
    elif module.params['effective_immediately']:
        use_start = now
    else:
        use_start = now + datetime.timedelta(days=10)

    directory = connect(module)
    try:
        keys = kds.read_root_keys(directory, now)
        if unreadable_keys_message(directory, keys):
            module.fail_json(msg=unreadable_keys_message(directory, keys) + ' (nothing was changed)')
        current = kds.current_key(keys)
        pending = kds.pending_key(keys)
        need = current is None and (pending is None or module.params['lab_mode'])
        result = dict(changed=False, created=False, root_keys=[kds.public(k) for k in keys])
        before_ids = [k['id'] for k in keys]
        if need:
            result['changed'] = result['created'] = True
            if module.check_mode:
                key = dict(id=None, dn=None, effective_time=kds.iso(use_start), create_time=kds.iso(now),
                           effective=use_start <= now, usable=use_start <= kds.interval_start(now),
                           well_formed=True, problems=[], domain_id=None,
                           usable_from=kds.iso(use_start if use_start == kds.interval_start(use_start)
                                               else kds.interval_start(use_start) + kds.KEY_CYCLE))
                after_ids = before_ids + ['(new key)']
            else:
                key_id, dn = kds.create_root_key(directory, use_start, now=now)
                created = [k for k in kds.read_root_keys(directory, now) if k['id'] == key_id]
                if created and unreadable_keys_message(directory, created):
                    module.fail_json(msg='created root key %s, but %s' % (dn, unreadable_keys_message(
                        directory, created)), **result)
                if not created:
                    module.fail_json(msg='created root key %s but cannot read it back' % dn, **result)
                key = kds.public(created[0])
                after_ids = before_ids + [key_id]
            if module.params['lab_mode']:
                module.warn('created a KDS root key effective %s (backdated 10 hours): fine for a single domain '
                            'controller lab only. In production create keys without lab_mode; domain controllers '
                            'use a key about 10 hours after it takes effect, once it has replicated.'
                            % key['effective_time'])
            elif not key['usable']:
                module.warn('created a KDS root key; domain controllers derive gMSA passwords from it from about '
                            '%s on (10 hours for replication). gMSA passwords cannot be read before then.'
                            % key['usable_from'])
            result['root_key'] = key
            result['usable'] = bool(key['usable'])
            if module._diff:
                result['diff'] = dict(before=dict(root_keys=before_ids), after=dict(root_keys=after_ids))
        else:
            key = current or pending
            result['root_key'] = kds.public(key)
            result['usable'] = current is not None
            if current is None:
                module.warn('KDS root key %s is not usable yet; gMSA passwords can be derived from %s on.'
                            % (pending['id'], pending['usable_from']))
            if module._diff:
                result['diff'] = dict(before=dict(root_keys=before_ids), after=dict(root_keys=before_ids))
        malformed = [k['id'] for k in keys if not k['well_formed']]
        if malformed:
            module.warn('ignoring malformed KDS root keys %s: %s' % (
                ', '.join(malformed), '; '.join('; '.join(k['problems']) for k in keys if not k['well_formed'])))
    except ADError as exc:
        module.fail_json(msg=str(exc))
    finally:
        directory.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
