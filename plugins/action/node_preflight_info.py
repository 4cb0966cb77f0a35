# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_preflight_info on a Windows host of the inventory, through its own winrm/psrp connection (docs/winrm.md).

With the option hosts (deprecated), the module runs on the task's host and opens its own WinRM sessions."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import preflight
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import PREFLIGHT_FACTS
from ansible_collections.winkube.gmsa.plugins.plugin_utils.node_exec import NodeAction


class ActionModule(NodeAction):
    MODULE = 'winkube.gmsa.node_preflight_info'
    SCRIPT = PREFLIGHT_FACTS
    SPEC = dict(
        domain=dict(type='str'),
        domain_controllers=dict(type='list', elements='str', default=[]),
        mode=dict(type='str', choices=['domain_joined', 'portable', 'non_domain_joined'], default='domain_joined'),
        ccg_plugins=dict(type='list', elements='str', default=[]),
        connect_timeout=dict(type='int', default=3000),
        fail_on=dict(type='str', choices=['fail', 'warn', 'never'], default='fail'),
    )

    def script_data(self, params, check_mode):
        if params['connect_timeout'] < 1:
            raise ValueError('connect_timeout must be at least 1 millisecond')
        try:
            guids = [preflight.ccg_plugin_guid(value) for value in params['ccg_plugins']]
        except ValueError as exc:
            raise ValueError('ccg_plugins: %s; nothing was run' % exc)
        return {'domain': params['domain'], 'domain_controllers': params['domain_controllers'],
                'ports': list(preflight.DEFAULT_PORTS), 'timeout_ms': params['connect_timeout'], 'ccg_plugin_guids': guids}

    def outcome(self, params, data, answer, check_mode):
        facts = answer  # what PREFLIGHT_FACTS reports
        mode = 'domain_joined' if params['mode'] == 'domain_joined' else 'non_domain_joined'
        evaluated = preflight.evaluate(facts, mode=mode, domain=params['domain'], ccg_plugins=data['ccg_plugin_guids'])
        result = dict(changed=False, computer_name=facts.get('computer_name'), verdict=evaluated['verdict'],
                      checks=evaluated['checks'], runtime=evaluated['runtime'], os=facts.get('os'), facts=facts)
        if preflight.should_fail([evaluated['verdict']], params['fail_on']):
            limit = (preflight.FAIL,) if params['fail_on'] == 'fail' else (preflight.FAIL, preflight.WARN)
            result.update(failed=True, msg='preflight: ' + '; '.join(
                '%s: %s (fix: %s)' % (c['name'], c['detail'], c['fix']) for c in evaluated['checks'] if c['status'] in limit))
        return result
