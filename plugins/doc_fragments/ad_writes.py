# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How every AD module that writes (one reconciler: plugins/module_utils/ad/reconciler.py) meets other writers;
    # the return values RV(ldap_operations), RV(created_concurrently) and RV(replanned) refer to these notes.
    DOCUMENTATION = r"""
options: {}
notes:
  - Every check that needs no directory and every lookup runs before the first write; bad input fails the task
    naming the options at fault, with nothing changed.
  - RV(ldap_operations) counts the LDAP searches sent and the writes done after binding (principal lookups
    included).
  - When the creation of an object finds it already there (created meanwhile by another run, or by a repeated
    add whose first answer was lost), M(winkube.gmsa.gmsa) and M(winkube.gmsa.host_group) read it again and
    converge it like an existing one, and list its name in their C(created_concurrently) result;
    M(winkube.gmsa.portable_identity) fails instead, since it cannot know the password of a user another run
    created.
  - A gMSA's C(msDS-GroupMSAMembership) is written by deleting exactly the value read and adding the new one in
    one modify, so a change another writer made between this run's read and its write makes the modify fail
    instead of being overwritten. The gMSA is then read, planned and written again (at most 6 times, then the
    task fails and names it); its name is listed in RV(replanned).
"""
