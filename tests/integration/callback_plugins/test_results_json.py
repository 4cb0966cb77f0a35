# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only stdout callback: every task's result per host as one JSON document.

The same shape as ansible.builtin.json ({"plays": [{"play", "tasks": [{"task", "hosts"}]}], "stats"}),
which ansible-core 2.17, the oldest release the collection supports, does not ship.
"""

from __future__ import annotations

import json

from ansible.parsing.ajson import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: test_results_json
type: stdout
short_description: Task results as one JSON document, for the integration tests
description:
  - Prints every task's result per host as JSON at the end of the run.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'test_results_json'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plays = []
        self.tasks = {}

    def v2_playbook_on_play_start(self, play):
        self.plays.append({'play': {'name': play.get_name()}, 'tasks': []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        entry = {'task': {'name': task.get_name()}, 'hosts': {}}
        self.tasks[task._uuid] = entry
        self.plays[-1]['tasks'].append(entry)

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def _record(self, result, **flags):
        entry = self.tasks.get(result._task._uuid)
        if entry is None:
            return
        outcome = dict(result._result)
        outcome.update(flags)
        entry['hosts'][result._host.get_name()] = outcome

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record(result, failed=True)

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record(result, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._display.display(json.dumps({'plays': self.plays, 'stats': summary}, cls=AnsibleJSONEncoder,
                                         indent=1, sort_keys=True))
