#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_refresh
short_description: Let a Windows node use a new gMSA grant now (purge its machine tickets, run Test-ADServiceAccount)
version_added: 0.1.0
description:
  - A Windows node's Kerberos tickets carry its group memberships from when they were issued, so a node just added to
    the host group cannot retrieve a gMSA's password until its SYSTEM tickets are purged or it reboots.
  - Runs on a Windows host of the inventory through the host's own connection (C(ansible_connection) V(winrm) or
    V(psrp)). When the host's computer account (C($env:COMPUTERNAME$)) is in O(computers), it runs
    C(klist -li 0x3e7 purge); then, on a listed host, C(Test-ADServiceAccount) for each of O(gmsas).
  - The gMSA names reach the cmdlet as data (parameter binding), never as script text.
  - C(Test-ADServiceAccount) needs the ActiveDirectory PowerShell module on the node
    (C(Install-WindowsFeature RSAT-AD-PowerShell)); without it each test reports V(null) with that fix.
  - B(Not verified on Windows.) The tests run this through Ansible's winrm connection plugin against the lab's WinRM
    imitation, which records the command and answers as the script would (docs/winrm.md).
author:
  - winkube.gmsa maintainers (@winkube)
options:
  computers:
    description: sAMAccountNames (C(WIN1$)) of the computers just added to the host group; other hosts do nothing.
    type: list
    elements: str
    required: true
  gmsas:
    description: The gMSAs this node should be able to use.
    type: list
    elements: str
    default: []
  purge:
    description: Whether to purge the machine tickets (V(false) only tests).
    type: bool
    default: true
  fail_on_test:
    description: Fail when a listed host's C(Test-ADServiceAccount) is not V(true).
    type: bool
    default: true
extends_documentation_fragment:
  - winkube.gmsa.winrm_connection.node_host
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms:
      - windows
    details: Runs on a Windows host of the inventory (C(ansible_connection) V(winrm) or V(psrp)); the action plugin runs
      the work through that connection.
seealso:
  - module: winkube.gmsa.node_agent
"""

EXAMPLES = r"""
- name: Let the nodes just added to the host group use their gMSAs now
  hosts: windows_nodes
  gather_facts: false
  tasks:
    - name: Purge the machine tickets and test the gMSAs
      winkube.gmsa.node_refresh:
        computers: "{{ hostvars['localhost'].gmsa_ad_host_group_result.members_added | default([]) }}"
        gmsas: [WebApp1, Reports1]
"""

RETURN = r"""
computer_name:
  description: The host's computer name.
  returned: success
  type: str
listed:
  description: Whether the host is one of O(computers).
  returned: success
  type: bool
purged:
  description: Whether the tickets were purged.
  returned: success
  type: bool
tests:
  description: Per gMSA, C(gmsa), C(ok) (the cmdlet's answer, V(null) when it is missing) and C(error).
  returned: success
  type: list
  elements: dict
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule


def main():
    # The work is done by the action plugin of the same name on the controller, over the host's connection.
    module = AnsibleModule(argument_spec=dict(computers=dict(type='list', elements='str', required=True),
                                              gmsas=dict(type='list', elements='str', default=[]),
                                              purge=dict(type='bool', default=True),
                                              fail_on_test=dict(type='bool', default=True)),
                           supports_check_mode=True)
    module.fail_json(msg='node_refresh runs through its action plugin on a Windows host of the inventory')


if __name__ == '__main__':
    main()
