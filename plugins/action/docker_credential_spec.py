# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker_credential_spec on a Windows Docker host of the inventory, through its own winrm/psrp connection
(docs/winrm.md, docs/docker.md). The validation and the file content are the module's own functions.

With the option hosts (deprecated), the module runs on the task's host and opens its own WinRM sessions."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.winkube.gmsa.plugins.module_utils.docker_credspec import (
    before_text,
    check_params,
    read_back_error,
    script_data,
    swarm_form,
    text,
    write_swarm_file,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.docker_scripts import DOCKER_CREDENTIAL_SPEC
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
    credspec=dict(type='raw', no_log=True),
    domain=dict(type='dict'),
    account=dict(type='str'),
    additional_accounts=dict(type='list', elements='raw', default=[]),
    host_account_config=dict(type='dict', no_log=True),
    data_root=dict(type='str'),
    discover_data_root=dict(type='bool', default=False),
    swarm_config_name=dict(type='str'),
    swarm_file=dict(type='path'),
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
        name, config_name, content, problems = check_params(params)
        if problems:
            return dict(result, failed=True, msg='nothing was written: ' + '; '.join(problems))
        check_mode = bool(self._task.check_mode)
        file_name = name + '.json'
        data = script_data(params['state'], file_name, params['data_root'], params['discover_data_root'], content,
                           check_mode)
        try:
            answer = run_script(self, DOCKER_CREDENTIAL_SPEC, data) or {}
        except WinRMRunError as exc:
            return dict(result, **failure(exc))
        after_text = text(content) if content is not None else ''
        result.update(changed=bool(answer.get('changed')), name=name, file_name=file_name, sha256=data['sha256'],
                      security_opt='credentialspec=file://%s' % file_name, computer_name=answer.get('computer_name'),
                      path=answer.get('path'), data_root=answer.get('data_root'),
                      data_root_source=answer.get('data_root_source'), existed=bool(answer.get('existed')),
                      content=after_text if content is not None else None,
                      swarm=swarm_form(config_name, file_name, content, params['swarm_file']))
        problem = read_back_error(result['path'], answer, data['sha256']) if result['changed'] and not check_mode else None
        if problem:
            result.update(failed=True, msg=problem)
        diffs = [{'before_header': result['path'], 'after_header': result['path'], 'before': before_text(answer),
                  'after': after_text}]
        # The Swarm file is written here, on the controller, from the bytes themselves: a template or
        # ansible.builtin.copy of the returned text may re-serialise the JSON (ansible-core 2.17 does).
        if params['swarm_file'] and not problem:
            try:
                file_changed, before = write_swarm_file(params['swarm_file'], content, check_mode)
            except (IOError, OSError) as exc:
                return dict(result, failed=True, msg='swarm_file: cannot write %s: %s' % (params['swarm_file'], exc))
            result['swarm']['file_changed'] = file_changed
            result['changed'] = result['changed'] or file_changed
            diffs.append({'before_header': params['swarm_file'], 'after_header': params['swarm_file'],
                          'before': before, 'after': after_text})
        if self._task.diff:
            result['diff'] = diffs
        return result
