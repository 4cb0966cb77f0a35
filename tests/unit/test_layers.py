"""The layers of plugins/module_utils (issue 18): the connection option specs sit on a floor of their own, the
WinRM side never imports the Kubernetes side (or the AD side), the Kubernetes side never imports WinRM or AD, the
AD side uses only WinRM's transport (runner, scripts) and never the Kubernetes side, and no file imports another
file's private (underscore) name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / 'plugins'
PREFIX = 'ansible_collections.winkube.gmsa.plugins.'
# package under module_utils -> packages of module_utils it must never import (at any depth, also in functions)
FORBIDDEN = {
    'connection': {'ad', 'k8s', 'winrm', 'node_agent', 'models'},
    'winrm': {'k8s', 'ad', 'node_agent'},
    'k8s': {'winrm', 'ad', 'node_agent'},
    'ad': {'k8s', 'node_agent'},
    'models': {'ad', 'k8s', 'winrm', 'node_agent', 'connection'},
}


def _imports(path):
    """(imported module, names) of every `from X import names` and `import X` in the file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def _files():
    return sorted(p for p in ROOT.rglob('*.py') if '__pycache__' not in p.parts)


@pytest.mark.parametrize('package', sorted(FORBIDDEN))
def test_module_utils_layers(package):
    files = sorted((ROOT / 'module_utils' / package).glob('*.py'))
    assert files, package
    wrong = []
    for path in files:
        for module, dummy in _imports(path):
            if module.startswith(PREFIX + 'module_utils.'):
                target = module[len(PREFIX + 'module_utils.'):].split('.')[0]
                if target in FORBIDDEN[package]:
                    wrong.append('%s imports %s' % (path.relative_to(ROOT), module))
    assert wrong == []


def test_no_private_name_is_imported_from_another_file():
    wrong = []
    for path in _files():
        for module, names in _imports(path):
            if module.startswith(PREFIX):
                wrong.extend('%s: from %s import %s' % (path.relative_to(ROOT), module, name)
                             for name in names if name.startswith('_'))
    assert wrong == []


def test_ad_takes_only_the_transport_from_winrm():
    wrong = []
    for path in sorted((ROOT / 'module_utils' / 'ad').glob('*.py')):
        for module, dummy in _imports(path):
            if module.startswith(PREFIX + 'module_utils.winrm') and module not in (
                    PREFIX + 'module_utils.winrm.runner', PREFIX + 'module_utils.winrm.scripts'):
                wrong.append('%s imports %s' % (path.relative_to(ROOT), module))
    assert wrong == []
