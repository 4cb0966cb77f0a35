"""docs/variables.md, "Reaching the nodes": one complete example per gmsa_nodes.access (agent, winrm, none), each
valid for the gmsa_nodes role's argument spec; the winrm example's inventory has the group it names, with the
winrm connection. The lab inventory (playbooks/inventory) uses the same model, not the deprecated gmsa_nodes.winrm."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

REPO = Path(__file__).resolve().parents[3]


def _section():
    text = (REPO / 'docs' / 'variables.md').read_text()
    start = text.index('## Reaching the nodes: `gmsa_nodes.access`')
    return text[start:text.index('\n## ', start + 1)]


def _examples():
    """access value -> (inventory dict, group_vars dict) from the yaml blocks after each **`access: ...`** heading."""
    found = {}
    for access, block in re.findall(r'\*\*`access: (\w+)`\*\*.*?```yaml\n(.*?)```', _section(), re.S):
        inventory, group_vars = block.split('# group_vars/all.yml\n')
        found[access] = (yaml.safe_load(inventory), yaml.safe_load(group_vars))
    return found


def _role_spec():
    spec = yaml.safe_load((REPO / 'roles' / 'gmsa_nodes' / 'meta' / 'argument_specs.yml').read_text())
    return spec['argument_specs']['main']['options']


def test_one_complete_example_per_access_value_valid_for_the_role():
    examples = _examples()
    assert sorted(examples) == ['agent', 'none', 'winrm']
    spec = _role_spec()
    for access, (inventory, group_vars) in examples.items():
        assert group_vars['gmsa_nodes']['access'] == access
        assert 'winrm' not in group_vars['gmsa_nodes'], 'the deprecated controller-side form is no example'
        params = {name: group_vars[name] for name in ('gmsa_nodes', 'gmsa_cluster')}
        result = ArgumentSpecValidator({name: spec[name] for name in params}).validate(params)
        assert not result.error_messages, (access, result.error_messages)
        assert 'localhost' in inventory['all']['hosts']
    inventory, group_vars = examples['winrm']
    group = inventory['all']['children'][group_vars['gmsa_nodes']['inventory_group']]
    assert group['vars']['ansible_connection'] == 'winrm' and len(group['hosts']) == 2
    assert 'children' not in examples['agent'][0]['all'] and 'children' not in examples['none'][0]['all']


def test_lab_inventory_uses_the_access_model():
    group_vars = yaml.safe_load((REPO / 'playbooks' / 'inventory' / 'group_vars' / 'all' / 'lab.yml').read_text())
    nodes = group_vars['gmsa_nodes']
    assert 'winrm' not in nodes and 'node_names' not in nodes
    assert nodes['access'] == "{{ 'winrm' if lab_winrm else 'none' }}"
    inventory = yaml.safe_load((REPO / 'playbooks' / 'inventory' / 'lab.yml').read_text())
    group = inventory['all']['children'][nodes['inventory_group']]
    assert sorted(group['hosts']) == ['WIN-NODE1', 'WIN-NODE2'] and group['vars']['ansible_connection'] == 'winrm'
