"""The roles' meta/argument_specs.yml are written by scripts/argument_specs.py from meta/shared_argument_specs.yml (the
shared variables, specified once) and each role's own options; these tests fail while a written file is not current."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location('argument_specs_script', REPO / 'scripts' / 'argument_specs.py')
generator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generator)


def _copy(tmp_path):
    """The roles' meta folders and the shared source, copied: the generator's view of the repository."""
    (tmp_path / 'meta').mkdir()
    shutil.copy(REPO / generator.SHARED, tmp_path / generator.SHARED)
    for path in generator.role_files(REPO):
        target = tmp_path / path.relative_to(REPO)
        target.parent.mkdir(parents=True)
        shutil.copy(path, target)
    return tmp_path


def test_every_role_file_is_current():
    assert [str(p.relative_to(REPO)) for p in generator.stale(REPO)] == [], 'run: python scripts/argument_specs.py'


def test_every_listed_role_takes_each_shared_variable_as_specified_once():
    shared = generator.load_shared(REPO)
    assert {'gmsa_domain', 'gmsa_accounts'} <= set(shared['options'])
    for path in generator.role_files(REPO):
        role = path.parents[1].name
        for entry, spec in yaml.safe_load(path.read_text())['argument_specs'].items():
            found = [name for name in spec['options'] if name in shared['options']]
            assert found == shared['roles'][role], (role, entry)
            for name in found:
                assert spec['options'][name] == shared['options'][name], (role, entry, name)


def test_a_hand_edit_of_a_shared_variable_in_one_role_is_found_and_undone(tmp_path):
    root = _copy(tmp_path)
    path = root / 'roles' / 'gmsa_validate' / 'meta' / 'argument_specs.yml'
    text = path.read_text()
    path.write_text(text.replace('How to reach Active Directory', 'How to reach AD', 1))
    assert generator.stale(root) == [path]
    assert generator.stale(root, write=True) == [path]
    assert path.read_text() == text and generator.stale(root) == []


def test_a_new_shared_variable_is_one_edit_of_the_shared_source(tmp_path):
    root = _copy(tmp_path)
    shared = yaml.safe_load((root / generator.SHARED).read_text())
    shared['options']['gmsa_example'] = {'type': 'str', 'description': 'An example.'}
    shared['roles']['gmsa_ad'].append('gmsa_example')
    shared['roles']['gmsa_cluster'].append('gmsa_example')
    (root / generator.SHARED).write_text(yaml.safe_dump(shared, sort_keys=False))
    written = {p.parents[1].name for p in generator.stale(root, write=True)}
    assert written == {'gmsa_ad', 'gmsa_cluster'}
    for role in ('gmsa_ad', 'gmsa_cluster'):
        specs = yaml.safe_load((root / 'roles' / role / 'meta' / 'argument_specs.yml').read_text())['argument_specs']
        assert all(spec['options']['gmsa_example']['description'] == 'An example.' for spec in specs.values())
    # the role's own options stay
    cluster = yaml.safe_load((root / 'roles' / 'gmsa_cluster' / 'meta' / 'argument_specs.yml').read_text())['argument_specs']
    assert 'gmsa_cluster_webhook_random_hostname' in cluster['main']['options']
    assert generator.stale(root) == []


def test_a_shared_name_the_source_does_not_specify_is_refused(tmp_path):
    root = _copy(tmp_path)
    shared = yaml.safe_load((root / generator.SHARED).read_text())
    shared['roles']['gmsa_ad'].append('gmsa_typo')
    (root / generator.SHARED).write_text(yaml.safe_dump(shared, sort_keys=False))
    try:
        generator.stale(root)
    except SystemExit as exc:
        assert 'gmsa_typo' in str(exc)
    else:
        raise AssertionError('an unknown shared variable was accepted')
