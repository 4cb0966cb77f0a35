# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quiet stdout callback for the benchmark: per-task wall time and the counters modules return.

Prints one line per task (and every failure in full); writes a JSON list of tasks to $BENCH_STATS_FILE:
name, seconds, calls (module invocations: loop items or 1), changed_calls, failed, api_requests (summed
over calls: requests, writes, by_method) and ldap_operations (summed: searches, writes) when modules
return them. Used for both sides of the benchmark so that console output costs the same.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_stats
type: stdout
short_description: winkube.gmsa benchmark stdout callback (quiet, writes per-task stats as JSON)
description: See the module docstring.
author: winkube.gmsa contributors
"""


def _add(total, part):
    for key, value in (part or {}).items():
        if isinstance(value, dict):
            _add(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'bench_stats'

    def __init__(self):
        super().__init__()
        self.tasks = []
        self.current = None

    def _finish(self):
        if self.current is not None:
            self.current['seconds'] = round(time.monotonic() - self.current.pop('_start'), 3)
            self._display.display('  %-40s %7.2f s  calls=%d changed=%d%s' % (
                self.current['name'], self.current['seconds'], self.current['calls'],
                self.current['changed_calls'], '  FAILED' if self.current['failed'] else ''))
            self.tasks.append(self.current)
            self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._finish()
        self.current = {'name': task.get_name(), '_start': time.monotonic(), 'calls': 0, 'changed_calls': 0,
                        'failed': False, 'api_requests': {}, 'ldap_operations': {}}

    def _one(self, result, failed):
        self.current['calls'] += 1
        if result.get('changed'):
            self.current['changed_calls'] += 1
        if failed:
            self.current['failed'] = True
            self._show_failure(result)
        _add(self.current['api_requests'], result.get('api_requests'))
        _add(self.current['ldap_operations'], result.get('ldap_operations'))

    def _show_failure(self, result):
        self._display.display('FAILED %s: %s' % (self.current['name'], json.dumps(
            {k: result.get(k) for k in ('msg', 'exception', 'module_stderr', 'module_stdout', 'rc', 'item',
                                        'unreachable') if result.get(k)},
            default=str)[:6000]), stderr=True)

    # Loop items are counted one by one (their results carry no 'failed' key: the callback tells);
    # the loop's final result only marks the task.
    def v2_runner_item_on_ok(self, result):
        if self.current is not None:
            self._one(result._result, failed=False)

    def v2_runner_item_on_failed(self, result):
        if self.current is not None:
            self._one(result._result, failed=True)

    def v2_runner_on_ok(self, result):
        if self.current is not None and 'results' not in result._result:
            self._one(result._result, failed=False)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if self.current is None:
            return
        if 'results' in result._result:
            self.current['failed'] = True
        else:
            self._one(result._result, failed=True)

    def v2_runner_on_unreachable(self, result):
        if self.current is not None:
            self._one(dict(result._result, unreachable=True), failed=True)

    def v2_playbook_on_stats(self, stats):
        self._finish()
        path = os.environ.get('BENCH_STATS_FILE')
        if path:
            with open(path, 'w') as handle:
                json.dump(self.tasks, handle, indent=1)
