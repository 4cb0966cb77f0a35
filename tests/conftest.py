"""Make `ansible_collections.winkube.gmsa` importable from this checkout, for unit and integration tests."""

from __future__ import annotations

import os
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


# --- skips ------------------------------------------------------------------------------------------
# A skip hides a missing requirement (a package, the lab, a tool), so with CI=true (scripts/run-tests sets
# it) any skipped test fails the run unless it is listed here with the reason it may skip. Keep this short.
ALLOWED_SKIPS: dict = {}

_skipped: list = []


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)


def pytest_collectreport(report):
    if report.skipped:  # a module-level skip (importorskip, allow_module_level) skips a whole file
        _skipped.append((report.nodeid, _skip_reason(report)))


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, 'wasxfail') and report.when in ('setup', 'call'):
        _skipped.append((report.nodeid, _skip_reason(report)))


def _allowed(nodeid: str) -> str | None:
    return ALLOWED_SKIPS.get(nodeid) or ALLOWED_SKIPS.get(nodeid.split('[')[0])


def _strict() -> bool:
    return os.environ.get('CI', '').lower() in ('1', 'true', 'yes')


def pytest_terminal_summary(terminalreporter):
    allowed = [(nodeid, _allowed(nodeid)) for nodeid, _reason in _skipped if _allowed(nodeid)]
    refused = [(nodeid, reason) for nodeid, reason in _skipped if not _allowed(nodeid)]
    write = terminalreporter.write_line
    write(f'skipped: {len(_skipped)} ({len(allowed)} allowed by tests/conftest.py ALLOWED_SKIPS)')
    for nodeid, reason in allowed:
        write(f'  allowed skip {nodeid}: {reason}')
    if refused and _strict():
        for nodeid, reason in refused:
            write(f'  NOT ALLOWED under CI: {nodeid}: {reason}', red=True)
    report = os.environ.get('WINKUBE_SKIP_REPORT')
    if report:
        with open(report, 'a', encoding='utf-8') as handle:
            handle.write('%d %d %s\n' % (len(_skipped), len(allowed), ' '.join(n for n, _r in _skipped)))


def pytest_sessionfinish(session, exitstatus):
    if _strict() and any(not _allowed(nodeid) for nodeid, _reason in _skipped) and session.exitstatus == 0:
        session.exitstatus = 1
