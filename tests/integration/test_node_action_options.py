"""The inventory form's shared option checks (plugins/plugin_utils/node_exec.py NodeAction): on a Windows host of the
inventory, an option the action plugin does not take, and bad input, fail naming the option before anything reaches
the host (the lab endpoint's journal stays empty). The endpoint is an imitation of Windows (lab/winrm)."""

from __future__ import annotations

import pytest

from test_winrm_inventory import inventory, run


@pytest.fixture
def lab(winrm_lab):
    winrm_lab.reset()
    return winrm_lab


def test_unknown_options_and_bad_input_are_refused_before_anything_runs(ansible_env, tmp_path, lab):
    inv = inventory(lab, tmp_path, names=['WIN-NODE1'])
    proc, result = run(ansible_env, tmp_path, inv, """
    - name: registry with a WinRM option of the deprecated form
      winkube.gmsa.node_registry:
        username: someone
      ignore_errors: true
    - name: refresh with a misspelt option
      winkube.gmsa.node_refresh:
        computers: [WIN-NODE1$]
        gmsa: [WebApp1]
      ignore_errors: true
    - name: preflight with a bad timeout
      winkube.gmsa.node_preflight_info:
        connect_timeout: 0
      ignore_errors: true
    - name: credential spec with a bad name
      winkube.gmsa.docker_credential_spec:
        name: ..\\evil
        credspec: {CmsPlugins: [ActiveDirectory]}
      ignore_errors: true
    """)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    registry = result['registry with a WinRM option of the deprecated form']['WIN-NODE1']
    assert registry['failed'] and 'takes no option username' in registry['msg'] and 'nothing was run' in registry['msg']
    refresh = result['refresh with a misspelt option']['WIN-NODE1']
    assert refresh['failed'] and 'takes no option gmsa ' in refresh['msg'], refresh['msg']
    preflight = result['preflight with a bad timeout']['WIN-NODE1']
    assert preflight['failed'] and preflight['msg'] == 'connect_timeout must be at least 1 millisecond'
    spec = result['credential spec with a bad name']['WIN-NODE1']
    assert spec['failed'] and spec['msg'].startswith('nothing was written: name: ')
    assert lab.journal() == []
