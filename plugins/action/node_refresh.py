# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_refresh: purge the machine tickets and test the gMSAs on a Windows host of the inventory, through its own
winrm/psrp connection (docs/winrm.md)."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import NODE_REFRESH
from ansible_collections.winkube.gmsa.plugins.plugin_utils.node_exec import NodeAction


class ActionModule(NodeAction):
    SCRIPT = NODE_REFRESH
    SPEC = dict(
        computers=dict(type='list', elements='str', required=True),
        gmsas=dict(type='list', elements='str', default=[]),
        purge=dict(type='bool', default=True),
        fail_on_test=dict(type='bool', default=True),
    )

    def script_data(self, params, check_mode):
        return {'computers': params['computers'], 'gmsas': params['gmsas'], 'purge': params['purge'],
                'check_mode': check_mode}

    def outcome(self, params, data, answer, check_mode):
        tests = answer.get('tests') or []
        result = dict(changed=bool(answer.get('changed')), computer_name=answer.get('computer_name'),
                      listed=bool(answer.get('listed')), purged=bool(answer.get('purged')), tests=tests)
        bad = [t for t in tests if t.get('ok') is not True]
        if bad and params['fail_on_test'] and not check_mode:
            result.update(failed=True, msg='Test-ADServiceAccount on %s: %s' % (answer.get('computer_name'), '; '.join(
                '%s: %s' % (t.get('gmsa'), t.get('error') or 'False (the computer may not retrieve the password: is it '
                            'in the host group, and were its tickets purged?)') for t in bad)))
        return result
