#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_credential_spec
short_description: Write a gMSA credential spec file on Windows Docker hosts, and its Swarm config content
version_added: 0.1.0
description:
  - Two forms. B(On a Windows host of the inventory) (a play on the Windows hosts, C(ansible_connection) V(winrm) or
    V(psrp)) the action plugin of the same name sends the collection's constant PowerShell over the host's own
    connection, with the options as data; inventory variables, forks and AWX Machine credentials apply, and the
    WinRM options below are not used (see C(docs/winrm.md) for the options this form takes).
  - B(Deprecated controller-side form), removed in 1.0.0 - with O(hosts) the module runs on the task's host and opens
    its own WinRM sessions with the WinRM options below.
  - On each Windows Docker host, over WinRM, writes the credential spec of a gMSA as
    C(<data root>\CredentialSpecs\<name>.json), where C(docker run --security-opt "credentialspec=file://<name>.json")
    finds it. The data root is C(C:\ProgramData\Docker) unless O(data_root) names another one, or
    O(discover_data_root) reads it from the host's C(C:\ProgramData\docker\config\daemon.json) (key C(data-root)).
  - The content is the collection's one serialisation of the credential spec, the same bytes the windows-gmsa
    webhook hands to Kubernetes pods for the GMSACredentialSpec that M(winkube.gmsa.credential_spec) creates
    from the same input (compact JSON, keys sorted, UTF-8 without BOM).
  - Idempotent - the host compares the SHA-256 of the existing file with the wanted bytes; a byte-identical file
    is left alone. A changed file is written to a temporary file in the same folder and moved over the old one.
  - For Docker Swarm, returns the exact content for C(docker config create <config name> <file>) and the
    C(--credential-spec="config://<config name>") argument of C(docker service create); O(swarm_file) also
    writes that content as a file on the machine that runs the module.
  - B(Not verified against Windows.) The collection's tests run this module through pywinrm's real
    HTTP, authentication and WS-Management stack against a local test endpoint that imitates the
    PowerShell side; the PowerShell itself has not run on Windows in these tests (see C(docs/docker.md)).
  - User values never become PowerShell text; see C(docs/winrm.md) for how data reaches the script.
author:
  - winkube.gmsa maintainers (@winkube)
extends_documentation_fragment:
  - winkube.gmsa.winrm_connection.node_action
  - winkube.gmsa.winrm_connection.node_host
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.winrm_connection
options:
  name:
    description:
      - Name of the credential spec. The file is C(<name>.json) (a trailing C(.json) in O(name) is not doubled)
        and the default Swarm config name is O(name).
      - 1 to 64 letters, digits, C(-), C(_) and C(.), starting and ending with a letter or digit, without
        C(..) and not a Windows device name (C(CON), C(NUL), C(COM1), ...). The same rule as Docker's config
        names, so one name serves the file and the Swarm config.
    type: str
    required: true
  state:
    description: Whether the file should exist.
    type: str
    choices: [present, absent]
    default: present
  credspec:
    description:
      - The credential spec content (C(CmsPlugins), C(DomainJoinConfig), C(ActiveDirectoryConfig)), as a
        dictionary (for example the output of the P(winkube.gmsa.credential_spec#filter) filter) or as a JSON
        or YAML string. A whole GMSACredentialSpec resource is accepted too; its C(credspec) is used.
      - With O(state=present), either O(credspec) or O(domain) and O(account) is required.
    type: raw
  domain:
    description:
      - Domain facts to build the credential spec from, the registered result of M(winkube.gmsa.domain_info)
        (as for the P(winkube.gmsa.credential_spec#filter) filter). Needs O(account).
    type: dict
  account:
    description: With O(domain), the gMSA (its sAMAccountName with or without the trailing C($)).
    type: str
  additional_accounts:
    description: With O(domain), more gMSAs the container may use (as for the credential_spec filter).
    type: list
    elements: raw
    default: []
  host_account_config:
    description:
      - With O(domain), for hosts that are not domain-joined, the ccg.exe plugin (as for the credential_spec
        filter) - C(plugin=azure_key_vault) with C(object_id) and C(secret_uri), C(plugin=aws) with
        C(credential_arn), or C(plugin_guid) and C(plugin_input).
    type: dict
  data_root:
    description:
      - Docker's data root on the hosts (C(dockerd --data-root), C(data-root) in C(daemon.json)), an absolute
        Windows path such as C(D:\docker). Default C(C:\ProgramData\Docker).
    type: str
  discover_data_root:
    description:
      - Instead of O(data_root), read C(data-root) from each host's
        C(C:\ProgramData\docker\config\daemon.json); hosts without the file or the key use C(C:\ProgramData\Docker).
      - A data root given on dockerd's command line (service arguments) is not discovered; give O(data_root).
    type: bool
    default: false
  swarm_config_name:
    description: Name of the Swarm config in the returned commands; default O(name) without C(.json).
    type: str
  swarm_file:
    description:
      - Also write the content to this file on the machine that runs the module (the controller when the
        play runs on localhost), for a pipeline's C(docker config create). With O(state=absent) it is removed.
        In the inventory form the action plugin writes it, always on the controller.
      - The file gets the exact bytes of RV(content) (mode C(0644)), never a re-templated copy; check mode and
        diff cover it. Its folder is created when missing.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - Docker reads the file when a container starts; running containers keep the content they started with.
  - The file holds no secret (the gMSA password never leaves Active Directory and the hosts' LSA).
seealso:
  - module: winkube.gmsa.credential_spec
  - plugin: winkube.gmsa.credential_spec
    plugin_type: filter
  - name: Docker service create --credential-spec
    description: Docker CLI reference.
    link: https://docs.docker.com/reference/cli/docker/service/create/#credential-spec
"""

EXAMPLES = r"""
# The inventory form: a task in a play on the Windows Docker hosts of the inventory (hosts: docker_windows),
# which reaches each host through its own connection.
- name: Write the file, and the Swarm config file on the controller (once)
  winkube.gmsa.docker_credential_spec:
    name: webapp1
    credspec: "{{ hostvars['localhost'].domain | winkube.gmsa.credential_spec('WebApp1') }}"
    data_root: D:\docker
    swarm_file: "{{ playbook_dir + '/out/webapp1.json' if inventory_hostname == groups['docker_windows'][0] else omit }}"

# The deprecated controller-side form (hosts and WinRM credentials as options), removed in 1.0.0.
- name: Read the domain
  winkube.gmsa.domain_info:
    server: dc1.contoso.com
    username: reader@contoso.com
    password: "{{ ad_password }}"
  register: domain

- name: Credential spec of WebApp1 on every Docker host
  winkube.gmsa.docker_credential_spec:
    hosts: "{{ groups['docker_windows'] }}"
    username: CONTOSO\docker-admin
    password: "{{ winrm_password }}"
    ca_trust_path: /etc/pki/contoso-root-ca.pem
    name: webapp1
    domain: "{{ domain }}"
    account: WebApp1
  register: webapp1

- name: Run a container as WebApp1
  ansible.builtin.debug:
    msg: docker run --security-opt "{{ webapp1.security_opt }}" mcr.microsoft.com/windows/servercore/iis

- name: The same spec for Swarm, written on the controller for docker config create
  winkube.gmsa.docker_credential_spec:
    hosts: [swarm-manager1.contoso.com]
    username: CONTOSO\docker-admin
    password: "{{ winrm_password }}"
    name: webapp1
    credspec: "{{ domain | winkube.gmsa.credential_spec('WebApp1') }}"
    discover_data_root: true
    swarm_file: "{{ playbook_dir }}/out/webapp1.json"

- name: Remove it
  winkube.gmsa.docker_credential_spec:
    hosts: "{{ groups['docker_windows'] }}"
    username: CONTOSO\docker-admin
    password: "{{ winrm_password }}"
    name: webapp1
    state: absent
"""

RETURN = r"""
name:
  description: The credential spec name.
  returned: always
  type: str
  sample: webapp1
file_name:
  description: The file name in the CredentialSpecs folder.
  returned: always
  type: str
  sample: webapp1.json
security_opt:
  description: The value for C(docker run --security-opt), relative to the CredentialSpecs folder.
  returned: always
  type: str
  sample: credentialspec=file://webapp1.json
content:
  description:
    - The credential spec JSON, exactly the bytes written (UTF-8); also the content for C(docker config create).
    - V(null) with O(state=absent).
  returned: always
  type: str
  sample: '{"ActiveDirectoryConfig":{"GroupManagedServiceAccounts":[{"Name":"WebApp1","Scope":"contoso.com"}]},"CmsPlugins":["ActiveDirectory"]}'
sha256:
  description: SHA-256 of RV(content) (hex); V(null) with O(state=absent).
  returned: always
  type: str
swarm:
  description: The Swarm form.
  returned: always
  type: dict
  contains:
    config_name:
      description: Name of the Swarm config.
      type: str
      sample: webapp1
    content:
      description: The exact content for C(docker config create) (RV(content)).
      type: str
    config_create:
      description: The command that creates the config from a file holding RV(swarm.content).
      type: str
      sample: docker config create webapp1 webapp1.json
    credential_spec_argument:
      description: The argument of C(docker service create) / C(docker service update).
      type: str
      sample: --credential-spec="config://webapp1"
    file:
      description: O(swarm_file), V(null) when not given.
      type: str
    file_changed:
      description: Whether O(swarm_file) was (or in check mode would be) written or removed.
      type: bool
hosts:
  description: One entry per host, in the order of O(hosts).
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: The entry of O(hosts).
      type: str
    failed:
      description: Whether this host failed; see RV(hosts[].msg).
      type: bool
    msg:
      description: Why this host failed.
      type: str
      returned: when failed
    error_kind:
      description: C(connection), C(tls), C(authentication), C(wsman), C(configuration), C(powershell) or C(protocol).
      type: str
      returned: when failed
    error_details:
      description: For PowerShell errors the category, fully qualified error id, exception type, command and line.
      type: dict
      returned: when failed
    computer_name:
      description: Windows computer name of the host.
      type: str
    path:
      description: The file on the host.
      type: str
      sample: C:\ProgramData\Docker\CredentialSpecs\webapp1.json
    data_root:
      description: Docker's data root used on this host.
      type: str
      sample: C:\ProgramData\Docker
    data_root_source:
      description: Where the data root came from - C(option), C(daemon.json) or C(default).
      type: str
    changed:
      description: Whether the file was (or in check mode would be) written or removed on this host.
      type: bool
    existed:
      description: Whether the file existed before.
      type: bool
    before_sha256:
      description: SHA-256 of the file before (V(null) when it did not exist).
      type: str
    security_opt:
      description: The value for C(docker run --security-opt) on this host (RV(security_opt)).
      type: str
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.docker_credspec import (
    OPTION_RULES,
    OPTIONS,
    before_text,
    check_params,
    read_back_error,
    script_data,
    swarm_form,
    text,
    write_swarm_file,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import (
    winrm_argument_spec,
    winrm_module_kwargs,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.docker_scripts import DOCKER_CREDENTIAL_SPEC
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.module_support import runner_for
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import failure_message


def main():
    argument_spec = winrm_argument_spec(**{name: dict(option) for name, option in OPTIONS.items()})
    kwargs = dict(winrm_module_kwargs(), **OPTION_RULES)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **kwargs)
    params = module.params

    name, config_name, content, problems = check_params(params)
    if problems:
        module.fail_json(msg='nothing was written: ' + '; '.join(problems))

    file_name = name + '.json'
    security_opt = 'credentialspec=file://%s' % file_name
    runner = runner_for(module)
    data = script_data(params['state'], file_name, params['data_root'], params['discover_data_root'], content,
                       module.check_mode)
    sha256 = data['sha256']
    outcomes = runner.run_all(DOCKER_CREDENTIAL_SPEC, lambda entry: data)
    after_text = text(content) if content is not None else ''

    hosts, diffs = [], []
    for outcome in outcomes:
        entry = outcome['host']
        if not outcome['ok']:
            hosts.append({'host': entry, 'failed': True, 'changed': False, 'msg': outcome['error'],
                          'error_kind': outcome['error_kind'], 'error_details': outcome['error_details']})
            continue
        result = outcome['result'] or {}
        host = {
            'host': entry,
            'failed': False,
            'computer_name': result.get('computer_name'),
            'path': result.get('path'),
            'data_root': result.get('data_root'),
            'data_root_source': result.get('data_root_source'),
            'changed': bool(result.get('changed')),
            'existed': bool(result.get('existed')),
            'before_sha256': result.get('before_sha256'),
            'security_opt': security_opt,
        }
        problem = read_back_error(host['path'], result, sha256) if host['changed'] and not module.check_mode else None
        if problem:
            host.update(failed=True, msg=problem)
        label = '%s: %s' % (entry, host['path'])
        diffs.append({'before_header': label, 'after_header': label, 'before': before_text(result), 'after': after_text})
        hosts.append(host)

    swarm = swarm_form(config_name, file_name, content, params['swarm_file'])
    if params['swarm_file']:
        try:
            swarm['file_changed'], before = write_swarm_file(params['swarm_file'], content, module.check_mode)
        except (IOError, OSError) as exc:
            module.fail_json(msg='swarm_file: cannot write %s: %s' % (params['swarm_file'], exc),
                             changed=any(h.get('changed') for h in hosts), hosts=hosts)
        diffs.append({'before_header': params['swarm_file'], 'after_header': params['swarm_file'],
                      'before': before, 'after': after_text})

    result = dict(changed=any(h.get('changed') for h in hosts) or swarm['file_changed'], name=name,
                  file_name=file_name, security_opt=security_opt,
                  content=after_text if content is not None else None, sha256=sha256, swarm=swarm, hosts=hosts)
    if module._diff:
        result['diff'] = diffs
    if any(h.get('failed') for h in hosts):
        module.fail_json(msg=failure_message(hosts), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
