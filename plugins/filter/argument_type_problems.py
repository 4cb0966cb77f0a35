# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: argument_type_problems
short_description: List the variables where a list or a dict was given for a string
version_added: 0.1.0
author:
  - winkube.gmsa maintainers (@winkube)
description:
  - ansible-core's role argument validation accepts a list or a dict for an option of C(type=str) (on 2.17 and
    2.21 alike it only checks that the value can be turned into text, and the role then gets the list itself),
    so C(description=[a, b]) would end up in Active Directory as the text C(['a', 'b']). The roles of this
    collection run this filter over their argument spec first and refuse such values, naming the field.
  - Numbers and booleans given for a string are left alone (for example a version number).
options:
  _input:
    description: The role's variables, name to value (missing ones as empty strings).
    type: dict
    required: true
  options:
    description: The C(options) of the role's entry point in C(meta/argument_specs.yml).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse a list or a dict given for a string
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    spec: "{{ (lookup('ansible.builtin.file', role_path ~ '/meta/argument_specs.yml') | from_yaml).argument_specs.main.options }}"
    problems: "{{ dict(spec.keys() | zip(query('ansible.builtin.vars', *spec.keys(), default='')))
                  | winkube.gmsa.argument_type_problems(spec) }}"
"""

RETURN = r"""
_value:
  description: One message per wrong value, for example C(gmsa_accounts[0].description - a list was given where a string is expected ...).
  type: list
  elements: str
"""

from collections.abc import Mapping


def _kind(value):
    if isinstance(value, Mapping):
        return 'a dict'
    if isinstance(value, (list, tuple, set)):
        return 'a list'
    return None


def _problem(path, value):
    return ('%s: %s was given where a string is expected; write it as one string (quote it in YAML), '
            'it is not converted' % (path, _kind(value)))


def _check(values, options, prefix, out):
    for name, option in (options or {}).items():
        if not isinstance(values, Mapping) or values.get(name) is None:
            continue
        value, path = values[name], prefix + name
        wanted = option.get('type', 'str')
        elements = option.get('elements')
        if wanted == 'str' and _kind(value):
            out.append(_problem(path, value))
        elif wanted == 'list' and isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                item_path = '%s[%d]' % (path, index)
                if elements == 'str' and _kind(item):
                    out.append(_problem(item_path, item))
                elif elements == 'dict' and option.get('options') and isinstance(item, Mapping):
                    _check(item, option['options'], item_path + '.', out)
        elif wanted == 'dict' and option.get('options') and isinstance(value, Mapping):
            _check(value, option['options'], path + '.', out)
    return out


def argument_type_problems(values, options):
    """Messages for every list or dict given for a string option (at any depth), in the spec's order."""
    return _check(values, options, '', [])


class FilterModule:
    def filters(self):
        return {'argument_type_problems': argument_type_problems}
