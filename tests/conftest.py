"""Make `ansible_collections.winkube.gmsa` importable from this checkout, for unit and integration tests."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

if REPO.parent.name == 'winkube' and REPO.parent.parent.name == 'ansible_collections':
    sys.path.insert(0, str(REPO.parents[2]))
else:
    _root = Path(tempfile.mkdtemp(prefix='winkube-gmsa-tests-'))
    (_root / 'ansible_collections' / 'winkube').mkdir(parents=True)
    (_root / 'ansible_collections' / 'winkube' / 'gmsa').symlink_to(REPO)
    sys.path.insert(0, str(_root))
