# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_registry on a Windows host of the inventory, through its own winrm/psrp connection (docs/winrm.md).

With the option hosts (deprecated), the module runs on the task's host and opens its own WinRM sessions."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import REGISTRY_DWORD
from ansible_collections.winkube.gmsa.plugins.modules import node_registry as module_code
from ansible_collections.winkube.gmsa.plugins.plugin_utils.node_exec import NodeAction

# The value, its rendering and the diff text are the module's own (one place).
KEY, VALUE_NAME, WANTED = module_code.KEY, module_code.VALUE_NAME, module_code.WANTED


class ActionModule(NodeAction):
    MODULE = 'winkube.gmsa.node_registry'
    SCRIPT = REGISTRY_DWORD

    def script_data(self, params, check_mode):
        return {'key': KEY, 'name': VALUE_NAME, 'value': WANTED, 'check_mode': check_mode}

    def outcome(self, params, data, answer, check_mode):
        before, after = module_code.registry_value(answer.get('before')), module_code.registry_value(answer.get('after'))
        result = dict(changed=bool(answer.get('changed')), computer_name=answer.get('computer_name'),
                      key_existed=bool(answer.get('key_existed')), before=before, after=after)
        if result['changed'] and not check_mode and (after or {}).get('value') != WANTED:
            result.update(failed=True, msg='%s was written but reads back as %s' % (VALUE_NAME, after))
        if self._task.diff:
            result['diff'] = {'before_header': KEY, 'after_header': KEY, 'before': module_code.registry_text(before),
                              'after': module_code.registry_text(after)}
        return result
