"""meta/runtime.yml: every module is in the module_defaults group of the connection it documents."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
FRAGMENT_GROUP = {'winkube.gmsa.ad_connection': 'ad', 'winkube.gmsa.k8s_connection': 'k8s',
                  'winkube.gmsa.winrm_connection': 'winrm'}


def _documented_group(module: Path) -> str | None:
    fragments = re.findall(r'^\s+- (winkube\.gmsa\.\w+)$', module.read_text(), flags=re.M)
    groups = {FRAGMENT_GROUP[f] for f in fragments if f in FRAGMENT_GROUP}
    assert len(groups) <= 1, f'{module.name} documents more than one connection: {groups}'
    return groups.pop() if groups else None


def test_each_module_is_in_the_group_of_its_connection():
    groups = yaml.safe_load((REPO / 'meta' / 'runtime.yml').read_text())['action_groups']
    membership = {}
    for group, modules in groups.items():
        for name in modules:
            assert name not in membership, f'{name} is in two groups'
            membership[name] = group
    expected = {}
    for module in sorted((REPO / 'plugins' / 'modules').glob('*.py')):
        group = _documented_group(module)
        if group:
            expected[module.stem] = group
    assert membership == expected
