# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker_credential_spec on a Windows Docker host of the inventory, through its own winrm/psrp connection
(docs/winrm.md, docs/docker.md). The validation and the file content are the module's own functions.

With the option hosts (deprecated), the module runs on the task's host and opens its own WinRM sessions."""

from __future__ import annotations

import base64

from ansible.plugins.action import ActionBase

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.docker_scripts import DOCKER_CREDENTIAL_SPEC
from ansible_collections.winkube.gmsa.plugins.modules import docker_credential_spec as module_code
from ansible_collections.winkube.gmsa.plugins.plugin_utils.node_exec import (
    WinRMRunError,
    failure,
    is_legacy,
    run_legacy,
    run_script,
    task_args,
)

MODULE = 'winkube.gmsa.docker_credential_spec'
SPEC = dict(
    name=dict(type='str', required=True),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    credspec=dict(type='raw'),
    domain=dict(type='dict'),
    account=dict(type='str'),
    additional_accounts=dict(type='list', elements='raw', default=[]),
    host_account_config=dict(type='dict'),
    data_root=dict(type='str'),
    discover_data_root=dict(type='bool', default=False),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        if is_legacy(task_args(self)):
            result.update(run_legacy(self, MODULE, task_vars))
            return result
        dummy, params = self.validate_argument_spec(argument_spec=SPEC, mutually_exclusive=[('credspec', 'domain')],
                                                    required_together=[('domain', 'account')])
        name = params['name'][:-5] if params['name'].lower().endswith('.json') else params['name']
        problems = [p for p in (module_code.name_error('name', name), module_code.data_root_error(params['data_root'])) if p]
        if params['data_root'] and params['discover_data_root']:
            problems.append('data_root and discover_data_root=true exclude each other: give one of them')
        content = None
        if params['state'] == 'present':
            if params['credspec'] is None and params['domain'] is None:
                problems.append('state=present needs the credential spec: give credspec, or domain and account')
            else:
                try:
                    content = module_code.to_bytes(module_code.credential_spec_from(params))
                except ValueError as exc:
                    problems.append(str(exc))
        if problems:
            return dict(result, failed=True, msg='nothing was written: ' + '; '.join(problems))
        file_name = name + '.json'
        data = module_code.script_data(params['state'], file_name, params['data_root'], params['discover_data_root'],
                                       content, bool(self._task.check_mode))
        try:
            answer = run_script(self, DOCKER_CREDENTIAL_SPEC, data) or {}
        except WinRMRunError as exc:
            return dict(result, **failure(exc))
        after_text = module_code._text(content) if content is not None else ''  # pylint: disable=protected-access
        result.update(changed=bool(answer.get('changed')), name=name, file_name=file_name, sha256=data['sha256'],
                      security_opt='credentialspec=file://%s' % file_name, computer_name=answer.get('computer_name'),
                      path=answer.get('path'), data_root=answer.get('data_root'), existed=bool(answer.get('existed')),
                      content=after_text if content is not None else None)
        if result['changed'] and not self._task.check_mode and answer.get('after_sha256') != data['sha256']:
            result.update(failed=True, msg='%s was written but reads back with SHA-256 %s instead of %s'
                          % (result['path'], answer.get('after_sha256'), data['sha256']))
        if self._task.diff:
            if answer.get('before_content') is not None:
                before = module_code._text(base64.b64decode(answer['before_content']))  # pylint: disable=protected-access
            elif result['existed']:
                before = '<%s bytes, SHA-256 %s>' % (answer.get('before_size'), answer.get('before_sha256'))
            else:
                before = ''
            result['diff'] = {'before_header': result['path'], 'after_header': result['path'], 'before': before,
                              'after': after_text}
        return result
