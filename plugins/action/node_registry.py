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

MODULE = 'winkube.gmsa.node_registry'
KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\hns\\State'
VALUE_NAME = 'EnableCompartmentNamespace'
KINDS = {'DWord': 'REG_DWORD', 'QWord': 'REG_QWORD', 'String': 'REG_SZ', 'ExpandString': 'REG_EXPAND_SZ',
         'MultiString': 'REG_MULTI_SZ', 'Binary': 'REG_BINARY', 'None': 'REG_NONE', 'Unknown': 'REG_NONE'}


def _value(raw):
    if not isinstance(raw, dict):
        return None
    return {'type': KINDS.get(raw.get('type'), raw.get('type')), 'value': raw.get('value')}


def _text(value):
    return '%s (not set)\n' % VALUE_NAME if value is None else '%s = %s (%s)\n' % (VALUE_NAME, value['value'], value['type'])


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
        data = {'key': KEY, 'name': VALUE_NAME, 'value': 1, 'check_mode': bool(self._task.check_mode)}
        try:
            answer = run_script(self, REGISTRY_DWORD, data) or {}
        except WinRMRunError as exc:
            return dict(result, **failure(exc))
        before, after = _value(answer.get('before')), _value(answer.get('after'))
        result.update(changed=bool(answer.get('changed')), computer_name=answer.get('computer_name'),
                      key_existed=bool(answer.get('key_existed')), before=before, after=after)
        if result['changed'] and not self._task.check_mode and (after or {}).get('value') != 1:
            result.update(failed=True, msg='%s was written but reads back as %s' % (VALUE_NAME, after))
        if self._task.diff:
            result['diff'] = {'before_header': KEY, 'after_header': KEY, 'before': _text(before), 'after': _text(after)}
        return result
