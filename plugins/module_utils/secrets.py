# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets inside structured options (an inline kubeconfig, a credential spec's PluginInput).

Such options are ``no_log`` in the argument specs, so a module that fails while validating its arguments
masks all of them. But Ansible masks a no_log dict by replacing every string inside it wherever it occurs in
the output, as a substring: an inline kubeconfig's ``v1`` would turn ``windows.k8s.io/v1`` into
``windows.k8s.io/********``, its server URL and cluster name would vanish from every error message.
:func:`mask_structured_secrets` therefore narrows the masking, right after AnsibleModule validated the
arguments, to the strings that are credentials: the kubeconfig's users (tokens, passwords, client keys,
auth-provider settings, exec arguments and environment), an inline kubeconfig text as a whole, and every
PluginInput of a credential spec (``plugin_input`` of host_account_config). A kubeconfig path is no secret.
"""

from __future__ import annotations

import json

# Options whose value is a structure with a few secrets inside.
STRUCTURED = ('kubeconfig', 'credspec', 'host_account_config')
# Settings of a kubeconfig exec plugin that say what runs, not with which credentials.
EXEC_PLAIN = ('apiVersion', 'command', 'interactiveMode', 'installHint', 'provideClusterInfo')


def strings(value):
    """Every string (and number, as text) inside a value, as Ansible lists a no_log value's parts."""
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, (str, bytes)):
        text = value.decode('utf-8', 'replace') if isinstance(value, bytes) else value
        return {text} if text else set()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple, set)):
        out = set()
        for item in value:
            out |= strings(item)
        return out
    return {str(value)}


def inline_document(text):
    """A kubeconfig or credential spec given as YAML/JSON text, parsed; None for anything else (a path)."""
    if not isinstance(text, str) or not text.strip().startswith(('{', 'apiVersion', 'clusters', 'kind')):
        return None
    try:
        if text.strip().startswith('{'):
            return json.loads(text)
        import yaml  # only here: most calls never see YAML text, and importing it costs each module call ~10 ms
        return yaml.safe_load(text)
    except ValueError:
        return None
    except Exception:  # yaml.YAMLError: not a document after all
        return None


def kubeconfig_secrets(kubeconfig):
    """The credential strings of a kubeconfig (a dict or inline text): the users' settings but exec's plain ones."""
    if isinstance(kubeconfig, str):
        document = inline_document(kubeconfig)
        return ({kubeconfig} | kubeconfig_secrets(document)) if isinstance(document, dict) else set()
    if not isinstance(kubeconfig, dict):
        return set()
    out = set()
    for entry in kubeconfig.get('users') or []:
        user = entry.get('user') if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            continue
        for key, value in user.items():
            if key == 'exec' and isinstance(value, dict):
                out |= strings({k: v for k, v in value.items() if k not in EXEC_PLAIN})
            else:
                out |= strings(value)
    return out


def plugin_inputs(value):
    """Every PluginInput (credential spec) or plugin_input (host_account_config) inside a value, as text."""
    if isinstance(value, str):
        document = inline_document(value)
        return plugin_inputs(document) if document is not None else set()
    out = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ('PluginInput', 'plugin_input') and item not in (None, ''):
                out |= strings(item) | ({json.dumps(item)} if isinstance(item, (dict, list)) else set())
            else:
                out |= plugin_inputs(item)
    elif isinstance(value, list):
        for item in value:
            out |= plugin_inputs(item)
    return out


def _walk(spec, params, structured, secret, others):
    for name, option in (spec or {}).items():
        value = (params or {}).get(name)
        if value in (None, '', {}, []):
            continue
        if name in STRUCTURED:
            structured |= strings(value)
            secret |= kubeconfig_secrets(value) if name == 'kubeconfig' else plugin_inputs(value)
        elif option.get('no_log'):
            others |= strings(value)
        if option.get('options'):
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    _walk(option['options'], item, structured, secret, others)


def mask_structured_secrets(module):
    """Mask only the secrets inside kubeconfig, credspec and host_account_config (see the module docstring).

    Call right after ``AnsibleModule(...)``; every later result, failure, diff and log line is masked with it.
    """
    structured, secret, others = set(), set(), set()
    _walk(module.argument_spec, module.params, structured, secret, others)
    module.no_log_values.difference_update(structured - secret - others)
    module.no_log_values.update(secret)
    return module
