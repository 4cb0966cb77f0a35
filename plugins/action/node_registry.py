# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_registry on a Windows host of the inventory, through its own winrm/psrp connection (docs/winrm.md).

With the option hosts (deprecated), the module runs on the task's host and opens its own WinRM sessions."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.winkube.gmsa.plugins.plugin_utils.node_exec import (
    WinRMRunError,
    failure,
    is_legacy,
    run_legacy,
    run_script,
    task_args,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import REGISTRY_DWORD
from ansible_collections.winkube.gmsa.plugins.modules import node_registry as module_code

MODULE = 'winkube.gmsa.node_registry'
# The value, its rendering and the diff text are the module's own (one place).
KEY, VALUE_NAME, WANTED = module_code.KEY, module_code.VALUE_NAME, module_code.WANTED
_value, _text = module_code._value, module_code._text  # pylint: disable=protected-access


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = task_args(self)
        if is_legacy(args):
            result.update(run_legacy(self, MODULE, task_vars))
            return result
        unknown = sorted(self._task.args)
        if unknown:
            return dict(result, failed=True, msg='node_registry on an inventory host takes no option %s (the WinRM '
                        'connection comes from the host\'s own ansible_winrm_* variables)' % ', '.join(unknown))
        data = {'key': KEY, 'name': VALUE_NAME, 'value': WANTED, 'check_mode': bool(self._task.check_mode)}
        try:
            answer = run_script(self, REGISTRY_DWORD, data) or {}
        except WinRMRunError as exc:
            return dict(result, **failure(exc))
        before, after = _value(answer.get('before')), _value(answer.get('after'))
        result.update(changed=bool(answer.get('changed')), computer_name=answer.get('computer_name'),
                      key_existed=bool(answer.get('key_existed')), before=before, after=after)
        if result['changed'] and not self._task.check_mode and (after or {}).get('value') != WANTED:
            result.update(failed=True, msg='%s was written but reads back as %s' % (VALUE_NAME, after))
        if self._task.diff:
            result['diff'] = {'before_header': KEY, 'after_header': KEY, 'before': _text(before), 'after': _text(after)}
        return result
