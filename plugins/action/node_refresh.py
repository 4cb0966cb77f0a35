# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_refresh: purge the machine tickets and test the gMSAs on a Windows host of the inventory, through its own
winrm/psrp connection (docs/winrm.md)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import NODE_REFRESH
from ansible_collections.winkube.gmsa.plugins.plugin_utils.node_exec import WinRMRunError, failure, run_script

SPEC = dict(
    computers=dict(type='list', elements='str', required=True),
    gmsas=dict(type='list', elements='str', default=[]),
    purge=dict(type='bool', default=True),
    fail_on_test=dict(type='bool', default=True),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, params = self.validate_argument_spec(argument_spec=SPEC)
        data = {'computers': params['computers'], 'gmsas': params['gmsas'], 'purge': params['purge'],
                'check_mode': bool(self._task.check_mode)}
        try:
            answer = run_script(self, NODE_REFRESH, data) or {}
        except WinRMRunError as exc:
            return dict(result, **failure(exc))
        tests = answer.get('tests') or []
        result.update(changed=bool(answer.get('changed')), computer_name=answer.get('computer_name'),
                      listed=bool(answer.get('listed')), purged=bool(answer.get('purged')), tests=tests)
        bad = [t for t in tests if t.get('ok') is not True]
        if bad and params['fail_on_test'] and not self._task.check_mode:
            result.update(failed=True, msg='Test-ADServiceAccount on %s: %s' % (answer.get('computer_name'), '; '.join(
                '%s: %s' % (t.get('gmsa'), t.get('error') or 'False (the computer may not retrieve the password: is it '
                            'in the host group, and were its tickets purged?)') for t in bad)))
        return result
