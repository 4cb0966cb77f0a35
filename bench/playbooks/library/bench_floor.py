# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark only: Ansible's floor for one module call that carries a task's arguments.

It takes every option the four calls of playbooks/ours.yml pass (their module_defaults included) as `raw`,
so Ansible still templates, ships and decodes the same data, and returns changed=false without doing
anything: what such a call costs before any of a real module's work (sub-option validation, reading the
directory or the cluster, comparing, results). `playbooks/floor.yml` runs it where ours.yml runs our modules.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: bench_floor
short_description: Benchmark only, takes the arguments of one of our module calls and does nothing
description: See the module docstring.
author: winkube.gmsa contributors
"""

OPTIONS = ('accounts', 'name', 'members', 'credential_specs', 'bindings', 'write_concurrency', 'return_unchanged',
           'server', 'port', 'username', 'ca_file', 'base_dn', 'kubeconfig')


def main():
    spec = dict((option, dict(type='raw')) for option in OPTIONS)
    spec['password'] = dict(type='raw', no_log=True)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    module.exit_json(changed=False)


if __name__ == '__main__':
    main()
