"""Write every role's meta/argument_specs.yml: the shared role variables from meta/shared_argument_specs.yml, the
role's own options and entry point texts from its current file.

    python scripts/argument_specs.py           rewrite the files that are not current
    python scripts/argument_specs.py --check   only name them (exit 1); the lint gate of scripts/run-tests runs this

The written files stay plain YAML for ansible-doc, ansible-core's argument validation and AWX. A shared variable
is edited in meta/shared_argument_specs.yml only (its `roles` says which roles take it); a role's own option is
edited in the role's file, then this script is run so the file keeps its canonical form.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path('meta') / 'shared_argument_specs.yml'
HEADER = ('---\n'
          '# Written by scripts/argument_specs.py. The shared variables ({names}) come from\n'
          '# meta/shared_argument_specs.yml: edit them there. Edit this role\'s own options here, then run the script.\n')


class _Dumper(yaml.SafeDumper):
    """Block style with lists indented under their key, as yamllint and the hand-written files have them."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data):
        # aliases only for the dicts an entry point or a shared variable is made of, never for short scalars
        return not isinstance(data, dict)


def _name_anchors(text):
    """PyYAML's &id001 anchors renamed after the key that first holds them (main: &main ... validate: *main)."""
    names = {}
    for key, anchor in re.findall(r'^\s*([\w-]+): &(id\d+)$', text, flags=re.M):
        name = key
        while name in names.values():
            name += '_'
        names[anchor] = name
    return re.sub(r'([&*])(id\d+)\b', lambda m: m.group(1) + names.get(m.group(2), m.group(2)), text)


def load_shared(repo=REPO):
    shared = yaml.safe_load((repo / SHARED).read_text())
    unknown = {name for names in shared['roles'].values() for name in names} - set(shared['options'])
    if unknown:
        raise SystemExit('%s: roles names %s, which options does not specify' % (SHARED, ', '.join(sorted(unknown))))
    return shared


def render(role, current, shared):
    """The text of roles/<role>/meta/argument_specs.yml, given its current content."""
    names = shared['roles'].get(role, [])
    built = {}  # id of an entry point read -> entry point written, so an alias stays one
    entry_points = {}
    for entry, spec in current['argument_specs'].items():
        if id(spec) not in built:
            options = {name: shared['options'][name] for name in names}
            options.update((key, value) for key, value in (spec.get('options') or {}).items() if key not in shared['options'])
            built[id(spec)] = {key: (options if key == 'options' else value) for key, value in spec.items()}
            built[id(spec)].setdefault('options', options)
        entry_points[entry] = built[id(spec)]
    body = yaml.dump({'argument_specs': entry_points}, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return HEADER.format(names=', '.join(names) or 'none here') + _name_anchors(body)


def role_files(repo=REPO):
    return sorted((repo / 'roles').glob('*/meta/argument_specs.yml'))


def stale(repo=REPO, write=False):
    """The files whose text differs from what render writes (rewritten when write)."""
    shared = load_shared(repo)
    out = []
    for path in role_files(repo):
        text = path.read_text()
        wanted = render(path.parents[1].name, yaml.safe_load(text), shared)
        if text != wanted:
            out.append(path)
            if write:
                path.write_text(wanted)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--check', action='store_true', help='name the files that are not current and exit 1, write nothing')
    args = parser.parse_args(argv)
    paths = stale(write=not args.check)
    for path in paths:
        print('%s %s' % ('not current:' if args.check else 'written:', path.relative_to(REPO)))
    if args.check and paths:
        print('run: python scripts/argument_specs.py (edit shared variables in %s)' % SHARED)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
