# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one of the collection's constant PowerShell scripts on the task's Windows host, through the host's own
Ansible connection (ansible_connection winrm or psrp, with its inventory variables, credentials and forks).

The command is the collection's constant BOOTSTRAP; the connection plugin wraps it in its usual
``PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand ...`` command line. The
script and the user's data travel on stdin as the same base64 JSON document the controller-side runner sends
(module_utils/winrm/runner.py), so no user value is ever PowerShell text; the answer comes back as the result
marker line.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.runner import (
    WinRMRunError,
    decode_output,
    encode_payload,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import BOOTSTRAP

CONNECTIONS = ('winrm', 'psrp')


def connection_name(action):
    """The short name of the task's connection plugin (winrm, psrp, local, ssh...)."""
    name = getattr(action._connection, 'transport', None) or action._play_context.connection or ''
    return str(name).rsplit('.', maxsplit=1)[-1]


def run_script(action, script, data):
    """The script's result on the task's host; raises WinRMRunError (kind powershell or protocol)."""
    name = connection_name(action)
    if name not in CONNECTIONS:
        raise AnsibleError('this task runs on a Windows host of the inventory through its winrm or psrp connection; '
                           'host %s uses the %r connection. Set ansible_connection: winrm (or psrp) for it, or give '
                           'hosts: (the deprecated controller-side form).' % (action._task.get_name(), name))
    payload = encode_payload(script, data) + b'\r\n'
    try:
        rc, stdout, stderr = action._connection.exec_command(BOOTSTRAP, in_data=payload, sudoable=False)
    finally:
        if action._task.delegate_to:
            # A loop delegating to several hosts reuses the connection when their addresses are equal, whatever
            # their ports (ansible-core's TaskExecutor compares remote_addr only): closing it makes the next item
            # connect to its own host (the roles delegate to the inventory's Windows nodes from localhost).
            action._connection.close()
    return decode_output(stdout, stderr, rc)


def failure(exc):
    """A task result for a script that could not run."""
    return {'failed': True, 'msg': str(exc), 'error_kind': getattr(exc, 'kind', 'connection'),
            'error_details': getattr(exc, 'details', {})}


__all__ = ['NodeAction', 'run_script', 'failure', 'connection_name', 'WinRMRunError', 'CONNECTIONS']


LEGACY_NOTE = ('the controller-side form (hosts: and WinRM credentials as module options) of %s is deprecated: put the '
               'Windows nodes in the inventory with ansible_connection: winrm (or psrp) and run the task on them '
               '(hosts: windows_nodes), or use the node agent (gmsa_nodes.access: agent). See docs/winrm.md.')


def task_args(action):
    """The task's arguments with module_defaults applied (ansible-core 2.19+ merges them into the task's args;
    before, action plugins merge them themselves)."""
    try:
        from ansible.executor.module_common import get_action_args_with_defaults
    except ImportError:
        return dict(action._task.args)
    return get_action_args_with_defaults(action._task.resolved_action or action._task.action, action._task.args,
                                         action._task.module_defaults, action._templar,
                                         action_groups=action._task._parent._play._action_groups)


def is_legacy(args):
    return bool(args.get('hosts') or args.get('host'))


def run_legacy(action, module, task_vars):
    """Run the module itself, on the task's host, as before (with a deprecation warning)."""
    action._display.deprecated(LEGACY_NOTE % module, version='1.0.0', collection_name='winkube.gmsa')
    return action._execute_module(module_name=module, module_args=action._task.args, task_vars=task_vars)


class NodeAction(ActionBase):
    """The run() every node-side action plugin shares: the deprecated controller-side form (``hosts:``), the options
    checked before anything runs, one constant script over the host's own connection, and the result.

    A plugin sets SCRIPT and SPEC (MODULE too when it has the deprecated form) and writes two hooks:
    ``script_data(params, check_mode)`` (the script's $Data; raises ValueError with the message for bad input) and
    ``outcome(params, data, answer, check_mode)`` (the task result's keys from the script's answer)."""

    TRANSFERS_FILES = False
    MODULE = None  # the module's name when the task may still use its deprecated controller-side form
    SCRIPT = None
    SPEC = {}
    SPEC_RULES = {}  # mutually_exclusive, required_together... for validate_argument_spec

    def run(self, tmp=None, task_vars=None):
        result = super(NodeAction, self).run(tmp, task_vars)
        if self.MODULE and is_legacy(task_args(self)):
            result.update(run_legacy(self, self.MODULE, task_vars))
            return result
        unknown = sorted(set(self._task.args) - set(self.SPEC))
        if unknown:
            return dict(result, failed=True, msg='%s on an inventory host takes no option %s (the WinRM connection comes '
                        'from the host\'s own ansible_winrm_* or ansible_psrp_* variables; nothing was run)'
                        % (self._task.action, ', '.join(unknown)))
        dummy, params = self.validate_argument_spec(argument_spec=self.SPEC, **self.SPEC_RULES)
        check_mode = bool(self._task.check_mode)
        try:
            data = self.script_data(params, check_mode)
        except ValueError as exc:
            return dict(result, failed=True, msg=str(exc))
        try:
            answer = run_script(self, self.SCRIPT, data) or {}
        except WinRMRunError as exc:
            return dict(result, **failure(exc))
        result.update(self.outcome(params, data, answer, check_mode))
        return result

    def script_data(self, params, check_mode):
        raise NotImplementedError

    def outcome(self, params, data, answer, check_mode):
        raise NotImplementedError
