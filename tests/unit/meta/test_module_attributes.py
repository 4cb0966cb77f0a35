"""Every module documents its attributes on ansible.builtin.action_common_attributes, as microsoft.ad does:
check mode, diff mode and platform always, its module_defaults group (as meta/runtime.yml has it) and, for a
module with an action plugin, the flow attributes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
MODULES = sorted((REPO / 'plugins' / 'modules').glob('*.py'))
ACTIONS = {path.stem for path in (REPO / 'plugins' / 'action').glob('*.py')}
GROUPS = {name: group for group, names in yaml.safe_load((REPO / 'meta' / 'runtime.yml').read_text())['action_groups'].items()
          for name in names}


def _documentation(module: Path) -> dict:
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'DOCUMENTATION' for t in node.targets):
            return yaml.safe_load(node.value.value)
    raise AssertionError(f'{module.name} has no DOCUMENTATION')


def _fragment_attributes(name: str) -> dict:
    """The attributes of one of the collection's doc fragments (winkube.gmsa.FILE or winkube.gmsa.FILE.PART)."""
    file, dummy, part = name[len('winkube.gmsa.'):].partition('.')
    path = REPO / 'plugins' / 'doc_fragments' / f'{file}.py'
    wanted = part.upper() or 'DOCUMENTATION'
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == wanted for t in node.targets):
            return yaml.safe_load(node.value.value).get('attributes') or {}
    raise AssertionError(f'{name} is not a fragment of the collection')


def _attributes(doc: dict) -> dict:
    """The module's attributes merged with those of the collection's fragments as ansible-doc merges them:
    per attribute, the module's own keys win, then those of the fragment listed first."""
    attributes = {name: dict(value) for name, value in (doc.get('attributes') or {}).items()}
    for fragment in doc.get('extends_documentation_fragment') or []:
        if fragment.startswith('winkube.gmsa.'):
            for name, value in _fragment_attributes(fragment).items():
                attributes[name] = dict(value, **attributes.get(name, {}))
    return attributes


@pytest.mark.parametrize('module', MODULES, ids=lambda path: path.stem)
def test_attributes_come_from_action_common_attributes(module):
    doc = _documentation(module)
    fragments = doc.get('extends_documentation_fragment') or []
    attributes = _attributes(doc)
    assert 'ansible.builtin.action_common_attributes' in fragments
    # of two fragments the first listed wins, and ansible-core's say support N/A and membership []
    ours = [f for f in fragments if f.startswith('winkube.gmsa.') and _fragment_attributes(f)]
    assert all(fragments.index(f) < fragments.index('ansible.builtin.action_common_attributes') for f in ours), module.stem
    for name in ('check_mode', 'diff_mode', 'platform'):
        assert attributes.get(name, {}).get('support') in ('full', 'partial', 'none'), f'{module.stem}: {name}'
        # the description comes from ansible-core's fragment, so every collection words it alike
        assert 'description' not in attributes[name], f'{module.stem}: {name} repeats the fragment'
    assert attributes['platform']['platforms']
    if module.stem in GROUPS:
        assert 'ansible.builtin.action_common_attributes.actiongroups' in fragments
        assert attributes['action_group'] == {'support': 'full', 'membership': [f'winkube.gmsa.{GROUPS[module.stem]}']}
    else:
        assert 'action_group' not in attributes
    if module.stem in ACTIONS:
        assert 'ansible.builtin.action_common_attributes.flow' in fragments
        assert attributes['action']['support'] == 'full'
    else:
        assert 'action' not in attributes


@pytest.mark.parametrize('module', [m for m in MODULES if m.stem.endswith('_info')], ids=lambda path: path.stem)
def test_info_modules_change_nothing_and_diff_nothing(module):
    attributes = _documentation(module)['attributes']
    assert attributes['check_mode']['support'] == 'full' and attributes['diff_mode']['support'] == 'none'
