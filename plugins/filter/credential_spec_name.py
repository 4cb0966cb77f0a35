# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: credential_spec_name
short_description: The GMSACredentialSpec name of a gMSA, derived as the modules derive it
version_added: 0.1.0
author:
  - winkube.gmsa maintainers (@winkube)
description:
  - The name of the C(GMSACredentialSpec) resource of a gMSA, the one derivation the modules and every role of
    this collection use.
  - For an entry of C(gmsa_accounts), its C(credential_spec) when set, else C(gmsa-<name>) in lower case.
  - For a gMSA name (a string), C(gmsa-<name>) in lower case. C(WebApp1) and C(WebApp1$) both give C(gmsa-webapp1).
  - A derived name has every run of other characters than letters and digits replaced by C(-) and is cut to
    253 characters, the longest name Kubernetes accepts.
options:
  _input:
    description: A gMSA name, or an entry of C(gmsa_accounts) (a dict with C(name) and optionally C(credential_spec)).
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: The credential spec name of every gMSA
  ansible.builtin.debug:
    msg: "{{ gmsa_accounts | map('winkube.gmsa.credential_spec_name') | list }}"

- name: The derived name of one gMSA
  ansible.builtin.debug:
    msg: "{{ 'WebApp1$' | winkube.gmsa.credential_spec_name }}"  # gmsa-webapp1
"""

RETURN = r"""
_value:
  description: The credential spec name.
  type: str
  sample: gmsa-webapp1
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import account_credential_spec_name


def credential_spec_name(account):
    """account: a gMSA name or a gmsa_accounts entry; an explicit credential_spec wins over the derived name."""
    entry = account if isinstance(account, Mapping) else {'name': account}
    if not entry.get('credential_spec') and not (isinstance(entry.get('name'), str) and entry['name']):
        raise AnsibleFilterError('winkube.gmsa.credential_spec_name: give a gMSA name or a gmsa_accounts entry with a name, not %r' % (account,))
    return account_credential_spec_name(entry)


class FilterModule:
    def filters(self):
        return {'credential_spec_name': credential_spec_name}
