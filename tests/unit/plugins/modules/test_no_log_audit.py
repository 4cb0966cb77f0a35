"""The audit of every option of every module for values that can carry a secret, made executable.

Each module's real argument spec is captured (its main() builds AnsibleModule; a stand-in records the spec and
stops), every option at every depth is walked, and an option whose name says it may hold a secret must be
no_log, or be listed below with the reason it is not. A new option with such a name fails this test until it
is marked or reviewed.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

MODULES = sorted(p.stem for p in (Path(__file__).resolve().parents[4] / 'plugins' / 'modules').glob('*.py')
                 if p.stem != '__init__')

# Names that can carry a secret: credentials, keys given as content, whole kubeconfigs, credential specs
# (their PluginInput) and the ccg.exe plugin's settings.
SECRET_NAME = re.compile(r'password|token|secret|api_key|private|kubeconfig|credspec|plugin_input|host_account_config')

# Reviewed: these names match but hold no secret.
NOT_SECRET = {
    'update_password': 'a choice (on_create, always)',
    'password_length': 'an integer',
    'password_never_expires': 'a boolean',
    'allowed_to_retrieve_password': 'the principals that may read a gMSA password, not the password',
    'managed_password_interval_days': 'an integer',
    'kubernetes_secret': 'the name and namespace of a Secret; its connection options are checked one by one',
    'image_pull_secrets': 'the names of image pull Secrets, not their contents',
}


class Captured(Exception):
    pass


def argument_spec_of(name, monkeypatch):
    module = importlib.import_module('ansible_collections.winkube.gmsa.plugins.modules.%s' % name)
    seen = {}

    def capture(*args, **kwargs):
        seen['spec'] = kwargs.get('argument_spec') or args[0]
        raise Captured()

    monkeypatch.setattr(module, 'AnsibleModule', capture)
    with pytest.raises(Captured):
        module.main()
    return seen['spec']


def options(spec, prefix=''):
    for name, option in spec.items():
        yield prefix + name, name, option
        if option.get('options'):
            yield from options(option['options'], prefix + name + '.')


@pytest.mark.parametrize('name', MODULES)
def test_every_option_that_can_carry_a_secret_is_no_log(name, monkeypatch):
    spec = argument_spec_of(name, monkeypatch)
    unmarked = [path for path, option_name, option in options(spec)
                if SECRET_NAME.search(option_name) and not option.get('no_log') and option_name not in NOT_SECRET]
    assert not unmarked, '%s: options that can carry a secret without no_log: %s' % (name, unmarked)


def test_the_audit_sees_the_nested_connections(monkeypatch):
    """The walk reaches the secrets nested in dicts: AD over WinRM, the cluster of node_registry, the Secret's connection."""
    paths = {path for path, _n, option in options(argument_spec_of('portable_identity', monkeypatch)) if option.get('no_log')}
    assert {'password', 'winrm.password', 'kubernetes_secret.kubeconfig', 'kubernetes_secret.api_key',
            'identity_password'} <= paths
    paths = {path for path, _n, option in options(argument_spec_of('node_registry', monkeypatch)) if option.get('no_log')}
    assert {'password', 'cluster.kubeconfig', 'cluster.api_key'} <= paths
