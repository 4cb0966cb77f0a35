"""Integration tests: ansible-playbook against the real local lab, results read back from the servers.

Lab fixtures live in their own plugin files: fixtures_samba.py (Samba AD DC) and fixtures_k8s.py
(kube-apiserver, etcd, controller-manager, scheduler, kwok, windows-gmsa webhook).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest_plugins = [
    name for name in ('fixtures_samba', 'fixtures_k8s', 'fixtures_winrm')
    if (Path(__file__).parent / f'{name}.py').exists()
]


def collections_path(tmp_root: Path) -> Path:
    """A collections tree whose winkube/gmsa points at this checkout."""
    target = tmp_root / 'collections' / 'ansible_collections' / 'winkube'
    target.mkdir(parents=True, exist_ok=True)
    link = target / 'gmsa'
    if not link.exists():
        link.symlink_to(REPO)
    return tmp_root / 'collections'


class PlaybookResult:
    def __init__(self, proc: subprocess.CompletedProcess, results: dict):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.results = results  # task name -> registered result, from the json callback

    @property
    def changed(self) -> bool:
        return any(r.get('changed') for r in self.results.values())

    def failures(self) -> dict:
        """Failed tasks (not ignored) -> their message."""
        return {name: r.get('msg') for name, r in self.results.items() if r.get('failed')}

    def __repr__(self):
        return (f'<PlaybookResult rc={self.rc} failed tasks: {self.failures()}>\n'
                f'{self.stdout[-4000:]}\n{self.stderr[-2000:]}')


@pytest.fixture(scope='session')
def ansible_env(tmp_path_factory):
    root = tmp_path_factory.mktemp('ansible')
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path(root)),
        # Our own JSON callback: ansible.builtin.json is not in ansible-core 2.17.
        ANSIBLE_STDOUT_CALLBACK='test_results_json',
        ANSIBLE_CALLBACK_PLUGINS=str(Path(__file__).parent / 'callback_plugins'),
        ANSIBLE_LOCALHOST_WARNING='False',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='False',
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_RETRY_FILES_ENABLED='False',
    )
    return env


@pytest.fixture
def run_playbook(ansible_env, tmp_path):
    """run_playbook(yaml_text, extra_vars=None, check=False, diff=False, args=(), prefix=()) -> PlaybookResult.

    Runs against localhost with the json callback and returns every task's result by task name. ``prefix``
    is a command line that runs ansible-playbook (for example in a namespace of its own).
    """

    def _run(playbook: str, extra_vars: dict | None = None, check=False, diff=False, args=(), prefix=()):
        path = tmp_path / 'playbook.yml'
        path.write_text(textwrap.dedent(playbook))
        cmd = [*prefix, str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(path)]
        if extra_vars:
            vars_file = tmp_path / 'extra_vars.json'
            vars_file.write_text(json.dumps(extra_vars))
            cmd += ['-e', f'@{vars_file}']
        if check:
            cmd.append('--check')
        if diff:
            cmd.append('--diff')
        cmd += list(args)
        proc = subprocess.run(cmd, env=ansible_env, capture_output=True, text=True, timeout=900, check=False)
        results = {}
        try:
            doc = json.loads(proc.stdout)
            for play in doc.get('plays', []):
                for task in play.get('tasks', []):
                    results[task['task']['name']] = task['hosts'].get('localhost', {})
        except ValueError:
            pass
        return PlaybookResult(proc, results)

    return _run
