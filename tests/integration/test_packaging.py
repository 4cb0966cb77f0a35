"""The collection builds, installs from its tarball, resolves by FQCN and documents every plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (REPO / 'plugins' / 'modules').glob('*.py') if p.stem != '__init__')
FILTERS = sorted(p.stem for p in (REPO / 'plugins' / 'filter').glob('*.py') if p.stem != '__init__') \
    if (REPO / 'plugins' / 'filter').is_dir() else []


def run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    assert proc.returncode == 0, f'{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}'
    return proc.stdout


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """Build the tarball from this checkout and install it into an empty collections path."""
    build_dir = tmp_path_factory.mktemp('build')
    install_dir = tmp_path_factory.mktemp('collections')
    version = yaml.safe_load((REPO / 'galaxy.yml').read_text())['version']
    run([str(BIN / 'ansible-galaxy'), 'collection', 'build', str(REPO), '--output-path', str(build_dir)])
    tarball = build_dir / f'winkube-gmsa-{version}.tar.gz'
    assert tarball.exists()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(install_dir), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='False')
    # --force: a copy of winkube.gmsa elsewhere (e.g. ~/.ansible/collections) must not make this a no-op
    run([str(BIN / 'ansible-galaxy'), 'collection', 'install', '--force', str(tarball), '-p', str(install_dir)],
        env=env)
    return install_dir, env


def test_tarball_has_no_lab_state_or_caches(installed):
    install_dir, _env = installed
    root = install_dir / 'ansible_collections' / 'winkube' / 'gmsa'
    assert (root / 'MANIFEST.json').exists()
    for unwanted in ('.ci', '.cache', 'lab', 'scripts', 'tests/output'):
        assert not (root / unwanted).exists(), unwanted


def test_modules_exist():
    assert MODULES, 'the collection ships no module'


def test_every_module_listed_by_fqcn(installed):
    _install_dir, env = installed
    listing = run([str(BIN / 'ansible-doc'), '-t', 'module', '-l', 'winkube.gmsa'], env=env)
    for name in MODULES:
        assert f'winkube.gmsa.{name}' in listing


@pytest.mark.parametrize('name', MODULES)
def test_module_doc_renders(installed, name):
    _install_dir, env = installed
    out = run([str(BIN / 'ansible-doc'), '-t', 'module', f'winkube.gmsa.{name}'], env=env)
    assert 'EXAMPLES' in out and 'RETURN VALUES' in out


@pytest.mark.parametrize('name', FILTERS)
def test_filter_doc_renders(installed, name):
    _install_dir, env = installed
    run([str(BIN / 'ansible-doc'), '-t', 'filter', f'winkube.gmsa.{name}'], env=env)
