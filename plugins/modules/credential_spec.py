#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: credential_spec
short_description: Manage GMSACredentialSpec resources
version_added: 0.1.0
description:
  - Creates, updates or deletes many GMSACredentialSpec resources (cluster-scoped, C(windows.k8s.io/v1)) in
    one call. All of them are read with one LIST and only those that differ are written, with server-side apply.
  - Every credential spec is checked before anything is written. It needs a valid DNS-1123 subdomain name and
    a non-empty C(ActiveDirectoryConfig.GroupManagedServiceAccounts) with C(Name) and C(Scope) in each entry.
  - The GMSACredentialSpec CRD must be installed (see M(winkube.gmsa.crd)).
author:
  - winkube.gmsa contributors (@winkube)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.k8s_connection
options:
  state:
    description: Whether the listed credential specs should exist.
    type: str
    choices: [present, absent]
    default: present
  credential_specs:
    description: The credential specs.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the GMSACredentialSpec resource (a DNS-1123 subdomain), used by pods in
          C(securityContext.windowsOptions.gmsaCredentialSpecName).
        type: str
        required: true
      credspec:
        description:
          - The credential spec content as written by C(New-CredentialSpec) (C(CmsPlugins), C(DomainJoinConfig),
            C(ActiveDirectoryConfig)), as a dictionary or as a JSON or YAML string. A whole GMSACredentialSpec
            resource is accepted too; its C(credspec) is used.
          - Required with O(state=present).
        type: raw
      labels:
        description: Extra labels of the resource.
        type: dict
  force_conflicts:
    description: Take over fields that another field manager set to a different value.
    type: bool
    default: false
  return_unchanged:
    description:
      - Whether RV(objects) and RV(contents) list the objects that needed no change too.
      - V(false) lists only the objects created, updated, deleted or skipped, which keeps the result small when
        the task holds thousands of objects (the roles of this collection set it). C(changed) and the diff are
        the same either way.
    type: bool
    default: true
  write_concurrency:
    description:
      - How many writes (server-side applies) to the API server are in flight at once.
      - Results, the order of RV(objects) and the error reported when the API server refuses an object are the
        same as with V(1) (one at a time); after a refused object no new write is started, writes already
        started finish and are listed in RV(objects) of the failure.
    type: int
    default: 4
attributes:
  action_group:
    support: full
    membership:
      - winkube.gmsa.k8s
  check_mode:
    support: full
    details: Changes are sent to the API server as server-side dry-run requests.
  diff_mode:
    support: full
    details: Returns the objects before and after the change in --diff mode.
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks HTTPS to the Kubernetes API server.
notes:
  - One call costs one LIST plus one request per credential spec that differs.
seealso:
  - module: winkube.gmsa.crd
  - module: winkube.gmsa.credential_spec_rbac
"""

EXAMPLES = r"""
- name: Credential specs from New-CredentialSpec output
  winkube.gmsa.credential_spec:
    credential_specs:
      - name: gmsa-webapp1
        credspec: "{{ lookup('file', 'WebApp1.json') }}"
      - name: gmsa-webapp2
        credspec:
          CmsPlugins: [ActiveDirectory]
          DomainJoinConfig:
            Sid: S-1-5-21-2126449477-2524075714-3094792973
            MachineAccountName: WebApp2
            Guid: 244818ae-87ac-4fcd-92ec-e79e5252348a
            DnsTreeName: contoso.com
            DnsName: contoso.com
            NetBiosName: CONTOSO
          ActiveDirectoryConfig:
            GroupManagedServiceAccounts:
              - {Name: WebApp2, Scope: contoso.com}
              - {Name: WebApp2, Scope: CONTOSO}

- name: Remove a credential spec
  winkube.gmsa.credential_spec:
    state: absent
    credential_specs:
      - name: gmsa-webapp1
"""

RETURN = r"""
names:
  description: Names of the credential specs handled.
  returned: always
  type: list
  elements: str
  sample: [gmsa-webapp1, gmsa-webapp2]
objects:
  description:
    - Every object handled, with the action taken (created, updated, deleted, unchanged).
    - With O(return_unchanged=false), only those not unchanged.
  returned: always
  type: list
  elements: dict
  sample: [{api_version: windows.k8s.io/v1, kind: GMSACredentialSpec, name: gmsa-webapp1, action: created}]
api_requests:
  description: Requests sent to the API server (total, per HTTP method, writes) and objects handled.
  returned: always
  type: dict
  sample: {requests: 3, by_method: {GET: 1, PATCH: 2}, writes: 2, objects: 2}
contents:
  description:
    - Per credential spec name (O(state=present)), its JSON as the webhook hands it to pods in
      C(gmsaCredentialSpec); the same bytes M(winkube.gmsa.docker_credential_spec) writes for Docker.
    - With O(return_unchanged=false), only those created or updated.
  returned: always
  type: dict
  sample: {gmsa-webapp1: '{"ActiveDirectoryConfig":{"GroupManagedServiceAccounts":[{"Name":"WebApp1","Scope":"contoso.com"}]}}'}
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.engine import run_module
from ansible_collections.winkube.gmsa.plugins.module_utils.models.crd import (
    API_VERSION,
    KIND,
    build_credential_spec,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.models.credential_spec import to_json
from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import dns1123_subdomain_error


def main():
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            credential_specs=dict(type='list', elements='dict', required=True, options=dict(
                name=dict(type='str', required=True),
                credspec=dict(type='raw', no_log=True),  # its PluginInput may be a secret (secrets.py)
                labels=dict(type='dict'),
            )),
            force_conflicts=dict(type='bool', default=False),
            write_concurrency=dict(type='int', default=4),
            return_unchanged=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    state = module.params['state']
    items = module.params['credential_specs']
    problems, objects, names = [], [], []
    listed = set()
    for item in items:
        name = item['name']
        if name in listed:
            problems.append('credential spec %r is listed twice' % name)
        listed.add(name)
        names.append(name)
        if state == 'absent':
            error = dns1123_subdomain_error(name, 'credential spec name')
            if error:
                problems.append(error)
            continue
        if item.get('credspec') is None:
            problems.append('%s: credspec is required with state=present' % name)
            continue
        try:
            objects.append(build_credential_spec(name, item['credspec'], item.get('labels')))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        module.fail_json(msg='invalid credential specs, nothing was changed: ' + '; '.join(problems))

    def body(engine):
        if state == 'present':
            engine.apply(objects, mode='scope')
        else:
            engine.delete([(API_VERSION, KIND, None, name) for name in names], mode='scope')
        if module.params['return_unchanged']:
            shown = objects
        else:
            acted_on = set(o['name'] for o in engine.summary(include_unchanged=False))
            shown = [o for o in objects if o['metadata']['name'] in acted_on]
        return {'names': names, 'contents': dict((o['metadata']['name'], to_json(o['credspec'])) for o in shown)}

    run_module(module, body)


if __name__ == '__main__':
    main()
