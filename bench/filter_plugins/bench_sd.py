# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter for the community.general peer baseline of the benchmark (bench/playbooks/ldap_cg.yml).

ldap_entry / ldap_attrs take msDS-GroupMSAMembership only as raw bytes (Base64 with binary_attributes);
nothing in community.general builds a security descriptor, so the playbook gets it from this filter, once
per run, from the host group's objectSid. It is the same descriptor our modules write (owner BUILTIN\\
Administrators, one allow ACE for the group), built with this collection's model code.
"""

from __future__ import annotations

import base64

from ansible_collections.winkube.gmsa.plugins.module_utils.models import security_descriptor as sd


def gmsa_membership(object_sid_b64):
    """Base64 objectSid (as ldap_search returns it with base64_attributes) -> Base64 descriptor."""
    if isinstance(object_sid_b64, list):
        object_sid_b64 = object_sid_b64[0]
    sid = sd.sid_from_bytes(base64.b64decode(object_sid_b64))
    return base64.b64encode(sd.GroupMSAMembership.for_principals([sid]).to_bytes()).decode('ascii')


class FilterModule(object):
    def filters(self):
        return {'winkube_bench_gmsa_membership': gmsa_membership}
