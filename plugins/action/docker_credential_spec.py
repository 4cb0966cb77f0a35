# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker_credential_spec on a Windows Docker host of the inventory, through its own winrm/psrp connection
(docs/winrm.md, docs/docker.md). The checks, the file's bytes and the Swarm file are module_utils/docker_credspec.py,
shared with the module.

With the option hosts (deprecated), the module runs on the task's host and opens its own WinRM sessions."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils import docker_credspec
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.docker_scripts import DOCKER_CREDENTIAL_SPEC
from ansible_collections.winkube.gmsa.plugins.plugin_utils.node_exec import NodeAction


class ActionModule(NodeAction):
    MODULE = 'winkube.gmsa.docker_credential_spec'
    SCRIPT = DOCKER_CREDENTIAL_SPEC
    SPEC = docker_credspec.OPTIONS
    SPEC_RULES = docker_credspec.OPTION_RULES

    def script_data(self, params, check_mode):
        name, config_name, content, problems = docker_credspec.check_params(params)
        if problems:
            raise ValueError('nothing was written: ' + '; '.join(problems))
        return docker_credspec.script_data(params['state'], name + '.json', params['data_root'],
                                           params['discover_data_root'], content, check_mode)

    def outcome(self, params, data, answer, check_mode):
        name, config_name, content, dummy = docker_credspec.check_params(params)  # pure: the same as script_data's
        after_text = docker_credspec.text(content) if content is not None else ''
        result = dict(changed=bool(answer.get('changed')), name=name, file_name=data['file_name'], sha256=data['sha256'],
                      security_opt='credentialspec=file://%s' % data['file_name'], computer_name=answer.get('computer_name'),
                      path=answer.get('path'), data_root=answer.get('data_root'),
                      data_root_source=answer.get('data_root_source'), existed=bool(answer.get('existed')),
                      content=after_text if content is not None else None,
                      swarm=docker_credspec.swarm_form(config_name, data['file_name'], content, params['swarm_file']))
        problem = None
        if result['changed'] and not check_mode:
            problem = docker_credspec.read_back_error(result['path'], answer, data['sha256'])
        if problem:
            result.update(failed=True, msg=problem)
        diffs = [{'before_header': result['path'], 'after_header': result['path'],
                  'before': docker_credspec.before_text(answer), 'after': after_text}]
        # The Swarm file is written here, on the controller, from the bytes themselves: a template or
        # ansible.builtin.copy of the returned text may re-serialise the JSON (ansible-core 2.17 does).
        if params['swarm_file'] and not problem:
            try:
                file_changed, before = docker_credspec.write_swarm_file(params['swarm_file'], content, check_mode)
            except (IOError, OSError) as exc:
                return dict(result, failed=True, msg='swarm_file: cannot write %s: %s' % (params['swarm_file'], exc))
            result['swarm']['file_changed'] = file_changed
            result['changed'] = result['changed'] or file_changed
            diffs.append({'before_header': params['swarm_file'], 'after_header': params['swarm_file'],
                          'before': before, 'after': after_text})
        if self._task.diff:
            result['diff'] = diffs
        return result
